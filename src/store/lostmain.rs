//! A `refs/heads/main` gone while its snapshots are still here: deleted (`git branch -D main`,
//! which git allows in a bare repository), renamed (`git branch -m main master`), or lost with
//! `packed-refs` after a `git gc`. A run that took that for a new repository would start a new
//! history, and its pruning would then delete every earlier snapshot. [`recover`] points `main`
//! at the newest snapshot here again (see [`super::headrepair::newest_snapshot`] for where it is
//! looked for: the state file's last commit, the refs and reflogs, the loose objects, then every
//! commit of the packs), and fails, naming the command, when that snapshot does not descend
//! from the last one sqlgit recorded. [`missing_line`] tells `status` and `verify`.

use std::path::Path;

use anyhow::{Result, bail};
use git2::{ErrorCode, Oid, Repository};

use super::{BRANCH, Store, is_snapshot_tree, short_id};

/// Whether `repo` has no `main` at all (a `main` that cannot be read is no missing one).
fn main_missing(repo: &Repository) -> bool {
    repo.find_reference(BRANCH)
        .is_err_and(|e| e.code() == ErrorCode::NotFound)
}

/// The commit the last run of the repository at `dir` recorded in its state file, if any.
pub(crate) fn recorded_commit(dir: &Path) -> Option<Oid> {
    let run = crate::state::load(dir).last_run?;
    Oid::from_str(run.commit.as_deref()?).ok()
}

/// The commits the reflogs under `git_dir` name (each entry's new id; read as text: libgit2
/// would create the file of a reflog it is asked for, which `git refs migrate` then refuses).
pub(crate) fn reflog_ids(git_dir: &Path) -> Vec<Oid> {
    let mut ids = Vec::new();
    let mut dirs = vec![git_dir.join("logs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                ids.extend(
                    text.lines()
                        .filter_map(|l| Oid::from_str(l.split(' ').nth(1)?).ok())
                        .filter(|id| !id.is_zero()),
                );
            }
        }
    }
    ids
}

/// Whether `id` is a readable snapshot commit of `repo`.
fn is_snapshot(repo: &Repository, id: Oid) -> bool {
    repo.find_commit(id)
        .and_then(|c| c.tree())
        .is_ok_and(|t| is_snapshot_tree(repo, &t))
}

/// A snapshot the state file, a ref or a reflog of `repo` (at `dir`) names (cheap: no object
/// is listed).
fn named_snapshot(dir: &Path, repo: &Repository) -> Option<Oid> {
    let mut ids: Vec<Oid> = recorded_commit(dir).into_iter().collect();
    if let Ok(refs) = repo.references() {
        ids.extend(refs.flatten().filter_map(|r| r.target()));
    }
    ids.extend(reflog_ids(repo.path()));
    ids.into_iter().find(|&id| is_snapshot(repo, id))
}

/// What `status` and `verify` say when `main` is missing while a snapshot is still here (see
/// the module documentation); `dir` is shown in the command.
pub fn missing_line(dir: &Path, git_dir: &Path) -> Option<String> {
    let repo = Repository::open_bare(git_dir).ok()?;
    if !main_missing(&repo) {
        return None;
    }
    let id = named_snapshot(dir, &repo)?;
    Some(format!(
        "refs/heads/main is missing (deleted or renamed with plain git, or lost with \
         packed-refs?) while the snapshots are still here (snapshot {} among them): sqlgit and \
         plain git see none of them; run `sqlgit snapshot --repo {}`, which points main at the \
         newest one again",
        short_id(id),
        crate::shellword::repo(dir)
    ))
}

/// Point a missing `main` at the newest snapshot here again (see the module documentation);
/// returns the warning, None when `main` is there or no snapshot is here (a new repository).
/// `why`: what lost it, for the warning. Call with the lock held, before anything reads `main`.
pub fn recover(store: &Store, why: &str) -> Result<Option<String>> {
    let repo = &store.repo;
    if !main_missing(repo) {
        return Ok(None);
    }
    let Some(id) = super::headrepair::newest_snapshot(store, Oid::ZERO_SHA1)? else {
        return Ok(None);
    };
    let recorded = recorded_commit(&store.path).filter(|&r| is_snapshot(repo, r));
    if let Some(last) = recorded
        && last != id
        && !repo.graph_descendant_of(id, last).unwrap_or(false)
    {
        bail!(
            "refs/heads/main is missing ({why}), and the newest snapshot here, {id}, does not \
             descend from the last one sqlgit recorded, {last}: point main at the one to \
             continue (both are kept), run `git -C {} update-ref refs/heads/main {id}` (or \
             {last})",
            crate::shellword::repo(&store.path)
        );
    }
    repo.reference(BRANCH, id, false, "sqlgit: refs/heads/main was missing")?;
    let count = super::walk::count(repo.find_commit(id).ok(), &store.path).0;
    Ok(Some(format!(
        "refs/heads/main was missing ({why}): it names the newest snapshot here again, {id} \
         ({count} snapshot{} on it; nothing is lost)",
        if count == 1 { "" } else { "s" }
    )))
}
