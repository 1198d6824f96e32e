//! `prometheus`: the scope's allowlisted named instant queries, each answer
//! published as a fact of the query's name.
//!
//! Only the queries written in the ConnectorScope are ever run: nothing from
//! a ReleaseGate, a Policy or a request reaches the PromQL text. Each query
//! must answer exactly one sample, so a fact never silently picks one series
//! out of several.

use serde::Deserialize;

use crate::api::{EvidenceDocument, Fact, Freshness, NamedQuery, PrometheusScope};
use crate::passport::redact;

use super::rest::{BodyError, read_bounded};
use super::{ConnectorError, Connectors, ScopeRequest, error_chain};

/// Largest answer accepted for one query. One sample needs a few hundred
/// bytes; anything near this limit is a query that returns far too much.
const MAX_BODY_BYTES: usize = 1 << 20;

/// Significant digits kept in a fact value: enough for any threshold, few
/// enough that float noise (`1.3700000001`) disappears.
const SIGNIFICANT_DIGITS: i32 = 6;

/// One sample of an instant query.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The value, finite.
    pub value: f64,
    /// The evaluation timestamp Prometheus reported.
    pub at: jiff::Timestamp,
}

/// The envelope of every Prometheus HTTP API answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<QueryData>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryData {
    result_type: String,
    result: serde_json::Value,
}

/// An instant-vector element: `{"metric": {...}, "value": [ts, "v"]}`.
#[derive(Debug, Deserialize)]
struct VectorElement {
    #[serde(default)]
    value: Option<(f64, String)>,
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req.spec.prometheus.as_ref().ok_or_else(|| {
        ConnectorError::Invalid("connector prometheus needs spec.prometheus".into())
    })?;
    if scope.queries.is_empty() {
        return Err(ConnectorError::Invalid(
            "spec.prometheus.queries is empty: name at least one query".into(),
        ));
    }
    let endpoint = query_endpoint(&scope.url)?;
    let shown = redact::redact_str(&scope.url).into_owned();
    let token = connectors.secret_token(req).await?;

    let mut samples = Vec::with_capacity(scope.queries.len());
    for named in &scope.queries {
        let mut request = connectors
            .http
            .get(endpoint.clone())
            .query(&[("query", named.query.as_str())]);
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| {
            ConnectorError::Unreachable(format!(
                "query {} on {shown}: {}",
                named.name,
                error_chain(e)
            ))
        })?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(ConnectorError::Forbidden(format!(
                "query {} on {shown}: HTTP {status}: the token in secretRef (or its absence) is refused",
                named.name
            )));
        }
        let body = read_bounded(response, MAX_BODY_BYTES)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => ConnectorError::Invalid(format!(
                    "query {} on {shown}: answer larger than {MAX_BODY_BYTES} bytes; it must return one sample",
                    named.name
                )),
                BodyError::Read(e) => ConnectorError::Unreachable(format!(
                    "query {} on {shown}: reading the answer: {}",
                    named.name,
                    error_chain(e)
                )),
            })?;
        let sample =
            parse_query_response(&named.name, status.as_u16(), &body).map_err(|e| match e {
                ConnectorError::Unreachable(m) => {
                    ConnectorError::Unreachable(format!("{m} from Prometheus at {shown}"))
                }
                other => other,
            })?;
        samples.push((named, sample));
    }
    Ok(document(req, scope, &samples))
}

/// `{url}/api/v1/query`, refusing URLs that carry credentials, a query
/// string or a fragment (only the allowlisted query may reach Prometheus).
pub fn query_endpoint(url: &str) -> Result<reqwest::Url, ConnectorError> {
    let base = reqwest::Url::parse(url)
        .map_err(|e| ConnectorError::Invalid(format!("spec.prometheus.url is not a URL: {e}")))?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(ConnectorError::Invalid(
            "spec.prometheus.url must start with http:// or https://".into(),
        ));
    }
    if !base.username().is_empty() || base.password().is_some() {
        return Err(ConnectorError::Invalid(
            "spec.prometheus.url must not carry credentials; use secretRef".into(),
        ));
    }
    if base.query().is_some() || base.fragment().is_some() {
        return Err(ConnectorError::Invalid(
            "spec.prometheus.url must be the server's base URL, without ?query or #fragment".into(),
        ));
    }
    let joined = format!("{}/api/v1/query", base.as_str().trim_end_matches('/'));
    reqwest::Url::parse(&joined).map_err(|e| {
        ConnectorError::Invalid(format!("spec.prometheus.url is not a usable base URL: {e}"))
    })
}

/// Reads one `/api/v1/query` answer (pure): the single sample it must hold,
/// or why it is unusable. `http_status` decides what a body that is not the
/// Prometheus envelope means.
pub fn parse_query_response(
    name: &str,
    http_status: u16,
    body: &[u8],
) -> Result<Sample, ConnectorError> {
    let parsed: Result<ApiResponse, _> = serde_json::from_slice(body);
    let response = match parsed {
        Ok(r) => r,
        Err(_) if http_status >= 500 => {
            return Err(ConnectorError::Unreachable(format!(
                "query {name}: HTTP {http_status}"
            )));
        }
        Err(_) if http_status == 404 => {
            return Err(ConnectorError::Invalid(format!(
                "query {name}: HTTP 404: is spec.prometheus.url the base URL of a Prometheus server?"
            )));
        }
        Err(e) if (200..300).contains(&http_status) => {
            return Err(ConnectorError::Invalid(format!(
                "query {name}: not a Prometheus API answer: {e}"
            )));
        }
        Err(_) => {
            return Err(ConnectorError::Unreachable(format!(
                "query {name}: HTTP {http_status}"
            )));
        }
    };
    if response.status != "success" {
        let error_type = response.error_type.as_deref().unwrap_or("unknown");
        let text =
            redact::redact_str(response.error.as_deref().unwrap_or("no error text")).into_owned();
        let message = format!("query {name} failed: {error_type}: {text}");
        // The server's own trouble (overload, timeout, shutdown) is not the
        // query's fault; a bad or failing expression is.
        return Err(match error_type {
            "timeout" | "canceled" | "unavailable" => ConnectorError::Unreachable(message),
            _ => ConnectorError::Invalid(message),
        });
    }
    let data = response
        .data
        .ok_or_else(|| ConnectorError::Invalid(format!("query {name}: answer has no data")))?;
    let (at, raw) = match data.result_type.as_str() {
        "scalar" => serde_json::from_value::<(f64, String)>(data.result).map_err(|e| {
            ConnectorError::Invalid(format!("query {name}: malformed scalar result: {e}"))
        })?,
        "vector" => {
            let elements: Vec<VectorElement> =
                serde_json::from_value(data.result).map_err(|e| {
                    ConnectorError::Invalid(format!("query {name}: malformed vector result: {e}"))
                })?;
            match elements.len() {
                1 => {}
                0 => {
                    return Err(ConnectorError::Invalid(format!(
                        "query {name} returned no series; it must return one (is the metric scraped? wrap it in sum(...) or use `or vector(0)`)"
                    )));
                }
                n => {
                    return Err(ConnectorError::Invalid(format!(
                        "query {name} returned {n} series; it must return one (aggregate it, e.g. sum(...))"
                    )));
                }
            }
            elements
                .into_iter()
                .next()
                .and_then(|e| e.value)
                .ok_or_else(|| {
                    ConnectorError::Invalid(format!("query {name}: vector sample has no value"))
                })?
        }
        "matrix" => {
            return Err(ConnectorError::Invalid(format!(
                "query {name} returned a range vector; it must return one instant sample (apply rate(), avg_over_time(), ... to the range)"
            )));
        }
        other => {
            return Err(ConnectorError::Invalid(format!(
                "query {name} returned a {other}; it must return one number"
            )));
        }
    };
    let value = parse_sample_value(&raw).ok_or_else(|| {
        ConnectorError::Invalid(format!(
            "query {name} returned {raw}, not a finite number (a division by zero?)"
        ))
    })?;
    let at = sample_time(at).ok_or_else(|| {
        ConnectorError::Invalid(format!(
            "query {name}: sample timestamp {at} is out of range"
        ))
    })?;
    Ok(Sample { value, at })
}

/// Prometheus sample values are strings (`"2"`, `"NaN"`, `"+Inf"`); only
/// finite numbers make facts.
fn parse_sample_value(raw: &str) -> Option<f64> {
    raw.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Prometheus timestamps are Unix seconds with millisecond precision.
fn sample_time(seconds: f64) -> Option<jiff::Timestamp> {
    if !seconds.is_finite() {
        return None;
    }
    let millis = (seconds * 1000.0).round();
    if millis.abs() > i64::MAX as f64 {
        return None;
    }
    jiff::Timestamp::from_millisecond(millis as i64).ok()
}

/// A number as text, rounded to [`SIGNIFICANT_DIGITS`] significant digits,
/// without trailing zeros or exponent: `1.3700000001` → `1.37`, `2.0` → `2`.
pub fn format_number(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return "0".into();
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (SIGNIFICANT_DIGITS - 1 - magnitude).clamp(0, 40) as usize;
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    if text == "-0" { "0".into() } else { text }
}

/// The fact value: a JSON number without unit, else `"<number><unit>"`.
pub fn fact_value(value: f64, unit: Option<&str>) -> serde_json::Value {
    let text = format_number(value);
    match unit.map(str::trim).filter(|u| !u.is_empty()) {
        Some(unit) => serde_json::Value::String(format!("{text}{unit}")),
        None => match text.parse::<i64>() {
            Ok(i) => serde_json::Value::from(i),
            Err(_) => text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::String(text)),
        },
    }
}

/// The evidence document for the answered queries (pure, for tests).
/// `observedAt` is the oldest sample's time, so the document is never
/// fresher than its stalest fact.
pub fn document(
    req: &ScopeRequest<'_>,
    scope: &PrometheusScope,
    samples: &[(&NamedQuery, Sample)],
) -> EvidenceDocument {
    let observed_at = samples.iter().map(|(_, s)| s.at).min().unwrap_or(req.now);
    let mut evidence_scope = req.evidence_scope();
    evidence_scope.insert(
        "prometheus".into(),
        redact::redact_str(&scope.url).into_owned(),
    );
    evidence_scope.insert(
        "queries".into(),
        samples
            .iter()
            .map(|(q, _)| q.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
    );
    EvidenceDocument {
        connector: "prometheus".into(),
        scope: evidence_scope,
        freshness: Freshness {
            observed_at,
            max_age_seconds: Some(req.max_age_seconds()),
        },
        facts: samples
            .iter()
            .map(|(q, s)| Fact {
                name: q.name.clone(),
                status: None,
                value: Some(fact_value(s.value, q.unit.as_deref())),
                threshold: None,
                observed_at: Some(s.at),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Answers shaped as in Prometheus' HTTP API documentation
    // (docs/querying/api.md: "Instant queries", "Expression query result formats").
    const TWO_SERIES: &str = r#"{
       "status" : "success",
       "data" : {
          "resultType" : "vector",
          "result" : [
             {"metric" : {"__name__" : "up", "job" : "prometheus", "instance" : "localhost:9090"},
              "value": [ 1435781451.781, "1" ]},
             {"metric" : {"__name__" : "up", "job" : "node", "instance" : "localhost:9100"},
              "value" : [ 1435781451.781, "0" ]}
          ]
       }
    }"#;
    const ONE_SERIES: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{},"value":[1435781451.781,"1.3700000001"]}]}}"#;
    const NO_SERIES: &str = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
    const SCALAR: &str =
        r#"{"status":"success","data":{"resultType":"scalar","result":[1435781451.781,"42"]}}"#;
    const STRING: &str =
        r#"{"status":"success","data":{"resultType":"string","result":[1435781451.781,"hello"]}}"#;
    const MATRIX: &str = r#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{"__name__":"up","job":"prometheus","instance":"localhost:9090"},
         "values":[[1435781430.781,"1"],[1435781445.781,"1"],[1435781460.781,"1"]]}]}}"#;
    const NAN: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{},"value":[1435781451.781,"NaN"]}]}}"#;
    const BAD_DATA: &str = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:6: parse error: unexpected end of input"}"#;
    const EXECUTION: &str = r#"{"status":"error","errorType":"execution","error":"found duplicate series for the match group"}"#;
    const TIMEOUT: &str = r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#;

    fn sample_at() -> jiff::Timestamp {
        jiff::Timestamp::from_millisecond(1_435_781_451_781).expect("timestamp")
    }

    #[test]
    fn a_single_vector_sample_is_the_fact_with_its_sample_time() {
        let s = parse_query_response("error_rate", 200, ONE_SERIES.as_bytes()).expect("one sample");
        assert_eq!(s.at, sample_at());
        assert_eq!(fact_value(s.value, Some("%")), serde_json::json!("1.37%"));
    }

    #[test]
    fn a_scalar_result_is_one_sample() {
        let s = parse_query_response("pending", 200, SCALAR.as_bytes()).expect("scalar");
        assert_eq!(s.value, 42.0);
        assert_eq!(fact_value(s.value, None), serde_json::json!(42));
    }

    #[test]
    fn several_series_are_refused_with_their_count() {
        let err = parse_query_response("up", 200, TWO_SERIES.as_bytes()).expect_err("two series");
        assert!(matches!(err, ConnectorError::Invalid(_)));
        assert!(
            err.to_string()
                .starts_with("query up returned 2 series; it must return one"),
            "{err}"
        );
    }

    #[test]
    fn no_series_is_refused() {
        let err = parse_query_response("error_rate", 200, NO_SERIES.as_bytes()).expect_err("empty");
        assert!(matches!(err, ConnectorError::Invalid(_)));
        assert!(err.to_string().contains("returned no series"), "{err}");
    }

    #[test]
    fn range_vectors_and_strings_are_refused() {
        for (body, expected) in [(MATRIX, "range vector"), (STRING, "a string")] {
            let err = parse_query_response("q", 200, body.as_bytes()).expect_err("refused");
            assert!(matches!(err, ConnectorError::Invalid(_)));
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    #[test]
    fn nan_is_not_a_fact() {
        let err = parse_query_response("ratio", 200, NAN.as_bytes()).expect_err("NaN");
        assert!(matches!(err, ConnectorError::Invalid(_)));
        assert!(err.to_string().contains("NaN"), "{err}");
    }

    #[test]
    fn promql_errors_are_invalid_with_prometheus_error_text() {
        let err =
            parse_query_response("error_rate", 400, BAD_DATA.as_bytes()).expect_err("bad_data");
        assert!(matches!(err, ConnectorError::Invalid(_)));
        assert!(
            err.to_string().contains("bad_data: invalid parameter"),
            "{err}"
        );
        let err =
            parse_query_response("error_rate", 422, EXECUTION.as_bytes()).expect_err("execution");
        assert!(matches!(err, ConnectorError::Invalid(_)));
        assert!(
            err.to_string()
                .contains("execution: found duplicate series"),
            "{err}"
        );
    }

    #[test]
    fn server_side_timeouts_and_5xx_are_unreachable() {
        let err = parse_query_response("q", 503, TIMEOUT.as_bytes()).expect_err("timeout");
        assert!(matches!(err, ConnectorError::Unreachable(_)), "{err}");
        let err = parse_query_response("q", 502, b"<html>bad gateway</html>").expect_err("502");
        assert!(matches!(err, ConnectorError::Unreachable(_)), "{err}");
        let err = parse_query_response("q", 404, b"404 page not found").expect_err("404");
        assert!(matches!(err, ConnectorError::Invalid(_)), "{err}");
    }

    #[test]
    fn numbers_keep_six_significant_digits_without_noise() {
        assert_eq!(format_number(2.0), "2");
        assert_eq!(format_number(1.3700000001), "1.37");
        assert_eq!(format_number(0.020000000000000004), "0.02");
        assert_eq!(format_number(0.000123456789), "0.000123457");
        assert_eq!(format_number(123456789.0), "123456789");
        assert_eq!(format_number(-0.5), "-0.5");
        assert_eq!(format_number(0.0), "0");
        assert_eq!(fact_value(0.25, None), serde_json::json!(0.25));
        assert_eq!(fact_value(250.0, Some("ms")), serde_json::json!("250ms"));
        assert_eq!(fact_value(3.0, Some("  ")), serde_json::json!(3));
    }

    #[test]
    fn the_endpoint_is_derived_from_the_base_url_only() {
        assert_eq!(
            query_endpoint("http://prometheus.monitoring:9090")
                .expect("url")
                .as_str(),
            "http://prometheus.monitoring:9090/api/v1/query"
        );
        assert_eq!(
            query_endpoint("https://example.org/prom/")
                .expect("url")
                .as_str(),
            "https://example.org/prom/api/v1/query"
        );
        for bad in [
            "http://user:pw@prometheus:9090",
            "http://prometheus:9090/?query=up",
            "http://prometheus:9090/#x",
            "ftp://prometheus",
            "not a url",
        ] {
            let err = query_endpoint(bad).expect_err(bad);
            assert!(matches!(err, ConnectorError::Invalid(_)), "{bad}: {err}");
            assert!(!err.to_string().contains("pw"), "{err}");
        }
    }
}
