//! The HTTP side: `POST /validate` takes an `AdmissionReview` v1 and answers
//! from the cache; TLS is terminated here with rustls (see `tls.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::cache::{WebhookCache, passport_spec};
use super::decide::{self, GateEvent, Outcome, Reason, Review, StoredPassport, Verdict};
use super::tls::TlsConfig;
use crate::api::GATE_LABEL;

/// Largest AdmissionReview accepted (the apiserver sends at most a few MiB).
const BODY_LIMIT: usize = 8 * 1024 * 1024;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    /// `admit`, `warn` or `deny`.
    pub result: String,
    /// `enforce`, `shadow` or `none` (no gate).
    pub mode: String,
    pub reason: String,
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

async fn validate(State(state): State<AppState>, body: Bytes) -> Response {
    let start = Instant::now();
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return invalid(&state, start, format!("not an AdmissionReview: {e}")),
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(_) => return invalid(&state, start, "the AdmissionReview has no request".into()),
    };
    let outcome = review_request(&state.cache, &request);
    let mut response = AdmissionResponse::from(&request);
    match &outcome.verdict {
        Verdict::Admit => {}
        Verdict::AdmitWithWarning(w) => response.warnings = Some(w.clone()),
        Verdict::Deny(message) => {
            response = response.deny(message);
            response.result.code = 403;
            response.result.reason = "Forbidden".into();
        }
    }
    if let (Some(event), Some(tx), false) = (&outcome.event, &state.events, request.dry_run)
        && let Some(gate) = gate_label(&request)
    {
        let _ = tx.try_send(PendingEvent {
            namespace: request.namespace.clone().unwrap_or_default(),
            gate: gate.to_string(),
            event: event.clone(),
        });
    }
    if !outcome.allowed() {
        tracing::info!(
            namespace = request.namespace.as_deref().unwrap_or(""),
            name = %request.name,
            kind = %request.kind.kind,
            reason = outcome.reason.as_str(),
            "admission denied"
        );
    }
    record(&state, &outcome, start);
    (StatusCode::OK, axum::Json(response.into_review())).into_response()
}

fn invalid(state: &AppState, start: Instant, message: String) -> Response {
    let outcome = Outcome {
        verdict: Verdict::Deny(message.clone()),
        reason: Reason::Malformed,
        mode: None,
        event: None,
    };
    record(state, &outcome, start);
    let review = AdmissionResponse::invalid(message).into_review();
    (StatusCode::BAD_REQUEST, axum::Json(review)).into_response()
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
            result: result.into(),
            mode: outcome.mode.map(|m| m.as_str()).unwrap_or("none").into(),
            reason: outcome.reason.as_str().into(),
        })
        .inc();
    state
        .metrics
        .duration
        .observe(start.elapsed().as_secs_f64());
}

/// The gate named by the new object's label, else the old one's (removing the
/// label in the same change as an image does not escape the gate).
fn gate_label(request: &AdmissionRequest<DynamicObject>) -> Option<&str> {
    fn label(o: &Option<DynamicObject>) -> Option<&str> {
        o.as_ref()
            .and_then(|o| o.metadata.labels.as_ref())
            .and_then(|l| l.get(GATE_LABEL))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
    label(&request.object).or_else(|| label(&request.old_object))
}

/// Typed dispatch: which requests are decided, and on what.
pub fn review_request(cache: &WebhookCache, request: &AdmissionRequest<DynamicObject>) -> Outcome {
    let pass = |reason| Outcome {
        verdict: Verdict::Admit,
        reason,
        mode: None,
        event: None,
    };
    let kind = request.kind.kind.as_str();
    let group = request.kind.group.as_str();
    let known = match group {
        "apps" => matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet"),
        "argoproj.io" => kind == "Rollout",
        _ => false,
    };
    // Subresources (scale, status) never change the pod template.
    if !known
        || request.sub_resource.is_some()
        || !matches!(request.operation, Operation::Create | Operation::Update)
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
    let namespace = request.namespace.as_deref().unwrap_or("");
    let gate = cache.gate(namespace, gate_name);
    let current = gate
        .as_ref()
        .and_then(|g| g.status.as_ref())
        .and_then(|s| s.passport_name.clone());
    let stored = current
        .as_deref()
        .and_then(|name| cache.passport(namespace, name));
    let passport = stored.as_ref().and_then(|p| {
        Some(StoredPassport {
            name: p.metadata.name.as_deref()?,
            spec: passport_spec(p)?,
        })
    });
    let review = Review {
        kind,
        namespace,
        name: &request.name,
        old: request.old_object.as_ref().map(|o| &o.data),
        new: &object.data,
    };
    decide::decide(
        &review,
        gate_name,
        gate.as_deref(),
        passport,
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
