//! The governance history of a gate (pure): what changed between the last
//! recorded status and a new evaluation, as `status.history` entries.
//!
//! Entries are derived by comparing the spec and the new Passport with what
//! the status already records (`status.decision` and `status.audit`), so a
//! replay of the same evaluation (a retry, a controller restart, a new
//! leader) records nothing twice.

use jiff::{SignedDuration, Timestamp};

use crate::api::{
    Approval, AuditCursor, Decision, GateHistoryEntry, HISTORY_LIMIT, HistoryType, PassportSpec,
    ReleaseGateSpec, ReleaseGateStatus, Waiver,
};
use crate::passport::redact::redact_str;

/// Longest message of an entry: also the longest Event note.
pub const MESSAGE_LIMIT: usize = 1000;

/// A new evaluation, as the history sees it.
pub struct Observation<'a> {
    /// The gate's spec that was evaluated.
    pub spec: &'a ReleaseGateSpec,
    /// The decision just made.
    pub passport: &'a PassportSpec,
    /// Name of the Passport on record for it.
    pub passport_name: &'a str,
    /// Key id of the signature of the Passport on record.
    pub signing_key_id: &'a str,
    /// Ids of the rules that keep the decision from ALLOW (the status's `failingChecks`).
    pub failing_checks: &'a [String],
    /// When the target was first seen running the gate's image, if it was.
    pub deployed_at: Option<Timestamp>,
    pub now: Timestamp,
}

/// A promotion, counted once per image.
#[derive(Clone, Debug, PartialEq)]
pub struct Promotion {
    pub at: Timestamp,
    /// Commit → promotion, when the gate declares its commit timestamp.
    pub lead_time: Option<SignedDuration>,
}

/// What a new evaluation adds: history entries, the cursor to store with
/// them, and the release signals the controller turns into metrics. Every
/// part is derived from the stored status, so a replay yields nothing new.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recorded {
    /// Order: approvals, waivers, signing key, then the decision they led to.
    pub entries: Vec<GateHistoryEntry>,
    pub cursor: AuditCursor,
    /// The gate's image was promoted (first allowed, or first seen running).
    pub promotion: Option<Promotion>,
    /// The decision just turned ROLLBACK_RECOMMENDED.
    pub rollback_recommended: bool,
    /// ROLLBACK_RECOMMENDED → now, when the gate allows promotion again.
    pub time_to_restore: Option<SignedDuration>,
    /// First REQUIRE_APPROVAL → now, when an approved gate allows promotion.
    pub approval_wait: Option<SignedDuration>,
}

/// What changed between the stored status and a new evaluation.
pub fn record(old: Option<&ReleaseGateStatus>, o: &Observation<'_>) -> Recorded {
    let cursor = old.and_then(|s| s.audit.clone()).unwrap_or_default();
    let mut entries = Vec::new();
    let p = o.passport;
    let entry = |type_, message: String| GateHistoryEntry {
        at: o.now,
        type_,
        decision: None,
        previous_decision: None,
        passport: None,
        actor: None,
        message: bounded(&message),
    };

    let approvals: Vec<String> = o.spec.approvals.iter().map(approval_key).collect();
    for (a, key) in o.spec.approvals.iter().zip(&approvals) {
        if !cursor.approvals.contains(key) {
            let mut e = entry(
                HistoryType::ApprovalAdded,
                approval_message(a, &p.service, &p.release),
            );
            e.actor = Some(redact_str(&a.actor).into_owned());
            entries.push(e);
        }
    }
    let waivers: Vec<String> = o.spec.waivers.iter().map(waiver_key).collect();
    for (w, key) in o.spec.waivers.iter().zip(&waivers) {
        if !cursor.waivers.contains(key) {
            let mut e = entry(HistoryType::WaiverAdded, waiver_added_message(w));
            e.actor = Some(redact_str(&w.actor).into_owned());
            entries.push(e);
        }
    }
    let expired: Vec<String> = o
        .spec
        .waivers
        .iter()
        .zip(&waivers)
        .filter(|(w, _)| w.expires_at <= o.now)
        .map(|(_, k)| k.clone())
        .collect();
    for (w, key) in o.spec.waivers.iter().zip(&waivers) {
        if w.expires_at <= o.now && !cursor.expired_waivers.contains(key) {
            let mut e = entry(HistoryType::WaiverExpired, waiver_expired_message(w));
            e.actor = Some(redact_str(&w.actor).into_owned());
            entries.push(e);
        }
    }
    if let Some(previous) = cursor.signing_key_id.as_deref()
        && previous != o.signing_key_id
    {
        let mut e = entry(
            HistoryType::SigningKeyChanged,
            key_message(o.passport_name, o.signing_key_id, previous),
        );
        e.passport = Some(o.passport_name.to_string());
        e.decision = Some(p.decision);
        entries.push(e);
    }
    let previous = old.and_then(|s| s.decision);
    let changed = previous != Some(p.decision);
    if changed {
        let mut e = entry(
            HistoryType::DecisionChanged,
            decision_message(previous, p, o.passport_name, o.failing_checks),
        );
        e.decision = Some(p.decision);
        e.previous_decision = previous;
        e.passport = Some(o.passport_name.to_string());
        entries.push(e);
    }

    // Release signals.
    let image = &o.spec.artifact.image;
    let promoted_at = match (p.decision.allows_promotion(), o.deployed_at) {
        (true, Some(d)) => Some(d.min(o.now)),
        (true, None) => Some(o.now),
        (false, d) => d,
    };
    let promotion = promoted_at
        .filter(|_| cursor.promoted_image.as_deref() != Some(image.as_str()))
        .map(|at| Promotion {
            at,
            lead_time: o
                .spec
                .artifact
                .commit_timestamp
                .map(|c| at.duration_since(c))
                .filter(|d| !d.is_negative()),
        });
    let history = old.map(|s| s.history.as_slice()).unwrap_or_default();
    let restored = changed && p.decision.allows_promotion();
    let time_to_restore = restored
        .then(|| episode_start(history, Decision::RollbackRecommended))
        .flatten()
        .map(|start| o.now.duration_since(start));
    let approval_wait = (restored && !o.spec.approvals.is_empty())
        .then(|| episode_start(history, Decision::RequireApproval))
        .flatten()
        .map(|start| o.now.duration_since(start));

    Recorded {
        entries,
        cursor: AuditCursor {
            signing_key_id: Some(o.signing_key_id.to_string()),
            approvals,
            waivers,
            expired_waivers: expired,
            promoted_image: if promotion.is_some() {
                Some(image.clone())
            } else {
                cursor.promoted_image.clone()
            },
        },
        promotion,
        rollback_recommended: changed && p.decision == Decision::RollbackRecommended,
        time_to_restore,
        approval_wait,
    }
}

/// When the current run of decisions that do not allow promotion first
/// reached `decision`, from the recorded decision changes (newest last).
fn episode_start(history: &[GateHistoryEntry], decision: Decision) -> Option<Timestamp> {
    history
        .iter()
        .rev()
        .filter(|e| e.type_ == HistoryType::DecisionChanged)
        .take_while(|e| e.decision.is_some_and(|d| !d.allows_promotion()))
        .filter(|e| e.decision == Some(decision))
        .last()
        .map(|e| e.at)
}

/// Appends entries to a history, keeping the newest [`HISTORY_LIMIT`]. An
/// entry equal (but for its time) to the latest entry of its type is a
/// replay and is dropped; returns the entries actually appended.
pub fn append(
    history: &mut Vec<GateHistoryEntry>,
    entries: Vec<GateHistoryEntry>,
) -> Vec<GateHistoryEntry> {
    let mut added = Vec::new();
    for e in entries {
        let replay = history
            .iter()
            .rev()
            .find(|h| h.type_ == e.type_)
            .is_some_and(|h| same_but_time(h, &e));
        if !replay {
            history.push(e.clone());
            added.push(e);
        }
    }
    if history.len() > HISTORY_LIMIT {
        history.drain(..history.len() - HISTORY_LIMIT);
    }
    added
}

fn same_but_time(a: &GateHistoryEntry, b: &GateHistoryEntry) -> bool {
    a.type_ == b.type_
        && a.decision == b.decision
        && a.previous_decision == b.previous_decision
        && a.passport == b.passport
        && a.actor == b.actor
        && a.message == b.message
}

/// Redacted and cut to [`MESSAGE_LIMIT`] bytes on a character boundary.
pub fn bounded(message: &str) -> String {
    let s = redact_str(message);
    if s.len() <= MESSAGE_LIMIT {
        return s.into_owned();
    }
    let mut cut = MESSAGE_LIMIT - 3;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &s[..cut])
}

fn approval_key(a: &Approval) -> String {
    redact_str(&format!(
        "{}|{}|{}",
        a.actor,
        a.reference.as_deref().unwrap_or(""),
        a.approved_at.map(|t| t.to_string()).unwrap_or_default()
    ))
    .into_owned()
}

fn waiver_key(w: &Waiver) -> String {
    redact_str(&format!("{}|{}|{}", w.rule_id, w.actor, w.expires_at)).into_owned()
}

/// `Decision HOLD → ALLOW for payment-api v2.18.4 (confidence 100%), Passport <name>; failing: a, b`
pub fn decision_message(
    previous: Option<Decision>,
    p: &PassportSpec,
    passport: &str,
    failing_checks: &[String],
) -> String {
    let change = match previous {
        Some(prev) => format!("Decision {prev} → {}", p.decision),
        None => format!("Decision {}", p.decision),
    };
    let failing = if failing_checks.is_empty() {
        String::new()
    } else {
        format!("; failing: {}", failing_checks.join(", "))
    };
    format!(
        "{change} for {} {} (confidence {}%), Passport {passport}{failing}",
        p.service, p.release, p.confidence
    )
}

/// `Approval by alice@example.com (CHG-1042) for payment-api v2.18.4`
pub fn approval_message(a: &Approval, service: &str, release: &str) -> String {
    let reference = a
        .reference
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    format!("Approval by {}{reference} for {service} {release}", a.actor)
}

/// `Waiver of rule error-rate by bob until 2026-05-18T00:00:00Z: <reason>`
pub fn waiver_added_message(w: &Waiver) -> String {
    format!(
        "Waiver of rule {} by {} until {}: {}",
        w.rule_id, w.actor, w.expires_at, w.reason
    )
}

/// `Waiver of rule error-rate by bob expired at 2026-05-18T00:00:00Z`
pub fn waiver_expired_message(w: &Waiver) -> String {
    format!(
        "Waiver of rule {} by {} expired at {}",
        w.rule_id, w.actor, w.expires_at
    )
}

/// `Passport <name> is signed with key <new>; the previous Passport was signed with <old>`
pub fn key_message(passport: &str, key_id: &str, previous: &str) -> String {
    format!(
        "Passport {passport} is signed with key {key_id}; the previous Passport was signed with {previous}"
    )
}
