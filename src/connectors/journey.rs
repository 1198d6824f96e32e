//! `journey`: HTTP probes of a service's user paths (status, latency,
//! expected body text or JSON value), as evidence.
//!
//! Only URLs under the scope's `allowedUrlPrefixes` are probed, matched on
//! scheme, host, port and whole path segments; the platform team writes both
//! in the ConnectorScope, and nothing a gate or its evidence says reaches a
//! URL. Redirects are not followed (a 3xx is the probe's answer), bodies are
//! read up to 1 MiB, and no body text or header value is recorded: a fact
//! says whether the expectation held, and the JSON value it found (redacted,
//! shortened) when it did not. A probe that gets no answer is a failed
//! probe, not a failed connector: "the checkout page does not answer" is
//! evidence.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::api::{
    ConnectorScopeSpec, EvidenceDocument, Fact, JourneyProbe, ProbeMethod, RadarSignal,
};
use crate::passport::redact;

use super::rest::{self, BodyError};
use super::{ConnectorError, Connectors, ScopeRequest};

/// Largest body read from a probed page.
const MAX_BODY_BYTES: usize = 1 << 20;
/// Longest observed value kept in a failure reason.
const MAX_SHOWN_CHARS: usize = 80;

/// What one probe saw.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Probe name.
    pub name: String,
    /// The HTTP status, when the service answered.
    pub status: Option<u16>,
    /// Request sent → body read, in milliseconds.
    pub latency_ms: u64,
    /// Why the probe failed; `None` when every expectation held.
    pub failure: Option<String>,
    /// What was expected, e.g. `HTTP 200 within 800 ms`.
    pub expected: String,
}

impl Outcome {
    /// Every expectation held.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

pub(super) async fn collect(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
) -> Result<EvidenceDocument, ConnectorError> {
    let scope = req.spec.journey.as_ref().ok_or_else(|| {
        ConnectorError::Invalid(
            "connector journey needs spec.journey (allowedUrlPrefixes and probes)".into(),
        )
    })?;
    let prefixes = scope
        .allowed_url_prefixes
        .iter()
        .map(|p| prefix(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut planned = Vec::with_capacity(scope.probes.len());
    for probe in &scope.probes {
        planned.push((probe, allowed_url(probe, &prefixes)?));
    }
    let token = connectors.secret_token(req).await?;
    // Each probe gets most of the connector's budget, so one that never
    // answers is a failed probe rather than a connector timeout.
    let budget = connectors.timeout.mul_f64(0.8);
    let outcomes = futures::future::join_all(
        planned
            .iter()
            .map(|(probe, url)| run(connectors, probe, url.clone(), token.as_deref(), budget)),
    )
    .await;
    let source = prefixes
        .iter()
        .map(|p| redact::redact_str(p.as_str()).into_owned())
        .collect::<Vec<_>>()
        .join(",");
    Ok(rest::document(
        req,
        "journey",
        &source,
        &[],
        facts(&outcomes),
        None,
    ))
}

/// A checked allowlist entry: http(s), no credentials, query or fragment.
fn prefix(text: &str) -> Result<reqwest::Url, ConnectorError> {
    let url = rest::base_url(text, "spec.journey.allowedUrlPrefixes")?;
    if url.host_str().is_none() {
        return Err(ConnectorError::Invalid(format!(
            "spec.journey.allowedUrlPrefixes: {} names no host",
            redact::redact_str(text)
        )));
    }
    Ok(url)
}

/// The probe's URL, when it lies under an allowlisted prefix.
pub fn allowed_url(
    probe: &JourneyProbe,
    prefixes: &[reqwest::Url],
) -> Result<reqwest::Url, ConnectorError> {
    let url = reqwest::Url::parse(&probe.url).map_err(|e| {
        ConnectorError::Invalid(format!("probe {}: url is not a URL: {e}", probe.name))
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConnectorError::Invalid(format!(
            "probe {}: url must not carry credentials; use secretRef",
            probe.name
        )));
    }
    if !prefixes.iter().any(|p| under(&url, p)) {
        return Err(ConnectorError::Invalid(format!(
            "probe {}: {} is outside spec.journey.allowedUrlPrefixes; the platform team allowlists what may be probed",
            probe.name,
            redact::redact_str(url.as_str())
        )));
    }
    Ok(url)
}

/// `url` is under `prefix`: same origin (scheme, host, port) and the
/// prefix's path is a whole-segment prefix of the URL's path.
pub fn under(url: &reqwest::Url, prefix: &reqwest::Url) -> bool {
    if url.origin() != prefix.origin() {
        return false;
    }
    let base = prefix.path().trim_end_matches('/');
    let path = url.path();
    base.is_empty()
        || path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

async fn run(
    connectors: &Connectors,
    probe: &JourneyProbe,
    url: reqwest::Url,
    token: Option<&str>,
    budget: Duration,
) -> Outcome {
    let method = probe.method.unwrap_or_default();
    let mut request = match method {
        ProbeMethod::Get => connectors.probe_http.get(url),
        ProbeMethod::Head => connectors.probe_http.head(url),
    };
    if let Some(token) = token {
        match super::saas::sensitive(&format!("Bearer {token}")) {
            Ok(value) => request = request.header(reqwest::header::AUTHORIZATION, value),
            Err(e) => return failed(probe, None, 0, e.to_string()),
        }
    }
    let started = Instant::now();
    let answer = tokio::time::timeout(budget, async {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = match method {
            ProbeMethod::Head => Ok(Vec::new()),
            ProbeMethod::Get => rest::read_bounded(response, MAX_BODY_BYTES).await,
        };
        Ok::<_, reqwest::Error>((status, body))
    })
    .await;
    let latency_ms = started.elapsed().as_millis() as u64;
    match answer {
        Err(_) => failed(
            probe,
            None,
            latency_ms,
            format!("no answer within {} ms", budget.as_millis()),
        ),
        Ok(Err(e)) => failed(
            probe,
            None,
            latency_ms,
            format!("no answer: {}", super::error_chain(e)),
        ),
        Ok(Ok((status, Err(BodyError::TooLarge)))) => failed(
            probe,
            Some(status),
            latency_ms,
            format!("body larger than {} KiB", MAX_BODY_BYTES >> 10),
        ),
        Ok(Ok((status, Err(BodyError::Read(e))))) => failed(
            probe,
            Some(status),
            latency_ms,
            format!("body cut off: {}", super::error_chain(e)),
        ),
        Ok(Ok((status, Ok(body)))) => judge(probe, status, latency_ms, &body),
    }
}

fn failed(probe: &JourneyProbe, status: Option<u16>, latency_ms: u64, why: String) -> Outcome {
    Outcome {
        name: probe.name.clone(),
        status,
        latency_ms,
        failure: Some(redact::redact_str(&why).into_owned()),
        expected: expected(probe),
    }
}

/// What the probe expects, in words.
fn expected(probe: &JourneyProbe) -> String {
    let mut text = match probe.expect_status {
        Some(s) => format!("HTTP {s}"),
        None => "HTTP 2xx".to_string(),
    };
    if let Some(ms) = probe.max_latency_ms {
        text.push_str(&format!(" within {ms} ms"));
    }
    if probe.expect_body.is_some() {
        text.push_str(", expected text in the body");
    }
    if let Some(j) = &probe.expect_json {
        text.push_str(&format!(", {} = {}", j.pointer, j.equals));
    }
    text
}

/// Judges one answer against the probe's expectations (pure).
pub fn judge(probe: &JourneyProbe, status: u16, latency_ms: u64, body: &[u8]) -> Outcome {
    let mut reasons = Vec::new();
    let status_ok = match probe.expect_status {
        Some(want) => status == want,
        None => (200..300).contains(&status),
    };
    if !status_ok {
        reasons.push(format!("HTTP {status}"));
    }
    if let Some(limit) = probe.max_latency_ms
        && latency_ms > limit
    {
        reasons.push(format!("took {latency_ms} ms, limit {limit} ms"));
    }
    let reads_body = probe.method.unwrap_or_default() == ProbeMethod::Get;
    if let Some(text) = &probe.expect_body
        && reads_body
        && !contains(body, text.as_bytes())
    {
        reasons.push("the body lacks the expected text".into());
    }
    if let Some(want) = &probe.expect_json
        && reads_body
    {
        match serde_json::from_slice::<Value>(body) {
            Err(_) => reasons.push("the body is not JSON".into()),
            Ok(json) => match json.pointer(&want.pointer) {
                None => reasons.push(format!("{} is absent", want.pointer)),
                Some(found) if as_text(found) != want.equals => {
                    let shown: String = as_text(found).chars().take(MAX_SHOWN_CHARS).collect();
                    reasons.push(format!(
                        "{} is {shown:?}, expected {:?}",
                        want.pointer, want.equals
                    ));
                }
                Some(_) => {}
            },
        }
    }
    Outcome {
        name: probe.name.clone(),
        status: Some(status),
        latency_ms,
        failure: (!reasons.is_empty())
            .then(|| redact::redact_str(&reasons.join("; ")).into_owned()),
        expected: expected(probe),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// A JSON value as text: a string as itself, anything else as JSON.
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The facts of a round of probes (pure): per probe `<name>_ok`,
/// `<name>_status_code`, `<name>_latency_ms`, `<name>_reason`; and
/// `probes_total`, `probes_failed`, `failed_probes`, `journey_ok`.
pub fn facts(outcomes: &[Outcome]) -> Vec<Fact> {
    let mut facts = Vec::new();
    for o in outcomes {
        facts.push(Fact {
            status: Some(if o.ok() { "passed" } else { "failed" }.into()),
            threshold: Some(o.expected.clone()),
            ..rest::fact(&format!("{}_ok", o.name), o.ok())
        });
        if let Some(s) = o.status {
            facts.push(rest::fact(&format!("{}_status_code", o.name), s));
        }
        facts.push(rest::fact(&format!("{}_latency_ms", o.name), o.latency_ms));
        if let Some(why) = &o.failure {
            facts.push(rest::fact(&format!("{}_reason", o.name), why.clone()));
        }
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.ok())
        .map(|o| o.name.as_str())
        .collect();
    facts.push(rest::fact("probes_total", outcomes.len() as u64));
    facts.push(rest::fact("probes_failed", failed.len() as u64));
    facts.push(rest::fact("failed_probes", failed.join(",")));
    facts.push(rest::fact("journey_ok", failed.is_empty()));
    facts
}

/// The Radar rows of a journey read: one per probe. A probe the service
/// answered is certain (100%); one without an answer is 50%: the service
/// or the path between the operator and it may be down.
pub fn signals(spec: &ConnectorScopeSpec, doc: &EvidenceDocument) -> Vec<RadarSignal> {
    let fact = |name: String| {
        doc.facts
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.value.clone())
    };
    let Some(scope) = &spec.journey else {
        return Vec::new();
    };
    scope
        .probes
        .iter()
        .filter_map(|p| {
            let ok = fact(format!("{}_ok", p.name))?.as_bool()?;
            let status = fact(format!("{}_status_code", p.name)).and_then(|v| v.as_u64());
            let latency = fact(format!("{}_latency_ms", p.name))
                .and_then(|v| v.as_u64())
                .unwrap_or_default();
            let mut detail = match status {
                Some(s) => format!("HTTP {s} in {latency} ms"),
                None => format!("no answer after {latency} ms"),
            };
            if let Some(why) = fact(format!("{}_reason", p.name)).and_then(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            }) && status.is_some()
            {
                detail.push_str(&format!(": {why}"));
            }
            Some(RadarSignal {
                name: p.name.clone(),
                state: if ok { "pass" } else { "fail" }.into(),
                detail,
                confidence: if status.is_some() { 100 } else { 50 },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn probe(v: Value) -> JourneyProbe {
        serde_json::from_value(v).expect("probe")
    }

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).expect("url")
    }

    #[test]
    fn prefixes_match_whole_segments_on_the_same_origin() {
        let p = url("https://shop.example.com/checkout/");
        assert!(under(&url("https://shop.example.com/checkout"), &p));
        assert!(under(&url("https://shop.example.com/checkout/pay?x=1"), &p));
        assert!(!under(&url("https://shop.example.com/checkout-admin"), &p));
        assert!(!under(&url("http://shop.example.com/checkout/"), &p));
        assert!(!under(&url("https://shop.example.com:8443/checkout/"), &p));
        assert!(!under(
            &url("https://shop.example.com.evil.test/checkout/"),
            &p
        ));
        assert!(!under(&url("https://evil.test/checkout/"), &p));
        let root = url("https://shop.example.com");
        assert!(under(&url("https://shop.example.com/anything"), &root));
    }

    #[test]
    fn a_url_outside_the_allowlist_is_refused_before_any_request() {
        let prefixes = [url("https://shop.example.com/")];
        let p = probe(json!({"name": "meta", "url": "http://169.254.169.254/latest/meta-data/"}));
        let err = allowed_url(&p, &prefixes).expect_err("outside");
        assert!(matches!(err, ConnectorError::Invalid(_)), "{err}");
        assert!(err.to_string().contains("allowedUrlPrefixes"), "{err}");
        let p = probe(json!({"name": "creds", "url": "https://u:p@shop.example.com/"}));
        assert!(allowed_url(&p, &prefixes).is_err());
    }

    #[test]
    fn answers_are_judged_on_status_latency_text_and_json() {
        let p = probe(
            json!({"name": "health", "url": "https://shop.example.com/healthz",
            "expectStatus": 200, "maxLatencyMs": 500, "expectJson": {"pointer": "/status", "equals": "ok"}}),
        );
        assert!(judge(&p, 200, 20, br#"{"status":"ok"}"#).ok());
        let slow = judge(&p, 200, 900, br#"{"status":"ok"}"#);
        assert_eq!(slow.failure.as_deref(), Some("took 900 ms, limit 500 ms"));
        let bad = judge(&p, 503, 20, br#"{"status":"degraded"}"#);
        assert_eq!(
            bad.failure.as_deref(),
            Some(r#"HTTP 503; /status is "degraded", expected "ok""#)
        );
        assert!(!judge(&p, 200, 20, b"<html>").ok());
        let p = probe(
            json!({"name": "home", "url": "https://shop.example.com/", "expectBody": "Add to cart"}),
        );
        assert!(judge(&p, 204, 5, b"<button>Add to cart</button>").ok());
        assert!(!judge(&p, 200, 5, b"<p>Maintenance</p>").ok());
        assert!(!judge(&p, 302, 5, b"Add to cart").ok());
        let p = probe(json!({"name": "count", "url": "https://shop.example.com/",
            "expectJson": {"pointer": "/items/0/n", "equals": "3"}}));
        assert!(judge(&p, 200, 5, br#"{"items":[{"n":3}]}"#).ok());
    }

    #[test]
    fn facts_and_radar_rows_of_a_round() {
        let outcomes = vec![
            Outcome {
                name: "home".into(),
                status: Some(200),
                latency_ms: 42,
                failure: None,
                expected: "HTTP 2xx".into(),
            },
            Outcome {
                name: "checkout".into(),
                status: None,
                latency_ms: 4000,
                failure: Some("no answer: connection refused".into()),
                expected: "HTTP 200".into(),
            },
        ];
        let facts = facts(&outcomes);
        let value = |n: &str| {
            facts
                .iter()
                .find(|f| f.name == n)
                .and_then(|f| f.value.clone())
        };
        assert_eq!(value("home_ok"), Some(json!(true)));
        assert_eq!(value("home_status_code"), Some(json!(200)));
        assert_eq!(value("checkout_ok"), Some(json!(false)));
        assert_eq!(value("checkout_status_code"), None);
        assert_eq!(value("probes_failed"), Some(json!(1)));
        assert_eq!(value("failed_probes"), Some(json!("checkout")));
        assert_eq!(value("journey_ok"), Some(json!(false)));
        let spec: ConnectorScopeSpec = serde_json::from_value(json!({"connector": "journey",
            "journey": {"allowedUrlPrefixes": ["https://shop.example.com/"], "probes": [
                {"name": "home", "url": "https://shop.example.com/"},
                {"name": "checkout", "url": "https://shop.example.com/checkout"}]}}))
        .expect("spec");
        let doc = EvidenceDocument {
            connector: "journey".into(),
            scope: Default::default(),
            freshness: crate::api::Freshness {
                observed_at: jiff::Timestamp::UNIX_EPOCH,
                max_age_seconds: None,
            },
            facts,
        };
        let rows = signals(&spec, &doc);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (
                rows[0].state.as_str(),
                rows[0].detail.as_str(),
                rows[0].confidence
            ),
            ("pass", "HTTP 200 in 42 ms", 100)
        );
        assert_eq!(
            (
                rows[1].state.as_str(),
                rows[1].detail.as_str(),
                rows[1].confidence
            ),
            ("fail", "no answer after 4000 ms", 50)
        );
    }
}
