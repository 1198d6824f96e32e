//! The independent verifiers of the passport attestation, run as their users
//! run them: cosign (built from the Go module proxy by e2e/tools/tools.sh)
//! and securesystemslib (from PyPI, running examples/attestation/verify_passport.py,
//! the snippet docs/attestation.md shows).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

pub const VSA: &str = "https://slsa.dev/verification_summary/v1";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A tool installed by e2e/tools/tools.sh into the project cache (once per
/// version), by its path there.
pub fn tool(name: &str) -> PathBuf {
    static PATHS: OnceLock<std::sync::Mutex<std::collections::BTreeMap<String, PathBuf>>> =
        OnceLock::new();
    let paths = PATHS.get_or_init(Default::default);
    let mut paths = paths.lock().unwrap_or_else(|e| e.into_inner());
    paths
        .entry(name.to_string())
        .or_insert_with(|| {
            let out = Command::new("bash")
                .arg(root().join("e2e/tools/tools.sh"))
                .args(["path", name])
                .output()
                .expect("run e2e/tools/tools.sh");
            assert!(
                out.status.success(),
                "installing {name} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        })
        .clone()
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `cosign verify-blob-attestation` of an `.intoto.jsonl` for an image digest,
/// offline, with a public key.
pub fn cosign_verify_blob(public_key: &Path, attestation: &Path, digest: &str) -> Output {
    let home = tempfile::tempdir().expect("tempdir");
    Command::new(tool("cosign"))
        .args(["verify-blob-attestation", "--key"])
        .arg(public_key)
        .arg("--signature")
        .arg(attestation)
        .args([
            "--type",
            VSA,
            "--insecure-ignore-tlog",
            "--digestAlg",
            "sha256",
            "--digest",
        ])
        .arg(digest.trim_start_matches("sha256:"))
        // No TUF root, no network: a home of its own.
        .env("HOME", home.path())
        .env("SIGSTORE_NO_CACHE", "true")
        .output()
        .expect("run cosign")
}

/// The securesystemslib snippet (examples/attestation/verify_passport.py).
pub fn securesystemslib_verify(public_key: &Path, attestation: &Path, digest: &str) -> Output {
    Command::new(tool("securesystemslib"))
        .arg(root().join("examples/attestation/verify_passport.py"))
        .arg(public_key)
        .arg(attestation)
        .arg(digest)
        .output()
        .expect("run python")
}

/// An envelope (JSON) whose signed payload has one byte changed: `HOLD`
/// becomes `ALLOW`, or the first occurrence of `from` becomes `to`.
pub fn tampered(envelope: &Value, from: &str, to: &str) -> Value {
    let payload = String::from_utf8(
        BASE64
            .decode(envelope["payload"].as_str().expect("payload"))
            .expect("base64"),
    )
    .expect("utf-8");
    let changed = payload.replacen(from, to, 1);
    assert_ne!(payload, changed, "{from:?} is not in the payload");
    let mut out = envelope.clone();
    out["payload"] = Value::from(BASE64.encode(changed));
    out
}

/// Writes an envelope as an `.intoto.jsonl` file.
pub fn write_jsonl(path: &Path, envelope: &Value) {
    std::fs::write(path, serde_json::to_string(envelope).expect("json") + "\n").expect("write");
}

/// Every independent verifier accepts the attestation for `digest`, and
/// rejects a tampered payload, a wrong key and another digest. `decision`
/// and `result` are what the verified payload must say.
pub fn assert_independent_verifiers(
    dir: &Path,
    envelope: &Value,
    public_key: &Path,
    wrong_key: &Path,
    digest: &str,
    decision: &str,
) {
    let good = dir.join("passport.intoto.jsonl");
    write_jsonl(&good, envelope);
    let other_digest = format!("sha256:{}", "0".repeat(64));
    let statement = String::from_utf8(
        BASE64
            .decode(envelope["payload"].as_str().expect("payload"))
            .expect("base64"),
    )
    .expect("utf-8");
    let (from, to) = if statement.contains("\"decision\":\"HOLD\"") {
        ("\"decision\":\"HOLD\"", "\"decision\":\"ALLO\"")
    } else {
        ("\"environment\":\"", "\"environment\":\"x")
    };
    let bad = dir.join("tampered.intoto.jsonl");
    write_jsonl(&bad, &tampered(envelope, from, to));

    // cosign
    let out = cosign_verify_blob(public_key, &good, digest);
    assert!(
        out.status.success(),
        "cosign rejected the attestation:\n{}",
        text(&out)
    );
    assert!(text(&out).contains("Verified OK"), "{}", text(&out));
    let out = cosign_verify_blob(public_key, &bad, digest);
    assert!(
        !out.status.success(),
        "cosign accepted a tampered payload:\n{}",
        text(&out)
    );
    let out = cosign_verify_blob(wrong_key, &good, digest);
    assert!(
        !out.status.success(),
        "cosign accepted a wrong key:\n{}",
        text(&out)
    );
    let out = cosign_verify_blob(public_key, &good, &other_digest);
    assert!(
        !out.status.success(),
        "cosign accepted another digest:\n{}",
        text(&out)
    );
    assert!(
        text(&out).contains("no matching subject digest"),
        "{}",
        text(&out)
    );

    // securesystemslib
    let out = securesystemslib_verify(public_key, &good, digest);
    assert!(
        out.status.success(),
        "securesystemslib rejected the attestation:\n{}",
        text(&out)
    );
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("verdict JSON");
    assert_eq!(verdict["decision"], decision, "{verdict}");
    let result = if matches!(decision, "ALLOW" | "ALLOW_WITH_CANARY") {
        "PASSED"
    } else {
        "FAILED"
    };
    assert_eq!(verdict["verificationResult"], result, "{verdict}");
    let out = securesystemslib_verify(public_key, &bad, digest);
    assert_eq!(
        out.status.code(),
        Some(1),
        "securesystemslib accepted a tampered payload:\n{}",
        text(&out)
    );
    assert!(text(&out).contains("VerificationError"), "{}", text(&out));
    let out = securesystemslib_verify(wrong_key, &good, digest);
    assert_eq!(
        out.status.code(),
        Some(1),
        "securesystemslib accepted a wrong key:\n{}",
        text(&out)
    );
    let out = securesystemslib_verify(public_key, &good, &other_digest);
    assert_eq!(
        out.status.code(),
        Some(1),
        "securesystemslib accepted another digest:\n{}",
        text(&out)
    );
    assert!(text(&out).contains("is not about"), "{}", text(&out));
}
