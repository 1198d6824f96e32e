//! Gate: the gates, and for one gate its policy, approvals, waivers, decision
//! history and the simulator.

use std::collections::BTreeSet;

use kube::ResourceExt;
use maud::{Markup, html};

use super::layout::{
    decision, empty, gate_href, maybe_decision, maybe_time, passport_href, state, time,
};
use crate::api::{Passport, Policy, PolicyRule, ReleaseGate};
use crate::console::state::ConsoleState;
use crate::engine::Evaluation;

/// All gates the user can read.
pub fn list(state: &ConsoleState, visible: &BTreeSet<String>) -> Markup {
    let gates = state.gates_in(visible);
    html! {
        div.panel {
            @if gates.is_empty() { (empty("No ReleaseGate yet.")) } @else {
                table #gates {
                    thead { tr {
                        th { "Gate" } th { "Service" } th { "Release" } th.hide-narrow { "Env" }
                        th.hide-narrow { "Mode" } th { "Decision" } th.hide-narrow { "Confidence" } th { "Evaluated" }
                    } }
                    tbody { @for g in &gates {
                        @let ns = g.namespace().unwrap_or_default();
                        @let st = g.status.clone().unwrap_or_default();
                        tr {
                            td { a href=(gate_href(&ns, &g.name_any())) { (ns) "/" (g.name_any()) } }
                            td { (g.spec.service) }
                            td { (g.spec.release) }
                            td.hide-narrow { (g.spec.environment) }
                            td.hide-narrow { (g.spec.mode.as_str()) }
                            td { (maybe_decision(st.decision)) }
                            td.hide-narrow { (st.confidence.map(|c| format!("{c}%")).unwrap_or_else(|| "—".into())) }
                            td { (maybe_time(st.evaluated_at)) }
                        }
                    } }
                }
            }
        }
    }
}

/// What the simulator shows after a run.
pub enum SimulatorResult {
    None,
    Failed(String),
    Ran {
        evaluation: Box<Evaluation>,
        notes: Vec<String>,
    },
}

/// Everything the gate page needs.
pub struct GatePage<'a> {
    pub gate: &'a ReleaseGate,
    pub policy: Option<&'a Policy>,
    pub passports: &'a [std::sync::Arc<Passport>],
    pub csrf: &'a str,
    pub policy_text: &'a str,
    pub result: SimulatorResult,
    pub history: Markup,
    /// The actions the person may take here ([`super::actions::panel`]).
    pub actions: Markup,
}

fn rule_row(r: &PolicyRule) -> Markup {
    let condition = match (&r.condition, &r.expression) {
        (Some(c), _) => {
            let v = c
                .value
                .as_ref()
                .map(|v| v.to_string())
                .or_else(|| {
                    c.values
                        .as_ref()
                        .map(|vs| serde_json::Value::Array(vs.clone()).to_string())
                })
                .unwrap_or_default();
            let op = serde_json::to_value(c.operator)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            format!("{} {op} {v}", r.fact)
        }
        (None, Some(e)) => format!("CEL: {e}"),
        (None, None) => r.fact.clone(),
    };
    html! {
        tr {
            td { strong { (r.id) } br; span.muted { (r.label) } }
            td.mono { (r.connector) }
            td.mono { (condition) }
            td { (r.on_fail.as_str()) }
            td { @if r.required { "required" } @else { "optional" } }
            td.hide-narrow { (r.max_age_seconds.map(|s| format!("{s}s")).unwrap_or_else(|| "—".into())) }
        }
    }
}

/// One gate.
pub fn detail(page: &GatePage<'_>) -> Markup {
    let g = page.gate;
    let ns = g.namespace().unwrap_or_default();
    let name = g.name_any();
    let st = g.status.clone().unwrap_or_default();
    let current = page.passports.first();
    html! {
        div.panel {
            p { (maybe_decision(st.decision)) " " strong { (g.spec.service) " " (g.spec.release) } " → " (g.spec.environment)
                " · mode " strong { (st.mode.unwrap_or(g.spec.mode).as_str()) }
                @if let Some(by) = &st.enforced_by { " (" (by) ")" }
                @if let Some(c) = st.confidence { " · confidence " (c) "%" } }
            dl.kv {
                dt { "Gate" } dd.mono { (ns) "/" (name) }
                dt { "Policy" } dd { (g.spec.policy_ref.name) }
                dt { "Image" } dd.mono { (g.spec.artifact.image) }
                dt { "Latest passport" } dd { @if let Some(p) = &st.passport_name { a href=(passport_href(&ns, p)) { (p) } } @else { "—" } }
                dt { "Evaluated" } dd { (maybe_time(st.evaluated_at)) }
                dt { "Next evaluation" } dd { (maybe_time(st.next_evaluation_at)) }
                @if let Some(w) = st.watch_until { dt { "Post-deploy watch until" } dd { (time(w)) } }
                @for c in &st.conditions {
                    dt { (c.type_) } dd { (c.status) " · " (c.reason) ": " (c.message) }
                }
            }
            @if !st.failing_checks.is_empty() {
                p { "Failing checks: " strong #failing-checks { (st.failing_checks.join(", ")) } }
            }
        }
        (page.actions)
        h2 { "Approvals and waivers" }
        div.panel {
            @let approvals = current.map(|c| c.spec.approvals.as_slice()).unwrap_or_default();
            @let waivers = current.map(|c| c.spec.waivers.as_slice()).unwrap_or_default();
            @if approvals.is_empty() && waivers.is_empty() { (empty("No approval or waiver for this release.")) }
            @if !approvals.is_empty() {
                table #approvals {
                    thead { tr { th { "Approved by" } th { "Reference" } th { "At" } th { "Counts" } } }
                    tbody { @for a in approvals { tr {
                        td { strong { (a.actor) } } td { (a.reference.as_deref().unwrap_or("—")) } td { (maybe_time(a.approved_at)) }
                        td { @if a.counted { "yes" } @else { "no: " (a.reason.as_deref().unwrap_or("—")) } }
                    } } }
                }
            }
            @if !waivers.is_empty() {
                table #waivers {
                    thead { tr { th { "Rule" } th { "Waived by" } th { "Expires" } th { "State" } th { "Reason" } } }
                    tbody { @for w in waivers { tr {
                        td { (w.rule_id) } td { strong { (w.actor) } } td { (time(w.expires_at)) }
                        td { (w.state) @if let Some(r) = &w.refusal { " (" (r) ")" } } td { (w.reason) }
                    } } }
                }
            }
            @if !st.proven_releases.is_empty() {
                p { "Proven releases (rollback targets): "
                    @for (i, r) in st.proven_releases.iter().enumerate() { @if i > 0 { ", " } strong { (r.release) } " " span.mono { (r.digest) } } }
            }
            p.muted { "Approvals and waivers are ReleaseApproval and ReleaseWaiver objects, created by people holding the approve or waive verb on the gate (releasepassport approve, releasepassport waive, or Approve above)." }
        }
        h2 { "Policy rules" }
        div.panel {
            @match page.policy {
                Some(p) => {
                    table #rules {
                        thead { tr { th { "Rule" } th { "Connector" } th { "Condition" } th { "On fail" } th { "Required" } th.hide-narrow { "Max age" } } }
                        tbody {
                            @for r in &p.spec.rules { (rule_row(r)) }
                            @if let Some(pd) = &p.spec.post_deploy { @for r in &pd.rules { (rule_row(r)) } }
                        }
                    }
                    @if let Some(m) = p.spec.min_confidence { p { "Minimum confidence: " (m) "%" } }
                },
                None => (empty("The Policy this gate names is not found.")),
            }
        }
        h2 { "Decision history" }
        div.panel {
            (page.history)
            @if !page.passports.is_empty() {
                table {
                    thead { tr { th { "When" } th { "Decision" } th { "Release" } th { "Confidence" } th { "Passport" } } }
                    tbody { @for p in page.passports.iter().take(20) {
                        tr {
                            td { (time(p.spec.generated_at)) }
                            td { (decision(p.spec.decision)) }
                            td { (p.spec.release) }
                            td { (p.spec.confidence) "%" }
                            td { a href=(passport_href(&ns, &p.name_any())) { (p.name_any()) } }
                        }
                    } }
                }
            }
        }
        h2 #simulator { "Simulator" }
        div.panel {
            p.muted { "Edit the policy and re-evaluate this release against the evidence its connectors give now. Nothing is written or signed." }
            form method="post" action=(format!("{}/simulate#simulator", gate_href(&ns, &name))) {
                input type="hidden" name="csrf" value=(page.csrf);
                label for="policy" { "Policy spec (YAML)" }
                textarea #policy name="policy" spellcheck="false" { (page.policy_text) }
                button #simulate type="submit" { "Simulate" }
            }
            @match &page.result {
                SimulatorResult::None => {},
                SimulatorResult::Failed(msg) => div.error #simulation-error role="alert" { (msg) },
                SimulatorResult::Ran { evaluation, notes } => {
                    @let p = &evaluation.passport;
                    div.ok #simulation role="status" {
                        "Simulated decision: " span #simulated-decision { (decision(p.decision)) }
                        " · confidence " (p.confidence) "%"
                        @if let Some(c) = current {
                            " · current decision " (decision(c.spec.decision))
                        }
                    }
                    @for n in notes { p.muted { (n) } }
                    table {
                        thead { tr { th { "Check" } th { "Simulated" } th { "Current" } th { "Observed" } th { "Threshold" } } }
                        tbody { @for r in &p.policy_results {
                            @let was = current.and_then(|c| c.spec.policy_results.iter().find(|x| x.id == r.id));
                            tr {
                                td { (r.id) }
                                td { (state(r.state)) }
                                td { @if let Some(w) = was { (state(w.state)) } @else { span.muted { "new" } } }
                                td.mono { (r.observed.as_deref().unwrap_or("—")) }
                                td.mono { (r.threshold.as_deref().unwrap_or("—")) }
                            }
                        } }
                    }
                    @if !p.next_actions.is_empty() { ol.actions { @for a in &p.next_actions { li { (a) } } } }
                },
            }
        }
    }
}
