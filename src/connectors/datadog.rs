//! `datadog`: states of the monitors a set of tags selects, and allowlisted
//! named metric queries (as the prometheus connector runs PromQL: only the
//! queries written in the ConnectorScope, each answering one series).
//!
//! API (https://docs.datadoghq.com/api/latest/monitors/#get-all-monitor-details,
//! https://docs.datadoghq.com/api/latest/metrics/#query-timeseries-points):
//! `DD-API-KEY` and `DD-APPLICATION-KEY` headers; monitors paginate with
//! `page`/`page_size`; rate limits answer 429 with `X-RateLimit-Reset`
//! (seconds until the window resets).

use serde::Deserialize;

use crate::api::{DatadogScope, EvidenceDocument, Fact, NamedQuery};

use super::prometheus::fact_value;
use super::rest::{self, Auth, Provider};
use super::{ConnectorError, Connectors, ScopeRequest};

const DEFAULT_URL: &str = "https://api.datadoghq.com";
const PAGE_SIZE: usize = 100;
const DEFAULT_WINDOW_SECONDS: i64 = 300;

/// A monitor, as `GET /api/v1/monitor` lists it.
#[derive(Debug, Deserialize)]
pub struct Monitor {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub overall_state: String,
}

/// `GET /api/v1/query`.
#[derive(Debug, Deserialize)]
pub struct QueryAnswer {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub series: Vec<Series>,
}

#[derive(Debug, Deserialize)]
pub struct Series {
    #[serde(default)]
    pub pointlist: Vec<(f64, Option<f64>)>,
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope =
        req.spec.datadog.as_ref().ok_or_else(|| {
            ConnectorError::Invalid("connector datadog needs spec.datadog".into())
        })?;
    if scope.monitor_tags.is_empty() && scope.queries.is_empty() {
        return Err(ConnectorError::Invalid(
            "spec.datadog selects nothing: name monitorTags and/or queries".into(),
        ));
    }
    let api_key = rest::required_token(connectors, req, "datadog").await?;
    let app_key = connectors
        .secret_value(req, &scope.application_key_ref)
        .await?;
    let mut provider = Provider::new(
        connectors,
        "Datadog",
        scope.url.as_deref().unwrap_or(DEFAULT_URL),
        "spec.datadog.url",
        Auth::Header("dd-api-key", api_key),
    )?;
    provider.secret_header("dd-application-key", app_key)?;

    let monitors = if scope.monitor_tags.is_empty() {
        None
    } else {
        Some(monitors(&provider, scope).await?)
    };
    let mut samples = Vec::new();
    for named in &scope.queries {
        samples.push((named, query(&provider, req, scope, named).await?));
    }
    let observed_at = samples.iter().map(|(_, (_, at))| *at).min();
    let mut extra = Vec::new();
    if !scope.monitor_tags.is_empty() {
        extra.push(("monitorTags", scope.monitor_tags.join(",")));
    }
    if !scope.queries.is_empty() {
        extra.push((
            "queries",
            scope
                .queries
                .iter()
                .map(|q| q.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ));
    }
    Ok(rest::document(
        req,
        "datadog",
        &provider.shown,
        &extra,
        facts(monitors.as_deref(), &samples),
        observed_at,
    ))
}

async fn monitors(
    provider: &Provider<'_>,
    scope: &DatadogScope,
) -> Result<Vec<Monitor>, ConnectorError> {
    let tags = scope.monitor_tags.join(",");
    let what = format!("listing Datadog monitors tagged {tags}");
    let mut all = Vec::new();
    for page in 0..rest::MAX_PAGES {
        let mut url = provider.url(&["api", "v1", "monitor"]);
        url.query_pairs_mut()
            .append_pair("monitor_tags", &tags)
            .append_pair("page", &page.to_string())
            .append_pair("page_size", &PAGE_SIZE.to_string());
        let (monitors, _): (Vec<Monitor>, _) = provider.get_json(url, &what).await?;
        let last = monitors.len() < PAGE_SIZE;
        all.extend(monitors);
        if last {
            return Ok(all);
        }
    }
    Err(rest::too_many_pages(provider.name, &what))
}

async fn query(
    provider: &Provider<'_>,
    req: &ScopeRequest<'_>,
    scope: &DatadogScope,
    named: &NamedQuery,
) -> Result<(f64, jiff::Timestamp), ConnectorError> {
    let to = req.now.as_second();
    let from = to - scope.window_seconds.unwrap_or(DEFAULT_WINDOW_SECONDS);
    let mut url = provider.url(&["api", "v1", "query"]);
    url.query_pairs_mut()
        .append_pair("from", &from.to_string())
        .append_pair("to", &to.to_string())
        .append_pair("query", &named.query);
    let what = format!("query {} on Datadog", named.name);
    let (answer, _): (QueryAnswer, _) = provider.get_json(url, &what).await?;
    last_point(&named.name, &answer)
}

/// The newest non-null point of the one series a query must answer (pure).
pub fn last_point(
    name: &str,
    answer: &QueryAnswer,
) -> Result<(f64, jiff::Timestamp), ConnectorError> {
    if answer.status == "error" {
        return Err(ConnectorError::Invalid(format!(
            "query {name} failed: {}",
            crate::passport::redact::redact_str(answer.error.as_deref().unwrap_or("no error text"))
        )));
    }
    let series = match answer.series.as_slice() {
        [one] => one,
        [] => {
            return Err(ConnectorError::Invalid(format!(
                "query {name} returned no series; it must return one (is the metric reported in the window?)"
            )));
        }
        many => {
            return Err(ConnectorError::Invalid(format!(
                "query {name} returned {} series; it must return one (aggregate it, e.g. sum:...{{...}})",
                many.len()
            )));
        }
    };
    let (ms, value) = series
        .pointlist
        .iter()
        .rev()
        .find_map(|(ms, v)| v.filter(|v| v.is_finite()).map(|v| (*ms, v)))
        .ok_or_else(|| {
            ConnectorError::Invalid(format!("query {name} has no point in the window"))
        })?;
    let at = jiff::Timestamp::from_millisecond(ms as i64).map_err(|_| {
        ConnectorError::Invalid(format!("query {name}: point time {ms} is out of range"))
    })?;
    Ok((value, at))
}

/// Monitor counts by state and the query facts (pure).
pub fn facts(
    monitors: Option<&[Monitor]>,
    samples: &[(&NamedQuery, (f64, jiff::Timestamp))],
) -> Vec<Fact> {
    let mut facts = Vec::new();
    if let Some(monitors) = monitors {
        let count =
            |state: &str| monitors.iter().filter(|m| m.overall_state == state).count() as i64;
        let alerting: Vec<&str> = monitors
            .iter()
            .filter(|m| m.overall_state == "Alert")
            .map(|m| m.name.as_str())
            .collect();
        facts.extend([
            rest::fact("monitors_total", monitors.len() as i64),
            rest::fact("monitors_alert", count("Alert")),
            rest::fact("monitors_warn", count("Warn")),
            rest::fact("monitors_no_data", count("No Data")),
            rest::fact("monitors_ok", count("OK")),
            rest::fact("alerting_monitors", alerting.join(",")),
        ]);
    }
    for (q, (value, at)) in samples {
        let mut f = rest::fact(&q.name, fact_value(*value, q.unit.as_deref()));
        f.observed_at = Some(*at);
        facts.push(f);
    }
    facts
}
