//! Building a ReleaseGate's status from an evaluation (pure).

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{Decision, PassportSpec, ReleaseGateStatus, ResultState};

pub const READY: &str = "Ready";
pub const EVIDENCE_COMPLETE: &str = "EvidenceComplete";
pub const PROMOTABLE: &str = "Promotable";
/// False while some evidence is refused (a pulled connector's name on pushed
/// evidence, an observation in the future).
pub const EVIDENCE_ACCEPTED: &str = "EvidenceAccepted";

/// A condition's `reason` for a decision (CamelCase, as Kubernetes expects).
pub fn decision_reason(d: Decision) -> &'static str {
    match d {
        Decision::Allow => "Allow",
        Decision::AllowWithCanary => "AllowWithCanary",
        Decision::RequireApproval => "RequireApproval",
        Decision::Hold => "Hold",
        Decision::RollbackRecommended => "RollbackRecommended",
        Decision::Block => "Block",
    }
}

/// One condition to set.
pub struct Cond<'a> {
    pub type_: &'a str,
    pub status: bool,
    pub reason: &'a str,
    pub message: String,
}

/// Sets a condition, keeping `lastTransitionTime` when the status did not change.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    old: &[Condition],
    cond: Cond<'_>,
    generation: Option<i64>,
    now: Timestamp,
) {
    let Cond {
        type_,
        status,
        reason,
        message,
    } = cond;
    let status = if status { "True" } else { "False" };
    let since = old
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    conditions.retain(|c| c.type_ != type_);
    conditions.push(Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: truncate(message, 1024),
        observed_generation: generation,
        last_transition_time: since,
    });
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max - 3;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// What an evaluation produced, for the status.
pub struct Evaluated<'a> {
    pub generation: Option<i64>,
    pub passport_name: &'a str,
    pub passport: &'a PassportSpec,
    pub failing_checks: &'a [String],
    /// Why evidence documents were refused.
    pub refused_evidence: &'a [String],
    pub next_evaluation_at: Option<Timestamp>,
    pub policy_name: &'a str,
    pub now: Timestamp,
    /// The post-deploy watch, when the target runs the release.
    pub watch: Option<Watch>,
    /// The releases the gate allowed and proved, and a standing recommendation.
    pub record: &'a super::releases::Record,
}

/// The post-deploy watch window of a release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    pub deployed_at: Timestamp,
    pub image: String,
    pub until: Timestamp,
}

/// The status after a successful evaluation.
pub fn evaluated(old: Option<&ReleaseGateStatus>, e: &Evaluated<'_>) -> ReleaseGateStatus {
    let old_conditions = old.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let p = e.passport;
    let mut conditions = Vec::new();
    set_condition(
        &mut conditions,
        old_conditions,
        Cond {
            type_: READY,
            status: true,
            reason: "Evaluated",
            message: format!(
                "Evaluated {} {} against Policy {}: {} (confidence {}%), Passport {}",
                p.service, p.release, e.policy_name, p.decision, p.confidence, e.passport_name
            ),
        },
        e.generation,
        e.now,
    );
    let missing: Vec<&str> = p
        .policy_results
        .iter()
        .filter(|r| r.required && r.state == ResultState::Missing)
        .map(|r| r.id.as_str())
        .collect();
    let stale: Vec<&str> = p
        .policy_results
        .iter()
        .filter(|r| r.required && r.state == ResultState::Stale)
        .map(|r| r.id.as_str())
        .collect();
    let (complete, reason, message) = match (missing.is_empty(), stale.is_empty()) {
        (true, true) => (
            true,
            "EvidenceFresh",
            "All required evidence is present and fresh".to_string(),
        ),
        (false, _) => (
            false,
            "EvidenceMissing",
            format!(
                "Missing evidence for {}{}",
                missing.join(", "),
                if stale.is_empty() {
                    String::new()
                } else {
                    format!("; stale evidence for {}", stale.join(", "))
                }
            ),
        ),
        (true, false) => (
            false,
            "EvidenceStale",
            format!("Stale evidence for {}", stale.join(", ")),
        ),
    };
    set_condition(
        &mut conditions,
        old_conditions,
        Cond {
            type_: EVIDENCE_COMPLETE,
            status: complete,
            reason,
            message,
        },
        e.generation,
        e.now,
    );
    let (accepted, reason, message) = if e.refused_evidence.is_empty() {
        (
            true,
            "EvidenceAccepted",
            "Every evidence document was accepted".to_string(),
        )
    } else {
        (
            false,
            "EvidenceRefused",
            format!(
                "{} refused and ignored: {}",
                e.refused_evidence.len(),
                e.refused_evidence.join(" ")
            ),
        )
    };
    set_condition(
        &mut conditions,
        old_conditions,
        Cond {
            type_: EVIDENCE_ACCEPTED,
            status: accepted,
            reason,
            message,
        },
        e.generation,
        e.now,
    );
    let promotable = p.decision.allows_promotion();
    let message = if promotable {
        format!("{} may be promoted ({})", p.release, p.decision)
    } else {
        let checks = if e.failing_checks.is_empty() {
            String::new()
        } else {
            format!(": {}", e.failing_checks.join(", "))
        };
        format!("{} {}{checks}", p.decision, p.release)
    };
    set_condition(
        &mut conditions,
        old_conditions,
        Cond {
            type_: PROMOTABLE,
            status: promotable,
            reason: decision_reason(p.decision),
            message,
        },
        e.generation,
        e.now,
    );
    ReleaseGateStatus {
        observed_generation: e.generation,
        decision: Some(p.decision),
        confidence: Some(p.confidence),
        passport_name: Some(e.passport_name.to_string()),
        evaluated_at: Some(e.now),
        next_evaluation_at: e.next_evaluation_at,
        deployed_at: e.watch.as_ref().map(|w| w.deployed_at),
        deployed_image: e.watch.as_ref().map(|w| w.image.clone()),
        watch_until: e.watch.as_ref().map(|w| w.until),
        failing_checks: e.failing_checks.to_vec(),
        next_actions: p.next_actions.clone(),
        conditions,
        history: old.map(|s| s.history.clone()).unwrap_or_default(),
        audit: old.and_then(|s| s.audit.clone()),
        mode: Some(p.mode),
        enforced_by: p.enforced_by.clone(),
        proven_releases: e.record.proven.clone(),
        allowed_releases: e.record.allowed.clone(),
        rollback_recommended: e.record.rollback_recommended.clone(),
    }
}

/// The status when the gate cannot be evaluated: the last decision stays on
/// record, but the gate is not Ready and not Promotable until fixed.
pub fn failed(
    old: Option<&ReleaseGateStatus>,
    generation: Option<i64>,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> ReleaseGateStatus {
    let mut status = old.cloned().unwrap_or_default();
    let old_conditions = status.conditions.clone();
    let mut conditions = status.conditions.clone();
    set_condition(
        &mut conditions,
        &old_conditions,
        Cond {
            type_: READY,
            status: false,
            reason,
            message: message.to_string(),
        },
        generation,
        now,
    );
    set_condition(
        &mut conditions,
        &old_conditions,
        Cond {
            type_: PROMOTABLE,
            status: false,
            reason,
            message: format!("Cannot be evaluated: {message}"),
        },
        generation,
        now,
    );
    status.conditions = conditions;
    status.observed_generation = generation;
    status.evaluated_at = Some(now);
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn transition_time_is_kept_while_the_status_is_unchanged() {
        let mut first = Vec::new();
        set_condition(
            &mut first,
            &[],
            Cond {
                type_: READY,
                status: true,
                reason: "Evaluated",
                message: "a".into(),
            },
            Some(1),
            ts("2026-05-17T06:00:00Z"),
        );
        let mut second = Vec::new();
        set_condition(
            &mut second,
            &first,
            Cond {
                type_: READY,
                status: true,
                reason: "Evaluated",
                message: "b".into(),
            },
            Some(2),
            ts("2026-05-17T07:00:00Z"),
        );
        assert_eq!(second[0].last_transition_time.0, ts("2026-05-17T06:00:00Z"));
        assert_eq!(second[0].message, "b");
        let mut third = Vec::new();
        set_condition(
            &mut third,
            &second,
            Cond {
                type_: READY,
                status: false,
                reason: "InvalidPolicy",
                message: "c".into(),
            },
            Some(2),
            ts("2026-05-17T08:00:00Z"),
        );
        assert_eq!(third[0].last_transition_time.0, ts("2026-05-17T08:00:00Z"));
    }

    #[test]
    fn failure_keeps_the_last_decision_but_is_not_promotable() {
        let old = ReleaseGateStatus {
            decision: Some(Decision::Allow),
            ..Default::default()
        };
        let s = failed(
            Some(&old),
            Some(3),
            "InvalidPolicy",
            "rule x: bad CEL",
            ts("2026-05-17T06:00:00Z"),
        );
        assert_eq!(s.decision, Some(Decision::Allow));
        let promotable = s
            .conditions
            .iter()
            .find(|c| c.type_ == PROMOTABLE)
            .expect("promotable");
        assert_eq!(promotable.status, "False");
        assert_eq!(promotable.reason, "InvalidPolicy");
        assert_eq!(s.observed_generation, Some(3));
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let s = truncate("é".repeat(800), 1024);
        assert!(s.len() <= 1024 && s.ends_with("..."));
    }
}
