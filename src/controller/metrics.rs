//! Operator metrics, in the Prometheus text format on the admin port.

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
    pub decision: String,
    pub mode: String,
}

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
    pub connector_duration: Family<ConnectorLabels, Histogram>,
    pub connector_errors: Family<ConnectorErrorLabels, Counter>,
    pub evidence_age: Family<ConnectorLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub leader: Gauge,
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
            connector_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 14))
            }),
            connector_errors: Family::default(),
            evidence_age: Family::default(),
            leader: Gauge::default(),
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
            "Decisions issued, by decision and mode",
            m.decisions.clone(),
        );
        r.register(
            "passports_written",
            "Passports written",
            m.passports_written.clone(),
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
