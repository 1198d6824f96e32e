//! Controller benchmark on the real local control plane (etcd +
//! kube-apiserver from `e2e/cluster.sh`) with the real release binary of the
//! controller: ReleaseGate create → Passport Ready latency, and the
//! controller's resident memory with 1,000 and 10,000 passports.
//!
//! Run it with `make bench-controller` (which builds first); this program
//! builds nothing. Arguments after `--` are passed on, e.g.
//! `make bench-controller ARGS="--gates 400 --json"`.
//!
//! What it does:
//! 1. starts the control plane if needed, installs the CRDs, creates the
//!    operator namespace and starts `target/release/releasepassport
//!    controller` with its own lease;
//! 2. latency: creates `--gates` ReleaseGates at `--rate` per second in a
//!    fresh namespace (evidence is in the gate, no ConnectorScope, so no
//!    external source is read); a watch on the namespace's ReleaseGates
//!    records, per gate, the first status with `passportName` set and
//!    `Ready=True` for the gate's generation. Latency is measured from the
//!    create call returning (and, separately, from it being sent);
//! 3. memory: brings the number of passports in the namespace to each of
//!    `--rss-at` (more gates, `--concurrency` creates at a time, each gate
//!    gets one passport from the controller; or, with `--fill passports`, or
//!    `auto` when the estimate does not fit the time budget, Passport objects
//!    created directly), waits until the controller's VmRSS is steady, and
//!    reports it.
//!
//! Every loop is bounded by a count and by `--max-minutes`. The controller
//! process is stopped on exit (standard input closed, then killed), and the
//! benchmark's objects are deleted unless `--keep` is given (the namespace
//! itself stays: without a controller-manager it would never finish
//! terminating).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use releasepassport::api::{EvidenceDocument, Passport, Policy, ReleaseGate};
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OPERATOR_NAMESPACE: &str = "release-passport-system";
const MANAGER: &str = "releasepassport-bench";
const GATE_LABEL: &str = "releasepassport.io/release-gate";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Fill {
    /// Gates when the estimate fits the time budget, else passports.
    Auto,
    /// More ReleaseGates; the controller writes one passport each.
    Gates,
    /// Passport objects created directly (labelled like the controller's).
    Passports,
}

/// ReleaseGate → Passport latency and controller memory on the local control plane.
#[derive(Debug, Parser)]
struct Args {
    /// Gates created in the latency phase.
    #[arg(long, default_value_t = 200)]
    gates: usize,
    /// Gates created per second in the latency phase.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Passport totals at which the controller's memory is measured.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    rss_at: Vec<usize>,
    /// How the passports of the memory phases are made.
    #[arg(long, value_enum, default_value_t = Fill::Auto)]
    fill: Fill,
    /// Creates in flight at a time in the memory phases.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// With `--fill auto`, most gates created for the memory phases; the
    /// rest of the passports are created directly.
    #[arg(long, default_value_t = 1000)]
    max_fill_gates: usize,
    /// Time budget of the whole run; every wait stops at it.
    #[arg(long, default_value_t = 14.0)]
    max_minutes: f64,
    /// The controller binary.
    #[arg(long, default_value = "target/release/releasepassport")]
    binary: PathBuf,
    /// Extra arguments for the controller (e.g. `--resync-seconds=600`).
    #[arg(long, allow_hyphen_values = true)]
    controller_arg: Vec<String>,
    /// Print a JSON document after the table.
    #[arg(long)]
    json: bool,
    /// Run on a control plane of the benchmark's own, started fresh in this
    /// directory and stopped (its data removed) at the end, instead of the
    /// one of `$RP_CLUSTER_DIR`.
    #[arg(long)]
    own_control_plane: Option<PathBuf>,
    /// With `--own-control-plane`: etcd and kube-apiserver ports (the
    /// control plane listens on the next port of each).
    #[arg(long, default_value_t = 48790)]
    own_etcd_port: u16,
    #[arg(long, default_value_t = 48443)]
    own_apiserver_port: u16,
    /// After the memory phases, restart the controller and report its
    /// memory while it lists and evaluates every gate again.
    #[arg(long)]
    restart: bool,
    /// Leave the benchmark's gates, passports and policy in place.
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClusterEnv {
    kubeconfig: PathBuf,
    #[serde(default)]
    kubectl: PathBuf,
    kube_version: String,
    #[serde(default)]
    etcd_version: String,
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The run's deadline.
#[derive(Clone, Copy)]
struct Budget {
    end: Instant,
}

impl Budget {
    fn left(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }
    /// `limit`, or less when the budget ends sooner.
    fn cap(&self, limit: Duration) -> Duration {
        limit.min(self.left())
    }
}

// ---------------------------------------------------------------- processes

/// The controller process: standard input is a pipe (the controller stops
/// when it closes); killed on drop if it did not stop.
struct ControllerProcess {
    child: Child,
    log: PathBuf,
}

impl ControllerProcess {
    fn start(
        binary: &Path,
        env: &ClusterEnv,
        lease: &str,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let log =
            std::env::temp_dir().join(format!("rp-bench-controller-{}.log", std::process::id()));
        let file = std::fs::File::create(&log).context("controller log file")?;
        let binary = if binary.is_relative() {
            repo_root().join(binary)
        } else {
            binary.to_path_buf()
        };
        if !binary.exists() {
            bail!(
                "{} not found: build it first (make bench-controller does)",
                binary.display()
            );
        }
        let kubeconfig = env.kubeconfig.to_str().context("kubeconfig path")?;
        let child = Command::new(&binary)
            .args(["controller", "--kubeconfig", kubeconfig])
            .args(["--namespace", OPERATOR_NAMESPACE, "--generate-key"])
            .args(["--lease-name", lease, "--identity", lease])
            .args(["--admin-addr", "127.0.0.1:0", "--exit-on-stdin-close"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self { child, log })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Closes standard input, waits up to 5 s, then kills.
    fn stop(&mut self) {
        drop(self.child.stdin.take());
        for _ in 0..50 {
            if self.exited() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// VmRSS and VmHWM of a process, in KiB.
fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// User + system CPU time of a process, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on Linux.
    Some((utime + stime) / 100.0)
}

/// The control plane's kube-apiserver and etcd (by command name), and the
/// command lines of the other `releasepassport controller` processes that
/// talk to it.
fn processes(cluster_dir: &str) -> (HashMap<String, u32>, Vec<(u32, String)>) {
    let mut by_comm = HashMap::new();
    let mut controllers = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return (by_comm, controllers);
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let comm = comm.trim().to_string();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        // Only controllers of this control plane: they read a kubeconfig in
        // its directory (one in a Pod of another cluster uses that cluster's).
        if comm == "releasepassport"
            && cmdline.contains(" controller")
            && cmdline.contains(cluster_dir)
        {
            controllers.push((pid, cmdline.trim().to_string()));
        }
        // Only the shared control plane's processes (their paths are under
        // the directory of the kubeconfig); other control planes may run too.
        if (comm == "kube-apiserver" || comm == "etcd") && cmdline.contains(cluster_dir) {
            by_comm.insert(comm, pid);
        }
    }
    (by_comm, controllers)
}

/// The TCP port `pid` listens on (the controller's admin port, as it binds
/// 127.0.0.1:0), from /proc.
fn listening_port(pid: u32) -> Option<u16> {
    let mut inodes = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            let t = target.to_string_lossy();
            if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                inodes.push(inode.to_string());
            }
        }
    }
    let tcp = std::fs::read_to_string("/proc/net/tcp").ok()?;
    tcp.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // local_address, st == 0A (LISTEN), inode
        if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
            let port = f[1].rsplit(':').next()?;
            u16::from_str_radix(port, 16).ok()
        } else {
            None
        }
    })
}

/// The controller's reconcile counters from `/metrics`.
#[derive(Clone, Copy, Debug, Default)]
struct ReconcileStats {
    count: f64,
    sum_seconds: f64,
    errors: f64,
    passports_written: f64,
}

async fn reconcile_stats(port: Option<u16>) -> Option<ReconcileStats> {
    let port = port?;
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .ok()?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await.ok()?;
        Some(body)
    };
    let body = tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .ok()??;
    let mut stats = ReconcileStats::default();
    for line in body.lines() {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        match name {
            "releasepassport_reconcile_duration_seconds_sum" => stats.sum_seconds = value,
            "releasepassport_reconcile_duration_seconds_count" => stats.count = value,
            "releasepassport_passports_written_total" => stats.passports_written = value,
            n if n.starts_with("releasepassport_reconcile_errors_total") => stats.errors += value,
            _ => {}
        }
    }
    Some(stats)
}

// ------------------------------------------------------------------ cluster

/// Where the control plane runs: `$RP_CLUSTER_DIR`'s (shared with the
/// tests), or the benchmark's own (`--own-control-plane`).
#[derive(Clone, Debug)]
struct ControlPlane {
    /// `RP_CLUSTER_DIR`, `RP_ETCD_PORT`, `RP_APISERVER_PORT` of our own.
    own: Option<(PathBuf, u16, u16)>,
}

impl ControlPlane {
    fn script(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(repo_root().join("e2e/cluster.sh"))
            .arg("--control-plane-only")
            .args(args);
        if let Some((dir, etcd, api)) = &self.own {
            cmd.env("RP_CLUSTER_DIR", dir)
                .env("RP_ETCD_PORT", etcd.to_string())
                .env("RP_APISERVER_PORT", api.to_string());
        }
        cmd
    }

    /// Starts it (a control plane of our own always fresh) and says where it is.
    fn up(&self) -> anyhow::Result<ClusterEnv> {
        if self.own.is_some() {
            // Fresh: whatever an earlier run left goes first.
            let _ = self.script(&["down"]).status();
        }
        let status = self
            .script(&["up", "--quiet"])
            .status()
            .context("running e2e/cluster.sh up")?;
        if !status.success() {
            bail!("e2e/cluster.sh up failed: the local control plane is required");
        }
        let out = self
            .script(&["env", "--json"])
            .output()
            .context("running e2e/cluster.sh env --json")?;
        if !out.status.success() {
            bail!(
                "e2e/cluster.sh env --json failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_slice(&out.stdout).context("e2e/cluster.sh env --json output")
    }

    /// Stops a control plane of our own (the shared one stays).
    fn down(&self) {
        if self.own.is_some() {
            let _ = self.script(&["down"]).status();
        }
    }
}

// ------------------------------------------------------- apiserver metrics

/// Counters of the apiserver's own `/metrics`: requests by verb, resource
/// and code, and request body bytes by verb and resource.
#[derive(Clone, Debug, Default)]
struct ApiserverCounts {
    /// `"VERB resource[/subresource] code"` → requests.
    requests: std::collections::BTreeMap<String, f64>,
    /// `"verb resource"` → request body bytes.
    body_bytes: std::collections::BTreeMap<String, f64>,
}

/// The resources the controller reads and writes for gates (leader lease
/// renewals and the benchmark's other objects are left out).
const GATE_RESOURCES: &[&str] = &[
    "releasegates",
    "passports",
    "policies",
    "connectorscopes",
    "releaseapprovals",
    "releasewaivers",
    "events",
];

fn label<'a>(labels: &'a str, name: &str) -> &'a str {
    let key = format!("{name}=\"");
    labels
        .split(',')
        .find_map(|l| l.trim().strip_prefix(key.as_str()))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or("")
}

fn apiserver_counts(env: &ClusterEnv) -> Option<ApiserverCounts> {
    let out = Command::new(&env.kubectl)
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .args(["get", "--raw", "/metrics"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut counts = ApiserverCounts::default();
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let Some((name, labels)) = series.split_once('{') else {
            continue;
        };
        let labels = labels.trim_end_matches('}');
        let resource = label(labels, "resource");
        if !GATE_RESOURCES.contains(&resource) {
            continue;
        }
        match name {
            "apiserver_request_total" => {
                let sub = label(labels, "subresource");
                let what = if sub.is_empty() {
                    resource.to_string()
                } else {
                    format!("{resource}/{sub}")
                };
                let key = format!("{} {what} {}", label(labels, "verb"), label(labels, "code"));
                *counts.requests.entry(key).or_default() += value;
            }
            "apiserver_request_body_size_bytes_sum" => {
                let key = format!("{} {resource}", label(labels, "verb"));
                *counts.body_bytes.entry(key).or_default() += value;
            }
            _ => {}
        }
    }
    Some(counts)
}

/// What the apiserver served between two readings, per gate: requests by
/// kind, total requests, writes, request body bytes, and answers that were
/// errors (429 and 5xx). `own` requests of the benchmark itself (its gate
/// creates) are subtracted by key.
fn per_gate(
    before: &ApiserverCounts,
    after: &ApiserverCounts,
    gates: usize,
    own: &[(&str, f64)],
) -> serde_json::Value {
    let n = gates.max(1) as f64;
    let r2 = |v: f64| (v * 100.0).round() / 100.0;
    let mut by_kind = serde_json::Map::new();
    let (mut total, mut writes, mut errors) = (0.0, 0.0, 0.0);
    for (key, value) in &after.requests {
        let mut delta = value - before.requests.get(key).copied().unwrap_or(0.0);
        for (own_key, own_count) in own {
            if key.starts_with(own_key) {
                delta -= own_count;
            }
        }
        if delta <= 0.0 {
            continue;
        }
        let verb = key.split(' ').next().unwrap_or_default();
        let code = key.rsplit(' ').next().unwrap_or_default();
        total += delta;
        if matches!(verb, "POST" | "PUT" | "PATCH" | "DELETE" | "APPLY") {
            writes += delta;
        }
        if code == "429" || code.starts_with('5') {
            errors += delta;
        }
        by_kind.insert(key.clone(), json!(r2(delta / n)));
    }
    let bytes: f64 = after
        .body_bytes
        .iter()
        // The benchmark's own gate creates.
        .filter(|(k, _)| !k.starts_with("create releasegates"))
        .map(|(k, v)| v - before.body_bytes.get(k).copied().unwrap_or(0.0))
        .sum();
    json!({
        "gates": gates,
        "requestsPerGate": r2(total / n),
        "writesPerGate": r2(writes / n),
        "requestBodyBytesPerGate": r2(bytes / n),
        "errorAnswers": errors,
        "byKindPerGate": by_kind,
    })
}

async fn client(env: &ClusterEnv) -> anyhow::Result<Client> {
    let kubeconfig = Kubeconfig::read_from(&env.kubeconfig)?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

async fn install_crds(client: &Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let pp = PatchParams::apply(MANAGER).force();
    for crd in releasepassport::api::all_crds() {
        let name = crd.metadata.name.clone().context("CRD name")?;
        crds.patch(&name, &pp, &Patch::Apply(&crd))
            .await
            .with_context(|| format!("applying CRD {name}"))?;
        let mut established = false;
        for _ in 0..200 {
            let crd = crds.get(&name).await?;
            established = crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !established {
            bail!("CRD {name} never became Established");
        }
    }
    Ok(())
}

async fn create_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating namespace {name}")),
    }
}

fn load_yaml<T: serde::de::DeserializeOwned>(relative: &str) -> anyhow::Result<T> {
    let path = repo_root().join(relative);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    serde_saphyr::from_str(&text).with_context(|| path.display().to_string())
}

/// `examples/policy.yaml` reading its Argo CD and Prometheus facts from
/// evidence pushed into the gate under `ci-argocd` and `ci-prometheus`, and
/// its incident and change facts under `ingest`: pushed evidence may not
/// carry the name of a connector the operator pulls (the CRD refuses it).
fn pushed_policy() -> anyhow::Result<Policy> {
    let mut policy: Policy = load_yaml("examples/policy.yaml")?;
    let pushed = |rule: &mut releasepassport::api::PolicyRule| {
        if matches!(rule.connector.as_str(), "argocd" | "prometheus") {
            rule.connector = format!("ci-{}", rule.connector);
        }
        if matches!(rule.connector.as_str(), "pagerduty" | "jira") {
            rule.connector = "ingest".into();
        }
    };
    policy.spec.rules.iter_mut().for_each(pushed);
    if let Some(post) = policy.spec.post_deploy.as_mut() {
        post.rules.iter_mut().for_each(pushed);
    }
    Ok(policy)
}

/// The example gate, with its evidence inside (no ConnectorScope), named `name`.
fn gate(template: &ReleaseGate, ns: &str, name: &str) -> anyhow::Result<ReleaseGate> {
    let mut gate = template.clone();
    gate.metadata.name = Some(name.into());
    gate.metadata.namespace = Some(ns.into());
    gate.spec.connector_scopes = Vec::new();
    let observed = jiff::Timestamp::now();
    gate.spec.evidence = serde_json::from_value::<Vec<EvidenceDocument>>(json!([
        {"connector": "ci-argocd", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "sync_status", "value": "Synced"}]},
        {"connector": "ci-prometheus", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "error_rate", "value": "0.4%"}]},
        {"connector": "ingest", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "active_sev1_incidents", "value": 0}, {"name": "change_approval_linked", "value": true}]}
    ]))?;
    Ok(gate)
}

/// Does the status describe a passport for the gate's current generation?
fn passport_ready(gate: &ReleaseGate) -> bool {
    let Some(status) = gate.status.as_ref() else {
        return false;
    };
    status.passport_name.is_some()
        && status.conditions.iter().any(|c| {
            c.type_ == "Ready"
                && c.status == "True"
                && c.observed_generation == gate.metadata.generation
        })
}

// ------------------------------------------------------------------ tracker

#[derive(Default, Clone, Copy)]
struct Times {
    sent: Option<Instant>,
    returned: Option<Instant>,
    ready: Option<Instant>,
}

/// What the watch saw, per gate.
#[derive(Default)]
struct Tracker {
    gates: Mutex<HashMap<String, Times>>,
    ready: AtomicUsize,
    watch_errors: AtomicUsize,
    /// Gates evaluated at or after `since` (the no-change phase).
    since: Mutex<Option<jiff::Timestamp>>,
    evaluated_since: Mutex<std::collections::HashSet<String>>,
}

impl Tracker {
    fn sent(&self, name: &str) {
        let mut gates = self.gates.lock().expect("tracker lock");
        gates.entry(name.to_string()).or_default().sent = Some(Instant::now());
    }
    fn returned(&self, name: &str) {
        let mut gates = self.gates.lock().expect("tracker lock");
        gates.entry(name.to_string()).or_default().returned = Some(Instant::now());
    }
    fn observe(&self, gate: &ReleaseGate) {
        if !passport_ready(gate) {
            return;
        }
        let since = *self.since.lock().expect("tracker lock");
        if let Some(since) = since
            && gate
                .status
                .as_ref()
                .and_then(|s| s.evaluated_at)
                .is_some_and(|t| t >= since)
        {
            self.evaluated_since
                .lock()
                .expect("tracker lock")
                .insert(gate.name_any());
        }
        let now = Instant::now();
        let mut gates = self.gates.lock().expect("tracker lock");
        let times = gates.entry(gate.name_any()).or_default();
        if times.ready.is_none() {
            times.ready = Some(now);
            self.ready.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn times(&self, names: &[String]) -> Vec<Times> {
        let gates = self.gates.lock().expect("tracker lock");
        names
            .iter()
            .map(|n| gates.get(n).copied().unwrap_or_default())
            .collect()
    }
}

/// Watches the namespace's gates; resolves once the initial list is done.
async fn start_watch(
    client: &Client,
    ns: &str,
    tracker: Arc<Tracker>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let api: Api<ReleaseGate> = Api::namespaced(client.clone(), ns);
    let (init_tx, init_rx) = tokio::sync::oneshot::channel();
    let handle = tokio::spawn(async move {
        let mut init_tx = Some(init_tx);
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        loop {
            match stream.next().await {
                Some(Ok(watcher::Event::Apply(g) | watcher::Event::InitApply(g))) => {
                    tracker.observe(&g)
                }
                Some(Ok(watcher::Event::InitDone)) => {
                    if let Some(tx) = init_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracker.watch_errors.fetch_add(1, Ordering::SeqCst);
                    eprintln!("watch error (retrying): {e}");
                }
                None => return,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), init_rx)
        .await
        .context("the ReleaseGate watch did not start within 30 s")?
        .ok();
    Ok(handle)
}

// ------------------------------------------------------------------ memory

/// Samples the controller's VmRSS in the background and keeps the maximum
/// since the last reset.
struct RssSampler {
    max_kib: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let max_kib = Arc::new(AtomicU64::new(0));
        let max = max_kib.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Some((rss, _)) = rss_kib(pid) {
                    max.fetch_max(rss, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self { max_kib, task }
    }
    /// The maximum since the last call.
    fn take_max(&self) -> u64 {
        self.max_kib.swap(0, Ordering::SeqCst)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone, Debug, serde::Serialize)]
struct RssPoint {
    phase: String,
    passports: usize,
    gates: usize,
    steady_mib: f64,
    max_mib: f64,
    hwm_mib: f64,
    samples: usize,
}

/// Samples VmRSS once a second until five consecutive samples are within
/// 1 MiB of each other (or `limit`); returns (median of the last five, samples).
async fn steady_rss(pid: u32, limit: Duration) -> anyhow::Result<(u64, usize)> {
    let start = Instant::now();
    let mut samples: Vec<u64> = Vec::new();
    loop {
        let (rss, _) = rss_kib(pid).context("the controller process is gone")?;
        samples.push(rss);
        if samples.len() >= 5 {
            let last = &samples[samples.len() - 5..];
            let (lo, hi) = (
                last.iter().min().copied().unwrap_or(0),
                last.iter().max().copied().unwrap_or(0),
            );
            if hi - lo <= 1024 || start.elapsed() >= limit {
                let mut sorted = last.to_vec();
                sorted.sort_unstable();
                return Ok((sorted[2], samples.len()));
            }
        }
        if samples.len() > 600 {
            bail!("RSS sampling did not stop");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

// ------------------------------------------------------------------ stats

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Clone, Debug, serde::Serialize)]
struct Summary {
    count: usize,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    mean_ms: f64,
}

fn summarize(mut values_ms: Vec<f64>) -> Summary {
    values_ms.sort_by(|a, b| a.total_cmp(b));
    let mean = values_ms.iter().sum::<f64>() / values_ms.len().max(1) as f64;
    let r = |v: f64| (v * 10.0).round() / 10.0;
    Summary {
        count: values_ms.len(),
        p50_ms: r(percentile(&values_ms, 50.0)),
        p95_ms: r(percentile(&values_ms, 95.0)),
        p99_ms: r(percentile(&values_ms, 99.0)),
        max_ms: r(values_ms.last().copied().unwrap_or(f64::NAN)),
        mean_ms: r(mean),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ------------------------------------------------------------------ phases

/// Waits until `tracker.ready` reaches `target`; false when the wait ran out.
async fn wait_ready(tracker: &Tracker, target: usize, limit: Duration, what: &str) -> bool {
    let start = Instant::now();
    let mut last_print = Instant::now();
    while tracker.ready.load(Ordering::SeqCst) < target {
        if start.elapsed() >= limit {
            eprintln!(
                "gave up waiting for {what}: {} of {target} gates ready after {:.0} s",
                tracker.ready.load(Ordering::SeqCst),
                start.elapsed().as_secs_f64()
            );
            return false;
        }
        if last_print.elapsed() >= Duration::from_secs(10) {
            eprintln!(
                "  waiting for {what}: {} of {target} gates ready",
                tracker.ready.load(Ordering::SeqCst)
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// A re-evaluation of every gate in `ns` that changes nothing (a namespace
/// label other than the enforce label re-evaluates its gates): what the
/// apiserver served for it, per gate.
async fn no_change_phase(
    client: &Client,
    env: &ClusterEnv,
    ns: &str,
    gates: usize,
    tracker: &Tracker,
    admin_port: Option<u16>,
    budget: Budget,
) -> anyhow::Result<serde_json::Value> {
    // Let the last evaluations' writes land first.
    tokio::time::sleep(budget.cap(Duration::from_secs(3))).await;
    let stats_before = reconcile_stats(admin_port).await;
    let before = apiserver_counts(env).context("reading the apiserver's /metrics")?;
    // Status times have a resolution of a second: start on a fresh one.
    let since = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    *tracker.since.lock().expect("tracker lock") = Some(since);
    let start = Instant::now();
    Api::<Namespace>::all(client.clone())
        .patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"releasepassport.io/bench-touched": since.as_second().to_string()}}})),
        )
        .await
        .context("labelling the benchmark's namespace")?;
    let limit = budget.cap(Duration::from_secs(120));
    loop {
        let done = tracker.evaluated_since.lock().expect("tracker lock").len();
        if done >= gates {
            break;
        }
        if start.elapsed() >= limit {
            bail!("only {done} of {gates} gates were evaluated again within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    // Whatever else the evaluations write has time to arrive.
    tokio::time::sleep(budget.cap(Duration::from_secs(3))).await;
    let after = apiserver_counts(env).context("reading the apiserver's /metrics")?;
    let stats_after = reconcile_stats(admin_port).await;
    let mut doc = per_gate(&before, &after, gates, &[]);
    doc["seconds"] = json!((seconds * 10.0).round() / 10.0);
    if let (Some(b), Some(a)) = (stats_before, stats_after) {
        doc["reconciles"] = json!(a.count - b.count);
        doc["passportsWritten"] = json!(a.passports_written - b.passports_written);
    }
    Ok(doc)
}

/// A new controller process over everything the run created: its memory
/// while it lists every gate and evaluates each once more (the restart of
/// an operator with a full fleet), until it made `gates` reconciles.
async fn restart_phase(
    args: &Args,
    env: &ClusterEnv,
    gates: usize,
    budget: Budget,
) -> anyhow::Result<RssPoint> {
    let lease = format!("rp-bench-restart-{}", std::process::id());
    let mut controller = ControllerProcess::start(&args.binary, env, &lease, &args.controller_arg)?;
    let pid = controller.pid();
    let sampler = RssSampler::start(pid);
    let start = Instant::now();
    let limit = budget.cap(Duration::from_secs(600));
    let mut port = None;
    loop {
        if controller.exited() {
            bail!(
                "the restarted controller exited:\n{}",
                controller.log_text()
            );
        }
        if port.is_none() && controller.log_text().contains("controller running") {
            port = listening_port(pid);
        }
        let reconciles = reconcile_stats(port).await.map_or(0.0, |s| s.count);
        if reconciles >= gates as f64 {
            break;
        }
        if start.elapsed() >= limit {
            bail!("{reconciles} of {gates} gates evaluated after the restart within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let relist_seconds = start.elapsed().as_secs_f64();
    let max = sampler.take_max();
    let (steady, samples) = steady_rss(pid, budget.cap(Duration::from_secs(60))).await?;
    eprintln!("restart: {gates} gates evaluated again in {relist_seconds:.1} s");
    let point = RssPoint {
        phase: format!("restart: relist and evaluate ({relist_seconds:.0} s)"),
        passports: 0,
        gates,
        steady_mib: mib(steady),
        max_mib: mib(max.max(steady)),
        hwm_mib: mib(rss_kib(pid).map(|r| r.1).unwrap_or(0)),
        samples,
    };
    controller.stop();
    Ok(point)
}

/// Creates `names` as gates, `concurrency` at a time.
async fn create_gates(
    client: &Client,
    ns: &str,
    template: &ReleaseGate,
    names: Vec<String>,
    concurrency: usize,
    tracker: &Arc<Tracker>,
    stop_at: Instant,
) -> anyhow::Result<Vec<String>> {
    let api: Api<ReleaseGate> = Api::namespaced(client.clone(), ns);
    let total = names.len();
    let done = AtomicUsize::new(0);
    let created = futures::stream::iter(names)
        .map(|name| {
            let api = api.clone();
            let tracker = tracker.clone();
            let done = &done;
            async move {
                if Instant::now() >= stop_at {
                    return Ok(None);
                }
                let g = gate(template, ns, &name)?;
                tracker.sent(&name);
                api.create(&PostParams::default(), &g)
                    .await
                    .with_context(|| format!("creating gate {name}"))?;
                tracker.returned(&name);
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                if n.is_multiple_of(250) || n == total {
                    eprintln!(
                        "  created {n}/{total} gates, {} ready",
                        tracker.ready.load(Ordering::SeqCst)
                    );
                }
                Ok::<_, anyhow::Error>(Some(name))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<Option<String>>>()
        .await?;
    Ok(created.into_iter().flatten().collect())
}

/// Creates `count` Passport objects directly: copies of a real passport,
/// labelled like the controller's, spread over the namespace's gates, and
/// without an owner reference (so the controller's retention leaves them).
async fn create_passports(
    client: &Client,
    ns: &str,
    count: usize,
    first_index: usize,
    gate_names: &[String],
    concurrency: usize,
    budget: Budget,
) -> anyhow::Result<()> {
    let api: Api<Passport> = Api::namespaced(client.clone(), ns);
    let sample = api
        .list(&ListParams::default().limit(1))
        .await?
        .items
        .into_iter()
        .next()
        .context("no passport to copy")?;
    let labels = sample.metadata.labels.clone().unwrap_or_default();
    let done = AtomicUsize::new(0);
    futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            let mut labels = labels.clone();
            let spec = sample.spec.clone();
            let gate_name = &gate_names[(first_index + i) % gate_names.len()];
            let done = &done;
            async move {
                if budget.left().is_zero() {
                    bail!("time budget exhausted while creating passports");
                }
                labels.insert(GATE_LABEL.to_string(), gate_name.clone());
                let name = format!("{gate_name}-d{:06}", first_index + i);
                let mut p = Passport::new(&name, spec);
                p.metadata.namespace = Some(ns.to_string());
                p.metadata.labels = Some(labels);
                api.create(&PostParams::default(), &p)
                    .await
                    .with_context(|| format!("creating passport {name}"))?;
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                if n.is_multiple_of(1000) || n == count {
                    eprintln!("  created {n}/{count} passports directly");
                }
                Ok(())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

async fn count_passports(client: &Client, ns: &str) -> anyhow::Result<usize> {
    let api: Api<Passport> = Api::namespaced(client.clone(), ns);
    let mut total = 0;
    let mut lp = ListParams::default().limit(2000);
    for _ in 0..100 {
        let page = api.list_metadata(&lp).await?;
        total += page.items.len();
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => lp = lp.continue_token(&token),
            None => return Ok(total),
        }
    }
    bail!("too many pages of passports")
}

/// Deletes the benchmark's objects one by one, a few at a time (one
/// delete-collection of thousands of objects can outlast the apiserver's
/// request timeout on a small machine).
async fn cleanup(client: &Client, ns: &str) {
    eprintln!("deleting the benchmark's objects in {ns}");
    delete_all(Api::<ReleaseGate>::namespaced(client.clone(), ns), "gates").await;
    delete_all(Api::<Passport>::namespaced(client.clone(), ns), "passports").await;
    delete_all(Api::<Policy>::namespaced(client.clone(), ns), "policies").await;
}

async fn delete_all<K>(api: Api<K>, what: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    for _ in 0..5 {
        let names: Vec<String> = match api.list_metadata(&ListParams::default()).await {
            Ok(list) => list.items.iter().map(|m| m.name_any()).collect(),
            Err(e) => {
                eprintln!("listing {what} to delete: {e}");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        if names.is_empty() {
            return;
        }
        let failed = futures::stream::iter(names)
            .map(|name| {
                let api = api.clone();
                async move { api.delete(&name, &DeleteParams::default()).await.is_err() }
            })
            .buffer_unordered(4)
            .filter(|failed| futures::future::ready(*failed))
            .count()
            .await;
        if failed == 0 {
            return;
        }
    }
    eprintln!("some {what} could not be deleted; delete them with kubectl");
}

// ------------------------------------------------------------------ main

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    if args.gates == 0 || args.rate.is_nan() || args.rate <= 0.0 {
        bail!("--gates and --rate must be positive");
    }
    let budget = Budget {
        end: Instant::now() + Duration::from_secs_f64(args.max_minutes * 60.0),
    };

    let plane = ControlPlane {
        own: args
            .own_control_plane
            .clone()
            .map(|dir| (dir, args.own_etcd_port, args.own_apiserver_port)),
    };
    let env = plane.up()?;
    let result = run(&args, &env, budget).await;
    plane.down();
    result
}

async fn run(args: &Args, env: &ClusterEnv, budget: Budget) -> anyhow::Result<()> {
    let client = client(env).await?;
    install_crds(&client).await?;
    create_namespace(&client, OPERATOR_NAMESPACE).await?;

    // What else is on the shared control plane: every controller reconciles
    // every namespace.
    let cluster_dir = env
        .kubeconfig
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let (system, others) = processes(&cluster_dir);
    for (pid, cmd) in &others {
        eprintln!("note: another controller is running (pid {pid}): {cmd}");
    }
    let cluster_gates = Api::<ReleaseGate>::all(client.clone())
        .list_metadata(&ListParams::default())
        .await?
        .items
        .len();
    let cluster_passports = Api::<Passport>::all(client.clone())
        .list_metadata(&ListParams::default())
        .await?
        .items
        .len();

    let lease = format!("rp-bench-{}", std::process::id());
    let mut controller = ControllerProcess::start(&args.binary, env, &lease, &args.controller_arg)?;
    let pid = controller.pid();
    eprintln!(
        "controller pid {pid}, log {}; {cluster_gates} gates and {cluster_passports} passports already on the control plane",
        controller.log.display()
    );
    let started = Instant::now();
    loop {
        if controller.log_text().contains("controller running") {
            break;
        }
        if controller.exited() {
            bail!("the controller exited:\n{}", controller.log_text());
        }
        if started.elapsed() > budget.cap(Duration::from_secs(60)) {
            bail!(
                "the controller did not start within 60 s:\n{}",
                controller.log_text()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let startup = started.elapsed();
    let admin_port = listening_port(pid);
    let sampler = RssSampler::start(pid);
    let cpu = |p: Option<&u32>| p.and_then(|p| cpu_seconds(*p));
    let api_pid = system.get("kube-apiserver");
    let etcd_pid = system.get("etcd");

    // Idle: the controller has evaluated what was already there.
    let (idle, idle_samples) = steady_rss(pid, budget.cap(Duration::from_secs(30))).await?;
    let mut rss = vec![RssPoint {
        phase: "idle after startup".into(),
        passports: 0,
        gates: 0,
        steady_mib: mib(idle),
        max_mib: mib(sampler.take_max()),
        hwm_mib: mib(rss_kib(pid).map(|r| r.1).unwrap_or(0)),
        samples: idle_samples,
    }];

    // The benchmark's namespace and policy.
    let ns = format!("rp-bench-{:x}", {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default()
            & 0xff_ffff
    });
    create_namespace(&client, &ns).await?;
    let mut policy = pushed_policy()?;
    policy.metadata.namespace = Some(ns.clone());
    Api::<Policy>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &policy)
        .await
        .context("creating the policy")?;
    let template: ReleaseGate = load_yaml("examples/releasegate.yaml")?;
    let tracker = Arc::new(Tracker::default());
    let watch = start_watch(&client, &ns, tracker.clone()).await?;
    eprintln!("namespace {ns}");

    // ---- Latency: N gates at a steady rate.
    eprintln!(
        "latency: {} gates at {}/s (progress every 50)",
        args.gates, args.rate
    );
    let before = reconcile_stats(admin_port).await;
    let cpu_before = (cpu(Some(&pid)), cpu(api_pid), cpu(etcd_pid));
    let counts_before = apiserver_counts(env);
    let names: Vec<String> = (0..args.gates).map(|i| format!("lat-{i:05}")).collect();
    let api: Api<ReleaseGate> = Api::namespaced(client.clone(), &ns);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut creates = tokio::task::JoinSet::new();
    let phase_start = Instant::now();
    for (i, name) in names.iter().enumerate() {
        tick.tick().await;
        if budget.left().is_zero() {
            bail!("time budget exhausted in the latency phase");
        }
        let g = gate(&template, &ns, name)?;
        let (api, t, name) = (api.clone(), tracker.clone(), name.clone());
        creates.spawn(async move {
            t.sent(&name);
            let result = api.create(&PostParams::default(), &g).await;
            t.returned(&name);
            result
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("creating gate {name}: {e:?}"))
        });
        if (i + 1).is_multiple_of(50) {
            eprintln!(
                "  created {}/{}, {} ready",
                i + 1,
                args.gates,
                tracker.ready.load(Ordering::SeqCst)
            );
        }
    }
    let last_sent = phase_start.elapsed();
    while let Some(result) = creates.join_next().await {
        result??;
    }
    let all_ready = wait_ready(
        &tracker,
        args.gates,
        budget.cap(Duration::from_secs(120)),
        "the latency phase",
    )
    .await;
    let after = reconcile_stats(admin_port).await;
    let cpu_after = (cpu(Some(&pid)), cpu(api_pid), cpu(etcd_pid));
    let counts_after = apiserver_counts(env);
    let latency_requests = match (&counts_before, &counts_after) {
        (Some(b), Some(a)) => Some(per_gate(
            b,
            a,
            args.gates,
            &[("POST releasegates ", args.gates as f64)],
        )),
        _ => None,
    };
    let times = tracker.times(&names);
    let from_returned: Vec<f64> = times
        .iter()
        .filter_map(|t| Some(ms(t.ready?.saturating_duration_since(t.returned?))))
        .collect();
    let from_sent: Vec<f64> = times
        .iter()
        .filter_map(|t| Some(ms(t.ready?.saturating_duration_since(t.sent?))))
        .collect();
    let create_call: Vec<f64> = times
        .iter()
        .filter_map(|t| Some(ms(t.returned?.saturating_duration_since(t.sent?))))
        .collect();
    let ready_before_return = times
        .iter()
        .filter(|t| matches!((t.ready, t.returned), (Some(r), Some(x)) if r < x))
        .count();
    let first_sent = times.iter().filter_map(|t| t.sent).min();
    let last_ready = times.iter().filter_map(|t| t.ready).max();
    let span = match (first_sent, last_ready) {
        (Some(a), Some(b)) => b.saturating_duration_since(a),
        _ => Duration::ZERO,
    };
    let throughput = from_returned.len() as f64 / span.as_secs_f64().max(1e-9);
    let offered_rate = (args.gates.saturating_sub(1)) as f64 / last_sent.as_secs_f64().max(1e-9);
    let lat_returned = summarize(from_returned);
    let lat_sent = summarize(from_sent);
    let lat_create = summarize(create_call);
    let reconciles = match (before, after) {
        (Some(b), Some(a)) => Some(json!({
            "reconciles": a.count - b.count,
            "mean_reconcile_ms": if a.count > b.count { ((a.sum_seconds - b.sum_seconds) / (a.count - b.count) * 1000.0 * 10.0).round() / 10.0 } else { f64::NAN },
            "errors": a.errors - b.errors,
            "passports_written": a.passports_written - b.passports_written,
        })),
        _ => None,
    };
    let cpu_delta = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(((b - a) * 100.0).round() / 100.0),
        _ => None,
    };
    let per_gate_cpu =
        |v: Option<f64>| v.map(|v| (v / args.gates.max(1) as f64 * 1e4).round() / 10.0);
    let latency_cpu = json!({
        "wall_seconds": (phase_start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "apiserver_cpu_ms_per_gate": per_gate_cpu(cpu_delta(cpu_before.1, cpu_after.1)),
        "controller_cpu_ms_per_gate": per_gate_cpu(cpu_delta(cpu_before.0, cpu_after.0)),
        "controller_cpu_seconds": cpu_delta(cpu_before.0, cpu_after.0),
        "apiserver_cpu_seconds": cpu_delta(cpu_before.1, cpu_after.1),
        "etcd_cpu_seconds": cpu_delta(cpu_before.2, cpu_after.2),
    });

    let (after_latency, n) = steady_rss(pid, budget.cap(Duration::from_secs(30))).await?;
    let passports_now = count_passports(&client, &ns).await?;
    rss.push(RssPoint {
        phase: "after the latency phase".into(),
        passports: passports_now,
        gates: args.gates,
        steady_mib: mib(after_latency),
        max_mib: mib(sampler.take_max()),
        hwm_mib: mib(rss_kib(pid).map(|r| r.1).unwrap_or(0)),
        samples: n,
    });

    // ---- A re-evaluation that changes nothing.
    eprintln!("no-change re-evaluation of the {} gates", args.gates);
    let no_change = no_change_phase(&client, env, &ns, args.gates, &tracker, admin_port, budget)
        .await
        .unwrap_or_else(|e| json!({"error": format!("{e:#}")}));

    // ---- Memory at passport totals.
    let mut gate_names = names.clone();
    let mut fills = Vec::new();
    let mut direct_passports = 0usize;
    let memory: anyhow::Result<()> = async {
        for &target in &args.rss_at {
            let current = count_passports(&client, &ns).await?;
            let missing = target.saturating_sub(current);
            // How many of the missing passports come from new gates.
            let fill_gates = match args.fill {
                Fill::Gates => missing,
                Fill::Passports => 0,
                Fill::Auto => missing
                    .min(args.max_fill_gates.saturating_sub(gate_names.len() - args.gates)),
            };
            let fill_start = Instant::now();
            let mut made_gates = 0;
            if fill_gates > 0 {
                eprintln!("memory at {target}: creating {fill_gates} gates");
                // Keep four minutes for what follows; the rest is made directly.
                let stop_at = Instant::now() + budget.left().saturating_sub(Duration::from_secs(240));
                let more: Vec<String> = (gate_names.len()..gate_names.len() + fill_gates)
                    .map(|i| format!("mem-{i:05}"))
                    .collect();
                let created = create_gates(
                    &client,
                    &ns,
                    &template,
                    more,
                    args.concurrency,
                    &tracker,
                    stop_at,
                )
                .await?;
                made_gates = created.len();
                gate_names.extend(created);
                if !wait_ready(&tracker, gate_names.len(), budget.left(), "the passports").await {
                    bail!("the controller did not catch up within the time budget");
                }
            }
            let gate_seconds = fill_start.elapsed().as_secs_f64();
            let direct = target.saturating_sub(count_passports(&client, &ns).await?);
            if direct > 0 {
                eprintln!("memory at {target}: creating {direct} passports directly");
                create_passports(
                    &client,
                    &ns,
                    direct,
                    direct_passports,
                    &gate_names,
                    args.concurrency,
                    budget,
                )
                .await?;
                direct_passports += direct;
            }
            let secs = fill_start.elapsed().as_secs_f64();
            fills.push(json!({
                "target": target,
                "gatesCreated": made_gates,
                "gateSeconds": (gate_seconds * 10.0).round() / 10.0,
                "gatesPerSecond": if made_gates > 0 { (made_gates as f64 / gate_seconds * 10.0).round() / 10.0 } else { f64::NAN },
                "passportsCreatedDirectly": direct,
                "passportSeconds": ((secs - gate_seconds) * 10.0).round() / 10.0,
            }));
            let (steady, n) = steady_rss(pid, budget.cap(Duration::from_secs(60))).await?;
            let passports = count_passports(&client, &ns).await?;
            rss.push(RssPoint {
                phase: format!("{target} passports"),
                passports,
                gates: gate_names.len(),
                steady_mib: mib(steady),
                max_mib: mib(sampler.take_max()),
                hwm_mib: mib(rss_kib(pid).map(|r| r.1).unwrap_or(0)),
                samples: n,
            });
        }
        Ok(())
    }
    .await;
    let final_stats = reconcile_stats(admin_port).await;
    let controller_log_lines = controller.log_text().lines().count();
    let warnings = controller
        .log_text()
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .count();
    watch.abort();
    drop(sampler);
    controller.stop();
    if args.restart && memory.is_ok() {
        match restart_phase(args, env, gate_names.len(), budget).await {
            Ok(point) => rss.push(point),
            Err(e) => eprintln!("the restart phase failed: {e:#}"),
        }
    }
    if !args.keep {
        cleanup(&client, &ns).await;
    }

    // ---- Report.
    println!();
    println!(
        "Controller benchmark: kube-apiserver {} / etcd {} (local), {} CPUs",
        env.kube_version,
        env.etcd_version,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "controller startup to `controller running`: {:.0} ms; {cluster_gates} gates and {cluster_passports} passports from other namespaces on the control plane",
        ms(startup)
    );
    println!();
    println!(
        "Latency, ReleaseGate create → status with passportName and Ready=True ({} gates, offered {:.1}/s, {} ready{})",
        args.gates,
        offered_rate,
        lat_returned.count,
        if all_ready { "" } else { ", INCOMPLETE" }
    );
    println!();
    println!("| measured from | p50 ms | p95 ms | p99 ms | max ms | mean ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (label, s) in [
        ("create call returned", &lat_returned),
        ("create call sent", &lat_sent),
        ("(create call itself)", &lat_create),
    ] {
        println!(
            "| {label} | {} | {} | {} | {} | {} |",
            s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms, s.mean_ms
        );
    }
    println!();
    println!(
        "throughput {throughput:.1} gates/s (first create sent → last Ready); {ready_before_return} gates were Ready before their create call returned"
    );
    if let Some(r) = &reconciles {
        println!("controller during the latency phase: {r}");
    }
    println!("CPU during the latency phase: {latency_cpu}");
    if let Some(r) = &latency_requests {
        println!(
            "apiserver requests per gate during the latency phase (the benchmark's creates left out): {r}"
        );
    }
    println!("a re-evaluation that changes nothing, per gate: {no_change}");
    println!();
    println!("Controller memory (VmRSS of the controller process)");
    println!();
    println!("| phase | passports in bench namespace | gates | steady MiB | max MiB | VmHWM MiB |");
    println!("|---|---:|---:|---:|---:|---:|");
    for p in &rss {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            p.phase, p.passports, p.gates, p.steady_mib, p.max_mib, p.hwm_mib
        );
    }
    println!();
    for f in &fills {
        println!("fill: {f}");
    }
    println!(
        "controller log: {controller_log_lines} lines, {warnings} warnings/errors ({})",
        controller.log.display()
    );
    if let Some(s) = final_stats {
        println!(
            "controller totals: {} reconciles, {} errors, mean reconcile {:.1} ms, {} passports written",
            s.count,
            s.errors,
            s.sum_seconds / s.count.max(1.0) * 1000.0,
            s.passports_written
        );
    }
    if !others.is_empty() {
        println!(
            "note: {} other controller process(es) were running: they reconcile these gates too",
            others.len()
        );
    }
    if let Err(e) = &memory {
        println!("the memory phases stopped early: {e:#}");
    }
    if args.json {
        let doc = json!({
            "kubeVersion": env.kube_version,
            "etcdVersion": env.etcd_version,
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "namespace": ns,
            "otherGates": cluster_gates,
            "otherPassports": cluster_passports,
            "otherControllers": others.len(),
            "startupMs": (ms(startup) * 10.0).round() / 10.0,
            "latency": {
                "gates": args.gates,
                "rate": args.rate,
                "offeredRate": (offered_rate * 100.0).round() / 100.0,
                "complete": all_ready,
                "fromCreateReturned": lat_returned,
                "fromCreateSent": lat_sent,
                "createCall": lat_create,
                "readyBeforeCreateReturned": ready_before_return,
                "throughputPerSecond": (throughput * 100.0).round() / 100.0,
                "controller": reconciles,
                "cpu": latency_cpu,
                "apiserver": latency_requests,
            },
            "noChangeReevaluation": no_change,
            "rss": rss,
            "fills": fills,
            "watchErrors": tracker.watch_errors.load(Ordering::SeqCst),
            "controllerWarnings": warnings,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    memory
}
