//! Metrics: release quality over time (DORA-style), and the shadow → enforce
//! graduation report. Analytics, not enforcement: the Gate decides.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use maud::{Markup, html};

use super::layout::{decision, empty, gate_href, passport_href, time};
use crate::console::state::ConsoleState;
use crate::insights::{self, DurationStats, GroupMetrics, MetricsSummary, Period, ReleaseMetrics};

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

/// The release metrics of the visible namespaces over the last `days`:
/// the same function `releasepassport report metrics` calls.
pub fn compute(
    state: &ConsoleState,
    visible: &BTreeSet<String>,
    now: Timestamp,
    days: i64,
) -> ReleaseMetrics {
    let gates = state.gates_in(visible);
    let passports = state.passports_in(visible);
    let gate_refs: Vec<_> = gates.iter().map(|g| g.as_ref()).collect();
    let passport_refs: Vec<_> = passports.iter().map(|p| p.as_ref()).collect();
    insights::release_metrics(
        &gate_refs,
        &passport_refs,
        now,
        SignedDuration::from_hours(24 * days),
    )
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
    let m = compute(state, visible, now, days);
    let grad = insights::graduation(&gate_refs, &passport_refs);
    html! {
        form.filters method="get" action="/console/metrics" {
            label { "Window"
                select name="window" {
                    @for d in [7, 30, 90] { option value=(format!("{d}d")) selected[d == days] { "last " (d) " days" } }
                }
            }
            button.secondary type="submit" { "Show" }
            " " a #metrics-csv href=(format!("/console/metrics.csv?window={days}d")) download { "Download scorecards (CSV)" }
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
        @for (i, g) in m.groups.iter().enumerate() { (scorecard(i, g)) }
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

/// One service's scorecard: its numbers (each with its exact value in
/// `data-value`) and its charts.
fn scorecard(i: usize, g: &GroupMetrics) -> Markup {
    let m = &g.metrics;
    let exact = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let rows: [(&str, &str, String, String); 10] = [
        (
            "deployments",
            "Promotions",
            m.deployments.to_string(),
            m.deployments.to_string(),
        ),
        (
            "deployments_per_day",
            "Promotions per day",
            format!("{:.2}", m.deployments_per_day),
            m.deployments_per_day.to_string(),
        ),
        (
            "lead_time_p50_seconds",
            "Lead time (p50)",
            secs(m.lead_time.p50_seconds),
            exact(m.lead_time.p50_seconds),
        ),
        (
            "change_failure_rate",
            "Change failure rate",
            pct(m.change_failure_rate),
            exact(m.change_failure_rate),
        ),
        (
            "failed_deployments",
            "Failed promotions",
            m.failed_deployments.to_string(),
            m.failed_deployments.to_string(),
        ),
        (
            "time_to_restore_p50_seconds",
            "Time to restore (p50)",
            secs(m.time_to_restore.p50_seconds),
            exact(m.time_to_restore.p50_seconds),
        ),
        (
            "approval_wait_p50_seconds",
            "Approval wait (p50)",
            secs(m.approval_wait.p50_seconds),
            exact(m.approval_wait.p50_seconds),
        ),
        (
            "passports",
            "Passports",
            m.evidence.passports.to_string(),
            m.evidence.passports.to_string(),
        ),
        (
            "mean_confidence",
            "Mean confidence",
            m.evidence
                .mean_confidence
                .map(|c| format!("{c:.0}%"))
                .unwrap_or_else(|| "—".into()),
            exact(m.evidence.mean_confidence),
        ),
        (
            "evidence_fresh_ratio",
            "Evidence fresh",
            pct(m.evidence.fresh_ratio),
            exact(m.evidence.fresh_ratio),
        ),
    ];
    let name = format!("{} {} ({})", g.service, g.environment, g.namespace);
    let period = match m.timeline.first().map(|p| p.seconds) {
        Some(s) if s > 86_400 => "week",
        _ => "day",
    };
    html! {
        section.scorecard.panel data-namespace=(g.namespace) data-service=(g.service) data-environment=(g.environment) {
            h3 { "Scorecard: " (name) }
            dl.cards {
                @for (key, label, shown, value) in &rows {
                    div.card { dd.n data-metric=(key) data-value=(value) { (shown) } dt.l { (label) } }
                }
            }
            p { "Hold reasons: "
                @if m.hold_reasons.is_empty() { span.muted { "none in this window" } } @else {
                    @for (j, h) in m.hold_reasons.iter().take(5).enumerate() {
                        @if j > 0 { ", " }
                        span.hold-reason data-rule=(h.rule) data-count=(h.count) { (h.label) " (" (h.count) ")" }
                    }
                }
            }
            p.muted { "Promotions per " (period) " (darker: later followed by a rollback recommendation)" }
            (bar_chart(&format!("chart-{i}-promotions"), &format!("Promotions per period, {name}"), &m.timeline,
                |p| p.deployments, Some(|p: &Period| p.failed_deployments), "promotions", "of which failed"))
            p.muted { "Held passports per " (period) }
            (bar_chart(&format!("chart-{i}-held"), &format!("Held passports per period, {name}"), &m.timeline,
                |p| p.held, None::<fn(&Period) -> u64>, "held passports", ""))
        }
    }
}

/// A bar chart as inline SVG, drawn on the server (no script, no external
/// asset), with a title and a text description of every bar for screen
/// readers. `part` draws a darker share of each bar (failed promotions).
fn bar_chart(
    id: &str,
    title: &str,
    periods: &[Period],
    value: impl Fn(&Period) -> u64,
    part: Option<impl Fn(&Period) -> u64>,
    what: &str,
    part_what: &str,
) -> Markup {
    const W: f64 = 600.0;
    const H: f64 = 120.0;
    const AXIS: f64 = 16.0;
    let max = periods.iter().map(&value).max().unwrap_or(0).max(1) as f64;
    let n = periods.len().max(1) as f64;
    let slot = W / n;
    let bar = (slot * 0.8).max(1.0);
    let y = |v: u64| (H - AXIS) * (v as f64 / max);
    let day = |p: &Period| p.start.strftime("%Y-%m-%d").to_string();
    let desc: Vec<String> = periods
        .iter()
        .filter(|p| value(p) > 0)
        .map(|p| match &part {
            Some(f) => format!("{}: {} {what}, {} {part_what}", day(p), value(p), f(p)),
            None => format!("{}: {} {what}", day(p), value(p)),
        })
        .collect();
    let desc = if desc.is_empty() {
        format!("No {what} in this window.")
    } else {
        format!("Periods with {what} (period start): {}.", desc.join("; "))
    };
    html! {
        svg.chart id=(id) role="img" aria-labelledby=(format!("{id}-title {id}-desc")) viewBox=(format!("0 0 {W} {H}")) width="100%" height=(H) xmlns="http://www.w3.org/2000/svg" {
            title id=(format!("{id}-title")) { (title) }
            desc id=(format!("{id}-desc")) { (desc) }
            line x1="0" y1=(H - AXIS) x2=(W) y2=(H - AXIS) stroke="currentColor" stroke-width="1" {}
            text x="0" y=(H - 2.0) font-size="11" fill="currentColor" { (periods.first().map(day).unwrap_or_default()) }
            text x=(W) y=(H - 2.0) font-size="11" fill="currentColor" text-anchor="end" { (periods.last().map(day).unwrap_or_default()) }
            text x="2" y="11" font-size="11" fill="currentColor" { "max " (max as u64) }
            @for (k, p) in periods.iter().enumerate() {
                @let v = value(p);
                @if v > 0 {
                    @let h = y(v);
                    rect.bar x=(format!("{:.1}", k as f64 * slot + (slot - bar) / 2.0)) y=(format!("{:.1}", H - AXIS - h)) width=(format!("{bar:.1}")) height=(format!("{h:.1}")) fill="var(--allow, #2f855a)" data-value=(v) {
                        title { (day(p)) ": " (v) " " (what) }
                    }
                    @if let Some(f) = &part {
                        @let pv = f(p);
                        @if pv > 0 {
                            @let ph = y(pv);
                            rect.bar-part x=(format!("{:.1}", k as f64 * slot + (slot - bar) / 2.0)) y=(format!("{:.1}", H - AXIS - ph)) width=(format!("{bar:.1}")) height=(format!("{ph:.1}")) fill="var(--block, #c53030)" data-value=(pv) {
                                title { (day(p)) ": " (pv) " " (part_what) }
                            }
                        }
                    }
                }
            }
        }
    }
}
