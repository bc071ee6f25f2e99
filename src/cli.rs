//! The command line: clap derive definitions. Doc comments here are the help text users read.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::cmd;
use crate::settings::{Flags, absolute};

/// Version SQLite databases in git: exact, deterministic SQL snapshots, cheap to store and push.
///
/// Exit codes: 0 success, 1 failure (including partial success, e.g. a commit made but a push
/// failed), 2 usage error. `sqlgit diff` exits 1 when the snapshots differ, 2 on error.
#[derive(Debug, Parser)]
#[command(name = "sqlgit", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print nothing on success (errors still go to stderr): for cron, which mails any output.
    #[arg(short, long, global = true)]
    pub quiet: bool,
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
    /// Rows are matched by rowid or primary key: inserted (+), deleted (-) and updated (~, with
    /// each changed column old → new); schema changes are shown as a diff of their SQL. Only the
    /// parts of the snapshots that changed are read.
    ///
    /// Examples:
    ///   sqlgit diff 1day --repo /srv/app.sqlgit --summary
    ///   sqlgit diff 2026-11-24T14:00:00Z --repo /srv/app.sqlgit --table orders
    ///   sqlgit diff HEAD~1 HEAD --repo /srv/app.sqlgit --json
    ///   sqlgit diff HEAD~1 HEAD --repo /srv/app.sqlgit --sql > patch.sql
    ///   sqlgit restore HEAD~1 --repo /srv/app.sqlgit --to old.db && sqlite3 -bail old.db < patch.sql
    #[command(verbatim_doc_comment)]
    Diff(cmd::diff::DiffArgs),
    /// Write the repository's configuration, so cron needs only `sqlgit snapshot --repo DIR`.
    ///
    /// The settings live in DIR/config, section [sqlgit] (git config format; see README).
    /// Example:
    ///   sqlgit init --repo /srv/app.sqlgit --db /srv/app.db --keep 1day \
    ///       --history-remote ssh://backup@host/srv/app.git --latest-remote https://forge/app.git
    #[command(verbatim_doc_comment)]
    Init(cmd::init::InitArgs),
    /// Health of the backup: newest snapshot, last run, remotes; exit 1 when unhealthy.
    ///
    /// Example (alert when no snapshot for 15 minutes):
    ///   sqlgit status --repo /srv/app.sqlgit --max-age 15m --quiet || alert
    #[command(verbatim_doc_comment)]
    Status(cmd::status::StatusArgs),
    /// Restore drill: check every object, restore to a temporary database, integrity_check.
    ///
    /// Example:
    ///   sqlgit verify --repo /srv/app.sqlgit
    #[command(verbatim_doc_comment)]
    Verify(cmd::verify::VerifyArgs),
    /// Print a shell completion script.
    ///
    /// Example:
    ///   sqlgit completions bash > /etc/bash_completion.d/sqlgit
    #[command(verbatim_doc_comment)]
    Completions(cmd::completions::CompletionsArgs),
    /// Print the man page (roff).
    ///
    /// Example:
    ///   sqlgit man > /usr/local/share/man/man1/sqlgit.1
    #[command(verbatim_doc_comment)]
    Man(cmd::completions::ManArgs),
}

/// Parse `std::env::args`; clap's error carries its own exit code and message.
pub fn parse() -> Result<Cli, clap::Error> {
    Cli::try_parse()
}

// Flag groups shared by several commands. Given values are remembered in the repository's
// config (see `settings`), so later runs need not repeat them.

/// Remote settings.
#[derive(Debug, Args, Clone, Default)]
pub struct RemoteArgs {
    /// Remote that holds only the newest snapshot, as one parentless commit (force-pushed).
    /// ssh://, https://, git://, user@host:path or a local path. "" forgets it.
    #[arg(long, value_name = "URL")]
    pub latest_remote: Option<String>,
    /// Remote that receives every snapshot commit (fast-forward pushes). "" forgets it.
    #[arg(long, value_name = "URL")]
    pub history_remote: Option<String>,
    /// SSH private key for ssh:// remotes (ssh-agent and ~/.ssh keys are tried too).
    /// HTTPS: a token in the environment variable SQLGIT_HTTPS_TOKEN is used as the password
    /// (user from the URL, SQLGIT_HTTPS_USER, or "sqlgit"); git credential helpers work too.
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,
}

/// Local retention.
#[derive(Debug, Args, Clone, Default)]
pub struct KeepArgs {
    /// Keep only the newest N snapshots locally (e.g. 288), or those younger than a duration
    /// (e.g. 1day, 12h); remembered in the repository's config. Older ones are cut off with a
    /// shallow graft and their data deleted — but never before the history remote confirmed
    /// them; without a history remote, pruning is free. "" turns pruning off.
    #[arg(long, value_name = "N|DURATION")]
    pub keep: Option<String>,
}

/// What to leave out (for remotes less trusted than the database).
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// Leave out tables whose name matches PATTERN (`*`, `?`; case-insensitive), with their
    /// indexes and triggers. Repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub exclude_table: Vec<String>,
    /// Replace the values of TABLE.COLUMN (`*` allowed) with NULL, or a fixed placeholder in
    /// NOT NULL columns. Repeatable. Primary-key columns cannot be redacted.
    #[arg(long, value_name = "TABLE.COLUMN")]
    pub redact: Vec<String>,
}

/// Monitoring of the job.
#[derive(Debug, Args, Clone, Default)]
pub struct JobArgs {
    /// After each run, write a Prometheus textfile here (atomically), e.g. for node_exporter's
    /// textfile collector: last success time, duration, dump size, push results.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<String>,
    /// Run this with `sh -c` after a successful run (e.g. a dead-man's-switch ping). Variables:
    /// SQLGIT_RESULT, SQLGIT_REPO, SQLGIT_COMMIT, SQLGIT_CHANGED, SQLGIT_ROWS, SQLGIT_BYTES,
    /// SQLGIT_TABLES, SQLGIT_DURATION, SQLGIT_ERROR. A failing hook is reported, not fatal.
    #[arg(long, value_name = "CMD")]
    pub on_success: Option<String>,
    /// Run this with `sh -c` after a failed run (same variables), also when the run fails
    /// before the repository exists or cannot get its lock.
    #[arg(long, value_name = "CMD")]
    pub on_failure: Option<String>,
}

/// The settings given as flags, paths made absolute (cron runs elsewhere).
pub fn flags(
    dbs: &[PathBuf],
    remotes: &RemoteArgs,
    keep: &KeepArgs,
    filters: &FilterArgs,
    job: &JobArgs,
) -> Flags {
    Flags {
        dbs: dbs.iter().map(|p| absolute(p)).collect(),
        history_remote: remotes.history_remote.clone(),
        latest_remote: remotes.latest_remote.clone(),
        ssh_key: remotes.ssh_key.as_deref().map(absolute),
        keep: keep.keep.clone(),
        exclude_tables: filters.exclude_table.clone(),
        redact: filters.redact.clone(),
        metrics_file: job.metrics_file.as_deref().map(|p| {
            if p.is_empty() {
                String::new()
            } else {
                absolute(p.as_ref())
            }
        }),
        on_success: job.on_success.clone(),
        on_failure: job.on_failure.clone(),
    }
}

/// humantime durations for clap.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30s, 5m, 1h 30m)"))
}
