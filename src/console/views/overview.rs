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
        (first_passport(&first_passport_progress(state, visible)))
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

/// How far a namespace without a passport is on the way to its first one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstPassport {
    pub namespace: String,
    pub policy: bool,
    pub connector_scopes: bool,
    pub release_gate: bool,
    /// The gate has been evaluated (a passport is on its way or refused: see its conditions).
    pub evaluated: bool,
}

/// The visible namespaces that have started (a Policy, ConnectorScope or
/// ReleaseGate) but have no Passport yet.
pub fn first_passport_progress(
    state: &ConsoleState,
    visible: &BTreeSet<String>,
) -> Vec<FirstPassport> {
    let with_passport: BTreeSet<String> = state
        .passports_in(visible)
        .iter()
        .filter_map(|p| p.namespace())
        .collect();
    let in_ns = |ns: &String| {
        let one = BTreeSet::from([ns.clone()]);
        let gates = state.gates_in(&one);
        FirstPassport {
            namespace: ns.clone(),
            policy: !state.policies_in(&one).is_empty(),
            connector_scopes: !state.scopes_in(&one).is_empty(),
            release_gate: !gates.is_empty(),
            evaluated: gates
                .iter()
                .any(|g| g.status.as_ref().is_some_and(|s| s.evaluated_at.is_some())),
        }
    };
    visible
        .iter()
        .filter(|ns| !with_passport.contains(*ns))
        .map(in_ns)
        .collect()
}

fn step(done: bool, name: &str) -> Markup {
    html! {
        td data-step=(name) data-done=(done) {
            @if done { span.h-ok { "done" } } @else { span.h-bad { "to do" } }
        }
    }
}

/// The "first passport" panel; nothing when every namespace has one.
fn first_passport(progress: &[FirstPassport]) -> Markup {
    html! {
        @if !progress.is_empty() {
            h2 { "First passport" }
            div.panel #first-passport {
                p.muted {
                    "Namespaces on their way to a first passport. "
                    code { "releasepassport init -n NAMESPACE --service NAME" }
                    " writes what is missing from what the namespace runs (see docs/cli.md)."
                }
                table {
                    thead { tr { th { "Namespace" } th { "Policy" } th { "ConnectorScopes" } th { "ReleaseGate" } th { "First passport" } th { "Next" } } }
                    tbody { @for p in progress {
                        tr data-namespace=(p.namespace) {
                            td { (p.namespace) }
                            (step(p.policy, "policy"))
                            (step(p.connector_scopes, "connector-scopes"))
                            (step(p.release_gate, "release-gate"))
                            (step(false, "passport"))
                            td {
                                @if !(p.policy && p.connector_scopes && p.release_gate) {
                                    code { "releasepassport init -n " (p.namespace) " --service NAME" }
                                } @else if p.evaluated {
                                    "The gate was evaluated without a passport: see its conditions."
                                } @else {
                                    "Waiting for the operator's first evaluation."
                                }
                            }
                        }
                    } }
                }
            }
        }
    }
}

#[cfg(test)]
mod first_passport_tests {
    use super::*;
    use crate::api::{ConnectorScope, Passport, Policy};

    fn object<T: serde::de::DeserializeOwned>(kind: &str, ns: &str, spec: serde_json::Value) -> T {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "releasepassport.io/v1alpha1", "kind": kind,
            "metadata": {"name": "payment-api-production", "namespace": ns}, "spec": spec,
        }))
        .expect(kind)
    }

    #[test]
    fn namespaces_without_a_passport_show_which_steps_are_done() {
        let policy: Policy = object("Policy", "new", serde_json::json!({"rules": []}));
        let scope: ConnectorScope = object(
            "ConnectorScope",
            "new",
            serde_json::json!({"connector": "ingest"}),
        );
        let mut passport: Passport =
            serde_saphyr::from_str(include_str!("../../../examples/passport.yaml"))
                .expect("examples/passport.yaml");
        passport.metadata.namespace = Some("old".into());
        let state = ConsoleState::from_objects(
            vec![],
            vec![passport],
            vec![policy],
            vec![scope],
            vec![],
            Default::default(),
        );
        let visible = BTreeSet::from(["new".to_string(), "old".to_string()]);
        let progress = first_passport_progress(&state, &visible);
        assert_eq!(
            progress,
            [FirstPassport {
                namespace: "new".into(),
                policy: true,
                connector_scopes: true,
                release_gate: false,
                evaluated: false,
            }]
        );
        let page = first_passport(&progress).into_string();
        assert!(
            page.contains(r#"data-step="release-gate" data-done="false""#),
            "{page}"
        );
        assert!(page.contains("releasepassport init -n new --service NAME"));
        assert!(first_passport(&[]).into_string().is_empty());
    }
}
