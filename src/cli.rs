//! The command line: clap derive definitions. Doc comments here are the help text users read.

use clap::{Parser, Subcommand};

use crate::cmd;

/// Version SQLite databases in git: exact, deterministic SQL snapshots, cheap to store and push.
///
/// Exit codes: 0 success, 1 failure (including partial success, e.g. a commit made but a push
/// failed), 2 usage error. `sqlgit diff` exits 1 when the snapshots differ, 2 on error.
#[derive(Debug, Parser)]
#[command(name = "sqlgit", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a whole database as SQL text that `sqlite3 new.db < dump.sql` restores exactly.
    ///
    /// Example:
    ///   sqlgit dump app.db -o app.sql && sqlite3 copy.db < app.sql
    #[command(verbatim_doc_comment)]
    Dump(cmd::dump::DumpArgs),
}

/// Parse `std::env::args`; clap's error carries its own exit code and message.
pub fn parse() -> Result<Cli, clap::Error> {
    Cli::try_parse()
}
