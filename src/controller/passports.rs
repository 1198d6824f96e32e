//! Passport objects: naming, identity and retention.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::api::PassportSpec;
use crate::passport::digest;

/// Label on every Passport naming its ReleaseGate.
pub const GATE_NAME_LABEL: &str = "releasepassport.io/release-gate";
/// Label on every Passport with its decision, for selectors.
pub const DECISION_LABEL: &str = "releasepassport.io/decision";

/// Hash of what a passport decides, leaving out when it was decided and the
/// exact readings behind each rule: the generation time, the timeline,
/// observation times, observed values and evidence digests, the signing replica and the
/// envelope. Re-evaluating an
/// unchanged release therefore writes no new passport, and neither does a
/// metric that moves without changing any rule's outcome (2.70% → 2.71%);
/// any change of a rule's state, the decision, confidence, artifact, policy,
/// mode, approvals, waivers or next actions does.
pub fn identity(passport: &PassportSpec) -> Result<String, serde_json::Error> {
    let mut value = serde_json::to_value(passport)?;
    if let Some(map) = value.as_object_mut() {
        // `actor` names the replica that signed: after a leader change the
        // same decision must not be written again by the new leader.
        for key in ["generatedAt", "envelope", "trace", "actor"] {
            map.remove(key);
        }
        for list in ["policyResults", "evidence"] {
            if let Some(items) = map.get_mut(list).and_then(|v| v.as_array_mut()) {
                for item in items {
                    if let Some(obj) = item.as_object_mut() {
                        obj.remove("observedAt");
                        obj.remove("observed");
                        obj.remove("digest");
                    }
                }
            }
        }
    }
    let hash = digest::canonical_sha256(&value)?;
    Ok(hash.trim_start_matches("sha256:").to_string())
}

/// Name of the passport for a gate and an identity: `<gate>-<10 hex>`,
/// shortened so that it stays a valid object name.
pub fn name(gate: &str, identity: &str) -> String {
    let suffix = &identity[..identity.len().min(10)];
    let max_prefix = 253 - 1 - suffix.len();
    let prefix = if gate.len() > max_prefix {
        &gate[..max_prefix]
    } else {
        gate
    };
    format!("{}-{suffix}", prefix.trim_end_matches(['-', '.']))
}

/// Labels of a passport.
pub fn labels(gate: &str, passport: &PassportSpec) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_string(),
            "release-passport".to_string(),
        ),
        (GATE_NAME_LABEL.to_string(), gate_label(gate)),
        (
            DECISION_LABEL.to_string(),
            passport.decision.as_str().to_string(),
        ),
    ])
}

/// Value of the gate-name label for a gate.
pub fn gate_label(s: &str) -> String {
    // Label values are at most 63 characters; gate names longer than that
    // are cut (selection by label is then a prefix match, which is enough
    // for retention because the owner reference is checked too).
    s.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches(['-', '.', '_'])
        .to_string()
}

/// Which passports retention deletes: all but the newest `keep`, never `current`.
/// `passports` are (name, creation time) pairs in any order.
pub fn to_delete(
    mut passports: Vec<(String, Option<jiff::Timestamp>)>,
    keep: usize,
    current: &str,
) -> Vec<String> {
    passports.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    passports
        .into_iter()
        .filter(|(n, _)| n != current)
        .skip(keep.saturating_sub(1))
        .map(|(n, _)| n)
        .collect()
}

/// How many passports each gate holds, as far as this process knows, so
/// that retention lists a gate's passports only when it may hold more than
/// it keeps. A gate this process has not counted yet (it started after the
/// gate's first passport) is listed once; a gate that had no passport (its
/// status names none) starts at zero.
#[derive(Debug, Default)]
pub struct RetentionLedger {
    counts: Mutex<HashMap<String, usize>>,
}

impl RetentionLedger {
    /// Records a new passport of `gate` (`namespace/name`); true when
    /// retention must list the gate's passports now (the count is unknown or
    /// above `keep`).
    pub fn written(&self, gate: &str, had_passport: bool, keep: usize) -> bool {
        let Ok(mut counts) = self.counts.lock() else {
            return true;
        };
        match counts.get_mut(gate) {
            Some(count) => {
                *count += 1;
                *count > keep
            }
            None if !had_passport => {
                counts.insert(gate.to_string(), 1);
                1 > keep
            }
            None => true,
        }
    }

    /// Records what a listing found: `held` passports remain after retention.
    pub fn listed(&self, gate: &str, held: usize) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.insert(gate.to_string(), held);
        }
    }

    /// Forgets a gate (deleted, or its count can no longer be trusted).
    pub fn forget(&self, gate: &str) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.remove(gate);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn retention_lists_only_when_a_gate_may_hold_more_than_it_keeps() {
        let ledger = RetentionLedger::default();
        // A new gate: no listing until its fourth passport with keep = 3.
        assert!(!ledger.written("ns/new", false, 3));
        assert!(!ledger.written("ns/new", true, 3));
        assert!(!ledger.written("ns/new", true, 3));
        assert!(ledger.written("ns/new", true, 3));
        ledger.listed("ns/new", 3);
        assert!(ledger.written("ns/new", true, 3));
        // A gate that had passports before this process started: listed once.
        assert!(ledger.written("ns/old", true, 3));
        ledger.listed("ns/old", 2);
        assert!(!ledger.written("ns/old", true, 3));
        ledger.forget("ns/old");
        assert!(ledger.written("ns/old", true, 3));
    }

    use super::*;

    fn passport(observed: &str, state: &str, at: &str) -> PassportSpec {
        serde_json::from_value(serde_json::json!({
            "passportVersion": "2026-05", "service": "s", "release": "r", "environment": "e",
            "mode": "shadow", "decision": "HOLD", "confidence": 100, "generatedAt": at,
            "artifact": {"image": "i", "digest": "d"}, "policy": {"name": "p", "hash": "h"}, "actor": "a",
            "policyResults": [{"id": "error-rate", "label": "l", "state": state, "onFail": "HOLD",
                               "required": true, "observed": observed, "observedAt": at}],
            "envelope": {"payloadType": "application/vnd.in-toto+json", "payload": at,
                         "signatures": [{"keyid": "k", "sig": at}]}
        }))
        .expect("passport")
    }

    #[test]
    fn identity_ignores_time_and_readings_but_not_outcomes() {
        let a = identity(&passport("2.70028%", "fail", "2026-05-17T06:00:00Z")).expect("id");
        let b = identity(&passport("2.7001%", "fail", "2026-05-17T06:05:00Z")).expect("id");
        let c = identity(&passport("1.2%", "pass", "2026-05-17T06:05:00Z")).expect("id");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn names_are_valid_and_stable() {
        let n = name("payment-api-production", "0123456789abcdef");
        assert_eq!(n, "payment-api-production-0123456789");
        let long = "a".repeat(300);
        assert!(name(&long, "0123456789abcdef").len() <= 253);
    }

    #[test]
    fn retention_keeps_the_newest_and_the_current() {
        let t = |s: &str| Some(s.parse::<jiff::Timestamp>().expect("ts"));
        let all = vec![
            ("a".to_string(), t("2026-05-17T01:00:00Z")),
            ("b".to_string(), t("2026-05-17T02:00:00Z")),
            ("c".to_string(), t("2026-05-17T03:00:00Z")),
            ("d".to_string(), t("2026-05-17T04:00:00Z")),
        ];
        assert_eq!(to_delete(all.clone(), 2, "d"), vec!["b", "a"]);
        // The current passport is kept even when it is not the newest.
        assert_eq!(to_delete(all, 2, "a"), vec!["c", "b"]);
    }
}
