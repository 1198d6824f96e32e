//! Releases / Passports: the list, and the truth screen of one release.

use std::collections::BTreeSet;

use kube::ResourceExt;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{decision, empty, gate_href, passport_href, seg, state, time};
use crate::api::{Decision, Passport, ResultState};
use crate::console::state::ConsoleState;

/// Rows per page of the list.
pub const PAGE_SIZE: usize = 100;

/// Filters of the list, from the query string.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub namespace: Option<String>,
    pub service: Option<String>,
    pub decision: Option<String>,
    pub page: Option<usize>,
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// The passport list.
pub fn list(state: &ConsoleState, visible: &BTreeSet<String>, q: &ListQuery) -> Markup {
    let all = state.passports_in(visible);
    let services: BTreeSet<&str> = all.iter().map(|p| p.spec.service.as_str()).collect();
    let rows: Vec<_> = all
        .iter()
        .filter(|p| nonempty(&q.namespace).is_none_or(|n| p.namespace().as_deref() == Some(n)))
        .filter(|p| nonempty(&q.service).is_none_or(|s| p.spec.service == s))
        .filter(|p| nonempty(&q.decision).is_none_or(|d| p.spec.decision.as_str() == d))
        .collect();
    let pages = rows.len().div_ceil(PAGE_SIZE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let shown = rows.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE);
    let link = |p: usize| {
        let mut s = format!("/console/passports?page={p}");
        for (k, v) in [
            ("namespace", &q.namespace),
            ("service", &q.service),
            ("decision", &q.decision),
        ] {
            if let Some(v) = nonempty(v) {
                s.push_str(&format!("&{k}={}", seg(v)));
            }
        }
        s
    };
    html! {
        form.filters method="get" action="/console/passports" {
            label { "Namespace"
                select name="namespace" {
                    option value="" { "all" }
                    @for ns in visible {
                        option value=(ns) selected[nonempty(&q.namespace) == Some(ns.as_str())] { (ns) }
                    }
                }
            }
            label { "Service"
                select name="service" {
                    option value="" { "all" }
                    @for s in &services {
                        option value=(s) selected[nonempty(&q.service) == Some(*s)] { (s) }
                    }
                }
            }
            label { "Decision"
                select name="decision" {
                    option value="" { "all" }
                    @for d in Decision::ALL {
                        option value=(d.as_str()) selected[nonempty(&q.decision) == Some(d.as_str())] { (d.as_str()) }
                    }
                }
            }
            button.secondary type="submit" { "Filter" }
        }
        div.panel {
            @if rows.is_empty() { (empty("No passport matches.")) } @else {
                table #passports {
                    thead { tr {
                        th { "Decision" } th { "Service" } th { "Release" } th.hide-narrow { "Namespace" }
                        th.hide-narrow { "Env" } th.hide-narrow { "Mode" } th { "Confidence" } th { "Generated" }
                    } }
                    tbody { @for p in shown {
                        @let ns = p.namespace().unwrap_or_default();
                        tr {
                            td { (decision(p.spec.decision)) }
                            td { (p.spec.service) }
                            td { a href=(passport_href(&ns, &p.name_any())) { (p.spec.release) } }
                            td.hide-narrow { (ns) }
                            td.hide-narrow { (p.spec.environment) }
                            td.hide-narrow { (p.spec.mode.as_str()) }
                            td { (p.spec.confidence) "%" }
                            td { (time(p.spec.generated_at)) }
                        }
                    } }
                }
                p.muted { (rows.len()) " passports · page " (page) " of " (pages) " "
                    @if page > 1 { a href=(link(page - 1)) { "← newer" } " " }
                    @if page < pages { a href=(link(page + 1)) { "older →" } }
                }
            }
        }
    }
}

/// Signature check shown on the passport page.
pub enum SignatureStatus {
    Verified {
        key_id: String,
        subjects: Vec<String>,
    },
    Failed {
        check: String,
        message: String,
    },
}

/// One passport.
pub fn detail(
    p: &Passport,
    signature: &SignatureStatus,
    investigation: Option<(
        &crate::insights::Investigation,
        Option<&crate::console::llm::Summary>,
    )>,
) -> Markup {
    let s = &p.spec;
    let ns = p.namespace().unwrap_or_default();
    let name = p.name_any();
    let mut results: Vec<_> = s.policy_results.iter().collect();
    // Failing and incomplete checks first, in policy order otherwise.
    results.sort_by_key(|r| r.state == ResultState::Pass);
    let mut timeline: Vec<_> = s.evidence.iter().collect();
    timeline.sort_by_key(|e| e.observed_at);
    let export = |f: &str| format!("{}/export?format={f}", passport_href(&ns, &name));
    html! {
        div.panel {
            p { (decision(s.decision)) " " strong { (s.service) " " (s.release) } " → " (s.environment)
                " · mode " strong { (s.mode.as_str()) } " · confidence " strong #confidence { (s.confidence) "%" } }
            dl.kv {
                dt { "Passport" } dd.mono { (ns) "/" (name) }
                @if let Some(g) = &s.gate {
                    dt { "Gate" } dd { a href=(gate_href(&g.namespace, &g.name)) { (g.namespace) "/" (g.name) }
                        @if let Some(gen_) = g.generation { span.muted { " (generation " (gen_) ")" } } }
                }
                dt { "Generated" } dd { (time(s.generated_at)) " by " (s.actor) }
                dt { "Image" } dd.mono { (s.artifact.image) }
                @if let Some(sha) = &s.artifact.source_sha { dt { "Source" } dd.mono { (sha) } }
                @for (k, v) in &s.artifact.build_run { dt { "Build " (k) } dd.mono { (v) } }
                dt { "Policy" } dd { (s.policy.name) " " span.mono.muted { (s.policy.hash) } }
                dt { "Signature" }
                dd #signature {
                    @match signature {
                        SignatureStatus::Verified { key_id, subjects } => {
                            span.s-pass { "verified" } " (in-toto attestation in a DSSE envelope, Ed25519 key " span.mono { (key_id) } "; subject "
                            span.mono { (subjects.join(", ")) } ")"
                        },
                        SignatureStatus::Failed { check, message } => { span.s-fail { "not verified: " (check) } " — " (message) },
                    }
                }
            }
            p {
                a.btn href=(export("json")) download { "Export JSON" }
                a.btn href=(export("markdown")) download { "Export Markdown" }
                a.btn href=(export("csv")) download { "Export CSV" }
                a.btn href=(export("dsse")) download { "Attestation (.intoto.jsonl)" }
                a.btn.secondary href=(export("bundle")) download { "Audit bundle" }
            }
        }
        h2 { "Next actions" }
        div.panel {
            @if s.next_actions.is_empty() { (empty("None: nothing blocks this release.")) } @else {
                ol.actions #next-actions { @for a in &s.next_actions { li { (a) } } }
            }
        }
        @if let Some((inv, summary)) = investigation {
            (super::investigation::section(inv))
            @if let Some(summary) = summary { (super::investigation::model_summary(summary)) }
        }
        h2 { "Policy results" }
        div.panel {
            table #results {
                thead { tr { th { "Check" } th { "State" } th { "Observed" } th { "Threshold" } th.hide-narrow { "Source" } th.hide-narrow { "Asks for" } th { "Why" } } }
                tbody { @for r in &results {
                    tr data-state=(format!("{:?}", r.state).to_lowercase()) {
                        td { strong { (r.id) } br; span.muted { (r.label) } @if !r.required { span.muted { " (optional)" } } }
                        td { (state(r.state)) }
                        td.mono { (r.observed.as_deref().unwrap_or("—")) }
                        td.mono { (r.threshold.as_deref().unwrap_or("—")) }
                        td.hide-narrow.mono { (r.source.as_deref().unwrap_or("—")) }
                        td.hide-narrow { (r.on_fail.as_str()) }
                        td { (r.reason.as_deref().unwrap_or("")) }
                    }
                } }
            }
        }
        h2 { "Evidence timeline" }
        div.panel {
            @if timeline.is_empty() { (empty("No evidence document was read.")) } @else {
                table {
                    thead { tr { th { "Observed" } th { "Connector" } th { "Status" } th.hide-narrow { "Max age" } th.hide-narrow { "Age at decision" } th { "Facts" } } }
                    tbody { @for e in &timeline {
                        @let age = s.generated_at.duration_since(e.observed_at).as_secs();
                        tr {
                            td { (time(e.observed_at)) }
                            td { (e.connector) @if !e.scope.is_empty() { br; span.muted.mono { (e.scope.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")) } } }
                            td class=(if e.status == "fresh" { "s-pass" } else { "s-stale" }) { (e.status) }
                            td.hide-narrow { (e.max_age_seconds.map(|m| format!("{m}s")).unwrap_or_else(|| "300s (default)".into())) }
                            td.hide-narrow { (age.max(0)) "s" }
                            td { (e.fact_count) }
                        }
                    } }
                }
            }
        }
        h2 { "Rollback posture" }
        div.panel {
            @match &s.rollback {
                Some(r) => p {
                    @if r.ready { span.s-pass { "ready" } } @else { span.s-fail { "not ready" } }
                    " · previous release " strong { (r.release) }
                    @if let Some(i) = &r.image { br; span.mono { (i) } } @else { " · no rollback image attached" }
                },
                None => (empty("No rollback target declared.")),
            }
        }
        h2 { "Approvals and waivers" }
        div.panel {
            @if s.approvals.is_empty() && s.waivers.is_empty() { (empty("No approval or waiver.")) }
            @if !s.approvals.is_empty() {
                table { thead { tr { th { "Approved by" } th { "Reference" } th { "When" } } }
                    tbody { @for a in &s.approvals { tr { td { (a.actor) } td { (a.reference.as_deref().unwrap_or("—")) } td { (super::layout::maybe_time(a.approved_at)) } } } } }
            }
            @if !s.waivers.is_empty() {
                table { thead { tr { th { "Waived check" } th { "Reason" } th { "By" } th { "Expires" } th { "State" } } }
                    tbody { @for w in &s.waivers { tr { td { (w.rule_id) } td { (w.reason) } td { (w.actor) } td { (time(w.expires_at)) } td { (w.state) } } } } }
            }
            @if let Some(c) = &s.canary {
                p { "Canary: steps of at most " (c.max_traffic_step_percent.map(|v| format!("{v}%")).unwrap_or_else(|| "—".into()))
                    ", watch " (c.watch_window_seconds.map(|v| format!("{v}s")).unwrap_or_else(|| "—".into())) " after each step." }
            }
        }
        h2 { "Decision trace" }
        div.panel {
            ol #trace { @for t in &s.trace { li { span.muted { (t.step) } " " (t.message) } } }
        }
    }
}
