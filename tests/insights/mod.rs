//! Builders of gates and passports for the insights tests.
#![allow(dead_code)]

use releasepassport::api::{Passport, ReleaseGate};
use serde_json::{Value, json};

pub const NS: &str = "payments";

pub fn digest(n: u32) -> String {
    format!("sha256:{:064x}", n)
}

pub fn image(n: u32) -> String {
    format!("registry.example.com/payment-api@{}", digest(n))
}

pub fn ts(s: &str) -> jiff::Timestamp {
    s.parse().expect("timestamp")
}

/// A gate of `payment-api` in `production`; `extra` is merged into the spec
/// and `status` is its status.
pub fn gate(name: &str, mode: &str, image_n: u32, extra: Value, status: Value) -> ReleaseGate {
    let mut spec = json!({
        "service": "payment-api", "release": "v1", "environment": "production",
        "mode": mode, "policyRef": {"name": "p"},
        "artifact": {"image": image(image_n)}
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "releasepassport.io/v1alpha1", "kind": "ReleaseGate",
        "metadata": {"name": name, "namespace": NS, "generation": 1},
        "spec": spec, "status": status
    }))
    .expect("gate")
}

/// One passport of a gate. `results` are (id, state, connector) triples.
pub struct P<'a> {
    pub gate: &'a str,
    pub name: &'a str,
    pub at: &'a str,
    pub decision: &'a str,
    pub image_n: u32,
    pub release: &'a str,
    pub mode: &'a str,
    pub confidence: u8,
    pub approvals: usize,
    pub results: &'a [(&'a str, &'a str, &'a str)],
    pub evidence: &'a [(&'a str, &'a str)],
    /// Merged into the passport's spec (e.g. approvals, waivers).
    pub extra: Value,
}

impl Default for P<'_> {
    fn default() -> Self {
        P {
            gate: "payment-api-production",
            name: "pp",
            at: "2026-05-17T06:00:00Z",
            decision: "ALLOW",
            image_n: 1,
            release: "v1",
            mode: "shadow",
            confidence: 100,
            approvals: 0,
            results: &[],
            evidence: &[],
            extra: Value::Null,
        }
    }
}

pub fn passport(p: P<'_>) -> Passport {
    let results: Vec<Value> = p
        .results
        .iter()
        .map(|(id, state, connector)| {
            json!({"id": id, "label": format!("{id} label"), "state": state, "onFail": "HOLD",
                   "required": true, "source": format!("{connector}/fact")})
        })
        .collect();
    let evidence: Vec<Value> = p
        .evidence
        .iter()
        .map(|(connector, status)| {
            json!({"connector": connector, "observedAt": p.at, "status": status, "factCount": 1})
        })
        .collect();
    let approvals: Vec<Value> = (0..p.approvals)
        .map(|i| json!({"actor": format!("approver-{i}")}))
        .collect();
    let next_actions = if p.decision == "ALLOW" {
        json!([])
    } else {
        json!(["Fix it."])
    };
    let mut spec = json!({
            "passportVersion": "2026-05", "service": "payment-api", "release": p.release,
            "environment": "production", "mode": p.mode, "decision": p.decision,
            "confidence": p.confidence, "generatedAt": p.at,
            "gate": {"namespace": NS, "name": p.gate},
            "artifact": {"image": image(p.image_n), "digest": digest(p.image_n)},
            "policy": {"name": "p", "hash": "h"}, "actor": "controller",
            "policyResults": results, "evidence": evidence, "approvals": approvals,
            "nextActions": next_actions,
            "signature": {"algorithm": "ed25519", "keyId": "k", "value": "v"}
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), p.extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "releasepassport.io/v1alpha1", "kind": "Passport",
        "metadata": {"name": p.name, "namespace": NS},
        "spec": spec
    }))
    .expect("passport")
}
