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
    for (k, v) in &answer.headers {
        response = response.header(k.as_str(), v.replace("{base}", &base));
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
