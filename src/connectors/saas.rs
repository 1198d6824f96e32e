//! What the SaaS connectors share: one call to a provider's documented API
//! with a bounded body, the provider's answer mapped to a health, rate
//! limits honoured (after a 429 the scope does not call the provider again
//! until its `Retry-After` has passed), and the provider's own `Date` as the
//! observation time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

use super::{ConnectorError, Connectors, ScopeRequest};
use crate::passport::redact;

/// Largest answer read from a provider.
pub(super) const MAX_BODY_BYTES: usize = 4 << 20;
/// Largest error answer read (only its message is kept).
const MAX_ERROR_BYTES: usize = 64 << 10;
/// Wait after a 429 that names no wait.
const DEFAULT_BACKOFF: Duration = Duration::from_secs(60);
/// Longest wait a provider can impose.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Most pages read for one scope: a scope that needs more is too broad.
pub(super) const MAX_PAGES: usize = 20;

/// Scopes told to back off, until when: (namespace, ConnectorScope).
#[derive(Clone, Default)]
pub(crate) struct Backoff(Arc<Mutex<HashMap<(String, String), Instant>>>);

impl Backoff {
    fn key(req: &ScopeRequest<'_>) -> (String, String) {
        (req.namespace.to_string(), req.name.to_string())
    }

    fn until(&self, req: &ScopeRequest<'_>) -> Option<Instant> {
        let map = self.0.lock().ok()?;
        map.get(&Self::key(req))
            .copied()
            .filter(|t| *t > Instant::now())
    }

    fn hold(&self, req: &ScopeRequest<'_>, wait: Duration) {
        if let Ok(mut map) = self.0.lock() {
            map.retain(|_, t| *t > Instant::now());
            map.insert(Self::key(req), Instant::now() + wait);
        }
    }
}

/// How a provider names itself and explains its errors.
pub(super) struct Provider {
    /// Name in messages, e.g. `PagerDuty`.
    pub name: &'static str,
    /// The human message of an error body, in the provider's documented shape.
    pub error_message: fn(&Value) -> Option<String>,
    /// The HTTP status an error answer stands for: GraphQL APIs say
    /// "authentication error" or "ratelimited" in the body of a 400.
    pub effective_status: fn(StatusCode, &Value) -> StatusCode,
}

/// For providers whose HTTP status says it all.
pub(super) fn as_sent(status: StatusCode, _: &Value) -> StatusCode {
    status
}

/// A successful answer.
pub(super) struct Answer {
    pub body: Value,
    pub headers: HeaderMap,
    /// The provider's `Date`, never later than our clock.
    pub date: Option<Timestamp>,
}

impl Connectors {
    /// Sends one request for `what` (e.g. `incidents of service PIJ90N7`)
    /// and reads the JSON answer, mapping every failure to a health:
    /// 401 → CredentialRequired, 403 → Forbidden, 404 → Invalid (the scope
    /// names something that does not exist), 429 → Unreachable and no call
    /// until `Retry-After` has passed, 5xx, timeouts and connection errors →
    /// Unreachable, an answer larger than 4 MiB or not JSON → Invalid.
    pub(super) async fn call(
        &self,
        req: &ScopeRequest<'_>,
        provider: &Provider,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, ConnectorError> {
        let (body, headers, date) = self.call_raw(req, provider, what, request).await?;
        let body: Value = serde_json::from_slice(&body).map_err(|e| {
            ConnectorError::Invalid(format!(
                "{} answered {what} with a body that is not its documented JSON: {e}",
                provider.name
            ))
        })?;
        Ok(Answer {
            body,
            headers,
            date,
        })
    }

    /// [`Connectors::call`] for answers that are not JSON (Slack's `ok`):
    /// the bounded body, the headers and the provider's `Date`.
    pub(super) async fn call_raw(
        &self,
        req: &ScopeRequest<'_>,
        provider: &Provider,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(Vec<u8>, HeaderMap, Option<Timestamp>), ConnectorError> {
        let name = provider.name;
        if let Some(until) = self.backoff.until(req) {
            let left = until.saturating_duration_since(Instant::now()).as_secs() + 1;
            return Err(ConnectorError::Unreachable(format!(
                "{name} rate limit: backing off as the provider asked (HTTP 429 Retry-After); next call in {left}s"
            )));
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                ConnectorError::Unreachable(format!(
                    "{name} did not answer within {}s ({what})",
                    self.timeout.as_secs()
                ))
            } else {
                ConnectorError::Unreachable(format!(
                    "{name} could not be reached ({what}): {}",
                    super::error_chain(e)
                ))
            }
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        if status.is_success() {
            let body = read_bounded(response, MAX_BODY_BYTES, name, what).await?;
            let date = date_of(&headers).map(|d| d.min(req.now));
            return Ok((body, headers, date));
        }
        let (detail, status) = error_detail(response, provider, status).await;
        Err(self.failure(req, provider, what, status, &headers, &detail))
    }

    /// The health a provider's failure maps to (see [`Connectors::call`]).
    pub(super) fn failure(
        &self,
        req: &ScopeRequest<'_>,
        provider: &Provider,
        what: &str,
        status: StatusCode,
        headers: &HeaderMap,
        detail: &str,
    ) -> ConnectorError {
        let name = provider.name;
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        let secret = req
            .spec
            .secret_ref
            .as_ref()
            .map(|r| format!("Secret {} key {}", r.name, r.key))
            .unwrap_or_else(|| "secretRef".into());
        match status {
            StatusCode::UNAUTHORIZED => ConnectorError::CredentialRequired(format!(
                "{name} rejected the credential for {what} (HTTP 401{detail}); put a valid token in {secret}"
            )),
            StatusCode::FORBIDDEN => ConnectorError::Forbidden(format!(
                "{name} refused {what} to this token (HTTP 403{detail}); grant it read access to that scope"
            )),
            StatusCode::NOT_FOUND => ConnectorError::Invalid(format!(
                "{name}: {what} not found (HTTP 404{detail}); check the scope"
            )),
            StatusCode::TOO_MANY_REQUESTS => {
                let wait = retry_after(headers, req.now);
                self.backoff.hold(req, wait);
                ConnectorError::Unreachable(format!(
                    "{name} rate limit reached reading {what} (HTTP 429{detail}); backing off {}s as the provider asked",
                    wait.as_secs()
                ))
            }
            s if s.is_server_error() => ConnectorError::Unreachable(format!(
                "{name} failed answering {what} (HTTP {s}{detail})"
            )),
            s => ConnectorError::Invalid(format!("{name} refused {what} (HTTP {s}{detail})")),
        }
    }
}

/// The provider's message of an error answer, bounded and redacted, and
/// the status it stands for.
async fn error_detail(
    response: reqwest::Response,
    provider: &Provider,
    status: StatusCode,
) -> (String, StatusCode) {
    let Ok(body) = read_bounded(response, MAX_ERROR_BYTES, provider.name, "an error").await else {
        return (String::new(), status);
    };
    let (text, status) = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => (
            (provider.error_message)(&v).unwrap_or_default(),
            (provider.effective_status)(status, &v),
        ),
        Err(_) => (String::from_utf8_lossy(&body).trim().to_string(), status),
    };
    (clean_detail(&text), status)
}

/// An error text as shown: at most 300 characters, redacted.
pub(super) fn clean_detail(text: &str) -> String {
    let text: String = text.chars().take(300).collect();
    redact::redact_str(text.trim()).into_owned()
}

/// Reads a body of at most `limit` bytes.
pub(super) async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
    name: &str,
    what: &str,
) -> Result<Vec<u8>, ConnectorError> {
    let too_large = || {
        ConnectorError::Invalid(format!(
            "{name} answered {what} with more than {} KiB; narrow the scope",
            limit >> 10
        ))
    };
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        ConnectorError::Unreachable(format!(
            "{name} answer to {what} was cut off: {}",
            super::error_chain(e)
        ))
    })? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How long a 429 asks us to wait: `Retry-After` (seconds or an HTTP
/// date), else a `RateLimit-Reset`/`X-RateLimit-Reset` in seconds, else a
/// minute; at most an hour.
pub(super) fn retry_after(headers: &HeaderMap, now: Timestamp) -> Duration {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let seconds = |s: &str| s.trim().parse::<u64>().ok().map(Duration::from_secs);
    let wait = text("retry-after")
        .and_then(|v| {
            seconds(v).or_else(|| {
                parse_http_date(v)
                    .map(|at| Duration::from_secs(at.duration_since(now).as_secs().max(0) as u64))
            })
        })
        .or_else(|| text("ratelimit-reset").and_then(seconds))
        .or_else(|| text("x-ratelimit-reset").and_then(seconds))
        // Opsgenie names the period its quota counts in.
        .or_else(|| text("x-ratelimit-period-in-sec").and_then(seconds))
        // Sentry: when the window resets, in epoch seconds.
        .or_else(|| {
            let at: i64 = text("x-sentry-rate-limit-reset")?.trim().parse().ok()?;
            let at = Timestamp::from_second(at).ok()?;
            Some(Duration::from_secs(
                at.duration_since(now).as_secs().max(0) as u64
            ))
        })
        // Linear: when the request quota refills, in epoch milliseconds.
        .or_else(|| {
            let ms: i64 = text("x-ratelimit-requests-reset")?.trim().parse().ok()?;
            let at = Timestamp::from_millisecond(ms).ok()?;
            let left = at.duration_since(now).as_millis().max(0);
            Some(Duration::from_secs(((left + 999) / 1000) as u64))
        })
        .unwrap_or(DEFAULT_BACKOFF);
    wait.clamp(Duration::from_secs(1), MAX_BACKOFF)
}

fn parse_http_date(text: &str) -> Option<Timestamp> {
    jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(text.trim())
        .ok()
}

/// The `Date` header.
pub(super) fn date_of(headers: &HeaderMap) -> Option<Timestamp> {
    headers
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
}

/// A provider-side name or id as one URL path segment.
pub(super) fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A header value that never shows up in debug output.
pub(super) fn sensitive(value: &str) -> Result<HeaderValue, ConnectorError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        ConnectorError::Invalid(
            "the credential holds characters an HTTP header cannot carry".into(),
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// The scope's credential, which every SaaS connector requires.
pub(super) async fn required_token(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
    provider: &str,
) -> Result<String, ConnectorError> {
    connectors.secret_token(req).await?.ok_or_else(|| {
        ConnectorError::CredentialRequired(format!(
            "connector {} reads {provider} live only with a scoped credential: set secretRef to a Secret key holding the token",
            req.spec.connector
        ))
    })
}

/// A base URL from the scope (or the provider's default), checked: http(s),
/// no credentials, no query or fragment; without a trailing slash.
pub(super) fn base_url(configured: Option<&str>, default: &str) -> Result<String, ConnectorError> {
    let text = configured.unwrap_or(default);
    let url = reqwest::Url::parse(text)
        .map_err(|e| ConnectorError::Invalid(format!("url {text:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConnectorError::Invalid(format!(
            "url {text:?} must start with https:// (or http://)"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConnectorError::Invalid(
            "url must not carry credentials; use secretRef".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConnectorError::Invalid(format!(
            "url {} must be the base URL, without ?query or #fragment",
            redact::redact_str(text)
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// `observedAt` of a provider's answer: its own clock when it sent one.
pub(super) fn observed(answers: &[Option<Timestamp>], now: Timestamp) -> Timestamp {
    answers.iter().flatten().min().copied().unwrap_or(now)
}

/// The next page of a `Link` header (`<url>; rel="next"`), when the
/// provider says it has results (Sentry adds `results="false"` to an empty one).
pub(super) fn link_next(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let params: Vec<&str> = params.split(';').map(str::trim).collect();
        let next = params
            .iter()
            .any(|p| p.eq_ignore_ascii_case("rel=\"next\""));
        let empty = params
            .iter()
            .any(|p| p.eq_ignore_ascii_case("results=\"false\""));
        (next && !empty).then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

/// A page URL a provider returned must stay on its API: same scheme, host
/// and port as the configured base.
pub(super) fn same_origin(base: &str, next: &str) -> Result<reqwest::Url, ConnectorError> {
    let base = reqwest::Url::parse(base).map_err(|e| ConnectorError::Invalid(e.to_string()))?;
    let url = reqwest::Url::parse(next)
        .map_err(|e| ConnectorError::Invalid(format!("next page link is not a URL: {e}")))?;
    if url.origin() != base.origin() {
        return Err(ConnectorError::Invalid(format!(
            "next page link leaves the configured API ({})",
            redact::redact_str(url.as_str())
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now: Timestamp = "2026-05-03T09:30:00Z".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("30"));
        assert_eq!(retry_after(&h, now), Duration::from_secs(30));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 03 May 2026 09:32:00 GMT"),
        );
        assert_eq!(retry_after(&h, now), Duration::from_secs(120));
        let mut h = HeaderMap::new();
        h.insert("ratelimit-reset", HeaderValue::from_static("12"));
        assert_eq!(retry_after(&h, now), Duration::from_secs(12));
        assert_eq!(retry_after(&HeaderMap::new(), now), DEFAULT_BACKOFF);
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("999999"));
        assert_eq!(retry_after(&h, now), MAX_BACKOFF);
    }

    #[test]
    fn link_header_next_page() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(
                "<https://sentry.io/api/0/x/?cursor=0:0:1>; rel=\"previous\"; results=\"false\"; cursor=\"0:0:1\", <https://sentry.io/api/0/x/?cursor=0:100:0>; rel=\"next\"; results=\"true\"; cursor=\"0:100:0\"",
            ),
        );
        assert_eq!(
            link_next(&h).as_deref(),
            Some("https://sentry.io/api/0/x/?cursor=0:100:0")
        );
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(
                "<https://sentry.io/api/0/x/?cursor=0:100:0>; rel=\"next\"; results=\"false\"",
            ),
        );
        assert_eq!(link_next(&h), None);
    }

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(
            base_url(None, "https://api.pagerduty.com/").unwrap(),
            "https://api.pagerduty.com"
        );
        assert!(base_url(Some("https://u:p@x.example"), "").is_err());
        assert!(base_url(Some("https://x.example/?q=1"), "").is_err());
        assert!(base_url(Some("ftp://x.example"), "").is_err());
    }

    #[test]
    fn next_pages_stay_on_the_api() {
        assert!(
            same_origin(
                "https://acme.service-now.com",
                "https://acme.service-now.com/api/now/table/x?sysparm_offset=10"
            )
            .is_ok()
        );
        assert!(same_origin("https://acme.service-now.com", "https://evil.example/x").is_err());
    }
}
