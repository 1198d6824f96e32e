//! The governance history of a gate (pure): what changed between the last
//! recorded status and a new evaluation, as `status.history` entries.
//!
//! Entries are derived by comparing the spec and the new Passport with what
//! the status already records (`status.decision` and `status.audit`), so a
//! replay of the same evaluation (a retry, a controller restart, a new
//! leader) records nothing twice.

use jiff::{SignedDuration, Timestamp};

use crate::api::{
    ApprovalRecord, AuditCursor, Decision, GateHistoryEntry, HISTORY_LIMIT, HistoryType,
    PassportSpec, ReleaseGateSpec, ReleaseGateStatus, WaiverRecord,
};
use crate::engine::GrantOutcome;
use crate::passport::redact::redact_str;

/// Most keys kept in each list of the audit cursor (the CRD's `maxItems`).
const CURSOR_LIMIT: usize = 100;

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
    /// Why each approval and waiver counts or not (by object name).
    pub grants: &'a [GrantOutcome],
    /// Admission Events of the webhook for this gate (refused bypasses,
    /// admitted rollbacks), oldest first; those already recorded are skipped.
    pub admissions: &'a [AdmissionEvent],
    /// The target runs a proven release again after ROLLBACK_RECOMMENDED:
    /// the sentence saying so.
    pub restored: Option<String>,
    pub now: Timestamp,
}

/// An Event the admission webhook recorded on the gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionEvent {
    /// Name of the Event object (recorded once by name).
    pub name: String,
    pub type_: HistoryType,
    /// The authenticated user of the admission request.
    pub actor: Option<String>,
    pub message: String,
    pub at: Timestamp,
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
    /// Order: mode, approvals, waivers, admissions, signing key, restore,
    /// then the decision they led to.
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

    let actor_entry = |type_, message: String, actor: Option<&str>| {
        let mut e = entry(type_, message);
        e.actor = actor.map(|a| redact_str(a).into_owned());
        e
    };

    let mode = format!("{}/{}", p.requested_mode.unwrap_or(p.mode), p.mode);
    // A change of mode, or a first evaluation where a platform minimum overrode the gate.
    if cursor.mode.as_deref() != Some(mode.as_str())
        && (cursor.mode.is_some() || p.requested_mode.is_some())
    {
        entries.push(actor_entry(
            HistoryType::ModeChanged,
            mode_message(p, cursor.mode.as_deref()),
            o.spec
                .applied_by
                .as_ref()
                .and_then(|a| a.configuration.as_deref()),
        ));
    }

    let why = |name: Option<&str>| {
        o.grants
            .iter()
            .find(|g| Some(g.name.as_str()) == name)
            .map(|g| g.message.as_str())
            .unwrap_or_default()
    };
    let approvals: Vec<String> = p.approvals.iter().filter_map(|a| a.name.clone()).collect();
    for a in p.approvals.iter().filter(|a| {
        a.name
            .as_ref()
            .is_some_and(|n| !cursor.approvals.contains(n))
    }) {
        let type_ = if a.counted {
            HistoryType::ApprovalAdded
        } else {
            HistoryType::ApprovalRefused
        };
        let message = approval_message(a, &p.service, &p.release, why(a.name.as_deref()));
        entries.push(actor_entry(type_, message, Some(&a.actor)));
    }
    let waivers: Vec<String> = p.waivers.iter().filter_map(|w| w.name.clone()).collect();
    for w in p
        .waivers
        .iter()
        .filter(|w| w.name.as_ref().is_some_and(|n| !cursor.waivers.contains(n)))
    {
        let type_ = match w.state.as_str() {
            "active" | "expired" => HistoryType::WaiverAdded,
            _ => HistoryType::WaiverRefused,
        };
        let message = waiver_added_message(w, why(w.name.as_deref()));
        entries.push(actor_entry(type_, message, Some(&w.actor)));
    }
    let expired: Vec<String> = p
        .waivers
        .iter()
        .filter(|w| w.state == "expired")
        .filter_map(|w| w.name.clone())
        .collect();
    for w in p.waivers.iter().filter(|w| {
        w.state == "expired"
            && w.name
                .as_ref()
                .is_some_and(|n| !cursor.expired_waivers.contains(n))
    }) {
        entries.push(actor_entry(
            HistoryType::WaiverExpired,
            waiver_expired_message(w),
            Some(&w.actor),
        ));
    }
    let mut admission_events = cursor.admission_events.clone();
    for a in o
        .admissions
        .iter()
        .filter(|a| !cursor.admission_events.contains(&a.name))
    {
        let mut e = actor_entry(a.type_, a.message.clone(), a.actor.as_deref());
        e.at = a.at;
        entries.push(e);
        admission_events.push(a.name.clone());
    }
    if let Some(message) = &o.restored {
        entries.push(entry(HistoryType::Restored, message.clone()));
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
    let approval_wait = (restored && p.approvals.iter().any(|a| a.counted))
        .then(|| episode_start(history, Decision::RequireApproval))
        .flatten()
        .map(|start| o.now.duration_since(start));

    Recorded {
        entries,
        cursor: AuditCursor {
            signing_key_id: Some(o.signing_key_id.to_string()),
            approvals: newest(approvals),
            waivers: newest(waivers),
            expired_waivers: newest(expired),
            mode: Some(mode),
            admission_events: newest(admission_events),
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

/// The last [`CURSOR_LIMIT`] keys.
fn newest(mut keys: Vec<String>) -> Vec<String> {
    if keys.len() > CURSOR_LIMIT {
        keys.drain(..keys.len() - CURSOR_LIMIT);
    }
    keys
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

/// `Approval by alice@example.com (CHG-1042) for payment-api v2.18.4`, and
/// why it does not count when it does not.
pub fn approval_message(a: &ApprovalRecord, service: &str, release: &str, why: &str) -> String {
    let reference = a
        .reference
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let verdict = if a.counted || why.is_empty() {
        String::new()
    } else {
        format!(": {why}")
    };
    format!(
        "Approval by {}{reference} for {service} {release}{verdict}",
        a.actor
    )
}

/// `Waiver of rule error-rate by bob until 2026-05-18T00:00:00Z: <reason>`,
/// and why it does not count when it does not.
pub fn waiver_added_message(w: &WaiverRecord, why: &str) -> String {
    let verdict = match w.state.as_str() {
        "active" | "expired" => String::new(),
        _ => format!(" ({why})"),
    };
    format!(
        "Waiver of rule {} by {} until {}: {}{verdict}",
        w.rule_id, w.actor, w.expires_at, w.reason
    )
}

/// `Waiver of rule error-rate by bob expired at 2026-05-18T00:00:00Z`
pub fn waiver_expired_message(w: &WaiverRecord) -> String {
    format!(
        "Waiver of rule {} by {} expired at {}",
        w.rule_id, w.actor, w.expires_at
    )
}

/// `Mode of payment-api-production: enforce (was shadow); the gate asks for shadow: namespace ...`
pub fn mode_message(p: &PassportSpec, previous: Option<&str>) -> String {
    let was = previous
        .map(|m| format!(" (was {})", m.replace('/', " applied as ")))
        .unwrap_or_default();
    let why = match (&p.requested_mode, &p.enforced_by) {
        (Some(requested), Some(by)) => format!("; the gate asks for {requested}, {by}"),
        _ => String::new(),
    };
    format!(
        "{} {} is evaluated in {} mode{was}{why}",
        p.service, p.environment, p.mode
    )
}

/// `Passport <name> is signed with key <new>; the previous Passport was signed with <old>`
pub fn key_message(passport: &str, key_id: &str, previous: &str) -> String {
    format!(
        "Passport {passport} is signed with key {key_id}; the previous Passport was signed with {previous}"
    )
}
