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
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use git2::{Oid, Repository};

use super::{Store, garbage, roots};

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
    /// Packs left as they are because an entry is damaged (warnings: see `copy`).
    pub damaged: Vec<String>,
    /// The disk was full: the page maps were deleted to make room for the graft.
    pub maps_dropped: bool,
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
    let trusted = trusted_now(now, last_run, &times[1..]);
    let dates = super::dates::latest_dates(&times, trusted);
    let by_retention = match keep {
        // With a history remote, a time resting on the oldest kept snapshot is checked against
        // the full history (see `Timeline`): N is exact.
        Keep::Count(n) if matches!(history, HistoryRemote::None) => {
            count_boundary(&dates, &times, n)
        }
        Keep::Count(n) => n.min(chain.len()) - 1,
        Keep::Age(age) => {
            // A window longer than any clock (`300000000000years`) keeps everything.
            let age = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
            if trusted.saturating_add(age) < unix(now) {
                report.clock_ahead = Some(trusted);
            }
            // The head's date is this run's clock, which `trusted` already discounts (warned
            // of as ahead of the last run): the others are named.
            report.misdated = (1..chain.len())
                .filter(|&i| dates[i] != Some(times[i]))
                .map(|i| (chain[i], times[i]))
                .collect();
            age_boundary(&dates, &times, trusted.saturating_sub(age))
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
    let git_dir = store.repo.path().to_path_buf();
    let mut kept: Vec<Oid> = chain[..=boundary].to_vec();
    let grafts = other_refs(&store.repo, &mut kept)?;
    // Nothing to cut, but an earlier prune may have moved the graft and stopped before it
    // collected (a full disk): collect now, or that space never comes back on an idle database.
    if report.pruned == 0 && !garbage::pending(&store.repo) {
        return Ok(report);
    }
    // A ref made since the earlier prune may still need its own graft.
    if report.pruned > 0 || !grafted(&git_dir, &grafts) {
        garbage::mark_pending(&git_dir)?;
        // The commit graph would still list the commits cut off; it is only a cache.
        for name in ["objects/info/commit-graph", "objects/info/commit-graphs"] {
            let p = git_dir.join(name);
            let _ = std::fs::remove_file(&p);
            let _ = std::fs::remove_dir_all(&p);
        }
        if let Err(e) = write_grafts(&git_dir, chain[boundary], &grafts) {
            // A full disk has no room for the graft, and pruning is what frees it: the page
            // maps (a cache the next snapshot rebuilds by reading whole) make that room.
            if !crate::error::is_disk_full(&e) || !super::previous::forget_all(&store.path) {
                return Err(e);
            }
            report.maps_dropped = true;
            write_grafts(&git_dir, chain[boundary], &grafts)?;
        }
        // Grafts are read when a repository is opened.
        *store = Store::open(&store.path)?;
        // Killed here (or failing below: a full disk), the collection is pending.
        crate::failpoint::hit("prune-grafted");
    }
    let live = garbage::reachable(&store.repo, &kept)?;
    garbage::collect(&store.repo, &git_dir.join("objects"), &live, &mut report)?;
    garbage::done(&git_dir)?;
    Ok(report)
}

/// Whether the `shallow` file already cuts off at each of `grafts`.
fn grafted(git_dir: &Path, grafts: &[Oid]) -> bool {
    let text = std::fs::read_to_string(git_dir.join("shallow")).unwrap_or_default();
    let listed: HashSet<Oid> = text
        .lines()
        .filter_map(|l| Oid::from_str(l.trim()).ok())
        .collect();
    grafts.iter().all(|g| listed.contains(g))
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

/// Whether the date of snapshot `i` (newest first) can be cut at: not dated before an older
/// snapshot (`dates`: see [`super::dates::latest_dates`]), which only a slow clock does, nor
/// after now. A slow clock's snapshot may have been taken as late as the next one: cut there,
/// a time between its date and an older snapshot's would pick it with nothing left to show it
/// misdated.
fn cuttable(dates: &[Option<i64>], times: &[i64], i: usize) -> bool {
    dates[i] == Some(times[i])
}

/// The oldest snapshot kept by count without a history remote: the `n`th newest, or when a
/// slow clock dated it (before an older snapshot), the nearest older one no slow clock dated
/// (or the oldest). Nothing would be left to show it misdated: a time between its date and the
/// older snapshot's would pick it, though it was taken later. (A date after now may be cut at:
/// a fast clock's snapshot counts as taken at the next one's date, so such a time says it was
/// pruned.)
fn count_boundary(dates: &[Option<i64>], times: &[i64], n: usize) -> usize {
    let last = dates.len() - 1;
    let slow = |i: usize| dates[i].is_some_and(|d| d != times[i]);
    (n.min(dates.len()) - 1..=last)
        .find(|&i| !slow(i))
        .unwrap_or(last)
}

/// The oldest snapshot kept by age (its position, newest first): the newest one surely taken
/// at or before `cutoff` — it was current when the window began. That is the newest whose own
/// date is at or before `cutoff` and [`cuttable`]: a date a fast clock set is later than the
/// snapshot was taken (still a bound), one a slow clock set (before an older snapshot's) bounds
/// nothing, as that snapshot may have been taken as late as the next one. None fits:
/// everything is kept.
fn age_boundary(dates: &[Option<i64>], times: &[i64], cutoff: i64) -> usize {
    let last = dates.len() - 1;
    (0..=last)
        .find(|&i| cuttable(dates, times, i) && times[i] <= cutoff)
        .unwrap_or(last)
}

/// The other refs (a user's tags and branches, sqlgit's own under `refs/sqlgit/`, remote-tracking
/// ones) and every other root git's own gc keeps (a `git worktree`'s HEAD, reflogs: see
/// [`roots`]): pruning keeps their commits, and plain git must still read them (`git log TAG`,
/// `git fsck`). A ref whose commits lead back to a kept snapshot keeps those commits (added to
/// `kept`); any other is cut off at its own commit, returned as an extra graft.
fn other_refs(repo: &Repository, kept: &mut Vec<Oid>) -> Result<Vec<Oid>> {
    let mut grafts = Vec::new();
    for (_, id) in roots::roots(repo)?.refs {
        if let Ok(tip) = repo.find_object(id, None).and_then(|o| o.peel_to_commit()) {
            keep_history(tip, kept, &mut grafts);
        }
    }
    Ok(grafts)
}

/// Keep the commits from `tip` back to a kept snapshot, or cut `tip` off at itself. A merge
/// (a `git stash`: its index commit is a second parent) keeps each parent the same way, so
/// that what git needs of it (`git stash pop`) stays.
fn keep_history(tip: git2::Commit, kept: &mut Vec<Oid>, grafts: &mut Vec<Oid>) {
    let mut path = Vec::new();
    let mut next = Some(tip.clone());
    while let Some(commit) = next {
        if kept.contains(&commit.id()) || grafts.contains(&commit.id()) {
            kept.extend(path);
            return;
        }
        path.push(commit.id());
        if commit.parent_count() > 1 {
            kept.extend(path);
            for parent in commit.parents() {
                keep_history(parent, kept, grafts);
            }
            return;
        }
        next = match commit.parent_count() {
            1 => commit.parent(0).ok(),
            _ => None,
        };
    }
    // Cut off at itself; a root commit (the first snapshot) needs no graft.
    if has_parent(&tip) {
        grafts.push(tip.id());
    }
    kept.push(tip.id());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_boundary_never_cuts_at_a_misdated_snapshot() {
        // Times newest first; the window begins at 100; now is 400.
        let at = |times: &[i64]| {
            age_boundary(&super::super::dates::latest_dates(times, 400), times, 100)
        };
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
        // Several runs' clock slow after correct ones (a machine booted in 2000 until NTP set
        // it): which clock was wrong cannot be told, so none of them is cut at.
        assert_eq!(at(&[350, 10, 12, 14, 16, 18, 300, 250, 200]), 8);
        assert_eq!(at(&[350, 10, 12, 14, 300, 250, 90, 80]), 6);
    }

    #[test]
    fn a_slow_clock_keeps_the_snapshot_current_when_the_window_began() {
        // Times newest first; now is 400.
        let dates = |times: &[i64]| super::super::dates::latest_dates(times, 400);
        let by_age = |times: &[i64], cutoff| age_boundary(&dates(times), times, cutoff);
        // 150 was current at 250 unless 10 (slow: taken between 150 and 400) came after 250.
        assert_eq!(by_age(&[400, 10, 150, 0], 250), 2);
        assert_eq!(by_age(&[400, 300, 10, 150, 0], 250), 3);
        // Right clocks: the same boundary.
        assert_eq!(by_age(&[400, 300, 150, 0], 250), 2);
        let by_count = |times: &[i64], n| count_boundary(&dates(times), times, n);
        assert_eq!(by_count(&[400, 300, 10, 200, 100], 3), 3);
        assert_eq!(by_count(&[400, 300, 10, 5, 200, 100], 3), 4);
        assert_eq!(by_count(&[400, 300, 10, 5], 3), 2);
        assert_eq!(by_count(&[400, 300, 10, 200], 3), 3, "the oldest");
        assert_eq!(by_count(&[400, 10, 200], 9), 2);
        assert_eq!(by_count(&[900, 300, 200], 1), 0, "a head after now");
        assert_eq!(by_count(&[400, 900, 200], 2), 1, "a fast clock");
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
