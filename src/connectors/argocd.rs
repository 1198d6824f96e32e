//! `argocd`: sync status, health, revision and deployment history of one
//! Argo CD `Application` (argoproj.io/v1alpha1), read from the resource the
//! Argo CD controller keeps up to date.
//!
//! The resource is read as the ConnectorScope's ServiceAccount when it names
//! one (so the team's Role on `applications` decides), else as the operator.
//! With `argocd.server` and `secretRef` the Argo CD API is read instead, with
//! the token as bearer. The previous entry of `status.history` is the
//! rollback target.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

use crate::api::{EvidenceDocument, Fact, Freshness};
use crate::passport::redact;

use super::{ConnectorError, Connectors, ScopeRequest, error_chain};

/// Namespace of the Application when the scope names none.
pub const DEFAULT_NAMESPACE: &str = "argocd";

/// Largest Application accepted from the Argo CD API (large applications
/// list every managed resource in their status).
const MAX_BODY_BYTES: usize = 8 << 20;

/// The Application resource type.
fn application_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application"),
        "applications",
    )
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req
        .spec
        .argocd
        .as_ref()
        .ok_or_else(|| ConnectorError::Invalid("connector argocd needs spec.argocd".into()))?;
    let name = scope.application.as_str();
    let namespace = scope.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
    let (application, source) = match (&scope.server, &req.spec.secret_ref) {
        (Some(server), Some(_)) => (
            read_from_api(connectors, req, server, name, namespace).await?,
            redact::redact_str(server).into_owned(),
        ),
        _ => (
            read_resource(connectors, req, name, namespace).await?,
            "kubernetes".to_string(),
        ),
    };
    Ok(document(req, name, namespace, &source, &application))
}

async fn read_resource(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
    name: &str,
    namespace: &str,
) -> Result<Value, ConnectorError> {
    let client = match &req.spec.service_account_name {
        Some(sa) => connectors.as_service_account(req.namespace, sa)?,
        None => connectors.client.clone(),
    };
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(client, namespace, &application_resource());
    let app = api
        .get(name)
        .await
        .map_err(|e| api_error(name, namespace, e))?;
    Ok(app.data)
}

/// What an apiserver refusal means for this scope.
fn api_error(name: &str, namespace: &str, err: kube::Error) -> ConnectorError {
    let what = format!("reading Argo CD Application {name} in namespace {namespace}");
    match err {
        kube::Error::Api(status) if status.code == 403 => {
            ConnectorError::Forbidden(format!("{what}: {}", status.message))
        }
        kube::Error::Api(status) if status.code == 401 => {
            ConnectorError::CredentialRequired(format!("{what}: {}", status.message))
        }
        kube::Error::Api(status) if status.code == 404 => {
            // A missing object names itself in the Status details; a missing
            // resource type (no CRD) does not.
            let object_missing = status.details.as_ref().is_some_and(|d| !d.name.is_empty());
            if object_missing {
                ConnectorError::Invalid(format!(
                    "Application {name} not found in namespace {namespace}"
                ))
            } else {
                ConnectorError::Invalid(format!(
                    "{what}: Argo CD's Application CRD (applications.argoproj.io/v1alpha1) is not installed in this cluster"
                ))
            }
        }
        other => ConnectorError::Unreachable(format!("{what}: {other}")),
    }
}

/// `GET {server}/api/v1/applications/{name}?appNamespace={namespace}` with
/// the scope's token.
async fn read_from_api(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
    server: &str,
    name: &str,
    namespace: &str,
) -> Result<Value, ConnectorError> {
    let url = application_url(server, name, namespace)?;
    let shown = redact::redact_str(server).into_owned();
    let token = connectors.secret_token(req).await?.ok_or_else(|| {
        ConnectorError::CredentialRequired(
            "connector argocd with spec.argocd.server needs a token in secretRef".into(),
        )
    })?;
    let what = format!("reading Argo CD Application {name} from {shown}");
    let mut response = connectors
        .http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| ConnectorError::Unreachable(format!("{what}: {}", error_chain(e))))?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        // Argo CD answers 403 both for a missing Application and for one the
        // token may not see.
        return Err(ConnectorError::Forbidden(format!(
            "{what}: HTTP {status}: the token in secretRef may not get this Application (or it does not exist)"
        )));
    }
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(ConnectorError::Invalid(format!(
            "Application {name} not found in namespace {namespace} ({shown})"
        )));
    }
    if !status.is_success() {
        return Err(ConnectorError::Unreachable(format!(
            "{what}: HTTP {status}"
        )));
    }
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY_BYTES as u64)
    {
        return Err(ConnectorError::Invalid(format!(
            "{what}: answer larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ConnectorError::Unreachable(format!("{what}: {}", error_chain(e))))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ConnectorError::Invalid(format!(
                "{what}: answer larger than {MAX_BODY_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let app: Value = serde_json::from_slice(&body)
        .map_err(|e| ConnectorError::Invalid(format!("{what}: not an Application: {e}")))?;
    if !app.is_object() {
        return Err(ConnectorError::Invalid(format!(
            "{what}: not an Application"
        )));
    }
    Ok(app)
}

/// The Argo CD API URL of one Application, refusing server URLs that carry
/// credentials, a query or a fragment.
pub fn application_url(
    server: &str,
    name: &str,
    namespace: &str,
) -> Result<reqwest::Url, ConnectorError> {
    let base = reqwest::Url::parse(server)
        .map_err(|e| ConnectorError::Invalid(format!("spec.argocd.server is not a URL: {e}")))?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(ConnectorError::Invalid(
            "spec.argocd.server must start with http:// or https://".into(),
        ));
    }
    if !base.username().is_empty() || base.password().is_some() {
        return Err(ConnectorError::Invalid(
            "spec.argocd.server must not carry credentials; use secretRef".into(),
        ));
    }
    if base.query().is_some() || base.fragment().is_some() {
        return Err(ConnectorError::Invalid(
            "spec.argocd.server must be the server's base URL, without ?query or #fragment".into(),
        ));
    }
    let mut url = base;
    url.path_segments_mut()
        .map_err(|_| ConnectorError::Invalid("spec.argocd.server cannot be a base URL".into()))?
        .pop_if_empty()
        .extend(["api", "v1", "applications", name]);
    url.query_pairs_mut().append_pair("appNamespace", namespace);
    Ok(url)
}

/// A string at a JSON path, when present and not empty.
fn text_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `revision`, or the `revisions` of a multi-source Application joined by commas.
fn revision_of(value: &Value) -> Option<String> {
    if let Some(r) = text_at(value, &["revision"]) {
        return Some(r.to_string());
    }
    let revisions: Vec<&str> = value
        .get("revisions")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    (!revisions.is_empty()).then(|| revisions.join(","))
}

/// The facts of an Application object (pure). Facts whose field is absent
/// are left out, so a policy requiring them sees missing evidence.
pub fn application_facts(app: &Value) -> Vec<Fact> {
    let fact = |name: &str, value: Value| Fact {
        name: name.into(),
        status: None,
        value: Some(value),
        threshold: None,
        observed_at: None,
    };
    let status = app.get("status").unwrap_or(&Value::Null);
    let mut facts = Vec::new();
    if let Some(s) = text_at(status, &["sync", "status"]) {
        facts.push(fact("sync_status", json!(s)));
    }
    if let Some(s) = text_at(status, &["health", "status"]) {
        facts.push(fact("health_status", json!(s)));
    }
    if let Some(r) = status.get("sync").and_then(revision_of) {
        facts.push(fact("revision", json!(r)));
    }
    if let Some(p) = text_at(status, &["operationState", "phase"]) {
        facts.push(fact("operation_phase", json!(p)));
    }
    let history: &[Value] = status
        .get("history")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    facts.push(fact("history_length", json!(history.len())));
    // Argo CD appends one entry per successful sync: the last is what runs,
    // the one before it is what a rollback returns to.
    if let [.., previous, _current] = history {
        if let Some(r) = revision_of(previous) {
            facts.push(fact("rollback_revision", json!(r)));
        }
        if let Some(at) = text_at(previous, &["deployedAt"]) {
            facts.push(fact("rollback_deployed_at", json!(at)));
        }
    }
    if let Some(at) = text_at(status, &["reconciledAt"]) {
        facts.push(fact("reconciled_at", json!(at)));
    }
    facts
}

/// The evidence document for one Application (pure, for tests).
pub fn document(
    req: &ScopeRequest<'_>,
    name: &str,
    namespace: &str,
    source: &str,
    app: &Value,
) -> EvidenceDocument {
    let mut scope = req.evidence_scope();
    scope.insert("application".into(), name.into());
    scope.insert("applicationNamespace".into(), namespace.into());
    scope.insert("source".into(), source.into());
    EvidenceDocument {
        connector: "argocd".into(),
        scope,
        freshness: Freshness {
            observed_at: req.now,
            max_age_seconds: Some(req.max_age_seconds()),
        },
        facts: application_facts(app),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(app: &Value) -> std::collections::BTreeMap<String, Value> {
        application_facts(app)
            .into_iter()
            .map(|f| (f.name, f.value.unwrap_or(Value::Null)))
            .collect()
    }

    #[test]
    fn the_previous_history_entry_is_the_rollback_target() {
        let app = json!({"status": {
        "sync": {"status": "Synced", "revision": "c3d4"},
        "health": {"status": "Healthy"},
        "operationState": {"phase": "Succeeded"},
        "reconciledAt": "2026-05-03T09:29:00Z",
        "history": [
            {"id": 1, "revision": "a1b2", "deployedAt": "2026-05-01T10:00:00Z"},
            {"id": 2, "revision": "b2c3", "deployedAt": "2026-05-02T10:00:00Z"},
            {"id": 3, "revision": "c3d4", "deployedAt": "2026-05-03T09:00:00Z"}
        ]}});
        let f = facts(&app);
        assert_eq!(f["sync_status"], json!("Synced"));
        assert_eq!(f["health_status"], json!("Healthy"));
        assert_eq!(f["revision"], json!("c3d4"));
        assert_eq!(f["operation_phase"], json!("Succeeded"));
        assert_eq!(f["history_length"], json!(3));
        assert_eq!(f["rollback_revision"], json!("b2c3"));
        assert_eq!(f["rollback_deployed_at"], json!("2026-05-02T10:00:00Z"));
        assert_eq!(f["reconciled_at"], json!("2026-05-03T09:29:00Z"));
    }

    #[test]
    fn a_first_deployment_has_no_rollback_target() {
        let app = json!({"status": {
            "sync": {"status": "OutOfSync", "revision": "a1b2"},
            "health": {"status": "Progressing"},
            "history": [{"id": 0, "revision": "a1b2", "deployedAt": "2026-05-01T10:00:00Z"}]}});
        let f = facts(&app);
        assert_eq!(f["history_length"], json!(1));
        assert!(!f.contains_key("rollback_revision"));
        assert!(!f.contains_key("rollback_deployed_at"));
        assert!(!f.contains_key("operation_phase"));
    }

    #[test]
    fn multi_source_revisions_are_joined() {
        let app = json!({"status": {
            "sync": {"status": "Synced", "revisions": ["r1", "r2"]},
            "history": [
                {"revisions": ["p1", "p2"], "deployedAt": "2026-05-01T10:00:00Z"},
                {"revisions": ["r1", "r2"], "deployedAt": "2026-05-02T10:00:00Z"}]}});
        let f = facts(&app);
        assert_eq!(f["revision"], json!("r1,r2"));
        assert_eq!(f["rollback_revision"], json!("p1,p2"));
    }

    #[test]
    fn an_application_without_status_only_reports_an_empty_history() {
        let f = facts(&json!({"spec": {}}));
        assert_eq!(f.len(), 1);
        assert_eq!(f["history_length"], json!(0));
    }

    #[test]
    fn the_api_url_names_the_application_and_its_namespace() {
        assert_eq!(
            application_url("https://argocd.example.org/", "payment-api", "argocd")
                .expect("url")
                .as_str(),
            "https://argocd.example.org/api/v1/applications/payment-api?appNamespace=argocd"
        );
        for bad in [
            "https://admin:pw@argocd",
            "https://argocd/?x=1",
            "file:///etc",
        ] {
            let err = application_url(bad, "a", "argocd").expect_err(bad);
            assert!(matches!(err, ConnectorError::Invalid(_)), "{bad}: {err}");
            assert!(!err.to_string().contains("pw"), "{err}");
        }
    }
}
