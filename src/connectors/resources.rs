//! Reading other projects' custom resources (Argo Rollouts, Flagger, Flux)
//! as the ConnectorScope's ServiceAccount, as the kubernetes connector
//! reads workloads: the team's Role decides what is visible, a refusal is
//! reported, and the operator's own identity is never used instead.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;

use super::{ConnectorError, Connectors, ScopeRequest};

/// A custom resource type another project defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

impl Kind {
    /// The kube-rs resource description.
    pub fn resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }

    /// `rollouts.argoproj.io/v1alpha1`.
    pub fn crd_name(&self) -> String {
        format!("{}.{}/{}", self.plural, self.group, self.version)
    }
}

/// Argo Rollouts' `Rollout`.
pub const ROLLOUT: Kind = Kind {
    group: "argoproj.io",
    version: "v1alpha1",
    kind: "Rollout",
    plural: "rollouts",
};
/// Argo Rollouts' `AnalysisRun`.
pub const ANALYSIS_RUN: Kind = Kind {
    group: "argoproj.io",
    version: "v1alpha1",
    kind: "AnalysisRun",
    plural: "analysisruns",
};
/// Flagger's `Canary`.
pub const CANARY: Kind = Kind {
    group: "flagger.app",
    version: "v1beta1",
    kind: "Canary",
    plural: "canaries",
};
/// Flux's `Kustomization`.
pub const KUSTOMIZATION: Kind = Kind {
    group: "kustomize.toolkit.fluxcd.io",
    version: "v1",
    kind: "Kustomization",
    plural: "kustomizations",
};
/// Flux's `HelmRelease`.
pub const HELM_RELEASE: Kind = Kind {
    group: "helm.toolkit.fluxcd.io",
    version: "v2",
    kind: "HelmRelease",
    plural: "helmreleases",
};

/// A client acting as the scope's ServiceAccount (required).
pub fn reader(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<kube::Client, ConnectorError> {
    let connector = req.spec.connector.as_str();
    let sa = req.spec.service_account_name.as_deref().ok_or_else(|| {
        ConnectorError::CredentialRequired(format!(
            "connector {connector} reads as a ServiceAccount of this namespace: set spec.serviceAccountName"
        ))
    })?;
    connectors.as_service_account(req.namespace, sa)
}

/// One object, as JSON.
pub async fn get(
    client: &kube::Client,
    kind: Kind,
    namespace: &str,
    name: &str,
) -> Result<Value, ConnectorError> {
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(client.clone(), namespace, &kind.resource());
    let what = format!("reading {} {name} in namespace {namespace}", kind.kind);
    let object = api
        .get(name)
        .await
        .map_err(|e| api_error(&what, kind, Some(name), namespace, e))?;
    serde_json::to_value(object)
        .map_err(|e| ConnectorError::Invalid(format!("{what}: not an object: {e}")))
}

/// The objects of a namespace a label selector picks, as JSON.
pub async fn list(
    client: &kube::Client,
    kind: Kind,
    namespace: &str,
    selector: &str,
) -> Result<Vec<Value>, ConnectorError> {
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(client.clone(), namespace, &kind.resource());
    let what = format!("listing {}s in namespace {namespace}", kind.kind);
    let objects = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| api_error(&what, kind, None, namespace, e))?;
    objects
        .items
        .into_iter()
        .map(|o| {
            serde_json::to_value(o)
                .map_err(|e| ConnectorError::Invalid(format!("{what}: not an object: {e}")))
        })
        .collect()
}

fn api_error(
    what: &str,
    kind: Kind,
    name: Option<&str>,
    namespace: &str,
    err: kube::Error,
) -> ConnectorError {
    match err {
        kube::Error::Api(status) if status.code == 403 => {
            ConnectorError::Forbidden(format!("{what}: {}", status.message))
        }
        kube::Error::Api(status) if status.code == 401 => {
            ConnectorError::CredentialRequired(format!("{what}: {}", status.message))
        }
        kube::Error::Api(status) if status.code == 404 => {
            // A missing object names itself in the Status details; a
            // resource type the apiserver does not serve does not.
            let object_missing = status.details.as_ref().is_some_and(|d| !d.name.is_empty());
            match name {
                Some(name) if object_missing => ConnectorError::Invalid(format!(
                    "{} {name} not found in namespace {namespace}",
                    kind.kind
                )),
                _ => ConnectorError::Invalid(format!(
                    "{what}: the {} CRD ({}) is not installed in this cluster",
                    kind.kind,
                    kind.crd_name()
                )),
            }
        }
        other => ConnectorError::Unreachable(format!("{what}: {other}")),
    }
}

/// The condition of `type_` in `status.conditions`.
pub fn condition<'v>(object: &'v Value, type_: &str) -> Option<&'v Value> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

/// A string field at a JSON pointer.
pub fn text<'v>(object: &'v Value, pointer: &str) -> Option<&'v str> {
    object.pointer(pointer).and_then(Value::as_str)
}

/// An integer field at a JSON pointer (also when written as a string, as
/// Argo Rollouts writes `observedGeneration`).
pub fn integer(object: &Value, pointer: &str) -> Option<i64> {
    let value = object.pointer(pointer)?;
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

/// Images of a pod template at `pointer` (`containers` and `initContainers`).
pub fn template_images(object: &Value, pointer: &str) -> Vec<String> {
    let Some(spec) = object.pointer(pointer) else {
        return Vec::new();
    };
    ["initContainers", "containers"]
        .iter()
        .filter_map(|k| spec.get(k).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("image").and_then(Value::as_str).map(str::to_string))
        .collect()
}
