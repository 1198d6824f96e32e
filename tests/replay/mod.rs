//! Local replay servers for the SaaS connectors: a loopback HTTP server
//! that answers with a provider's documented bodies and headers (kept as
//! fixtures under `tests/fixtures/providers/`, each naming the documentation
//! page it was taken from) and records every request it receives, so tests
//! can check what the connector sent (auth scheme, scope, pagination) and
//! that it did not call again while told to back off.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use releasepassport::connectors::Connectors;
use serde_json::Value;

/// What the server answers.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    body: Reply,
}

#[derive(Clone, Debug)]
enum Reply {
    Bytes(Vec<u8>),
    /// Never answers (the connector's timeout must end the call).
    Hang,
}

impl Answer {
    pub fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Reply::Bytes(body.to_string().into_bytes()),
        }
    }

    pub fn text(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: Reply::Bytes(body.as_bytes().to_vec()),
        }
    }

    /// A JSON array of `bytes` bytes: bigger than any connector reads.
    pub fn oversized(bytes: usize) -> Answer {
        let mut body = Vec::with_capacity(bytes + 2);
        body.push(b'[');
        while body.len() < bytes {
            body.extend_from_slice(b"\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",");
        }
        body.extend_from_slice(b"0]");
        Answer {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Reply::Bytes(body),
        }
    }

    pub fn hang() -> Answer {
        Answer {
            status: 200,
            headers: vec![],
            body: Reply::Hang,
        }
    }

    /// A recorded provider answer: `tests/fixtures/providers/<file>` holds
    /// `{"documentation": URL, "status": 200, "headers": {...}, "body": ...}`.
    pub fn fixture(file: &str) -> Answer {
        let value = fixture(file);
        let status = value["status"].as_u64().unwrap_or(200) as u16;
        let mut headers: Vec<(String, String)> = value["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.to_lowercase(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let body = match &value["body"] {
            Value::String(s) => s.clone().into_bytes(),
            Value::Null => Vec::new(),
            other => other.to_string().into_bytes(),
        };
        if !headers.iter().any(|(k, _)| k == "content-type") {
            headers.push(("content-type".into(), "application/json".into()));
        }
        Answer {
            status,
            headers,
            body: Reply::Bytes(body),
        }
    }

    /// The same answer with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.retain(|(k, _)| k != &name.to_lowercase());
        self.headers.push((name.to_lowercase(), value.to_string()));
        self
    }

    /// The same answer with `Date` set to now (fixtures carry the date they
    /// were recorded with; tests on the real clock need fresh answers).
    pub fn dated_now(self) -> Answer {
        let now = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&jiff::Timestamp::now())
            .expect("HTTP date");
        self.header("date", &now)
    }

    /// The body as text, with `{base}` replaced (fixtures whose pagination
    /// links name the server).
    fn body_for(&self, base: &str) -> Option<Vec<u8>> {
        match &self.body {
            Reply::Bytes(b) => Some(
                String::from_utf8(b.clone())
                    .map(|s| s.replace("{base}", base).into_bytes())
                    .unwrap_or_else(|_| b.clone()),
            ),
            Reply::Hang => None,
        }
    }
}

/// A fixture file as JSON; it must name its documentation page.
pub fn fixture(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/providers")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        value["documentation"]
            .as_str()
            .is_some_and(|d| d.starts_with("https://")),
        "{file} must name the documentation page it was taken from"
    );
    value
}

/// Which requests a route answers.
#[derive(Clone, Debug)]
pub struct Route {
    method: Option<Method>,
    path: String,
    query: Vec<(String, String)>,
    /// Answers in order; the last repeats.
    answers: Vec<Answer>,
}

impl Route {
    /// Requests whose path is `path` (any method).
    pub fn path(path: &str) -> Route {
        Route {
            method: None,
            path: path.to_string(),
            query: vec![],
            answers: vec![],
        }
    }

    pub fn method(mut self, method: Method) -> Route {
        self.method = Some(method);
        self
    }

    /// Only requests whose query has `key=value` (after decoding).
    pub fn query(mut self, key: &str, value: &str) -> Route {
        self.query.push((key.to_string(), value.to_string()));
        self
    }

    pub fn answer(mut self, answer: Answer) -> Route {
        self.answers.push(answer);
        self
    }

    fn matches(&self, method: &Method, uri: &Uri) -> bool {
        if self.method.as_ref().is_some_and(|m| m != method) || uri.path() != self.path {
            return false;
        }
        let pairs = query_pairs(uri);
        self.query.iter().all(|q| pairs.contains(q))
    }
}

/// The decoded query of a URI.
pub fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://replay{uri}"))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn query(&self) -> Vec<(String, String)> {
        query_pairs(&self.uri)
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON request body")
    }
}

struct Shared {
    routes: Vec<(Route, usize)>,
    received: Vec<Received>,
    base: String,
}

/// A running replay server; it stops with the test's runtime.
pub struct Replay {
    pub base: String,
    shared: Arc<Mutex<Shared>>,
}

impl Replay {
    /// A server answering every request with `answers` in order (the last repeats).
    pub async fn start(answers: Vec<Answer>) -> Replay {
        let mut route = Route::path("");
        route.answers = answers;
        Self::routes_inner(vec![route], true).await
    }

    /// A server answering by route; unmatched requests get a 404.
    pub async fn routes(routes: Vec<Route>) -> Replay {
        Self::routes_inner(routes, false).await
    }

    async fn routes_inner(routes: Vec<Route>, any_path: bool) -> Replay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let shared = Arc::new(Mutex::new(Shared {
            routes: routes.into_iter().map(|r| (r, 0)).collect(),
            received: vec![],
            base: base.clone(),
        }));
        let state = (shared.clone(), any_path);
        let app = axum::Router::new().fallback(handle).with_state(state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Replay { base, shared }
    }

    /// A URL on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// From now on, the routes for `path` answer `answer`.
    pub fn set_answer(&self, path: &str, answer: Answer) {
        let mut s = self.shared.lock().expect("replay state");
        for (route, served) in s.routes.iter_mut().filter(|(r, _)| r.path == path) {
            route.answers = vec![answer.clone()];
            *served = 0;
        }
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().expect("replay state").received.clone()
    }
}

type AppState = (Arc<Mutex<Shared>>, bool);

async fn handle(
    State((shared, any_path)): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (answer, base) = {
        let mut s = shared.lock().expect("replay state");
        s.received.push(Received {
            method: method.clone(),
            uri: uri.clone(),
            headers,
            body,
        });
        let base = s.base.clone();
        let found = s
            .routes
            .iter_mut()
            .find(|(r, _)| any_path || r.matches(&method, &uri))
            .map(|(route, served)| {
                let i = (*served).min(route.answers.len().saturating_sub(1));
                *served += 1;
                route.answers.get(i).cloned()
            });
        (found.flatten(), base)
    };
    let Some(answer) = answer else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::from(format!("no route for {method} {uri}")))
            .expect("response");
    };
    let Some(body) = answer.body_for(&base) else {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return Response::default();
    };
    let mut response = Response::builder().status(answer.status);
    // Fixtures whose rate-limit reset is a moment name it relative to now.
    let in_30s = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30)).as_millisecond();
    for (k, v) in &answer.headers {
        let v = v
            .replace("{base}", &base)
            .replace("{epoch_ms_in_30s}", &in_30s.to_string())
            .replace("{epoch_s_in_30s}", &(in_30s / 1000 + 1).to_string());
        response = response.header(k.as_str(), v);
    }
    response.body(Body::from(body)).expect("response")
}

/// Connectors whose Kubernetes client points nowhere and whose `secretRef`s
/// are given here: (namespace, Secret, key) → value.
pub fn connectors_with(secrets: &[(&str, &str, &str, &str)], timeout: Duration) -> Connectors {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::new("http://127.0.0.1:1".parse().expect("dummy cluster URL"));
    let client = kube::Client::try_from(config.clone()).expect("dummy client");
    let given: BTreeMap<(String, String, String), String> = secrets
        .iter()
        .map(|(ns, name, key, value)| {
            (
                (ns.to_string(), name.to_string(), key.to_string()),
                value.to_string(),
            )
        })
        .collect();
    Connectors::new(client, config, timeout)
        .expect("connectors")
        .with_given_secrets(given)
}

pub fn connectors() -> Connectors {
    connectors_with(&[], Duration::from_secs(5))
}

pub fn connectors_with_timeout(timeout: Duration) -> Connectors {
    connectors_with(&[], timeout)
}

/// The request a gate for payment-api v2.18.4 in production makes of `spec`.
pub fn request(
    spec: &releasepassport::api::ConnectorScopeSpec,
) -> releasepassport::connectors::ScopeRequest<'_> {
    releasepassport::connectors::ScopeRequest {
        namespace: "payments",
        name: "payment-api-scope",
        spec,
        service: "payment-api",
        environment: "production",
        now: jiff::Timestamp::now(),
        gate_name: "payment-api-production",
        gate: None,
        release: "v2.18.4",
        previous_release: Some("v2.17.9"),
    }
}

/// The token every provider test puts in Secret `provider-token` key `token`.
pub const TOKEN: &str = "q8ZrT4mW2xVb9LpNf3HdKs";

/// Connectors with [`TOKEN`] in `payments/provider-token`.
pub fn with_token(timeout: Duration) -> Connectors {
    connectors_with(&[("payments", "provider-token", "token", TOKEN)], timeout)
}

/// A fact's value in a document.
pub fn fact(doc: &releasepassport::api::EvidenceDocument, name: &str) -> Option<Value> {
    doc.facts
        .iter()
        .find(|f| f.name == name)
        .and_then(|f| f.value.clone())
}

/// Every documented failure of a provider, answered by a local server for
/// every request, mapped to the health the issue promises: 401
/// CredentialRequired, 403 Forbidden, 404 Invalid, 429 Unreachable with the
/// `Retry-After` honoured (no second call), 5xx Unreachable, a timeout
/// Unreachable, an oversized or malformed body Invalid; and never the token
/// in a message, even when the provider echoes it.
pub async fn check_failure_modes(
    provider: &str,
    spec_for: impl Fn(&str) -> releasepassport::api::ConnectorScopeSpec,
) {
    use releasepassport::api::ConnectorHealth as H;
    let cases = [
        (
            Answer::fixture(&format!("{provider}/error-401.json")),
            H::CredentialRequired,
        ),
        (
            Answer::fixture(&format!("{provider}/error-403.json")),
            H::Forbidden,
        ),
        (
            Answer::fixture(&format!("{provider}/error-404.json")),
            H::Invalid,
        ),
        (
            Answer::fixture(&format!("{provider}/error-500.json")),
            H::Unreachable,
        ),
        (Answer::oversized(5 << 20), H::Invalid),
        (Answer::text(200, "<html>maintenance</html>"), H::Invalid),
        (
            Answer::text(
                502,
                &format!("proxy: upstream rejected Authorization {TOKEN}"),
            ),
            H::Unreachable,
        ),
        (Answer::hang(), H::Unreachable),
    ];
    for (answer, health) in cases {
        let status = answer.status;
        let server = Replay::start(vec![answer]).await;
        let spec = spec_for(&server.base);
        let err = with_token(Duration::from_secs(2))
            .collect(&request(&spec))
            .await
            .expect_err("a failure");
        assert_eq!(err.health(), health, "HTTP {status}: {err}");
        let text = releasepassport::passport::redact::redact_str(&err.to_string()).into_owned();
        assert!(!text.contains(TOKEN), "{text}");
        assert!(
            !err.to_string().contains(TOKEN),
            "the message itself: {err}"
        );
    }

    // 429: reported, and no further call until Retry-After has passed.
    let server = Replay::start(vec![Answer::fixture(&format!("{provider}/error-429.json"))]).await;
    let spec = spec_for(&server.base);
    let connectors = with_token(Duration::from_secs(2));
    let err = connectors
        .collect(&request(&spec))
        .await
        .expect_err("rate limited");
    assert_eq!(err.health(), H::Unreachable, "{err}");
    assert!(err.to_string().contains("429"), "{err}");
    // The fixtures ask for 30 s; a provider that names the instant its quota
    // refills (Linear, in epoch milliseconds) is read against the request's
    // start, so the wait rounds up to 31 s when the answer took a moment.
    let waited = err
        .to_string()
        .split("backing off ")
        .nth(1)
        .and_then(|rest| rest.split('s').next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(matches!(waited, Some(30 | 31)), "{err}");
    let calls = server.received().len();
    let again = connectors
        .collect(&request(&spec))
        .await
        .expect_err("still backing off");
    assert!(again.to_string().contains("backing off"), "{again}");
    assert_eq!(
        server.received().len(),
        calls,
        "called again during Retry-After"
    );

    // No Secret: CredentialRequired, naming it.
    let server = Replay::start(vec![Answer::text(200, "{}")]).await;
    let spec = spec_for(&server.base);
    let err = connectors_with(&[], Duration::from_secs(2))
        .collect(&request(&spec))
        .await
        .expect_err("no credential");
    assert_eq!(err.health(), H::CredentialRequired, "{err}");
    assert!(err.to_string().contains("provider-token"), "{err}");
    assert!(server.received().is_empty(), "called without a credential");
}
