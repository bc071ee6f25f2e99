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
    /// Snapshot a database into a git repository; commits only if something changed.
    ///
    /// Example (crontab, every five minutes):
    ///   */5 * * * * sqlgit snapshot /srv/app.db --repo /srv/app.sqlgit
    #[command(verbatim_doc_comment)]
    Snapshot(cmd::snapshot::SnapshotArgs),
    /// List the snapshots, newest first.
    ///
    /// Example:
    ///   sqlgit log --repo /srv/app.sqlgit --json
    #[command(verbatim_doc_comment)]
    Log(cmd::log::LogArgs),
    /// Print a snapshot's SQL; pipe it into sqlite3 to restore.
    ///
    /// Examples:
    ///   sqlgit cat --repo /srv/app.sqlgit | sqlite3 copy.db
    ///   sqlgit cat 2h --repo /srv/app.sqlgit > two-hours-ago.sql
    ///   sqlgit cat 2026-11-24T10:00:00Z --repo /srv/app.sqlgit -o then.sql.gz
    #[command(verbatim_doc_comment)]
    Cat(cmd::cat::CatArgs),
    /// Restore a snapshot into a new database file (checked, then renamed into place).
    ///
    /// Example:
    ///   sqlgit restore 1day --repo /srv/app.sqlgit --to /tmp/app-yesterday.db
    #[command(verbatim_doc_comment)]
    Restore(cmd::restore::RestoreArgs),
    /// Push the snapshots the remotes lack, without taking a snapshot.
    ///
    /// Example:
    ///   sqlgit push --repo /srv/app.sqlgit --history-remote ssh://backup@host/srv/app.git
    #[command(verbatim_doc_comment)]
    Push(cmd::push::PushArgs),
    /// Cut old snapshots off local history (they stay on the history remote).
    ///
    /// Example:
    ///   sqlgit prune --repo /srv/app.sqlgit --keep 1day
    #[command(verbatim_doc_comment)]
    Prune(cmd::prune::PruneArgs),
    /// What changed in the data between two snapshots (exit 0: same, 1: different, 2: error).
    ///
    /// Examples:
    ///   sqlgit diff 1day --repo /srv/app.sqlgit --summary
    ///   sqlgit diff HEAD~1 HEAD --repo /srv/app.sqlgit --sql > patch.sql
    #[command(verbatim_doc_comment)]
    Diff(cmd::diff::DiffArgs),
}

/// Parse `std::env::args`; clap's error carries its own exit code and message.
pub fn parse() -> Result<Cli, clap::Error> {
    Cli::try_parse()
}
