//! The optional language-model summary of an investigation, beside the
//! deterministic one: off unless the operator configures an
//! OpenAI-compatible endpoint (`POST <endpoint>/chat/completions`). It is
//! fed only the investigation, redacted again before it leaves, and its
//! answer is shown labelled as such; it never reaches the decision, the
//! passport or the gate. Calls are bounded in time and size, and answers
//! are kept per passport so a page view does not call out each time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use crate::connectors::rest::{BodyError, read_bounded};
use crate::insights::Investigation;

/// Largest answer read from the endpoint.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Longest summary shown.
const MAX_SUMMARY_CHARS: usize = 2000;
/// Most summaries kept in memory.
const MAX_CACHED: usize = 512;

/// What the operator configured.
#[derive(Clone)]
pub struct LlmConfig {
    /// Base URL of the OpenAI-compatible API, e.g. `https://llm.example.com/v1`.
    pub endpoint: String,
    pub model: String,
    /// File holding the API key (a mounted Secret), read at start.
    pub key_file: Option<PathBuf>,
    pub timeout: Duration,
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field(
                "endpoint",
                &crate::passport::redact::redact_str(&self.endpoint),
            )
            .field("model", &self.model)
            .field("key_file", &self.key_file)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A summary, or why there is none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Summary {
    Text(String),
    Unavailable(String),
}

/// What the Settings page shows of the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Described {
    /// The URL called, redacted.
    pub url: String,
    pub model: String,
    /// Whether an API key is sent.
    pub key: bool,
    pub timeout_seconds: u64,
}

/// Calls the endpoint; one per console.
pub struct Summarizer {
    http: reqwest::Client,
    url: String,
    model: String,
    key: Option<String>,
    timeout: Duration,
    cache: Mutex<HashMap<String, Summary>>,
}

impl Summarizer {
    /// Builds the client and reads the key (masked from then on, like every secret).
    pub fn new(config: &LlmConfig) -> anyhow::Result<Self> {
        let key = match &config.key_file {
            Some(path) => {
                let key = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("--console-llm-key-file {}: {e}", path.display()))?
                    .trim()
                    .to_string();
                crate::passport::redact::mask_secret(&key);
                Some(key).filter(|k| !k.is_empty())
            }
            None => None,
        };
        let base = config.endpoint.trim_end_matches('/');
        let url = if base.ends_with("/chat/completions") {
            base.to_string()
        } else {
            format!("{base}/chat/completions")
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            anyhow::bail!("--console-llm-endpoint {base}: must be an http(s) URL");
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("releasepassport/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("building the language-model client: {e}"))?;
        Ok(Self {
            http,
            url,
            model: config.model.clone(),
            key,
            timeout: config.timeout,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration, secret-safe.
    pub fn describe(&self) -> Described {
        Described {
            url: crate::passport::redact::redact_str(&self.url).into_owned(),
            model: self.model.clone(),
            key: self.key.is_some(),
            timeout_seconds: self.timeout.as_secs(),
        }
    }

    /// The summary of `inv`, the investigation of the passport `key`
    /// (`namespace/name`): from memory when asked before.
    pub async fn summarize(&self, key: &str, inv: &Investigation) -> Summary {
        if let Some(s) = self.cache.lock().ok().and_then(|c| c.get(key).cloned()) {
            return s;
        }
        let summary = match self.call(inv).await {
            Ok(text) => Summary::Text(text),
            Err(why) => Summary::Unavailable(why),
        };
        if let (Summary::Text(_), Ok(mut cache)) = (&summary, self.cache.lock()) {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(key.to_string(), summary.clone());
        }
        summary
    }

    async fn call(&self, inv: &Investigation) -> Result<String, String> {
        let request = self
            .http
            .post(&self.url)
            .json(&request_body(&self.model, inv));
        let request = match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        };
        let response = request
            .send()
            .await
            .map_err(|e| format!("the endpoint did not answer: {}", without_url(&e)))?;
        let status = response.status();
        let body = read_bounded(response, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => {
                    format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes")
                }
                BodyError::Read(e) => format!("reading the answer: {}", without_url(&e)),
            })?;
        if !status.is_success() {
            return Err(format!("the endpoint answered {status}"));
        }
        answer(&body)
    }
}

/// A reqwest error without its URL (which could carry credentials).
fn without_url(e: &reqwest::Error) -> String {
    let text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        let mut text = e.to_string();
        if let Some(url) = e.url() {
            text = text.replace(url.as_str(), "<endpoint>");
        }
        text
    };
    crate::passport::redact::redact_str(&text).into_owned()
}

/// The chat request: the redacted investigation and nothing else (pure).
pub fn request_body(model: &str, inv: &Investigation) -> Value {
    let mut facts = serde_json::to_value(inv).unwrap_or(Value::Null);
    crate::passport::redact::redact_value(&mut facts);
    json!({
        "model": model,
        "temperature": 0,
        "max_tokens": 400,
        "messages": [
            {"role": "system", "content": "You summarise why a software release was held back, for the engineers who own it. Use only the JSON investigation you are given; do not invent facts. In at most five sentences: what keeps the release back, what changed since the last allowed release, and what to do next. The decision is final and is not yours to change."},
            {"role": "user", "content": facts.to_string()},
        ],
    })
}

/// The text of a chat completion, bounded and redacted (pure).
pub fn answer(body: &[u8]) -> Result<String, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let text = v
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or("the answer has no choices[0].message.content")?;
    let mut text: String = text.chars().take(MAX_SUMMARY_CHARS).collect();
    if text.chars().count() == MAX_SUMMARY_CHARS {
        text.push('…');
    }
    Ok(crate::passport::redact::redact_str(&text).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_bounded_and_redacted() {
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaS1ib3QifQ.c2lnbmF0dXJlLXNlY3JldA";
        let body = json!({"choices": [{"message": {"role": "assistant", "content": format!("Held on the error rate. Bearer {token}")}}]});
        let text = answer(body.to_string().as_bytes()).expect("an answer");
        assert!(text.starts_with("Held on the error rate."));
        assert!(!text.contains(token), "{text}");
        let long = json!({"choices": [{"message": {"content": "x".repeat(10_000)}}]});
        assert_eq!(
            answer(long.to_string().as_bytes())
                .expect("an answer")
                .chars()
                .count(),
            MAX_SUMMARY_CHARS + 1
        );
        assert!(answer(b"{}").is_err());
        assert!(answer(b"not json").is_err());
    }

    #[test]
    fn the_key_is_masked_and_never_printed() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = std::env::temp_dir().join(format!("rp-llm-key-{}", std::process::id()));
        std::fs::write(&dir, "sk-test-key-0123456789\n").expect("key file");
        let config = LlmConfig {
            endpoint: "http://127.0.0.1:9/v1/".into(),
            model: "m".into(),
            key_file: Some(dir.clone()),
            timeout: Duration::from_secs(1),
        };
        let s = Summarizer::new(&config).expect("summarizer");
        assert_eq!(s.url, "http://127.0.0.1:9/v1/chat/completions");
        let shown = s.describe();
        assert!(shown.key);
        assert!(!format!("{shown:?}").contains("sk-test-key"));
        assert!(!format!("{config:?}").contains("sk-test-key"));
        assert_eq!(
            crate::passport::redact::redact_str("key sk-test-key-0123456789"),
            "key [redacted]"
        );
        let _ = std::fs::remove_file(dir);
    }
}
