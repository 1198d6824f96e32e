//! `slack`: decision notifications posted to a Slack incoming webhook
//! (`POST <webhook URL>` with a JSON `text` and Block Kit `blocks`; Slack
//! answers `ok`, or an error word such as `invalid_payload`, `no_service`,
//! `channel_is_archived`, and 429 with `Retry-After`). The webhook URL carries
//! its token: it is the scope's `secretRef` value and never shown.
//! As evidence, the scope reports its deliveries for the gate.

use super::notify::{Notification, delivery_evidence};
use super::saas::{self, Provider};
use super::{ConnectorError, Connectors, ScopeRequest};
use crate::api::EvidenceDocument;

const PROVIDER: Provider = Provider {
    name: "Slack",
    error_message: |_| None,
    effective_status: saas::as_sent,
};

/// The webhook URL from the Secret, checked.
async fn webhook(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<reqwest::Url, ConnectorError> {
    let text = saas::required_token(connectors, req, "Slack").await?;
    let url = reqwest::Url::parse(&text).map_err(|_| {
        ConnectorError::Invalid(
            "the secretRef value is not a URL: it must be the Slack incoming webhook URL".into(),
        )
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(ConnectorError::Invalid(
            "the Slack webhook URL must start with https://".into(),
        ));
    }
    Ok(url)
}

fn target(req: &ScopeRequest<'_>) -> String {
    req.spec
        .slack
        .as_ref()
        .and_then(|s| s.channel.clone())
        .map(|c| format!("Slack {c}"))
        .unwrap_or_else(|| "Slack incoming webhook".into())
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    webhook(connectors, req).await?;
    Ok(delivery_evidence(connectors, req, target(req)))
}

pub(super) async fn send(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
    notification: &Notification,
) -> Result<String, ConnectorError> {
    let url = webhook(connectors, req).await?;
    let request = connectors
        .http
        .post(url)
        .json(&notification.slack_payload());
    connectors
        .call_raw(req, &PROVIDER, "the notification", request)
        .await?;
    Ok(format!(
        "posted {} to {}",
        notification.decision,
        target(req)
    ))
}
