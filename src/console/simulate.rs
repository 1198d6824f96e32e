//! The Gate simulator: re-evaluate a release with an edited policy against
//! the evidence its connectors give now. Nothing is written and nothing is
//! signed; the result lives only in the page.

use jiff::Timestamp;
use kube::ResourceExt;

use super::state::ConsoleState;
use crate::api::{
    EvidenceDocument, PassportSpec, PolicySpec, ReleaseApprovalSpec, ReleaseGate, ReleaseWaiverSpec,
};
use crate::connectors::{Connectors, ScopeRequest};
use crate::engine::{
    self, ApprovalInput, Evaluation, EvaluationInput, GateContext, Stage, WaiverInput,
};

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
            gate_name: &gate.name_any(),
            release: &gate.spec.release,
            previous_release: gate.spec.rollback.as_ref().map(|r| r.release.as_str()),
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

/// The approvals and waivers that counted in `current` (the gate's current
/// Passport), as objects the engine can count again.
fn grants_of(
    gate: &ReleaseGate,
    current: Option<&PassportSpec>,
) -> (Vec<ReleaseApprovalSpec>, Vec<ReleaseWaiverSpec>) {
    let Some(p) = current.filter(|p| p.release == gate.spec.release) else {
        return (Vec::new(), Vec::new());
    };
    let approvals = p
        .approvals
        .iter()
        .filter(|a| a.counted)
        .map(|a| ReleaseApprovalSpec {
            gate: gate.name_any(),
            release: p.release.clone(),
            digest: p.artifact.digest.clone(),
            reference: a.reference.clone(),
            comment: None,
            approver: a.actor.clone(),
        })
        .collect();
    let waivers = p
        .waivers
        .iter()
        .filter(|w| w.state == "active")
        .map(|w| ReleaseWaiverSpec {
            gate: gate.name_any(),
            rule_id: w.rule_id.clone(),
            digest: p.artifact.digest.clone(),
            reason: w.reason.clone(),
            expires_at: w.expires_at,
            author: w.actor.clone(),
        })
        .collect();
    (approvals, waivers)
}

/// Evaluates `gate` under `policy` with `evidence`, unsigned, counting the
/// approvals and waivers that counted in its current Passport `current`.
pub fn evaluate(
    policy_name: &str,
    policy: &PolicySpec,
    gate: &ReleaseGate,
    current: Option<&PassportSpec>,
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
    let (approval_specs, waiver_specs) = grants_of(gate, current);
    let approvals: Vec<ApprovalInput<'_>> = approval_specs
        .iter()
        .enumerate()
        .map(|(i, spec)| ApprovalInput {
            name: current
                .and_then(|p| p.approvals.iter().filter(|a| a.counted).nth(i))
                .and_then(|a| a.name.as_deref())
                .unwrap_or("approval"),
            spec,
            created_at: None,
        })
        .collect();
    let waivers: Vec<WaiverInput<'_>> = waiver_specs
        .iter()
        .map(|spec| WaiverInput {
            name: "waiver",
            spec,
            created_at: None,
        })
        .collect();
    let status = gate.status.as_ref();
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
        context: GateContext {
            approvals: &approvals,
            waivers: &waivers,
            enforce_minimum: status.and_then(|s| s.enforced_by.as_deref()),
            proven_releases: status.map(|s| s.proven_releases.as_slice()),
            rollback_recommended: status.and_then(|s| s.rollback_recommended.as_ref()),
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
