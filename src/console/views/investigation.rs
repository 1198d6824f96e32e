//! The investigation panel of a release page (see
//! [`crate::insights::investigation`]): deterministic, from the evidence.

use maud::{Markup, html};

use super::layout::{decision, state, time};
use crate::insights::investigation::{Investigation, Signal};

pub fn section(inv: &Investigation) -> Markup {
    html! {
        h2 { "Investigation" }
        div.panel #investigation {
            p.muted { "Built from this passport and the gate's earlier ones; it explains the "
                (decision(inv.decision)) " and never changes it." }
            h3 { "Why it does not pass" }
            ol #findings { @for f in &inv.findings {
                li data-rule=(f.rule_id) {
                    (state(f.state)) " " strong { (f.rule_id) } " (asks for " (f.on_fail.as_str()) ") — " (f.explanation)
                    br; span.muted {
                        @if f.failing_passports > 1 {
                            "Not passing in the last " (f.failing_passports) " passports, since " (time(f.failing_since))
                        } @else { "First passport with it not passing." }
                    }
                }
            } }
            @if !inv.signals.is_empty() {
                h3 { "Correlated signals" }
                ul #signals { @for s in &inv.signals { li { (signal(s)) } } }
            }
            h3 { "Since the last ALLOW" }
            @match &inv.since_last_allow {
                Some(c) => {
                    p { "Last ALLOW: " strong { (c.allowed_release) } " at " (time(c.allowed_at)) "." }
                    @if c.changes.is_empty() { p.muted { "Nothing in the passport changed." } } @else {
                        table #changes {
                            thead { tr { th { "What" } th { "Then" } th { "Now" } } }
                            tbody { @for ch in &c.changes { tr { td { (ch.what) } td.mono { (ch.before) } td.mono { (ch.after) } } } }
                        }
                    }
                },
                None => p.muted #changes-none { "This gate has no earlier ALLOW to compare with." },
            }
        }
    }
}

/// The language-model summary, labelled, beside the deterministic investigation.
pub fn model_summary(summary: &crate::console::llm::Summary) -> Markup {
    use crate::console::llm::Summary;
    html! {
        h2 { "Language-model summary" }
        div.panel #llm-summary {
            p.muted #llm-label { "Language-model summary (not part of the decision): written by the model the operator configured, from the redacted investigation above only. The decision and the investigation stand as they are." }
            @match summary {
                Summary::Text(t) => p #llm-text { (t) },
                Summary::Unavailable(why) => p.muted #llm-unavailable { "Summary unavailable: " (why) },
            }
        }
    }
}

fn signal(s: &Signal) -> Markup {
    match s {
        Signal::RiseAfterSync {
            rule_id,
            observed,
            before,
            sync_connector,
            synced_at,
            observed_at,
        } => html! {
            strong { (rule_id) } " at " (observed)
            @if let Some(b) = before { " (" (b) " at the last ALLOW)" }
            " observed " (time(*observed_at)) ", after the " (sync_connector) " sync observed " (time(*synced_at)) "."
        },
        Signal::IncidentOpen { rule_id, observed } => html! {
            "An incident is open: " strong { (rule_id) } " observed " (observed) "."
        },
        Signal::StaleConnector {
            connector,
            observed_at,
            max_age_seconds,
        } => html! {
            "The " strong { (connector) } " evidence is stale: observed " (time(*observed_at))
            @if let Some(m) = max_age_seconds { ", maximum age " (m) "s" } "."
        },
    }
}
