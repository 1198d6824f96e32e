//! Release metrics and the graduation report from gates and passports.

mod insights;

use insights::{P, gate, image, passport, ts};
use jiff::SignedDuration;
use releasepassport::api::{Decision, Passport, ReleaseGate};
use releasepassport::insights::{graduation, release_metrics};
use serde_json::json;

const DAY: SignedDuration = SignedDuration::from_hours(24);
const NOW: &str = "2026-05-20T00:00:00Z";

fn refs<T>(v: &[T]) -> Vec<&T> {
    v.iter().collect()
}

/// One service's month: v1 held, approved, allowed and deployed; v2 allowed,
/// deployed, then rolled back (recommended) and restored by v3.
fn history() -> (Vec<ReleaseGate>, Vec<Passport>) {
    let gates = vec![gate(
        "payment-api-production",
        "shadow",
        3,
        json!({"artifact": {"image": image(3), "commitTimestamp": "2026-05-18T10:00:00Z"},
               "target": {"kind": "Deployment", "name": "payment-api"}}),
        json!({"deployedAt": "2026-05-18T12:00:00Z", "deployedImage": image(3)}),
    )];
    let hold = &[
        ("error-rate", "fail", "prometheus"),
        ("synced", "missing", "argocd"),
    ][..];
    let passports = vec![
        passport(P {
            name: "p1",
            at: "2026-05-17T06:00:00Z",
            decision: "HOLD",
            image_n: 1,
            confidence: 50,
            results: hold,
            evidence: &[("prometheus", "fresh")],
            ..P::default()
        }),
        passport(P {
            name: "p2",
            at: "2026-05-17T07:00:00Z",
            decision: "REQUIRE_APPROVAL",
            image_n: 1,
            confidence: 100,
            results: &[("change-ticket", "fail", "ingest")],
            evidence: &[("prometheus", "fresh"), ("argocd", "stale")],
            ..P::default()
        }),
        passport(P {
            name: "p3",
            at: "2026-05-17T07:30:00Z",
            decision: "ALLOW",
            image_n: 1,
            approvals: 1,
            evidence: &[("prometheus", "fresh"), ("argocd", "fresh")],
            ..P::default()
        }),
        passport(P {
            name: "p4",
            at: "2026-05-18T08:00:00Z",
            decision: "ALLOW",
            image_n: 2,
            release: "v2",
            evidence: &[("prometheus", "fresh")],
            ..P::default()
        }),
        passport(P {
            name: "p5",
            at: "2026-05-18T09:00:00Z",
            decision: "ROLLBACK_RECOMMENDED",
            image_n: 2,
            release: "v2",
            results: &[("error-rate", "fail", "prometheus")],
            evidence: &[("prometheus", "fresh")],
            ..P::default()
        }),
        passport(P {
            name: "p6",
            at: "2026-05-18T09:20:00Z",
            decision: "ROLLBACK_RECOMMENDED",
            image_n: 2,
            release: "v2",
            results: &[("error-rate", "fail", "prometheus")],
            evidence: &[("prometheus", "fresh")],
            ..P::default()
        }),
        passport(P {
            name: "p7",
            at: "2026-05-18T11:00:00Z",
            decision: "ALLOW",
            image_n: 3,
            release: "v3",
            evidence: &[("prometheus", "fresh")],
            ..P::default()
        }),
    ];
    (gates, passports)
}

#[test]
fn promotions_lead_time_failures_and_restore() {
    let (gates, passports) = history();
    let m = release_metrics(
        &refs(&gates),
        &refs(&passports),
        ts(NOW),
        SignedDuration::from_hours(24 * 30),
    );
    let t = &m.total;
    // Three digests reached production.
    assert_eq!(t.deployments, 3);
    assert!((t.deployments_per_day - 0.1).abs() < 1e-9);
    // v3: committed 10:00, allowed 11:00 (deployed at 12:00, later).
    assert_eq!(t.lead_time.count, 1);
    assert_eq!(t.lead_time.p50_seconds, Some(3600.0));
    // v2 was followed by ROLLBACK_RECOMMENDED; one episode of two passports.
    assert_eq!(t.failed_deployments, 1);
    assert_eq!(t.change_failure_rate, Some(1.0 / 3.0));
    assert_eq!(t.rollback_recommended, 1);
    assert_eq!(t.open_incidents, 0);
    // 09:00 → 11:00.
    assert_eq!(t.time_to_restore.p50_seconds, Some(7200.0));
    // REQUIRE_APPROVAL 07:00 → approved ALLOW 07:30.
    assert_eq!(t.approval_wait.count, 1);
    assert_eq!(t.approval_wait.p90_seconds, Some(1800.0));
    assert_eq!(t.decisions.get(&Decision::RollbackRecommended), Some(&2));
    assert_eq!(m.groups.len(), 1);
    assert_eq!(m.groups[0].service, "payment-api");
    assert_eq!(m.groups[0].metrics, m.total);
}

#[test]
fn hold_reasons_evidence_and_connectors() {
    let (gates, passports) = history();
    let m = release_metrics(
        &refs(&gates),
        &refs(&passports),
        ts(NOW),
        SignedDuration::from_hours(24 * 30),
    );
    let t = &m.total;
    // error-rate failed in p1, p5 and p6; synced and change-ticket once.
    assert_eq!(t.hold_reasons[0].rule, "error-rate");
    assert_eq!(t.hold_reasons[0].count, 3);
    assert_eq!(t.hold_reasons[0].label, "error-rate label");
    assert_eq!(t.hold_reasons.len(), 3);
    assert_eq!(t.evidence.passports, 7);
    assert_eq!(t.evidence.evidence, 9);
    assert_eq!(t.evidence.fresh, 8);
    let argocd = t
        .connectors
        .iter()
        .find(|c| c.connector == "argocd")
        .expect("argocd");
    // fresh once, stale once, missing once.
    assert_eq!((argocd.fresh, argocd.stale, argocd.missing), (1, 1, 1));
    assert_eq!(argocd.reliability, Some(1.0 / 3.0));
    let mean = t.evidence.mean_confidence.expect("mean");
    assert!((mean - (50.0 + 100.0 * 6.0) / 7.0).abs() < 1e-9);
}

#[test]
fn the_window_leaves_out_older_passports() {
    let (gates, passports) = history();
    // One day back from 2026-05-18T10:00: p4 to p6 only.
    let m = release_metrics(
        &refs(&gates),
        &refs(&passports),
        ts("2026-05-18T10:00:00Z"),
        DAY,
    );
    let t = &m.total;
    assert_eq!(t.evidence.passports, 3);
    assert_eq!(t.deployments, 1, "v2 only: v3 was deployed after now");
    assert_eq!(t.rollback_recommended, 1);
    assert_eq!(t.open_incidents, 1, "not restored yet at 10:00");
}

#[test]
fn no_passports_no_numbers() {
    let m = release_metrics(&[], &[], ts(NOW), DAY);
    assert_eq!(m.total.deployments, 0);
    assert_eq!(m.total.change_failure_rate, None);
    assert_eq!(m.total.lead_time.p50_seconds, None);
    assert!(m.groups.is_empty());
    let json = serde_json::to_value(&m).expect("json");
    assert_eq!(json["windowSeconds"], 86400);
    assert_eq!(json["total"]["deploymentsPerDay"], 0.0);
}

#[test]
fn graduation_lists_what_enforce_would_have_denied() {
    let (gates, passports) = history();
    let report = graduation(&refs(&gates), &refs(&passports));
    assert_eq!(report.gates.len(), 1);
    let g = &report.gates[0];
    assert_eq!(g.passports, 7);
    // p1 (HOLD), p2 (REQUIRE_APPROVAL), p5, p6 (ROLLBACK_RECOMMENDED).
    assert_eq!(g.would_deny_count, 4);
    let names: Vec<&str> = g.would_deny.iter().map(|d| d.passport.as_str()).collect();
    assert_eq!(names, ["p6", "p5", "p2", "p1"]);
    // v1 was allowed later (p3); v2 never was.
    assert!(g.would_deny[3].resolved && g.would_deny[2].resolved);
    assert!(!g.would_deny[0].resolved);
    assert_eq!(g.would_deny[3].failing_checks, ["error-rate", "synced"]);
    assert_eq!(g.would_deny[3].next_actions, ["Fix it."]);
    assert!(!g.ready_to_enforce);
    assert!(g.reason.contains("never allowed later"), "{}", g.reason);
}

#[test]
fn a_gate_whose_denials_were_all_temporary_is_ready() {
    let (gates, mut passports) = history();
    passports.retain(|p| !matches!(p.spec.decision, Decision::RollbackRecommended));
    let report = graduation(&refs(&gates), &refs(&passports));
    let g = &report.gates[0];
    assert!(g.ready_to_enforce, "{}", g.reason);
    assert_eq!(g.would_deny_count, 2);
}

#[test]
fn canary_on_a_deployment_would_be_denied_but_not_on_a_rollout() {
    let mk = |kind: &str| {
        gate(
            "g",
            "shadow",
            1,
            json!({"target": {"kind": kind, "name": "w"}}),
            json!({}),
        )
    };
    let passports: Vec<Passport> = (0..3)
        .map(|i| {
            passport(P {
                gate: "g",
                name: ["a", "b", "c"][i],
                at: [
                    "2026-05-17T06:00:00Z",
                    "2026-05-17T07:00:00Z",
                    "2026-05-17T08:00:00Z",
                ][i],
                decision: "ALLOW_WITH_CANARY",
                ..P::default()
            })
        })
        .collect();
    let deployment = mk("Deployment");
    let r = graduation(&[&deployment], &refs(&passports));
    assert_eq!(r.gates[0].would_deny_count, 3);
    assert!(r.gates[0].would_deny[0].why.contains("progressive"));
    assert!(!r.gates[0].ready_to_enforce);
    let rollout = mk("Rollout");
    let r = graduation(&[&rollout], &refs(&passports));
    assert_eq!(r.gates[0].would_deny_count, 0);
    assert!(r.gates[0].ready_to_enforce, "{}", r.gates[0].reason);
}

#[test]
fn enforce_gates_and_young_gates() {
    let enforce = gate("e", "enforce", 1, json!({}), json!({}));
    let young = gate("y", "shadow", 1, json!({}), json!({}));
    let one = passport(P {
        gate: "y",
        ..P::default()
    });
    let r = graduation(&[&enforce, &young], &[&one]);
    assert_eq!(r.gates.len(), 1, "only shadow gates");
    assert!(!r.gates[0].ready_to_enforce);
    assert!(
        r.gates[0].reason.contains("at least 3"),
        "{}",
        r.gates[0].reason
    );
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["gates"][0]["readyToEnforce"], false);
}

#[test]
fn a_deploy_seen_before_any_allow_is_the_promotion_time() {
    let gates = vec![gate(
        "payment-api-production",
        "shadow",
        1,
        json!({"artifact": {"image": image(1), "commitTimestamp": "2026-05-17T05:00:00Z"}}),
        json!({"deployedAt": "2026-05-17T05:30:00Z", "deployedImage": image(1)}),
    )];
    let passports = vec![
        passport(P {
            name: "a",
            at: "2026-05-17T05:20:00Z",
            decision: "HOLD",
            ..P::default()
        }),
        passport(P {
            name: "b",
            at: "2026-05-17T06:00:00Z",
            decision: "ALLOW",
            ..P::default()
        }),
    ];
    let m = release_metrics(
        &refs(&gates),
        &refs(&passports),
        ts(NOW),
        SignedDuration::from_hours(24 * 30),
    );
    assert_eq!(m.total.deployments, 1);
    assert_eq!(m.total.lead_time.p50_seconds, Some(1800.0));
}
