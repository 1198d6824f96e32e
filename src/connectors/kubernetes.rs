//! `kubernetes`: workload readiness, replicas, rollout, restarts and warning
//! Events, read **as the ConnectorScope's ServiceAccount** in the
//! ConnectorScope's own namespace. A refusal by the apiserver is reported as
//! `Forbidden`; the operator's own identity is never used instead.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;

use crate::api::{EvidenceDocument, Fact, Freshness, WorkloadReference};

use super::{ConnectorError, Connectors, ScopeRequest};

/// What one workload looks like.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WorkloadState {
    /// `Deployment/payment-api`.
    pub reference: String,
    pub desired: i64,
    pub ready: i64,
    pub available: i64,
    pub updated: i64,
    /// Controller has observed the latest spec.
    pub observed: bool,
    /// The rollout finished (Deployment `Progressing` reason `NewReplicaSetAvailable`,
    /// or StatefulSet `updateRevision == currentRevision`).
    pub rollout_complete: bool,
    /// Images of the pod template, in container order.
    pub images: Vec<String>,
    /// Label selector of the pods.
    pub selector: Option<LabelSelector>,
}

fn api_error(what: &str, err: kube::Error) -> ConnectorError {
    match err {
        kube::Error::Api(status) if status.code == 403 => {
            ConnectorError::Forbidden(format!("{what}: {}", status.message))
        }
        kube::Error::Api(status) if status.code == 401 => {
            ConnectorError::CredentialRequired(format!("{what}: {}", status.message))
        }
        other => ConnectorError::Unreachable(format!("{what}: {other}")),
    }
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req.spec.kubernetes.as_ref().ok_or_else(|| {
        ConnectorError::Invalid("connector kubernetes needs spec.kubernetes".into())
    })?;
    let sa = req.spec.service_account_name.as_deref().ok_or_else(|| {
        ConnectorError::CredentialRequired(
            "connector kubernetes reads as a ServiceAccount of this namespace: set spec.serviceAccountName".into(),
        )
    })?;
    let client = connectors.as_service_account(req.namespace, sa)?;
    let ns = req.namespace;

    let mut workloads = Vec::new();
    for reference in &scope.workloads {
        workloads.push(read_workload(&client, ns, reference).await?);
    }
    if let Some(selector) = &scope.selector {
        let lp = ListParams::default().labels(&selector_string(selector)?);
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        for d in deployments
            .list(&lp)
            .await
            .map_err(|e| api_error("listing Deployments", e))?
        {
            push_unique(&mut workloads, deployment_state(&d));
        }
        let sets: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
        for s in sets
            .list(&lp)
            .await
            .map_err(|e| api_error("listing StatefulSets", e))?
        {
            push_unique(&mut workloads, statefulset_state(&s));
        }
    }
    if workloads.is_empty() {
        return Err(ConnectorError::Invalid(
            "spec.kubernetes selects no workload (add workloads or a selector that matches)".into(),
        ));
    }

    let mut restarts = 0i64;
    let mut warnings = 0i64;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    for w in &workloads {
        if let Some(selector) = &w.selector {
            let lp = ListParams::default().labels(&selector_string(selector)?);
            for pod in pods
                .list(&lp)
                .await
                .map_err(|e| api_error("listing Pods", e))?
            {
                restarts += pod
                    .status
                    .and_then(|s| s.container_statuses)
                    .unwrap_or_default()
                    .iter()
                    .map(|c| i64::from(c.restart_count))
                    .sum::<i64>();
            }
        }
        let name = w.reference.split('/').nth(1).unwrap_or_default();
        let lp = ListParams::default().fields(&format!("involvedObject.name={name},type=Warning"));
        warnings += events
            .list(&lp)
            .await
            .map_err(|e| api_error("listing Events", e))?
            .items
            .len() as i64;
    }

    Ok(document(req, &workloads, restarts, warnings))
}

/// The evidence document for a set of workloads (pure, for tests).
pub fn document(
    req: &ScopeRequest<'_>,
    workloads: &[WorkloadState],
    restarts: i64,
    warning_events: i64,
) -> EvidenceDocument {
    let sum = |f: fn(&WorkloadState) -> i64| workloads.iter().map(f).sum::<i64>();
    let ready = workloads.iter().all(|w| {
        w.observed && w.ready >= w.desired && w.available >= w.desired && w.updated >= w.desired
    });
    let rollout_complete = workloads.iter().all(|w| w.rollout_complete);
    let images: Vec<String> = workloads.iter().flat_map(|w| w.images.clone()).collect();
    let fact = |name: &str, value: serde_json::Value| Fact {
        name: name.into(),
        status: None,
        value: Some(value),
        threshold: None,
        observed_at: None,
    };
    let mut scope = req.evidence_scope();
    scope.insert(
        "workloads".into(),
        workloads
            .iter()
            .map(|w| w.reference.as_str())
            .collect::<Vec<_>>()
            .join(","),
    );
    EvidenceDocument {
        connector: "kubernetes".into(),
        scope,
        freshness: Freshness {
            observed_at: req.now,
            max_age_seconds: Some(req.max_age_seconds()),
        },
        facts: vec![
            fact("ready", json!(ready)),
            fact("desired_replicas", json!(sum(|w| w.desired))),
            fact("ready_replicas", json!(sum(|w| w.ready))),
            fact("available_replicas", json!(sum(|w| w.available))),
            fact("updated_replicas", json!(sum(|w| w.updated))),
            fact("rollout_complete", json!(rollout_complete)),
            fact("restarts", json!(restarts)),
            fact("warning_events", json!(warning_events)),
            fact("images", json!(images.join(","))),
        ],
    }
}

fn push_unique(list: &mut Vec<WorkloadState>, w: WorkloadState) {
    if !list.iter().any(|x| x.reference == w.reference) {
        list.push(w);
    }
}

async fn read_workload(
    client: &kube::Client,
    ns: &str,
    reference: &WorkloadReference,
) -> Result<WorkloadState, ConnectorError> {
    match reference.kind.as_str() {
        "Deployment" => {
            let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
            let d = api
                .get_opt(&reference.name)
                .await
                .map_err(|e| api_error(&format!("reading Deployment {}", reference.name), e))?
                .ok_or_else(|| {
                    ConnectorError::Invalid(format!(
                        "Deployment {} not found in {ns}",
                        reference.name
                    ))
                })?;
            Ok(deployment_state(&d))
        }
        "StatefulSet" => {
            let api: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
            let s = api
                .get_opt(&reference.name)
                .await
                .map_err(|e| api_error(&format!("reading StatefulSet {}", reference.name), e))?
                .ok_or_else(|| {
                    ConnectorError::Invalid(format!(
                        "StatefulSet {} not found in {ns}",
                        reference.name
                    ))
                })?;
            Ok(statefulset_state(&s))
        }
        other => Err(ConnectorError::Invalid(format!(
            "workload kind {other} is not supported by the kubernetes connector (Deployment, StatefulSet)"
        ))),
    }
}

fn images_of(spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> Vec<String> {
    spec.map(|s| {
        s.containers
            .iter()
            .filter_map(|c| c.image.clone())
            .collect()
    })
    .unwrap_or_default()
}

/// State of a Deployment (pure).
pub fn deployment_state(d: &Deployment) -> WorkloadState {
    let name = d.metadata.name.clone().unwrap_or_default();
    let spec = Some(&d.spec);
    let status = d.status.as_ref();
    let generation = d.metadata.generation.unwrap_or_default();
    let conditions = status
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    WorkloadState {
        reference: format!("Deployment/{name}"),
        desired: spec.and_then(|s| s.replicas).map(i64::from).unwrap_or(1),
        ready: status
            .and_then(|s| s.ready_replicas)
            .map(i64::from)
            .unwrap_or(0),
        available: status
            .and_then(|s| s.available_replicas)
            .map(i64::from)
            .unwrap_or(0),
        updated: status
            .and_then(|s| s.updated_replicas)
            .map(i64::from)
            .unwrap_or(0),
        observed: status.and_then(|s| s.observed_generation).unwrap_or(0) >= generation,
        rollout_complete: conditions.iter().any(|c| {
            c.type_.as_deref() == Some("Progressing")
                && c.status.as_deref() == Some("True")
                && c.reason.as_deref() == Some("NewReplicaSetAvailable")
        }),
        images: images_of(spec.and_then(|s| s.template.spec.as_ref())),
        selector: spec.map(|s| s.selector.clone()),
    }
}

/// State of a StatefulSet (pure).
pub fn statefulset_state(s: &StatefulSet) -> WorkloadState {
    let name = s.metadata.name.clone().unwrap_or_default();
    let spec = Some(&s.spec);
    let status = s.status.as_ref();
    let generation = s.metadata.generation.unwrap_or_default();
    WorkloadState {
        reference: format!("StatefulSet/{name}"),
        desired: spec.and_then(|s| s.replicas).map(i64::from).unwrap_or(1),
        ready: status
            .and_then(|s| s.ready_replicas)
            .map(i64::from)
            .unwrap_or(0),
        available: status
            .and_then(|s| s.available_replicas)
            .map(i64::from)
            .unwrap_or(0),
        updated: status
            .and_then(|s| s.updated_replicas)
            .map(i64::from)
            .unwrap_or(0),
        observed: status.and_then(|s| s.observed_generation).unwrap_or(0) >= generation,
        rollout_complete: status
            .map(|s| s.update_revision.is_some() && s.update_revision == s.current_revision)
            .unwrap_or(false),
        images: images_of(spec.and_then(|s| s.template.spec.as_ref())),
        selector: spec.map(|s| s.selector.clone()),
    }
}

/// A label selector as the `labelSelector` query string.
pub fn selector_string(selector: &LabelSelector) -> Result<String, ConnectorError> {
    let mut parts: Vec<String> = selector
        .match_labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for expr in selector.match_expressions.clone().unwrap_or_default() {
        let values = expr.values.unwrap_or_default().join(",");
        parts.push(match expr.operator.as_str() {
            "In" => format!("{} in ({values})", expr.key),
            "NotIn" => format!("{} notin ({values})", expr.key),
            "Exists" => expr.key.clone(),
            "DoesNotExist" => format!("!{}", expr.key),
            other => {
                return Err(ConnectorError::Invalid(format!(
                    "label selector operator {other} is not one of In, NotIn, Exists, DoesNotExist"
                )));
            }
        });
    }
    if parts.is_empty() {
        return Err(ConnectorError::Invalid(
            "an empty label selector would select every workload; name the labels".into(),
        ));
    }
    Ok(parts.join(","))
}
