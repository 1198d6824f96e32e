//! The governance history of a gate (pure): what changed between the last
//! recorded status and a new evaluation, as `status.history` entries.
//!
//! Entries are derived by comparing the spec and the new Passport with what
//! the status already records (`status.decision` and `status.audit`), so a
//! replay of the same evaluation (a retry, a controller restart, a new
//! leader) records nothing twice.

use jiff::Timestamp;

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
    pub now: Timestamp,
}

/// The entries a new evaluation adds, and the cursor to store with them.
/// Order: approvals, waivers, signing key, then the decision they led to.
pub fn record(
    old: Option<&ReleaseGateStatus>,
    o: &Observation<'_>,
) -> (Vec<GateHistoryEntry>, AuditCursor) {
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
    if previous != Some(p.decision) {
        let mut e = entry(
            HistoryType::DecisionChanged,
            decision_message(previous, p, o.passport_name),
        );
        e.decision = Some(p.decision);
        e.previous_decision = previous;
        e.passport = Some(o.passport_name.to_string());
        entries.push(e);
    }
    let cursor = AuditCursor {
        signing_key_id: Some(o.signing_key_id.to_string()),
        approvals,
        waivers,
        expired_waivers: expired,
    };
    (entries, cursor)
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
pub fn decision_message(previous: Option<Decision>, p: &PassportSpec, passport: &str) -> String {
    let change = match previous {
        Some(prev) => format!("Decision {prev} → {}", p.decision),
        None => format!("Decision {}", p.decision),
    };
    let failing: Vec<&str> = p
        .policy_results
        .iter()
        .filter(|r| {
            matches!(
                r.state,
                crate::api::ResultState::Fail
                    | crate::api::ResultState::Stale
                    | crate::api::ResultState::Missing
            )
        })
        .map(|r| r.id.as_str())
        .collect();
    let failing = if failing.is_empty() {
        String::new()
    } else {
        format!("; failing: {}", failing.join(", "))
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
