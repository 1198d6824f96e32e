//! The audit trail: gate history and Events mapped, merged, exported.

mod insights;

use insights::{NS, gate, ts};
use k8s_openapi::api::core::v1::Event;
use releasepassport::api::{Decision, HistoryType};
use releasepassport::insights::{
    AuditEvent, audit_csv, audit_from_event, audit_from_gate, audit_json, merge_audit,
};
use serde_json::json;

fn event(reason: &str, kind: &str, message: &str, at: &str) -> Event {
    serde_json::from_value(json!({
        "metadata": {"name": format!("e-{reason}-{at}"), "namespace": NS},
        "involvedObject": {"apiVersion": "releasepassport.io/v1alpha1", "kind": kind,
                           "name": "payment-api-production", "namespace": NS},
        "reason": reason, "message": message, "type": "Normal",
        "eventTime": at
    }))
    .expect("event")
}

const DECISION_NOTE: &str = "Decision HOLD → ALLOW for payment-api v2.18.4 (confidence 100%), Passport payment-api-production-0123456789";

fn history_gate() -> releasepassport::api::ReleaseGate {
    gate(
        "payment-api-production",
        "shadow",
        1,
        json!({}),
        json!({"history": [
            {"at": "2026-05-17T06:00:00Z", "type": "DecisionChanged", "decision": "HOLD",
             "passport": "payment-api-production-aaaaaaaaaa",
             "message": "Decision HOLD for payment-api v2.18.4 (confidence 50%), Passport payment-api-production-aaaaaaaaaa; failing: error-rate"},
            {"at": "2026-05-17T06:05:00Z", "type": "ApprovalAdded", "actor": "alice@example.com",
             "message": "Approval by alice@example.com (CHG-1042) for payment-api v2.18.4"},
            {"at": "2026-05-17T06:05:00Z", "type": "DecisionChanged", "decision": "ALLOW",
             "previousDecision": "HOLD", "passport": "payment-api-production-0123456789",
             "message": DECISION_NOTE}
        ]}),
    )
}

#[test]
fn gate_history_becomes_audit_events_oldest_first() {
    let events = audit_from_gate(&history_gate());
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].kind, HistoryType::DecisionChanged);
    assert_eq!(events[0].previous_decision, None);
    assert_eq!(events[1].actor.as_deref(), Some("alice@example.com"));
    assert_eq!(events[2].decision, Some(Decision::Allow));
    assert_eq!(events[2].previous_decision, Some(Decision::Hold));
    assert!(
        events
            .iter()
            .all(|e| e.namespace == NS && e.gate.as_deref() == Some("payment-api-production"))
    );
}

#[test]
fn decision_changed_event_is_read_back_with_its_decisions_and_passport() {
    let e = audit_from_event(&event(
        "DecisionChanged",
        "ReleaseGate",
        DECISION_NOTE,
        "2026-05-17T06:05:01.000000Z",
    ))
    .expect("ours");
    assert_eq!(e.kind, HistoryType::DecisionChanged);
    assert_eq!(e.decision, Some(Decision::Allow));
    assert_eq!(e.previous_decision, Some(Decision::Hold));
    assert_eq!(
        e.passport.as_deref(),
        Some("payment-api-production-0123456789")
    );
    assert_eq!(e.at, ts("2026-05-17T06:05:01Z"));
}

#[test]
fn approval_and_waiver_events_name_their_actor() {
    let a = audit_from_event(&event(
        "ApprovalAdded",
        "ReleaseGate",
        "Approval by alice@example.com (CHG-1042) for payment-api v2.18.4",
        "2026-05-17T06:05:01.000000Z",
    ))
    .expect("approval");
    assert_eq!(a.actor.as_deref(), Some("alice@example.com"));
    let w = audit_from_event(&event(
        "WaiverExpired",
        "ReleaseGate",
        "Waiver of rule error-rate by Bob Smith expired at 2026-05-18T00:00:00Z",
        "2026-05-18T00:00:05.000000Z",
    ))
    .expect("waiver");
    assert_eq!(w.actor.as_deref(), Some("Bob Smith"));
}

#[test]
fn webhook_denials_are_audit_events() {
    let e = audit_from_event(&event(
        "AdmissionDenied",
        "ReleaseGate",
        "Change of Deployment payments/payment-api denied: Passport payment-api-production-0123456789 decided HOLD",
        "2026-05-17T07:00:00.000000Z",
    ))
    .expect("denial");
    assert_eq!(e.kind, HistoryType::AdmissionDenied);
    assert_eq!(e.decision, Some(Decision::Hold));
    assert_eq!(
        e.passport.as_deref(),
        Some("payment-api-production-0123456789")
    );
}

#[test]
fn unrelated_events_are_not_audit_events() {
    // The decision Events (reason = the decision) and other objects' Events.
    assert!(audit_from_event(&event("Hold", "ReleaseGate", "x", "2026-05-17T07:00:00Z")).is_none());
    assert!(
        audit_from_event(&event(
            "DecisionChanged",
            "Deployment",
            "x",
            "2026-05-17T07:00:00Z"
        ))
        .is_none()
    );
    assert!(
        audit_from_event(&event(
            "ScalingReplicaSet",
            "ReleaseGate",
            "x",
            "2026-05-17T07:00:00Z"
        ))
        .is_none()
    );
}

#[test]
fn merge_is_newest_first_and_counts_an_entry_and_its_event_once() {
    let history = audit_from_gate(&history_gate());
    let events = vec![
        audit_from_event(&event(
            "DecisionChanged",
            "ReleaseGate",
            DECISION_NOTE,
            "2026-05-17T06:05:02.000000Z",
        ))
        .expect("ours"),
        audit_from_event(&event(
            "AdmissionDenied",
            "ReleaseGate",
            "Change of Deployment payments/payment-api denied: no passport",
            "2026-05-17T06:02:00.000000Z",
        ))
        .expect("ours"),
    ];
    let merged = merge_audit(history, events);
    assert_eq!(merged.len(), 4, "{merged:#?}");
    let times: Vec<_> = merged.iter().map(|e| e.at).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);
    assert_eq!(
        merged
            .iter()
            .filter(|e| e.kind == HistoryType::DecisionChanged)
            .count(),
        2
    );
    assert!(
        merged
            .iter()
            .any(|e| e.kind == HistoryType::AdmissionDenied)
    );
}

#[test]
fn the_same_message_a_day_later_is_another_event() {
    let mk = |at: &str| AuditEvent {
        at: ts(at),
        namespace: NS.into(),
        gate: Some("g".into()),
        kind: HistoryType::DecisionChanged,
        decision: Some(Decision::Allow),
        previous_decision: Some(Decision::Hold),
        passport: Some("g-1".into()),
        actor: None,
        message: "Decision HOLD → ALLOW".into(),
    };
    let merged = merge_audit(
        vec![mk("2026-05-17T06:00:00Z")],
        vec![mk("2026-05-18T06:00:00Z"), mk("2026-05-17T06:00:30Z")],
    );
    assert_eq!(merged.len(), 2);
}

fn secret_event() -> AuditEvent {
    AuditEvent {
        at: ts("2026-05-17T06:00:00Z"),
        namespace: NS.into(),
        gate: Some("payment-api-production".into()),
        kind: HistoryType::WaiverAdded,
        decision: None,
        previous_decision: None,
        passport: None,
        actor: Some("=cmd|' /C calc'!A0".into()),
        message: "Waiver of rule error-rate by bob until 2026-05-18T00:00:00Z: see https://bob:hunter2@ci.example.com/run, \"token\" Bearer abcdefghijklmnop".into(),
    }
}

#[test]
fn json_export_is_redacted() {
    let out = audit_json(&[secret_event()]);
    assert!(!out.contains("hunter2"), "{out}");
    assert!(!out.contains("abcdefghijklmnop"), "{out}");
    let parsed: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(parsed[0]["kind"], "WaiverAdded");
    assert_eq!(parsed[0]["gate"], "payment-api-production");
    assert!(parsed[0].get("decision").is_none());
}

#[test]
fn csv_export_is_redacted_quoted_and_formula_safe() {
    let out = audit_csv(&[secret_event()]);
    assert!(
        !out.contains("hunter2") && !out.contains("abcdefghijklmnop"),
        "{out}"
    );
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("at,namespace,gate,type,decision,previous_decision,passport,actor,message")
    );
    let row = lines.next().expect("row");
    assert!(row.starts_with("2026-05-17T06:00:00Z,payments,payment-api-production,WaiverAdded,,,,'=cmd|' /C calc'!A0,\""), "{row}");
    assert!(row.contains("\"\"token\"\""), "{row}");
}
