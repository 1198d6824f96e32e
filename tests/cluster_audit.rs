//! The audit trail on the real control plane with the real controller: a
//! gate going HOLD → (approval, waiver, evidence fixed) → ALLOW records its
//! history and Events once, bounded, and a controller restart adds nothing.

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use releasepassport::api::*;
use releasepassport::insights;
use serde_json::json;
use support::controller::{self as ctl, ControllerProcess, eventually};

const WAIT: Duration = Duration::from_secs(60);
const GATE: &str = "payment-api-production";

/// `promtool check metrics` on `text`: (success, output). promtool comes
/// with the Debian `prometheus` package (`bash hack/install-deps.sh prometheus`).
fn promtool_check(text: &str) -> (bool, String) {
    use std::io::Write;
    let binary = std::env::var_os("PROMTOOL_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/usr/bin/promtool"));
    assert!(
        binary.exists(),
        "{} not found: install it with `bash hack/install-deps.sh prometheus` (or `make deps`), or set PROMTOOL_BIN",
        binary.display()
    );
    let mut child = Command::new(binary)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("writing to promtool");
    let out = child.wait_with_output().expect("promtool");
    let mut report = String::from_utf8_lossy(&out.stdout).into_owned();
    report.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), report)
}

/// Runs the CLI against the local control plane.
fn cli_output(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_releasepassport"))
        .args(args)
        .env("KUBECONFIG", &support::cluster().kubeconfig)
        .output()
        .expect("running releasepassport")
}

/// Runs the CLI and returns its standard output, failing on a non-zero exit.
fn cli(args: &[&str]) -> String {
    let out = cli_output(args);
    assert!(
        out.status.success(),
        "releasepassport {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_new_command_has_help_with_examples() {
    for command in [
        &["audit", "--help"][..],
        &["report", "--help"],
        &["report", "graduation", "--help"],
        &["report", "metrics", "--help"],
        &["approve", "--help"],
        &["waive", "--help"],
    ] {
        let out = cli_output(command);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{command:?}");
        assert!(
            help.contains("Examples:\n  releasepassport "),
            "{command:?}: {help}"
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The real controller, with its admin server (/metrics) on `port`.
fn start_controller(identity: &str, port: u16) -> ControllerProcess {
    let env = support::cluster();
    let log = std::env::temp_dir().join(format!(
        "rp-controller-audit-{identity}-{}.log",
        std::process::id()
    ));
    let file = std::fs::File::create(&log).expect("controller log file");
    let child = Command::new(env!("CARGO_BIN_EXE_releasepassport"))
        .args([
            "controller",
            "--kubeconfig",
            env.kubeconfig.to_str().expect("kubeconfig path"),
            "--namespace",
            ctl::OPERATOR_NAMESPACE,
            "--generate-key",
            "--lease-name",
            &format!("rp-audit-{identity}-{}", std::process::id()),
            "--identity",
            identity,
            "--admin-addr",
            &format!("127.0.0.1:{port}"),
            "--resync-seconds",
            "30",
            "--exit-on-stdin-close",
        ])
        .env("RUST_LOG", "info,kube=warn")
        .stdin(Stdio::piped())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file)
        .spawn()
        .expect("starting releasepassport controller");
    ControllerProcess { child, log }
}

/// The tests of this file run one at a time: each runs its own controller,
/// and two leaders would both publish every Event.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn setup(prefix: &str) -> (Client, String) {
    let client = support::client().await;
    support::install_crds(&client).await;
    ctl::operator_namespace(&client).await;
    let ns = support::namespace(&client, prefix).await;
    Api::<Policy>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &support::ci_policy())
        .await
        .expect("policy");
    (client, ns)
}

fn evidence(error_rate: &str) -> serde_json::Value {
    let observed = jiff::Timestamp::now();
    json!([
        {"connector": "ci-argocd", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "sync_status", "value": "Synced"}]},
        {"connector": "ci-prometheus", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "error_rate", "value": error_rate}]},
        {"connector": "ingest", "freshness": {"observedAt": observed, "maxAgeSeconds": 3600},
         "facts": [{"name": "active_sev1_incidents", "value": 0}, {"name": "change_approval_linked", "value": false}]}
    ])
}

/// The seed's gate with CI-pushed evidence only (no ConnectorScopes).
async fn create_gate(client: &Client, ns: &str, error_rate: &str) {
    let mut gate: ReleaseGate = support::load_yaml("examples/releasegate.yaml");
    gate.metadata.namespace = Some(ns.into());
    gate.spec.connector_scopes.clear();
    gate.spec.evidence = serde_json::from_value(evidence(error_rate)).expect("evidence");
    gate.spec.artifact.commit_timestamp =
        Some(jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3));
    Api::<ReleaseGate>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &gate)
        .await
        .expect("gate");
}

/// Waits until the gate's status answers its current generation with `decision`.
async fn decided(client: &Client, ns: &str, decision: Decision) -> ReleaseGate {
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), ns);
    eventually(WAIT, &format!("decision {decision}"), || {
        let gates = gates.clone();
        async move {
            let g = gates.get(GATE).await.ok()?;
            let s = g.status.as_ref()?;
            (s.observed_generation == g.metadata.generation && s.decision == Some(decision))
                .then_some(g)
        }
    })
    .await
}

/// Waits until the gate's history holds `count` entries of `type_`.
async fn recorded(client: &Client, ns: &str, type_: HistoryType, count: usize) {
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), ns);
    eventually(WAIT, &format!("{count} {type_} in the history"), || {
        let gates = gates.clone();
        async move {
            let g = gates.get(GATE).await.ok()?;
            let n = g
                .status?
                .history
                .iter()
                .filter(|e| e.type_ == type_)
                .count();
            (n >= count).then_some(())
        }
    })
    .await;
}

/// `user` (an approver of the namespace) waives `rule` of the gate for
/// `digest`, for `seconds`.
fn waive(ns: &str, user: &str, rule: &str, digest: &str, seconds: i64) {
    let identity = support::identities::user(user);
    support::identities::grant(ns, "releasepassport-approver", &identity);
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(seconds);
    let manifest = format!(
        "apiVersion: releasepassport.io/v1alpha1\nkind: ReleaseWaiver\nmetadata: {{name: {rule}-{user}, namespace: {ns}}}\nspec: {{gate: {GATE}, ruleId: {rule}, digest: \"{digest}\", reason: \"no runtime scope in this test\", expiresAt: \"{expires}\"}}\n"
    );
    for attempt in 0.. {
        let out = identity.kubectl_stdin(&["create", "-f", "-"], &manifest);
        if out.status.success() {
            return;
        }
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(attempt < 100, "{user}'s waiver: {err}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Our Events on the gate, by reason.
async fn audit_events(client: &Client, ns: &str) -> Vec<Event> {
    let lp = ListParams::default().fields(&format!(
        "involvedObject.apiVersion=releasepassport.io/v1alpha1,involvedObject.name={GATE}"
    ));
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| insights::audit_from_event(e).is_some())
        .collect()
}

fn count_by_reason(events: &[Event]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in events {
        *out.entry(e.reason.clone().unwrap_or_default()).or_default() += 1;
    }
    out
}

#[tokio::test]
async fn cluster_hold_to_allow_records_history_and_events_once_across_a_restart() {
    let _serial = SERIAL.lock().await;
    let (client, ns) = setup("audit").await;
    let admin_port = free_port();
    let mut controller = start_controller("audit-1", admin_port);
    create_gate(&client, &ns, "2.7%").await;
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), &ns);

    let hold = decided(&client, &ns, Decision::Hold).await;
    let status = hold.status.expect("status");
    assert_eq!(status.history.len(), 1, "{:#?}", status.history);
    let first = &status.history[0];
    assert_eq!(first.type_, HistoryType::DecisionChanged);
    assert_eq!(first.decision, Some(Decision::Hold));
    assert_eq!(first.previous_decision, None);
    assert_eq!(first.passport, status.passport_name);

    // Fix it the way people do: alice approves, bob and dave waive rules
    // (dave's waiver lasts seconds and expires without anyone acting), then
    // CI pushes the rollback image and fresh evidence. Each step is recorded
    // before the next, so the history reads in this order.
    let digest = hold
        .spec
        .artifact
        .image
        .rsplit_once('@')
        .expect("digest")
        .1
        .to_string();
    support::identities::approve_as_alice(&ns, GATE, "v2.18.4", &digest);
    recorded(&client, &ns, HistoryType::ApprovalAdded, 1).await;
    waive(&ns, "bob", "deployment-ready", &digest, 24 * 3600);
    recorded(&client, &ns, HistoryType::WaiverAdded, 1).await;
    waive(&ns, "dave", "argocd-synced", &digest, 4);
    recorded(&client, &ns, HistoryType::WaiverAdded, 2).await;
    recorded(&client, &ns, HistoryType::WaiverExpired, 1).await;
    let fix = json!({"spec": {
        "evidence": evidence("0.4%"),
        "rollback": {"release": "v2.17.9", "image": format!("registry.example.com/payment-api@sha256:{}", "9".repeat(64))},
    }});
    gates
        .patch(GATE, &PatchParams::default(), &Patch::Merge(&fix))
        .await
        .expect("fix");
    let allow = decided(&client, &ns, Decision::Allow).await;
    let status = allow.status.clone().expect("status");
    let types: Vec<HistoryType> = status.history.iter().map(|e| e.type_).collect();
    assert_eq!(
        types,
        [
            HistoryType::DecisionChanged,
            HistoryType::ApprovalAdded,
            HistoryType::WaiverAdded,
            HistoryType::WaiverAdded,
            HistoryType::WaiverExpired,
            HistoryType::DecisionChanged,
        ],
        "{:#?}",
        status.history
    );
    assert_eq!(status.history[1].actor.as_deref(), Some("alice"));
    assert_eq!(status.history[4].actor.as_deref(), Some("dave"));
    let last = &status.history[5];
    assert_eq!(
        (last.previous_decision, last.decision),
        (Some(Decision::Hold), Some(Decision::Allow))
    );
    assert_eq!(last.passport, status.passport_name);

    // Each entry is an Event on the gate, which reads back as the same event.
    let events = eventually(WAIT, "an Event per history entry", || {
        let client = client.clone();
        let ns = ns.clone();
        async move {
            let events = audit_events(&client, &ns).await;
            (events.len() >= 6).then_some(events)
        }
    })
    .await;
    let before = count_by_reason(&events);
    assert_eq!(before.get("DecisionChanged"), Some(&2), "{before:?}");
    assert_eq!(before.get("ApprovalAdded"), Some(&1));
    assert_eq!(before.get("WaiverAdded"), Some(&2));
    assert_eq!(before.get("WaiverExpired"), Some(&1));
    let merged = insights::merge_audit(
        insights::audit_from_gate(&allow),
        events
            .iter()
            .filter_map(insights::audit_from_event)
            .collect(),
    );
    assert_eq!(
        merged.len(),
        6,
        "history and Events are one trail: {merged:#?}"
    );
    assert_eq!(merged[0].kind, HistoryType::DecisionChanged);
    assert_eq!(merged[0].decision, Some(Decision::Allow));

    // The release metrics of this gate, on the real /metrics, pass promtool.
    let scrape = reqwest::get(format!("http://127.0.0.1:{admin_port}/metrics"))
        .await
        .expect("scrape /metrics")
        .text()
        .await
        .expect("metrics body");
    let (ok, report) = promtool_check(&scrape);
    assert!(
        ok && report.trim().is_empty(),
        "promtool: {report}
---
{scrape}"
    );
    let this = format!("namespace=\"{ns}\",service=\"payment-api\",environment=\"production\"");
    for expected in [
        format!("releasepassport_promotions_total{{{this}}} 1"),
        format!("releasepassport_lead_time_seconds_count{{{this}}} 1"),
        // One HOLD passport per distinct record: the first, then with
        // alice's approval, bob's waiver, dave's waiver, dave's expired waiver.
        format!("releasepassport_shadow_would_deny_total{{{this}}} 5"),
        format!("releasepassport_evidence_completeness_ratio{{{this}}} 1"),
        format!("releasepassport_decisions_total{{{this},mode=\"shadow\",decision=\"ALLOW\"}}"),
        "releasepassport_hold_reasons_total{rule=\"error-rate\"}".to_string(),
        "releasepassport_connector_evidence_total{connector=\"ci-prometheus\",status=\"fresh\"}"
            .to_string(),
    ] {
        assert!(
            scrape.lines().any(|l| l.starts_with(&expected)),
            "{expected} not in:\n{scrape}"
        );
    }

    // The CLI: the same trail, exported and redacted; the reports.
    let out = cli(&["audit", "-n", &ns, "--output", "json"]);
    let exported: Vec<serde_json::Value> = serde_json::from_str(&out).expect("audit JSON");
    assert_eq!(exported.len(), 6, "{out}");
    assert_eq!(exported[0]["kind"], "DecisionChanged");
    assert_eq!(exported[0]["decision"], "ALLOW");
    assert_eq!(exported[0]["previousDecision"], "HOLD");
    assert_eq!(exported[5]["decision"], "HOLD");
    let csv = cli(&["audit", "-n", &ns, "--gate", GATE, "--output", "csv"]);
    assert_eq!(csv.lines().count(), 7, "{csv}");
    assert!(csv.starts_with("at,namespace,gate,type,"));
    let text = cli(&["audit", "-n", &ns]);
    assert!(text.contains("ApprovalAdded by alice"), "{text}");
    let missing = cli_output(&["audit", "-n", &ns, "--gate", "no-such-gate"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));

    let graduation: serde_json::Value =
        serde_json::from_str(&cli(&["report", "graduation", "-n", &ns, "-o", "json"]))
            .expect("graduation JSON");
    let g = &graduation["gates"][0];
    assert_eq!(g["gate"], GATE);
    assert_eq!(g["passports"], 6);
    assert_eq!(g["wouldDenyCount"], 5);
    assert_eq!(g["wouldDeny"][0]["decision"], "HOLD");
    assert_eq!(g["wouldDeny"][0]["resolved"], true);
    // Enough shadow passports, the latest allowed, every HOLD resolved later.
    assert_eq!(g["readyToEnforce"], true);
    let metrics: serde_json::Value = serde_json::from_str(&cli(&[
        "report", "metrics", "-n", &ns, "--window", "1d", "-o", "json",
    ]))
    .expect("metrics JSON");
    assert_eq!(metrics["windowSeconds"], 86400);
    assert_eq!(metrics["total"]["deployments"], 1);
    assert_eq!(metrics["total"]["leadTime"]["count"], 1);
    // Counted per HOLD passport (the five records above).
    assert_eq!(metrics["total"]["holdReasons"][0]["count"], 5);
    assert_eq!(metrics["groups"][0]["service"], "payment-api");
    let text = cli(&["report", "metrics", "-n", &ns]);
    assert!(text.contains("deployments          1"), "{text}");

    // A restart re-evaluates the gate and records nothing new.
    controller.kill();
    let evaluated_before = status.evaluated_at.expect("evaluatedAt");
    let _controller = start_controller("audit-2", free_port());
    let again = eventually(WAIT, "a re-evaluation by the new controller", || {
        let gates = gates.clone();
        async move {
            let g = gates.get(GATE).await.ok()?;
            (g.status.as_ref()?.evaluated_at? > evaluated_before).then_some(g)
        }
    })
    .await;
    let status_again = again.status.expect("status");
    assert_eq!(status_again.history, status.history);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count_by_reason(&audit_events(&client, &ns).await), before);
}

#[tokio::test]
async fn cluster_history_is_bounded_to_the_newest_entries() {
    let _serial = SERIAL.lock().await;
    let (client, ns) = setup("audit-bound").await;
    let _controller = start_controller("audit-bound", free_port());
    create_gate(&client, &ns, "2.7%").await;
    let gates: Api<ReleaseGate> = Api::namespaced(client.clone(), &ns);
    decided(&client, &ns, Decision::Hold).await;
    // Make ALLOW reachable, then flap the error rate: every flip is a decision change.
    let digest = format!(
        "sha256:{}",
        "3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0"
    );
    support::identities::approve_as_alice(&ns, GATE, "v2.18.4", &digest);
    recorded(&client, &ns, HistoryType::ApprovalAdded, 1).await;
    let fix = json!({"spec": {
        "rollback": {"release": "v2.17.9", "image": format!("registry.example.com/payment-api@sha256:{}", "9".repeat(64))},
    }});
    gates
        .patch(GATE, &PatchParams::default(), &Patch::Merge(&fix))
        .await
        .expect("fix");
    decided(&client, &ns, Decision::Hold).await;
    let flips = HISTORY_LIMIT + 3;
    for i in 0..flips {
        let (rate, decision) = if i % 2 == 0 {
            ("0.4%", Decision::Allow)
        } else {
            ("2.7%", Decision::Hold)
        };
        gates
            .patch(
                GATE,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": {"evidence": evidence(rate)}})),
            )
            .await
            .expect("flip");
        decided(&client, &ns, decision).await;
    }
    let g = gates.get(GATE).await.expect("gate");
    let history = g.status.expect("status").history;
    assert_eq!(history.len(), HISTORY_LIMIT);
    let last = history.last().expect("entry");
    // flips is odd: the last flip allowed.
    assert_eq!(last.decision, Some(Decision::Allow));
    assert!(
        history.windows(2).all(|w| w[0].at <= w[1].at),
        "oldest first"
    );
    assert!(
        !history
            .iter()
            .any(|e| e.type_ == HistoryType::ApprovalAdded),
        "the oldest entries made room"
    );
}
