//! Insights over gates, passports and Events: the audit trail, release
//! metrics and the shadow → enforce graduation report.
//!
//! Pure functions over the API types, with no Kubernetes I/O: the CLI, the
//! console and the controller read the objects and call these.

pub mod audit;
pub mod graduation;
pub mod history;
pub mod investigation;
pub mod metrics;

pub use audit::{
    AuditEvent, audit_csv, audit_from_event, audit_from_gate, audit_json, merge_audit,
};
pub use graduation::{GateGraduation, GraduationReport, WouldDeny, graduation};
pub use investigation::{Investigation, investigate};
pub use metrics::{
    ConnectorReliability, DurationStats, EvidenceCompleteness, GroupMetrics, HoldReason,
    MetricsSummary, Period, ReleaseMetrics, SCORECARD_COLUMNS, release_metrics, scorecards_csv,
};

use std::borrow::Cow;

use crate::api::{Passport, ReleaseGate};

/// Namespace of a passport: its own, else the gate it answers.
pub(crate) fn passport_namespace(p: &Passport) -> &str {
    p.metadata
        .namespace
        .as_deref()
        .or_else(|| p.spec.gate.as_ref().map(|g| g.namespace.as_str()))
        .unwrap_or_default()
}

/// (namespace, gate name) of a passport; passports issued outside a cluster
/// (no gate reference) are grouped by service and environment.
pub(crate) fn passport_gate_key(p: &Passport) -> (&str, Cow<'_, str>) {
    let ns = passport_namespace(p);
    match &p.spec.gate {
        Some(g) => (ns, Cow::Borrowed(g.name.as_str())),
        None => (
            ns,
            Cow::Owned(format!("{}-{}", p.spec.service, p.spec.environment)),
        ),
    }
}

/// (namespace, name) of a gate.
pub(crate) fn gate_key(g: &ReleaseGate) -> (&str, &str) {
    (
        g.metadata.namespace.as_deref().unwrap_or_default(),
        g.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// The `sha256:<hex>` digest of an image reference, if pinned.
pub(crate) fn image_digest(image: &str) -> Option<&str> {
    image.rsplit_once('@').map(|(_, d)| d)
}

/// Whether a rule result keeps a decision from ALLOW: it failed, or it is a
/// required rule whose evidence is stale or missing (what `failingChecks`
/// lists; an optional rule without evidence does not count).
pub(crate) fn failing(r: &crate::api::PolicyResult) -> bool {
    use crate::api::ResultState;
    match r.state {
        ResultState::Fail => true,
        ResultState::Stale | ResultState::Missing => r.required,
        ResultState::Pass | ResultState::Waived => false,
    }
}
