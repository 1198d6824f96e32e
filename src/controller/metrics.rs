//! Operator metrics, in the Prometheus text format on the admin port.
//!
//! Two kinds: how the operator works (reconciles, connectors, leader) and
//! release metrics (decisions, promotions, lead time, rollbacks, restore,
//! hold reasons, approval wait, evidence). Release metrics are labelled by
//! the gate's `namespace`, `service` and `environment`, so their
//! cardinality is bounded by the number of ReleaseGates (times the six
//! decisions and two modes for `decisions_total`); `hold_reasons_total` by
//! the rule ids of the Policies; `connector_evidence_total` by the five
//! connector kinds times three states. docs/metrics.md lists every metric.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub namespace: String,
    pub service: String,
    pub environment: String,
    pub mode: String,
    pub decision: String,
}

/// The release a metric is about: one gate's service in one environment.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReleaseLabels {
    pub namespace: String,
    pub service: String,
    pub environment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectorEvidenceLabels {
    pub connector: String,
    /// `fresh`, `stale` or `missing`.
    pub status: String,
}

type GaugeF64 = Gauge<f64, std::sync::atomic::AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectorLabels {
    pub connector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectorErrorLabels {
    pub connector: String,
    pub health: String,
}

/// Every metric the controller records.
#[derive(Clone)]
pub struct Metrics {
    pub reconciles: Family<ResultLabels, Counter>,
    pub reconcile_errors: Family<ReasonLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub decisions: Family<DecisionLabels, Counter>,
    pub passports_written: Counter,
    pub passports_deleted: Counter,
    pub status_conflicts: Counter,
    pub connector_duration: Family<ConnectorLabels, Histogram>,
    pub connector_errors: Family<ConnectorErrorLabels, Counter>,
    pub evidence_age: Family<ConnectorLabels, GaugeF64>,
    pub leader: Gauge,
    pub promotions: Family<ReleaseLabels, Counter>,
    pub lead_time: Family<ReleaseLabels, Histogram>,
    pub rollback_recommended: Family<ReleaseLabels, Counter>,
    pub time_to_restore: Family<ReleaseLabels, Histogram>,
    pub hold_reasons: Family<RuleLabels, Counter>,
    pub approval_wait: Family<ReleaseLabels, Histogram>,
    pub evidence_completeness: Family<ReleaseLabels, GaugeF64>,
    pub connector_evidence: Family<ConnectorEvidenceLabels, Counter>,
    pub shadow_would_deny: Family<ReleaseLabels, Counter>,
}

/// Buckets from one minute to about 45 days (lead time).
fn lead_time_buckets() -> Histogram {
    Histogram::new(exponential_buckets(60.0, 2.0, 16))
}

/// Buckets from 30 seconds to about 3 days (restore, approval wait).
fn wait_buckets() -> Histogram {
    Histogram::new(exponential_buckets(30.0, 2.0, 14))
}

impl Metrics {
    /// Creates the metrics and registers them under the `releasepassport` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.005, 2.0, 12)),
            decisions: Family::default(),
            passports_written: Counter::default(),
            passports_deleted: Counter::default(),
            status_conflicts: Counter::default(),
            connector_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 14))
            }),
            connector_errors: Family::default(),
            evidence_age: Family::default(),
            leader: Gauge::default(),
            promotions: Family::default(),
            lead_time: Family::new_with_constructor(lead_time_buckets),
            rollback_recommended: Family::default(),
            time_to_restore: Family::new_with_constructor(wait_buckets),
            hold_reasons: Family::default(),
            approval_wait: Family::new_with_constructor(wait_buckets),
            evidence_completeness: Family::default(),
            connector_evidence: Family::default(),
            shadow_would_deny: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("releasepassport");
        r.register(
            "reconciles",
            "ReleaseGate reconciliations by result",
            m.reconciles.clone(),
        );
        r.register(
            "reconcile_errors",
            "Failed reconciliations by reason",
            m.reconcile_errors.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Duration of a ReleaseGate reconciliation",
            m.reconcile_duration.clone(),
        );
        r.register(
            "decisions",
            "Evaluations by namespace, service, environment, mode and decision",
            m.decisions.clone(),
        );
        r.register(
            "passports_written",
            "Passports written",
            m.passports_written.clone(),
        );
        r.register(
            "status_conflicts",
            "Gate status writes refused because the cached gate was behind the apiserver (read again and retried)",
            m.status_conflicts.clone(),
        );
        r.register(
            "passports_deleted",
            "Passports deleted by retention",
            m.passports_deleted.clone(),
        );
        r.register(
            "connector_duration_seconds",
            "Time to read one ConnectorScope",
            m.connector_duration.clone(),
        );
        r.register(
            "connector_errors",
            "Connector failures by connector and resulting health",
            m.connector_errors.clone(),
        );
        r.register(
            "evidence_age_seconds",
            "Age of the freshest evidence read, by connector",
            m.evidence_age.clone(),
        );
        r.register(
            "leader",
            "1 while this replica holds the leader lease",
            m.leader.clone(),
        );
        r.register(
            "promotions",
            "Images promoted (first allowed, or first seen running), once per image",
            m.promotions.clone(),
        );
        r.register(
            "lead_time_seconds",
            "Lead time for changes: artifact commit timestamp to promotion",
            m.lead_time.clone(),
        );
        r.register(
            "rollback_recommended",
            "Decisions that turned ROLLBACK_RECOMMENDED",
            m.rollback_recommended.clone(),
        );
        r.register(
            "time_to_restore_seconds",
            "Time to restore: first ROLLBACK_RECOMMENDED to the next decision that allows promotion",
            m.time_to_restore.clone(),
        );
        r.register(
            "hold_reasons",
            "Failing rules of new passports that did not allow promotion, by rule id",
            m.hold_reasons.clone(),
        );
        r.register(
            "approval_wait_seconds",
            "Approval wait: first REQUIRE_APPROVAL to the approved decision that allows promotion",
            m.approval_wait.clone(),
        );
        r.register(
            "evidence_completeness_ratio",
            "Confidence of the latest evaluation (weighted share of required evidence present and fresh), 0 to 1",
            m.evidence_completeness.clone(),
        );
        r.register(
            "connector_evidence",
            "Evidence per evaluation by connector and status (fresh, stale, missing)",
            m.connector_evidence.clone(),
        );
        r.register(
            "shadow_would_deny",
            "New shadow-mode passports that enforce mode would have denied",
            m.shadow_would_deny.clone(),
        );
        m
    }
}

/// Records a reconcile's duration when dropped.
pub struct DurationTimer {
    start: Instant,
    histogram: Histogram,
}

impl DurationTimer {
    pub fn new(histogram: &Histogram) -> Self {
        Self {
            start: Instant::now(),
            histogram: histogram.clone(),
        }
    }
}

impl Drop for DurationTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

/// Content type of the OpenMetrics text format.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the classic Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the registry for a scrape: OpenMetrics when the client asks for
/// it (Prometheus does), else the classic text format (what `curl`,
/// `promtool check metrics` and older scrapers read). Returns the content
/// type and the body.
pub fn render(
    registry: &Registry,
    accept: Option<&str>,
) -> Result<(&'static str, String), std::fmt::Error> {
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, registry)?;
    if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
        Ok((OPENMETRICS, body))
    } else {
        Ok((PROMETHEUS_TEXT, openmetrics_to_text(&body)))
    }
}

/// OpenMetrics text → classic Prometheus text (0.0.4): counter families
/// are named with their `_total` samples' name, `# UNIT` and `# EOF` go.
pub fn openmetrics_to_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match rewritten {
            Some(l) => out.push_str(l.trim_end()),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_after_their_samples_in_the_classic_format() {
        let om = "# HELP rp_decisions Decisions.\n# TYPE rp_decisions counter\nrp_decisions_total{decision=\"HOLD\"} 1\n# HELP rp_age_seconds Age.\n# TYPE rp_age_seconds gauge\n# UNIT rp_age_seconds seconds\nrp_age_seconds 2.0\n# EOF\n";
        assert_eq!(
            openmetrics_to_text(om),
            "# HELP rp_decisions_total Decisions.\n# TYPE rp_decisions_total counter\nrp_decisions_total{decision=\"HOLD\"} 1\n# HELP rp_age_seconds Age.\n# TYPE rp_age_seconds gauge\nrp_age_seconds 2.0\n"
        );
    }

    #[test]
    fn prometheus_gets_openmetrics_and_everyone_else_the_classic_format() {
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry);
        m.passports_written.inc();
        let (ct, body) = render(
            &registry,
            Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
        )
        .expect("render");
        assert_eq!(ct, OPENMETRICS);
        assert!(body.ends_with("# EOF\n"));
        let (ct, body) = render(&registry, None).expect("render");
        assert_eq!(ct, PROMETHEUS_TEXT);
        assert!(body.contains("# TYPE releasepassport_passports_written_total counter\n"));
        assert!(!body.contains("# EOF"));
    }
}
