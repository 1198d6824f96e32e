use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What every connector answers: the connector evidence shape.
///
/// ```json
/// {"connector": "prometheus",
///  "scope": {"service": "checkout-api", "environment": "production"},
///  "freshness": {"observedAt": "2026-05-03T09:30:00Z", "maxAgeSeconds": 300},
///  "facts": [{"name": "error_rate", "status": "passed", "value": "0.02%", "threshold": "< 1%"}]}
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceDocument {
    /// Connector that produced the evidence, e.g. `prometheus`, `ingest`.
    #[schemars(length(min = 1, max = 63))]
    pub connector: String,
    /// What the evidence is about: service, environment, namespace, application, ...
    #[serde(default)]
    pub scope: BTreeMap<String, String>,
    /// When the evidence was observed and how long it stays fresh.
    pub freshness: Freshness,
    /// The observed facts.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub facts: Vec<Fact>,
}

/// When evidence was observed and how long it stays fresh.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Freshness {
    /// Observation time (RFC 3339).
    pub observed_at: jiff::Timestamp,
    /// Seconds after observedAt at which the evidence becomes stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_age_seconds: Option<i64>,
}

/// One observed fact.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Fact {
    /// Fact name, e.g. `error_rate`.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The source's own verdict (`passed`, `failed`, ...), informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Observed value: number (optionally with unit), string, boolean or timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::common::any_scalar_schema")]
    pub value: Option<serde_json::Value>,
    /// The source's own threshold, informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<String>,
    /// Observation time of this fact when it differs from the document's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<jiff::Timestamp>,
}
