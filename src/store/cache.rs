//! The cache of the history remote's snapshots, for points that pruning removed locally.
//!
//! It is a bare repository of its own, `DIR/sqlgit-cache/`, holding a plain (not shallow) copy
//! of the history remote's `main` — never refs or objects in the main repository, whose
//! `shallow` file, `refs/remotes/history/main` and packs stay exactly as pushing and pruning
//! keep them. Readers open it with the main repository's objects added as an alternate in
//! memory only (so a local commit the remote lacks reads from the same place as a pruned one);
//! on disk it depends on nothing, so pruning the main repository can never damage it.
//!
//! Why a full copy rather than one built on the repository's own objects (on-disk alternates,
//! shallow at the oldest kept snapshot, `git fetch --unshallow`), which would fetch only the
//! pruned history (measured at 200 k rows / 200 snapshots: 1.3 MB instead of 14.4 MB): every
//! prune deletes objects such a cache needs, so it would have to be dropped by each prune (every
//! cron run) and could lose objects under a reader; and `--unshallow` needs `deepen` support
//! from the server. A self-contained copy survives pruning and works against any server.
//!
//! Readers that must create or fetch it take `DIR/sqlgit-cache.lock` (not the repository's
//! lock: a reader never waits for a snapshot run), so readers reaching past local history at the
//! same moment fetch once, one after the other, and pruning never drops it under a fetch.
//!
//! It is bounded by pruning: every `prune` (also the one after each snapshot) deletes it once it
//! has gone unused for [`IDLE`], and it never holds more than one copy of the history remote.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use git2::{Oid, Repository, RepositoryInitOptions};

use super::Store;

/// The cache's folder inside the repository.
pub const DIR: &str = "sqlgit-cache";
/// Taken to create, fetch into or drop the cache.
const LOCK: &str = "sqlgit-cache.lock";
/// How long a reader waits for another one's fetch.
const FETCH_WAIT: Duration = Duration::from_secs(600);
/// Touched on every use; its age decides when pruning drops the cache.
const STAMP: &str = "sqlgit-used";
/// How long an unused cache survives the next prune.
pub const IDLE: Duration = Duration::from_secs(3600);

/// Where the cache of `store` lives.
pub fn dir(store: &Store) -> PathBuf {
    store.repo.path().join(DIR)
}

/// Whether the cache holds `commit` (and, as git fetches whole histories, all before it).
pub fn holds(store: &Store, commit: Oid) -> bool {
    Repository::open_bare(dir(store)).is_ok_and(|r| r.find_commit(commit).is_ok())
}

/// Wait for other readers' fetches (up to 10 minutes), then hold the cache for this one.
pub fn lock_for_fetch(store: &Store) -> Result<super::lock::Lock> {
    super::lock::lock_file(&store.repo.path().join(LOCK), FETCH_WAIT)?.ok_or_else(|| {
        anyhow::anyhow!(
            "another sqlgit command has been fetching the history cache for {}: try again later",
            humantime::format_duration(FETCH_WAIT)
        )
    })
}

/// Create the cache repository when it is missing (the caller holds [`lock_for_fetch`]);
/// returns its path.
pub fn create(store: &Store) -> Result<PathBuf> {
    let path = dir(store);
    if Repository::open_bare(&path).is_ok() {
        return Ok(path);
    }
    let _ = std::fs::remove_dir_all(&path);
    let mut opts = RepositoryInitOptions::new();
    opts.bare(true).mkpath(true).initial_head("main");
    let repo = Repository::init_opts(&path, &opts).context("create the history cache")?;
    let mut config = repo.config()?;
    config.set_str("core.logAllRefUpdates", "false")?;
    config.set_i64("gc.auto", 0)?;
    Ok(path)
}

/// Open the cache for reading, with the main repository's objects as an alternate (in memory
/// only), and mark it used.
pub fn open(store: &Store) -> Result<Repository> {
    let path = dir(store);
    let repo = Repository::open_bare(&path).context("open the history cache")?;
    repo.odb()?
        .add_disk_alternate(&store.objects_dir().to_string_lossy())
        .context("open the history cache")?;
    let _ = std::fs::write(path.join(STAMP), b"");
    Ok(repo)
}

/// Delete the cache when it has not been used for `idle` (the caller holds the repository's
/// lock). A reader that has it open keeps its files until it is done (unlinked, not gone).
pub fn drop_if_idle(git_dir: &Path, idle: Duration, now: SystemTime) -> bool {
    let path = git_dir.join(DIR);
    if !path.exists() {
        return false;
    }
    let used = std::fs::metadata(path.join(STAMP))
        .or_else(|_| std::fs::metadata(&path))
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    if now.duration_since(used).unwrap_or_default() < idle {
        return false;
    }
    // Not under a reader's fetch.
    let Ok(Some(_fetching)) = super::lock::lock_file(&git_dir.join(LOCK), Duration::ZERO) else {
        return false;
    };
    // Renamed first: a half-deleted cache is never opened again.
    let doomed = git_dir.join(format!(".{DIR}-dropped-{}", std::process::id()));
    if std::fs::rename(&path, &doomed).is_err() {
        return false;
    }
    std::fs::remove_dir_all(&doomed).is_ok()
}
