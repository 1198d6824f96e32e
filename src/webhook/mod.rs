//! Enforce mode: the validating admission webhook.
//!
//! - `decide`: the decision on a workload, a pure function (no Kubernetes I/O);
//! - `evidence`: the check of a ReleaseGate's pushed evidence (no clock in CEL);
//! - `cache`: reflector stores of ReleaseGates and Passports, verified
//!   passports memoised by content hash;
//! - `review`: the AdmissionReview, decoded only as far as a decision needs;
//! - `server`: the axum router (`POST /validate`), metrics, TLS serving loop;
//! - `tls`: certificates from files with reload, or the self-signed bootstrap;
//! - `config`: the ValidatingWebhookConfiguration it is registered with.
//!
//! Every replica serves the webhook (not only the leader): it only reads.

pub mod cache;
pub mod config;
pub mod decide;
pub mod evidence;
pub mod review;
pub mod server;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use kube::Client;
use tokio::sync::mpsc;

pub use cache::WebhookCache;
pub use server::{AppState, WebhookMetrics, router};

use crate::passport::VerifyingKeySet;

/// Where the serving certificate comes from.
#[derive(Clone, Debug)]
pub enum TlsSource {
    /// `tls.crt` and `tls.key` in a directory (a mounted Secret, cert-manager),
    /// re-read every `reload`.
    Dir { dir: PathBuf, reload: Duration },
    /// Generated once into `secret` (operator namespace) for `names`, and its
    /// CA patched into the configuration's `caBundle`.
    SelfSigned { secret: String, names: Vec<String> },
}

/// Settings of the webhook server.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Listen address (separate from the admin port).
    pub addr: SocketAddr,
    pub tls: TlsSource,
    /// Name of the ValidatingWebhookConfiguration (for the caBundle patch).
    pub config_name: String,
}

/// The keys passports may be signed with: the controller's own signing key,
/// and every key listed in the public-key ConfigMap `configmap` of the
/// operator namespace (watched: rotating or retiring a key takes effect
/// without a restart).
#[derive(Clone, Debug)]
pub struct TrustedKeys {
    pub own: VerifyingKeySet,
    pub configmap: String,
}

/// Binds the port, loads the certificate and starts serving in the
/// background once the caches hold a full list of gates and passports
/// (requests queue in the listen backlog until then). Returns the task.
pub async fn start(
    client: Client,
    namespace: &str,
    config: &WebhookConfig,
    trust: TrustedKeys,
    metrics: WebhookMetrics,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding the webhook address {}", config.addr))?;
    let local = listener.local_addr().ok();
    let mut background = Vec::new();
    let tls = match &config.tls {
        TlsSource::Dir { dir, reload } => {
            let (cert, key) = tls::load_dir(dir).await?;
            let tls = Arc::new(tls::TlsConfig::from_pem(&cert, &key)?);
            let mut fingerprint = cert;
            fingerprint.extend_from_slice(&key);
            background.push(tokio::spawn(tls::reload_dir(
                dir.clone(),
                tls.clone(),
                *reload,
                fingerprint,
            )));
            tls
        }
        TlsSource::SelfSigned { secret, names } => {
            let generated = tls::load_or_create_secret(&client, namespace, secret, names)
                .await
                .context("self-signed webhook certificate")?;
            let tls = Arc::new(tls::TlsConfig::from_pem(
                generated.cert_pem.as_bytes(),
                generated.key_pem.as_bytes(),
            )?);
            background.push(tokio::spawn(tls::patch_ca_bundle(
                client.clone(),
                config.config_name.clone(),
                generated.ca_pem,
            )));
            tls
        }
    };

    let (cache, watches) =
        WebhookCache::watch(client.clone(), trust.own, namespace, &trust.configmap);
    background.push(tokio::spawn(watches));
    let (events_tx, events_rx) = mpsc::channel(256);
    background.push(tokio::spawn(record_events(client, events_rx)));
    let state = AppState {
        cache: cache.clone(),
        metrics,
        events: Some(events_tx),
    };
    let task = tokio::spawn(async move {
        let _background = AbortOnDrop(background);
        cache.ready().await;
        tracing::info!(addr = ?local, "admission webhook serving");
        server::serve_tls(listener, tls, router(state)).await;
    });
    Ok(task)
}

/// Aborts the tasks when dropped (the webhook stops with `run`).
pub struct AbortOnDrop(pub Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Records gate Events off the request path, each as its own Event object
/// (never folded into a series, so every refusal and rollback keeps its
/// note), with the request's authenticated user in the annotation
/// `releasepassport.io/actor` (the operator copies them into the gate's history).
async fn record_events(client: Client, mut rx: mpsc::Receiver<server::PendingEvent>) {
    use k8s_openapi::api::events::v1::Event as NewEvent;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    let instance = std::env::var("POD_NAME").unwrap_or_else(|_| "webhook".into());
    while let Some(pending) = rx.recv().await {
        let regarding = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some(format!("{}/{}", crate::api::GROUP, crate::api::VERSION)),
            kind: Some("ReleaseGate".into()),
            name: Some(pending.gate.clone()),
            namespace: Some(pending.namespace.clone()),
            ..Default::default()
        };
        let mut annotations = std::collections::BTreeMap::new();
        if let Some(actor) = &pending.event.actor {
            annotations.insert(
                crate::controller::stores::ACTOR_ANNOTATION.to_string(),
                actor.clone(),
            );
        }
        let event = NewEvent {
            metadata: kube::api::ObjectMeta {
                generate_name: Some(format!("{}-", pending.gate)),
                namespace: Some(pending.namespace.clone()),
                annotations: (!annotations.is_empty()).then_some(annotations),
                ..Default::default()
            },
            event_time: Some(MicroTime(jiff::Timestamp::now())),
            type_: Some(
                if pending.event.warning {
                    "Warning"
                } else {
                    "Normal"
                }
                .into(),
            ),
            reason: Some(pending.event.reason.into()),
            note: Some(pending.event.note.chars().take(1000).collect()),
            action: Some("Admit".into()),
            regarding: Some(regarding),
            reporting_controller: Some(crate::controller::stores::WEBHOOK_REPORTER.into()),
            reporting_instance: Some(instance.clone()),
            ..Default::default()
        };
        let api: kube::Api<NewEvent> = kube::Api::namespaced(client.clone(), &pending.namespace);
        if let Err(e) = api.create(&kube::api::PostParams::default(), &event).await {
            tracing::warn!(error = %e, gate = %pending.gate, namespace = %pending.namespace, "webhook: publishing an event failed");
        }
    }
}
