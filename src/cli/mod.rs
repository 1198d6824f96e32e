//! The `releasepassport` command line.

mod attach;
mod audit;
mod connectors;
mod connectors_detect;
mod controller;
pub mod crds;
mod evaluate;
pub mod exit;
mod export;
pub mod gate;
pub(crate) mod grant;
mod init;
mod input;
mod keygen;
pub mod report;
mod summary;
mod verify;
mod webhook_config;

use clap::{Parser, Subcommand};

/// Release Passport: decide from evidence whether a release may be promoted,
/// and record the decision as a signed Passport.
#[derive(Debug, Parser)]
#[command(name = "releasepassport", version, about, long_about = None)]
#[command(
    after_help = "Examples:\n  releasepassport crds > crds.yaml\n  releasepassport crds --out-dir crds/\n  releasepassport keygen\n  releasepassport connectors --output json\n  releasepassport evaluate --policy policy.yaml --release releasegate.yaml --evidence evidence/ --key releasepassport.key --out passport.json\n  releasepassport verify passport.json --public-key releasepassport.pub\n  releasepassport export passport.json --format dsse --out passport.intoto.jsonl\n  releasepassport attach passport.json --public-key releasepassport.pub --registry-config ~/.docker/config.json\n  releasepassport gate -n payments --service payment-api --release v2.18.4 --environment production --image registry.example.com/payment-api@sha256:<digest> --mode enforce\n  releasepassport approve payment-api-production -n payments --reference CHG-1042 --wait\n  releasepassport waive payment-api-production -n payments --rule error-rate --reason \"known flake\" --expires-in 24h\n  releasepassport audit -n payments --output csv > audit.csv\n  releasepassport report graduation -n payments\n  releasepassport report metrics --window 30d\n  releasepassport connectors --detect -n payments\n  releasepassport init -n payments --service payment-api --apply\n\nExit codes:\n  0  allowed (or any decision in shadow mode), verified\n  1  verify: the passport does not verify\n  2  bad input\n  3  HOLD (enforce mode)\n  4  REQUIRE_APPROVAL (enforce mode)\n  5  BLOCK (enforce mode)\n  6  ROLLBACK_RECOMMENDED (enforce mode)\n  7  gate: no decision within --timeout\n  8  approve/waive --wait: it does not count"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the CustomResourceDefinitions as YAML.
    Crds(crds::CrdsArgs),
    /// Run the operator (ReleaseGate controller, metrics and probes).
    Controller(controller::ControllerArgs),
    /// CI: apply a release to a ReleaseGate, wait for its Passport, exit by decision and mode.
    Gate(gate::GateArgs),
    /// Approve a ReleaseGate's current release, as yourself (needs the approve verb on the gate).
    Approve(grant::ApproveArgs),
    /// Waive one rule of a ReleaseGate for its current artifact until an expiry (needs the waive verb).
    Waive(grant::WaiveArgs),
    /// Evaluate a release offline (policy + release + evidence files) and write a signed passport.
    Evaluate(evaluate::EvaluateArgs),
    /// Verify a passport's attestation against a public key, offline.
    Verify(verify::VerifyArgs),
    /// Export a passport as JSON, Markdown, CSV, its attestation (.intoto.jsonl) or an audit bundle (redacted).
    Export(export::ExportArgs),
    /// Attach a passport's attestation to the image it judges, in its OCI registry.
    Attach(attach::AttachArgs),
    /// Generate an ed25519 key pair for signing passports.
    Keygen(keygen::KeygenArgs),
    /// Print the ValidatingWebhookConfiguration of the admission webhook.
    WebhookConfig(webhook_config::WebhookConfigArgs),
    /// The audit trail of a namespace's gates (history and Events) as text, JSON or CSV, redacted.
    Audit(audit::AuditArgs),
    /// Reports from the cluster: shadow → enforce graduation, release metrics.
    Report(report::ReportArgs),
    /// The connector matrix: each provider's category, status, credential and evidence.
    Connectors(connectors::ConnectorsArgs),
    /// Write (or apply) a shadow-mode Policy, ConnectorScopes, reader RBAC and a ReleaseGate for a service, from what its namespace runs.
    Init(init::InitArgs),
}

/// Runs the command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Crds(args) => crds::run(&args),
        Command::Controller(args) => controller::run(&args),
        Command::Gate(args) => gate::run(&args),
        Command::Approve(args) => grant::run_approve(&args),
        Command::Waive(args) => grant::run_waive(&args),
        Command::Evaluate(args) => evaluate::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Attach(args) => attach::run(&args),
        Command::Keygen(args) => keygen::run(&args),
        Command::WebhookConfig(args) => webhook_config::run(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Connectors(args) => connectors::run(&args),
        Command::Init(args) => init::run(&args),
    }
}
