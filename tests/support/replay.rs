//! A local server that answers as a SaaS provider does, with the bodies
//! and headers of the provider's own documentation (fixtures under
//! `tests/fixtures/providers/<provider>/`, each naming its documentation
//! URL). It records every request, so tests can check what the connector
//! sent (credential headers, pages asked for, the wait after a 429).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

/// One answer of the server.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Status, headers and body.
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Never answers (until the test ends).
    Hang,
    /// A 200 with a body of this many bytes.
    Huge(usize),
}

/// A fixture file: the provider's documented answer.
#[derive(Debug, Deserialize)]
pub struct Fixture {
    /// The provider documentation this answer is taken from.
    pub documentation: String,
    #[serde(default = "ok")]
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

fn ok() -> u16 {
    200
}

/// Reads `tests/fixtures/providers/<provider>/<name>.json` as a reply.
pub fn fixture(provider: &str, name: &str) -> Reply {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/providers")
        .join(provider)
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let fixture: Fixture =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        fixture.documentation.starts_with("https://"),
        "{}: name the provider documentation the answer comes from",
        path.display()
    );
    Reply::Answer {
        status: fixture.status,
        headers: fixture.headers.into_iter().collect(),
        body: match fixture.body {
            Value::String(s) => s,
            other => other.to_string(),
        },
    }
}

/// A reply with a status, headers and a JSON body.
pub fn json(status: u16, headers: &[(&str, &str)], body: &Value) -> Reply {
    Reply::Answer {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.to_string(),
    }
}

/// Requests to `method path` (and whose query holds every `query` pair)
/// get `replies` in turn; the last one repeats.
#[derive(Clone, Debug)]
pub struct Route {
    pub method: &'static str,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub replies: Vec<Reply>,
}

impl Route {
    pub fn get(path: &str, reply: Reply) -> Route {
        Route {
            method: "GET",
            path: path.into(),
            query: Vec::new(),
            replies: vec![reply],
        }
    }

    pub fn post(path: &str, reply: Reply) -> Route {
        Route {
            method: "POST",
            path: path.into(),
            query: Vec::new(),
            replies: vec![reply],
        }
    }

    /// Only requests whose query has `key` with a value containing `value`.
    pub fn with_query(mut self, key: &str, value: &str) -> Route {
        self.query.push((key.into(), value.into()));
        self
    }

    /// Answers `first` once, then what the route answered before.
    pub fn first(mut self, first: Reply) -> Route {
        self.replies.insert(0, first);
        self
    }
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: String,
    pub at: Instant,
}

struct Inner {
    routes: Vec<(Route, usize)>,
    requests: Vec<Recorded>,
    /// Header every request must carry, else 401 with this body.
    credential: Option<(String, String, Reply)>,
    /// The server's own URL, put in place of `{base}` in answers (links).
    base: String,
}

/// The running server.
#[derive(Clone)]
pub struct Replay {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl Replay {
    /// Starts a server on a loopback port, in the current tokio runtime.
    pub async fn start(routes: Vec<Route>) -> Replay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let inner = Arc::new(Mutex::new(Inner {
            routes: routes.into_iter().map(|r| (r, 0)).collect(),
            requests: Vec::new(),
            credential: None,
            base: url.clone(),
        }));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Replay { url, inner }
    }

    /// Every request must carry `header: value`; others get `refusal`.
    pub fn require(&self, header: &str, value: &str, refusal: Reply) {
        self.inner.lock().expect("lock").credential =
            Some((header.to_ascii_lowercase(), value.to_string(), refusal));
    }

    /// Replaces the replies of the route `method path` (all its query variants).
    pub fn answer(&self, method: &str, path: &str, replies: Vec<Reply>) {
        let mut inner = self.inner.lock().expect("lock");
        let mut found = false;
        for (route, served) in inner.routes.iter_mut() {
            if route.method == method && route.path == path {
                route.replies = replies.clone();
                *served = 0;
                found = true;
            }
        }
        assert!(found, "no route {method} {path}");
    }

    /// Puts `first` before the replies of the route `method path`.
    pub fn answer_first(&self, method: &str, path: &str, first: Reply) {
        let mut inner = self.inner.lock().expect("lock");
        let mut found = false;
        for (route, served) in inner.routes.iter_mut() {
            if route.method == method && route.path == path {
                route.replies.insert(0, first.clone());
                *served = 0;
                found = true;
            }
        }
        assert!(found, "no route {method} {path}");
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().expect("lock").requests.clone()
    }
}

async fn answer(State(inner): State<Arc<Mutex<Inner>>>, request: Request) -> Response {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let query: Vec<(String, String)> = request.uri().query().map(url_pairs).unwrap_or_default();
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let reply = {
        let mut inner = inner.lock().expect("lock");
        inner.requests.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            headers: headers.clone(),
            body,
            at: Instant::now(),
        });
        let refused = inner
            .credential
            .as_ref()
            .and_then(|(name, value, refusal)| {
                let sent = headers.get(name.as_str()).and_then(|v| v.to_str().ok());
                (sent != Some(value.as_str())).then(|| refusal.clone())
            });
        refused
            .or_else(|| {
                let (route, served) = inner.routes.iter_mut().find(|(r, _)| {
                    r.method == method
                        && r.path == path
                        && r.query.iter().all(|(k, v)| {
                            query
                                .iter()
                                .any(|(qk, qv)| qk == k && qv.contains(v.as_str()))
                        })
                })?;
                let index = (*served).min(route.replies.len().saturating_sub(1));
                *served += 1;
                route.replies.get(index).cloned()
            })
            .map(|reply| match reply {
                Reply::Answer {
                    status,
                    headers,
                    body,
                } => Reply::Answer {
                    status,
                    headers: headers
                        .into_iter()
                        .map(|(k, v)| (k, v.replace("{base}", &inner.base)))
                        .collect(),
                    body: body.replace("{base}", &inner.base),
                },
                other => other,
            })
    };
    match reply {
        Some(Reply::Answer {
            status,
            headers,
            body,
        }) => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let h = response.headers_mut();
            h.insert("content-type", HeaderValue::from_static("application/json"));
            for (k, v) in headers {
                if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                    h.insert(k, v);
                }
            }
            response
        }
        Some(Reply::Hang) => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            Response::new(Body::from("{}"))
        }
        Some(Reply::Huge(bytes)) => {
            let mut response = Response::new(Body::from(vec![b' '; bytes]));
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            response
        }
        None => {
            let mut response = Response::new(Body::from(format!(
                "{{\"message\": \"no fixture for {method} {path}\"}}"
            )));
            *response.status_mut() = StatusCode::NOT_IMPLEMENTED;
            response
        }
    }
}

/// `a=1&b=x%20y` → pairs, percent-decoded.
fn url_pairs(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}
