//! `releasepassport verify`: check a passport's attestation offline.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Args, ValueEnum};

use crate::passport::{self, VerifyingKeySet};

use super::{exit, input};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VerifyOutput {
    /// One line.
    Text,
    /// One JSON object: verified, key id, check, and what the verified document says.
    Json,
}

/// Verify a passport's attestation (DSSE envelope) against trusted public keys.
#[derive(Debug, Args)]
#[command(after_help = concat!(
    "Accepts what the operator and `evaluate` write: a passport JSON (a Passport's spec, or the\n",
    "whole Passport object, YAML or JSON), a bare DSSE envelope, or a .intoto.jsonl file from\n",
    "`export --format dsse` (every line must verify). The decision printed is read from the\n",
    "verified payload, never from the readable copy beside it.\n",
    "\n",
    "Examples:\n",
    "  releasepassport verify passport.json --public-key releasepassport.pub\n",
    "  releasepassport verify passport.intoto.jsonl --public-key releasepassport.pub --digest sha256:3f5d…\n",
    "  releasepassport verify passport.json --public-key old.pub --public-key new.pub --output json\n",
    "\n",
    "Exit codes:\n",
    "  0  the passport verifies (and covers --digest, when given)\n",
    "  1  it does not (the failed check is printed: Unsigned, Malformed, WrongPayloadType,\n",
    "     UnknownKeyId, BadSignature, NotAPassport, Inconsistent, ReadableCopyDiffers, NotCovered)\n",
    "  2  bad input (unreadable file, invalid JSON, bad key)"
))]
pub struct VerifyArgs {
    /// The passport JSON/YAML, a DSSE envelope, or a .intoto.jsonl file.
    #[arg(value_name = "PASSPORT")]
    pub passport: PathBuf,
    /// Trusted ed25519 public key (SPKI PEM); repeatable.
    #[arg(long = "public-key", value_name = "PUB.pem", required = true)]
    pub public_keys: Vec<PathBuf>,
    /// Key id the key signs under, when it is not the derived one (applies to every --public-key).
    #[arg(long, value_name = "ID")]
    pub key_id: Option<String>,
    /// Also require the attestation's subject to include this image digest (sha256:<hex>).
    #[arg(long, value_name = "sha256:HEX")]
    pub digest: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = VerifyOutput::Text)]
    pub output: VerifyOutput,
}

pub fn run(args: &VerifyArgs) -> anyhow::Result<i32> {
    let mut keys = VerifyingKeySet::new();
    for path in &args.public_keys {
        let pem = input::read_text(path)?;
        let key = passport::load_verifying_key_pem(&pem)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        match &args.key_id {
            Some(id) => keys.insert_with_id(id.clone(), key),
            None => keys.insert(key),
        };
    }
    let documents = load(&args.passport)?;
    let mut code = exit::OK;
    for (i, value) in documents.iter().enumerate() {
        let what = if documents.len() > 1 {
            format!("{} (line {})", args.passport.display(), i + 1)
        } else {
            args.passport.display().to_string()
        };
        let outcome = passport::verify_value(value, &keys).map_err(|e| (e.check(), e.to_string()));
        let outcome = outcome.and_then(|v| readable_copy_agrees(value, v));
        let outcome = outcome.and_then(|v| match &args.digest {
            Some(d) if !v.subjects.contains(d) => Err((
                "NotCovered",
                format!(
                    "the attestation's subjects {:?} do not include {d}",
                    v.subjects
                ),
            )),
            _ => Ok(v),
        });
        if outcome.is_err() {
            code = exit::VERIFY_FAILED;
        }
        print(&what, &outcome, args.output)?;
    }
    Ok(code)
}

/// A passport file with readable fields beside its envelope must say what
/// the signed document says: someone may read the file rather than the
/// payload. A bare envelope has no readable copy.
fn readable_copy_agrees(
    value: &serde_json::Value,
    verified: passport::Verified,
) -> Result<passport::Verified, (&'static str, String)> {
    if value.get("payloadType").is_some() {
        return Ok(verified);
    }
    let agrees =
        serde_json::from_value::<crate::api::PassportSpec>(value.clone()).is_ok_and(|stored| {
            passport::attestation::readable_copy_matches(&stored, &verified.passport)
        });
    if agrees {
        Ok(verified)
    } else {
        Err((
            "ReadableCopyDiffers",
            format!(
                "the envelope verifies (decision {}), but the readable fields beside it differ from the signed document",
                verified.passport.decision
            ),
        ))
    }
}

/// The documents in a file: one JSON/YAML value, or one envelope per line.
fn load(path: &std::path::Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let text = input::read_text(path)?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let jsonl = lines.len() > 1
        && lines.iter().all(|l| l.trim_start().starts_with('{'))
        && serde_json::from_str::<serde_json::Value>(&text).is_err();
    let values = if jsonl {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map_err(|e| anyhow!("{}: line {}: not JSON: {e}", path.display(), i + 1))
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    } else {
        match serde_json::from_str(&text) {
            Ok(value) => vec![value],
            // Not JSON: YAML (a Passport object from kubectl), by extension.
            Err(_) => vec![input::parse_value(path, &text)?],
        }
    };
    Ok(values
        .into_iter()
        .map(|mut value| {
            // A whole Passport object is accepted too: its spec is what is verified.
            if value.get("kind").and_then(|k| k.as_str()) == Some("Passport")
                && let Some(spec) = value.get_mut("spec").map(serde_json::Value::take)
            {
                value = spec;
            }
            value
        })
        .collect())
}

fn print(
    what: &str,
    outcome: &Result<passport::Verified, (&'static str, String)>,
    output: VerifyOutput,
) -> anyhow::Result<()> {
    match (output, outcome) {
        (VerifyOutput::Text, Ok(v)) => println!(
            "verified: {what} signed by key id {} (decision {}, {} {} -> {}, covers {})",
            v.key_id,
            v.passport.decision,
            v.passport.service,
            v.passport.release,
            v.passport.environment,
            v.subjects.join(", ")
        ),
        (VerifyOutput::Text, Err((check, message))) => {
            println!("verification failed: {what}: {message} [{check}]")
        }
        (VerifyOutput::Json, Ok(v)) => println!(
            "{}",
            serde_json::json!({
                "file": what, "verified": true, "keyId": v.key_id,
                "decision": v.passport.decision, "service": v.passport.service,
                "release": v.passport.release, "environment": v.passport.environment,
                "mode": v.passport.mode, "subjects": v.subjects, "payloadBytes": v.payload_len,
            })
        ),
        (VerifyOutput::Json, Err((check, message))) => println!(
            "{}",
            serde_json::json!({"file": what, "verified": false, "check": check, "message": message})
        ),
    }
    Ok(())
}
