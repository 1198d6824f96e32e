//! Radar: service/environment health, connector freshness and confidence.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use kube::ResourceExt;
use maud::{Markup, html};

use super::layout::{empty, gate_href, maybe_decision, time};
use crate::api::ConnectorHealth;
use crate::console::state::ConsoleState;

/// The radar page body.
pub fn render(state: &ConsoleState, visible: &BTreeSet<String>, now: Timestamp) -> Markup {
    let gates = state.gates_in(visible);
    // (service, environment) → gates, most recently evaluated first.
    let mut by_service: BTreeMap<(String, String), Vec<_>> = BTreeMap::new();
    for g in gates {
        by_service
            .entry((g.spec.service.clone(), g.spec.environment.clone()))
            .or_default()
            .push(g);
    }
    for v in by_service.values_mut() {
        v.sort_by_key(|g| std::cmp::Reverse(g.status.as_ref().and_then(|s| s.evaluated_at)));
    }
    let scopes = state.scopes_in(visible);
    html! {
        h2 { "Services" }
        div.panel {
            @if by_service.is_empty() { (empty("No gated service yet.")) } @else {
                table #radar {
                    thead { tr { th { "Service" } th { "Environment" } th { "Decision" } th { "Confidence" } th { "Evidence" } th.hide-narrow { "Post-deploy watch" } } }
                    tbody { @for ((service, env), gs) in &by_service {
                        @let g = &gs[0];
                        @let ns = g.namespace().unwrap_or_default();
                        @let st = g.status.clone().unwrap_or_default();
                        @let passport = st.passport_name.as_deref().and_then(|p| state.passport(&ns, p));
                        tr {
                            td { a href=(gate_href(&ns, &g.name_any())) { (service) } }
                            td { (env) }
                            td { (maybe_decision(st.decision)) }
                            td { (st.confidence.map(|c| format!("{c}%")).unwrap_or_else(|| "—".into())) }
                            td {
                                @if let Some(p) = &passport {
                                    @for e in &p.spec.evidence {
                                        @let age = now.duration_since(e.observed_at).as_secs().max(0);
                                        @let max = e.max_age_seconds.unwrap_or(crate::engine::DEFAULT_MAX_AGE_SECONDS);
                                        span class=(if age <= max { "s-pass" } else { "s-stale" }) { (e.connector) }
                                        " " span.muted { (age) "s old (max " (max) "s)" } br;
                                    }
                                } @else { span.muted { "no passport yet" } }
                            }
                            td.hide-narrow { @if let Some(w) = st.watch_until { "until " (time(w)) } @else { span.muted { "—" } } }
                        }
                    } }
                }
            }
        }
        h2 { "Connector freshness" }
        div.panel {
            @if scopes.is_empty() { (empty("No ConnectorScope configured.")) } @else {
                table {
                    thead { tr { th { "Scope" } th { "Connector" } th { "Health" } th { "Last observed" } } }
                    tbody { @for s in &scopes {
                        @let st = s.status.clone().unwrap_or_default();
                        tr {
                            td { (s.namespace().unwrap_or_default()) "/" (s.name_any()) }
                            td { (s.spec.connector.as_str()) }
                            td class=(if st.health == Some(ConnectorHealth::Healthy) { "h-Healthy" } else { "h-bad" }) {
                                (st.health.map(|h| h.as_str()).unwrap_or("Unknown"))
                            }
                            td { (super::layout::maybe_time(st.last_observed_at)) }
                        }
                    } }
                }
            }
        }
    }
}
