//! `releasepassport report graduation|metrics`: the shadow → enforce
//! graduation report and release metrics, read from the cluster's gates and
//! passports and computed by `crate::insights`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::api::{Passport, ReleaseGate};
use crate::insights::{self, DurationStats, GraduationReport, MetricsSummary, ReleaseMetrics};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A readable report.
    Text,
    /// One JSON document (the same one the console shows).
    Json,
}

/// Reports over the cluster's ReleaseGates and Passports.
#[derive(Debug, Args)]
#[command(after_help = concat!(
    "Examples:\n",
    "  releasepassport report graduation --namespace payments\n",
    "  releasepassport report metrics --namespace payments --window 30d --output json\n",
    "\n",
    "Both read the ReleaseGates and Passports of --namespace (default: every namespace)."
))]
pub struct ReportArgs {
    #[command(subcommand)]
    pub report: Report,
}

#[derive(Debug, Subcommand)]
pub enum Report {
    /// For each shadow-mode gate: the decisions enforce mode would have denied, and whether it is ready to enforce.
    Graduation(GraduationArgs),
    /// Release metrics: deployments, lead time, change failure rate, time to restore, hold reasons, approval wait, evidence and connectors.
    Metrics(MetricsArgs),
}

/// Where to read from.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Kubeconfig to use instead of the in-cluster configuration or $KUBECONFIG.
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace to report on (default: every namespace; needs cluster-wide list rights).
    #[arg(short = 'n', long, env = "RELEASEPASSPORT_NAMESPACE")]
    pub namespace: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = concat!(
    "Examples:\n",
    "  releasepassport report graduation\n",
    "  releasepassport report graduation --namespace payments\n",
    "  releasepassport report graduation -n payments --output json > graduation.json\n",
    "\n",
    "A shadow gate is ready to enforce when it has at least 3 shadow passports, enforce mode\n",
    "would admit its latest, and none of its last 10 would have been denied without a later\n",
    "passport allowing the same image. Enforce mode denies any decision but ALLOW, and\n",
    "ALLOW_WITH_CANARY unless the target is an Argo Rollout.\n",
    "\n",
    "Exit codes:\n",
    "  0  report written\n",
    "  2  bad input or the cluster cannot be read"
))]
pub struct GraduationArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = ReportFormat::Text)]
    pub output: ReportFormat,
}

#[derive(Debug, Args)]
#[command(after_help = concat!(
    "Examples:\n",
    "  releasepassport report metrics\n",
    "  releasepassport report metrics --namespace payments --window 7d\n",
    "  releasepassport report metrics -n payments --window 90d --output json > metrics.json\n",
    "  releasepassport report metrics -n payments --output csv > scorecards.csv\n",
    "\n",
    "Definitions (docs/metrics.md): a promotion is an image digest reaching a service's\n",
    "environment, at the first passport that allowed it or when the gate saw the workload\n",
    "running it, whichever came first; lead time runs from the gate's\n",
    "spec.artifact.commitTimestamp to the promotion. Passports count by generatedAt; only the\n",
    "passports the operator still retains (--passport-history) are seen.\n",
    "\n",
    "Exit codes:\n",
    "  0  report written\n",
    "  2  bad input (e.g. --window) or the cluster cannot be read"
))]
pub struct MetricsArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Window ending now: a number with a unit, s, m, h, d or w (e.g. 30d, 12h).
    #[arg(long, default_value = "30d", value_parser = parse_window)]
    pub window: jiff::SignedDuration,
    /// Output format: text, json, or csv (the service scorecards, as the
    /// console's /console/metrics.csv).
    #[arg(long, short = 'o', value_enum, default_value_t = MetricsFormat::Text)]
    pub output: MetricsFormat,
}

/// Output of `report metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricsFormat {
    /// A readable report.
    Text,
    /// One JSON document.
    Json,
    /// The service scorecards, one row per namespace/service/environment.
    Csv,
}

/// `30d`, `12h`, `90m`, `3600s`, `2w`.
pub fn parse_window(s: &str) -> Result<jiff::SignedDuration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?}: add a unit: s, m, h, d or w (e.g. 30d)"))?;
    let (number, unit) = s.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{s:?}: expected a number then a unit, e.g. 30d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use s, m, h, d or w")),
    };
    if n <= 0 {
        return Err(format!("{s:?}: the window must be longer than zero"));
    }
    n.checked_mul(seconds)
        .filter(|t| *t <= 3650 * 86_400)
        .map(jiff::SignedDuration::from_secs)
        .ok_or_else(|| format!("{s:?}: at most ten years"))
}

pub fn run(args: &ReportArgs) -> anyhow::Result<i32> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        match &args.report {
            Report::Graduation(a) => graduation(a).await,
            Report::Metrics(a) => metrics(a).await,
        }
    })
}

/// A client from `--kubeconfig`, else `$KUBECONFIG` / in-cluster, and the
/// context's default namespace.
pub(crate) async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<(kube::Client, String)> {
    let config = match kubeconfig {
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
    let namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).context("creating the Kubernetes client")?;
    Ok((client, namespace))
}

/// Gates and passports of a namespace, or of every namespace.
async fn read(c: &ClusterArgs) -> anyhow::Result<(Vec<ReleaseGate>, Vec<Passport>)> {
    let (client, _) = client(c.kubeconfig.as_deref()).await?;
    let (gates, passports): (Api<ReleaseGate>, Api<Passport>) = match &c.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client, ns),
        ),
        None => (Api::all(client.clone()), Api::all(client)),
    };
    let scope = c
        .namespace
        .as_deref()
        .map_or("all namespaces".to_string(), |n| format!("namespace {n}"));
    let gates = gates
        .list(&ListParams::default())
        .await
        .with_context(|| format!("listing ReleaseGates in {scope}"))?
        .items;
    let passports = passports
        .list(&ListParams::default())
        .await
        .with_context(|| format!("listing Passports in {scope}"))?
        .items;
    Ok((gates, passports))
}

async fn graduation(args: &GraduationArgs) -> anyhow::Result<i32> {
    let (gates, passports) = read(&args.cluster).await?;
    let report = insights::graduation(
        &gates.iter().collect::<Vec<_>>(),
        &passports.iter().collect::<Vec<_>>(),
    );
    match args.output {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        ReportFormat::Text => print!("{}", graduation_text(&report)),
    }
    Ok(super::exit::OK)
}

async fn metrics(args: &MetricsArgs) -> anyhow::Result<i32> {
    let (gates, passports) = read(&args.cluster).await?;
    let m = insights::release_metrics(
        &gates.iter().collect::<Vec<_>>(),
        &passports.iter().collect::<Vec<_>>(),
        jiff::Timestamp::now(),
        args.window,
    );
    match args.output {
        MetricsFormat::Json => println!("{}", serde_json::to_string_pretty(&m)?),
        MetricsFormat::Text => print!("{}", metrics_text(&m)),
        MetricsFormat::Csv => print!("{}", insights::scorecards_csv(&m)),
    }
    Ok(super::exit::OK)
}

/// The graduation report as text.
pub fn graduation_text(r: &GraduationReport) -> String {
    let mut out = String::new();
    if r.gates.is_empty() {
        out.push_str("No ReleaseGate in shadow mode.\n");
        return out;
    }
    for g in &r.gates {
        let verdict = if g.ready_to_enforce {
            "READY to enforce"
        } else {
            "NOT READY"
        };
        let _ = writeln!(
            out,
            "{}/{} ({} {}): {verdict}",
            g.namespace, g.gate, g.service, g.environment
        );
        let _ = writeln!(
            out,
            "  {} of {} shadow passports would have been denied in enforce mode",
            g.would_deny_count, g.passports
        );
        let _ = writeln!(out, "  {}", g.reason);
        for d in &g.would_deny {
            let resolved = if d.resolved { " (allowed later)" } else { "" };
            let _ = writeln!(
                out,
                "  - {} {} {} {}{resolved}: {}",
                d.generated_at, d.passport, d.release, d.decision, d.why
            );
            if !d.failing_checks.is_empty() {
                let _ = writeln!(out, "      failing: {}", d.failing_checks.join(", "));
            }
            for a in &d.next_actions {
                let _ = writeln!(out, "      next: {a}");
            }
        }
        out.push('\n');
    }
    out
}

fn seconds(s: Option<f64>) -> String {
    match s {
        None => "-".into(),
        Some(v) => {
            let d = jiff::SignedDuration::from_secs(v.round() as i64);
            format!("{d:#}")
        }
    }
}

fn stats(d: &DurationStats) -> String {
    if d.count == 0 {
        return "-".into();
    }
    format!(
        "p50 {}, p90 {} (n={})",
        seconds(d.p50_seconds),
        seconds(d.p90_seconds),
        d.count
    )
}

fn percent(r: Option<f64>) -> String {
    r.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

fn summary_text(out: &mut String, m: &MetricsSummary) {
    let _ = writeln!(
        out,
        "  deployments          {} ({:.2}/day)",
        m.deployments, m.deployments_per_day
    );
    let _ = writeln!(out, "  lead time            {}", stats(&m.lead_time));
    let _ = writeln!(
        out,
        "  change failure rate  {} ({} of {})",
        percent(m.change_failure_rate),
        m.failed_deployments,
        m.deployments
    );
    let _ = writeln!(
        out,
        "  rollback recommended {} ({} not restored)",
        m.rollback_recommended, m.open_incidents
    );
    let _ = writeln!(out, "  time to restore      {}", stats(&m.time_to_restore));
    let _ = writeln!(out, "  approval wait        {}", stats(&m.approval_wait));
    let _ = writeln!(
        out,
        "  evidence             mean confidence {}, fresh {} ({} of {})",
        m.evidence
            .mean_confidence
            .map_or("-".into(), |c| format!("{c:.1}%")),
        percent(m.evidence.fresh_ratio),
        m.evidence.fresh,
        m.evidence.evidence
    );
    if !m.decisions.is_empty() {
        let d: Vec<String> = m
            .decisions
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(out, "  decisions            {}", d.join(", "));
    }
    if !m.hold_reasons.is_empty() {
        let _ = writeln!(out, "  hold reasons");
        for h in m.hold_reasons.iter().take(10) {
            let _ = writeln!(out, "    {:>5}  {:<24} {}", h.count, h.rule, h.label);
        }
    }
    if !m.connectors.is_empty() {
        let _ = writeln!(out, "  connectors (fresh / stale / missing)");
        for c in &m.connectors {
            let _ = writeln!(
                out,
                "    {:<12} {} / {} / {}  reliability {}",
                c.connector,
                c.fresh,
                c.stale,
                c.missing,
                percent(c.reliability)
            );
        }
    }
}

/// Release metrics as text: the total, then each service and environment.
pub fn metrics_text(m: &ReleaseMetrics) -> String {
    let mut out = String::new();
    let window = if m.window_seconds % 86_400 == 0 {
        format!("{}d", m.window_seconds / 86_400)
    } else {
        format!("{:#}", jiff::SignedDuration::from_secs(m.window_seconds))
    };
    let _ = writeln!(out, "Release metrics over {window} up to {}", m.now);
    out.push('\n');
    let _ = writeln!(out, "All services and environments ({})", m.groups.len());
    summary_text(&mut out, &m.total);
    for g in &m.groups {
        out.push('\n');
        let _ = writeln!(out, "{}/{} {}", g.namespace, g.service, g.environment);
        summary_text(&mut out, &g.metrics);
    }
    out
}

/// Fails when a name is empty (clap accepts `--namespace ""`).
pub(crate) fn non_empty(flag: &str, value: Option<&str>) -> anyhow::Result<()> {
    if value.is_some_and(|v| v.trim().is_empty()) {
        bail!("{flag}: must not be empty");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_with_units_and_reject_nonsense() {
        assert_eq!(
            parse_window("30d"),
            Ok(jiff::SignedDuration::from_hours(720))
        );
        assert_eq!(
            parse_window("12h"),
            Ok(jiff::SignedDuration::from_hours(12))
        );
        assert_eq!(
            parse_window("2w"),
            Ok(jiff::SignedDuration::from_hours(336))
        );
        assert!(parse_window("30").is_err());
        assert!(parse_window("0d").is_err());
        assert!(parse_window("d").is_err());
        assert!(parse_window("5y").is_err());
        assert!(parse_window("99999999999999d").is_err());
    }
}
