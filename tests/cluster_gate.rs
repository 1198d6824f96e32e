//! `releasepassport gate` end to end, on the real control plane with the real
//! controller binary: the CI command applies the gate, waits for the
//! operator's Passport for that very generation, and exits by decision and
//! mode.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use kube::Client;
use kube::api::{Api, PostParams};
use releasepassport::api::*;
use serde_json::json;
use support::controller as ctl;

const IMAGE: &str = "registry.example.com/payment-api@sha256:3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0";

async fn setup(prefix: &str) -> (Client, String) {
    static CONTROLLER: OnceLock<Mutex<ctl::ControllerProcess>> = OnceLock::new();
    let client = support::client().await;
    support::install_crds(&client).await;
    ctl::operator_namespace(&client).await;
    CONTROLLER.get_or_init(|| {
        Mutex::new(ctl::start(
            &format!("rp-test-gate-{}", std::process::id()),
            "gate-tests",
            &["--resync-seconds", "30", "--no-webhook"],
        ))
    });
    let ns = support::namespace(&client, prefix).await;
    // The seed's Policy (named like the gate, the `--policy` default), without the rule that needs a running Deployment.
    let mut policy: Policy = support::ci_policy();
    policy.spec.rules.retain(|r| r.id != "deployment-ready");
    Api::<Policy>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &policy)
        .await
        .expect("policy");
    (client, ns)
}

/// CI evidence files (connector evidence shape), observed now.
fn evidence_files(dir: &Path, error_rate: &str, approval_linked: bool) -> Vec<String> {
    let now = jiff::Timestamp::now();
    let docs = [
        (
            "argocd.json",
            json!({"connector": "ci-argocd", "freshness": {"observedAt": now, "maxAgeSeconds": 3600},
                   "facts": [{"name": "sync_status", "value": "Synced"}]}),
        ),
        (
            "prometheus.yaml",
            json!({"connector": "ci-prometheus", "freshness": {"observedAt": now, "maxAgeSeconds": 3600},
                   "facts": [{"name": "error_rate", "value": error_rate}]}),
        ),
        (
            "ingest.json",
            json!([{"connector": "ingest", "freshness": {"observedAt": now, "maxAgeSeconds": 3600},
                    "facts": [{"name": "active_sev1_incidents", "value": 0},
                              {"name": "change_approval_linked", "value": approval_linked}]}]),
        ),
    ];
    docs.iter()
        .map(|(file, doc)| {
            let path = dir.join(file);
            std::fs::write(&path, serde_json::to_string(doc).expect("json")).expect("write");
            path.to_str().expect("path").to_string()
        })
        .collect()
}

/// Runs `releasepassport gate` against the local control plane.
async fn gate(ns: &str, dir: &Path, extra: Vec<String>) -> Output {
    let env = support::cluster();
    let mut args: Vec<String> = [
        "gate",
        "--kubeconfig",
        env.kubeconfig.to_str().expect("kubeconfig"),
        "--namespace",
        ns,
        "--service",
        "payment-api",
        "--release",
        "v2.18.4",
        "--environment",
        "production",
        "--source-sha",
        "9c1e4b7f2a8d3e6c5b4a3f2e1d0c9b8a7f6e5d4c",
        "--build-provider",
        "github-actions",
        "--build-id",
        "4821",
        "--timeout",
        "90s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra);
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_releasepassport"))
            .args(&args)
            .current_dir(dir)
            .output()
            .expect("running releasepassport gate")
    })
    .await
    .expect("gate process")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn cluster_gate_shadow_hold_exits_zero_and_prints_the_decision() {
    let (_client, ns) = setup("gate-shadow").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut extra = owned(&[
        "--mode",
        "shadow",
        "--image",
        IMAGE,
        "--markdown",
        "summary.md",
    ]);
    for f in evidence_files(dir.path(), "2.7%", false) {
        extra.extend(["--evidence".to_string(), f]);
    }
    let out = gate(&ns, dir.path(), extra).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("Decision: HOLD"), "{stdout}");
    assert!(
        stdout.contains("Failing checks (3): error-rate, rollback-image, change-approval"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Shadow mode: recorded, not blocking (enforce mode would exit 3)"),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "[gate] applied releasegate {ns}/payment-api-production"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("[gate] decision HOLD"), "{stderr}");

    // passport.json is the operator's signed Passport for this gate.
    let passport: PassportSpec = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("passport.json")).expect("passport.json"),
    )
    .expect("a passport");
    assert_eq!(passport.decision, Decision::Hold);
    assert_eq!(passport.mode, Mode::Shadow);
    assert_eq!(passport.artifact.image, IMAGE);
    assert!(
        passport.envelope.is_some(),
        "the passport carries its attestation"
    );
    assert_eq!(
        passport.gate.as_ref().map(|g| g.name.as_str()),
        Some("payment-api-production")
    );
    let pem = ctl::public_key(&support::client().await).await;
    let mut keys = releasepassport::passport::VerifyingKeySet::new();
    keys.insert(releasepassport::passport::load_verifying_key_pem(&pem).expect("key"));
    releasepassport::passport::verify(&passport, &keys).expect("the passport verifies");
    let md = std::fs::read_to_string(dir.path().join("summary.md")).expect("summary.md");
    assert!(md.contains("HOLD"), "{md}");
}

#[tokio::test]
async fn cluster_gate_enforce_hold_exits_3_then_the_fixed_release_exits_0() {
    let (client, ns) = setup("gate-enforce").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut extra = owned(&["--mode", "enforce", "--image", IMAGE]);
    for f in evidence_files(dir.path(), "2.7%", false) {
        extra.extend(["--evidence".to_string(), f]);
    }
    let out = gate(&ns, dir.path(), extra).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stdout.contains("Decision: HOLD"), "{stdout}");
    assert!(
        stdout.contains("Attach rollback artifact for payment-api v2.17.9.")
            || stdout.contains("Attach rollback artifact"),
        "{stdout}"
    );
    let held: PassportSpec = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("passport.json")).expect("passport.json"),
    )
    .expect("passport");
    assert_eq!(held.decision, Decision::Hold);

    // The same long-lived gate, updated by the next CI run with fixed
    // evidence (the change approval linked) and a rollback image: the
    // command waits for the new generation's passport, never reporting the
    // earlier HOLD.
    let mut extra = owned(&[
        "--mode",
        "enforce",
        "--image",
        IMAGE,
        "--rollback-release",
        "v2.17.9",
        "--rollback-image",
        "registry.example.com/payment-api@sha256:9999999999999999999999999999999999999999999999999999999999999999",
        "--output",
        "json",
    ]);
    for f in evidence_files(dir.path(), "0.4%", true) {
        extra.extend(["--evidence".to_string(), f]);
    }
    let out = gate(&ns, dir.path(), extra).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("JSON summary");
    assert_eq!(summary["decision"], "ALLOW", "{summary}");
    assert_eq!(summary["exitCode"], 0);
    assert_eq!(summary["generation"], 2);
    let allowed: PassportSpec = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("passport.json")).expect("passport.json"),
    )
    .expect("passport");
    assert_eq!(allowed.decision, Decision::Allow);
    assert_eq!(allowed.gate.as_ref().and_then(|g| g.generation), Some(2));
    // The passport names who applied the release, as the apiserver authenticated it.
    assert_eq!(
        allowed.released_by.as_deref(),
        Some("release-passport-admin")
    );

    let gate = Api::<ReleaseGate>::namespaced(client, &ns)
        .get("payment-api-production")
        .await
        .expect("gate");
    let managers: Vec<String> = gate
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.iter().any(|m| m == "releasepassport-gate"),
        "{managers:?}"
    );
}

#[tokio::test]
async fn cluster_gate_refuses_an_image_without_digest_with_exit_2_and_creates_nothing() {
    let (client, ns) = setup("gate-badimage").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = gate(
        &ns,
        dir.path(),
        owned(&[
            "--mode",
            "enforce",
            "--image",
            "registry.example.com/payment-api:v2.18.4",
        ]),
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with(
            "error: --image: \"registry.example.com/payment-api:v2.18.4\" is not pinned by digest"
        ),
        "{stderr}"
    );
    let gates = Api::<ReleaseGate>::namespaced(client, &ns);
    assert!(
        gates
            .get_opt("payment-api-production")
            .await
            .expect("get")
            .is_none()
    );
}

#[tokio::test]
async fn cluster_gate_that_cannot_be_evaluated_exits_2_with_the_reason() {
    let (_client, ns) = setup("gate-nopolicy").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = gate(
        &ns,
        dir.path(),
        owned(&[
            "--mode",
            "enforce",
            "--image",
            IMAGE,
            "--name",
            "payment-api-canary",
        ]),
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: releasegate {ns}/payment-api-canary cannot be evaluated: PolicyNotFound"
        )),
        "{stderr}"
    );
    assert!(!dir.path().join("passport.json").exists());
}
