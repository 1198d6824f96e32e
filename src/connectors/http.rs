//! `http`: a custom endpoint that answers the connector evidence shape on GET.

use crate::api::EvidenceDocument;
use crate::passport::redact;

use super::{ConnectorError, Connectors, ScopeRequest};

/// Largest evidence document accepted from an endpoint.
const MAX_BODY_BYTES: usize = 1 << 20;

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req
        .spec
        .http
        .as_ref()
        .ok_or_else(|| ConnectorError::Invalid("connector http needs spec.http.url".into()))?;
    let url = reqwest::Url::parse(&scope.url)
        .map_err(|e| ConnectorError::Invalid(format!("spec.http.url is not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConnectorError::Invalid(
            "spec.http.url must not carry credentials; use secretRef".into(),
        ));
    }
    let shown = redact::redact_str(url.as_str()).into_owned();
    let mut request = connectors.http.get(url);
    if let Some(token) = connectors.secret_token(req).await? {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| {
        ConnectorError::Unreachable(format!("GET {shown}: {}", super::error_chain(e)))
    })?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(ConnectorError::Forbidden(format!(
            "GET {shown}: HTTP {status}"
        )));
    }
    if !status.is_success() {
        return Err(ConnectorError::Unreachable(format!(
            "GET {shown}: HTTP {status}"
        )));
    }
    let body = response.bytes().await.map_err(|e| {
        ConnectorError::Unreachable(format!("GET {shown}: {}", super::error_chain(e)))
    })?;
    if body.len() > MAX_BODY_BYTES {
        return Err(ConnectorError::Invalid(format!(
            "GET {shown}: evidence larger than {MAX_BODY_BYTES} bytes"
        )));
    }
    let mut doc: EvidenceDocument = serde_json::from_slice(&body).map_err(|e| {
        ConnectorError::Invalid(format!(
            "GET {shown}: not the connector evidence shape: {e}"
        ))
    })?;
    // The endpoint names the connector its facts belong to (e.g. a bridge
    // answering for `pagerduty`), but never the gate's own facts; its scope is
    // pinned to the configured one.
    if doc.connector.is_empty() {
        doc.connector = "http".into();
    }
    if doc.connector == crate::engine::GATE_CONNECTOR {
        return Err(ConnectorError::Invalid(format!(
            "GET {shown}: evidence may not claim the reserved connector name {}",
            crate::engine::GATE_CONNECTOR
        )));
    }
    let mut scope = req.evidence_scope();
    scope.extend(
        doc.scope
            .into_iter()
            .filter(|(k, _)| !scope_key_reserved(k)),
    );
    doc.scope = scope;
    if doc.freshness.max_age_seconds.is_none() {
        doc.freshness.max_age_seconds = Some(req.max_age_seconds());
    }
    Ok(doc)
}

fn scope_key_reserved(key: &str) -> bool {
    matches!(
        key,
        "namespace" | "connectorScope" | "service" | "environment"
    )
}
