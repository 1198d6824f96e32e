//! The audit trail: governance events from gate histories and Kubernetes
//! Events, merged, and exported as JSON or CSV (redacted).

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Event;
use serde::Serialize;

use crate::api::{Decision, HistoryType, ReleaseGate};
use crate::passport::redact::redact_str;

/// A history entry and an Event further apart than this are different events.
const SAME_EVENT_TOLERANCE: SignedDuration = SignedDuration::from_secs(600);

/// One governance event.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub at: Timestamp,
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    pub kind: HistoryType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_decision: Option<Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passport: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub message: String,
}

/// The events of a gate's `status.history`, oldest first.
pub fn audit_from_gate(gate: &ReleaseGate) -> Vec<AuditEvent> {
    let namespace = gate.metadata.namespace.clone().unwrap_or_default();
    let name = gate.metadata.name.clone();
    gate.status
        .iter()
        .flat_map(|s| &s.history)
        .map(|h| AuditEvent {
            at: h.at,
            namespace: namespace.clone(),
            gate: name.clone(),
            kind: h.type_,
            decision: h.decision,
            previous_decision: h.previous_decision,
            passport: h.passport.clone(),
            actor: h.actor.clone(),
            message: h.message.clone(),
        })
        .collect()
}

/// An Event recorded on a ReleaseGate with one of our reasons (the
/// [`HistoryType`] names, `AdmissionDenied` from the webhook); `None` for
/// any other Event. Structured fields are read back from the note.
pub fn audit_from_event(ev: &Event) -> Option<AuditEvent> {
    let kind = HistoryType::from_reason(ev.reason.as_deref()?)?;
    let object = &ev.involved_object;
    if object.kind.as_deref() != Some("ReleaseGate")
        || object
            .api_version
            .as_deref()
            .is_some_and(|v| !v.starts_with(crate::api::GROUP))
    {
        return None;
    }
    let at = ev
        .event_time
        .as_ref()
        .map(|t| t.0)
        .or(ev.first_timestamp.as_ref().map(|t| t.0))
        .or(ev.last_timestamp.as_ref().map(|t| t.0))
        .or(ev.metadata.creation_timestamp.as_ref().map(|t| t.0))?;
    let message = ev.message.clone().unwrap_or_default();
    let (decision, previous_decision) = decisions_in(kind, &message);
    Some(AuditEvent {
        at,
        namespace: object
            .namespace
            .clone()
            .or_else(|| ev.metadata.namespace.clone())
            .unwrap_or_default(),
        gate: object.name.clone(),
        kind,
        decision,
        previous_decision,
        passport: word_after(&message, "Passport "),
        actor: actor_in(kind, &message),
        message,
    })
}

/// (decision, previous decision) named in a note.
fn decisions_in(kind: HistoryType, message: &str) -> (Option<Decision>, Option<Decision>) {
    let decisions: Vec<Decision> = message
        .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
        .filter_map(decision_named)
        .collect();
    match kind {
        HistoryType::DecisionChanged if message.contains(" → ") && decisions.len() >= 2 => {
            (Some(decisions[1]), Some(decisions[0]))
        }
        HistoryType::DecisionChanged | HistoryType::AdmissionDenied => {
            (decisions.first().copied(), None)
        }
        _ => (None, None),
    }
}

fn decision_named(word: &str) -> Option<Decision> {
    Decision::ALL.into_iter().find(|d| d.as_str() == word)
}

/// The word after `marker`, up to white space or punctuation.
fn word_after(message: &str, marker: &str) -> Option<String> {
    let start = message.find(marker)? + marker.len();
    let word: String = message[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ';' | ')' | '(' | ':'))
        .collect();
    let word = word.trim_end_matches('.');
    (!word.is_empty()).then(|| word.to_string())
}

fn actor_in(kind: HistoryType, message: &str) -> Option<String> {
    let (start, ends): (&str, &[&str]) = match kind {
        HistoryType::ApprovalAdded => ("Approval by ", &[" (", " for "]),
        HistoryType::WaiverAdded => (" by ", &[" until "]),
        HistoryType::WaiverExpired => (" by ", &[" expired at "]),
        _ => return None,
    };
    let from = message.find(start)? + start.len();
    let rest = &message[from..];
    let end = ends
        .iter()
        .filter_map(|e| rest.find(e))
        .min()
        .unwrap_or(rest.len());
    let actor = rest[..end].trim();
    (!actor.is_empty()).then(|| actor.to_string())
}

/// Both lists, newest first. A history entry and the Event published for it
/// (same namespace, gate, kind and message, at most ten minutes apart) are
/// one event: the structured fields of both are kept.
pub fn merge_audit(a: Vec<AuditEvent>, b: Vec<AuditEvent>) -> Vec<AuditEvent> {
    let mut all: Vec<AuditEvent> = a.into_iter().chain(b).collect();
    all.sort_by(|x, y| {
        y.at.cmp(&x.at)
            .then_with(|| x.namespace.cmp(&y.namespace))
            .then_with(|| x.gate.cmp(&y.gate))
            .then_with(|| x.kind.cmp(&y.kind))
            .then_with(|| x.message.cmp(&y.message))
    });
    let mut out: Vec<AuditEvent> = Vec::with_capacity(all.len());
    let mut seen: HashMap<(String, Option<String>, HistoryType, String), Vec<usize>> =
        HashMap::new();
    for e in all {
        let key = (
            e.namespace.clone(),
            e.gate.clone(),
            e.kind,
            e.message.clone(),
        );
        let same = seen.get(&key).and_then(|idx| {
            idx.iter()
                .copied()
                .find(|&i| (out[i].at.duration_since(e.at)).abs() <= SAME_EVENT_TOLERANCE)
        });
        match same {
            Some(i) => {
                let kept = &mut out[i];
                kept.decision = kept.decision.or(e.decision);
                kept.previous_decision = kept.previous_decision.or(e.previous_decision);
                kept.passport = kept.passport.take().or(e.passport);
                kept.actor = kept.actor.take().or(e.actor);
            }
            None => {
                seen.entry(key).or_default().push(out.len());
                out.push(e);
            }
        }
    }
    out
}

fn redacted(events: &[AuditEvent]) -> Vec<AuditEvent> {
    let r = |s: &str| redact_str(s).into_owned();
    events
        .iter()
        .map(|e| AuditEvent {
            at: e.at,
            namespace: r(&e.namespace),
            gate: e.gate.as_deref().map(r),
            kind: e.kind,
            decision: e.decision,
            previous_decision: e.previous_decision,
            passport: e.passport.as_deref().map(r),
            actor: e.actor.as_deref().map(r),
            message: r(&e.message),
        })
        .collect()
}

/// The events as a JSON array (redacted).
pub fn audit_json(events: &[AuditEvent]) -> String {
    // Plain data with string keys: serialising it cannot fail.
    serde_json::to_string_pretty(&redacted(events)).unwrap_or_else(|_| "[]".to_string())
}

/// The events as CSV (RFC 4180, redacted), one row per event.
pub fn audit_csv(events: &[AuditEvent]) -> String {
    let mut out =
        String::from("at,namespace,gate,type,decision,previous_decision,passport,actor,message\n");
    for e in redacted(events) {
        let fields = [
            e.at.to_string(),
            e.namespace,
            e.gate.unwrap_or_default(),
            e.kind.to_string(),
            e.decision.map(|d| d.to_string()).unwrap_or_default(),
            e.previous_decision
                .map(|d| d.to_string())
                .unwrap_or_default(),
            e.passport.unwrap_or_default(),
            e.actor.unwrap_or_default(),
            e.message,
        ];
        let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// A CSV field (RFC 4180); a leading formula character is neutralised with
/// `'` so spreadsheets do not evaluate it.
pub(crate) fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}
