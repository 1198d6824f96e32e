//! The web console, served by the operator on its own port at `/console`:
//! it explains release decisions to people. It changes nothing with the
//! operator's rights: what a person does there (approve, re-run, comment)
//! is done with their own token (see [`acting`]). Pages are rendered on the
//! server from the operator's in-memory caches (see [`state`]); a little
//! JavaScript only adds conveniences.
//!
//! Every request is authenticated (session cookie from a TokenReviewed
//! bearer token, pasted or from the organisation's OpenID Connect provider
//! ([`oidc`]), or an `Authorization: Bearer` header) and every page asks
//! the apiserver whether the user may read what it shows (see [`auth`]).

pub mod acting;
pub mod auth;
pub mod detection;
pub mod llm;
pub mod oidc;
mod routes;
pub mod simulate;
pub mod state;
pub mod views;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use kube::Client;

pub use routes::router;
pub use state::ConsoleState;
pub use views::settings::Settings;

use crate::connectors::Connectors;
use crate::passport::VerifyingKeySet;

/// Settings of the console server.
#[derive(Clone, Debug)]
pub struct ConsoleConfig {
    /// Address of the console (`/console`).
    pub addr: SocketAddr,
    /// How long a sign-in lasts.
    pub session_ttl: Duration,
    /// Serve HTTPS with `tls.crt`/`tls.key` from this directory (re-read when
    /// they change); plain HTTP otherwise (behind `kubectl port-forward` or a
    /// TLS-terminating Ingress).
    pub cert_dir: Option<PathBuf>,
    /// The optional language-model summary beside investigations; `None`: off, nothing calls out.
    pub llm: Option<llm::LlmConfig>,
    /// Sign-in with the organisation's OpenID Connect provider, beside the
    /// token form; `None`: tokens only.
    pub oidc: Option<oidc::OidcConfig>,
}

/// What every console request shares.
pub struct Console {
    pub state: Arc<ConsoleState>,
    pub auth: auth::Auth,
    /// Reads evidence for the simulator; `None` disables live evidence.
    pub connectors: Option<Connectors>,
    pub settings: Settings,
    /// The signing key's public half, added to audit bundles.
    pub public_key_pem: String,
    /// The apiserver connection (URL, CA, timeouts) that clients acting as a
    /// signed-in person use, with their token only ([`acting`]).
    pub kube_config: kube::Config,
    /// Summarises investigations when the operator configured a model endpoint.
    pub llm: Option<llm::Summarizer>,
    /// The OpenID Connect sign-in, when configured.
    pub oidc: Option<oidc::Oidc>,
    /// A fixed "now" for reproducible pages (the screenshots); `None`: the clock.
    pub clock: Option<jiff::Timestamp>,
    /// The operator's own client: records accepted actions as Events.
    pub client: Client,
}

impl Console {
    /// The time pages are rendered at.
    pub fn now(&self) -> jiff::Timestamp {
        self.clock.unwrap_or_else(jiff::Timestamp::now)
    }
}

/// Starts the console in the background.
pub async fn start(
    client: Client,
    kube_config: kube::Config,
    config: &ConsoleConfig,
    settings: Settings,
    keys: VerifyingKeySet,
    public_key_pem: String,
    connector_timeout: Duration,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding the console address {}", config.addr))?;
    let local = listener.local_addr().ok();
    let mut background = Vec::new();
    let tls = match &config.cert_dir {
        Some(dir) => {
            let (cert, key) = crate::webhook::tls::load_dir(dir)
                .await
                .context("console certificate")?;
            let tls = Arc::new(crate::webhook::tls::TlsConfig::from_pem(&cert, &key)?);
            let mut fingerprint = cert;
            fingerprint.extend_from_slice(&key);
            background.push(tokio::spawn(crate::webhook::tls::reload_dir(
                dir.clone(),
                tls.clone(),
                Duration::from_secs(10),
                fingerprint,
            )));
            Some(tls)
        }
        None => None,
    };
    let (state, watches) = ConsoleState::watch(client.clone(), keys);
    background.push(tokio::spawn(watches));
    let connectors = Connectors::new(client.clone(), kube_config.clone(), connector_timeout)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    background.push(tokio::spawn(detection::run(
        state.clone(),
        connectors.clone(),
    )));
    let llm = config.llm.as_ref().map(llm::Summarizer::new).transpose()?;
    let oidc = config
        .oidc
        .clone()
        .map(oidc::Oidc::new)
        .transpose()
        .context("console OpenID Connect sign-in")?;
    let console = Arc::new(Console {
        state: state.clone(),
        auth: auth::Auth::new(client.clone(), config.session_ttl),
        connectors: Some(connectors),
        settings,
        public_key_pem,
        kube_config,
        llm,
        oidc,
        clock: None,
        client,
    });
    let app = router(console);
    Ok(tokio::spawn(async move {
        let _background = crate::webhook::AbortOnDrop(background);
        state.ready().await;
        match tls {
            Some(tls) => {
                tracing::info!(addr = ?local, "console serving https://…/console");
                crate::webhook::server::serve_tls(listener, tls, app).await;
            }
            None => {
                tracing::info!(addr = ?local, "console serving http://…/console");
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "console server stopped");
                }
            }
        }
    }))
}
