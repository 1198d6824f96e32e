//! `releasepassport connectors --detect`: the connector matrix as it
//! stands in a cluster. Providers the cluster runs that no ConnectorScope
//! reads yet are shown as "Detected candidate", each object with the exact
//! ConnectorScope and reader Role that turn it into a live source.
//! Detection reads as the caller's own identity and never more.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::connectors::Output;
use crate::connectors::detect::{self, Detection, Namespaces};
use crate::connectors::matrix;

/// Where and as whom to detect.
#[derive(Debug, Args)]
pub struct DetectArgs {
    /// With --detect: kubeconfig to use instead of the in-cluster configuration or $KUBECONFIG.
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// With --detect: namespace to look in (default: the kubeconfig context's namespace).
    #[arg(
        short = 'n',
        long,
        env = "RELEASEPASSPORT_NAMESPACE",
        conflicts_with = "all_namespaces"
    )]
    pub namespace: Option<String>,
    /// With --detect: look in every namespace you may list.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// With --detect: the reader ServiceAccount the scopes read as (config/rbac/namespace-reader.yaml).
    #[arg(long, value_name = "NAME", default_value = detect::DEFAULT_READER)]
    pub reader_service_account: String,
}

pub fn run(args: &DetectArgs, output: Output) -> anyhow::Result<i32> {
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
    let rows = matrix::view(&detection.detected());
    let out = match output {
        Output::Json => {
            serde_json::to_string_pretty(&serde_json::json!({
                "matrix": rows,
                "installed": detection.installed,
                "candidates": detection.candidates,
            }))
            .context("encoding the detection")?
                + "\n"
        }
        Output::Markdown => matrix::markdown(&rows),
        Output::Yaml => yaml(&detection)?,
        Output::Text => {
            let mut out = matrix::text(&rows);
            out.push('\n');
            out.push_str(&text(&detection, &where_)?);
            out
        }
    };
    print!("{out}");
    Ok(super::exit::OK)
}

async fn read(args: &DetectArgs) -> anyhow::Result<(Detection, String)> {
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

/// Every unconfigured candidate's objects as YAML documents.
fn yaml(detection: &Detection) -> anyhow::Result<String> {
    let mut out = String::new();
    for c in detection
        .candidates
        .iter()
        .filter(|c| c.configured_by.is_none())
    {
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
            "Nothing detectable is installed (Argo CD, Argo Rollouts, Flagger, Flux, Prometheus Operator)."
        )?;
        return Ok(out);
    }
    writeln!(out, "Detected in {where_}:")?;
    if detection.candidates.is_empty() {
        writeln!(
            out,
            "  nothing visible: the types below are installed, but you see no object of them here"
        )?;
    } else {
        writeln!(
            out,
            "  {:<14} {:<15} {:<40} SCOPE",
            "CONNECTOR", "KIND", "OBJECT"
        )?;
        for c in &detection.candidates {
            let scope = match &c.configured_by {
                Some(name) => format!("{}/{name} (configured)", c.scope_namespace),
                None => format!(
                    "{}/{} (candidate)",
                    c.scope_namespace,
                    c.connector_scope["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                ),
            };
            writeln!(
                out,
                "  {:<14} {:<15} {:<40} {scope}",
                c.connector,
                c.kind,
                format!("{}/{}", c.namespace, c.name),
            )?;
        }
    }
    writeln!(out, "\nInstalled:")?;
    for i in &detection.installed {
        match &i.not_listed {
            None => writeln!(
                out,
                "  {} ({}), read by connector {}",
                i.kind, i.api_version, i.connector
            )?,
            Some(why) => writeln!(out, "  {} ({}): not listed: {why}", i.kind, i.api_version)?,
        }
    }
    let candidates = yaml(detection)?;
    if !candidates.is_empty() {
        writeln!(
            out,
            "\nTo turn a candidate into a live source, apply its ConnectorScope and Role (--output yaml):\n"
        )?;
        out.push_str(&candidates);
    }
    Ok(out)
}
