//! Connectors: each reads one kind of evidence source within one
//! `ConnectorScope` and answers the connector evidence shape
//! ([`EvidenceDocument`]).
//!
//! Every connector runs with a timeout and reports failures as a
//! [`ConnectorError`] whose [`ConnectorError::health`] becomes the
//! ConnectorScope's `status.health`. A connector never falls back to a
//! broader identity or scope than the one configured: a refusal is reported,
//! not worked around.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use kube::Client;

use crate::api::{
    ConnectorHealth, ConnectorKind, ConnectorScopeSpec, EvidenceDocument, ReleaseGateSpec,
    SecretKeyReference,
};

pub mod argocd;
pub mod email;
pub mod http;
pub mod incidents;
pub mod jira;
pub mod kubernetes;
pub mod linear;
pub mod matrix;
pub mod notify;
pub mod opsgenie;
pub mod pagerduty;
pub mod prometheus;
pub mod rest;
mod saas;
pub mod sentry;
pub mod servicenow;
pub mod slack;
// Pipelines, quality, observability and rollouts.
pub mod argo_rollouts;
pub mod datadog;
pub mod detect;
pub mod flagger;
pub mod flux;
pub mod github_actions;
pub mod gitlab;
pub mod jenkins;
pub mod launchdarkly;
pub mod loki;
pub mod newrelic;
pub mod resources;
pub mod search;
pub mod snyk;
pub mod sonarqube;
pub mod trivy;
// Radar: journey checks and third-party status.
pub mod journey;
pub mod statuspage;

/// Default time a connector may take before it counts as unreachable.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a connector is asked to read.
#[derive(Clone, Debug)]
pub struct ScopeRequest<'a> {
    /// Namespace of the ConnectorScope (and of the ReleaseGate).
    pub namespace: &'a str,
    /// Name of the ConnectorScope.
    pub name: &'a str,
    /// Its spec.
    pub spec: &'a ConnectorScopeSpec,
    /// Service and environment of the gate, recorded in the evidence scope.
    pub service: &'a str,
    /// Environment of the gate.
    pub environment: &'a str,
    /// The gate being evaluated (release, artifact, build run): pipeline
    /// connectors say whether what they read agrees with it.
    pub gate: Option<&'a ReleaseGateSpec>,
    /// The clock used for `observedAt`.
    pub now: jiff::Timestamp,
    /// Name of the ReleaseGate being evaluated.
    pub gate_name: &'a str,
    /// The release being evaluated, e.g. `v2.18.4`.
    pub release: &'a str,
    /// The release a rollback returns to (the gate's `rollback.release`).
    pub previous_release: Option<&'a str>,
}

impl ScopeRequest<'_> {
    /// The `scope` map of the evidence document.
    pub fn evidence_scope(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("namespace".to_string(), self.namespace.to_string()),
            ("connectorScope".to_string(), self.name.to_string()),
            ("service".to_string(), self.service.to_string()),
            ("environment".to_string(), self.environment.to_string()),
        ])
    }

    /// A scope template with `{service}`, `{release}` and `{environment}`
    /// filled in, each value passed through `escape` (quoting for the
    /// provider's query language).
    pub fn fill(&self, template: &str, escape: impl Fn(&str) -> String) -> String {
        template
            .replace("{service}", &escape(self.service))
            .replace("{release}", &escape(self.release))
            .replace("{environment}", &escape(self.environment))
    }

    /// The gate's source commit SHA, when it names one.
    pub fn source_sha(&self) -> Option<&str> {
        self.gate
            .and_then(|g| g.artifact.source_sha.as_deref())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// The gate's release id.
    pub fn release(&self) -> Option<&str> {
        self.gate.map(|g| g.release.as_str())
    }

    /// The gate's image digest (`sha256:<hex>`), when the image is pinned.
    pub fn image_digest(&self) -> Option<&str> {
        self.gate
            .and_then(|g| crate::webhook::decide::image_digest(&g.artifact.image))
    }

    /// The gate's build run id when its provider is `provider`.
    pub fn build_run_id(&self, provider: &str) -> Option<&str> {
        let run = self.gate?.artifact.build_run.as_ref()?;
        let same_provider = run
            .provider
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case(provider));
        run.id
            .as_deref()
            .map(str::trim)
            .filter(|id| same_provider && !id.is_empty())
    }

    /// Maximum age of this scope's evidence.
    pub fn max_age_seconds(&self) -> i64 {
        self.spec
            .max_age_seconds
            .unwrap_or(crate::engine::DEFAULT_MAX_AGE_SECONDS)
    }
}

/// The future a connector's collector returns.
pub type CollectFuture<'a> =
    Pin<Box<dyn Future<Output = Result<EvidenceDocument, ConnectorError>> + Send + 'a>>;

/// A connector's adapter: reads one scope's evidence.
pub type Collector = for<'a> fn(&'a Connectors, &'a ScopeRequest<'a>) -> CollectFuture<'a>;

/// Wraps a module's `collect` into a [`Collector`].
macro_rules! collector {
    ($module:ident) => {{
        fn run<'a>(c: &'a Connectors, r: &'a ScopeRequest<'a>) -> CollectFuture<'a> {
            Box::pin($module::collect(c, r))
        }
        run as Collector
    }};
}

/// The adapter that reads a connector kind's evidence, or `None` when no
/// adapter is implemented (`ingest` pulls nothing: CI pushes its evidence).
///
/// This is the one place a kind is wired to its adapter: the connector
/// matrix ([`matrix`]) calls a provider "native pull" only when this
/// returns its collector, and [`Connectors::collect`] runs exactly that.
pub fn adapter(kind: ConnectorKind) -> Option<Collector> {
    match kind {
        ConnectorKind::Kubernetes => Some(collector!(kubernetes)),
        ConnectorKind::Argocd => Some(collector!(argocd)),
        ConnectorKind::Prometheus => Some(collector!(prometheus)),
        ConnectorKind::Http => Some(collector!(http)),
        ConnectorKind::Ingest => None,
        // Pipelines, quality, observability and rollouts.
        ConnectorKind::Gitlab => Some(collector!(gitlab)),
        ConnectorKind::Jenkins => Some(collector!(jenkins)),
        ConnectorKind::GithubActions => Some(collector!(github_actions)),
        ConnectorKind::Sonarqube => Some(collector!(sonarqube)),
        ConnectorKind::Snyk => Some(collector!(snyk)),
        ConnectorKind::Datadog => Some(collector!(datadog)),
        ConnectorKind::Newrelic => Some(collector!(newrelic)),
        ConnectorKind::Launchdarkly => Some(collector!(launchdarkly)),
        ConnectorKind::Loki => Some(collector!(loki)),
        ConnectorKind::Elasticsearch | ConnectorKind::Opensearch => Some(collector!(search)),
        ConnectorKind::ArgoRollouts => Some(collector!(argo_rollouts)),
        ConnectorKind::Flagger => Some(collector!(flagger)),
        ConnectorKind::Flux => Some(collector!(flux)),
        // Trivy reports are pushed by CI (gate --trivy-report): nothing to pull.
        ConnectorKind::Trivy => None,
        // Incidents, changes, errors and notifications.
        ConnectorKind::Pagerduty => Some(collector!(pagerduty)),
        ConnectorKind::Jira => Some(collector!(jira)),
        ConnectorKind::Opsgenie => Some(collector!(opsgenie)),
        ConnectorKind::Servicenow => Some(collector!(servicenow)),
        ConnectorKind::Linear => Some(collector!(linear)),
        ConnectorKind::Sentry => Some(collector!(sentry)),
        ConnectorKind::Slack => Some(collector!(slack)),
        ConnectorKind::Email => Some(collector!(email)),
        // Radar: journey checks and third-party status.
        ConnectorKind::Journey => Some(collector!(journey)),
        ConnectorKind::Statuspage => Some(collector!(statuspage)),
    }
}

/// What the Radar page shows of a scope's latest evidence: the journey
/// checks or the dependency status (other connectors: nothing).
pub fn radar_signals(
    spec: &ConnectorScopeSpec,
    doc: &EvidenceDocument,
) -> Vec<crate::api::RadarSignal> {
    match spec.connector {
        ConnectorKind::Journey => journey::signals(spec, doc),
        ConnectorKind::Statuspage => statuspage::signals(doc),
        _ => Vec::new(),
    }
}

/// Why a connector produced no evidence. Messages never carry credentials.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The scope is unusable (missing section, bad query, unimplemented connector).
    #[error("{0}")]
    Invalid(String),
    /// A credential (Secret, key, ServiceAccount) is missing.
    #[error("{0}")]
    CredentialRequired(String),
    /// The source refused the configured identity.
    #[error("{0}")]
    Forbidden(String),
    /// The source could not be reached or answered with an error.
    #[error("{0}")]
    Unreachable(String),
}

impl ConnectorError {
    /// The ConnectorScope health this error maps to.
    pub fn health(&self) -> ConnectorHealth {
        match self {
            ConnectorError::Invalid(_) => ConnectorHealth::Invalid,
            ConnectorError::CredentialRequired(_) => ConnectorHealth::CredentialRequired,
            ConnectorError::Forbidden(_) => ConnectorHealth::Forbidden,
            ConnectorError::Unreachable(_) => ConnectorHealth::Unreachable,
        }
    }

    /// A machine-matchable reason, for conditions, Events and metrics.
    pub fn reason(&self) -> &'static str {
        self.health().as_str()
    }
}

/// Secret values by (namespace, Secret name, key).
pub type GivenSecrets = BTreeMap<(String, String, String), String>;

/// Clients and settings the connectors share.
#[derive(Clone)]
pub struct Connectors {
    /// The operator's own client (used only to build impersonating clients
    /// and to read resources the operator is allowed to read itself).
    pub client: Client,
    /// Client configuration the impersonating clients derive from.
    pub config: kube::Config,
    /// Timeout of each connector call.
    pub timeout: Duration,
    /// Impersonating clients, by ServiceAccount username.
    impersonated: std::sync::Arc<std::sync::Mutex<BTreeMap<String, Client>>>,
    /// HTTP client for Prometheus, http and SaaS connectors.
    pub http: reqwest::Client,
    /// HTTP client of the journey probes: follows no redirect, so a probe
    /// never leaves its allowlisted URL.
    probe_http: reqwest::Client,
    /// `secretRef` values given by the caller instead of read from the
    /// cluster (offline runs and tests), by (namespace, Secret, key).
    given_secrets: Option<std::sync::Arc<GivenSecrets>>,
    /// Scopes a provider told to back off (HTTP 429), until when.
    backoff: saas::Backoff,
    /// Notifications sent, by gate and scope.
    deliveries: notify::Deliveries,
}

impl Connectors {
    /// Creates the connector set from the operator's client configuration.
    pub fn new(
        client: Client,
        config: kube::Config,
        timeout: Duration,
    ) -> Result<Self, ConnectorError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("releasepassport/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConnectorError::Invalid(format!("building HTTP client: {e}")))?;
        let probe_http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "releasepassport-journey/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| ConnectorError::Invalid(format!("building HTTP client: {e}")))?;
        Ok(Self {
            client,
            config,
            timeout,
            impersonated: Default::default(),
            http,
            probe_http,
            given_secrets: None,
            backoff: Default::default(),
            deliveries: Default::default(),
        })
    }

    /// Reads `secretRef`s from `secrets`, keyed by (namespace, Secret name,
    /// key), instead of from the cluster: for runs without a cluster (tests,
    /// offline evaluation). A reference that is not given is missing, as a
    /// missing Secret would be.
    pub fn with_given_secrets(mut self, secrets: GivenSecrets) -> Self {
        self.given_secrets = Some(std::sync::Arc::new(secrets));
        self
    }

    /// A client that acts as `system:serviceaccount:<namespace>:<name>`.
    ///
    /// The apiserver checks that the operator may impersonate exactly that
    /// ServiceAccount (RBAC `impersonate` with `resourceNames`), then applies
    /// the ServiceAccount's own permissions to every request.
    pub fn as_service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Client, ConnectorError> {
        let user = format!("system:serviceaccount:{namespace}:{name}");
        let mut cache = self
            .impersonated
            .lock()
            .map_err(|_| ConnectorError::Unreachable("client cache poisoned".into()))?;
        if let Some(client) = cache.get(&user) {
            return Ok(client.clone());
        }
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(user.clone());
        config.auth_info.impersonate_groups = None;
        let client = Client::try_from(config)
            .map_err(|e| ConnectorError::Invalid(format!("building a client as {user}: {e}")))?;
        cache.insert(user, client.clone());
        Ok(client)
    }

    /// Reads one scope's evidence, within the configured timeout. `None`
    /// means the scope pulls nothing itself (`ingest`: CI pushes the evidence
    /// into the ReleaseGate).
    pub async fn collect(
        &self,
        req: &ScopeRequest<'_>,
    ) -> Result<Option<EvidenceDocument>, ConnectorError> {
        let kind = req.spec.connector;
        let work = async {
            match adapter(kind) {
                Some(collect) => collect(self, req).await.map(Some),
                None if matches!(kind, ConnectorKind::Ingest | ConnectorKind::Trivy) => Ok(None),
                None => Err(ConnectorError::Invalid(format!(
                    "connector {kind} is {} in the connector matrix: it has no adapter yet; attach its evidence through ingest (ReleaseGate spec.evidence or `releasepassport gate --evidence`)",
                    matrix::support_of(kind).label()
                ))),
            }
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(ConnectorError::Unreachable(format!(
                "{} connector did not answer within {}s",
                req.spec.connector,
                self.timeout.as_secs()
            ))),
        }
    }

    /// Reads a token from a Secret key, as the scope's ServiceAccount when it
    /// has one (so the team's Role decides), else as the operator. The value
    /// is masked by value from then on ([`crate::passport::redact::mask_secret`]).
    pub async fn secret_token(
        &self,
        req: &ScopeRequest<'_>,
    ) -> Result<Option<String>, ConnectorError> {
        let Some(secret_ref) = &req.spec.secret_ref else {
            return Ok(None);
        };
        self.secret_value(req, secret_ref).await.map(Some)
    }

    /// Reads one Secret key of the scope's namespace, as the scope's
    /// ServiceAccount when it has one, else as the operator.
    pub async fn secret_value(
        &self,
        req: &ScopeRequest<'_>,
        secret_ref: &SecretKeyReference,
    ) -> Result<String, ConnectorError> {
        if let Some(given) = &self.given_secrets {
            let key = (
                req.namespace.to_string(),
                secret_ref.name.clone(),
                secret_ref.key.clone(),
            );
            return match given.get(&key) {
                Some(value) => Ok(loaded(value)),
                None => Err(ConnectorError::CredentialRequired(format!(
                    "Secret {} (key {}) not found in namespace {}",
                    secret_ref.name, secret_ref.key, req.namespace
                ))),
            };
        }
        let client = match &req.spec.service_account_name {
            Some(sa) => self.as_service_account(req.namespace, sa)?,
            None => self.client.clone(),
        };
        let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
            kube::Api::namespaced(client, req.namespace);
        let secret = secrets
            .get_opt(&secret_ref.name)
            .await
            .map_err(|e| match e {
                kube::Error::Api(s) if s.code == 403 => ConnectorError::Forbidden(format!(
                    "reading Secret {} is forbidden: {}",
                    secret_ref.name, s.message
                )),
                other => ConnectorError::Unreachable(format!(
                    "reading Secret {}: {other}",
                    secret_ref.name
                )),
            })?;
        let Some(secret) = secret else {
            return Err(ConnectorError::CredentialRequired(format!(
                "Secret {} not found in namespace {}",
                secret_ref.name, req.namespace
            )));
        };
        let value = secret
            .data
            .and_then(|d| d.get(&secret_ref.key).cloned())
            .ok_or_else(|| {
                ConnectorError::CredentialRequired(format!(
                    "Secret {} has no key {}",
                    secret_ref.name, secret_ref.key
                ))
            })?;
        let token = String::from_utf8(value.0).map_err(|_| {
            ConnectorError::Invalid(format!(
                "Secret {} key {} is not UTF-8",
                secret_ref.name, secret_ref.key
            ))
        })?;
        Ok(loaded(&token))
    }
}

/// A secret value just loaded: masked by value from now on in everything
/// the process writes (passports, status, Events, logs, exports, console).
fn loaded(value: &str) -> String {
    let value = value.trim();
    crate::passport::redact::mask_secret(value);
    value.to_string()
}

/// A transport error with its causes (`connection refused`, ...), without
/// the request URL, redacted: safe for status, Events and logs.
pub(crate) fn error_chain(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    crate::passport::redact::redact_str(&text).into_owned()
}
