//! `releasepassport approve` and `releasepassport waive`: create a
//! ReleaseApproval or ReleaseWaiver for a gate's current release, as the
//! user of the kubeconfig. The apiserver records that user as the author and
//! checks the `approve` / `waive` verb on the gate; the operator then decides
//! whether it counts (self-approval, ServiceAccounts, the Policy's limits)
//! and says why in its status (`--wait` prints it).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, ValueEnum};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::Serialize;

use crate::api::{
    GrantState, GrantStatus, ReleaseApproval, ReleaseApprovalSpec, ReleaseGate, ReleaseWaiver,
    ReleaseWaiverSpec,
};

use super::exit;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// Where and how to talk to the cluster, shared by both commands.
#[derive(Debug, Args)]
pub struct Target {
    /// Kubeconfig to use instead of the in-cluster configuration or $KUBECONFIG.
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of the ReleaseGate (default: the kubeconfig context's namespace).
    #[arg(short = 'n', long, env = "RELEASEPASSPORT_NAMESPACE")]
    pub namespace: Option<String>,
    /// The ReleaseGate.
    pub gate: String,
    /// The artifact digest (sha256:<64 hex>) to approve or waive; default: the gate's current artifact.
    #[arg(long, value_name = "sha256:DIGEST")]
    pub digest: Option<String>,
    /// Wait until the operator has judged it, print whether it counts and why, and exit 8 when it does not.
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits: seconds, or a number with s, m or h.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// Approve the current release of a ReleaseGate (needs the approve verb on it).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  releasepassport approve payment-api-production -n payments --reference CHG-1042\n  releasepassport approve payment-api-production -n payments --reference CHG-1042 --wait --output json\n\nThe approval is bound to the gate's current release and artifact digest: it never counts for\nanother digest. The apiserver records you (the kubeconfig's user) as the approver. The Policy\ndecides whether it counts: not when you applied the release yourself (approval.allowSelfApproval),\nnot from a ServiceAccount (approval.allowServiceAccounts), and N approvals need N people.\n\nExit codes:\n  0  created (with --wait: it counts)\n  2  bad input, or the apiserver refused it (the message names the rule)\n  7  --wait: not judged within --timeout (is the operator running?)\n  8  --wait: it does not count (the reason is printed)"
)]
pub struct ApproveArgs {
    #[command(flatten)]
    pub target: Target,
    /// A reference such as a change ticket, e.g. CHG-1042.
    #[arg(long, value_name = "TEXT")]
    pub reference: Option<String>,
    /// Why, for the record.
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
}

/// Waive one rule of a ReleaseGate's Policy for its current artifact, until an expiry (needs the waive verb).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  releasepassport waive payment-api-production -n payments --rule error-rate \\\n      --reason \"Known noisy endpoint, fix tracked in PAY-311\" --expires-in 24h\n  releasepassport waive payment-api-production -n payments --rule error-rate --reason ... \\\n      --expires-at 2026-05-18T18:00:00Z --wait\n\nThe waiver is bound to the gate, the rule and the artifact digest, is immutable (it cannot be\nextended: create a new one), and counts only until it expires and only when its lifetime is\nwithin the Policy's waiver.maxDurationSeconds (default 7 days; the apiserver refuses more than 30).\n\nExit codes:\n  0  created (with --wait: it counts)\n  2  bad input, or the apiserver refused it (the message names the rule)\n  7  --wait: not judged within --timeout (is the operator running?)\n  8  --wait: it does not count (the reason is printed)"
)]
pub struct WaiveArgs {
    #[command(flatten)]
    pub target: Target,
    /// Id of the rule to waive.
    #[arg(long, value_name = "RULE_ID")]
    pub rule: String,
    /// Why the rule is waived.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// When the waiver stops counting, as a duration from now: seconds, or a number with s, m or h.
    #[arg(long, value_parser = parse_duration, conflicts_with = "expires_at", required_unless_present = "expires_at")]
    pub expires_in: Option<Duration>,
    /// When the waiver stops counting (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    pub expires_at: Option<String>,
}

/// `300`, `300s`, `5m`, `24h`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    super::gate::parse_duration(s)
}

/// What a command reports.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    kind: &'static str,
    namespace: String,
    name: String,
    gate: String,
    release: Option<String>,
    digest: String,
    author: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<GrantState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    exit_code: i32,
}

pub fn run_approve(args: &ApproveArgs) -> anyhow::Result<i32> {
    runtime()?.block_on(approve(args))
}

pub fn run_waive(args: &WaiveArgs) -> anyhow::Result<i32> {
    let expires_at = match (&args.expires_at, args.expires_in) {
        (Some(at), _) => at
            .parse::<jiff::Timestamp>()
            .map_err(|e| anyhow!("--expires-at: {at:?} is not an RFC 3339 timestamp: {e}"))?,
        (None, Some(d)) => jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::try_from(d).context("--expires-in")?)
            .context("--expires-in")?,
        (None, None) => {
            bail!("--expires-in or --expires-at is required: waivers are always temporary")
        }
    };
    if args.reason.trim().is_empty() {
        bail!("--reason: must not be empty");
    }
    runtime()?.block_on(waive(args, expires_at))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn connect(target: &Target) -> anyhow::Result<(kube::Client, String)> {
    let config = match &target.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| anyhow!("--kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| anyhow!("--kubeconfig {}: {e}", path.display()))?
        }
        None => kube::Config::infer().await.map_err(|e| {
            anyhow!("no kubeconfig ($KUBECONFIG, --kubeconfig) and not in a cluster: {e}")
        })?,
    };
    let namespace = target
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config).context("creating the Kubernetes client")?;
    Ok((client, namespace))
}

/// The gate's current release and digest (or `--digest`).
async fn subject(
    client: &kube::Client,
    namespace: &str,
    target: &Target,
) -> anyhow::Result<(String, String)> {
    let gate = Api::<ReleaseGate>::namespaced(client.clone(), namespace)
        .get_opt(&target.gate)
        .await
        .map_err(|e| anyhow!("releasegate {namespace}/{}: {e}", target.gate))?
        .ok_or_else(|| anyhow!("releasegate {namespace}/{} not found", target.gate))?;
    let digest = match &target.digest {
        Some(d) => d.clone(),
        None => crate::engine::image_digest(&gate.spec.artifact.image)
            .ok_or_else(|| {
                anyhow!(
                    "releasegate {namespace}/{}: its artifact {:?} is not pinned by digest",
                    target.gate,
                    gate.spec.artifact.image
                )
            })?
            .to_string(),
    };
    if crate::engine::image_digest(&format!("x@{digest}")).is_none() {
        bail!("--digest: {digest:?} is not sha256:<64 lowercase hex characters>");
    }
    Ok((gate.spec.release, digest))
}

fn refused(kind: &str, namespace: &str, gate: &str, e: kube::Error) -> anyhow::Error {
    match e {
        kube::Error::Api(s) => anyhow!(
            "the apiserver refused the {kind} for releasegate {namespace}/{gate}: {}",
            s.message
        ),
        e => anyhow!("creating the {kind} for releasegate {namespace}/{gate}: {e}"),
    }
}

/// A ReleaseApproval of `gate`'s `release` at `digest`, named by the
/// apiserver (`<gate>-xxxxx`), its approver left out for the apiserver to
/// stamp with the authenticated user who creates it. The CLI and the
/// console both create approvals from this.
pub fn approval(
    gate: &str,
    release: &str,
    digest: &str,
    reference: Option<String>,
    comment: Option<String>,
) -> ReleaseApproval {
    let mut object = ReleaseApproval::new(
        "",
        ReleaseApprovalSpec {
            gate: gate.to_string(),
            release: release.to_string(),
            digest: digest.to_string(),
            reference,
            comment,
            approver: String::new(),
        },
    );
    object.metadata.name = None;
    object.metadata.generate_name = Some(format!("{gate}-"));
    object
}

async fn approve(args: &ApproveArgs) -> anyhow::Result<i32> {
    let t = &args.target;
    let (client, namespace) = connect(t).await?;
    let (release, digest) = subject(&client, &namespace, t).await?;
    let object = approval(
        &t.gate,
        &release,
        &digest,
        args.reference.clone(),
        args.comment.clone(),
    );
    let api: Api<ReleaseApproval> = Api::namespaced(client, &namespace);
    let (created, name, status) =
        create_and_wait(&api, &object, "ReleaseApproval", &namespace, t, |a| {
            a.status
        })
        .await?;
    report(
        Report {
            kind: "ReleaseApproval",
            namespace,
            name,
            gate: t.gate.clone(),
            release: Some(release),
            digest,
            author: created.spec.approver,
            state: None,
            reason: None,
            message: None,
            exit_code: exit::OK,
        },
        t,
        status,
    )
}

async fn waive(args: &WaiveArgs, expires_at: jiff::Timestamp) -> anyhow::Result<i32> {
    let t = &args.target;
    let (client, namespace) = connect(t).await?;
    let (release, digest) = subject(&client, &namespace, t).await?;
    let mut object = ReleaseWaiver::new(
        "",
        ReleaseWaiverSpec {
            gate: t.gate.clone(),
            rule_id: args.rule.clone(),
            digest: digest.clone(),
            reason: args.reason.clone(),
            expires_at,
            author: String::new(),
        },
    );
    object.metadata.name = None;
    object.metadata.generate_name = Some(format!("{}-{}-", t.gate, args.rule));
    let api: Api<ReleaseWaiver> = Api::namespaced(client, &namespace);
    let (created, name, status) =
        create_and_wait(&api, &object, "ReleaseWaiver", &namespace, t, |w| w.status).await?;
    report(
        Report {
            kind: "ReleaseWaiver",
            namespace,
            name,
            gate: t.gate.clone(),
            release: Some(release),
            digest,
            author: created.spec.author,
            state: None,
            reason: None,
            message: None,
            exit_code: exit::OK,
        },
        t,
        status,
    )
}

/// Creates an approval or waiver as the caller (the apiserver stamps its
/// author) and, with `--wait`, polls until the operator has judged it.
/// Returns the created object, its generated name and what `--wait` saw.
async fn create_and_wait<K>(
    api: &Api<K>,
    object: &K,
    kind: &str,
    namespace: &str,
    t: &Target,
    status_of: fn(K) -> Option<GrantStatus>,
) -> anyhow::Result<(K, String, Option<Option<GrantStatus>>)>
where
    K: kube::Resource + Clone + Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let created = api
        .create(&PostParams::default(), object)
        .await
        .map_err(|e| refused(kind, namespace, &t.gate, e))?;
    let name = created.meta().name.clone().unwrap_or_default();
    let status = if t.wait {
        wait_for(
            || {
                let api = api.clone();
                let name = name.clone();
                async move { api.get(&name).await.ok().and_then(status_of) }
            },
            t.timeout,
        )
        .await
    } else {
        None
    };
    Ok((created, name, status))
}

/// Polls until the operator has written a state (`None` on timeout).
async fn wait_for<F, Fut>(mut read: F, timeout: Duration) -> Option<Option<GrantStatus>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<GrantStatus>>,
{
    let poll = async {
        loop {
            if let Some(status) = read().await.filter(|s| s.state.is_some()) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    Some(tokio::time::timeout(timeout, poll).await.ok())
}

fn report(
    mut r: Report,
    target: &Target,
    waited: Option<Option<GrantStatus>>,
) -> anyhow::Result<i32> {
    match &waited {
        Some(Some(status)) => {
            r.state = status.state;
            r.reason = status.reason.clone();
            r.message = status.message.clone();
            if status.state == Some(GrantState::NotCounted) {
                r.exit_code = exit::NOT_COUNTED;
            }
        }
        Some(None) => r.exit_code = exit::TIMEOUT,
        None => {}
    }
    match target.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&r)?),
        Output::Text => {
            println!(
                "{} {}/{} created by {} for releasegate {} ({} {})",
                r.kind,
                r.namespace,
                r.name,
                r.author,
                r.gate,
                r.release.as_deref().unwrap_or("-"),
                r.digest
            );
            match (&waited, r.state) {
                (Some(Some(_)), Some(state)) => println!(
                    "{}: {}",
                    state.as_str(),
                    r.message.as_deref().unwrap_or_default()
                ),
                (Some(None), _) => eprintln!(
                    "error: not judged within {}s; is the operator running? (kubectl -n {} get {} {})",
                    target.timeout.as_secs(),
                    r.namespace,
                    r.kind.to_ascii_lowercase(),
                    r.name
                ),
                _ => println!(
                    "The operator counts it at the gate's next evaluation: kubectl -n {} get {} {}",
                    r.namespace,
                    r.kind.to_ascii_lowercase(),
                    r.name
                ),
            }
        }
    }
    Ok(r.exit_code)
}
