//! The Gate simulator: re-evaluate a release with an edited policy against
//! the evidence its connectors give now. Nothing is written and nothing is
//! signed; the result lives only in the page.

use jiff::Timestamp;
use kube::ResourceExt;

use super::state::ConsoleState;
use crate::api::{EvidenceDocument, PolicySpec, ReleaseGate};
use crate::connectors::{Connectors, ScopeRequest};
use crate::engine::{self, Evaluation, EvaluationInput, Stage};

/// Largest policy text the simulator accepts.
pub const MAX_POLICY_BYTES: usize = 256 * 1024;

/// Evidence read for a simulation, and what could not be read.
pub struct Gathered {
    pub evidence: Vec<EvidenceDocument>,
    pub notes: Vec<String>,
}

/// Reads the gate's evidence through its ConnectorScopes, as the controller
/// does (same identities, same timeouts), without writing any status.
pub async fn gather(
    connectors: &Connectors,
    state: &ConsoleState,
    gate: &ReleaseGate,
    now: Timestamp,
) -> Gathered {
    let ns = gate.namespace().unwrap_or_default();
    let mut out = Gathered {
        evidence: Vec::new(),
        notes: Vec::new(),
    };
    for reference in &gate.spec.connector_scopes {
        let Some(scope) = state.scope(&ns, &reference.name) else {
            out.notes.push(format!(
                "ConnectorScope {} not found: its evidence counts as missing",
                reference.name
            ));
            continue;
        };
        let req = ScopeRequest {
            namespace: &ns,
            name: &reference.name,
            spec: &scope.spec,
            service: &gate.spec.service,
            environment: &gate.spec.environment,
            gate: Some(&gate.spec),
            now,
        };
        match connectors.collect(&req).await {
            Ok(Some(doc)) => out.evidence.push(doc),
            Ok(None) => {}
            Err(e) => out.notes.push(format!(
                "{}: {}",
                reference.name,
                crate::passport::redact::redact_str(&e.to_string())
            )),
        }
    }
    out
}

/// Reads the edited policy (the `spec` of a Policy, as YAML or JSON).
pub fn parse_policy(text: &str) -> Result<PolicySpec, String> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(format!(
            "the policy is larger than {} KiB",
            MAX_POLICY_BYTES / 1024
        ));
    }
    let value: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| format!("the policy is not valid YAML: {e}"))?;
    // Accept a whole Policy object too: use its spec.
    let spec = match value.get("spec") {
        Some(spec) if value.get("kind").is_some() => spec.clone(),
        _ => value,
    };
    serde_path_to_error::deserialize::<_, PolicySpec>(spec).map_err(|e| {
        let path = e.path().to_string();
        format!("spec.{path}: {}", e.inner())
    })
}

/// Evaluates `gate` under `policy` with `evidence`, unsigned.
pub fn evaluate(
    policy_name: &str,
    policy: &PolicySpec,
    gate: &ReleaseGate,
    evidence: &[EvidenceDocument],
    now: Timestamp,
    actor: &str,
) -> Result<Evaluation, String> {
    let compiled = engine::compile(policy).map_err(|e| format!("the policy is invalid: {e}"))?;
    let post_deploy = gate
        .status
        .as_ref()
        .and_then(|s| s.watch_until)
        .is_some_and(|until| now < until);
    let input = EvaluationInput {
        policy_name,
        policy: &compiled,
        gate: &gate.spec,
        gate_ref: None,
        evidence,
        now,
        actor,
        stage: if post_deploy {
            Stage::PostDeploy
        } else {
            Stage::PreDeploy
        },
    };
    engine::evaluate(&input).map_err(|e| format!("the release cannot be evaluated: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_text_errors_name_the_field() {
        let err = parse_policy("rules:\n- id: a\n  onFail: MAYBE\n").unwrap_err();
        assert!(err.starts_with("spec.rules[0]"), "{err}");
        let err = parse_policy("rules: [").unwrap_err();
        assert!(err.contains("not valid YAML"), "{err}");
    }

    #[test]
    fn whole_policy_objects_are_accepted() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.yaml"))
                .expect("example policy");
        let spec = parse_policy(&text).expect("example policy parses");
        assert!(!spec.rules.is_empty());
    }
}
