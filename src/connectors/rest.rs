//! The HTTP plumbing every SaaS connector shares: one provider's base URL
//! and credentials, bounded reads, the mapping of HTTP answers to health,
//! rate limits honoured within the connector's time budget, and pagination
//! that never leaves the provider's origin.
//!
//! Messages name the provider and what was read, carry the provider's own
//! explanation (redacted, shortened) and never a credential or a URL with
//! a query string.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{EvidenceDocument, Fact, Freshness};
use crate::passport::redact;

use super::{ConnectorError, Connectors, ScopeRequest, error_chain};

/// Largest answer read from a provider unless a connector says otherwise.
pub const MAX_BODY_BYTES: usize = 4 << 20;
/// Most pages read from one paginated list.
pub const MAX_PAGES: usize = 20;
/// How often one request is retried after a 429 that names a wait.
const MAX_RATE_LIMIT_RETRIES: usize = 2;
/// Longest provider explanation kept in a message.
const MAX_EXPLANATION_CHARS: usize = 300;

/// How a provider wants its credential.
pub enum Auth {
    /// No credential.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// A header of the provider's own, e.g. `PRIVATE-TOKEN`, `API-Key`.
    Header(&'static str, String),
    /// `Authorization: <scheme> <token>`, e.g. `token`, `ApiKey`; an empty
    /// scheme sends the token alone (LaunchDarkly).
    Scheme(&'static str, String),
    /// HTTP basic authentication.
    Basic(String, String),
}

/// One provider's API, as configured by one ConnectorScope.
pub struct Provider<'a> {
    connectors: &'a Connectors,
    /// Human name, e.g. `GitLab`.
    pub name: &'static str,
    base: reqwest::Url,
    /// The base URL as shown in messages and evidence (redacted).
    pub shown: String,
    headers: HeaderMap,
    max_body: usize,
    deadline: tokio::time::Instant,
}

/// A successful answer.
pub struct Answer {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(
        &self,
        provider: &str,
        what: &str,
    ) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ConnectorError::Invalid(format!(
                "{what}: the answer of {provider} is not what its API documents: {e}"
            ))
        })
    }
}

/// Checks a configured base URL: http(s), no credentials, no query or
/// fragment (nothing but the connector's own requests may reach the provider).
pub fn base_url(url: &str, field: &str) -> Result<reqwest::Url, ConnectorError> {
    let base = reqwest::Url::parse(url)
        .map_err(|e| ConnectorError::Invalid(format!("{field} is not a URL: {e}")))?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(ConnectorError::Invalid(format!(
            "{field} must start with http:// or https://"
        )));
    }
    if !base.username().is_empty() || base.password().is_some() {
        return Err(ConnectorError::Invalid(format!(
            "{field} must not carry credentials; use secretRef"
        )));
    }
    if base.query().is_some() || base.fragment().is_some() {
        return Err(ConnectorError::Invalid(format!(
            "{field} must be the base URL, without ?query or #fragment"
        )));
    }
    Ok(base)
}

impl<'a> Provider<'a> {
    /// A provider at `url` (checked with [`base_url`]), authenticated as `auth`.
    pub fn new(
        connectors: &'a Connectors,
        name: &'static str,
        url: &str,
        field: &str,
        auth: Auth,
    ) -> Result<Self, ConnectorError> {
        let base = base_url(url, field)?;
        let mut provider = Provider {
            connectors,
            name,
            shown: redact::redact_str(base.as_str().trim_end_matches('/')).into_owned(),
            base,
            headers: HeaderMap::new(),
            max_body: MAX_BODY_BYTES,
            deadline: tokio::time::Instant::now() + connectors.timeout,
        };
        match auth {
            Auth::None => {}
            Auth::Bearer(token) => {
                provider.secret_header("authorization", format!("Bearer {token}"))?
            }
            Auth::Header(name, token) => provider.secret_header(name, token)?,
            Auth::Scheme("", token) => provider.secret_header("authorization", token)?,
            Auth::Scheme(scheme, token) => {
                provider.secret_header("authorization", format!("{scheme} {token}"))?
            }
            Auth::Basic(user, password) => {
                use base64::Engine as _;
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                provider.secret_header("authorization", format!("Basic {encoded}"))?
            }
        }
        Ok(provider)
    }

    /// Adds a header that is not a secret (`Accept`, API version, tenant).
    pub fn header(mut self, name: &'static str, value: &str) -> Result<Self, ConnectorError> {
        let value = HeaderValue::from_str(value).map_err(|_| {
            ConnectorError::Invalid(format!("{}: header {name} value is not valid", self.name))
        })?;
        self.headers.insert(HeaderName::from_static(name), value);
        Ok(self)
    }

    /// Adds a credential header, marked sensitive (never logged by the client).
    pub fn secret_header(
        &mut self,
        name: &'static str,
        value: String,
    ) -> Result<(), ConnectorError> {
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            ConnectorError::Invalid(format!(
                "{}: the credential in secretRef contains characters an HTTP header cannot carry",
                self.name
            ))
        })?;
        value.set_sensitive(true);
        self.headers.insert(HeaderName::from_static(name), value);
        Ok(())
    }

    /// Caps answers at `bytes`.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// `{base}/{path}` with each segment percent-encoded, e.g.
    /// `url(&["api", "v4", "projects", "payments/payment-api"])`.
    pub fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            for s in segments {
                path.push(s);
            }
        }
        url
    }

    /// A URL the provider handed out (pagination), resolved against the
    /// base and refused when it leaves the provider's origin: the
    /// credential is never sent anywhere else.
    pub fn follow(&self, link: &str, what: &str) -> Result<reqwest::Url, ConnectorError> {
        let url = self.base.join(link).map_err(|e| {
            ConnectorError::Invalid(format!(
                "{what}: {} answered a bad next-page link: {e}",
                self.name
            ))
        })?;
        if url.origin() != self.base.origin() {
            return Err(ConnectorError::Invalid(format!(
                "{what}: {} answered a next-page link to another origin ({}); it is not followed",
                self.name,
                redact::redact_str(&url.origin().ascii_serialization())
            )));
        }
        Ok(url)
    }

    /// GET `url`, 2xx or an error naming `what`.
    pub async fn get(&self, url: reqwest::Url, what: &str) -> Result<Answer, ConnectorError> {
        self.send(|| self.connectors.http.get(url.clone()), what)
            .await
    }

    /// POST `body` as JSON to `url`.
    pub async fn post_json(
        &self,
        url: reqwest::Url,
        body: &Value,
        what: &str,
    ) -> Result<Answer, ConnectorError> {
        self.send(|| self.connectors.http.post(url.clone()).json(body), what)
            .await
    }

    /// GET `url` as JSON of type `T`; `None` when the provider answers 404
    /// (for lookups where "not found" is an answer, not an error).
    pub async fn get_json_opt<T: DeserializeOwned>(
        &self,
        url: reqwest::Url,
        what: &str,
    ) -> Result<Option<T>, ConnectorError> {
        match self
            .send_inner(|| self.connectors.http.get(url.clone()), what, true)
            .await?
        {
            Some(answer) => answer.json(self.name, what).map(Some),
            None => Ok(None),
        }
    }

    /// GET `url` as JSON of type `T`.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: reqwest::Url,
        what: &str,
    ) -> Result<(T, HeaderMap), ConnectorError> {
        let answer = self.get(url, what).await?;
        let value = answer.json(self.name, what)?;
        Ok((value, answer.headers))
    }

    async fn send(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
        what: &str,
    ) -> Result<Answer, ConnectorError> {
        self.send_inner(request, what, false).await?.ok_or_else(|| {
            ConnectorError::Invalid(format!("{what}: {} answered HTTP 404", self.name))
        })
    }

    async fn send_inner(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
        what: &str,
        not_found_is_none: bool,
    ) -> Result<Option<Answer>, ConnectorError> {
        let mut retries = 0;
        loop {
            let response = request()
                .headers(self.headers.clone())
                .send()
                .await
                .map_err(|e| {
                    ConnectorError::Unreachable(format!(
                        "{what}: {} at {}: {}",
                        self.name,
                        self.shown,
                        error_chain(e)
                    ))
                })?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = read_bounded(response, self.max_body)
                .await
                .map_err(|e| match e {
                    BodyError::TooLarge => ConnectorError::Invalid(format!(
                        "{what}: the answer of {} is larger than {} bytes; narrow the scope",
                        self.name, self.max_body
                    )),
                    BodyError::Read(e) => ConnectorError::Unreachable(format!(
                        "{what}: reading the answer of {}: {}",
                        self.name,
                        error_chain(e)
                    )),
                })?;
            if status.is_success() {
                return Ok(Some(Answer { headers, body }));
            }
            if not_found_is_none && status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if is_rate_limited(status, &headers) {
                let wait = retry_after(&headers, jiff::Timestamp::now());
                let left = self
                    .deadline
                    .saturating_duration_since(tokio::time::Instant::now());
                match wait {
                    Some(wait) if retries < MAX_RATE_LIMIT_RETRIES && wait < left => {
                        retries += 1;
                        tracing::debug!(
                            provider = self.name,
                            wait_ms = wait.as_millis() as u64,
                            "rate limited; waiting as the provider asks"
                        );
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    Some(wait) => {
                        return Err(ConnectorError::Unreachable(format!(
                            "{what}: {} rate-limits this scope's credential and asks to retry after {}s, beyond this evaluation's time budget; the next evaluation tries again",
                            self.name,
                            wait.as_secs_f64().ceil() as u64
                        )));
                    }
                    None => {
                        return Err(ConnectorError::Unreachable(format!(
                            "{what}: {} rate-limits this scope's credential (HTTP {status}, no Retry-After); the next evaluation tries again",
                            self.name
                        )));
                    }
                }
            }
            return Err(self.refusal(status, &body, what));
        }
    }

    /// What a non-2xx answer means for the scope.
    fn refusal(&self, status: StatusCode, body: &[u8], what: &str) -> ConnectorError {
        let explanation = explanation(body)
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        let text = format!("{what}: {} answered HTTP {status}{explanation}", self.name);
        match status.as_u16() {
            401 => ConnectorError::Forbidden(format!(
                "{text} (the credential in secretRef is missing, expired or wrong)"
            )),
            403 => ConnectorError::Forbidden(format!(
                "{text} (the credential in secretRef may not read this scope)"
            )),
            404 => ConnectorError::Invalid(format!(
                "{text} (check the project, job or object the scope names)"
            )),
            400..=499 => ConnectorError::Invalid(text),
            _ => ConnectorError::Unreachable(text),
        }
    }
}

/// 429, or GitHub's 403 with an exhausted rate limit.
fn is_rate_limited(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN
            && (headers.contains_key("retry-after")
                || header_str(headers, "x-ratelimit-remaining") == Some("0")))
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// How long the provider asks to wait: `Retry-After` (seconds or an HTTP
/// date), else a rate-limit reset header (`X-RateLimit-Reset`,
/// `RateLimit-Reset`: seconds from now, Unix seconds or Unix milliseconds,
/// told apart by size).
pub fn retry_after(headers: &HeaderMap, now: jiff::Timestamp) -> Option<Duration> {
    if let Some(value) = header_str(headers, "retry-after") {
        if let Ok(seconds) = value.parse::<f64>() {
            return (seconds.is_finite() && seconds >= 0.0)
                .then(|| Duration::from_secs_f64(seconds));
        }
        if let Ok(at) = jiff::fmt::rfc2822::parse(value) {
            return Some(until(now, at.timestamp()));
        }
    }
    for name in ["x-ratelimit-reset", "ratelimit-reset"] {
        let Some(value) = header_str(headers, name).and_then(|v| v.parse::<i64>().ok()) else {
            continue;
        };
        return Some(if value > 100_000_000_000 {
            until(now, jiff::Timestamp::from_millisecond(value).ok()?)
        } else if value > 1_000_000_000 {
            until(now, jiff::Timestamp::from_second(value).ok()?)
        } else {
            Duration::from_secs(value.max(0) as u64)
        });
    }
    None
}

fn until(now: jiff::Timestamp, at: jiff::Timestamp) -> Duration {
    let ms = at.as_millisecond() - now.as_millisecond();
    Duration::from_millis(ms.max(0) as u64)
}

/// The provider's own explanation in an error body (`message`, `error`,
/// `errors[0].message|detail`, Elasticsearch's `error.reason`), redacted
/// and shortened; else a short plain-text body.
pub fn explanation(body: &[u8]) -> Option<String> {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(value) => json_explanation(&value)?,
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() || text.starts_with('<') {
                return None;
            }
            text.to_string()
        }
    };
    let text = redact::redact_str(text.trim()).into_owned();
    let mut short: String = text.chars().take(MAX_EXPLANATION_CHARS).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    Some(short)
}

fn json_explanation(value: &Value) -> Option<String> {
    let string = |v: &Value| v.as_str().map(str::to_string);
    if let Some(error) = value.get("error") {
        if let Some(reason) = error.get("reason").and_then(string) {
            return Some(reason);
        }
        if let Some(text) = string(error) {
            return Some(text);
        }
    }
    if let Some(message) = value.get("message").and_then(string) {
        return Some(message);
    }
    if let Some(first) = value.get("errors").and_then(|e| e.get(0)) {
        for key in ["message", "detail", "msg", "title"] {
            if let Some(text) = first.get(key).and_then(string) {
                return Some(text);
            }
        }
        if let Some(text) = string(first) {
            return Some(text);
        }
    }
    None
}

/// The `rel="next"` target of an RFC 8288 `Link` header (GitHub, GitLab).
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = header_str(headers, "link")?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

/// Fails a paginated read that still has pages after [`MAX_PAGES`]: a
/// count over part of a list would be wrong.
pub fn too_many_pages(provider: &str, what: &str) -> ConnectorError {
    ConnectorError::Invalid(format!(
        "{what}: {provider} has more than {MAX_PAGES} pages of results; narrow the scope"
    ))
}

/// Why a body could not be read whole.
pub enum BodyError {
    TooLarge,
    Read(reqwest::Error),
}

/// Reads a body chunk by chunk, giving up past `limit` bytes so a huge
/// answer is never held in memory.
pub async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A fact without a verdict of its own.
pub fn fact(name: &str, value: impl Into<Value>) -> Fact {
    Fact {
        name: name.into(),
        status: None,
        value: Some(value.into()),
        threshold: None,
        observed_at: None,
    }
}

/// A comparison with the gate's artifact: `true`/`false`, with `passed` /
/// `failed` as the source's verdict and what was compared as threshold.
pub fn agreement(name: &str, observed: &str, expected: &str) -> Fact {
    let matches = same_revision(observed, expected);
    Fact {
        name: name.into(),
        status: Some(if matches { "passed" } else { "failed" }.into()),
        value: Some(Value::Bool(matches)),
        threshold: Some(format!("observed {observed}, release has {expected}")),
        observed_at: None,
    }
}

/// Adds `agrees_with_release`: `true` when every comparison with the gate's
/// artifact (`*_matches*` facts) passed and there was at least one.
pub fn push_agreement_summary(facts: &mut Vec<Fact>) {
    let mut compared = facts
        .iter()
        .filter(|f| f.status.is_some() && f.name.contains("_matches"))
        .peekable();
    let any = compared.peek().is_some();
    let all = compared.all(|f| f.value == Some(Value::Bool(true)));
    if any {
        facts.push(fact("agrees_with_release", any && all));
    }
}

/// Commit SHAs and digests compare case-insensitively; an abbreviated SHA
/// (at least 7 characters) matches its full form.
pub fn same_revision(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim().to_ascii_lowercase(), b.trim().to_ascii_lowercase());
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    short.len() >= 7 && long.starts_with(short.as_str())
}

/// The evidence document of a provider read: the scope's own keys, the
/// provider's `source` (redacted base URL) and `extra` scope keys.
pub fn document(
    req: &ScopeRequest<'_>,
    connector: &str,
    source: &str,
    extra: &[(&str, String)],
    facts: Vec<Fact>,
    observed_at: Option<jiff::Timestamp>,
) -> EvidenceDocument {
    let mut scope = req.evidence_scope();
    scope.insert("source".into(), source.to_string());
    for (k, v) in extra {
        scope.insert((*k).to_string(), v.clone());
    }
    EvidenceDocument {
        connector: connector.into(),
        scope,
        freshness: Freshness {
            observed_at: observed_at.unwrap_or(req.now),
            max_age_seconds: Some(req.max_age_seconds()),
        },
        facts,
    }
}

/// The scope's required token, or `CredentialRequired` naming the connector.
pub async fn required_token(
    connectors: &Connectors,
    req: &ScopeRequest<'_>,
    connector: &str,
) -> Result<String, ConnectorError> {
    connectors.secret_token(req).await?.ok_or_else(|| {
        ConnectorError::CredentialRequired(format!(
            "connector {connector} reads with a credential: set secretRef to a Secret key holding the token"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_static(k),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn retry_after_reads_seconds_dates_and_reset_headers() {
        let now: jiff::Timestamp = "2026-05-03T09:30:00Z".parse().expect("ts");
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "Sun, 03 May 2026 09:30:30 GMT")]),
                now
            ),
            Some(Duration::from_secs(30))
        );
        // GitHub: Unix seconds; LaunchDarkly: Unix milliseconds; Datadog: seconds from now.
        assert_eq!(
            retry_after(
                &headers(&[("x-ratelimit-reset", &(now.as_second() + 12).to_string())]),
                now
            ),
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            retry_after(
                &headers(&[(
                    "x-ratelimit-reset",
                    &(now.as_millisecond() + 1500).to_string()
                )]),
                now
            ),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&headers(&[("x-ratelimit-reset", "4")]), now),
            Some(Duration::from_secs(4))
        );
        assert_eq!(retry_after(&headers(&[]), now), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
    }

    #[test]
    fn a_github_403_with_an_exhausted_limit_is_a_rate_limit_not_a_refusal() {
        assert!(is_rate_limited(
            StatusCode::FORBIDDEN,
            &headers(&[("x-ratelimit-remaining", "0")])
        ));
        assert!(!is_rate_limited(
            StatusCode::FORBIDDEN,
            &headers(&[("x-ratelimit-remaining", "12")])
        ));
        assert!(is_rate_limited(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[])
        ));
    }

    #[test]
    fn next_link_reads_rfc8288() {
        let h = headers(&[(
            "link",
            r#"<https://api.github.com/repositories/1/actions/runs/2/jobs?page=2>; rel="next", <https://api.github.com/repositories/1/actions/runs/2/jobs?page=5>; rel="last""#,
        )]);
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://api.github.com/repositories/1/actions/runs/2/jobs?page=2")
        );
        assert_eq!(
            next_link(&headers(&[("link", r#"<https://x/?page=1>; rel="prev""#)])),
            None
        );
    }

    #[test]
    fn explanations_are_redacted_and_short() {
        assert_eq!(
            explanation(br#"{"message":"401 Unauthorized"}"#).as_deref(),
            Some("401 Unauthorized")
        );
        assert_eq!(
            explanation(br#"{"errors":[{"detail":"Not authorised"}]}"#).as_deref(),
            Some("Not authorised")
        );
        assert_eq!(
            explanation(br#"{"error":{"root_cause":[],"type":"index_not_found_exception","reason":"no such index [logs]"},"status":404}"#).as_deref(),
            Some("no such index [logs]")
        );
        let leaked =
            explanation(br#"{"message":"bad token glpat-abcdefghijklmnopqrst"}"#).expect("text");
        assert!(!leaked.contains("glpat-abcdefghijklmnopqrst"), "{leaked}");
        assert!(
            explanation(&[b'x'; 5000]).expect("text").chars().count() <= MAX_EXPLANATION_CHARS + 1
        );
        assert_eq!(explanation(b"<html>502</html>"), None);
    }

    #[test]
    fn revisions_match_abbreviated_and_case_insensitively() {
        assert!(same_revision(
            "C3D4E5F",
            "c3d4e5f60718293a4b5c6d7e8f9001a2b3c4d5e6"
        ));
        assert!(!same_revision(
            "c3d4",
            "c3d4e5f60718293a4b5c6d7e8f9001a2b3c4d5e6"
        ));
        assert!(!same_revision("", ""));
        assert!(!same_revision("a1b2c3d4e5", "c3d4e5f607"));
    }

    #[test]
    fn base_urls_refuse_credentials_queries_and_other_schemes() {
        for bad in [
            "https://u:p@gitlab.example.com",
            "https://x/?private_token=1",
            "file:///etc",
            "nope",
        ] {
            let err = base_url(bad, "spec.gitlab.url").expect_err(bad);
            assert!(matches!(err, ConnectorError::Invalid(_)), "{bad}");
            assert!(!err.to_string().contains("private_token=1"));
        }
        assert!(base_url("https://gitlab.example.com/gitlab", "f").is_ok());
    }
}
