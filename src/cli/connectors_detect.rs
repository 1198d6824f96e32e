//! `releasepassport connectors --detect`: what the cluster already runs
//! that a connector could read (detected candidates), with the exact
//! ConnectorScope and reader Role that turn each into a live source.
//! Detection reads as the caller's own identity and never more.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use crate::connectors::detect::{self, Detection, Namespaces};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DetectFormat {
    /// A table of candidates, then each one's ConnectorScope and Role.
    Text,
    /// One JSON object: `installed` types and `candidates`.
    Json,
    /// The ConnectorScopes, Roles and RoleBindings as YAML documents, ready for `kubectl apply -f -`.
    Yaml,
}

/// Detected candidates in the cluster.
#[derive(Debug, Args)]
#[command(after_help = concat!(
    "Examples:\n",
    "  releasepassport connectors --detect -n payments\n",
    "  releasepassport connectors --detect --all-namespaces --output json | jq '.candidates[].connectorScope'\n",
    "  releasepassport connectors --detect -n payments --reader-service-account evidence-reader --output yaml > scopes.yaml\n",
    "\n",
    "Detection asks API discovery which of Argo CD Applications, Argo Rollouts Rollouts,\n",
    "Flagger Canaries, Flux Kustomizations and HelmReleases and Prometheus Operator\n",
    "ServiceMonitors the cluster serves, then lists them as your kubeconfig's identity.\n",
    "Types you may not list are reported, never read another way. Each candidate comes\n",
    "with the ConnectorScope that would read it and the Role + RoleBinding its reader\n",
    "ServiceAccount needs (get on that one object).\n",
    "\n",
    "Exit codes:\n",
    "  0  listed (also when nothing is detected)\n",
    "  2  bad input or the cluster cannot be read"
))]
pub struct ConnectorsArgs {
    /// Detect candidates in the cluster.
    #[arg(long)]
    pub detect: bool,
    /// Kubeconfig to use instead of the in-cluster configuration or $KUBECONFIG.
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace to look in (default: the kubeconfig context's namespace).
    #[arg(
        short = 'n',
        long,
        env = "RELEASEPASSPORT_NAMESPACE",
        conflicts_with = "all_namespaces"
    )]
    pub namespace: Option<String>,
    /// Look in every namespace you may list.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// The reader ServiceAccount the scopes read as (config/rbac/namespace-reader.yaml).
    #[arg(long, value_name = "NAME", default_value = detect::DEFAULT_READER)]
    pub reader_service_account: String,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = DetectFormat::Text)]
    pub output: DetectFormat,
}

pub fn run(args: &ConnectorsArgs) -> anyhow::Result<i32> {
    if !args.detect {
        anyhow::bail!("pass --detect to list the candidates this cluster runs (see --help)");
    }
    super::report::non_empty("--namespace", args.namespace.as_deref())?;
    super::report::non_empty(
        "--reader-service-account",
        Some(&args.reader_service_account),
    )?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (detection, where_) = runtime.block_on(read(args))?;
    let out = match args.output {
        DetectFormat::Json => {
            serde_json::to_string_pretty(&detection).context("encoding the detection")? + "\n"
        }
        DetectFormat::Yaml => yaml(&detection)?,
        DetectFormat::Text => text(&detection, &where_)?,
    };
    print!("{out}");
    Ok(super::exit::OK)
}

async fn read(args: &ConnectorsArgs) -> anyhow::Result<(Detection, String)> {
    let (client, default_ns) = super::report::client(args.kubeconfig.as_deref()).await?;
    let (namespaces, where_) = if args.all_namespaces {
        (Namespaces::All, "all namespaces".to_string())
    } else {
        let ns = args.namespace.clone().unwrap_or(default_ns);
        (
            Namespaces::Only(vec![ns.clone()]),
            format!("namespace {ns}"),
        )
    };
    let detection = detect::detect(&client, &namespaces, &args.reader_service_account)
        .await
        .map_err(|e| anyhow::anyhow!("detecting candidates in {where_}: {e}"))?;
    Ok((detection, where_))
}

/// Every candidate's objects as YAML documents.
fn yaml(detection: &Detection) -> anyhow::Result<String> {
    let mut out = String::new();
    for c in &detection.candidates {
        writeln!(
            out,
            "# {} {} {}/{}",
            c.connector, c.kind, c.namespace, c.name
        )?;
        if let Some(note) = &c.note {
            writeln!(out, "# {note}")?;
        }
        for object in std::iter::once(&c.connector_scope).chain(c.rbac.iter()) {
            out.push_str("---\n");
            out.push_str(&serde_saphyr::to_string(object).context("encoding YAML")?);
        }
    }
    Ok(out)
}

fn text(detection: &Detection, where_: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    if detection.installed.is_empty() {
        writeln!(
            out,
            "No detectable integration is installed (Argo CD, Argo Rollouts, Flagger, Flux, Prometheus Operator)."
        )?;
        return Ok(out);
    }
    writeln!(out, "Detected candidates in {where_}:")?;
    if detection.candidates.is_empty() {
        writeln!(
            out,
            "  none: the types below are installed, but no object of them is visible here"
        )?;
    } else {
        writeln!(
            out,
            "  {:<14} {:<15} {:<40} {}",
            "CONNECTOR", "KIND", "OBJECT", "SCOPE"
        )?;
        for c in &detection.candidates {
            writeln!(
                out,
                "  {:<14} {:<15} {:<40} {}/{}",
                c.connector,
                c.kind,
                format!("{}/{}", c.namespace, c.name),
                c.scope_namespace,
                c.connector_scope["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
            )?;
        }
    }
    writeln!(out, "\nInstalled:")?;
    for i in &detection.installed {
        match &i.not_listed {
            None => writeln!(
                out,
                "  {} ({}) read by connector {}",
                i.kind, i.api_version, i.connector
            )?,
            Some(why) => writeln!(out, "  {} ({}): not listed: {why}", i.kind, i.api_version)?,
        }
    }
    if !detection.candidates.is_empty() {
        writeln!(
            out,
            "\nTo turn a candidate into a live source, apply its ConnectorScope and Role (--output yaml):"
        )?;
        out.push('\n');
        out.push_str(&yaml(detection)?);
    }
    Ok(out)
}
