//! `sqlgit restore`: rebuild a database file from a snapshot, safely (`--to`), or replace the
//! content of a database that applications have open (`--into`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;

use crate::cli::{db_path, parse_busy_timeout};
use crate::error::{Exit, on_full_disk};
use crate::restore::{Source, restore_into, restore_to};

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Which snapshot (as for `sqlgit cat`; older than local history: fetched from the history
    /// remote). Default: the latest.
    pub when: Option<String>,
    /// The sqlgit repository.
    #[arg(long, value_name = "DIR", required_unless_present = "from_file")]
    pub repo: Option<PathBuf>,
    /// Restore from an SQL file instead (`sqlgit dump`/`cat -o` output, plain, .gz or .zst).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["repo", "when", "db"])]
    pub from_file: Option<PathBuf>,
    /// The database file to create.
    #[arg(long, value_name = "NEW_DB", required_unless_present = "into", value_parser = db_path())]
    pub to: Option<PathBuf>,
    /// Replace NEW_DB if it exists (its -wal/-shm files are removed too); refused while another
    /// process has it open (use --into then).
    #[arg(long, conflicts_with = "into")]
    pub force: bool,
    /// Replace the content of this existing database, which applications may have open: they
    /// see the restored data at their next transaction. The old content is saved beside it
    /// first, as DB.before-restore-<UTC time>.
    #[arg(long, value_name = "DB", conflicts_with = "to", value_parser = db_path())]
    pub into: Option<PathBuf>,
    /// With --into: how long to wait for the database's writers (e.g. 30s, 2m). Refused with
    /// --to, where it would do nothing.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_busy_timeout,
          conflicts_with = "to")]
    pub busy_timeout: Duration,
    /// The database's folder, when the repository holds several.
    #[arg(long, value_name = "NAME")]
    pub db: Option<String>,
}

pub fn run(args: RestoreArgs) -> Result<Exit> {
    for target in [&args.into, &args.to].into_iter().flatten() {
        crate::room::writes_file(target);
    }
    let source = match (&args.from_file, &args.repo) {
        (Some(file), _) => Source::File(file),
        (None, Some(repo)) => Source::Snapshot {
            repo,
            when: args.when.as_deref(),
            db: args.db.as_deref(),
        },
        (None, None) => bail!("give --repo DIR or --from-file FILE"),
    };
    match (&args.into, &args.to) {
        (Some(into), _) => {
            let done = on_full_disk(restore_into(&source, into, args.busy_timeout), || {
                format!(
                    "the disk is full: free space (beside {0} the restore needs about three \
                     times the database's size: the new database, the saved copy, and the \
                     journal or WAL), then run it again; {0} keeps its old content",
                    into.display()
                )
            })?;
            for w in &done.warnings {
                tell!("sqlgit: warning: {w}");
            }
            say!(
                "restored {} into {}; its old content is in {}",
                done.what,
                into.display(),
                done.saved.display()
            );
        }
        (None, Some(to)) => {
            let (what, warnings) = on_full_disk(restore_to(&source, to, args.force), || {
                format!(
                    "the disk is full: free space (the new database is built beside {} first), \
                     then run it again; nothing was replaced and no partial file is left",
                    to.display()
                )
            })?;
            for w in &warnings {
                tell!("sqlgit: warning: {w}");
            }
            say!("restored {what} to {}", to.display());
        }
        (None, None) => bail!("give --to NEW_DB or --into DB"),
    }
    Ok(Exit::Success)
}
