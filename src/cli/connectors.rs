//! `releasepassport connectors`: the connector matrix, offline.

use clap::{Args, ValueEnum};

use crate::connectors::matrix::{self, Detected};

/// Print the connector matrix: every provider, its category, how its
/// evidence reaches a passport today, the credential it needs.
#[derive(Debug, Args)]
#[command(
    after_help = "Statuses:\n  Native pull          a native adapter reads the source live within the configured scope\n  Requires credential  a native adapter reads live once a scoped credential is referenced (secretRef)\n  Evidence ingest      CI pushes the evidence (ReleaseGate spec.evidence, gate --evidence)\n  Detected candidate   recognised where it runs; setup is guided, no live read\n  Manual connector     a customer-defined endpoint or manual evidence path\n  Planned              on the roadmap: not available as a live connector\n\nExamples:\n  releasepassport connectors\n  releasepassport connectors --detect -n payments\n  releasepassport connectors --detect --all-namespaces --output yaml > candidates.yaml\n  releasepassport connectors --output json | jq -r '.[] | select(.status == \"Requires credential\") | .connector'\n  releasepassport connectors --output markdown"
)]
pub struct ConnectorsArgs {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Also look at the cluster (as your kubeconfig's identity): providers it runs that no ConnectorScope reads yet show as Detected candidate, each with the ConnectorScope and reader Role that turn it into a live source.
    #[arg(long)]
    pub detect: bool,
    #[command(flatten)]
    pub cluster: super::connectors_detect::DetectArgs,
}

/// Output formats of `connectors`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// An aligned table.
    Text,
    /// One JSON object per row.
    Json,
    /// The Markdown table of docs/connectors.md.
    Markdown,
    /// With --detect: the candidates' ConnectorScopes, Roles and RoleBindings as YAML, for `kubectl apply -f -`.
    Yaml,
}

pub fn run(args: &ConnectorsArgs) -> anyhow::Result<i32> {
    if args.detect {
        return super::connectors_detect::run(&args.cluster, args.output);
    }
    let rows = matrix::view(&Detected::none());
    match args.output {
        Output::Text => print!("{}", matrix::text(&rows)),
        Output::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Output::Markdown => print!("{}", matrix::markdown(&rows)),
        Output::Yaml => anyhow::bail!(
            "--output yaml prints detected candidates: add --detect (and -n NAMESPACE or -A)"
        ),
    }
    Ok(0)
}
