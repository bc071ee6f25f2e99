//! Walking a repository's history one snapshot back at a time. A parent that cannot be read
//! (a commit cut short by a crash, or a `shallow` file gone where pruning cut the history) is
//! not the first snapshot: every reading command says so and names the repair, instead of
//! answering as if the history began there.

use std::path::Path;

use anyhow::{Result, bail};
use git2::{Commit, ErrorCode};

use super::short_id;

/// The snapshot before `commit` (None: `commit` is the first one, or where pruning cut the
/// history). An error naming `sqlgit snapshot --repo DIR --full` when it cannot be read.
pub fn parent<'r>(commit: &Commit<'r>, dir: &Path) -> Result<Option<Commit<'r>>> {
    if commit.parent_count() == 0 {
        return Ok(None);
    }
    match commit.parent(0) {
        Ok(p) => Ok(Some(p)),
        Err(e) => {
            let id = commit.parent_id(0)?;
            let what = if e.code() == ErrorCode::NotFound {
                "is missing (damaged, or the repository's `shallow` file is gone)"
            } else {
                "is damaged"
            };
            bail!(
                "snapshot {}, the one before {}, {what}: the history here ends early; a run \
                 that reads everything cuts the local history above it, run: sqlgit snapshot \
                 --repo {} --full",
                short_id(id),
                short_id(commit.id()),
                crate::shellword::repo(dir)
            )
        }
    }
}

/// How many snapshots the local history from `head` back holds, and the oldest one's time —
/// as far as it can be read, and why it cannot be read further (see [`parent`]).
pub fn count(head: Option<Commit>, dir: &Path) -> (usize, Option<i64>, Option<anyhow::Error>) {
    let (mut n, mut oldest) = (0, None);
    let mut next = head;
    while let Some(c) = next {
        n += 1;
        oldest = Some(c.time().seconds());
        next = match parent(&c, dir) {
            Ok(p) => p,
            Err(e) => return (n, oldest, Some(e)),
        };
    }
    (n, oldest, None)
}

/// Whether the history from `head` continues `below`, a snapshot this repository no longer
/// has: the own (raw) parent of a commit where a shallow graft cuts the history (pruning's cut,
/// or the tip a rebuilt machine fetched and continued) that is `head` or one of its ancestors.
/// Such a `below` is a real ancestor of `head`, which grafts only hide.
pub fn continues_cut(repo: &git2::Repository, head: git2::Oid, below: git2::Oid) -> bool {
    let Ok(text) = std::fs::read_to_string(repo.path().join("shallow")) else {
        return false;
    };
    text.lines()
        .filter_map(|l| git2::Oid::from_str(l.trim()).ok())
        .filter_map(|cut| repo.find_commit(cut).ok())
        .filter(|cut| raw_parents(cut).contains(&below))
        .any(|cut| cut.id() == head || repo.graph_descendant_of(head, cut.id()).unwrap_or(false))
}

/// The ids the `shallow` file lists: where pruning cut `main`, and the commits a tag or another
/// ref keeps cut off at themselves.
pub fn grafts(repo: &git2::Repository) -> Vec<git2::Oid> {
    std::fs::read_to_string(repo.path().join("shallow"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| git2::Oid::from_str(l.trim()).ok())
        .collect()
}

/// Take `ids` out of the `shallow` file: commits whose parents are here again (a re-root that
/// put back the snapshots below a cut rewrote them to the same ids), or parentless ones a
/// depth-1 fetch named.
pub fn ungraft(repo: &git2::Repository, ids: &[git2::Oid]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let shallow = repo.path().join("shallow");
    let grafted = grafts(repo);
    if !grafted.iter().any(|g| ids.contains(g)) {
        return Ok(());
    }
    let rest: Vec<String> = grafted
        .into_iter()
        .filter(|g| !ids.contains(g))
        .map(|g| g.to_string())
        .collect();
    if rest.is_empty() {
        return std::fs::remove_file(&shallow).context("remove the shallow file");
    }
    let tmp = repo.path().join("shallow.sqlgit-tmp");
    std::fs::write(&tmp, rest.join("\n") + "\n")
        .and_then(|()| std::fs::rename(&tmp, &shallow))
        .context("write the shallow file")
}

/// The oldest snapshot of the history from `head` when a graft cuts it there (pruning cut it,
/// or a rebuilt machine adopted the remote's tip); None when that history begins with a real
/// first snapshot, whatever else `shallow` lists (a tag's snapshot cut off at itself).
pub fn cut_of(repo: &git2::Repository, head: &Commit) -> Option<git2::Oid> {
    let grafted = grafts(repo);
    if grafted.is_empty() {
        return None;
    }
    let mut oldest = head.clone();
    while let Ok(parent) = oldest.parent(0) {
        oldest = parent;
    }
    grafted.contains(&oldest.id()).then(|| oldest.id())
}

/// The parents a commit names itself, whatever grafts (a shallow boundary) say.
pub fn raw_parents(commit: &Commit) -> Vec<git2::Oid> {
    String::from_utf8_lossy(commit.raw_header_bytes())
        .lines()
        .filter_map(|l| l.strip_prefix("parent "))
        .filter_map(|id| git2::Oid::from_str(id.trim()).ok())
        .collect()
}
