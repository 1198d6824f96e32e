//! The offline commands, run as a user runs them: `evaluate`, `verify`,
//! `export`, `keygen`. Exit codes and one-line errors are part of the contract.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NOW: &str = "2026-05-17T06:30:00Z";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_releasepassport"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> PathBuf {
    root().join("examples/evaluate").join(name)
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `evaluate` on a scenario directory as its README does: with its
/// `approval.yaml` and `waiver.yaml` when it has them.
fn evaluate(dir: &Path, extra: &[&str]) -> Output {
    let mut cmd = bin();
    cmd.arg("evaluate")
        .arg("--policy")
        .arg(dir.join("policy.yaml"))
        .arg("--release")
        .arg(dir.join("releasegate.yaml"))
        .arg("--evidence")
        .arg(dir.join("evidence"))
        .args(["--now", NOW]);
    for (flag, file) in [("--approval", "approval.yaml"), ("--waiver", "waiver.yaml")] {
        if dir.join(file).exists() {
            cmd.arg(flag).arg(dir.join(file));
        }
    }
    cmd.args(extra).output().unwrap()
}

fn evaluate_files(policy: &Path, release: &Path, evidence: &Path, extra: &[&str]) -> Output {
    bin()
        .arg("evaluate")
        .arg("--policy")
        .arg(policy)
        .arg("--release")
        .arg(release)
        .arg("--evidence")
        .arg(evidence)
        .args(["--now", NOW])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn seed_example_prints_hold_with_the_three_failing_checks_and_next_actions() {
    let out = evaluate(&example("payment-api-hold"), &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "shadow mode exits 0: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(text.contains("Decision: HOLD"), "{text}");
    let failing = text
        .split("Failing checks (3):\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or_else(|| panic!("no failing checks section: {text}"));
    let labels: Vec<&str> = failing
        .lines()
        .map(|l| l.trim_start_matches("  - ").split(" [").next().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "Prometheus error rate above 2%",
            "Rollback image missing",
            "Jira change approval not linked"
        ]
    );
    let actions = text
        .split("Next actions:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap();
    assert_eq!(
        actions.lines().collect::<Vec<_>>(),
        [
            "  1. Re-sync the GitOps application and wait for fresh runtime evidence.",
            "  2. Attach rollback artifact for payment-api v2.17.9.",
            "  3. Link the Jira change approval, then re-run the shadow gate.",
        ]
    );
}

#[test]
fn summary_is_available_as_json() {
    let out = evaluate(&example("payment-api-hold"), &["--output", "json"]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["decision"], "HOLD");
    assert_eq!(summary["exitCode"], 0);
    let ids: Vec<&str> = summary["failingChecks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["error-rate", "rollback-image", "change-approval"]);
    assert_eq!(summary["nextActions"].as_array().unwrap().len(), 3);
}

#[test]
fn exit_codes_follow_the_decision_in_enforce_mode() {
    for (scenario, code) in [
        ("allow", 0),
        ("allow-with-canary", 0),
        ("require-approval", 4),
        ("require-approval-approved", 0),
        ("block", 5),
        ("stale-hold", 3),
        ("expired-waiver", 3),
    ] {
        let out = evaluate(&example(scenario), &[]);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{scenario}: {}",
            stdout(&out)
        );
    }
}

fn signed_seed(dir: &Path) -> PathBuf {
    let passport = dir.join("passport.json");
    let out = evaluate(
        &example("payment-api-hold"),
        &[
            "--key",
            fixture("keys/signing.key").to_str().unwrap(),
            "--out",
            passport.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    passport
}

fn verify(passport: &Path, key: &str) -> Output {
    bin()
        .arg("verify")
        .arg(passport)
        .arg("--public-key")
        .arg(fixture(key))
        .output()
        .unwrap()
}

#[test]
fn verify_accepts_the_signed_output_of_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let passport = signed_seed(dir.path());
    let out = verify(&passport, "keys/signing.pub");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("verified"));
}

#[test]
fn verify_rejects_a_changed_field_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let passport = signed_seed(dir.path());
    let text = std::fs::read_to_string(&passport).unwrap();
    // The readable copy beside the envelope: the signed document says otherwise.
    for (from, to) in [
        ("\"decision\": \"HOLD\"", "\"decision\": \"ALLOW\""),
        ("v2.18.4", "v2.18.5"),
        ("\"state\": \"fail\"", "\"state\": \"pass\""),
        ("\"confidence\": 100", "\"confidence\": 99"),
    ] {
        assert!(text.contains(from), "{from}");
        let changed = dir.path().join("changed.json");
        std::fs::write(&changed, text.replacen(from, to, 1)).unwrap();
        let out = verify(&changed, "keys/signing.pub");
        assert_eq!(out.status.code(), Some(1), "{from}: {}", stdout(&out));
        assert!(
            stdout(&out).contains("ReadableCopyDiffers"),
            "{}",
            stdout(&out)
        );
        assert!(stdout(&out).contains("decision HOLD"), "{}", stdout(&out));
    }
    // The signed payload itself.
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let payload = value["envelope"]["payload"].as_str().unwrap().to_string();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let decoded = String::from_utf8(b64.decode(&payload).unwrap()).unwrap();
    let tampered = decoded.replacen("\"decision\":\"HOLD\"", "\"decision\":\"ALLOW\"", 1);
    assert_ne!(decoded, tampered);
    value["envelope"]["payload"] = serde_json::Value::from(b64.encode(tampered));
    let changed = dir.path().join("tampered.json");
    std::fs::write(&changed, serde_json::to_string(&value).unwrap()).unwrap();
    let out = verify(&changed, "keys/signing.pub");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("BadSignature"), "{}", stdout(&out));
}

#[test]
fn verify_with_another_key_reports_the_unknown_key_id() {
    let dir = tempfile::tempdir().unwrap();
    let passport = signed_seed(dir.path());
    let out = verify(&passport, "keys/other.pub");
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("UnknownKeyId"), "{}", stdout(&out));
}

#[test]
fn an_unsigned_passport_does_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let passport = dir.path().join("unsigned.json");
    let out = evaluate(
        &example("payment-api-hold"),
        &["--out", passport.to_str().unwrap()],
    );
    assert!(stdout(&out).contains("unsigned"));
    let out = verify(&passport, "keys/signing.pub");
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("[Unsigned]"), "{}", stdout(&out));
    // And there is no attestation to export.
    let out = export(&passport, "dsse", &[]);
    assert_bad_input(&out, &["unsigned.json", "unsigned"]);
}

/// Bad input: exit 2, one line naming the file and the field, never a panic.
fn assert_bad_input(out: &Output, must_contain: &[&str]) {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stderr: {err}\nstdout: {}",
        stdout(out)
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    for s in must_contain {
        assert!(err.contains(s), "{s:?} not in {err}");
    }
}

fn seed_file(name: &str) -> PathBuf {
    example("payment-api-hold").join(name)
}

#[test]
fn unknown_condition_is_bad_input_naming_file_and_field() {
    let out = evaluate_files(
        &fixture("bad/policy-unknown-operator.yaml"),
        &seed_file("releasegate.yaml"),
        &seed_file("evidence"),
        &[],
    );
    assert_bad_input(
        &out,
        &[
            "policy-unknown-operator.yaml",
            "spec.rules[0].condition.operator",
            "approximately",
        ],
    );
}

#[test]
fn threshold_of_the_wrong_type_is_bad_input_naming_the_rule_field() {
    let out = evaluate_files(
        &fixture("bad/policy-wrong-type.yaml"),
        &seed_file("releasegate.yaml"),
        &seed_file("evidence"),
        &[],
    );
    assert_bad_input(
        &out,
        &[
            "policy-wrong-type.yaml",
            "spec.rules[2].condition.value",
            "InvalidValue",
        ],
    );
}

#[test]
fn field_of_the_wrong_type_is_bad_input() {
    let out = evaluate_files(
        &fixture("bad/policy-wrong-field-type.yaml"),
        &seed_file("releasegate.yaml"),
        &seed_file("evidence"),
        &[],
    );
    assert_bad_input(
        &out,
        &["policy-wrong-field-type.yaml", "spec.rules[2].weight"],
    );
}

#[test]
fn invalid_cel_is_bad_input_naming_the_expression() {
    let out = evaluate_files(
        &fixture("bad/policy-bad-cel.yaml"),
        &seed_file("releasegate.yaml"),
        &seed_file("evidence"),
        &[],
    );
    assert_bad_input(
        &out,
        &[
            "policy-bad-cel.yaml",
            "spec.rules[2].expression",
            "InvalidExpression",
        ],
    );
}

#[test]
fn malformed_yaml_is_bad_input() {
    let out = evaluate_files(
        &fixture("bad/policy-malformed.yaml"),
        &seed_file("releasegate.yaml"),
        &seed_file("evidence"),
        &[],
    );
    assert_bad_input(&out, &["policy-malformed.yaml", "invalid YAML"]);
}

#[test]
fn wrong_kind_is_bad_input() {
    let out = evaluate_files(
        &fixture("bad/policy-wrong-kind.yaml"),
        &seed_file("releasegate.yaml"),
        &seed_file("evidence"),
        &[],
    );
    assert_bad_input(&out, &["policy-wrong-kind.yaml", "kind: expected Policy"]);
}

#[test]
fn unpinned_artifact_is_bad_input() {
    let out = evaluate_files(
        &seed_file("policy.yaml"),
        &fixture("bad/releasegate-unpinned.yaml"),
        &seed_file("evidence"),
        &[],
    );
    assert_bad_input(&out, &["releasegate-unpinned.yaml", "spec.artifact.image"]);
}

#[test]
fn unknown_mode_is_bad_input() {
    let out = evaluate_files(
        &seed_file("policy.yaml"),
        &fixture("bad/releasegate-bad-mode.yaml"),
        &seed_file("evidence"),
        &[],
    );
    assert_bad_input(
        &out,
        &["releasegate-bad-mode.yaml", "spec.mode", "sometimes"],
    );
}

#[test]
fn malformed_json_evidence_is_bad_input() {
    let out = evaluate_files(
        &seed_file("policy.yaml"),
        &seed_file("releasegate.yaml"),
        &fixture("bad/evidence-malformed.json"),
        &[],
    );
    assert_bad_input(&out, &["evidence-malformed.json", "invalid JSON"]);
}

#[test]
fn evidence_field_of_the_wrong_type_is_bad_input() {
    let out = evaluate_files(
        &seed_file("policy.yaml"),
        &seed_file("releasegate.yaml"),
        &fixture("bad/evidence-wrong-type.json"),
        &[],
    );
    assert_bad_input(&out, &["evidence-wrong-type.json", "freshness.observedAt"]);
}

#[test]
fn missing_file_is_bad_input() {
    let out = evaluate_files(
        &seed_file("no-such-policy.yaml"),
        &seed_file("releasegate.yaml"),
        &seed_file("evidence"),
        &[],
    );
    assert_bad_input(&out, &["no-such-policy.yaml", "cannot read"]);
    let out = evaluate_files(
        &seed_file("policy.yaml"),
        &seed_file("releasegate.yaml"),
        &seed_file("no-such-evidence"),
        &[],
    );
    assert_bad_input(&out, &["no-such-evidence", "cannot read"]);
}

#[test]
fn bad_key_is_bad_input() {
    let out = evaluate(
        &example("payment-api-hold"),
        &["--key", fixture("bad/key-bad.pem").to_str().unwrap()],
    );
    assert_bad_input(&out, &["key-bad.pem", "PKCS#8"]);
    let out = bin()
        .arg("verify")
        .arg(fixture("bad/key-bad.pem"))
        .arg("--public-key")
        .arg(fixture("bad/key-bad.pem"))
        .output()
        .unwrap();
    assert_bad_input(&out, &["key-bad.pem", "public key"]);
}

#[test]
fn bad_now_is_bad_input() {
    let out = bin()
        .arg("evaluate")
        .arg("--policy")
        .arg(seed_file("policy.yaml"))
        .arg("--release")
        .arg(seed_file("releasegate.yaml"))
        .arg("--evidence")
        .arg(seed_file("evidence"))
        .args(["--now", "tomorrow"])
        .output()
        .unwrap();
    assert_bad_input(&out, &["--now", "tomorrow"]);
}

#[test]
fn verify_of_a_file_that_is_not_json_is_bad_input() {
    let out = verify(&fixture("bad/evidence-malformed.json"), "keys/signing.pub");
    assert_bad_input(&out, &["evidence-malformed.json", "invalid JSON"]);
}

fn export(passport: &Path, format: &str, extra: &[&str]) -> Output {
    bin()
        .arg("export")
        .arg(passport)
        .args(["--format", format])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn export_writes_json_markdown_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let passport = signed_seed(dir.path());
    let json = export(&passport, "json", &[]);
    assert_eq!(json.status.code(), Some(0));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["decision"], "HOLD");

    let md = stdout(&export(&passport, "markdown", &[]));
    assert!(
        md.starts_with("# Release passport: payment-api v2.18.4 (production)"),
        "{md}"
    );
    assert!(md.contains("| Decision | **HOLD** |"));
    assert!(md.contains("2. Attach rollback artifact for payment-api v2.17.9."));

    let csv = stdout(&export(&passport, "csv", &[]));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 5, "{csv}");
    assert!(lines[0].starts_with("service,release,environment,mode,decision"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("rollback-image,Rollback image missing,fail"))
    );
}

#[test]
fn export_bundle_holds_everything_needed_to_verify() {
    let dir = tempfile::tempdir().unwrap();
    let passport = signed_seed(dir.path());
    let bundle = dir.path().join("bundle.tar.gz");
    let out = export(
        &passport,
        "bundle",
        &[
            "--public-key",
            fixture("keys/signing.pub").to_str().unwrap(),
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bytes = std::fs::read(&bundle).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    let unpacked = dir.path().join("unpacked");
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().into_owned();
        names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        let target = unpacked.join(path.file_name().unwrap());
        std::fs::create_dir_all(&unpacked).unwrap();
        std::fs::write(target, content).unwrap();
    }
    names.sort();
    assert_eq!(
        names,
        [
            "README.md",
            "evidence-summary.json",
            "passport.intoto.jsonl",
            "passport.json",
            "policy-results.csv",
            "public-key.pem",
            "report.md",
            "trace.json"
        ]
    );
    // The bundle verifies with its own key.
    let out = bin()
        .arg("verify")
        .arg(unpacked.join("passport.json"))
        .arg("--public-key")
        .arg(unpacked.join("public-key.pem"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // So does the attestation alone.
    let out = bin()
        .arg("verify")
        .arg(unpacked.join("passport.intoto.jsonl"))
        .arg("--public-key")
        .arg(unpacked.join("public-key.pem"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("decision HOLD"), "{}", stdout(&out));
}

#[test]
fn export_bundle_without_public_key_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let passport = signed_seed(dir.path());
    let out = export(
        &passport,
        "bundle",
        &["--out", dir.path().join("b.tgz").to_str().unwrap()],
    );
    assert_bad_input(&out, &["--public-key"]);
}

#[test]
fn export_of_something_that_is_not_a_passport_is_bad_input() {
    let out = export(&seed_file("evidence/argocd.json"), "markdown", &[]);
    assert_bad_input(&out, &["argocd.json", "not a passport"]);
}

#[test]
fn keygen_writes_a_pair_that_signs_and_verifies_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let out = bin()
        .args(["keygen", "--out-dir"])
        .arg(&keys)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("key id:      rp-"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(keys.join("releasepassport.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private key readable by others: {mode:o}");
    }
    let passport = dir.path().join("p.json");
    let out = evaluate(
        &example("allow"),
        &[
            "--key",
            keys.join("releasepassport.key").to_str().unwrap(),
            "--out",
            passport.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = bin()
        .arg("verify")
        .arg(&passport)
        .arg("--public-key")
        .arg(keys.join("releasepassport.pub"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let again = bin()
        .args(["keygen", "--out-dir"])
        .arg(&keys)
        .output()
        .unwrap();
    assert_bad_input(&again, &["exists"]);
}

#[test]
fn every_command_has_help_with_examples_and_exit_codes() {
    for cmd in ["evaluate", "verify", "export", "keygen"] {
        let out = bin().args([cmd, "--help"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let help = stdout(&out);
        assert!(help.contains("Examples:"), "{cmd}: {help}");
        assert!(help.contains("Exit codes:"), "{cmd}: {help}");
    }
}

fn evaluate_trivy(report: &str) -> Output {
    let dir = example("trivy-block");
    evaluate(
        &dir,
        &[
            "--trivy-report",
            dir.join(report).to_str().unwrap(),
            "--output",
            "json",
        ],
    )
}

#[test]
fn a_trivy_report_with_a_critical_finding_for_the_release_digest_blocks() {
    let out = evaluate_trivy("trivy.json");
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(summary["decision"], "BLOCK");
    let failing: Vec<&str> = summary["failingChecks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    // The high finding has no fix yet: only the critical one fails.
    assert_eq!(failing, ["no-critical-vulnerabilities"]);
}

#[test]
fn a_trivy_report_without_critical_findings_allows() {
    let out = evaluate_trivy("trivy-no-critical.json");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(summary["decision"], "ALLOW");
}

#[test]
fn a_trivy_report_of_another_image_is_refused_with_a_clear_message() {
    let out = evaluate_trivy("trivy-other-image.json");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("trivy-other-image.json"), "{err}");
    assert!(
        err.contains("the report scanned sha256:9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5d6c7b8a9, not the release's image sha256:3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn gate_refuses_a_trivy_report_of_another_image_before_touching_the_cluster() {
    let dir = example("trivy-block");
    let out = bin()
        .args(["gate", "-n", "payments", "--service", "payment-api", "--release", "v2.18.4"])
        .args(["--environment", "production", "--mode", "enforce"])
        .args([
            "--image",
            "registry.example.com/payment-api@sha256:3f5d0c2b8e1a9f4d7c6b5a4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        ])
        .arg("--trivy-report")
        .arg(dir.join("trivy-other-image.json"))
        .args(["--kubeconfig", "/nonexistent/kubeconfig"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("not the release's image"), "{err}");
    assert!(
        !err.contains("kubeconfig"),
        "refused before reading the kubeconfig: {err}"
    );
}
