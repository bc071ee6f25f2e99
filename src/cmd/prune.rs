//! `sqlgit prune`: apply the retention policy now. Also the `--keep` flag shared with
//! `sqlgit snapshot`, and the pruning step that runs after each snapshot.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use super::dump::parse_duration;
use crate::snapshot::human_bytes;
use crate::store::prune::{Keep, prune};
use crate::store::{Store, lock};
use crate::when;

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The sqlgit repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    #[command(flatten)]
    pub keep: KeepArgs,
    /// How long to wait for another sqlgit run on the same repository to finish.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

#[derive(Debug, Args, Clone, Default)]
pub struct KeepArgs {
    /// Keep only the newest N snapshots locally (e.g. 288), or those younger than a duration
    /// (e.g. 1day, 12h); remembered in the repository's config. Older ones are cut off with a
    /// shallow graft and their data deleted — but never before the history remote confirmed
    /// them; without a history remote, pruning is free. "" turns pruning off.
    #[arg(long, value_name = "N|DURATION")]
    pub keep: Option<String>,
}

pub fn run(args: PruneArgs) -> Result<ExitCode> {
    let mut store = Store::open(&args.repo)?;
    let _lock = lock::lock(&store.path, args.lock_timeout)?;
    store.remove_stale_locks();
    crate::store::pack::remove_stale_temp_files(&store.objects_dir());
    remember(&store, &args.keep)?;
    if !apply(&mut store)? {
        if args.keep.keep.as_deref() == Some("") {
            say!("pruning is off for {}", store.path.display());
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("sqlgit: no retention set: give --keep N or --keep DURATION");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// Save `--keep` if given (validated first).
pub fn remember(store: &Store, args: &KeepArgs) -> Result<()> {
    if let Some(spec) = &args.keep {
        if !spec.is_empty() {
            spec.parse::<Keep>()
                .map_err(|e| anyhow::anyhow!("--keep {spec:?}: {e}"))?;
        }
        store.set_setting("keep", spec)?;
    }
    Ok(())
}

/// Prune by the configured retention. Returns false when none is configured.
pub fn apply(store: &mut Store) -> Result<bool> {
    let Some(spec) = store.setting("keep").filter(|s| !s.is_empty()) else {
        return Ok(false);
    };
    let keep: Keep = spec
        .parse()
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("setting sqlgit.keep={spec:?}"))?;
    let history = store
        .setting("historyRemote")
        .is_some_and(|u| !u.is_empty());
    let report = prune(store, keep, history, when::now()).context("prune")?;
    if report.pruned > 0 {
        say!(
            "pruned {} old snapshot{}; {} kept locally ({} packs deleted, {} rewritten); repository {}",
            report.pruned,
            if report.pruned == 1 { "" } else { "s" },
            report.kept,
            report.packs_deleted,
            report.packs_rewritten,
            human_bytes(dir_size(&store.path))
        );
    }
    if report.held_back > 0 {
        say!(
            "kept {} snapshot{} the history remote has not confirmed yet",
            report.held_back,
            if report.held_back == 1 { "" } else { "s" }
        );
    }
    Ok(true)
}

/// Bytes used by files under `dir`.
pub fn dir_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_size(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}
