//! One module per subcommand: each holds its clap `Args` struct and a `run` function that
//! parses, calls the library and prints. Command modules never import each other; what two of
//! them print alike lives here.

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

use crate::cli::{Cli, Command};
use crate::error::Exit;
use crate::output::human_bytes;
use crate::store::prune::Report;

/// Dispatch to the subcommand.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
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

/// What pruning did, for people.
fn prune_lines(report: &Report, repo_bytes: u64) {
    if report.pruned > 0 {
        say!(
            "pruned {} old snapshot{}; {} kept locally ({} packs deleted, {} rewritten); repository {}",
            report.pruned,
            if report.pruned == 1 { "" } else { "s" },
            report.kept,
            report.packs_deleted,
            report.packs_rewritten,
            human_bytes(repo_bytes)
        );
    }
    if report.held_back > 0 {
        say!(
            "kept {} snapshot{} the history remote has not confirmed yet",
            report.held_back,
            if report.held_back == 1 { "" } else { "s" }
        );
    }
}
