use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::controller::{self, ControllerConfig, leader::LeaseConfig};

/// Run the operator: ReleaseGates become signed Passports.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  releasepassport controller --generate-key\n  releasepassport controller --kubeconfig ~/.kube/config --namespace release-passport-system --log-format json\n  releasepassport controller --generate-key --console-addr 127.0.0.1:8081   # console at http://127.0.0.1:8081/console\n\nThe controller waits until the CRDs are installed (kubectl apply -f crds/), loads the\nsigning key from --signing-key-secret (creating it with --generate-key), publishes the\npublic key in --public-key-configmap, and, with leader election, lets one replica write."
)]
pub struct ControllerArgs {
    /// Kubeconfig to use instead of the in-cluster configuration or $KUBECONFIG.
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of the operator's own objects (signing key, public key, lease).
    #[arg(long, env = "POD_NAMESPACE", default_value = "release-passport-system")]
    pub namespace: String,
    /// Secret holding the ed25519 signing key (key `signing-key.pem`, PKCS#8 PEM).
    #[arg(long, default_value = "releasepassport-signing-key")]
    pub signing_key_secret: String,
    /// Create the signing key Secret when it does not exist.
    #[arg(long)]
    pub generate_key: bool,
    /// ConfigMap where the public key is published (keys `public-key.pem`, `key-id`).
    #[arg(long, default_value = "releasepassport-public-key")]
    pub public_key_configmap: String,
    /// Passports kept per ReleaseGate; older ones are deleted.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub passport_history: u32,
    /// Longest time, in seconds, between two evaluations of a gate.
    #[arg(long, default_value_t = 300)]
    pub resync_seconds: u64,
    /// Timeout, in seconds, of one connector read.
    #[arg(long, default_value_t = 5)]
    pub connector_timeout_seconds: u64,
    /// Gates evaluated at once; more wait in the queue (each gate is
    /// evaluated by one worker at a time).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Requests to the apiserver waiting for an answer at once; more wait in the operator.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub kube_api_max_in_flight: u32,
    /// Requests to the apiserver started per second; more wait in the operator.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    pub kube_api_qps: u64,
    /// Run without leader election (only safe with a single replica).
    #[arg(long)]
    pub no_leader_election: bool,
    /// Name of the leader election Lease.
    #[arg(long, default_value = "release-passport-controller")]
    pub lease_name: String,
    /// Identity in the Lease (defaults to $POD_NAME, else host name and process id).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Lease duration in seconds: how long a standby waits before taking over.
    #[arg(long, default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub admin_addr: SocketAddr,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Address of the admission webhook (HTTPS, `POST /validate`).
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub webhook_addr: SocketAddr,
    /// Directory with the webhook's serving certificate (`tls.crt`, `tls.key`), re-read when it
    /// changes. The webhook is served when this or --webhook-self-signed is given.
    #[arg(long, value_name = "DIR")]
    pub webhook_cert_dir: Option<PathBuf>,
    /// How often, in seconds, --webhook-cert-dir is checked for a new certificate.
    #[arg(long, default_value_t = 10)]
    pub webhook_cert_reload_seconds: u64,
    /// Generate a self-signed CA and serving certificate (kept in --webhook-cert-secret) and patch the CA into the caBundle of --webhook-config-name.
    #[arg(long, conflicts_with = "webhook_cert_dir")]
    pub webhook_self_signed: bool,
    /// Secret of the self-signed certificate.
    #[arg(long, default_value = "releasepassport-webhook-tls")]
    pub webhook_cert_secret: String,
    /// Names in the self-signed certificate (DNS names or IP addresses; repeatable). Default: the webhook Service's names and 127.0.0.1.
    #[arg(long = "webhook-cert-name", value_name = "NAME")]
    pub webhook_cert_names: Vec<String>,
    /// Service in front of the webhook port (for the default certificate names).
    #[arg(long, default_value = "releasepassport-webhook")]
    pub webhook_service_name: String,
    /// Name of the ValidatingWebhookConfiguration whose caBundle the self-signed bootstrap patches.
    #[arg(long, default_value = "releasepassport-webhook")]
    pub webhook_config_name: String,
    /// Do not serve the admission webhook.
    #[arg(long, conflicts_with_all = ["webhook_cert_dir", "webhook_self_signed"])]
    pub no_webhook: bool,
    /// Serve the read-only web console at http(s)://ADDR/console (sign-in with a Kubernetes
    /// bearer token; access checked with SubjectAccessReview). Off unless given.
    #[arg(long, value_name = "ADDR")]
    pub console_addr: Option<SocketAddr>,
    /// How long, in seconds, a console sign-in lasts.
    #[arg(long, default_value_t = 3600)]
    pub console_session_ttl_seconds: u64,
    /// Serve the console over HTTPS with `tls.crt`/`tls.key` from this directory (re-read when
    /// they change). Without it the console speaks plain HTTP: reach it through `kubectl
    /// port-forward` or a TLS-terminating Ingress.
    #[arg(long, value_name = "DIR", requires = "console_addr")]
    pub console_cert_dir: Option<PathBuf>,
    /// Public URL of the console (e.g. https://release-passport.example.com), for the
    /// Passport links in Slack and email notifications.
    #[arg(long, value_name = "URL")]
    pub console_url: Option<String>,
    /// Show a language-model summary beside the console's investigation, from this
    /// OpenAI-compatible API (e.g. https://llm.example.com/v1; POST .../chat/completions).
    /// It is fed only the redacted investigation and never changes a decision. Off unless given.
    #[arg(long, value_name = "URL", requires_all = ["console_addr", "console_llm_model"])]
    pub console_llm_endpoint: Option<String>,
    /// Model name sent to --console-llm-endpoint.
    #[arg(long, value_name = "NAME", requires = "console_llm_endpoint")]
    pub console_llm_model: Option<String>,
    /// File holding the API key for --console-llm-endpoint (a mounted Secret); sent as a bearer token, masked everywhere.
    #[arg(long, value_name = "FILE", requires = "console_llm_endpoint")]
    pub console_llm_key_file: Option<PathBuf>,
    /// Offer sign-in with this OpenID Connect provider (authorization code with PKCE) beside
    /// the token form, e.g. https://login.example.com/realms/acme. The apiserver must trust
    /// the same issuer for --console-oidc-client-id as audience (structured authentication
    /// configuration): it reviews every ID token. Needs --console-url (the redirect URI is
    /// <console-url>/console/oidc/callback).
    #[arg(long, value_name = "URL", requires_all = ["console_addr", "console_url"])]
    pub console_oidc_issuer: Option<String>,
    /// OpenID Connect client id of the console; also the audience the apiserver accepts.
    #[arg(long, value_name = "ID", default_value = "release-passport-console")]
    pub console_oidc_client_id: String,
    /// File holding the client secret, for a confidential client (a mounted Secret); sent as
    /// HTTP Basic to the token endpoint and masked everywhere. Without it: a public client.
    #[arg(long, value_name = "FILE", requires = "console_oidc_issuer")]
    pub console_oidc_client_secret_file: Option<PathBuf>,
    /// PEM file of the CAs that sign the provider's certificate, trusted beside the system's.
    #[arg(long, value_name = "FILE", requires = "console_oidc_issuer")]
    pub console_oidc_ca_file: Option<PathBuf>,
    /// Scopes asked of the provider besides `openid` (space- or comma-separated; repeatable).
    #[arg(long = "console-oidc-scope", value_name = "SCOPE", default_values_t = ["email".to_string(), "groups".to_string()])]
    pub console_oidc_scopes: Vec<String>,
    /// How long, in seconds, a language-model summary may take before it is shown as unavailable.
    #[arg(long, default_value_t = 20)]
    pub console_llm_timeout_seconds: u64,
    /// Attach each Passport's attestation to the image it judges, in the image's registry
    /// (cosign's `sha256-<digest>.att` layout). Off by default.
    #[arg(long, env = "RELEASEPASSPORT_ATTACH_ATTESTATIONS")]
    pub attach_attestations: bool,
    /// `kubernetes.io/dockerconfigjson` Secret in --namespace with the registry credentials
    /// used to attach (anonymous without it).
    #[arg(long, value_name = "SECRET", requires = "attach_attestations")]
    pub registry_credentials_secret: Option<String>,
    /// A registry (`host:port`) spoken to over plain HTTP when attaching; repeatable.
    #[arg(
        long = "registry-plain-http",
        value_name = "HOST:PORT",
        requires = "attach_attestations"
    )]
    pub registry_plain_http: Vec<String>,
    /// Stop when standard input closes (lets a parent process own the controller's lifetime).
    #[arg(long, hide = true)]
    pub exit_on_stdin_close: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,kube=warn,tower=warn,hyper=warn")
    });
    // Colours only on a terminal: container logs and files stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

pub fn run(args: &ControllerArgs) -> anyhow::Result<i32> {
    init_logging(args.log_format);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(args))?;
    Ok(0)
}

fn webhook_config(args: &ControllerArgs) -> Option<crate::webhook::WebhookConfig> {
    use crate::webhook::{TlsSource, WebhookConfig};
    if args.no_webhook || (args.webhook_cert_dir.is_none() && !args.webhook_self_signed) {
        return None;
    }
    let tls = match &args.webhook_cert_dir {
        Some(dir) => TlsSource::Dir {
            dir: dir.clone(),
            reload: Duration::from_secs(args.webhook_cert_reload_seconds.max(1)),
        },
        None => {
            let names = if args.webhook_cert_names.is_empty() {
                let (svc, ns) = (&args.webhook_service_name, &args.namespace);
                vec![
                    format!("{svc}.{ns}.svc"),
                    format!("{svc}.{ns}.svc.cluster.local"),
                    "127.0.0.1".to_string(),
                ]
            } else {
                args.webhook_cert_names.clone()
            };
            TlsSource::SelfSigned {
                secret: args.webhook_cert_secret.clone(),
                names,
            }
        }
    };
    Some(WebhookConfig {
        addr: args.webhook_addr,
        tls,
        config_name: args.webhook_config_name.clone(),
    })
}

async fn run_async(args: &ControllerArgs) -> anyhow::Result<()> {
    let kube_config = match &args.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no in-cluster configuration and no kubeconfig")?,
    };
    let request_metrics = controller::client::RequestMetrics::default();
    let limits = controller::client::Limits {
        max_in_flight: args.kube_api_max_in_flight as usize,
        qps: args.kube_api_qps,
    };
    let client = controller::client::build(kube_config.clone(), limits, &request_metrics)
        .context("creating the Kubernetes client")?;
    let identity = args.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let config = ControllerConfig {
        namespace: args.namespace.clone(),
        signing_key_secret: args.signing_key_secret.clone(),
        generate_key: args.generate_key,
        public_key_configmap: args.public_key_configmap.clone(),
        passport_history: args.passport_history as usize,
        resync: Duration::from_secs(args.resync_seconds.max(5)),
        concurrency: args.concurrency,
        request_metrics,
        connector_timeout: Duration::from_secs(args.connector_timeout_seconds.max(1)),
        lease: (!args.no_leader_election).then(|| LeaseConfig {
            namespace: args.namespace.clone(),
            name: args.lease_name.clone(),
            identity: identity.clone(),
            duration: Duration::from_secs(args.lease_duration_seconds.max(2)),
            renew: Duration::from_secs((args.lease_duration_seconds / 3).max(1)),
        }),
        admin_addr: args.admin_addr,
        console_url: args
            .console_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_string()),
        actor: format!("releasepassport-controller/{identity}"),
        webhook: webhook_config(args),
        console: args.console_addr.map(|addr| crate::console::ConsoleConfig {
            addr,
            session_ttl: Duration::from_secs(args.console_session_ttl_seconds.max(60)),
            cert_dir: args.console_cert_dir.clone(),
            llm: args.console_llm_endpoint.as_ref().map(|endpoint| {
                crate::console::llm::LlmConfig {
                    endpoint: endpoint.clone(),
                    model: args.console_llm_model.clone().unwrap_or_default(),
                    key_file: args.console_llm_key_file.clone(),
                    timeout: Duration::from_secs(args.console_llm_timeout_seconds.clamp(1, 120)),
                }
            }),
            oidc: args.console_oidc_issuer.as_ref().map(|issuer| {
                crate::console::oidc::OidcConfig {
                    issuer: issuer.clone(),
                    client_id: args.console_oidc_client_id.clone(),
                    client_secret_file: args.console_oidc_client_secret_file.clone(),
                    ca_file: args.console_oidc_ca_file.clone(),
                    scopes: args.console_oidc_scopes.clone(),
                    console_url: args.console_url.clone().unwrap_or_default(),
                    timeout: Duration::from_secs(args.connector_timeout_seconds.clamp(1, 60)),
                }
            }),
        }),
        attach: args
            .attach_attestations
            .then(|| crate::controller::attest::AttachConfig {
                credentials_secret: args.registry_credentials_secret.clone(),
                plain_http: args.registry_plain_http.clone(),
            }),
    };
    let exit_on_stdin_close = args.exit_on_stdin_close;
    let shutdown = async move {
        let stdin_closed = async {
            if exit_on_stdin_close {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 64];
                let mut stdin = tokio::io::stdin();
                while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
            } else {
                std::future::pending::<()>().await;
            }
        };
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; shutting down"),
            _ = term.recv() => tracing::info!("terminated; shutting down"),
            _ = stdin_closed => tracing::info!("standard input closed; shutting down"),
        }
    };
    controller::run(client, kube_config, config, shutdown).await
}
