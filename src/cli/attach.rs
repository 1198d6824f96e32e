//! `releasepassport attach`: attach a passport's attestation to the image it
//! judges, in the image's OCI registry.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow};
use clap::{Args, ValueEnum};

use crate::oci::{self, Credentials, RegistryClient, RegistryOptions};
use crate::passport::{self, VerifyingKeySet};

use super::{exit, input};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AttachOutput {
    Text,
    Json,
}

/// Attach a passport's attestation to its image in the registry (cosign's layout).
#[derive(Debug, Args)]
#[command(after_help = concat!(
    "The passport is verified first (--public-key); the attestation goes to the tag\n",
    "sha256-<image digest>.att of the image's repository, where cosign verify-attestation,\n",
    "Kyverno and sigstore's policy-controller find it. An earlier passport attestation of\n",
    "the same ReleaseGate is replaced; other attestations stay.\n",
    "\n",
    "Examples:\n",
    "  releasepassport attach passport.json --public-key releasepassport.pub\n",
    "  releasepassport attach passport.json --public-key releasepassport.pub \\\n",
    "      --registry-config ~/.docker/config.json --output json\n",
    "  releasepassport attach passport.json --public-key releasepassport.pub --plain-http localhost:5000\n",
    "\n",
    "Exit codes:\n",
    "  0  attached (or already attached)\n",
    "  1  the passport does not verify\n",
    "  2  bad input, or the registry refused or failed"
))]
pub struct AttachArgs {
    /// The passport JSON (as written by `evaluate` or `gate`).
    #[arg(value_name = "PASSPORT.json")]
    pub passport: PathBuf,
    /// Trusted ed25519 public key (SPKI PEM); repeatable.
    #[arg(long = "public-key", value_name = "PUB.pem", required = true)]
    pub public_keys: Vec<PathBuf>,
    /// Docker config JSON with registry credentials (`auths`); anonymous without it.
    #[arg(long, value_name = "config.json")]
    pub registry_config: Option<PathBuf>,
    /// A registry (`host:port`) spoken to over plain HTTP; repeatable.
    #[arg(long = "plain-http", value_name = "HOST:PORT")]
    pub plain_http: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AttachOutput::Text)]
    pub output: AttachOutput,
}

pub fn run(args: &AttachArgs) -> anyhow::Result<i32> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut keys = VerifyingKeySet::new();
    for path in &args.public_keys {
        let pem = input::read_text(path)?;
        keys.insert(
            passport::load_verifying_key_pem(&pem)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?,
        );
    }
    let value = input::load_json(&args.passport)?;
    let verified = match passport::verify_value(&value, &keys) {
        Ok(v) => v,
        Err(e) => {
            println!(
                "not attached: {}: {e} [{}]",
                args.passport.display(),
                e.check()
            );
            return Ok(exit::VERIFY_FAILED);
        }
    };
    let envelope: crate::api::Envelope = serde_json::from_value(
        value
            .get("envelope")
            .cloned()
            .unwrap_or_else(|| value.clone()),
    )
    .context("reading the envelope")?;
    let credentials = match &args.registry_config {
        Some(path) => {
            let bytes =
                std::fs::read(path).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
            Credentials::from_docker_config(&bytes)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?
        }
        None => Credentials::default(),
    };
    let client = RegistryClient::new(
        credentials,
        RegistryOptions {
            plain_http: args.plain_http.clone(),
            timeout: std::time::Duration::from_secs(30),
        },
    )?;
    let image = verified.passport.artifact.image.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let attached = runtime
        .block_on(oci::attach(&client, &image, &envelope))
        .map_err(|e| anyhow!("{image}: {e}"))?;
    match args.output {
        AttachOutput::Text => println!(
            "{}: {} (manifest {}, layer {}{})",
            if attached.unchanged {
                "already attached"
            } else {
                "attached"
            },
            attached.reference,
            attached.manifest_digest,
            attached.layer_digest,
            if attached.replaced > 0 {
                format!(
                    ", replaced {} earlier passport attestation(s) of this gate",
                    attached.replaced
                )
            } else {
                String::new()
            }
        ),
        AttachOutput::Json => println!(
            "{}",
            serde_json::json!({
                "image": image, "reference": attached.reference,
                "manifestDigest": attached.manifest_digest, "layerDigest": attached.layer_digest,
                "unchanged": attached.unchanged, "replaced": attached.replaced,
                "keyId": verified.key_id, "decision": verified.passport.decision,
            })
        ),
    }
    Ok(exit::OK)
}
