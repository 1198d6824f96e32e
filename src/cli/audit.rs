//! `releasepassport audit`: the governance events of a namespace's gates,
//! from their `status.history` and their Kubernetes Events, merged and
//! exported as text, JSON or CSV (redacted).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};

use crate::api::ReleaseGate;
use crate::insights::{self, AuditEvent};
use crate::passport::redact::redact_str;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    /// One line per event, newest first.
    Text,
    /// A JSON array, newest first.
    Json,
    /// CSV with a header row, newest first.
    Csv,
}

/// The audit trail of a namespace's ReleaseGates (redacted).
#[derive(Debug, Args)]
#[command(after_help = concat!(
    "Examples:\n",
    "  releasepassport audit --namespace payments\n",
    "  releasepassport audit -n payments --gate payment-api-production\n",
    "  releasepassport audit -n payments --output csv > audit.csv\n",
    "  releasepassport audit -n payments --gate payment-api-production --output json | jq '.[0]'\n",
    "\n",
    "Reads each gate's status.history (the last 20 entries) and the namespace's Events on\n",
    "releasepassport.io objects (kept by the apiserver for its --event-ttl, 1h by default),\n",
    "and merges them: an entry and its Event count once. Event types: DecisionChanged,\n",
    "ApprovalAdded, WaiverAdded, WaiverExpired, SigningKeyChanged, AdmissionDenied (Events\n",
    "only). Every output is redacted.\n",
    "\n",
    "Exit codes:\n",
    "  0  written (also when there are no events)\n",
    "  2  bad input, the gate does not exist, or the cluster cannot be read"
))]
pub struct AuditArgs {
    /// Kubeconfig to use instead of the in-cluster configuration or $KUBECONFIG.
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of the gates (default: the kubeconfig context's namespace).
    #[arg(short = 'n', long, env = "RELEASEPASSPORT_NAMESPACE")]
    pub namespace: Option<String>,
    /// Only this ReleaseGate.
    #[arg(long, value_name = "NAME")]
    pub gate: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = AuditFormat::Text)]
    pub output: AuditFormat,
}

pub fn run(args: &AuditArgs) -> anyhow::Result<i32> {
    super::report::non_empty("--namespace", args.namespace.as_deref())?;
    super::report::non_empty("--gate", args.gate.as_deref())?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let events = runtime.block_on(read(args))?;
    let out = match args.output {
        AuditFormat::Json => {
            let mut s = insights::audit_json(&events);
            s.push('\n');
            s
        }
        AuditFormat::Csv => insights::audit_csv(&events),
        AuditFormat::Text => audit_text(&events),
    };
    print!("{out}");
    Ok(super::exit::OK)
}

async fn read(args: &AuditArgs) -> anyhow::Result<Vec<AuditEvent>> {
    let (client, default_ns) = super::report::client(args.kubeconfig.as_deref()).await?;
    let ns = args.namespace.clone().unwrap_or(default_ns);
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), &ns);
    let gates = match &args.gate {
        Some(name) => vec![
            gates
                .get_opt(name)
                .await
                .with_context(|| format!("reading ReleaseGate {ns}/{name}"))?
                .with_context(|| format!("ReleaseGate {ns}/{name} not found"))?,
        ],
        None => {
            gates
                .list(&ListParams::default())
                .await
                .with_context(|| format!("listing ReleaseGates in namespace {ns}"))?
                .items
        }
    };
    let mut fields = format!(
        "involvedObject.apiVersion={}/{}",
        crate::api::GROUP,
        crate::api::VERSION
    );
    if let Some(name) = &args.gate {
        let _ = write!(fields, ",involvedObject.name={name}");
    }
    let events = Api::<Event>::namespaced(client, &ns)
        .list(&ListParams::default().fields(&fields))
        .await
        .with_context(|| format!("listing Events in namespace {ns}"))?
        .items;
    let history: Vec<AuditEvent> = gates.iter().flat_map(insights::audit_from_gate).collect();
    let from_events: Vec<AuditEvent> = events
        .iter()
        .filter_map(insights::audit_from_event)
        .collect();
    Ok(insights::merge_audit(history, from_events))
}

/// One line per event (redacted), newest first.
pub fn audit_text(events: &[AuditEvent]) -> String {
    if events.is_empty() {
        return "No audit events.\n".into();
    }
    let mut out = String::new();
    for e in events {
        let actor = e
            .actor
            .as_deref()
            .map(|a| format!(" by {}", redact_str(a)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{}  {}/{}  {}{actor}: {}",
            e.at,
            e.namespace,
            e.gate.as_deref().unwrap_or("-"),
            e.kind,
            redact_str(&e.message)
        );
    }
    out
}
