//! The operator's connection to the apiserver.
//!
//! When more work is offered than the apiserver can take, the operator must
//! queue it, not the apiserver. Three layers sit on kube's own stack:
//!
//! - at most `max_in_flight` requests wait for an answer at once (a watch
//!   holds its slot only until the apiserver answers its headers);
//! - at most `qps` requests start in any one second;
//! - every request is counted by verb, resource and answer
//!   (`releasepassport_apiserver_requests_total`), so overload shows on the
//!   operator's own `/metrics`.
//!
//! Underneath, kube retries 429, 503 and 504 answers with jittered
//! exponential backoff and honours the apiserver's `Retry-After` (sent by
//! API Priority and Fairness); a retried request keeps its in-flight slot,
//! so while the apiserver pushes back the operator sends less.

use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Method, Request, Response, Uri};
use futures::future::BoxFuture;
use kube::client::{Body, ClientBuilder};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tower::limit::{ConcurrencyLimitLayer, RateLimitLayer};
use tower::{Layer, Service};

/// How much the operator asks of the apiserver at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Requests waiting for an answer at once.
    pub max_in_flight: usize,
    /// Requests started per second.
    pub qps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_in_flight: 32,
            qps: 500,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`.
    pub verb: String,
    /// The resource, with `/status` for the status subresource.
    pub resource: String,
    /// The HTTP answer, or `error` when none came (connection, timeout).
    pub code: String,
}

/// Requests the operator made, by verb, resource and answer.
#[derive(Clone, Debug, Default)]
pub struct RequestMetrics {
    pub requests: Family<RequestLabels, Counter>,
}

impl RequestMetrics {
    /// Registers the counters under the `releasepassport` prefix.
    pub fn register(&self, registry: &mut Registry) {
        registry.sub_registry_with_prefix("releasepassport").register(
            "apiserver_requests",
            "Requests to the apiserver by verb, resource and answer code (after kube's retries)",
            self.requests.clone(),
        );
    }

    /// Requests counted with this verb, resource and code.
    pub fn count(&self, verb: &str, resource: &str, code: &str) -> u64 {
        self.requests
            .get_or_create(&RequestLabels {
                verb: verb.into(),
                resource: resource.into(),
                code: code.into(),
            })
            .get()
    }
}

/// A client for `config` with the limits and counters above.
pub fn build(
    config: kube::Config,
    limits: Limits,
    metrics: &RequestMetrics,
) -> Result<kube::Client, kube::Error> {
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&CountLayer {
            metrics: metrics.clone(),
        })
        .with_layer(&ConcurrencyLimitLayer::new(limits.max_in_flight.max(1)))
        .with_layer(&RateLimitLayer::new(
            limits.qps.max(1),
            Duration::from_secs(1),
        ))
        .build())
}

/// Counts every request by verb, resource and answer.
#[derive(Clone)]
struct CountLayer {
    metrics: RequestMetrics,
}

impl<S> Layer<S> for CountLayer {
    type Service = Count<S>;

    fn layer(&self, inner: S) -> Count<S> {
        Count {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

struct Count<S> {
    inner: S,
    metrics: RequestMetrics,
}

impl<S, B> Service<Request<Body>> for Count<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let (verb, resource) = classify(request.method(), request.uri());
        let answer = self.inner.call(request);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let result = answer.await;
            let code = match &result {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => "error".to_string(),
            };
            metrics
                .requests
                .get_or_create(&RequestLabels {
                    verb: verb.into(),
                    resource,
                    code,
                })
                .inc();
            result
        })
    }
}

/// The Kubernetes verb and resource of a request, from its method and path
/// (`/api/v1/namespaces/NS/RESOURCE[/NAME[/SUBRESOURCE]]`,
/// `/apis/GROUP/VERSION/...`, cluster-scoped paths without `namespaces/NS`).
pub fn classify(method: &Method, uri: &Uri) -> (&'static str, String) {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let rest: &[&str] = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => &[],
    };
    // `namespaces/NS/RESOURCE...` is namespaced, unless it is the
    // namespace itself (`namespaces/NS` or `namespaces/NS/status`).
    let rest = match rest {
        ["namespaces", _ns, resource, tail @ ..] if !matches!(*resource, "status" | "finalize") => {
            let mut r = vec![*resource];
            r.extend_from_slice(tail);
            r
        }
        other => other.to_vec(),
    };
    let (resource, named) = match rest.as_slice() {
        [] => (String::from("other"), false),
        [resource] => ((*resource).to_string(), false),
        [resource, _name] => ((*resource).to_string(), true),
        [resource, _name, sub, ..] => (format!("{resource}/{sub}"), true),
    };
    let watch = uri.query().is_some_and(|q| {
        q.split('&')
            .any(|pair| matches!(pair, "watch=true" | "watch=1"))
    });
    let verb = match *method {
        Method::GET if watch => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    };
    (verb, resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classified(method: Method, uri: &str) -> (&'static str, String) {
        classify(&method, &uri.parse().expect("uri"))
    }

    #[test]
    fn requests_are_classified_by_verb_and_resource() {
        let cases = [
            (
                Method::GET,
                "/apis/releasepassport.dev/v1alpha1/releasegates?watch=true&resourceVersion=1",
                ("watch", "releasegates"),
            ),
            (
                Method::GET,
                "/apis/releasepassport.dev/v1alpha1/namespaces/a/passports?labelSelector=x",
                ("list", "passports"),
            ),
            (
                Method::POST,
                "/apis/releasepassport.dev/v1alpha1/namespaces/a/passports",
                ("create", "passports"),
            ),
            (
                Method::PATCH,
                "/apis/releasepassport.dev/v1alpha1/namespaces/a/releasegates/g/status",
                ("patch", "releasegates/status"),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/secrets/key",
                ("get", "secrets"),
            ),
            (Method::GET, "/api/v1/namespaces/a", ("get", "namespaces")),
            (Method::GET, "/api/v1/namespaces", ("list", "namespaces")),
            (
                Method::DELETE,
                "/apis/releasepassport.dev/v1alpha1/namespaces/a/passports/p",
                ("delete", "passports"),
            ),
            (
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/a/events",
                ("create", "events"),
            ),
            (Method::GET, "/version", ("list", "other")),
        ];
        for (method, uri, (verb, resource)) in cases {
            assert_eq!(
                classified(method.clone(), uri),
                (verb, resource.to_string()),
                "{method} {uri}"
            );
        }
    }

    /// A service that answers every request with `status` after `delay`,
    /// counting how many requests wait at once.
    #[derive(Clone)]
    struct Slow {
        status: u16,
        delay: Duration,
        waiting: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        most: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Service<Request<Body>> for Slow {
        type Response = Response<Body>;
        type Error = std::convert::Infallible;
        type Future = BoxFuture<'static, Result<Response<Body>, std::convert::Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _request: Request<Body>) -> Self::Future {
            use std::sync::atomic::Ordering;
            let this = self.clone();
            Box::pin(async move {
                let now = this.waiting.fetch_add(1, Ordering::SeqCst) + 1;
                this.most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(this.delay).await;
                this.waiting.fetch_sub(1, Ordering::SeqCst);
                let mut response = Response::new(Body::empty());
                *response.status_mut() =
                    axum::http::StatusCode::from_u16(this.status).expect("status code");
                Ok(response)
            })
        }
    }

    #[tokio::test]
    async fn no_more_than_the_limit_wait_at_once_and_each_answer_is_counted() {
        use tower::ServiceExt as _;
        let slow = Slow {
            status: 429,
            delay: Duration::from_millis(20),
            waiting: Default::default(),
            most: Default::default(),
        };
        let metrics = RequestMetrics::default();
        let service = tower::ServiceBuilder::new()
            .buffer(64)
            .layer(ConcurrencyLimitLayer::new(3))
            .layer(CountLayer {
                metrics: metrics.clone(),
            })
            .service(slow.clone());
        let calls = (0..10).map(|_| {
            let service = service.clone();
            async move {
                let request =
                    Request::post("/apis/releasepassport.dev/v1alpha1/namespaces/a/passports")
                        .body(Body::empty())
                        .expect("request");
                service.oneshot(request).await.expect("answer")
            }
        });
        let answers = futures::future::join_all(calls).await;
        assert_eq!(answers.len(), 10);
        assert_eq!(slow.most.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(metrics.count("create", "passports", "429"), 10);
        assert_eq!(metrics.count("create", "passports", "200"), 0);
    }
}
