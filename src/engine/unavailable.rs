//! Evidence a ConnectorScope could not read: the passport says which scope
//! failed and why, on the rules left without evidence and as the first next
//! action, so that a HOLD for missing evidence names what to fix (e.g. the
//! missing Secret) instead of asking to "attach evidence".

use crate::api::{PassportSpec, ResultState, TraceStep};
use crate::passport::redact;

/// One ConnectorScope that produced no evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable {
    /// Connector whose facts are therefore missing, e.g. `pagerduty`.
    pub connector: String,
    /// Name of the ConnectorScope.
    pub scope: String,
    /// Its health, e.g. `CredentialRequired`.
    pub health: String,
    /// Why (never a credential).
    pub message: String,
}

/// Writes the failures of `unavailable` scopes into an evaluated (not yet
/// signed) passport: the reason of each missing rule of their connector, a
/// next action per failure that left a rule missing (before the others),
/// and a trace step each. Everything added is redacted.
pub fn explain_unavailable(
    passport: &mut PassportSpec,
    unavailable: &[Unavailable],
    at: jiff::Timestamp,
) {
    let mut actions = Vec::new();
    for u in unavailable {
        // Not "CredentialRequired: ...", which reads as an assignment to redaction.
        let why = format!(
            "ConnectorScope {} ({}) has no evidence: {}",
            u.scope, u.health, u.message
        );
        let why = redact::redact_str(&why).into_owned();
        let prefix = format!("{}/", u.connector);
        let mut left_missing = false;
        for r in &mut passport.policy_results {
            if r.state == ResultState::Missing
                && r.source.as_deref().is_some_and(|s| s.starts_with(&prefix))
            {
                r.reason = Some(why.clone());
                left_missing |= r.required;
            }
        }
        passport.trace.push(TraceStep {
            at,
            step: "evidence".into(),
            message: why.clone(),
        });
        if left_missing && passport.decision != crate::api::Decision::Allow {
            let action = format!("Fix it: {why}. The gate is evaluated again by itself.");
            if !actions.contains(&action) {
                actions.push(action);
            }
        }
    }
    if !actions.is_empty() {
        actions.extend(std::mem::take(&mut passport.next_actions));
        passport.next_actions = actions;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Decision, PolicyResult};

    fn passport(results: Vec<PolicyResult>, decision: Decision) -> PassportSpec {
        let mut p: PassportSpec = serde_json::from_value(serde_json::json!({
            "passportVersion": "2026-05", "service": "s", "release": "r", "environment": "e",
            "mode": "shadow", "decision": "HOLD", "confidence": 50,
            "generatedAt": "2026-05-03T09:30:00Z",
            "artifact": {"image": "i@sha256:0", "digest": "sha256:0"},
            "policy": {"name": "p", "hash": "h"}, "actor": "a",
            "nextActions": ["Attach pagerduty evidence."],
            "signature": {"algorithm": "ed25519", "keyId": "", "value": ""}
        }))
        .unwrap();
        p.policy_results = results;
        p.decision = decision;
        p
    }

    fn missing(id: &str, source: &str) -> PolicyResult {
        serde_json::from_value(serde_json::json!({
            "id": id, "label": id, "state": "missing", "onFail": "HOLD", "required": true, "source": source
        }))
        .unwrap()
    }

    #[test]
    fn a_hold_for_missing_evidence_names_the_failed_scope_first() {
        let mut p = passport(
            vec![
                missing("sev1", "pagerduty/active_sev1_incidents"),
                missing("other", "jira/x"),
            ],
            Decision::Hold,
        );
        explain_unavailable(
            &mut p,
            &[Unavailable {
                connector: "pagerduty".into(),
                scope: "payment-api-pagerduty".into(),
                health: "CredentialRequired".into(),
                message: "Secret pagerduty-token not found in namespace payments".into(),
            }],
            "2026-05-03T09:30:00Z".parse().unwrap(),
        );
        assert_eq!(
            p.next_actions[0],
            "Fix it: ConnectorScope payment-api-pagerduty (CredentialRequired) has no evidence: Secret pagerduty-token not found in namespace payments. The gate is evaluated again by itself."
        );
        assert_eq!(p.next_actions[1], "Attach pagerduty evidence.");
        assert!(
            p.policy_results[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("pagerduty-token")
        );
        assert_eq!(p.policy_results[1].reason, None);
    }
}
