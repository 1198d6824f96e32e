//! `releasepassport evaluate`: policy, release and evidence files in, a
//! signed passport out. No cluster.

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::{Args, ValueEnum};

use crate::api::{Mode, ReleaseApproval, ReleaseWaiver};
use crate::engine::{self, EvaluationInput, Stage};
use crate::passport::{self, PassportSigner};

use super::{exit, input, summary};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    /// A readable summary.
    Text,
    /// One JSON object (decision, confidence, failing checks, next actions, exit code).
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StageArg {
    /// `spec.rules` only.
    PreDeploy,
    /// Also `spec.postDeploy.rules` (failures ask for ROLLBACK_RECOMMENDED).
    PostDeploy,
}

/// Evaluate a release offline and write a signed passport.
#[derive(Debug, Args)]
#[command(after_help = concat!(
    "Examples:\n",
    "  releasepassport evaluate --policy policy.yaml --release releasegate.yaml \\\n",
    "      --evidence evidence/ --key releasepassport.key --out passport.json\n",
    "  releasepassport evaluate --policy policy.yaml --release releasegate.yaml \\\n",
    "      --evidence argocd.json --evidence prometheus.json --now 2026-05-17T06:30:00Z --output json\n",
    "  releasepassport evaluate --policy policy.yaml --release releasegate.yaml --evidence evidence/ \\\n",
    "      --approval approval.yaml --waiver waiver.yaml   # count them as the operator would\n",
    "\n",
    "Exit codes:\n",
    "  0  ALLOW or ALLOW_WITH_CANARY, or any decision in shadow mode\n",
    "  2  bad input (unreadable/malformed file, invalid policy, bad key)\n",
    "  3  HOLD (enforce mode)\n",
    "  4  REQUIRE_APPROVAL (enforce mode)\n",
    "  5  BLOCK (enforce mode)\n",
    "  6  ROLLBACK_RECOMMENDED (enforce mode)"
))]
pub struct EvaluateArgs {
    /// Policy object (YAML or JSON, as applied to a cluster).
    #[arg(long, value_name = "POLICY.yaml")]
    pub policy: PathBuf,
    /// ReleaseGate object (YAML or JSON). Its `spec.evidence` is read too.
    #[arg(long, value_name = "RELEASEGATE.yaml")]
    pub release: PathBuf,
    /// Evidence file or directory, in the connector evidence shape (repeatable).
    #[arg(long, value_name = "FILE_OR_DIR", num_args = 1..)]
    pub evidence: Vec<PathBuf>,
    /// Trivy JSON report of the release's image, summarised into `trivy` facts (repeatable). A report of another image is refused.
    #[arg(long = "trivy-report", value_name = "FILE")]
    pub trivy_reports: Vec<PathBuf>,
    /// ed25519 private key (PKCS#8 PEM) to sign with; without it the passport is written unsigned.
    #[arg(long, value_name = "KEY.pem")]
    pub key: Option<PathBuf>,
    /// Key id written into the signature (default: derived from the public key).
    #[arg(long, value_name = "ID", requires = "key")]
    pub key_id: Option<String>,
    /// Evaluation time (RFC 3339) instead of the clock, for reproducible runs.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Write the passport JSON to this file (`-` for standard output, the summary then goes to standard error).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Summary format.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub output: SummaryFormat,
    /// Who asks for the decision, recorded in the passport.
    #[arg(
        long,
        value_name = "NAME",
        env = "RELEASEPASSPORT_ACTOR",
        default_value = "cli"
    )]
    pub actor: String,
    /// Which rules to evaluate.
    #[arg(long, value_enum, default_value_t = StageArg::PreDeploy)]
    pub stage: StageArg,
    /// ReleaseApproval objects (YAML or JSON, one or a list per file) to count, as a cluster would (repeatable).
    #[arg(long = "approval", value_name = "FILE")]
    pub approvals: Vec<PathBuf>,
    /// ReleaseWaiver objects (YAML or JSON, one or a list per file) to count, as a cluster would (repeatable).
    #[arg(long = "waiver", value_name = "FILE")]
    pub waivers: Vec<PathBuf>,
}

pub fn run(args: &EvaluateArgs) -> anyhow::Result<i32> {
    let (policy_name, policy_spec) = input::load_policy(&args.policy)?;
    let compiled = engine::compile(&policy_spec).map_err(|e| {
        anyhow!(
            "{}: spec.{}: {} ({})",
            args.policy.display(),
            e.path,
            e.message,
            e.reason
        )
    })?;
    let (gate, gate_ref) = input::load_gate(&args.release)?;
    let mut evidence = input::load_evidence(&args.evidence)?;
    let approval_objects: Vec<ReleaseApproval> =
        input::load_objects(&args.approvals, "ReleaseApproval")?;
    let waiver_objects: Vec<ReleaseWaiver> = input::load_objects(&args.waivers, "ReleaseWaiver")?;
    let approvals: Vec<engine::ApprovalInput<'_>> = approval_objects
        .iter()
        .map(|a| engine::ApprovalInput {
            name: a.metadata.name.as_deref().unwrap_or("approval"),
            spec: &a.spec,
            created_at: a.metadata.creation_timestamp.as_ref().map(|t| t.0),
        })
        .collect();
    let waivers: Vec<engine::WaiverInput<'_>> = waiver_objects
        .iter()
        .map(|w| engine::WaiverInput {
            name: w.metadata.name.as_deref().unwrap_or("waiver"),
            spec: &w.spec,
            created_at: w.metadata.creation_timestamp.as_ref().map(|t| t.0),
        })
        .collect();
    let now = match &args.now {
        Some(s) => s
            .parse::<jiff::Timestamp>()
            .map_err(|e| anyhow!("--now: {s:?} is not an RFC 3339 timestamp: {e}"))?,
        None => jiff::Timestamp::now(),
    };
    evidence.extend(
        input::load_trivy_reports(&args.trivy_reports, &gate.artifact.image, now)
            .map_err(|e| anyhow!("{e} (release: {})", args.release.display()))?,
    );
    let signer = match &args.key {
        Some(path) => {
            let pem = input::read_text(path)?;
            let key = passport::load_signing_key_pem(&pem)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            Some(match &args.key_id {
                Some(id) => PassportSigner::with_key_id(key, id.clone()),
                None => PassportSigner::new(key),
            })
        }
        None => None,
    };

    let evaluation = engine::evaluate(&EvaluationInput {
        policy_name: &policy_name,
        policy: &compiled,
        gate: &gate,
        gate_ref: gate_ref.as_ref(),
        evidence: &evidence,
        now,
        actor: &args.actor,
        stage: match args.stage {
            StageArg::PreDeploy => Stage::PreDeploy,
            StageArg::PostDeploy => Stage::PostDeploy,
        },
        context: engine::GateContext {
            approvals: &approvals,
            waivers: &waivers,
            ..Default::default()
        },
    })
    .map_err(|e| anyhow!("{}: spec.{e}", args.release.display()))?;
    let failing = evaluation.failing_checks.clone();
    let next_stale_at = evaluation.next_stale_at;
    let doc = match &signer {
        Some(signer) => evaluation
            .into_signed(signer)
            .context("signing the passport")?,
        None => evaluation.into_passport(),
    };
    let code = exit::for_decision(doc.decision, doc.mode);

    let json = serde_json::to_string_pretty(&doc).context("encoding the passport")? + "\n";
    let passport_to_stdout = args.out.as_deref().is_some_and(|p| p.as_os_str() == "-");
    let written = match &args.out {
        Some(path) if !passport_to_stdout => {
            std::fs::write(path, &json)
                .map_err(|e| anyhow!("{}: cannot write: {e}", path.display()))?;
            Some(path.display().to_string())
        }
        _ => None,
    };

    let summary = match args.output {
        SummaryFormat::Json => {
            let checks: Vec<serde_json::Value> = doc
                .policy_results
                .iter()
                .filter(|r| failing.contains(&r.id))
                .map(|r| {
                    serde_json::json!({
                        "id": r.id, "label": r.label, "state": r.state,
                        "onFail": r.on_fail, "reason": r.reason,
                    })
                })
                .collect();
            let mut s = serde_json::to_string_pretty(&serde_json::json!({
                "service": doc.service,
                "release": doc.release,
                "environment": doc.environment,
                "mode": doc.mode,
                "decision": doc.decision,
                "confidence": doc.confidence,
                "failingChecks": checks,
                "nextActions": doc.next_actions,
                "nextStaleAt": next_stale_at,
                "signed": signer.is_some(),
                "keyId": signer.as_ref().map(|s| s.key_id()),
                "passport": written,
                "exitCode": code,
            }))
            .context("encoding the summary")?;
            s.push('\n');
            s
        }
        SummaryFormat::Text => {
            let mut s = String::new();
            s.push_str(&format!(
                "{} {} -> {} ({} mode)\n",
                doc.service, doc.release, doc.environment, doc.mode
            ));
            summary::push_decision_and_checks(&mut s, &doc);
            if !failing.is_empty() {
                s.push_str(&format!("\nFailing checks ({}):\n", failing.len()));
                for r in doc
                    .policy_results
                    .iter()
                    .filter(|r| failing.contains(&r.id))
                {
                    s.push_str(&format!(
                        "  - {} [{}]: {}\n",
                        r.label,
                        summary::state_word(r.state),
                        r.id
                    ));
                }
            }
            summary::push_approvals_and_waivers(&mut s, &doc);
            summary::push_next_actions(&mut s, &doc);
            if let Some(c) = &doc.canary {
                s.push_str(&format!(
                    "\nCanary: max traffic step {}, watch window {}\n",
                    c.max_traffic_step_percent
                        .map(|p| format!("{p}%"))
                        .unwrap_or_else(|| "-".into()),
                    c.watch_window_seconds
                        .map(|w| format!("{w}s"))
                        .unwrap_or_else(|| "-".into()),
                ));
            }
            s.push('\n');
            match (&written, &signer) {
                (Some(path), Some(signer)) => s.push_str(&format!(
                    "Passport: {path} (signed, key id {})\n",
                    signer.key_id()
                )),
                (Some(path), None) => s.push_str(&format!(
                    "Passport: {path} (unsigned: pass --key to sign)\n"
                )),
                (None, _) if passport_to_stdout => {}
                (None, _) => s.push_str("Passport: not written (pass --out FILE)\n"),
            }
            if doc.mode == Mode::Shadow && !doc.decision.allows_promotion() {
                s.push_str(&format!(
                    "Shadow mode: recorded, not blocking (enforce mode would exit {}).\n",
                    exit::enforce_code(doc.decision)
                ));
            }
            s
        }
    };
    if passport_to_stdout {
        eprint!("{summary}");
        print!("{json}");
    } else {
        print!("{summary}");
    }
    Ok(code)
}
