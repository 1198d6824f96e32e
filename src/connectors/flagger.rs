//! `flagger`: one Flagger `Canary` of the ConnectorScope's namespace
//! (phase, failed checks, canary weight, iterations, the `Promoted`
//! condition), read as the scope's ServiceAccount.
//!
//! Fields as Flagger writes them
//! (https://docs.flagger.app/usage/how-it-works#canary-status).

use serde_json::Value;

use crate::api::{EvidenceDocument, Fact};

use super::resources::{self, CANARY};
use super::rest;
use super::{ConnectorError, Connectors, ScopeRequest};

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope =
        req.spec.flagger.as_ref().ok_or_else(|| {
            ConnectorError::Invalid("connector flagger needs spec.flagger".into())
        })?;
    let client = resources::reader(connectors, req)?;
    let canary = resources::get(&client, CANARY, req.namespace, &scope.canary).await?;
    Ok(rest::document(
        req,
        "flagger",
        "kubernetes",
        &[("canary", scope.canary.clone())],
        facts(&canary),
        None,
    ))
}

/// The facts of a Canary (pure).
pub fn facts(canary: &Value) -> Vec<Fact> {
    let phase = resources::text(canary, "/status/phase").unwrap_or("Unknown");
    let promoted = resources::condition(canary, "Promoted");
    let mut facts = vec![
        rest::fact("phase", phase.to_string()),
        rest::fact(
            "failed_checks",
            resources::integer(canary, "/status/failedChecks").unwrap_or(0),
        ),
        rest::fact(
            "canary_weight",
            resources::integer(canary, "/status/canaryWeight").unwrap_or(0),
        ),
        rest::fact(
            "iterations",
            resources::integer(canary, "/status/iterations").unwrap_or(0),
        ),
        rest::fact(
            "promoted",
            promoted
                .and_then(|c| c.get("status"))
                .and_then(Value::as_str)
                == Some("True")
                && phase == "Succeeded",
        ),
        rest::fact("failed", phase == "Failed"),
    ];
    if let Some(reason) = promoted
        .and_then(|c| c.get("reason"))
        .and_then(Value::as_str)
    {
        facts.push(rest::fact("promoted_reason", reason.to_string()));
    }
    if let Some(message) = promoted
        .and_then(|c| c.get("message"))
        .and_then(Value::as_str)
    {
        facts.push(rest::fact("message", message.to_string()));
    }
    if let Some(at) = resources::text(canary, "/status/lastTransitionTime") {
        facts.push(rest::fact("last_transition_time", at.to_string()));
    }
    facts
}
