//! Pushed evidence on a ReleaseGate, checked at admission (pure): an
//! observation beyond the clock-skew allowance in the future is refused, so
//! that nobody can push facts that never go stale. This is the one check of
//! a gate the apiserver cannot run itself (CEL has no clock); the operator
//! repeats it at every evaluation, so evidence that got in while the webhook
//! was unreachable is still ignored there.

use jiff::{SignedDuration, Timestamp};

use super::decide::{GateEvent, Outcome, Reason, Verdict};
use crate::engine::CLOCK_SKEW_SECONDS;

/// Decides a CREATE or UPDATE of a ReleaseGate from its pushed evidence's
/// observation times, `(connector, fact or "", observedAt)`.
pub fn decide(
    namespace: &str,
    name: &str,
    times: &[(&str, &str, &str)],
    user: Option<&str>,
    now: Timestamp,
) -> Outcome {
    let limit = now
        .checked_add(SignedDuration::from_secs(CLOCK_SKEW_SECONDS))
        .unwrap_or(Timestamp::MAX);
    let future: Vec<String> = times
        .iter()
        .filter_map(|(connector, fact, at)| {
            // An unreadable time is the CRD schema's to refuse, not ours.
            let t: Timestamp = at.parse().ok()?;
            (t > limit).then(|| {
                if fact.is_empty() {
                    format!("{connector} evidence observed at {at}")
                } else {
                    format!("{connector}/{fact} observed at {at}")
                }
            })
        })
        .collect();
    if future.is_empty() {
        return Outcome {
            verdict: Verdict::Admit,
            reason: Reason::Unchanged,
            mode: None,
            event: None,
        };
    }
    let message = format!(
        "Release Passport refused ReleaseGate {namespace}/{name}: pushed evidence must not be observed in the future (more than {CLOCK_SKEW_SECONDS}s after the apiserver's clock, {now}): {}. Push observations with the time they were made.",
        future.join(", ")
    );
    Outcome {
        verdict: Verdict::Deny(message.clone()),
        reason: Reason::FutureEvidence,
        mode: None,
        event: Some(GateEvent {
            reason: "EvidenceRefused",
            note: format!(
                "Pushed evidence refused: {} (in the future)",
                future.join(", ")
            ),
            warning: true,
            actor: user.map(str::to_string),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_in_the_future_beyond_the_allowance_are_refused() {
        let now: Timestamp = "2026-05-17T06:00:00Z".parse().expect("ts");
        let ok = decide(
            "payments",
            "g",
            &[("ingest", "", "2026-05-17T06:00:30Z")],
            Some("ci"),
            now,
        );
        assert!(ok.allowed());
        let refused = decide(
            "payments",
            "g",
            &[
                ("ingest", "", "2026-05-17T05:00:00Z"),
                ("ingest", "scan", "2027-01-01T00:00:00Z"),
            ],
            Some("ci"),
            now,
        );
        let Verdict::Deny(message) = &refused.verdict else {
            panic!("refused");
        };
        assert!(
            message.contains("must not be observed in the future")
                && message.contains("ingest/scan observed at 2027-01-01T00:00:00Z"),
            "{message}"
        );
        assert_eq!(
            refused.event.as_ref().and_then(|e| e.actor.as_deref()),
            Some("ci")
        );
    }
}
