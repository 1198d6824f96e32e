//! `releasepassport gate`: the CI path. Creates or updates a ReleaseGate
//! (server-side apply), pushes CI evidence into it, waits until the operator
//! has evaluated that very generation, writes the Passport and exits by
//! decision and mode.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, ValueEnum};
use futures::{StreamExt as _, TryStreamExt as _};
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt as _, watcher};

use crate::api::{Mode, Passport, PassportSpec, ReleaseGate, ReleaseGateStatus};
use crate::passport::export;

use super::{exit, input, summary};

/// Field manager of the fields `gate` applies.
pub const FIELD_MANAGER: &str = "releasepassport-gate";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Record the decision, never fail the job.
    Shadow,
    /// Fail the job unless the decision allows promotion.
    Enforce,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    /// A readable summary.
    Text,
    /// One JSON object (gate, decision, failing checks, next actions, passport, exit code).
    Json,
}

/// Create or update a ReleaseGate, wait for its Passport, exit by decision.
#[derive(Debug, Args)]
#[command(after_help = concat!(
    "Examples:\n",
    "  releasepassport gate --namespace payments --service payment-api --release v2.18.4 \\\n",
    "      --environment production --mode enforce \\\n",
    "      --image registry.example.com/payment-api@sha256:3f5d...b1a0 \\\n",
    "      --source-sha \"$GITHUB_SHA\" --build-provider github-actions --build-id \"$GITHUB_RUN_ID\" \\\n",
    "      --policy payment-api-production --connector-scope payment-api-runtime \\\n",
    "      --evidence ci-evidence.json --trivy-report trivy.json --out passport.json \\\n",
    "      --markdown \"$GITHUB_STEP_SUMMARY\"\n",
    "  releasepassport gate -n payments --service payment-api --release v2.18.4 --environment staging \\\n",
    "      --image registry.example.com/payment-api@sha256:3f5d...b1a0 \\\n",
    "      --rollback-release v2.17.9 \\\n",
    "      --rollback-image registry.example.com/payment-api@sha256:9a8b...0f1e --timeout 10m --output json\n",
    "\n",
    "The gate is applied with the field manager releasepassport-gate. A pipeline changes only a\n",
    "gate's release, artifact, rollback and evidence: on an existing gate the command keeps its\n",
    "mode, policy and connector scopes unless --mode, --policy or --connector-scope say otherwise,\n",
    "and changing those (or creating a gate) needs the configure verb on the gate. Approvals are\n",
    "not given here: approvers run `releasepassport approve`. The command then waits until the\n",
    "operator's status describes the applied generation, so an earlier release's decision is\n",
    "never reported for this one.\n",
    "\n",
    "Exit codes:\n",
    "  0  ALLOW or ALLOW_WITH_CANARY, or any decision in shadow mode\n",
    "  2  bad input (flag, evidence file, image not pinned by digest), the gate cannot be\n",
    "     evaluated (Ready=False, e.g. PolicyNotFound, InvalidPolicy) or the API refused the gate\n",
    "  3  HOLD (enforce mode)\n",
    "  4  REQUIRE_APPROVAL (enforce mode)\n",
    "  5  BLOCK (enforce mode)\n",
    "  6  ROLLBACK_RECOMMENDED (enforce mode)\n",
    "  7  no decision for this release within --timeout"
))]
pub struct GateArgs {
    /// Kubeconfig to use instead of the in-cluster configuration or $KUBECONFIG.
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of the ReleaseGate (default: the kubeconfig context's namespace).
    #[arg(short = 'n', long, env = "RELEASEPASSPORT_NAMESPACE")]
    pub namespace: Option<String>,
    /// Name of the ReleaseGate (default: <service>-<environment>).
    #[arg(long)]
    pub name: Option<String>,
    /// Service being released, e.g. payment-api.
    #[arg(long)]
    pub service: String,
    /// Release identifier, e.g. v2.18.4.
    #[arg(long)]
    pub release: String,
    /// Target environment, e.g. production.
    #[arg(long)]
    pub environment: String,
    /// Set the gate's mode: shadow records the decision and exits 0; enforce exits non-zero unless
    /// the decision allows promotion. Default: the gate's current mode (shadow for a new gate).
    /// Changing it needs the configure verb.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Image pinned by digest, e.g. registry.example.com/payment-api@sha256:<64 hex>.
    #[arg(long, value_name = "IMAGE@sha256:DIGEST")]
    pub image: String,
    /// Source commit SHA the image was built from.
    #[arg(long, value_name = "SHA")]
    pub source_sha: Option<String>,
    /// CI provider of the build run, e.g. github-actions, gitlab-ci.
    #[arg(long, value_name = "NAME")]
    pub build_provider: Option<String>,
    /// Build run id.
    #[arg(long, value_name = "ID")]
    pub build_id: Option<String>,
    /// Link to the build run.
    #[arg(long, value_name = "URL")]
    pub build_url: Option<String>,
    /// Policy (same namespace) to evaluate against (default: the gate's current one, or the gate
    /// name for a new gate). Changing it needs the configure verb.
    #[arg(long, value_name = "NAME")]
    pub policy: Option<String>,
    /// ConnectorScope (same namespace) that supplies evidence (repeatable).
    #[arg(long = "connector-scope", value_name = "NAME")]
    pub connector_scopes: Vec<String>,
    /// CI evidence file or directory (connector evidence shape, JSON or YAML; one document or a list), pushed into spec.evidence (repeatable).
    #[arg(long, value_name = "FILE")]
    pub evidence: Vec<PathBuf>,
    /// Trivy JSON report of the release's image (trivy image --format json IMAGE@sha256:...), summarised into `trivy` facts and pushed with the evidence (repeatable). A report of another image is refused.
    #[arg(long = "trivy-report", value_name = "FILE")]
    pub trivy_reports: Vec<PathBuf>,
    /// Previous good release, for rollback readiness.
    #[arg(long, value_name = "RELEASE")]
    pub rollback_release: Option<String>,
    /// Image of the previous good release, pinned by digest.
    #[arg(
        long,
        value_name = "IMAGE@sha256:DIGEST",
        requires = "rollback_release"
    )]
    pub rollback_image: Option<String>,
    /// How long to wait for the decision: seconds, or a number with s, m or h.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Write the passport JSON to this file.
    #[arg(long, value_name = "FILE", default_value = "passport.json")]
    pub out: PathBuf,
    /// Also write a Markdown report (e.g. $GITHUB_STEP_SUMMARY; appended to when the file exists).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Summary format on standard output (progress goes to standard error).
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub output: SummaryFormat,
}

/// `300`, `300s`, `5m`, `1h`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 300, 300s, 5m, 1h)"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use s, m or h)")),
    };
    if secs == 0 {
        return Err("must be at least 1s".into());
    }
    Ok(Duration::from_secs(secs))
}

fn progress(msg: &str) {
    eprintln!("[gate] {msg}");
}

/// The ReleaseGate object to apply, from the flags and the gate's current
/// spec when it exists (pure; checks input). The configuration of an
/// existing gate (mode, policy, connector scopes) is applied unchanged unless
/// a flag changes it, so that a pipeline's apply changes only the release.
pub fn desired_gate(
    args: &GateArgs,
    name: &str,
    namespace: &str,
    current: Option<&crate::api::ReleaseGateSpec>,
) -> anyhow::Result<serde_json::Value> {
    if crate::webhook::decide::image_digest(&args.image).is_none() {
        bail!(
            "--image: {:?} is not pinned by digest (expected IMAGE@sha256:<64 lowercase hex characters>, e.g. registry.example.com/{}@sha256:...)",
            args.image,
            args.service
        );
    }
    if let Some(img) = &args.rollback_image
        && crate::webhook::decide::image_digest(img).is_none()
    {
        bail!(
            "--rollback-image: {img:?} is not pinned by digest (expected IMAGE@sha256:<64 lowercase hex characters>)"
        );
    }
    for (flag, value) in [
        ("--service", &args.service),
        ("--release", &args.release),
        ("--environment", &args.environment),
    ] {
        if value.trim().is_empty() {
            bail!("{flag}: must not be empty");
        }
    }
    let mut artifact = serde_json::json!({"image": args.image});
    if let Some(sha) = &args.source_sha {
        artifact["sourceSha"] = sha.clone().into();
    }
    let mut build = serde_json::Map::new();
    for (key, value) in [
        ("provider", &args.build_provider),
        ("id", &args.build_id),
        ("url", &args.build_url),
    ] {
        if let Some(v) = value {
            build.insert(key.into(), v.clone().into());
        }
    }
    if !build.is_empty() {
        artifact["buildRun"] = build.into();
    }
    let mode = match (args.mode, current) {
        (Some(ModeArg::Enforce), _) => Mode::Enforce,
        (Some(ModeArg::Shadow), _) => Mode::Shadow,
        (None, Some(c)) => c.mode,
        (None, None) => Mode::Shadow,
    };
    let policy = match (&args.policy, current) {
        (Some(p), _) => p.clone(),
        (None, Some(c)) => c.policy_ref.name.clone(),
        (None, None) => name.to_string(),
    };
    let mut spec = serde_json::json!({
        "service": args.service,
        "release": args.release,
        "environment": args.environment,
        "mode": mode.as_str(),
        "policyRef": {"name": policy},
        "artifact": artifact,
    });
    let scopes: Vec<&str> = if !args.connector_scopes.is_empty() {
        args.connector_scopes.iter().map(String::as_str).collect()
    } else {
        current
            .map(|c| c.connector_scopes.iter().map(|s| s.name.as_str()).collect())
            .unwrap_or_default()
    };
    if !scopes.is_empty() {
        spec["connectorScopes"] = scopes
            .iter()
            .map(|n| serde_json::json!({"name": n}))
            .collect();
    }
    if let Some(release) = &args.rollback_release {
        let mut rollback = serde_json::json!({"release": release});
        if let Some(img) = &args.rollback_image {
            rollback["image"] = img.clone().into();
        }
        spec["rollback"] = rollback;
    }
    if !args.evidence.is_empty() || !args.trivy_reports.is_empty() {
        let mut docs = input::load_evidence(&args.evidence)?;
        docs.extend(input::load_trivy_reports(
            &args.trivy_reports,
            &args.image,
            jiff::Timestamp::now(),
        )?);
        spec["evidence"] = serde_json::to_value(docs).context("encoding the evidence")?;
    }
    Ok(serde_json::json!({
        "apiVersion": format!("{}/{}", crate::api::GROUP, crate::api::VERSION),
        "kind": "ReleaseGate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }))
}

pub fn run(args: &GateArgs) -> anyhow::Result<i32> {
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", args.service, args.environment));
    // Check every flag and file before touching the cluster.
    let placeholder_ns = args.namespace.clone().unwrap_or_default();
    desired_gate(args, &name, &placeholder_ns, None)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(args, name))
}

async fn kube_config(args: &GateArgs) -> anyhow::Result<kube::Config> {
    match &args.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| anyhow!("--kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| anyhow!("--kubeconfig {}: {e}", path.display()))
        }
        None => kube::Config::infer().await.map_err(|e| {
            anyhow!("no kubeconfig ($KUBECONFIG, --kubeconfig) and not in a cluster: {e}")
        }),
    }
}

/// What the wait ended with.
enum Outcome {
    Evaluated(Box<ReleaseGateStatus>),
    NotReady { reason: String, message: String },
}

fn ready_condition(
    status: &ReleaseGateStatus,
) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    status.conditions.iter().find(|c| c.type_ == "Ready")
}

/// Whether a status answers `generation`.
fn outcome(status: Option<&ReleaseGateStatus>, generation: i64) -> Option<Outcome> {
    let status = status?;
    if status.observed_generation.unwrap_or(0) < generation {
        return None;
    }
    let ready = ready_condition(status)?;
    match ready.status.as_str() {
        "False" => Some(Outcome::NotReady {
            reason: ready.reason.clone(),
            message: ready.message.clone(),
        }),
        "True" if status.passport_name.is_some() => {
            Some(Outcome::Evaluated(Box::new(status.clone())))
        }
        _ => None,
    }
}

fn describe(status: Option<&ReleaseGateStatus>, generation: i64) -> String {
    match status {
        None => {
            format!("waiting for the operator to evaluate generation {generation} (no status yet)")
        }
        Some(s) => match s.observed_generation {
            Some(g) if g < generation => format!(
                "waiting for the operator to evaluate generation {generation} (status describes generation {g}{})",
                s.decision.map(|d| format!(", {d}")).unwrap_or_default()
            ),
            _ => format!(
                "generation {generation} observed; waiting for its passport{}",
                ready_condition(s)
                    .map(|c| format!(" (Ready={} {})", c.status, c.reason))
                    .unwrap_or_default()
            ),
        },
    }
}

async fn run_async(args: &GateArgs, name: String) -> anyhow::Result<i32> {
    let config = kube_config(args).await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config).context("creating the Kubernetes client")?;
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), &namespace);
    let current = gates.get_opt(&name).await.map_err(|e| match e {
        kube::Error::Api(s) if s.code == 404 => anyhow!(
            "releasegate {namespace}/{name}: the ReleaseGate API is not served (install the CRDs: releasepassport crds | kubectl apply -f -)"
        ),
        e => anyhow!("releasegate {namespace}/{name}: {e}"),
    })?;
    let desired = desired_gate(args, &name, &namespace, current.as_ref().map(|g| &g.spec))?;

    let applied = gates
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&desired),
        )
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 404 => anyhow!(
                "releasegate {namespace}/{name}: the ReleaseGate API is not served (install the CRDs: releasepassport crds | kubectl apply -f -)"
            ),
            kube::Error::Api(s) if current.is_none() && s.code == 403 => anyhow!(
                "releasegate {namespace}/{name} does not exist, and this identity may not create it: {}. A platform admin creates and configures gates (the configure verb); the pipeline applies each release to an existing gate",
                s.message
            ),
            kube::Error::Api(s) => anyhow!(
                "releasegate {namespace}/{name}: the API refused the gate: {}",
                s.message
            ),
            e => anyhow!("releasegate {namespace}/{name}: {e}"),
        })?;
    let generation = applied.metadata.generation.unwrap_or(1);
    progress(&format!(
        "applied releasegate {namespace}/{name} ({} {} -> {}, {} mode), generation {generation}",
        args.service, args.release, args.environment, applied.spec.mode
    ));

    let start = Instant::now();
    let wait = wait_for(&gates, &name, generation, applied.status.as_ref(), start);
    let outcome = match tokio::time::timeout(args.timeout, wait).await {
        Ok(result) => result?,
        Err(_) => {
            let current = gates.get_opt(&name).await.ok().flatten();
            eprintln!(
                "error: releasegate {namespace}/{name}: no decision for generation {generation} within {}s ({}); is the operator running? (kubectl -n {namespace} describe releasegate {name})",
                args.timeout.as_secs(),
                describe(current.as_ref().and_then(|g| g.status.as_ref()), generation)
            );
            return Ok(exit::TIMEOUT);
        }
    };
    let status = match outcome {
        Outcome::NotReady { reason, message } => {
            eprintln!(
                "error: releasegate {namespace}/{name} cannot be evaluated: {reason}: {message}"
            );
            return Ok(exit::BAD_INPUT);
        }
        Outcome::Evaluated(status) => *status,
    };
    let passport_name = status.passport_name.clone().unwrap_or_default();
    let passports: Api<Passport> = Api::namespaced(client, &namespace);
    let passport = passports
        .get(&passport_name)
        .await
        .map_err(|e| anyhow!("passport {namespace}/{passport_name}: {e}"))?;
    let doc = passport.spec;
    if doc.release != args.release || doc.artifact.image != args.image {
        bail!(
            "passport {namespace}/{passport_name} is for {} {}, not {} {}: another writer changed the gate; re-run",
            doc.release,
            doc.artifact.image,
            args.release,
            args.image
        );
    }
    progress(&format!(
        "decision {} from passport {passport_name} after {:.1}s",
        doc.decision,
        start.elapsed().as_secs_f64()
    ));

    let value = serde_json::to_value(&doc).context("encoding the passport")?;
    let json = serde_json::to_string_pretty(&value).context("encoding the passport")? + "\n";
    std::fs::write(&args.out, &json)
        .map_err(|e| anyhow!("{}: cannot write: {e}", args.out.display()))?;
    if let Some(path) = &args.markdown {
        let report = export::prepare(&value).map_err(|e| anyhow!("markdown report: {e}"))?;
        let markdown = export::to_markdown(&report);
        use std::io::Write as _;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(markdown.as_bytes()))
            .map_err(|e| anyhow!("{}: cannot write: {e}", path.display()))?;
    }

    let code = exit::for_decision(doc.decision, doc.mode);
    let summary = match args.output {
        SummaryFormat::Json => {
            json_summary(&doc, &status, &namespace, &name, generation, args, code)?
        }
        SummaryFormat::Text => text_summary(&doc, &status, &namespace, &name, args),
    };
    print!("{summary}");
    Ok(code)
}

async fn wait_for(
    gates: &Api<ReleaseGate>,
    name: &str,
    generation: i64,
    initial: Option<&ReleaseGateStatus>,
    start: Instant,
) -> anyhow::Result<Outcome> {
    if let Some(done) = outcome(initial, generation) {
        return Ok(done);
    }
    let mut last = describe(initial, generation);
    progress(&last);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher(gates.clone(), config)
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut heartbeat = tokio::time::interval(Duration::from_secs(15));
    heartbeat.tick().await;
    loop {
        tokio::select! {
            item = stream.try_next() => {
                let gate = match item {
                    Ok(Some(gate)) => gate,
                    Ok(None) => bail!("the watch on releasegate {name} ended"),
                    Err(e) => {
                        progress(&format!("watch interrupted ({e}); retrying"));
                        continue;
                    }
                };
                if let Some(done) = outcome(gate.status.as_ref(), generation) {
                    return Ok(done);
                }
                let now = describe(gate.status.as_ref(), generation);
                if now != last {
                    progress(&now);
                    last = now;
                }
            }
            _ = heartbeat.tick() => {
                progress(&format!("{last} ({}s)", start.elapsed().as_secs()));
            }
        }
    }
}

fn text_summary(
    doc: &PassportSpec,
    status: &ReleaseGateStatus,
    namespace: &str,
    name: &str,
    args: &GateArgs,
) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{} {} -> {} ({} mode), releasegate {namespace}/{name}\n",
        doc.service, doc.release, doc.environment, doc.mode
    ));
    summary::push_decision_and_checks(&mut s, doc);
    if !status.failing_checks.is_empty() {
        s.push_str(&format!(
            "\nFailing checks ({}): {}\n",
            status.failing_checks.len(),
            status.failing_checks.join(", ")
        ));
    }
    summary::push_approvals_and_waivers(&mut s, doc);
    summary::push_next_actions(&mut s, doc);
    s.push_str(&format!(
        "\nPassport: {} -> {} (signed, key id {})\n",
        status.passport_name.as_deref().unwrap_or("-"),
        args.out.display(),
        doc.signing_key_id()
    ));
    if doc.mode == Mode::Shadow && !doc.decision.allows_promotion() {
        s.push_str(&format!(
            "Shadow mode: recorded, not blocking (enforce mode would exit {}).\n",
            exit::enforce_code(doc.decision)
        ));
    }
    s
}

fn json_summary(
    doc: &PassportSpec,
    status: &ReleaseGateStatus,
    namespace: &str,
    name: &str,
    generation: i64,
    args: &GateArgs,
    code: i32,
) -> anyhow::Result<String> {
    let checks: Vec<serde_json::Value> = doc
        .policy_results
        .iter()
        .filter(|r| status.failing_checks.contains(&r.id))
        .map(|r| {
            serde_json::json!({
                "id": r.id, "label": r.label, "state": r.state,
                "onFail": r.on_fail, "reason": r.reason,
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&serde_json::json!({
        "namespace": namespace,
        "gate": name,
        "generation": generation,
        "service": doc.service,
        "release": doc.release,
        "environment": doc.environment,
        "mode": doc.mode,
        "decision": doc.decision,
        "confidence": doc.confidence,
        "failingChecks": checks,
        "nextActions": doc.next_actions,
        "passportName": status.passport_name,
        "keyId": doc.signing_key_id(),
        "passport": args.out.display().to_string(),
        "exitCode": code,
    }))
    .context("encoding the summary")?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        gate: GateArgs,
    }

    fn parse(extra: &[&str]) -> GateArgs {
        let mut argv = vec![
            "gate",
            "--service",
            "payment-api",
            "--release",
            "v2.18.4",
            "--environment",
            "production",
            "--image",
            "registry.example.com/payment-api@sha256:3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        ];
        argv.extend_from_slice(extra);
        Wrap::try_parse_from(argv).expect("flags").gate
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn the_gate_carries_the_flags() {
        let args = parse(&[
            "--mode",
            "enforce",
            "--source-sha",
            "9c1e",
            "--build-provider",
            "github-actions",
            "--build-id",
            "4821",
            "--connector-scope",
            "payment-api-runtime",
            "--rollback-release",
            "v2.17.9",
        ]);
        let gate = desired_gate(&args, "payment-api-production", "payments", None).expect("gate");
        let spec = &gate["spec"];
        assert_eq!(spec["mode"], "enforce");
        assert_eq!(spec["policyRef"]["name"], "payment-api-production");
        assert_eq!(spec["artifact"]["buildRun"]["id"], "4821");
        assert_eq!(spec["connectorScopes"][0]["name"], "payment-api-runtime");
        assert!(spec.get("approvals").is_none());
        assert_eq!(spec["rollback"], serde_json::json!({"release": "v2.17.9"}));
        assert!(spec.get("evidence").is_none());
        // The applied object is a valid ReleaseGate.
        let typed: ReleaseGate = serde_json::from_value(gate).expect("a ReleaseGate");
        assert_eq!(typed.spec.mode, Mode::Enforce);
    }

    #[test]
    fn an_image_without_digest_is_refused_before_any_cluster_call() {
        let mut args = parse(&[]);
        args.image = "registry.example.com/payment-api:v2.18.4".into();
        let err = desired_gate(&args, "x", "y", None).expect_err("refused");
        assert!(err.to_string().starts_with("--image: "), "{err}");
        assert!(err.to_string().contains("not pinned by digest"), "{err}");
    }

    #[test]
    fn on_an_existing_gate_the_configuration_is_kept_unless_a_flag_changes_it() {
        let existing: ReleaseGate = serde_json::from_value(serde_json::json!({
            "apiVersion": "releasepassport.io/v1alpha1", "kind": "ReleaseGate",
            "metadata": {"name": "payment-api-production"},
            "spec": {"service": "payment-api", "release": "v2.18.3", "environment": "production",
                     "mode": "enforce", "policyRef": {"name": "strict"},
                     "connectorScopes": [{"name": "runtime"}],
                     "artifact": {"image": "registry.example.com/payment-api@sha256:1111111111111111111111111111111111111111111111111111111111111111"}}
        }))
        .expect("gate");
        let gate = desired_gate(
            &parse(&[]),
            "payment-api-production",
            "payments",
            Some(&existing.spec),
        )
        .expect("gate");
        let spec = &gate["spec"];
        assert_eq!(spec["mode"], "enforce", "no --mode: the gate's mode stays");
        assert_eq!(spec["policyRef"]["name"], "strict");
        assert_eq!(spec["connectorScopes"][0]["name"], "runtime");
        assert_eq!(spec["release"], "v2.18.4");
        let gate = desired_gate(
            &parse(&["--mode", "shadow"]),
            "payment-api-production",
            "payments",
            Some(&existing.spec),
        )
        .expect("gate");
        assert_eq!(
            gate["spec"]["mode"], "shadow",
            "asked for (the apiserver decides)"
        );
    }

    #[test]
    fn a_stale_status_is_not_an_answer() {
        let mut status = ReleaseGateStatus {
            observed_generation: Some(1),
            passport_name: Some("old".into()),
            conditions: vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: "Evaluated".into(),
                message: String::new(),
                observed_generation: Some(1),
                last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    jiff::Timestamp::UNIX_EPOCH,
                ),
            }],
            ..Default::default()
        };
        assert!(outcome(Some(&status), 2).is_none());
        status.observed_generation = Some(2);
        assert!(matches!(
            outcome(Some(&status), 2),
            Some(Outcome::Evaluated(_))
        ));
        status.conditions[0].status = "False".into();
        assert!(matches!(
            outcome(Some(&status), 2),
            Some(Outcome::NotReady { .. })
        ));
    }
}
