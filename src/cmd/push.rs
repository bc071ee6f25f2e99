//! `sqlgit push`: push what the remotes lack, without taking a snapshot.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::cli::{FilterArgs, JobArgs, KeepArgs, RemoteArgs, flags, parse_duration};
use crate::error::Exit;
use crate::settings::Settings;
use crate::store::{Store, lock};

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The sqlgit repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    #[command(flatten)]
    pub remotes: RemoteArgs,
    /// How long to wait for another sqlgit run on the same repository to finish.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

pub fn run(args: PushArgs) -> Result<Exit> {
    let path = Store::open(&args.repo)?.path;
    let _lock = lock::lock(&path, args.lock_timeout)?;
    let store = Store::open(&path)?;
    store.remove_stale_locks();
    let old = Settings::load(&store);
    let given = flags(
        &[],
        &args.remotes,
        &KeepArgs::default(),
        &FilterArgs::default(),
        &JobArgs::default(),
    );
    let settings = old.merged(&given);
    crate::job::save_settings(&store, &old, &settings)?;
    let results = crate::job::push_all(&store, &settings)?;
    for p in &results {
        match &p.record.error {
            None if p.commits > 0 => say!(
                "pushed {} commit{} to {} remote {}",
                p.commits,
                if p.commits == 1 { "" } else { "s" },
                p.role.name(),
                p.record.url
            ),
            None => {}
            Some(cause) => eprintln!(
                "sqlgit: push to {} remote {}: {cause}",
                p.role.name(),
                p.record.url
            ),
        }
    }
    Ok(if results.iter().all(|p| p.record.ok) {
        Exit::Success
    } else {
        Exit::Failure
    })
}
