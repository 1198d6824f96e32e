//! `newrelic`: one New Relic entity's alert severity, open alert
//! violations and APM golden signals, plus allowlisted named NRQL queries,
//! through NerdGraph.
//!
//! API (https://docs.newrelic.com/docs/apis/nerdgraph/get-started/introduction-new-relic-nerdgraph/,
//! .../examples/nerdgraph-entities-api-tutorial/, .../nerdgraph-nrql-tutorial/):
//! `POST /graphql` with the user key in `API-Key`; GraphQL errors come
//! back with HTTP 200 in `errors`. None of the fields read paginate.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{EvidenceDocument, Fact, NamedQuery};

use super::prometheus::fact_value;
use super::rest::{self, Auth, Provider};
use super::{ConnectorError, Connectors, ScopeRequest};

const DEFAULT_URL: &str = "https://api.newrelic.com/graphql";

const ENTITY_QUERY: &str = "query($guid: EntityGuid!) { actor { entity(guid: $guid) { name alertSeverity reporting recentAlertViolations(count: 100) { alertSeverity label openedAt closedAt } ... on ApmApplicationEntity { apmSummary { apdexScore errorRate responseTimeAverage throughput } } } } }";

const NRQL_QUERY: &str = "query($account: Int!, $nrql: Nrql!) { actor { account(id: $account) { nrql(query: $nrql) { results } } } }";

#[derive(Debug, Deserialize)]
struct GraphQlAnswer {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    errors: Vec<GraphQlError>,
}

#[derive(Debug, Deserialize)]
struct GraphQlError {
    #[serde(default)]
    message: String,
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope =
        req.spec.newrelic.as_ref().ok_or_else(|| {
            ConnectorError::Invalid("connector newrelic needs spec.newrelic".into())
        })?;
    if !scope.queries.is_empty() && scope.account_id.is_none() {
        return Err(ConnectorError::Invalid(
            "spec.newrelic.queries run in an account: set spec.newrelic.accountId".into(),
        ));
    }
    let key = rest::required_token(connectors, req, "newrelic").await?;
    let provider = Provider::new(
        connectors,
        "New Relic",
        scope.url.as_deref().unwrap_or(DEFAULT_URL),
        "spec.newrelic.url",
        Auth::Header("api-key", key),
    )?;
    let what = format!("reading New Relic entity {}", scope.entity_guid);
    let data = graphql(
        &provider,
        ENTITY_QUERY,
        json!({"guid": scope.entity_guid}),
        &what,
    )
    .await?;
    let entity = data
        .pointer("/actor/entity")
        .filter(|e| !e.is_null())
        .ok_or_else(|| {
            ConnectorError::Invalid(format!(
                "New Relic entity {} not found (or the key's user may not see it)",
                scope.entity_guid
            ))
        })?;
    let mut facts = entity_facts(entity);
    for named in &scope.queries {
        let what = format!("NRQL query {} on New Relic", named.name);
        let data = graphql(
            &provider,
            NRQL_QUERY,
            json!({"account": scope.account_id, "nrql": named.query}),
            &what,
        )
        .await?;
        facts.push(nrql_fact(named, &data)?);
    }
    Ok(rest::document(
        req,
        "newrelic",
        &provider.shown,
        &[("entity", scope.entity_guid.clone())],
        facts,
        None,
    ))
}

async fn graphql(
    provider: &Provider<'_>,
    query: &str,
    variables: Value,
    what: &str,
) -> Result<Value, ConnectorError> {
    let answer = provider
        .post_json(
            provider.url(&[]),
            &json!({"query": query, "variables": variables}),
            what,
        )
        .await?;
    let answer: GraphQlAnswer = answer.json(provider.name, what)?;
    if let Some(first) = answer.errors.first() {
        let text = crate::passport::redact::redact_str(&first.message).into_owned();
        return Err(ConnectorError::Invalid(format!(
            "{what}: NerdGraph answered an error: {text}"
        )));
    }
    answer
        .data
        .ok_or_else(|| ConnectorError::Invalid(format!("{what}: NerdGraph answered no data")))
}

/// Alert state and golden signals of an entity (pure).
pub fn entity_facts(entity: &Value) -> Vec<Fact> {
    let mut facts = Vec::new();
    if let Some(severity) = entity.get("alertSeverity").and_then(Value::as_str) {
        facts.push(rest::fact("alert_severity", severity.to_string()));
    }
    if let Some(reporting) = entity.get("reporting").and_then(Value::as_bool) {
        facts.push(rest::fact("reporting", reporting));
    }
    let violations = entity
        .get("recentAlertViolations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let open: Vec<&Value> = violations
        .iter()
        .filter(|v| v.get("closedAt").is_none_or(Value::is_null))
        .collect();
    facts.push(rest::fact("open_violations", open.len() as i64));
    facts.push(rest::fact(
        "critical_violations",
        open.iter()
            .filter(|v| v.get("alertSeverity").and_then(Value::as_str) == Some("CRITICAL"))
            .count() as i64,
    ));
    if let Some(summary) = entity.get("apmSummary").filter(|s| s.is_object()) {
        for (field, name) in [
            ("errorRate", "apm_error_rate"),
            ("responseTimeAverage", "apm_response_time_average"),
            ("throughput", "apm_throughput"),
            ("apdexScore", "apm_apdex"),
        ] {
            if let Some(v) = summary.get(field).and_then(Value::as_f64) {
                facts.push(rest::fact(name, fact_value(v, None)));
            }
        }
    }
    facts
}

/// The one number an NRQL query must answer (pure): a single result row
/// with a single numeric column.
pub fn nrql_fact(named: &NamedQuery, data: &Value) -> Result<Fact, ConnectorError> {
    let name = &named.name;
    let results = data
        .pointer("/actor/account/nrql/results")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ConnectorError::Invalid(format!(
                "NRQL query {name}: no results (is accountId right?)"
            ))
        })?;
    let row = match results.as_slice() {
        [row] => row,
        rows => {
            return Err(ConnectorError::Invalid(format!(
                "NRQL query {name} returned {} rows; it must return one (drop FACET/TIMESERIES)",
                rows.len()
            )));
        }
    };
    let numbers: Vec<f64> = row
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !k.ends_with("TimeSeconds"))
                .filter_map(|(_, v)| v.as_f64())
                .collect()
        })
        .unwrap_or_default();
    match numbers.as_slice() {
        [v] if v.is_finite() => Ok(rest::fact(name, fact_value(*v, named.unit.as_deref()))),
        _ => Err(ConnectorError::Invalid(format!(
            "NRQL query {name} must select exactly one number (e.g. SELECT count(*) ...)"
        ))),
    }
}
