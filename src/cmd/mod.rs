//! One module per subcommand: each holds its clap `Args` struct and a `run` function that
//! parses, calls the library and prints. Command modules never import each other; what two of
//! them print alike lives here.

pub mod cat;
pub mod completions;
pub mod diff;
pub mod dump;
pub mod history;
pub mod init;
pub mod log;
pub mod prune;
pub mod push;
pub mod query;
pub mod restore;
pub mod snapshot;
pub mod status;
pub mod verify;

use clap::{Parser, Subcommand};

use crate::error::{Exit, FullDiskHint};
use crate::output::human_bytes;
use crate::store::prune::Report;

/// Version SQLite databases in git: exact, deterministic SQL snapshots, cheap to store and push.
///
/// Exit codes: 0 success, 1 failure (including partial success, e.g. a commit made but a push
/// failed), 2 usage error. `sqlgit diff` exits 1 when the snapshots differ, 2 on error;
/// `sqlgit history` exits 0 when it found changes of the row, 1 when none, 2 on error.
#[derive(Debug, Parser)]
#[command(name = "sqlgit", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print nothing on success but what the command exists to print (SQL, listings, results)
    /// and warnings; errors still go to stderr: for cron, which mails any output.
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
    Dump(dump::DumpArgs),
    /// Snapshot a database into a git repository; commits only if something changed.
    ///
    /// Example (crontab, every five minutes):
    ///   */5 * * * * sqlgit snapshot /srv/app.db --repo /srv/app.sqlgit --quiet
    #[command(verbatim_doc_comment)]
    Snapshot(snapshot::SnapshotArgs),
    /// List the snapshots, newest first (--all: also those pruned locally, from the history
    /// remote).
    ///
    /// Example:
    ///   sqlgit log --repo /srv/app.sqlgit --json
    ///   sqlgit log --all --repo /srv/app.sqlgit
    #[command(verbatim_doc_comment)]
    Log(log::LogArgs),
    /// Print a snapshot's SQL; pipe it into sqlite3 to restore.
    ///
    /// Examples:
    ///   sqlgit cat --repo /srv/app.sqlgit | sqlite3 copy.db
    ///   sqlgit cat 2h --repo /srv/app.sqlgit > two-hours-ago.sql
    ///   sqlgit cat 2026-11-24T10:00:00Z --repo /srv/app.sqlgit -o then.sql.gz
    #[command(verbatim_doc_comment)]
    Cat(cat::CatArgs),
    /// Restore a snapshot into a new database file (checked, then renamed into place), or into
    /// a database applications have open (--into: SQLite's backup API; the old content is
    /// saved aside first).
    ///
    /// Examples:
    ///   sqlgit restore 1day --repo /srv/app.sqlgit --to /tmp/app-yesterday.db
    ///   sqlgit restore 2026-11-24T10:00:00Z --repo /srv/app.sqlgit --into /srv/app.db
    #[command(verbatim_doc_comment)]
    Restore(restore::RestoreArgs),
    /// Push the snapshots the remotes lack, without taking a snapshot.
    ///
    /// Example:
    ///   sqlgit push --repo /srv/app.sqlgit --history-remote ssh://backup@host/srv/app.git
    #[command(verbatim_doc_comment)]
    Push(push::PushArgs),
    /// Cut old snapshots off local history (they stay on the history remote).
    ///
    /// Example:
    ///   sqlgit prune --repo /srv/app.sqlgit --keep 1day
    #[command(verbatim_doc_comment)]
    Prune(prune::PruneArgs),
    /// What changed in the data between two snapshots, or since one (--live DB); exit 0/1/2.
    ///
    /// Exit 0: same, 1: different, 2: error. With --live DB, the newer side is that database as
    /// it is now: read-only, nothing committed, the repository unchanged.
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
    ///   sqlgit diff HEAD --live /srv/app.db --repo /srv/app.sqlgit   # since the last snapshot
    #[command(verbatim_doc_comment)]
    Diff(diff::DiffArgs),
    /// Read-only SQL against the database as it was at one or more snapshots.
    ///
    /// Each snapshot is restored into a private temporary file (deleted afterwards), opened
    /// read-only; statements that would write are refused (exit 2). Output: a table (values as
    /// SQL literals), --json or --csv; with several --at points, one result per point.
    ///
    /// Examples:
    ///   sqlgit query 1day "SELECT count(*) FROM orders" --repo /srv/app.sqlgit
    ///   sqlgit query --at 1day --at now "SELECT * FROM users WHERE id = 7" --repo /srv/app.sqlgit
    ///   sqlgit query HEAD~3 "SELECT * FROM orders" --repo /srv/app.sqlgit --csv > orders.csv
    #[command(verbatim_doc_comment)]
    Query(query::QueryArgs),
    /// Every snapshot in which one row was inserted, updated or deleted, newest first, with the
    /// changed columns old → new (exit 0: changes found, 1: none, 2: error).
    ///
    /// KEY is the rowid (or INTEGER PRIMARY KEY), or the primary key's values of a WITHOUT ROWID
    /// table. Snapshots pruned locally are fetched from the history remote. Only the chunk that
    /// holds the row is read, and only when it changed.
    ///
    /// Examples:
    ///   sqlgit history orders 42 --repo /srv/app.sqlgit
    ///   sqlgit history prices EUR 2026-11-24 --repo /srv/app.sqlgit --since 7days --json
    #[command(verbatim_doc_comment)]
    History(history::HistoryArgs),
    /// Write the repository's configuration, so cron needs only `sqlgit snapshot --repo DIR`.
    ///
    /// The settings live in DIR/config, section [sqlgit] (git config format; see README).
    /// Example:
    ///   sqlgit init --repo /srv/app.sqlgit --db /srv/app.db --keep 1day \
    ///       --history-remote ssh://backup@host/srv/app.git --latest-remote https://forge/app.git
    #[command(verbatim_doc_comment)]
    Init(init::InitArgs),
    /// Health of the backup: newest snapshot, last run, remotes; exit 1 when unhealthy.
    ///
    /// Example (alert when no snapshot for 15 minutes):
    ///   sqlgit status --repo /srv/app.sqlgit --max-age 15m --quiet || alert
    #[command(verbatim_doc_comment)]
    Status(status::StatusArgs),
    /// Restore drill: check every object, restore to a temporary database, integrity_check.
    ///
    /// Example:
    ///   sqlgit verify --repo /srv/app.sqlgit
    #[command(verbatim_doc_comment)]
    Verify(verify::VerifyArgs),
    /// Print a shell completion script.
    ///
    /// Example:
    ///   sqlgit completions bash > /etc/bash_completion.d/sqlgit
    #[command(verbatim_doc_comment)]
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff).
    ///
    /// Example:
    ///   sqlgit man > /usr/local/share/man/man1/sqlgit.1
    #[command(verbatim_doc_comment)]
    Man(completions::ManArgs),
}

/// Parse `std::env::args`; clap's error carries its own exit code and message.
pub fn parse() -> Result<Cli, clap::Error> {
    Cli::try_parse()
}

/// Dispatch to the subcommand, watching for the signals that stop it (the same way for every
/// command: one line on stderr, its temporary files removed, its error exit code).
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    let (kind, exit_code) = cli.command.stops();
    crate::stop::watch_command(kind, exit_code);
    // The snapshot's full-disk hint ("a cron job picks up where it stopped") fits the commands
    // cron runs; the others are run by hand, once, unless they give a hint of their own.
    let by_cron = matches!(
        cli.command,
        Command::Snapshot(_) | Command::Push(_) | Command::Prune(_) | Command::Verify(_)
    );
    let result = run_command(cli);
    match by_cron {
        true => result,
        false => result.map_err(|e| match e.downcast_ref::<FullDiskHint>() {
            Some(_) => e,
            None => e.context(FullDiskHint(crate::error::full_disk_by_hand(None))),
        }),
    }
}

fn run_command(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Dump(args) => dump::run(args),
        Command::Snapshot(args) => snapshot::run(args),
        Command::Log(args) => log::run(args),
        Command::Cat(args) => cat::run(args),
        Command::Restore(args) => restore::run(args),
        Command::Push(args) => push::run(args),
        Command::Prune(args) => prune::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Query(args) => query::run(args),
        Command::History(args) => history::run(args),
        Command::Init(args) => init::run(args),
        Command::Status(args) => status::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => completions::man(args),
    }
}

impl Command {
    /// What the command leaves when a signal stops it, and the exit code it says errors with.
    fn stops(&self) -> (crate::stop::Kind, i32) {
        use crate::stop::Kind::{Changing, Reading, Run};
        match self {
            Command::Snapshot(_) | Command::Push(_) | Command::Verify(_) => (Run, 1),
            Command::Restore(_) | Command::Prune(_) | Command::Init(_) => (Changing, 1),
            // Their exit 1 is an answer ("they differ", "no change found").
            Command::Diff(_) | Command::History(_) => (Reading, 2),
            Command::Dump(_)
            | Command::Log(_)
            | Command::Cat(_)
            | Command::Query(_)
            | Command::Status(_)
            | Command::Completions(_)
            | Command::Man(_) => (Reading, 1),
        }
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
    } else if report.packs_deleted + report.packs_rewritten + report.loose_deleted > 0 {
        say!(
            "deleted what an earlier prune cut off ({} packs deleted, {} rewritten); repository {}",
            report.packs_deleted,
            report.packs_rewritten,
            human_bytes(repo_bytes)
        );
    }
    if !report.misdated.is_empty() {
        let mut named: Vec<String> = report
            .misdated
            .iter()
            .take(5)
            .map(|(id, t)| {
                format!(
                    "{} (dated {})",
                    crate::store::short_id(*id),
                    crate::health::rfc3339(*t)
                )
            })
            .collect();
        if report.misdated.len() > 5 {
            named.push(format!("and {} more", report.misdated.len() - 5));
        }
        say!(
            "note: snapshot{} {} {} dated in the future or before an older snapshot (a clock was \
             wrong, then or before): pruning by age does not cut history there",
            if report.misdated.len() == 1 { "" } else { "s" },
            named.join(", "),
            if report.misdated.len() == 1 {
                "is"
            } else {
                "are"
            }
        );
    }
    if report.maps_dropped {
        tell!(
            "sqlgit: warning: the disk was full: the page maps were deleted to make room for \
             pruning (the next snapshot reads each database whole)"
        );
    }
    if report.cache_dropped {
        say!("deleted the cache of history remote snapshots (unused for an hour)");
    }
    if report.held_back > 0 {
        say!(
            "kept {} snapshot{} the history remote has not confirmed yet",
            report.held_back,
            if report.held_back == 1 { "" } else { "s" }
        );
    }
}
