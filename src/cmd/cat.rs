//! `sqlgit cat`: a snapshot's SQL on stdout (or in a file), ready for `sqlite3 new.db`.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;

use crate::error::Exit;

use crate::output::Output;
use crate::restore::{check_bytes, db_folder, db_tree, write_sql};
use crate::timeline::Timeline;

#[derive(Debug, Args)]
pub struct CatArgs {
    /// Which snapshot: commit id or revision (HEAD~3), RFC 3339 time
    /// (2026-11-24T10:00:00Z, or local 2026-11-24 10:00), or a duration ago (2h, 1day 3h).
    /// Default: the latest. A point older than local history is fetched from the history
    /// remote (kept in DIR/sqlgit-cache).
    pub when: Option<String>,
    /// The sqlgit repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// The database's folder, when the repository holds several.
    #[arg(long, value_name = "NAME")]
    pub db: Option<String>,
    /// Write to FILE (0600; gzip if it ends in .gz, zstd if .zst) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: CatArgs) -> Result<Exit> {
    let hint = crate::error::full_disk_by_hand(args.output.as_deref());
    crate::error::on_full_disk(cat(&args), || hint)
}

fn cat(args: &CatArgs) -> Result<Exit> {
    if let Some(target) = &args.output {
        crate::output::refuse_target(target, &[&args.repo])?;
    }
    let mut timeline = Timeline::open(&args.repo)?;
    let id = timeline.resolve(args.when.as_deref())?;
    let repo = timeline.repo();
    let commit = repo.find_commit(id)?;
    let tree = db_tree(repo, &commit, args.db.as_deref())?;
    let dest = match &args.output {
        Some(path) => path.display().to_string(),
        None => "stdout".to_string(),
    };
    let what = || format!("snapshot {} to {dest}", crate::restore::short(&commit));
    let folder = db_folder(&commit, args.db.as_deref())?;
    let mut out = Output::create(args.output.as_deref())?;
    // A snapshot that lost files gives less SQL than its commit recorded: a file is not kept,
    // stdout has had it all, and the exit code says so.
    let written =
        write_sql(repo, &tree, &mut out).and_then(|bytes| check_bytes(&commit, &folder, bytes));
    match written {
        Ok(()) => out.finish().with_context(what)?,
        Err(e) => {
            out.abandon();
            return Err(e.context(what()));
        }
    }
    Ok(Exit::Success)
}
