//! `sqlgit snapshot`: the main job, run from cron.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::dump::parse_duration;
use super::prune::KeepArgs;
use super::push::{RemoteArgs, push_all, remember};
use crate::snapshot::{self, human_bytes};
use crate::store::{Store, lock, pack};

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The SQLite database file (opened read-only; never changed).
    pub db: PathBuf,
    /// The git repository holding the snapshots (created, bare and private, if missing).
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// How long to wait for a writer's lock on the database.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub busy_timeout: Duration,
    /// How long to wait for another sqlgit run on the same repository to finish.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
    #[command(flatten)]
    pub remotes: RemoteArgs,
    #[command(flatten)]
    pub keep: KeepArgs,
}

pub fn run(args: SnapshotArgs) -> Result<ExitCode> {
    snapshot::enable_fsync();
    let mut store = Store::open_or_create(&args.repo)?;
    let _lock = lock::lock(&store.path, args.lock_timeout)?;
    remember(&store, &args.remotes)?;
    super::prune::remember(&store, &args.keep)?;
    pack::remove_stale_temp_files(&store.objects_dir());
    let outcome = snapshot::take(&store, &args.db, args.busy_timeout)?;
    let s = &outcome.summary;
    match outcome.commit {
        Some(id) => println!(
            "{id} {} tables, {} rows, {} of SQL, {} added to the repository",
            s.tables,
            s.rows,
            human_bytes(s.bytes),
            human_bytes(outcome.pack_bytes)
        ),
        None => println!("unchanged since {}: no new snapshot", outcome.head),
    }
    // A push that fails keeps the commit; the next run catches up. Still a failure.
    let pushed = push_all(&store, false);
    super::prune::apply(&mut store, false)?;
    Ok(if pushed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
