//! Bounded local history: old snapshots are cut off with a shallow graft (the oldest kept commit
//! is written to the repository's `shallow` file, so commit ids never change and the history
//! remote stays a fast-forward), then objects nothing kept refers to are deleted.
//!
//! Never prunes what the history remote has not confirmed (`refs/remotes/history/main`), and
//! always keeps that confirmed commit, since a push needs the remote's tip locally. Packs are
//! cheap to maintain: a pack with no live object is deleted; one that is mostly dead (or one of
//! too many small ones) is rewritten by copying its live entries verbatim (`copy`: a delta whose
//! base is dead is stored whole) — no recompression, no delta search.
//!
//! Pruning also bounds the history cache (`store::cache`): it is deleted once unused for an hour.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use git2::{ObjectType, Oid, Repository};

use super::Store;
use super::copy::{PackCopy, ids_of, in_several};
use super::pack::read_index;

/// Retention: the newest N snapshots, or every point of the last DURATION (the snapshots younger
/// than it and the one current when it began; the newest is always kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    Count(usize),
    Age(Duration),
}

impl std::str::FromStr for Keep {
    type Err = String;
    fn from_str(s: &str) -> Result<Keep, String> {
        let s = s.trim();
        if let Ok(n) = s.parse::<usize>() {
            if n == 0 {
                return Err("--keep must keep at least 1 snapshot".into());
            }
            return Ok(Keep::Count(n));
        }
        match humantime::parse_duration(s) {
            Ok(d) if d.is_zero() => {
                Err("--keep must keep at least 1 snapshot (a duration of zero keeps none)".into())
            }
            Ok(d) => Ok(Keep::Age(d)),
            Err(e) => Err(format!(
                "{e} (give a number of snapshots like 100, or a duration like 12h or 7days)"
            )),
        }
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub pruned: usize,
    pub kept: usize,
    /// Snapshots kept only because the history remote has not confirmed them.
    pub held_back: usize,
    pub packs_deleted: usize,
    pub packs_rewritten: usize,
    pub loose_deleted: usize,
    /// The history cache was deleted (unused for [`super::cache::IDLE`]).
    pub cache_dropped: bool,
    /// Pruning by age went by this time (Unix seconds: the last run's), not by this run's
    /// clock, which is more than the whole window ahead of it.
    pub clock_ahead: Option<i64>,
    /// Kept snapshots a wrong clock dated (id, own date), newest first: see [`age_boundary`].
    pub misdated: Vec<(Oid, i64)>,
    /// Snapshots kept only because the history remote did not answer in this run
    /// ([`HistoryRemote::Unasked`]).
    pub unasked: usize,
}

/// What the history remote holds, as far as pruning is concerned.
#[derive(Clone, Copy, Debug)]
pub enum HistoryRemote {
    /// None is configured: pruning is free.
    None,
    /// One is configured and confirmed having this snapshot (and all before it), or nothing.
    Confirmed(Option<Oid>),
    /// One is configured but did not answer in this run: what it confirmed earlier may be gone
    /// (the remote was lost or recreated since), so nothing is pruned; this is that earlier
    /// confirmation, to count what it would have let go ([`Report::unasked`]).
    Unasked(Option<Oid>),
}

/// Apply `keep` to the repository (the caller holds the lock), never cutting off what the
/// history remote has not confirmed. `last_run`: when the previous run was, by its clock (see
/// [`trusted_now`]). The store is reopened when the graft moves.
pub fn prune(
    store: &mut Store,
    keep: Keep,
    history: HistoryRemote,
    now: SystemTime,
    last_run: Option<i64>,
) -> Result<Report> {
    let mut report = Report {
        // By the real clock: the cache's stamp is a file time.
        cache_dropped: super::cache::drop_if_idle(
            store.repo.path(),
            super::cache::IDLE,
            SystemTime::now(),
        ),
        ..Report::default()
    };
    let Some(head) = store.head()? else {
        return Ok(report);
    };
    let mut chain = vec![head.id()];
    let mut times = vec![head.time().seconds()];
    let mut commit = head;
    while let Ok(parent) = commit.parent(0) {
        chain.push(parent.id());
        times.push(parent.time().seconds());
        commit = parent;
    }
    drop(commit);
    let by_retention = match keep {
        Keep::Count(n) => n.min(chain.len()) - 1,
        Keep::Age(age) => {
            let trusted = trusted_now(now, last_run, &times[1..]);
            if trusted + (age.as_secs() as i64) < unix(now) {
                report.clock_ahead = Some(trusted);
            }
            let dates = super::dates::sort_out(&times, trusted);
            report.misdated = (0..chain.len())
                .filter(|&i| dates.misdated[i])
                .map(|i| (chain[i], times[i]))
                .collect();
            age_boundary(&dates, trusted.saturating_sub(age.as_secs() as i64))
        }
    };
    let by_confirmed = |confirmed: Option<Oid>| match confirmed
        .and_then(|c| chain.iter().position(|&id| id == c))
    {
        Some(pos) => by_retention.max(pos),
        None => chain.len() - 1,
    };
    let boundary = match history {
        HistoryRemote::Confirmed(confirmed) => by_confirmed(confirmed),
        HistoryRemote::Unasked(confirmed) => {
            report.unasked = chain.len() - 1 - by_confirmed(confirmed);
            chain.len() - 1
        }
        HistoryRemote::None => by_retention,
    };
    report.held_back = boundary - by_retention;
    let kept_ids = &chain[..=boundary];
    report.misdated.retain(|(id, _)| kept_ids.contains(id));
    report.kept = boundary + 1;
    report.pruned = chain.len() - 1 - boundary;
    if report.pruned == 0 {
        return Ok(report);
    }
    let git_dir = store.repo.path().to_path_buf();
    let mut kept: Vec<Oid> = chain[..=boundary].to_vec();
    let grafts = other_refs(&store.repo, &mut kept)?;
    write_grafts(&git_dir, chain[boundary], &grafts)?;
    for name in ["objects/info/commit-graph", "objects/info/commit-graphs"] {
        let p = git_dir.join(name);
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_dir_all(&p);
    }
    // Grafts are read when a repository is opened.
    *store = Store::open(&store.path)?;
    let live = reachable(&store.repo, &kept)?;
    collect_garbage(&store.repo, &git_dir.join("objects"), &live, &mut report)?;
    Ok(report)
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// "Now" for pruning by age: this run's clock, but never later than the last clock reading
/// before it (the previous run's, or the newest snapshot before the head): one run whose clock
/// is ahead must not age out snapshots taken moments ago. A second run agreeing with it (the
/// next one) catches up, so pruning lags by at most one run.
pub fn trusted_now(now: SystemTime, last_run: Option<i64>, older: &[i64]) -> i64 {
    let before = older.iter().copied().chain(last_run).max();
    before.map_or(unix(now), |b| b.min(unix(now)))
}

/// The oldest snapshot kept by age (its position, newest first): the newest correctly dated
/// one at or before `cutoff` — it was current when the window began. Times need not fall along
/// the chain (a clock was slow or fast for a run or several): [`super::dates`] tells which
/// dates are wrong, as it does for times in a WHEN. A misdated snapshot proves nothing about its
/// age, so history is not cut there; the correctly dated ones are pruned as usual. None fits:
/// everything is kept.
fn age_boundary(dates: &super::dates::Dates, cutoff: i64) -> usize {
    let last = dates.counted.len() - 1;
    (0..=last)
        .find(|&i| !dates.misdated[i] && dates.counted[i] <= cutoff)
        .unwrap_or(last)
}

/// The other refs (a user's tags and branches, sqlgit's own under `refs/sqlgit/`, remote-tracking
/// ones): pruning keeps their commits, and plain git must still read them (`git log TAG`, `git
/// fsck`). A ref whose commits lead back to a kept snapshot keeps those commits (added to
/// `kept`); any other is cut off at its own commit, returned as an extra graft.
fn other_refs(repo: &Repository, kept: &mut Vec<Oid>) -> Result<Vec<Oid>> {
    let mut grafts = Vec::new();
    for r in repo.references()?.flatten() {
        let Ok(tip) = r.peel_to_commit() else {
            continue;
        };
        let mut path = Vec::new();
        let mut next = Some(tip.clone());
        let mut reached = false;
        while let Some(commit) = next {
            if kept.contains(&commit.id()) || grafts.contains(&commit.id()) {
                reached = true;
                break;
            }
            path.push(commit.id());
            next = match commit.parent_count() {
                1 => commit.parent(0).ok(),
                _ => None,
            };
        }
        if reached {
            kept.extend(path);
        } else if has_parent(&tip) {
            grafts.push(tip.id());
            kept.push(tip.id());
        }
    }
    Ok(grafts)
}

/// Whether `commit` has a parent, whatever grafts say (a commit cut off before is parentless).
fn has_parent(commit: &git2::Commit) -> bool {
    String::from_utf8_lossy(commit.raw_header_bytes())
        .lines()
        .any(|l| l.starts_with("parent "))
}

/// Replace the `shallow` file atomically: one full hex id per line.
pub(crate) fn write_shallow(git_dir: &Path, oldest: Oid) -> Result<()> {
    write_grafts(git_dir, oldest, &[])
}

/// [`write_shallow`] with more commits cut off at (see [`other_refs`]).
fn write_grafts(git_dir: &Path, oldest: Oid, more: &[Oid]) -> Result<()> {
    let tmp = git_dir.join("shallow.sqlgit-tmp");
    let mut text = format!("{oldest}\n");
    for id in more.iter().filter(|&&id| id != oldest) {
        text.push_str(&format!("{id}\n"));
    }
    let written = std::fs::write(&tmp, text)
        .and_then(|()| File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, git_dir.join("shallow")));
    if let Err(e) = written {
        // A full disk must not also leave the temporary file behind.
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow::Error::from(e).context("write shallow file"));
    }
    Ok(())
}

/// Every object the kept commits and the other refs need.
fn reachable(repo: &Repository, kept: &[Oid]) -> Result<HashSet<Oid>> {
    let mut live = HashSet::new();
    let mut commits: Vec<Oid> = kept.to_vec();
    for r in repo.references()?.flatten() {
        if let Ok(c) = r.peel_to_commit() {
            commits.push(c.id());
            // An annotated tag's own object.
            if let Some(target) = r.target().filter(|&t| t != c.id()) {
                live.insert(target);
            }
        }
    }
    for id in commits {
        if !live.insert(id) {
            continue;
        }
        let commit = repo.find_commit(id)?;
        add_tree(repo, commit.tree_id(), &mut live)?;
    }
    Ok(live)
}

fn add_tree(repo: &Repository, id: Oid, live: &mut HashSet<Oid>) -> Result<()> {
    if !live.insert(id) {
        return Ok(());
    }
    let tree = repo.find_tree(id)?;
    for entry in tree.iter() {
        match entry.kind() {
            Some(ObjectType::Tree) => add_tree(repo, entry.id(), live)?,
            _ => {
                live.insert(entry.id());
            }
        }
    }
    Ok(())
}

/// Packs: delete the dead, rewrite the mostly dead and the small ones when there are many.
/// Then loose objects nothing needs.
fn collect_garbage(
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
    let mut delete = Vec::new();
    for (idx, index, size) in packs {
        let live_count = index.iter().filter(|(id, _)| live.contains(id)).count();
        if live_count == 0 {
            delete.push(idx);
        } else if live_count * 2 < index.len() || (many && size < 16 << 20) {
            rewrite.push((idx, index));
        }
    }
    report.packs_deleted = delete.len();
    if !rewrite.is_empty() {
        let lists = rewrite.iter().map(|(_, index)| ids_of(index)).collect();
        let mut out = PackCopy::new(repo, objects, Vec::new(), in_several(lists)?)?;
        for (idx, index) in &mut rewrite {
            let index = std::mem::take(index);
            let copied = out.pack(&idx.with_extension("pack"), index, &|id| live.contains(id));
            if let Err(e) = copied {
                out.discard();
                return Err(e);
            }
        }
        let (_, name) = out.finish()?;
        report.packs_rewritten = rewrite.len();
        // A pack copied whole into a pack of its own has the copy's name: the copy replaced it.
        let copy = name.map(|n| pack_dir.join(format!("{n}.idx")));
        delete.extend(rewrite.into_iter().map(|(idx, _)| idx));
        delete.retain(|idx| Some(idx) != copy.as_ref());
    }
    for idx in &delete {
        remove_pack(idx)?;
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
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_boundary_never_cuts_at_a_misdated_snapshot() {
        // Times newest first; the window begins at 100; now is 400.
        let at = |times: &[i64]| age_boundary(&super::super::dates::sort_out(times, 400), 100);
        assert_eq!(at(&[300, 200, 100, 50]), 2, "in order");
        assert_eq!(at(&[300, 200, 150]), 2, "none old enough");
        // One run's clock slow: dated before its parent, it proves nothing about its age.
        assert_eq!(at(&[300, 10, 250, 200, 90, 80]), 4);
        assert_eq!(at(&[300, 10, 250, 200]), 3, "everything kept");
        // One run's clock fast: the snapshots after it are cut at as usual.
        assert_eq!(at(&[300, 5000, 90, 80]), 2);
        assert_eq!(at(&[300, 250, 5000, 90, 80]), 3);
        assert_eq!(at(&[300, 250, 200, 5000, 90, 80]), 4);
        // Two and three runs fast, then the clock corrected; and a fast oldest snapshot.
        assert_eq!(at(&[300, 250, 5100, 5000, 90, 80]), 4);
        assert_eq!(at(&[300, 5200, 5100, 5000, 90, 80]), 4);
        assert_eq!(at(&[300, 90, 5200, 5100, 80]), 1);
        assert_eq!(at(&[300, 90, 80, 5000]), 1);
    }

    #[test]
    fn one_clock_reading_ahead_of_the_last_run_is_not_trusted() {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(trusted_now(at(5000), Some(1000), &[900]), 1000);
        assert_eq!(trusted_now(at(5000), None, &[900, 800]), 900);
        assert_eq!(
            trusted_now(at(500), Some(1000), &[900]),
            500,
            "a slow clock"
        );
        assert_eq!(
            trusted_now(at(5000), None, &[]),
            5000,
            "nothing to compare with"
        );
    }
}
