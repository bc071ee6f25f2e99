//! One module per subcommand: each holds its clap `Args` struct and a `run` function.

pub mod dump;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Dispatch to the subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Dump(args) => dump::run(args),
    }
}
