//! Radar: service/environment health, connector freshness and confidence.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use kube::ResourceExt;
use maud::{Markup, html};

use super::layout::{empty, gate_href, maybe_decision, time};
use crate::api::{ConnectorHealth, ConnectorKind, ConnectorScope};
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
        (signals(&scopes, ConnectorKind::Journey, now))
        (signals(&scopes, ConnectorKind::Statuspage, now))
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

/// Journey checks or third-party signals: each check the scope's last read
/// found, with its age against the scope's maximum age and its confidence
/// (the check's own, none once stale or when the connector failed).
fn signals(
    scopes: &[std::sync::Arc<ConnectorScope>],
    kind: ConnectorKind,
    now: Timestamp,
) -> Markup {
    let (title, id, none) = match kind {
        ConnectorKind::Journey => (
            "Journey checks",
            "journey-checks",
            "No journey connector configured: add a ConnectorScope with connector journey (docs/connectors.md).",
        ),
        _ => (
            "Third-party signals",
            "third-party-signals",
            "No dependency status page configured: add a ConnectorScope with connector statuspage (docs/connectors.md).",
        ),
    };
    let scopes: Vec<_> = scopes.iter().filter(|s| s.spec.connector == kind).collect();
    html! {
        h2 { (title) }
        div.panel {
            @if scopes.is_empty() { (empty(none)) } @else {
                table id=(id) {
                    thead { tr { th { "Scope" } th { "Check" } th { "State" } th.hide-narrow { "Observed" } th { "Age" } th { "Confidence" } } }
                    tbody { @for s in &scopes {
                        @let st = s.status.clone().unwrap_or_default();
                        @let max = s.spec.max_age_seconds.unwrap_or(crate::engine::DEFAULT_MAX_AGE_SECONDS);
                        @let age = st.last_observed_at.map(|t| now.duration_since(t).as_secs().max(0));
                        @let fresh = age.is_some_and(|a| a <= max);
                        @let healthy = st.health == Some(ConnectorHealth::Healthy);
                        @let name = format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any());
                        @if !healthy && st.signals.is_empty() {
                            tr data-scope=(name) {
                                td { (name) }
                                td { span.muted { "—" } }
                                td.h-bad { (st.health.map(|h| h.as_str()).unwrap_or("not read yet")) }
                                td.hide-narrow { (st.message.clone().unwrap_or_default()) }
                                td { (age_text(age, max)) }
                                td.confidence { "0%" }
                            }
                        }
                        @for sig in &st.signals {
                            @let confidence = if fresh && healthy { sig.confidence } else { 0 };
                            tr data-scope=(name) data-check=(sig.name) {
                                td { (name) }
                                td { (sig.name) }
                                td class=(match sig.state.as_str() { "pass" => "s-pass", "warn" => "s-stale", _ => "s-fail" }) { (sig.state) }
                                td.hide-narrow { (sig.detail) }
                                td class=(if fresh { "" } else { "s-stale" }) { (age_text(age, max)) }
                                td.confidence { (confidence) "%" }
                            }
                        }
                    } }
                }
            }
        }
    }
}

fn age_text(age: Option<i64>, max: i64) -> String {
    match age {
        Some(a) => format!("{a}s (max {max}s)"),
        None => format!("never (max {max}s)"),
    }
}
