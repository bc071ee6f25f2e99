//! One module per subcommand: each holds its clap `Args` struct and a `run` function.

pub mod cat;
pub mod completions;
pub mod diff;
pub mod dump;
pub mod init;
pub mod log;
pub mod prune;
pub mod push;
pub mod restore;
pub mod snapshot;
pub mod status;
pub mod verify;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Dispatch to the subcommand.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Dump(args) => dump::run(args),
        Command::Snapshot(args) => snapshot::run(args),
        Command::Log(args) => log::run(args),
        Command::Cat(args) => cat::run(args),
        Command::Restore(args) => restore::run(args),
        Command::Push(args) => push::run(args),
        Command::Prune(args) => prune::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Init(args) => init::run(args),
        Command::Status(args) => status::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => completions::man(args),
    }
}
