use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use crate::webhook::config::{self, Endpoint, RenderOptions};

/// Print the ValidatingWebhookConfiguration of the admission webhook.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  releasepassport webhook-config | kubectl apply -f -\n  releasepassport webhook-config --failure-policy ignore --timeout-seconds 3\n  releasepassport webhook-config --enforced-failure-policy fail --evidence-failure-policy ignore\n  releasepassport webhook-config --url https://127.0.0.1:8443/validate --ca-bundle-file ca.crt\n\nWithout --ca-bundle-file the caBundle is left empty: run the controller with\n--webhook-self-signed (it patches the caBundle) or let cert-manager's CA injector fill it."
)]
pub struct WebhookConfigArgs {
    /// Name of the ValidatingWebhookConfiguration.
    #[arg(long, default_value = "releasepassport-webhook")]
    pub name: String,
    /// The operator's namespace (never sent to the webhook; also the Service's namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "release-passport-system")]
    pub namespace: String,
    /// More namespaces never sent to the webhook (repeatable).
    #[arg(long = "exclude-namespace", value_name = "NAMESPACE")]
    pub exclude_namespaces: Vec<String>,
    /// What the apiserver does when the webhook cannot answer, for gated
    /// workloads outside enforced namespaces: `fail` blocks gated changes
    /// (safe), `ignore` admits them unchecked (available; the apiserver's
    /// admission policy still checks their digests).
    #[arg(long, value_enum, default_value_t = FailurePolicy::Fail)]
    pub failure_policy: FailurePolicy,
    /// The same, for gated workloads in namespaces labelled releasepassport.io/enforce=true.
    #[arg(long, value_enum, default_value_t = FailurePolicy::Fail)]
    pub enforced_failure_policy: FailurePolicy,
    /// The same, for ReleaseGates (pushed evidence observed in the future);
    /// the operator ignores such evidence anyway, so `ignore` is safe.
    #[arg(long, value_enum, default_value_t = FailurePolicy::Ignore)]
    pub evidence_failure_policy: FailurePolicy,
    /// How long the apiserver waits for an answer (1-30).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i32).range(1..=30))]
    pub timeout_seconds: i32,
    /// Reach the webhook at this URL instead of through a Service.
    #[arg(long, conflicts_with_all = ["service_name", "service_port"])]
    pub url: Option<String>,
    /// Service in front of the controller's webhook port.
    #[arg(long, default_value = "releasepassport-webhook")]
    pub service_name: String,
    /// Port of that Service.
    #[arg(long, default_value_t = 443)]
    pub service_port: i32,
    /// PEM file of the CA that signed the serving certificate.
    #[arg(long, value_name = "FILE")]
    pub ca_bundle_file: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Output::Yaml)]
    pub output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailurePolicy {
    Fail,
    Ignore,
}

impl FailurePolicy {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Fail => "Fail",
            FailurePolicy::Ignore => "Ignore",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Yaml,
    Json,
}

pub fn run(args: &WebhookConfigArgs) -> anyhow::Result<i32> {
    let ca_bundle_pem = match &args.ca_bundle_file {
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    let opts = RenderOptions {
        name: args.name.clone(),
        operator_namespace: args.namespace.clone(),
        exclude_namespaces: args.exclude_namespaces.clone(),
        endpoint: match &args.url {
            Some(url) => Endpoint::Url(url.clone()),
            None => Endpoint::Service {
                namespace: args.namespace.clone(),
                name: args.service_name.clone(),
                port: args.service_port,
            },
        },
        failure_policy: args.failure_policy.as_str().into(),
        enforced_failure_policy: args.enforced_failure_policy.as_str().into(),
        evidence_failure_policy: args.evidence_failure_policy.as_str().into(),
        timeout_seconds: args.timeout_seconds,
        ca_bundle_pem,
    };
    let mut value = serde_json::to_value(config::render(&opts))?;
    if let Some(map) = value.as_object_mut() {
        map.insert(
            "apiVersion".into(),
            "admissionregistration.k8s.io/v1".into(),
        );
        map.insert("kind".into(), "ValidatingWebhookConfiguration".into());
    }
    let text = match args.output {
        Output::Yaml => serde_saphyr::to_string(&value).context("encoding YAML")?,
        Output::Json => format!("{}\n", serde_json::to_string_pretty(&value)?),
    };
    print!("{text}");
    Ok(0)
}
