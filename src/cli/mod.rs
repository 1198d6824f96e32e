//! The `releasepassport` command line.

mod crds;

use clap::{Parser, Subcommand};

/// Release Passport: decide from evidence whether a release may be promoted,
/// and record the decision as a signed Passport.
#[derive(Debug, Parser)]
#[command(name = "releasepassport", version, about, long_about = None)]
#[command(
    after_help = "Examples:\n  releasepassport crds > crds.yaml\n  releasepassport crds --out-dir crds/"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the CustomResourceDefinitions as YAML.
    Crds(crds::CrdsArgs),
}

/// Runs the command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Crds(args) => crds::run(&args),
    }
}
