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
//! Except when the history remote was rewound (restored from an older backup of itself) or
//! emptied (recreated): what its `main` had before is kept under [`REWOUND`] refs, the
//! snapshots it lost may have no other copy, and the cache is never deleted while it holds them (`sqlgit push --reroot`
//! puts them back on the remote, and clears those refs).

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
/// Refs (one per rewind seen, named by the lost main's id) keeping what the history remote's
/// main had before it was rewound.
pub const REWOUND: &str = "refs/sqlgit/rewound/";

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

/// Remove what a failed fetch left in the cache at `git_dir` (the caller holds
/// [`lock_for_fetch`], so no other fetch is writing there): git keeps the partial pack of an
/// index-pack that failed (`tmp_pack_*`, a full disk's too) for two weeks.
pub fn remove_partial_fetch(git_dir: &Path) {
    let Ok(dir) = std::fs::read_dir(git_dir.join("objects").join("pack")) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if ["tmp_pack_", "tmp_idx_", "tmp_rev_", "tmp_mtimes_"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Open the cache for reading, with the main repository's objects as an alternate (in memory
/// only), and mark it used.
pub fn open(store: &Store) -> Result<Repository> {
    let path = dir(store);
    let repo = Repository::open_bare(&path).context("open the history cache")?;
    repo.odb()?
        .add_disk_alternate(&store.objects_dir().to_string_lossy())
        .context("open the history cache")?;
    stamp(&path.join(STAMP));
    Ok(repo)
}

/// Mark the cache used now. A stamp another user left (root's `log --all` on the job user's
/// repository, before root gave its files back) is replaced, not kept: pruning goes by its age.
/// Root gives the one it writes to the cache folder's owner.
fn stamp(path: &Path) {
    if std::fs::write(path, b"").is_err() {
        let _ = std::fs::remove_file(path);
        let _ = std::fs::write(path, b"");
    }
    let _ = crate::output::keep_folder_owner(path);
}

/// After a fetch into the cache moved its main from `before` to `after`: keep `before` when the
/// remote was rewound below it (its main no longer holds it), and forget kept ones it holds
/// again.
pub fn keep_rewound(cache: &Repository, before: Option<Oid>, after: Oid) -> Result<()> {
    let holds = |id: Oid| id == after || cache.graph_descendant_of(after, id).unwrap_or(false);
    if let Some(before) = before.filter(|&b| !holds(b)) {
        mark_lost(cache, before, "sqlgit: rewound")?;
    }
    drop_rewound_refs(cache, holds);
    Ok(())
}

/// Keep `id`, and what is below it, as lost by the history remote (a [`REWOUND`] ref).
fn mark_lost(cache: &Repository, id: Oid, why: &str) -> Result<()> {
    cache
        .reference(&format!("{REWOUND}{id}"), id, true, why)
        .context("keep the snapshots the history remote lost")?;
    Ok(())
}

/// Delete the [`REWOUND`] refs whose commit `drop` names.
fn drop_rewound_refs(cache: &Repository, drop: impl Fn(Oid) -> bool) {
    for (name, id) in rewound_refs(cache) {
        if drop(id)
            && let Ok(mut r) = cache.find_reference(&name)
        {
            let _ = r.delete();
        }
    }
}

/// After the history remote was found empty (recreated): it lost everything the cache's main
/// held, just as a rewound one loses what its main had past the rewind. That main is kept under
/// a [`REWOUND`] ref and the main itself goes (the remote has none).
pub fn keep_emptied(cache: &Repository) -> Result<()> {
    let Ok(mut main) = cache.find_reference("refs/heads/main") else {
        return Ok(());
    };
    if let Some(before) = main.target() {
        mark_lost(cache, before, "sqlgit: remote emptied")?;
    }
    main.delete()
        .context("forget the history remote's main in the history cache")
}

/// [`keep_emptied`] on the cache of `store`, when there is one and no reader is fetching into
/// it (that reader finds the remote empty itself): called when a push finds the history remote
/// empty, so a cache that nobody fetched since is not deleted as idle while it holds the only
/// copy of what was pruned here.
pub fn remote_emptied(store: &Store) -> Result<()> {
    let path = dir(store);
    let Ok(cache) = Repository::open_bare(&path) else {
        return Ok(());
    };
    let Ok(Some(_fetching)) = super::lock::lock_file(&store.repo.path().join(LOCK), Duration::ZERO)
    else {
        return Ok(());
    };
    keep_emptied(&cache)
}

/// The [`REWOUND`] refs of the cache: (name, commit).
fn rewound_refs(cache: &Repository) -> Vec<(String, Oid)> {
    let Ok(refs) = cache.references_glob(&format!("{REWOUND}*")) else {
        return Vec::new();
    };
    refs.flatten()
        .filter_map(|r| Some((r.name().ok()?.to_string(), r.target()?)))
        .collect()
}

/// The snapshots the cache keeps that the history remote lost when it was rewound (reachable
/// from a [`REWOUND`] ref, not from the cache's main), newest first.
pub fn lost(cache: &Repository) -> Vec<Oid> {
    let mut walk = match cache.revwalk() {
        Ok(w) => w,
        Err(_) => return Vec::new(),
    };
    let mut any = false;
    for (_, id) in rewound_refs(cache) {
        any |= walk.push(id).is_ok();
    }
    if !any {
        return Vec::new();
    }
    if let Ok(main) = cache.refname_to_id("refs/heads/main") {
        let _ = walk.hide(main);
    }
    let _ = walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME);
    walk.flatten().collect()
}

/// Forget the [`REWOUND`] refs (what they kept is back in local history, or given up).
pub fn forget_rewound(store: &Store) {
    if let Ok(cache) = Repository::open_bare(dir(store)) {
        drop_rewound_refs(&cache, |_| true);
    }
}

/// After a re-root that put back all but `lost` and what is below it: the [`REWOUND`] refs make
/// way for one at `lost`, so the copies put back are not counted as lost too. Nothing changes
/// when the cache does not hold `lost`.
pub fn keep_only_rewound(store: &Store, lost: Oid) -> Result<()> {
    let Ok(cache) = Repository::open_bare(dir(store)) else {
        return Ok(());
    };
    if cache.find_commit(lost).is_err() {
        return Ok(());
    }
    mark_lost(&cache, lost, "sqlgit: still lost")?;
    drop_rewound_refs(&cache, |id| id != lost);
    Ok(())
}

/// How many snapshots lost by the history remote the cache at `git_dir` keeps (see [`lost`]).
pub fn lost_count(git_dir: &Path) -> usize {
    Repository::open_bare(git_dir.join(DIR)).map_or(0, |c| lost(&c).len())
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
    // It may hold the only copy of snapshots the history remote lost: ones seen lost, or the
    // history before a rewind that a push found and a re-root has not resolved yet.
    let rerooting = Repository::open_bare(git_dir)
        .is_ok_and(|r| r.refname_to_id(crate::remote::ONCE_CONFIRMED).is_ok());
    if rerooting || lost_count(git_dir) > 0 {
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

/// Copy the commit `id` and its tree (what the repository `to` lacks of it) from the cache into
/// `to`, so a snapshot only the cache keeps can be re-committed there.
pub fn copy_snapshot(cache: &Repository, to: &Repository, id: Oid) -> Result<()> {
    let (from, into) = (cache.odb()?, to.odb()?);
    let commit = cache.find_commit(id)?;
    copy_tree(cache, &from, &into, commit.tree_id())?;
    if !into.exists(id) {
        into.write(git2::ObjectType::Commit, from.read(id)?.data())?;
    }
    Ok(())
}

/// Copy a tree after everything it names, so a tree that is there is always whole.
fn copy_tree(cache: &Repository, from: &git2::Odb, into: &git2::Odb, tree: Oid) -> Result<()> {
    if into.exists(tree) {
        return Ok(());
    }
    for entry in cache.find_tree(tree)?.iter() {
        match entry.kind() {
            Some(git2::ObjectType::Tree) => copy_tree(cache, from, into, entry.id())?,
            Some(git2::ObjectType::Blob) if !into.exists(entry.id()) => {
                into.write(git2::ObjectType::Blob, from.read(entry.id())?.data())?;
            }
            _ => {}
        }
    }
    into.write(git2::ObjectType::Tree, from.read(tree)?.data())?;
    Ok(())
}
