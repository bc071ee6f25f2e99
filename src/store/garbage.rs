//! Deleting what pruning cut off: the objects no kept snapshot or other ref needs, in packs and
//! loose. A prune first moves the shallow graft, then collects; a run stopped in between (a
//! full disk, a kill) leaves garbage that no later cut would reach on an idle database, so a
//! marker file says a collection is pending until one finishes, and every later prune (each
//! snapshot run with retention, `sqlgit prune`) finishes it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use git2::{Oid, Repository};

use super::copy::{PackCopy, damaged_entry, ids_of, in_several};
use super::pack::read_index;
use super::prune::Report;

/// In the git directory while a collection is pending: written before the graft moves, removed
/// once the objects it cut off are deleted.
const PENDING: &str = "sqlgit-collect-pending";

/// Note that a collection is pending (before the graft moves). Creating an empty file takes no
/// space beyond an inode.
pub(super) fn mark_pending(git_dir: &Path) -> Result<()> {
    std::fs::File::create(git_dir.join(PENDING))
        .and_then(|f| f.sync_all())
        .context("mark the collection pending")
}

/// The collection is done.
pub(super) fn done(git_dir: &Path) -> Result<()> {
    match std::fs::remove_file(git_dir.join(PENDING)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(anyhow::Error::from(e).context("remove the pending-collection mark"))
        }
        _ => Ok(()),
    }
}

/// Whether objects cut off by the graft may still be stored: the marker is there. (Whether
/// the oldest kept snapshot's parent can still be read says nothing: a pack `git repack` made
/// holds it among live objects, and no collection rewrites such a pack.)
pub(super) fn pending(repo: &Repository) -> bool {
    repo.path().join(PENDING).exists()
}

/// Every object the kept commits and the other roots need (whatever a ref names: a tag of a
/// tree or of a blob too; what the indexes of `git worktree`s list: see [`super::roots`]).
pub(super) fn reachable(repo: &Repository, kept: &[Oid]) -> Result<HashSet<Oid>> {
    let mut live = HashSet::new();
    let mut commits: Vec<Oid> = kept.to_vec();
    let found = super::roots::roots(repo)?;
    let odb = repo.odb()?;
    for &(_, id) in found.refs.iter().chain(&found.indexed) {
        super::roots::keep(repo, &odb, id, &mut live, &mut commits)?;
    }
    for id in commits {
        if !live.insert(id) {
            continue;
        }
        let commit = repo.find_commit(id)?;
        super::roots::add_tree(repo, commit.tree_id(), &mut live)?;
    }
    Ok(live)
}

/// Packs and loose objects nothing live is in are deleted first: on a full disk that frees the
/// room the rewrite needs. Then the mostly dead packs (and the small ones when there are many)
/// are rewritten with their live entries, and deleted.
pub(super) fn collect(
    repo: &Repository,
    objects: &Path,
    live: &HashSet<Oid>,
    report: &mut Report,
) -> Result<()> {
    let pack_dir = objects.join("pack");
    // (index path, its objects with offsets, pack size)
    type PackInfo = (PathBuf, Vec<(Oid, u64)>, u64);
    let mut packs: Vec<PackInfo> = Vec::new();
    for entry in std::fs::read_dir(&pack_dir)?.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "idx") {
            let index = read_index(&path)?;
            let size = std::fs::metadata(path.with_extension("pack"))?.len();
            packs.push((path, index, size));
        }
    }
    let many = packs.len() > 32;
    let mut rewrite = Vec::new();
    for (idx, index, size) in packs {
        let live_count = index.iter().filter(|(id, _)| live.contains(id)).count();
        if live_count == 0 {
            remove_pack(&idx)?;
            report.packs_deleted += 1;
        } else if live_count * 2 < index.len() || (many && size < 16 << 20) {
            rewrite.push((idx, index));
        }
    }
    for (id, path) in loose_objects(objects)? {
        if !live.contains(&id) {
            std::fs::remove_file(&path)?;
            report.loose_deleted += 1;
            if let Some(dir) = path.parent() {
                let _ = std::fs::remove_dir(dir); // only once empty
            }
        }
    }
    // A pack with a damaged entry is left as it is, for the scrub (see `copy`): the others are
    // rewritten without it.
    while !rewrite.is_empty() {
        match rewrite_live(repo, objects, &rewrite, live) {
            Ok(name) => {
                report.packs_rewritten = rewrite.len();
                // A pack copied whole into a pack of its own has the copy's name: the copy
                // replaced it.
                let copy = name.map(|n| pack_dir.join(format!("{n}.idx")));
                for (idx, _) in rewrite.iter().filter(|(idx, _)| Some(idx) != copy.as_ref()) {
                    remove_pack(idx)?;
                }
                return Ok(());
            }
            Err(e) => {
                let Some(damaged) = damaged_entry(&e) else {
                    return Err(e);
                };
                report.damaged.push(damaged.to_string());
                let idx = damaged.idx.clone();
                rewrite.retain(|(path, _)| *path != idx);
            }
        }
    }
    Ok(())
}

/// Copy the live entries of `packs` into one new pack; its name (see
/// [`PackCopy::finish`]).
fn rewrite_live(
    repo: &Repository,
    objects: &Path,
    packs: &[(PathBuf, Vec<(Oid, u64)>)],
    live: &HashSet<Oid>,
) -> Result<Option<String>> {
    let lists = packs.iter().map(|(_, index)| ids_of(index)).collect();
    let mut out = PackCopy::new(repo, objects, Vec::new(), in_several(lists)?)?;
    for (idx, index) in packs {
        let copied = out.pack(&idx.with_extension("pack"), index.clone(), &|id| {
            live.contains(id)
        });
        if let Err(e) = copied {
            out.discard();
            return Err(e);
        }
    }
    Ok(out.finish()?.1)
}

/// The loose objects under `objects` (`xx/yyyy…` files), with their paths, by id.
pub(super) fn loose_objects(objects: &Path) -> Result<Vec<(Oid, PathBuf)>> {
    let mut found = Vec::new();
    for dir in std::fs::read_dir(objects)?.flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        if name.len() != 2 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        for file in std::fs::read_dir(dir.path())?.flatten() {
            let hex = format!("{name}{}", file.file_name().to_string_lossy());
            if hex.len() == 40
                && let Ok(id) = Oid::from_str(&hex)
            {
                found.push((id, file.path()));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Delete the pack whose index is `idx`: first a multi-pack-index that git maintenance may
/// have written (it lists the pack, and `git fsck` fails on one whose packs are gone; git reads
/// every `.idx` without it), then the .idx (without it git no longer looks into the pack), then
/// the pack and the files beside it (`.mtimes`: a cruft pack of `git gc`).
pub(super) fn remove_pack(idx: &Path) -> Result<()> {
    if let Some(pack_dir) = idx.parent() {
        remove_multi_pack_index(pack_dir)?;
    }
    std::fs::remove_file(idx).with_context(|| format!("remove {}", idx.display()))?;
    // Killed here, the pack stays without its index: git no longer sees it, and the next run
    // removes it (`pack::remove_leftovers`).
    crate::failpoint::hit("pack-unindexed");
    for ext in ["pack", "rev", "keep", "bitmap", "mtimes"] {
        let _ = std::fs::remove_file(idx.with_extension(ext));
    }
    Ok(())
}

/// Delete git's multi-pack-index in `pack_dir` (with its bitmap and reverse index, or the
/// chain of an incremental one), as `git repack -d` does before it deletes a pack.
fn remove_multi_pack_index(pack_dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(pack_dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "multi-pack-index.d" {
            std::fs::remove_dir_all(entry.path())
                .with_context(|| format!("remove {}", entry.path().display()))?;
        } else if name == "multi-pack-index" || name.starts_with("multi-pack-index-") {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("remove {}", entry.path().display()))?;
        }
    }
    Ok(())
}
