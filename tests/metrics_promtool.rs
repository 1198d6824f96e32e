//! The operator's /metrics passes `promtool check metrics` (the Prometheus
//! linter: naming, units, `_total` suffixes, HELP text) with every family
//! populated. promtool comes with the Debian `prometheus` package:
//! `bash hack/install-deps.sh prometheus` (or `make deps`).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use prometheus_client::registry::Registry;
use releasepassport::controller::metrics::*;

/// The promtool binary: `$PROMTOOL_BIN`, else `promtool` next to
/// `$PROMETHEUS_BIN`, else /usr/bin/promtool.
pub fn promtool() -> PathBuf {
    let binary = std::env::var_os("PROMTOOL_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PROMETHEUS_BIN")
                .map(PathBuf::from)
                .and_then(|p| p.parent().map(|d| d.join("promtool")))
        })
        .unwrap_or_else(|| PathBuf::from("/usr/bin/promtool"));
    assert!(
        binary.exists(),
        "{} not found: promtool comes with Prometheus; install it with `bash hack/install-deps.sh prometheus` (or `make deps`), or set PROMTOOL_BIN",
        binary.display()
    );
    binary
}

/// Runs `promtool check metrics` on `text`: (success, combined output).
pub fn check(text: &str) -> (bool, String) {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("writing to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let mut report = String::from_utf8_lossy(&out.stdout).into_owned();
    report.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), report)
}

fn release() -> ReleaseLabels {
    ReleaseLabels {
        namespace: "payments".into(),
        service: "payment-api".into(),
        environment: "production".into(),
    }
}

/// A registry as the controller builds it, with a sample in every family.
fn populated() -> String {
    let mut registry = Registry::default();
    let m = Metrics::register(&mut registry);
    let w = releasepassport::webhook::WebhookMetrics::register(&mut registry);
    m.reconciles
        .get_or_create(&ResultLabels {
            result: "ok".into(),
        })
        .inc();
    m.reconcile_errors
        .get_or_create(&ReasonLabels {
            reason: "KubeError".into(),
        })
        .inc();
    m.reconcile_duration.observe(0.02);
    m.decisions
        .get_or_create(&DecisionLabels {
            namespace: "payments".into(),
            service: "payment-api".into(),
            environment: "production".into(),
            mode: "shadow".into(),
            decision: "HOLD".into(),
        })
        .inc();
    m.passports_written.inc();
    m.passports_deleted.inc();
    m.status_conflicts.inc();
    m.connector_duration
        .get_or_create(&ConnectorLabels {
            connector: "prometheus".into(),
        })
        .observe(0.01);
    m.connector_errors
        .get_or_create(&ConnectorErrorLabels {
            connector: "http".into(),
            health: "Unreachable".into(),
        })
        .inc();
    m.evidence_age
        .get_or_create(&ConnectorLabels {
            connector: "prometheus".into(),
        })
        .set(12.5);
    m.leader.set(1);
    m.promotions.get_or_create(&release()).inc();
    m.lead_time.get_or_create(&release()).observe(7200.0);
    m.rollback_recommended.get_or_create(&release()).inc();
    m.time_to_restore.get_or_create(&release()).observe(1800.0);
    m.hold_reasons
        .get_or_create(&RuleLabels {
            rule: "error-rate".into(),
        })
        .inc();
    m.approval_wait.get_or_create(&release()).observe(900.0);
    m.evidence_completeness.get_or_create(&release()).set(0.85);
    for status in ["fresh", "stale", "missing"] {
        m.connector_evidence
            .get_or_create(&ConnectorEvidenceLabels {
                connector: "prometheus".into(),
                status: status.into(),
            })
            .inc();
    }
    m.shadow_would_deny.get_or_create(&release()).inc();
    w.duration.observe(0.0002);
    // What /metrics answers a client that does not ask for OpenMetrics.
    let (_, text) = render(&registry, None).expect("render");
    text
}

#[test]
fn every_metric_family_passes_promtool_check_metrics() {
    let text = populated();
    // Every family is populated (promtool lints what it sees).
    for family in [
        "releasepassport_decisions_total",
        "releasepassport_promotions_total",
        "releasepassport_lead_time_seconds_bucket",
        "releasepassport_rollback_recommended_total",
        "releasepassport_time_to_restore_seconds_bucket",
        "releasepassport_hold_reasons_total",
        "releasepassport_approval_wait_seconds_bucket",
        "releasepassport_evidence_completeness_ratio",
        "releasepassport_connector_evidence_total",
        "releasepassport_shadow_would_deny_total",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(family)),
            "{family} missing from:\n{text}"
        );
    }
    let (ok, report) = check(&text);
    assert!(ok, "promtool check metrics failed:\n{report}\n---\n{text}");
    assert!(
        report.trim().is_empty(),
        "promtool check metrics found problems:\n{report}"
    );
}

#[test]
fn promtool_reports_a_badly_named_metric() {
    // The check above can fail: promtool does flag a counter without `_total`.
    let (ok, report) = check(
        "# HELP rp_bad_count A counter named badly.\n# TYPE rp_bad_count counter\nrp_bad_count 1\n",
    );
    assert!(!ok || !report.trim().is_empty(), "{report}");
}
