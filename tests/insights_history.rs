//! The gate history: what a new evaluation records, and what a replay does not.

mod insights;

use insights::{P, gate, passport, ts};
use releasepassport::api::{
    Decision, GateHistoryEntry, HISTORY_LIMIT, HistoryType, ReleaseGateStatus,
};
use releasepassport::insights::history::{AdmissionEvent, Observation, Recorded, append, record};
use serde_json::json;

/// Records an evaluation on top of `old` the way the controller does;
/// `passport_extra` is merged into the passport (its approvals, waivers, mode).
fn evaluate(
    old: Option<&ReleaseGateStatus>,
    passport_extra: serde_json::Value,
    decision: &str,
    passport_name: &str,
    key: &str,
    now: &str,
) -> (ReleaseGateStatus, Vec<GateHistoryEntry>) {
    let g = gate("g", "shadow", 1, json!({}), json!({}));
    let (status, added, _) = evaluate_with(
        old,
        &g.spec,
        passport_extra,
        &Extra::default(),
        decision,
        passport_name,
        key,
        now,
        None,
    );
    (status, added)
}

/// The same, with the gate's spec and deploy time, returning the signals too.
fn evaluate_at(
    old: Option<&ReleaseGateStatus>,
    spec: &releasepassport::api::ReleaseGateSpec,
    decision: &str,
    passport_name: &str,
    key: &str,
    now: &str,
    deployed_at: Option<&str>,
) -> (ReleaseGateStatus, Vec<GateHistoryEntry>, Recorded) {
    evaluate_with(
        old,
        spec,
        json!({}),
        &Extra::default(),
        decision,
        passport_name,
        key,
        now,
        deployed_at,
    )
}

/// What else the controller observed: admission Events and a restore.
#[derive(Default)]
struct Extra {
    admissions: Vec<AdmissionEvent>,
    restored: Option<String>,
}

#[allow(clippy::too_many_arguments)]
fn evaluate_with(
    old: Option<&ReleaseGateStatus>,
    spec: &releasepassport::api::ReleaseGateSpec,
    passport_extra: serde_json::Value,
    extra: &Extra,
    decision: &str,
    passport_name: &str,
    key: &str,
    now: &str,
    deployed_at: Option<&str>,
) -> (ReleaseGateStatus, Vec<GateHistoryEntry>, Recorded) {
    let p = passport(P {
        gate: "g",
        name: passport_name,
        decision,
        extra: passport_extra,
        ..P::default()
    });
    let recorded = record(
        old,
        &Observation {
            spec,
            passport: &p.spec,
            passport_name,
            signing_key_id: key,
            failing_checks: &[],
            deployed_at: deployed_at.map(ts),
            grants: &[],
            admissions: &extra.admissions,
            restored: extra.restored.clone(),
            now: ts(now),
        },
    );
    let mut status = old.cloned().unwrap_or_default();
    let added = append(&mut status.history, recorded.entries.clone());
    status.decision = Some(p.spec.decision);
    status.audit = Some(recorded.cursor.clone());
    (status, added, recorded)
}

#[test]
fn first_decision_then_approval_then_allow() {
    let (s1, added) = evaluate(
        None,
        json!({}),
        "REQUIRE_APPROVAL",
        "g-1",
        "k1",
        "2026-05-17T06:00:00Z",
    );
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].type_, HistoryType::DecisionChanged);
    assert_eq!(added[0].previous_decision, None);
    assert_eq!(added[0].passport.as_deref(), Some("g-1"));
    let approvals = json!({"approvals": [{"name": "a1", "actor": "alice@example.com", "reference": "CHG-1042", "counted": true}]});
    let (s2, added) = evaluate(
        Some(&s1),
        approvals.clone(),
        "ALLOW",
        "g-2",
        "k1",
        "2026-05-17T06:05:00Z",
    );
    let types: Vec<_> = added.iter().map(|e| e.type_).collect();
    assert_eq!(
        types,
        [HistoryType::ApprovalAdded, HistoryType::DecisionChanged]
    );
    assert_eq!(added[0].actor.as_deref(), Some("alice@example.com"));
    assert_eq!(added[1].previous_decision, Some(Decision::RequireApproval));
    assert_eq!(added[1].decision, Some(Decision::Allow));
    assert!(
        added[1]
            .message
            .starts_with("Decision REQUIRE_APPROVAL → ALLOW for payment-api")
    );
    assert_eq!(s2.history.len(), 2 + 1);
    // A replay of the same evaluation (retry, restart, new leader) records nothing.
    let (s3, added) = evaluate(
        Some(&s2),
        approvals,
        "ALLOW",
        "g-2",
        "k1",
        "2026-05-17T06:06:00Z",
    );
    assert!(added.is_empty(), "{added:?}");
    assert_eq!(s3.history, s2.history);
}

#[test]
fn waivers_added_and_expired_once_each() {
    let waiver = |state: &str| json!({"waivers": [{"name": "w1", "ruleId": "error-rate", "reason": "known flake", "actor": "bob", "expiresAt": "2026-05-17T12:00:00Z", "state": state}]});
    let (s1, _) = evaluate(None, json!({}), "HOLD", "g-1", "k1", "2026-05-17T06:00:00Z");
    let (s2, added) = evaluate(
        Some(&s1),
        waiver("active"),
        "ALLOW",
        "g-2",
        "k1",
        "2026-05-17T07:00:00Z",
    );
    assert_eq!(added[0].type_, HistoryType::WaiverAdded);
    assert_eq!(added[0].actor.as_deref(), Some("bob"));
    assert!(added[0].message.contains("known flake"));
    let (s3, added) = evaluate(
        Some(&s2),
        waiver("expired"),
        "HOLD",
        "g-1",
        "k1",
        "2026-05-17T12:00:01Z",
    );
    let types: Vec<_> = added.iter().map(|e| e.type_).collect();
    assert_eq!(
        types,
        [HistoryType::WaiverExpired, HistoryType::DecisionChanged]
    );
    let (_, added) = evaluate(
        Some(&s3),
        waiver("expired"),
        "HOLD",
        "g-1",
        "k1",
        "2026-05-17T12:05:00Z",
    );
    assert!(added.is_empty());
}

#[test]
fn a_new_signing_key_is_recorded() {
    let (s1, _) = evaluate(
        None,
        json!({}),
        "ALLOW",
        "g-1",
        "k1",
        "2026-05-17T06:00:00Z",
    );
    let (_, added) = evaluate(
        Some(&s1),
        json!({}),
        "ALLOW",
        "g-3",
        "k2",
        "2026-05-17T07:00:00Z",
    );
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].type_, HistoryType::SigningKeyChanged);
    assert!(added[0].message.contains("k2") && added[0].message.contains("k1"));
}

#[test]
fn history_keeps_the_newest_entries() {
    let mut status: Option<ReleaseGateStatus> = None;
    let decisions = ["HOLD", "ALLOW"];
    for i in 0..(HISTORY_LIMIT + 7) {
        let (s, added) = evaluate(
            status.as_ref(),
            json!({}),
            decisions[i % 2],
            &format!("g-{}", i % 2),
            "k1",
            &format!("2026-05-17T06:{:02}:00Z", i),
        );
        assert_eq!(added.len(), 1, "flapping is recorded every time");
        status = Some(s);
    }
    let history = status.expect("status").history;
    assert_eq!(history.len(), HISTORY_LIMIT);
    assert_eq!(
        history.last().map(|e| e.at),
        Some(ts("2026-05-17T06:26:00Z"))
    );
    assert_eq!(history[0].at, ts("2026-05-17T06:07:00Z"));
}

#[test]
fn entries_are_redacted_and_bounded() {
    let waiver = json!({"waivers": [{"name": "w1", "ruleId": "error-rate", "reason": format!("password=hunter2 {}", "x".repeat(3000)), "actor": "bob", "expiresAt": "2026-05-18T12:00:00Z", "state": "active"}]});
    let (_, added) = evaluate(None, waiver, "ALLOW", "g-1", "k1", "2026-05-17T06:00:00Z");
    let w = &added[0];
    assert!(!w.message.contains("hunter2"));
    assert!(w.message.len() <= 1000 && w.message.ends_with("..."));
}

#[test]
fn promotion_is_counted_once_per_image_with_its_lead_time() {
    let g = gate(
        "g",
        "shadow",
        1,
        json!({"artifact": {"image": insights::image(1), "commitTimestamp": "2026-05-17T05:00:00Z"}}),
        json!({}),
    );
    let (s1, _, r) = evaluate_at(
        None,
        &g.spec,
        "HOLD",
        "g-1",
        "k",
        "2026-05-17T06:00:00Z",
        None,
    );
    assert_eq!(r.promotion, None);
    let (s2, _, r) = evaluate_at(
        Some(&s1),
        &g.spec,
        "ALLOW",
        "g-2",
        "k",
        "2026-05-17T07:00:00Z",
        None,
    );
    let promotion = r.promotion.expect("first ALLOW of the image");
    assert_eq!(
        promotion.lead_time,
        Some(jiff::SignedDuration::from_hours(2))
    );
    // Seen running later, flapping: the same image is not promoted again.
    let (s3, _, r) = evaluate_at(
        Some(&s2),
        &g.spec,
        "ALLOW",
        "g-2",
        "k",
        "2026-05-17T07:10:00Z",
        Some("2026-05-17T07:05:00Z"),
    );
    assert_eq!(r.promotion, None);
    let (s4, _, _) = evaluate_at(
        Some(&s3),
        &g.spec,
        "HOLD",
        "g-1",
        "k",
        "2026-05-17T07:20:00Z",
        None,
    );
    let (_, _, r) = evaluate_at(
        Some(&s4),
        &g.spec,
        "ALLOW",
        "g-2",
        "k",
        "2026-05-17T07:30:00Z",
        None,
    );
    assert_eq!(r.promotion, None);
}

#[test]
fn a_shadow_deploy_under_hold_is_a_promotion_at_its_deploy_time() {
    let g = gate("g", "shadow", 1, json!({}), json!({}));
    let (_, _, r) = evaluate_at(
        None,
        &g.spec,
        "HOLD",
        "g-1",
        "k",
        "2026-05-17T06:00:00Z",
        Some("2026-05-17T05:59:00Z"),
    );
    assert_eq!(r.promotion.map(|p| p.at), Some(ts("2026-05-17T05:59:00Z")));
}

#[test]
fn restore_and_approval_wait_are_measured_from_the_first_decision_of_the_episode() {
    let g = gate("g", "shadow", 1, json!({}), json!({}));
    let (s1, _, _) = evaluate_at(
        None,
        &g.spec,
        "ALLOW",
        "g-1",
        "k",
        "2026-05-17T06:00:00Z",
        None,
    );
    let (s2, _, r) = evaluate_at(
        Some(&s1),
        &g.spec,
        "ROLLBACK_RECOMMENDED",
        "g-2",
        "k",
        "2026-05-17T06:10:00Z",
        None,
    );
    assert!(r.rollback_recommended);
    let (s3, _, r) = evaluate_at(
        Some(&s2),
        &g.spec,
        "HOLD",
        "g-3",
        "k",
        "2026-05-17T06:20:00Z",
        None,
    );
    assert!(!r.rollback_recommended && r.time_to_restore.is_none());
    let (_, _, r) = evaluate_at(
        Some(&s3),
        &g.spec,
        "ALLOW",
        "g-1",
        "k",
        "2026-05-17T06:40:00Z",
        None,
    );
    assert_eq!(r.time_to_restore, Some(jiff::SignedDuration::from_mins(30)));
    assert_eq!(r.approval_wait, None, "no approval involved");

    let (a1, _, _) = evaluate_at(
        None,
        &g.spec,
        "REQUIRE_APPROVAL",
        "g-4",
        "k",
        "2026-05-17T08:00:00Z",
        None,
    );
    let (_, _, r) = evaluate_with(
        Some(&a1),
        &g.spec,
        json!({"approvals": [{"name": "a1", "actor": "alice", "counted": true}]}),
        &Extra::default(),
        "ALLOW",
        "g-5",
        "k",
        "2026-05-17T08:45:00Z",
        None,
    );
    assert_eq!(r.approval_wait, Some(jiff::SignedDuration::from_mins(45)));
    assert_eq!(r.time_to_restore, None);
}

#[test]
fn refused_approvals_and_waivers_are_recorded_once_as_refused_bypasses() {
    let (s1, _) = evaluate(
        None,
        json!({}),
        "REQUIRE_APPROVAL",
        "g-1",
        "k1",
        "2026-05-17T06:00:00Z",
    );
    let refused = json!({
        "approvals": [{"name": "ci-approves", "actor": "ci-bot", "counted": false, "reason": "SelfApproval"}],
        "waivers": [{"name": "long", "ruleId": "error-rate", "reason": "later", "actor": "bob",
                     "expiresAt": "2026-06-17T00:00:00Z", "state": "refused", "refusal": "BeyondMaximumDuration"}]
    });
    let (s2, added) = evaluate(
        Some(&s1),
        refused.clone(),
        "REQUIRE_APPROVAL",
        "g-1",
        "k1",
        "2026-05-17T06:01:00Z",
    );
    let types: Vec<_> = added.iter().map(|e| e.type_).collect();
    assert_eq!(
        types,
        [HistoryType::ApprovalRefused, HistoryType::WaiverRefused]
    );
    assert_eq!(added[0].actor.as_deref(), Some("ci-bot"));
    let (_, added) = evaluate(
        Some(&s2),
        refused,
        "REQUIRE_APPROVAL",
        "g-1",
        "k1",
        "2026-05-17T06:02:00Z",
    );
    assert!(added.is_empty(), "{added:?}");
}

#[test]
fn a_mode_change_is_recorded_with_who_changed_the_configuration() {
    let g = gate(
        "g",
        "shadow",
        1,
        json!({"appliedBy": {"configuration": "carol"}}),
        json!({}),
    );
    let run = |old: Option<&ReleaseGateStatus>, extra: serde_json::Value, now: &str| {
        evaluate_with(
            old,
            &g.spec,
            extra,
            &Extra::default(),
            "HOLD",
            "g-1",
            "k",
            now,
            None,
        )
    };
    let (s1, added, _) = run(None, json!({}), "2026-05-17T06:00:00Z");
    assert!(added.iter().all(|e| e.type_ != HistoryType::ModeChanged));
    let enforced = json!({"mode": "enforce", "requestedMode": "shadow", "enforcedBy": "namespace payments requires enforce mode"});
    let (s2, added, _) = run(Some(&s1), enforced.clone(), "2026-05-17T06:01:00Z");
    let change = added
        .iter()
        .find(|e| e.type_ == HistoryType::ModeChanged)
        .expect("mode change");
    assert_eq!(change.actor.as_deref(), Some("carol"));
    assert!(
        change.message.contains("enforce mode") && change.message.contains("namespace payments"),
        "{}",
        change.message
    );
    let (_, added, _) = run(Some(&s2), enforced, "2026-05-17T06:02:00Z");
    assert!(added.is_empty());
}

#[test]
fn admission_events_and_restores_enter_the_history_once() {
    let g = gate("g", "enforce", 1, json!({}), json!({}));
    let extra = Extra {
        admissions: vec![AdmissionEvent {
            name: "g.1".into(),
            type_: HistoryType::RollbackAdmitted,
            actor: Some("oncall".into()),
            message: "Rollback of Deployment payments/payment-api to proven release v1 admitted"
                .into(),
            at: ts("2026-05-17T06:00:30Z"),
        }],
        restored: Some("The target runs proven release v1 again".into()),
    };
    let (s1, added, _) = evaluate_with(
        None,
        &g.spec,
        json!({}),
        &extra,
        "HOLD",
        "g-1",
        "k",
        "2026-05-17T06:01:00Z",
        None,
    );
    let rollback = added
        .iter()
        .find(|e| e.type_ == HistoryType::RollbackAdmitted)
        .expect("rollback entry");
    assert_eq!(rollback.actor.as_deref(), Some("oncall"));
    assert_eq!(rollback.at, ts("2026-05-17T06:00:30Z"));
    assert!(added.iter().any(|e| e.type_ == HistoryType::Restored));
    let again = Extra {
        admissions: extra.admissions.clone(),
        restored: None,
    };
    let (_, added, _) = evaluate_with(
        Some(&s1),
        &g.spec,
        json!({}),
        &again,
        "HOLD",
        "g-1",
        "k",
        "2026-05-17T06:02:00Z",
        None,
    );
    assert!(added.is_empty(), "{added:?}");
}
