//! The operator: ReleaseGates become signed Passports.
//!
//! `run` waits for the CRDs, loads the signing key, wins the leader lease,
//! then runs the ReleaseGate controller. Policies and ConnectorScopes are
//! watched and cached too: a change re-evaluates the gates that use them,
//! and so do ReleaseApprovals, ReleaseWaivers, namespace labels and the
//! admission webhook's Events (see `stores`). The gate, Policy and
//! ConnectorScope watches react to spec changes only (generation), so
//! writing status never loops; an approval's or waiver's status is written
//! only when it changes. Passports are not cached: the reconcile writes them
//! itself and trusts the gate's status for which one is current; a
//! metadata-only watch notes a deleted current Passport, which the gate's
//! next evaluation writes again.

mod admin;
pub mod attest;
pub mod cached_gate;
pub mod client;
pub mod keys;
pub mod leader;
pub mod metrics;
pub mod passports;
pub mod patch;
pub mod reconcile;
pub mod releases;
pub mod requests;
pub mod status;
pub mod stores;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, predicates, watcher};

use crate::connectors::Connectors;
use crate::passport::PassportSigner;

/// Field manager of every server-side apply by the operator.
pub const MANAGER: &str = "releasepassport-controller";

/// Settings of the controller.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Namespace of the operator's own objects (key Secret, ConfigMap, Lease).
    pub namespace: String,
    /// Secret holding the signing key.
    pub signing_key_secret: String,
    /// Create the signing key Secret when absent.
    pub generate_key: bool,
    /// ConfigMap where the public key is published.
    pub public_key_configmap: String,
    /// Passports kept per gate.
    pub passport_history: usize,
    /// Longest time between two evaluations of a gate.
    pub resync: Duration,
    /// Gates evaluated at once.
    pub concurrency: u16,
    /// Counts of the requests made through the client (see [`client`]).
    pub request_metrics: client::RequestMetrics,
    /// Timeout of one connector read.
    pub connector_timeout: Duration,
    /// Leader election; `None` runs without it (a single replica).
    pub lease: Option<leader::LeaseConfig>,
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    pub admin_addr: SocketAddr,
    /// Recorded as the passport `actor`.
    pub actor: String,
    /// The admission webhook, served by every replica; `None` disables it.
    pub webhook: Option<crate::webhook::WebhookConfig>,
    /// The read-only web console, served by every replica; `None` disables it.
    pub console: Option<crate::console::ConsoleConfig>,
    /// The console's public URL, for Passport links in notifications.
    pub console_url: Option<String>,
    /// Attaching attestations to images in their registries; `None` (the default) disables it.
    pub attach: Option<attest::AttachConfig>,
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: metrics::Metrics,
    pub signer: PassportSigner,
    pub connectors: Connectors,
    pub config: ControllerConfig,
    /// Passports held per gate, so retention lists only when needed.
    pub retention: passports::RetentionLedger,
    pub stores: stores::Stores,
}

/// Readiness shared with the admin server.
#[derive(Default)]
pub struct Health {
    pub ready: AtomicBool,
}

/// Runs the operator until `shutdown` resolves.
pub async fn run(
    client: Client,
    kube_config: kube::Config,
    config: ControllerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use anyhow::Context as _;

    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = metrics::Metrics::register(&mut registry);
    let webhook_metrics = crate::webhook::WebhookMetrics::register(&mut registry);
    config.request_metrics.register(&mut registry);
    let health = Arc::new(Health::default());
    let admin = admin::serve(config.admin_addr, registry, health.clone())
        .await
        .with_context(|| format!("starting the admin server on {}", config.admin_addr))?;

    wait_for_crds(&client).await?;

    let signer = keys::load_or_create(
        &client,
        &config.namespace,
        &config.signing_key_secret,
        config.generate_key,
    )
    .await
    .context("loading the passport signing key")?;
    tracing::info!(key_id = signer.key_id(), "passport signing key loaded");

    // The webhook runs on every replica, leader or not: it only reads.
    let webhook = match &config.webhook {
        Some(webhook) => {
            let mut own = crate::passport::VerifyingKeySet::new();
            own.insert_with_id(signer.key_id(), signer.verifying_key());
            let trust = crate::webhook::TrustedKeys {
                own,
                configmap: config.public_key_configmap.clone(),
            };
            Some(
                crate::webhook::start(
                    client.clone(),
                    &config.namespace,
                    webhook,
                    trust,
                    webhook_metrics,
                )
                .await
                .context("starting the admission webhook")?,
            )
        }
        None => None,
    };
    let _webhook = crate::webhook::AbortOnDrop(webhook.into_iter().collect());

    // The console runs on every replica too: it reads caches and never writes.
    let console = match &config.console {
        Some(console) => {
            let mut keys = crate::passport::VerifyingKeySet::new();
            keys.insert_with_id(signer.key_id(), signer.verifying_key());
            let public_key_pem = crate::passport::keys::verifying_key_pem(&signer.verifying_key())
                .map_err(|e| anyhow::anyhow!("encoding the public key: {e}"))?;
            let settings = crate::console::Settings {
                namespace: config.namespace.clone(),
                replica: std::env::var("POD_NAME").ok(),
                signing_key_secret: config.signing_key_secret.clone(),
                signing_key_id: signer.key_id().to_string(),
                public_key_configmap: config.public_key_configmap.clone(),
                passport_history: config.passport_history,
                resync_seconds: config.resync.as_secs(),
                connector_timeout_seconds: config.connector_timeout.as_secs(),
                session_ttl_seconds: console.session_ttl.as_secs(),
                webhook: config.webhook.is_some(),
                leader_election: config.lease.is_some(),
            };
            Some(
                crate::console::start(
                    client.clone(),
                    kube_config.clone(),
                    console,
                    settings,
                    keys,
                    public_key_pem,
                    config.connector_timeout,
                )
                .await
                .context("starting the console")?,
            )
        }
        None => None,
    };
    let _console = crate::webhook::AbortOnDrop(console.into_iter().collect());

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = shutdown_tx.send(true);
    });
    let wait_shutdown = {
        let rx = shutdown_rx.clone();
        move || {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|v| *v).await;
            }
        }
    };

    // Stand by until this replica leads (or shutdown comes first).
    if let Some(lease) = &config.lease {
        health.ready.store(true, Ordering::SeqCst);
        tokio::select! {
            _ = leader::acquire(&client, lease) => {}
            _ = wait_shutdown() => { admin.abort(); return Ok(()); }
        }
    }
    metrics.leader.set(1);
    keys::publish_public_key(
        &client,
        &config.namespace,
        &config.public_key_configmap,
        &signer,
    )
    .await
    .context("publishing the public key")?;

    let connectors = Connectors::new(client.clone(), kube_config, config.connector_timeout)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let gates_api: Api<cached_gate::CachedGate> = Api::all(client.clone());
    let (reader, writer) = reflector::store();
    let (stores, triggers) = stores::Stores::watch(&client, reader.clone());
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        metrics: metrics.clone(),
        signer,
        connectors,
        config: config.clone(),
        stores,
        retention: passports::RetentionLedger::default(),
    });

    let gates = watcher(gates_api, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    let mut controller = Controller::for_stream(gates, reader.clone());
    for trigger in triggers {
        controller = controller.reconcile_on(trigger);
    }
    let controller = controller
        .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency))
        .graceful_shutdown_on(wait_shutdown())
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile result");
            }
        });

    health.ready.store(true, Ordering::SeqCst);
    tracing::info!("controller running");
    match &config.lease {
        Some(lease) => {
            tokio::select! {
                _ = controller => {
                    leader::release(&client, lease).await;
                }
                _ = leader::hold(&client, lease) => {
                    metrics.leader.set(0);
                    anyhow::bail!("lost the leader lease: exiting so that only one replica writes");
                }
            }
        }
        None => controller.await,
    }
    admin.abort();
    tracing::info!("controller stopped");
    Ok(())
}

/// Waits until the apiserver serves every CRD of the project.
async fn wait_for_crds(client: &Client) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut announced = false;
    loop {
        let mut missing = Vec::new();
        for crd in crate::api::all_crds() {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let established = match api.get_opt(&name).await {
                Ok(Some(found)) => found
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True"),
                Ok(None) => false,
                Err(e) => return Err(anyhow::anyhow!("reading CRD {name}: {e}")),
            };
            if !established {
                missing.push(name);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if !announced {
            tracing::warn!(missing = ?missing, "waiting for CRDs to be installed and established (kubectl apply -f crds/)");
            announced = true;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
