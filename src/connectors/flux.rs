//! `flux`: one Flux `Kustomization` or `HelmRelease` (Ready condition,
//! suspension, reconciliation of the latest spec, last applied revision),
//! read as the scope's ServiceAccount, and whether what Flux applied is
//! the release: the Kustomization's source revision against the gate's
//! commit, the HelmRelease's chart/app version against the gate's release.
//!
//! Fields as the Flux controllers write them
//! (https://fluxcd.io/flux/components/kustomize/kustomizations/#kustomization-status,
//! https://fluxcd.io/flux/components/helm/helmreleases/#helmrelease-status).

use serde_json::Value;

use crate::api::{EvidenceDocument, Fact};

use super::resources::{self, HELM_RELEASE, KUSTOMIZATION};
use super::rest;
use super::{ConnectorError, Connectors, ScopeRequest};

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req
        .spec
        .flux
        .as_ref()
        .ok_or_else(|| ConnectorError::Invalid("connector flux needs spec.flux".into()))?;
    let (kind, name) = match (&scope.kustomization, &scope.helm_release) {
        (Some(k), None) => (KUSTOMIZATION, k),
        (None, Some(h)) => (HELM_RELEASE, h),
        _ => {
            return Err(ConnectorError::Invalid(
                "spec.flux must name exactly one of kustomization and helmRelease".into(),
            ));
        }
    };
    let namespace = scope.namespace.as_deref().unwrap_or(req.namespace);
    let client = resources::reader(connectors, req)?;
    let object = resources::get(&client, kind, namespace, name).await?;
    Ok(rest::document(
        req,
        "flux",
        "kubernetes",
        &[
            ("object", format!("{}/{name}", kind.kind)),
            ("objectNamespace", namespace.to_string()),
        ],
        facts(req, &object),
        None,
    ))
}

/// `main@sha1:<sha>` → `<sha>`; other revisions as written.
pub fn revision_commit(revision: &str) -> &str {
    revision
        .rsplit_once(':')
        .filter(|(head, _)| head.ends_with("sha1") || head.ends_with("sha256"))
        .map(|(_, sha)| sha)
        .unwrap_or(revision)
}

/// The facts of a Kustomization or HelmRelease (pure).
pub fn facts(req: &ScopeRequest<'_>, object: &Value) -> Vec<Fact> {
    let ready = resources::condition(object, "Ready");
    let generation = resources::integer(object, "/metadata/generation").unwrap_or(0);
    let observed = resources::integer(object, "/status/observedGeneration").unwrap_or(-1);
    let mut facts = vec![
        rest::fact(
            "ready",
            ready.and_then(|c| c.get("status")).and_then(Value::as_str) == Some("True"),
        ),
        rest::fact(
            "suspended",
            object
                .pointer("/spec/suspend")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        ),
        rest::fact("reconciled", observed >= generation),
    ];
    if let Some(reason) = ready.and_then(|c| c.get("reason")).and_then(Value::as_str) {
        facts.push(rest::fact("ready_reason", reason.to_string()));
    }
    if let Some(message) = ready.and_then(|c| c.get("message")).and_then(Value::as_str) {
        facts.push(rest::fact("message", message.to_string()));
    }
    if let Some(r) = resources::text(object, "/status/lastAttemptedRevision") {
        facts.push(rest::fact("last_attempted_revision", r.to_string()));
    }
    if let Some(applied) = resources::text(object, "/status/lastAppliedRevision") {
        // Kustomization: the source revision, e.g. main@sha1:<commit>.
        facts.push(rest::fact("last_applied_revision", applied.to_string()));
        if let Some(sha) = req.source_sha() {
            facts.push(rest::agreement(
                "revision_matches",
                revision_commit(applied),
                sha,
            ));
        }
    }
    // HelmRelease: the newest release snapshot.
    if let Some(latest) = object.pointer("/status/history/0") {
        let chart = latest.get("chartVersion").and_then(Value::as_str);
        let app = latest.get("appVersion").and_then(Value::as_str);
        if let Some(c) = chart {
            facts.push(rest::fact("chart_version", c.to_string()));
        }
        if let Some(a) = app {
            facts.push(rest::fact("app_version", a.to_string()));
        }
        if let Some(s) = latest.get("status").and_then(Value::as_str) {
            facts.push(rest::fact("release_status", s.to_string()));
        }
        if let Some(release) = req.release() {
            let observed = app.or(chart).unwrap_or_default();
            let matches = same_version(observed, release);
            facts.push(Fact {
                name: "release_matches".into(),
                status: Some(if matches { "passed" } else { "failed" }.into()),
                value: Some(Value::Bool(matches)),
                threshold: Some(format!("observed {observed}, release is {release}")),
                observed_at: None,
            });
        }
    }
    rest::push_agreement_summary(&mut facts);
    facts
}

/// Versions compare without a leading `v`: `v2.18.4` is `2.18.4`.
fn same_version(a: &str, b: &str) -> bool {
    let strip = |s: &str| s.trim().trim_start_matches('v').to_string();
    !a.trim().is_empty() && strip(a) == strip(b)
}
