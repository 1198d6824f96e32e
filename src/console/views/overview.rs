//! Overview: triage release readiness across the namespaces the user can read.

use std::collections::BTreeSet;

use kube::ResourceExt;
use maud::{Markup, html};

use super::layout::{decision, empty, gate_href, maybe_decision, passport_href, time};
use crate::api::{ConnectorHealth, Decision, ResultState};
use crate::console::state::ConsoleState;

/// The overview page body.
pub fn render(state: &ConsoleState, visible: &BTreeSet<String>) -> Markup {
    let gates = state.gates_in(visible);
    let scopes = state.scopes_in(visible);
    let recent = state.passports_in(visible);

    let mut pending = Vec::new();
    let mut held = Vec::new();
    let mut stale = Vec::new();
    for g in &gates {
        let ns = g.namespace().unwrap_or_default();
        let status = g.status.as_ref();
        let decided = status.and_then(|s| s.decision);
        let current = status
            .and_then(|s| s.observed_generation)
            .zip(g.metadata.generation)
            .is_some_and(|(o, gen_)| o >= gen_);
        if decided.is_none() || !current || decided == Some(Decision::RequireApproval) {
            pending.push(g.clone());
        }
        if matches!(
            decided,
            Some(Decision::Hold | Decision::Block | Decision::RollbackRecommended)
        ) {
            held.push(g.clone());
        }
        let latest = status
            .and_then(|s| s.passport_name.as_deref())
            .and_then(|p| state.passport(&ns, p));
        if let Some(p) = latest {
            let stale_rules: Vec<String> = p
                .spec
                .policy_results
                .iter()
                .filter(|r| r.state == ResultState::Stale)
                .map(|r| r.id.clone())
                .collect();
            if !stale_rules.is_empty() {
                stale.push((g.clone(), stale_rules));
            }
        }
    }
    let issues: Vec<_> = scopes
        .iter()
        .filter(|s| s.status.as_ref().and_then(|st| st.health) != Some(ConnectorHealth::Healthy))
        .collect();

    html! {
        div.cards {
            div.card { div.n #count-pending { (pending.len()) } div.l { "Pending gates" } }
            div.card { div.n #count-held { (held.len()) } div.l { "Held or blocked releases" } }
            div.card { div.n #count-stale { (stale.len()) } div.l { "Gates with stale evidence" } }
            div.card { div.n #count-connectors { (issues.len()) } div.l { "Connector issues" } }
            div.card { div.n { (gates.len()) } div.l { "Gates" } }
            div.card { div.n { (recent.len()) } div.l { "Passports" } }
        }
        h2 { "Held or blocked releases" }
        div.panel {
            @if held.is_empty() { (empty("Nothing is held or blocked.")) } @else {
                table {
                    thead { tr { th { "Gate" } th { "Service" } th { "Release" } th.hide-narrow { "Env" } th { "Decision" } th { "Next actions" } } }
                    tbody {
                        @for g in &held {
                            @let ns = g.namespace().unwrap_or_default();
                            @let st = g.status.clone().unwrap_or_default();
                            tr {
                                td { a href=(gate_href(&ns, &g.name_any())) { (ns) "/" (g.name_any()) } }
                                td { (g.spec.service) }
                                td {
                                    @if let Some(p) = &st.passport_name {
                                        a href=(passport_href(&ns, p)) { (g.spec.release) }
                                    } @else { (g.spec.release) }
                                }
                                td.hide-narrow { (g.spec.environment) }
                                td { (maybe_decision(st.decision)) }
                                td { ul.actions { @for a in &st.next_actions { li { (a) } } } }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Pending gates" }
        div.panel {
            @if pending.is_empty() { (empty("No gate is waiting.")) } @else {
                table {
                    thead { tr { th { "Gate" } th { "Service" } th { "Release" } th { "Waiting for" } } }
                    tbody {
                        @for g in &pending {
                            @let ns = g.namespace().unwrap_or_default();
                            @let st = g.status.clone().unwrap_or_default();
                            tr {
                                td { a href=(gate_href(&ns, &g.name_any())) { (ns) "/" (g.name_any()) } }
                                td { (g.spec.service) }
                                td { (g.spec.release) }
                                td {
                                    @if st.decision == Some(Decision::RequireApproval) { "approval" }
                                    @else if st.decision.is_none() { "first evaluation" }
                                    @else { "evaluation of the latest change" }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Stale evidence" }
        div.panel {
            @if stale.is_empty() { (empty("All evidence behind current decisions is fresh.")) } @else {
                ul { @for (g, rules) in &stale {
                    li { a href=(gate_href(&g.namespace().unwrap_or_default(), &g.name_any())) { (g.name_any()) } ": " (rules.join(", ")) }
                } }
            }
        }
        h2 { "Connector issues" }
        div.panel {
            @if issues.is_empty() { (empty("Every configured connector is healthy.")) } @else {
                table {
                    thead { tr { th { "Scope" } th { "Connector" } th { "Health" } th { "Message" } } }
                    tbody { @for s in &issues {
                        @let st = s.status.clone().unwrap_or_default();
                        tr {
                            td { (s.namespace().unwrap_or_default()) "/" (s.name_any()) }
                            td { (s.spec.connector.as_str()) }
                            td.h-bad { (st.health.map(|h| h.as_str()).unwrap_or("Unknown")) }
                            td { (st.message.unwrap_or_default()) }
                        }
                    } }
                }
            }
        }
        h2 { "Recent decisions" }
        div.panel {
            @if recent.is_empty() { (empty("No passport yet. Create a ReleaseGate to get the first one.")) } @else {
                table {
                    thead { tr { th { "Decision" } th { "Service" } th { "Release" } th.hide-narrow { "Env" } th { "When" } } }
                    tbody { @for p in recent.iter().take(10) {
                        tr {
                            td { (decision(p.spec.decision)) }
                            td { (p.spec.service) }
                            td { a href=(passport_href(&p.namespace().unwrap_or_default(), &p.name_any())) { (p.spec.release) } }
                            td.hide-narrow { (p.spec.environment) }
                            td { (time(p.spec.generated_at)) }
                        }
                    } }
                }
            }
        }
    }
}
