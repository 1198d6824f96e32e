//! Envelopes written by `releasepassport evaluate` verify with independent
//! verifiers (cosign, securesystemslib), which reject a tampered payload, a
//! wrong key and another digest.

mod verifiers;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn evaluate_signed(example: &str, dir: &Path) -> (Value, String) {
    let src = verifiers::root().join("examples/evaluate").join(example);
    let passport = dir.join("passport.json");
    let out = Command::new(env!("CARGO_BIN_EXE_releasepassport"))
        .arg("evaluate")
        .arg("--policy")
        .arg(src.join("policy.yaml"))
        .arg("--release")
        .arg(src.join("releasegate.yaml"))
        .arg("--evidence")
        .arg(src.join("evidence"))
        .arg("--key")
        .arg(verifiers::root().join("tests/fixtures/keys/signing.key"))
        .args(["--now", "2026-05-17T06:30:00Z", "--out"])
        .arg(&passport)
        .output()
        .expect("run evaluate");
    assert!(passport.exists(), "{}", verifiers::text(&out));
    // The `.intoto.jsonl` export is the envelope, unchanged.
    let jsonl = dir.join("export.intoto.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_releasepassport"))
        .arg("export")
        .arg(&passport)
        .args(["--format", "dsse", "--out"])
        .arg(&jsonl)
        .output()
        .expect("run export");
    assert!(out.status.success(), "{}", verifiers::text(&out));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&passport).unwrap()).unwrap();
    let line = std::fs::read_to_string(&jsonl).unwrap();
    assert_eq!(line.lines().count(), 1);
    let envelope: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(envelope, doc["envelope"]);
    (
        envelope,
        doc["artifact"]["digest"].as_str().unwrap().to_string(),
    )
}

fn assert_verifiers(example: &str, decision: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (envelope, digest) = evaluate_signed(example, dir.path());
    let keys = verifiers::root().join("tests/fixtures/keys");
    verifiers::assert_independent_verifiers(
        dir.path(),
        &envelope,
        &keys.join("signing.pub"),
        &keys.join("other.pub"),
        &digest,
        decision,
    );
}

#[test]
fn cosign_and_securesystemslib_verify_an_evaluated_hold_and_reject_forgeries() {
    assert_verifiers("payment-api-hold", "HOLD");
}

#[test]
fn cosign_and_securesystemslib_verify_an_evaluated_allow_and_reject_forgeries() {
    assert_verifiers("allow", "ALLOW");
}

#[test]
fn releasepassport_verify_accepts_the_jsonl_export_and_checks_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (envelope, digest) = evaluate_signed("allow", dir.path());
    let jsonl = dir.path().join("a.intoto.jsonl");
    verifiers::write_jsonl(&jsonl, &envelope);
    let key = verifiers::root().join("tests/fixtures/keys/signing.pub");
    let run = |digest: &str| {
        Command::new(env!("CARGO_BIN_EXE_releasepassport"))
            .arg("verify")
            .arg(&jsonl)
            .arg("--public-key")
            .arg(&key)
            .args(["--digest", digest, "--output", "json"])
            .output()
            .unwrap()
    };
    let out = run(&digest);
    assert_eq!(out.status.code(), Some(0), "{}", verifiers::text(&out));
    let verdict: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["decision"], "ALLOW");
    let out = run(&format!("sha256:{}", "0".repeat(64)));
    assert_eq!(out.status.code(), Some(1), "{}", verifiers::text(&out));
    assert!(verifiers::text(&out).contains("NotCovered"));
}
