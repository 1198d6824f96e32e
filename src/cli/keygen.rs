//! `releasepassport keygen`: a new ed25519 key pair for signing passports.

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use clap::Args;

use crate::passport::{self, keys};

/// Write a new ed25519 key pair (PKCS#8 private key, SPKI public key, PEM).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  releasepassport keygen\n  releasepassport keygen --out-dir keys/ --name prod-2026-05\n  kubectl create secret generic releasepassport-signing --from-file=key.pem=keys/prod-2026-05.key\n\nExit codes:\n  0  written\n  2  bad input (files exist without --force, directory not writable)"
)]
pub struct KeygenArgs {
    /// Directory to write `<name>.key` (private, mode 0600) and `<name>.pub` into.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out_dir: PathBuf,
    /// Base name of the files.
    #[arg(long, default_value = "releasepassport")]
    pub name: String,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: &KeygenArgs) -> anyhow::Result<i32> {
    let private_path = args.out_dir.join(format!("{}.key", args.name));
    let public_path = args.out_dir.join(format!("{}.pub", args.name));
    if !args.force {
        for p in [&private_path, &public_path] {
            if p.exists() {
                bail!("{}: exists (pass --force to overwrite)", p.display());
            }
        }
    }
    let key = passport::generate_signing_key()?;
    let private_pem = keys::signing_key_pem(&key)?;
    let public_pem = keys::verifying_key_pem(&key.verifying_key())?;
    std::fs::create_dir_all(&args.out_dir)
        .map_err(|e| anyhow!("{}: cannot create: {e}", args.out_dir.display()))?;
    write_private(&private_path, private_pem.as_bytes())?;
    std::fs::write(&public_path, public_pem.as_bytes())
        .map_err(|e| anyhow!("{}: cannot write: {e}", public_path.display()))?;
    println!("private key: {}", private_path.display());
    println!("public key:  {}", public_path.display());
    println!(
        "key id:      {}",
        passport::key_id_for(&key.verifying_key())
    );
    Ok(0)
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| anyhow!("{}: cannot write: {e}", path.display()))?;
    file.write_all(bytes)
        .map_err(|e| anyhow!("{}: cannot write: {e}", path.display()))?;
    Ok(())
}
