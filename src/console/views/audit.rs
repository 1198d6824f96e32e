//! Reports / Audit log: governance events from gate histories and the
//! project's Kubernetes Events, newest first, exportable as JSON and CSV.

use std::collections::BTreeSet;

use kube::ResourceExt;
use maud::{Markup, html};

use super::layout::{empty, gate_href, maybe_decision, passport_href, seg, time};
use crate::api::ReleaseGate;
use crate::console::state::ConsoleState;
use crate::insights::{self, AuditEvent};

/// Rows shown on the page (exports carry everything).
pub const PAGE_ROWS: usize = 500;

/// Every governance event in the namespaces, newest first.
pub fn collect(state: &ConsoleState, visible: &BTreeSet<String>) -> Vec<AuditEvent> {
    let from_gates: Vec<AuditEvent> = state
        .gates_in(visible)
        .iter()
        .flat_map(|g| insights::audit_from_gate(g))
        .collect();
    let from_events: Vec<AuditEvent> = state
        .events_in(visible)
        .iter()
        .filter_map(|e| insights::audit_from_event(e))
        .collect();
    insights::merge_audit(from_gates, from_events)
}

fn rows(events: &[AuditEvent], with_gate: bool) -> Markup {
    html! {
        table.audit {
            thead { tr {
                th { "When" } th { "Event" } @if with_gate { th { "Gate" } }
                th { "Decision" } th.hide-narrow { "By" } th { "What happened" }
            } }
            tbody { @for e in events.iter().take(PAGE_ROWS) {
                tr {
                    td { (time(e.at)) }
                    td { (e.kind.as_str()) }
                    @if with_gate {
                        td { @if let Some(g) = &e.gate { a href=(gate_href(&e.namespace, g)) { (e.namespace) "/" (g) } } @else { (e.namespace) } }
                    }
                    td {
                        @if e.previous_decision.is_some() { (maybe_decision(e.previous_decision)) " → " }
                        @if e.decision.is_some() { (maybe_decision(e.decision)) }
                        @if let Some(p) = &e.passport { br; a.mono href=(passport_href(&e.namespace, p)) { (p) } }
                    }
                    td.hide-narrow { (e.actor.as_deref().unwrap_or("—")) }
                    td { (e.message) }
                }
            } }
        }
    }
}

/// The audit page body.
pub fn render(events: &[AuditEvent], namespace: Option<&str>) -> Markup {
    let q = namespace
        .filter(|n| !n.is_empty())
        .map(|n| format!("&namespace={}", seg(n)))
        .unwrap_or_default();
    html! {
        p {
            a.btn #export-audit-json href=(format!("/console/audit?format=json{q}")) download { "Export JSON" }
            a.btn #export-audit-csv href=(format!("/console/audit?format=csv{q}")) download { "Export CSV" }
            span.muted { " Also from the command line: releasepassport audit --namespace NS --output csv" }
        }
        div.panel {
            @if events.is_empty() { (empty("No governance event recorded yet.")) } @else {
                (rows(events, true))
                @if events.len() > PAGE_ROWS { p.muted { "Showing the newest " (PAGE_ROWS) " of " (events.len()) "; the exports carry all of them." } }
            }
        }
    }
}

/// The history of one gate, newest first (gate page).
pub fn gate_history(gate: &ReleaseGate) -> Markup {
    let mut events = insights::audit_from_gate(gate);
    events.reverse();
    let ns = gate.namespace().unwrap_or_default();
    html! {
        @if events.is_empty() { (empty("No governance event recorded yet.")) } @else {
            (rows(&events, false))
            p.muted { a href=(format!("/console/audit?namespace={}", seg(&ns))) { "All events of namespace " (ns) } }
        }
    }
}
