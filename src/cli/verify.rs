//! `releasepassport verify`: check a passport's signature offline.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;

use crate::passport::{self, VerifyingKeySet};

use super::{exit, input};

/// Verify a passport's signature against trusted public keys.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  releasepassport verify passport.json --public-key releasepassport.pub\n  releasepassport verify passport.json --public-key old.pub --public-key new.pub\n\nExit codes:\n  0  the passport verifies\n  1  it does not (the failed check is printed: Malformed, WrongAlgorithm, UnknownKeyId, BadSignature)\n  2  bad input (unreadable file, invalid JSON, bad key)"
)]
pub struct VerifyArgs {
    /// The passport JSON (the Passport's `spec`, as written by `evaluate`).
    #[arg(value_name = "PASSPORT.json")]
    pub passport: PathBuf,
    /// Trusted ed25519 public key (SPKI PEM); repeatable.
    #[arg(long = "public-key", value_name = "PUB.pem", required = true)]
    pub public_keys: Vec<PathBuf>,
    /// Key id the key signs under, when it is not the derived one (applies to every --public-key).
    #[arg(long, value_name = "ID")]
    pub key_id: Option<String>,
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
    let mut value = input::load_json(&args.passport)?;
    // A whole Passport object is accepted too: its spec is what is signed.
    if value.get("kind").and_then(|k| k.as_str()) == Some("Passport")
        && let Some(spec) = value.get_mut("spec").map(serde_json::Value::take)
    {
        value = spec;
    }
    match passport::verify_value(&value, &keys) {
        Ok(v) => {
            let decision = value
                .get("decision")
                .and_then(|d| d.as_str())
                .unwrap_or("?");
            println!(
                "verified: {} signed by key id {} (decision {decision})",
                args.passport.display(),
                v.key_id
            );
            Ok(exit::OK)
        }
        Err(e) => {
            println!(
                "verification failed: {}: {} [{}]",
                args.passport.display(),
                e,
                e.check()
            );
            Ok(exit::VERIFY_FAILED)
        }
    }
}
