//! `sqlgit restore`: rebuild a database file from a snapshot, safely.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use crate::error::Exit;
use crate::restore::{Source, restore_to};

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Which snapshot (as for `sqlgit cat`). Default: the latest.
    pub when: Option<String>,
    /// The sqlgit repository.
    #[arg(long, value_name = "DIR", required_unless_present = "from_file")]
    pub repo: Option<PathBuf>,
    /// Restore from an SQL file instead (`sqlgit dump`/`cat -o` output, plain or .gz).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["repo", "when", "db"])]
    pub from_file: Option<PathBuf>,
    /// The database file to create.
    #[arg(long, value_name = "NEW_DB")]
    pub to: PathBuf,
    /// Replace NEW_DB if it exists (its -wal/-shm files are removed too).
    #[arg(long)]
    pub force: bool,
    /// The database's folder, when the repository holds several.
    #[arg(long, value_name = "NAME")]
    pub db: Option<String>,
}

pub fn run(args: RestoreArgs) -> Result<Exit> {
    let source = match (&args.from_file, &args.repo) {
        (Some(file), _) => Source::File(file),
        (None, Some(repo)) => Source::Snapshot {
            repo,
            when: args.when.as_deref(),
            db: args.db.as_deref(),
        },
        (None, None) => bail!("give --repo DIR or --from-file FILE"),
    };
    let what = restore_to(&source, &args.to, args.force)?;
    say!("restored {what} to {}", args.to.display());
    Ok(Exit::Success)
}
