//! `releasepassport export`: JSON, Markdown, CSV or an audit bundle, redacted.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use clap::{Args, ValueEnum};

use crate::passport::{self, export};

use super::input;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// The passport JSON, pretty-printed.
    Json,
    /// A readable report.
    Markdown,
    /// One row per rule.
    Csv,
    /// tar.gz: passport, attestation, public key, evidence summary, trace, CSV, report, README on how to verify.
    Bundle,
    /// The attestation: the DSSE envelope as one JSON line (the `.intoto.jsonl` convention).
    Dsse,
}

/// Export a passport. Every format is redacted.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  releasepassport export passport.json --format markdown > passport.md\n  releasepassport export passport.json --format dsse --out passport.intoto.jsonl\n  releasepassport export passport.json --format csv --out passport.csv\n  releasepassport export passport.json --format bundle --public-key releasepassport.pub --out passport.tar.gz\n\nExit codes:\n  0  exported\n  2  bad input (unreadable file, not a passport, missing --public-key or --out for a bundle, no envelope for dsse)"
)]
pub struct ExportArgs {
    /// The passport JSON.
    #[arg(value_name = "PASSPORT.json")]
    pub passport: PathBuf,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: FormatArg,
    /// Output file (standard output when omitted; required for bundle).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Public key (SPKI PEM) to put in the bundle; required for bundle.
    #[arg(long = "public-key", value_name = "PUB.pem")]
    pub public_key: Option<PathBuf>,
}

pub fn run(args: &ExportArgs) -> anyhow::Result<i32> {
    let value = input::load_json(&args.passport)?;
    let doc = export::prepare(&value).map_err(|e| anyhow!("{}: {e}", args.passport.display()))?;
    let bytes = match args.format {
        FormatArg::Json => export::to_json(&doc)?.into_bytes(),
        FormatArg::Markdown => export::to_markdown(&doc).into_bytes(),
        FormatArg::Csv => export::to_csv(&doc).into_bytes(),
        FormatArg::Dsse => export::to_dsse(&doc)
            .map_err(|e| anyhow!("{}: {e}", args.passport.display()))?
            .into_bytes(),
        FormatArg::Bundle => {
            let Some(key_path) = &args.public_key else {
                bail!("--public-key: required for --format bundle");
            };
            if args.out.is_none() {
                bail!("--out: required for --format bundle");
            }
            let pem = input::read_text(key_path)?;
            let key = passport::load_verifying_key_pem(&pem)
                .map_err(|e| anyhow!("{}: {e}", key_path.display()))?;
            let pem = passport::keys::verifying_key_pem(&key)?;
            export::to_bundle(&doc, &pem)?
        }
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, &bytes)
                .map_err(|e| anyhow!("{}: cannot write: {e}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => std::io::stdout()
            .write_all(&bytes)
            .context("writing to standard output")?,
    }
    Ok(0)
}
