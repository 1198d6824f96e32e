//! The HTTP side: `POST /validate` takes an `AdmissionReview` v1 and answers
//! from the cache; TLS is terminated here with rustls (see `tls.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::cache::{WebhookCache, stored_passport};
use super::decide::{self, GateEvent, Outcome, Reason, Review, Verdict};
use super::review::{self, RequestIn, Str, WorkloadIn};
use super::tls::TlsConfig;

/// Largest AdmissionReview accepted (the apiserver sends at most a few MiB).
const BODY_LIMIT: usize = 8 * 1024 * 1024;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    /// `admit`, `warn` or `deny`.
    pub result: &'static str,
    /// `enforce`, `shadow` or `none` (no gate).
    pub mode: &'static str,
    pub reason: &'static str,
}

/// Admission metrics, registered next to the controller's.
#[derive(Clone)]
pub struct WebhookMetrics {
    pub requests: Family<AdmissionLabels, Counter>,
    pub duration: Histogram,
}

impl WebhookMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::unregistered();
        let r = registry.sub_registry_with_prefix("releasepassport_webhook");
        r.register(
            "admission_requests",
            "Admission requests by result, gate mode and reason",
            m.requests.clone(),
        );
        r.register(
            "admission_duration_seconds",
            "Time to answer one admission request (parse, decide, encode)",
            m.duration.clone(),
        );
        m
    }

    /// Metrics that are recorded but not exported (tests).
    pub fn unregistered() -> Self {
        Self {
            requests: Family::default(),
            duration: Histogram::new(exponential_buckets(0.00005, 2.0, 16)),
        }
    }
}

/// An Event for a gate, recorded after the answer has gone out.
#[derive(Clone, Debug)]
pub struct PendingEvent {
    pub namespace: String,
    pub gate: String,
    pub event: GateEvent,
}

/// What the router shares.
#[derive(Clone)]
pub struct AppState {
    pub cache: Arc<WebhookCache>,
    pub metrics: WebhookMetrics,
    /// Where Events go; `None` drops them (tests).
    pub events: Option<mpsc::Sender<PendingEvent>>,
}

/// The webhook's routes: `POST /validate`, `GET /healthz`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

async fn validate(State(state): State<AppState>, body: Bytes) -> Response {
    let start = Instant::now();
    let review = match review::parse(&body) {
        Ok(r) => r,
        Err(e) => return invalid(&state, start, &format!("not an AdmissionReview: {e}")),
    };
    let Some(request) = review.request else {
        return invalid(&state, start, "the AdmissionReview has no request");
    };
    let outcome = review_request(&state.cache, &request);
    let body = review::encode_response(request.uid.as_str(), &outcome.verdict);
    let namespace = request.namespace.as_ref().map(Str::as_str).unwrap_or("");
    if let (Some(event), Some(tx), false) = (
        &outcome.event,
        &state.events,
        request.dry_run.unwrap_or(false),
    ) && let Some(gate) = event_gate(&request)
    {
        let _ = tx.try_send(PendingEvent {
            namespace: namespace.to_string(),
            gate: gate.to_string(),
            event: event.clone(),
        });
    }
    if !outcome.allowed() {
        tracing::info!(
            namespace,
            name = request.name.as_ref().map(Str::as_str).unwrap_or(""),
            kind = request.kind.kind.as_str(),
            reason = outcome.reason.as_str(),
            "admission denied"
        );
    }
    record(&state, &outcome, start);
    json_response(StatusCode::OK, body)
}

fn invalid(state: &AppState, start: Instant, message: &str) -> Response {
    let outcome = Outcome {
        verdict: Verdict::Deny(String::new()),
        reason: Reason::Malformed,
        mode: None,
        event: None,
    };
    record(state, &outcome, start);
    json_response(StatusCode::BAD_REQUEST, review::encode_invalid(message))
}

fn record(state: &AppState, outcome: &Outcome, start: Instant) {
    let result = match outcome.verdict {
        Verdict::Admit => "admit",
        Verdict::AdmitWithWarning(_) => "warn",
        Verdict::Deny(_) => "deny",
    };
    state
        .metrics
        .requests
        .get_or_create(&AdmissionLabels {
            result,
            mode: outcome.mode.map(|m| m.as_str()).unwrap_or("none"),
            reason: outcome.reason.as_str(),
        })
        .inc();
    state
        .metrics
        .duration
        .observe(start.elapsed().as_secs_f64());
}

/// The gate an Event is about: the ReleaseGate itself, or the one a workload's label names.
fn event_gate<'r>(request: &'r RequestIn<'_>) -> Option<&'r str> {
    if is_gate(request) {
        return request.name.as_ref().map(Str::as_str);
    }
    gate_label(request)
}

fn is_gate(request: &RequestIn<'_>) -> bool {
    request.kind.group.as_str() == crate::api::GROUP && request.kind.kind.as_str() == "ReleaseGate"
}

/// The gate named by the new object's label, else the old one's (removing the
/// label in the same change as an image does not escape the gate).
fn gate_label<'r>(request: &'r RequestIn<'_>) -> Option<&'r str> {
    request
        .object
        .as_ref()
        .and_then(WorkloadIn::gate_label)
        .or_else(|| request.old_object.as_ref().and_then(WorkloadIn::gate_label))
}

/// Dispatch: which requests are decided, and on what.
pub fn review_request(cache: &WebhookCache, request: &RequestIn<'_>) -> Outcome {
    let pass = |reason| Outcome {
        verdict: Verdict::Admit,
        reason,
        mode: None,
        event: None,
    };
    let kind = request.kind.kind.as_str();
    let user = request
        .user_info
        .as_ref()
        .and_then(|u| u.username.as_ref())
        .map(Str::as_str);
    if is_gate(request)
        && request.sub_resource.is_none()
        && matches!(request.operation.as_str(), "CREATE" | "UPDATE")
        && let Some(object) = request.object.as_ref()
    {
        return super::evidence::decide(
            request.namespace.as_ref().map(Str::as_str).unwrap_or(""),
            request.name.as_ref().map(Str::as_str).unwrap_or(""),
            &object.evidence_times(),
            user,
            jiff::Timestamp::now(),
        );
    }
    let known = match request.kind.group.as_str() {
        "apps" => matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet"),
        "argoproj.io" => kind == "Rollout",
        _ => false,
    };
    // Subresources (scale, status) never change the pod template.
    if !known
        || request.sub_resource.is_some()
        || !matches!(request.operation.as_str(), "CREATE" | "UPDATE")
    {
        return pass(Reason::Unchanged);
    }
    let Some(object) = request.object.as_ref() else {
        return Outcome {
            verdict: Verdict::Deny("the AdmissionReview has no object".into()),
            reason: Reason::Malformed,
            mode: None,
            event: None,
        };
    };
    let Some(gate_name) = gate_label(request) else {
        return pass(Reason::Unchanged);
    };
    let namespace = request.namespace.as_ref().map(Str::as_str).unwrap_or("");
    let gate = cache.gate(namespace, gate_name);
    let stored = gate
        .as_ref()
        .and_then(|g| g.status.as_ref())
        .and_then(|s| s.passport_name.as_deref())
        .and_then(|name| cache.passport(namespace, name));
    let new = object.images();
    let old = request.old_object.as_ref().map(WorkloadIn::images);
    let review = Review {
        kind,
        namespace,
        name: request.name.as_ref().map(Str::as_str).unwrap_or(""),
        old: old.as_deref(),
        new: &new,
        progressive: object.progressive(kind),
        user,
    };
    decide::decide(
        &review,
        gate_name,
        gate.as_deref(),
        stored.as_ref().and_then(stored_passport),
        cache,
        jiff::Timestamp::now(),
    )
}

/// Serves `app` over TLS on `listener` until the task is aborted. The
/// certificate is read from `tls` for every new connection, so a reload takes
/// effect without a restart.
pub async fn serve_tls(listener: TcpListener, tls: Arc<TlsConfig>, app: Router) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "webhook: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
        let app = app.clone();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "webhook: TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let service = hyper_util::service::TowerToHyperService::new(app);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "webhook: connection ended");
            }
        });
    }
}
