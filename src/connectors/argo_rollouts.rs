//! `argo-rollouts`: one Argo Rollouts `Rollout` of the ConnectorScope's
//! namespace (phase, current step, canary weight, abort and pause) and
//! the `AnalysisRun`s of its current revision, read as the scope's
//! ServiceAccount. Whether the Rollout runs the release's image is
//! compared with the gate's artifact.
//!
//! Fields as Argo Rollouts' controller writes them
//! (https://argo-rollouts.readthedocs.io/en/stable/features/specification/,
//! `status.phase`, `status.currentStepIndex`,
//! `status.canary.weights.canary.weight`, `status.currentPodHash`;
//! AnalysisRuns carry the `rollouts-pod-template-hash` label).

use serde_json::Value;

use crate::api::{EvidenceDocument, Fact};

use super::resources::{self, ANALYSIS_RUN, ROLLOUT};
use super::rest;
use super::{ConnectorError, Connectors, ScopeRequest};

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req.spec.argo_rollouts.as_ref().ok_or_else(|| {
        ConnectorError::Invalid("connector argo-rollouts needs spec.argoRollouts".into())
    })?;
    let client = resources::reader(connectors, req)?;
    let rollout = resources::get(&client, ROLLOUT, req.namespace, &scope.rollout).await?;
    let runs = match resources::text(&rollout, "/status/currentPodHash") {
        Some(hash) => {
            let selector = format!("rollouts-pod-template-hash={hash}");
            resources::list(&client, ANALYSIS_RUN, req.namespace, &selector)
                .await?
                .into_iter()
                .filter(|run| owned_by(run, &scope.rollout))
                .collect()
        }
        None => Vec::new(),
    };
    Ok(rest::document(
        req,
        "argo-rollouts",
        "kubernetes",
        &[("rollout", scope.rollout.clone())],
        facts(req, &rollout, &runs),
        None,
    ))
}

/// An AnalysisRun the Rollout (or its ReplicaSet) created.
fn owned_by(run: &Value, rollout: &str) -> bool {
    let owners = run
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array);
    match owners {
        Some(owners) => owners.iter().any(|o| {
            o.get("kind").and_then(Value::as_str) == Some("Rollout")
                && o.get("name").and_then(Value::as_str) == Some(rollout)
        }),
        None => false,
    }
}

/// The facts of a Rollout and its AnalysisRuns (pure).
pub fn facts(req: &ScopeRequest<'_>, rollout: &Value, runs: &[Value]) -> Vec<Fact> {
    let text = |p| resources::text(rollout, p);
    let steps = rollout
        .pointer("/spec/strategy/canary/steps")
        .and_then(Value::as_array)
        .map(Vec::len);
    let generation = resources::integer(rollout, "/metadata/generation").unwrap_or(0);
    let observed = resources::integer(rollout, "/status/observedGeneration").unwrap_or(0);
    let mut facts = vec![
        rest::fact(
            "phase",
            text("/status/phase").unwrap_or("Unknown").to_string(),
        ),
        rest::fact("observed", observed >= generation),
        rest::fact(
            "aborted",
            rollout
                .pointer("/status/abort")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        ),
        rest::fact(
            "paused",
            rollout
                .pointer("/status/pauseConditions")
                .and_then(Value::as_array)
                .is_some_and(|p| !p.is_empty())
                || rollout
                    .pointer("/spec/paused")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
        ),
        rest::fact(
            "stable",
            text("/status/currentPodHash").is_some()
                && text("/status/currentPodHash") == text("/status/stableRS"),
        ),
    ];
    if let Some(message) = text("/status/message") {
        facts.push(rest::fact("message", message.to_string()));
    }
    if let Some(step) = resources::integer(rollout, "/status/currentStepIndex") {
        facts.push(rest::fact("current_step", step));
    }
    if let Some(total) = steps {
        facts.push(rest::fact("total_steps", total as i64));
    }
    if let Some(weight) = resources::integer(rollout, "/status/canary/weights/canary/weight") {
        facts.push(rest::fact("canary_weight", weight));
    }
    let phase_of = |run: &Value| {
        resources::text(run, "/status/phase")
            .unwrap_or("Pending")
            .to_string()
    };
    let count = |phases: &[&str]| {
        runs.iter()
            .filter(|r| phases.contains(&phase_of(r).as_str()))
            .count() as i64
    };
    facts.push(rest::fact("analysis_runs", runs.len() as i64));
    facts.push(rest::fact(
        "analysis_runs_failed",
        count(&["Failed", "Error"]),
    ));
    facts.push(rest::fact(
        "analysis_runs_inconclusive",
        count(&["Inconclusive"]),
    ));
    if let Some(latest) = runs.iter().max_by_key(|r| {
        resources::text(r, "/metadata/creationTimestamp")
            .unwrap_or_default()
            .to_string()
    }) {
        facts.push(rest::fact("analysis_phase", phase_of(latest)));
    }
    let images = resources::template_images(rollout, "/spec/template/spec");
    facts.push(rest::fact("images", images.join(",")));
    if let Some(digest) = req.image_digest() {
        let observed = images
            .iter()
            .find(|i| crate::webhook::decide::image_digest(i) == Some(digest))
            .cloned()
            .unwrap_or_else(|| images.join(","));
        let mut f = rest::agreement("image_matches", &observed, digest);
        let matches = images
            .iter()
            .any(|i| crate::webhook::decide::image_digest(i) == Some(digest));
        f.value = Some(Value::Bool(matches));
        f.status = Some(if matches { "passed" } else { "failed" }.into());
        facts.push(f);
    }
    rest::push_agreement_summary(&mut facts);
    facts
}
