//! Metrics: release quality over time (DORA-style), and the shadow → enforce
//! graduation report. Analytics, not enforcement: the Gate decides.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use maud::{Markup, html};

use super::layout::{decision, empty, gate_href, passport_href, time};
use crate::console::state::ConsoleState;
use crate::insights::{self, DurationStats, MetricsSummary};

fn secs(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(s) if s < 120.0 => format!("{s:.0}s"),
        Some(s) if s < 7200.0 => format!("{:.0}m", s / 60.0),
        Some(s) if s < 172_800.0 => format!("{:.1}h", s / 3600.0),
        Some(s) => format!("{:.1}d", s / 86_400.0),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|r| format!("{:.0}%", r * 100.0))
        .unwrap_or_else(|| "—".into())
}

fn stats(d: &DurationStats) -> String {
    if d.count == 0 {
        return "—".into();
    }
    format!(
        "p50 {} · p90 {} ({})",
        secs(d.p50_seconds),
        secs(d.p90_seconds),
        d.count
    )
}

fn summary(m: &MetricsSummary) -> Markup {
    html! {
        div.cards {
            div.card { div.n #deployments { (m.deployments) } div.l { "Promotions (" (format!("{:.2}", m.deployments_per_day)) "/day)" } }
            div.card { div.n { (secs(m.lead_time.p50_seconds)) } div.l { "Lead time, commit → promotion (p50)" } }
            div.card { div.n { (pct(m.change_failure_rate)) } div.l { "Change failure rate" } }
            div.card { div.n { (m.rollback_recommended) } div.l { "Rollback recommended" } }
            div.card { div.n { (secs(m.time_to_restore.p50_seconds)) } div.l { "Time to restore (p50)" } }
            div.card { div.n { (secs(m.approval_wait.p50_seconds)) } div.l { "Approval wait (p50)" } }
            div.card { div.n { (m.evidence.mean_confidence.map(|c| format!("{c:.0}%")).unwrap_or_else(|| "—".into())) } div.l { "Mean confidence" } }
            div.card { div.n { (pct(m.evidence.fresh_ratio)) } div.l { "Evidence fresh" } }
        }
    }
}

/// The metrics page body.
pub fn render(
    state: &ConsoleState,
    visible: &BTreeSet<String>,
    now: Timestamp,
    days: i64,
) -> Markup {
    let gates = state.gates_in(visible);
    let passports = state.passports_in(visible);
    let gate_refs: Vec<_> = gates.iter().map(|g| g.as_ref()).collect();
    let passport_refs: Vec<_> = passports.iter().map(|p| p.as_ref()).collect();
    let m = insights::release_metrics(
        &gate_refs,
        &passport_refs,
        now,
        SignedDuration::from_hours(24 * days),
    );
    let grad = insights::graduation(&gate_refs, &passport_refs);
    html! {
        form.filters method="get" action="/console/metrics" {
            label { "Window"
                select name="window" {
                    @for d in [7, 30, 90] { option value=(format!("{d}d")) selected[d == days] { "last " (d) " days" } }
                }
            }
            button.secondary type="submit" { "Show" }
        }
        (summary(&m.total))
        h2 { "Hold reasons" }
        div.panel {
            @if m.total.hold_reasons.is_empty() { (empty("No release was held in this window.")) } @else {
                table #hold-reasons { thead { tr { th { "Check" } th { "Label" } th { "Passports" } } }
                    tbody { @for h in m.total.hold_reasons.iter().take(15) { tr { td { (h.rule) } td { (h.label) } td { (h.count) } } } } }
            }
        }
        h2 { "Decisions" }
        div.panel {
            @if m.total.decisions.is_empty() { (empty("No passport in this window.")) } @else {
                p { @for (d, n) in &m.total.decisions { (decision(*d)) " " (n) "   " } }
            }
        }
        h2 { "Service scorecards" }
        div.panel {
            @if m.groups.is_empty() { (empty("No gated service yet.")) } @else {
                table #scorecards {
                    thead { tr { th { "Service" } th { "Env" } th { "Promotions" } th.hide-narrow { "Lead time" } th { "Change failure" } th.hide-narrow { "Time to restore" } th.hide-narrow { "Approval wait" } th { "Confidence" } } }
                    tbody { @for g in &m.groups {
                        tr {
                            td { (g.namespace) "/" (g.service) }
                            td { (g.environment) }
                            td { (g.metrics.deployments) }
                            td.hide-narrow { (stats(&g.metrics.lead_time)) }
                            td { (pct(g.metrics.change_failure_rate)) }
                            td.hide-narrow { (stats(&g.metrics.time_to_restore)) }
                            td.hide-narrow { (stats(&g.metrics.approval_wait)) }
                            td { (g.metrics.evidence.mean_confidence.map(|c| format!("{c:.0}%")).unwrap_or_else(|| "—".into())) }
                        }
                    } }
                }
            }
        }
        h2 { "Connector reliability" }
        div.panel {
            @if m.total.connectors.is_empty() { (empty("No evidence in this window.")) } @else {
                table { thead { tr { th { "Connector" } th { "Fresh" } th { "Stale" } th { "Missing" } th { "Reliability" } } }
                    tbody { @for c in &m.total.connectors { tr { td { (c.connector) } td { (c.fresh) } td { (c.stale) } td { (c.missing) } td { (pct(c.reliability)) } } } } }
            }
        }
        h2 #graduation { "Shadow → enforce graduation" }
        div.panel {
            @if grad.gates.is_empty() { (empty("No gate runs in shadow mode.")) } @else {
                p.muted { "For each shadow gate: the promotions enforce mode would have denied, and why. Ready needs at least " (grad.min_passports) " shadow passports and no unresolved would-be denial among the last " (grad.window) "." }
                @for g in &grad.gates {
                    @let verdict = if g.ready_to_enforce { "ready to enforce" } else { "not ready" };
                    h3 { a href=(gate_href(&g.namespace, &g.gate)) { (g.namespace) "/" (g.gate) } " · " (g.service) " → " (g.environment) " · "
                        span class=(if g.ready_to_enforce { "s-pass" } else { "s-fail" }) { (verdict) } }
                    p { (g.reason) " (" (g.would_deny_count) " of " (g.passports) " passports would have been denied)" }
                    @if !g.would_deny.is_empty() {
                        table { thead { tr { th { "When" } th { "Release" } th { "Decision" } th { "Why" } th.hide-narrow { "Failing checks" } } }
                            tbody { @for w in g.would_deny.iter().take(10) {
                                tr {
                                    td { (time(w.generated_at)) }
                                    td { a href=(passport_href(&g.namespace, &w.passport)) { (w.release) } @if w.resolved { span.muted { " (later allowed)" } } }
                                    td { (decision(w.decision)) }
                                    td { (w.why) }
                                    td.hide-narrow { (w.failing_checks.join(", ")) }
                                }
                            } } }
                    }
                }
            }
        }
        p.muted { "Window: last " (days) " days, " (passports.len()) " passports in " (gates.iter().filter_map(|g| g.namespace()).collect::<BTreeSet<_>>().len()) " namespaces. Prometheus metrics of the same events are on the operator's /metrics endpoint (docs/metrics.md)." }
    }
}
