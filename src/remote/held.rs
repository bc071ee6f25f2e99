//! What the history remote holds of this repository's snapshots when a re-root asks it, and
//! what the history cache kept of the ones it lost: pruned here after it confirmed them, then
//! gone from it because it was rewound (restored from an older backup of itself) or emptied
//! (recreated). Those go back first, from the cache, so a re-root never leaves out the only
//! copy of a snapshot.

use anyhow::{Context, Result, bail};
use git2::Oid;

use super::recover::ONCE_CONFIRMED;
use super::{HISTORY_TRACKING, short};
use crate::store::Store;
use crate::store::walk::raw_parents;

/// Which of this repository's kept snapshots (and the newest pruned one, the oldest kept
/// one's parent) the history remote's `main` holds now — not what it once confirmed: a remote
/// restored from an older backup of itself no longer has them.
#[derive(Default)]
pub(super) struct Held {
    /// Local snapshots the remote's main is, or descends from.
    pub(super) ids: std::collections::HashSet<Oid>,
    /// Snapshots pruned here that the remote confirmed and lost (rewound or emptied), below
    /// the oldest kept one and newer than its main (if any), copied back from the history cache: oldest first.
    pub(super) recovered: Vec<Oid>,
    /// The newest of those lost snapshots that could not be put back (older than the main).
    pub(super) unrecovered: Option<Oid>,
}

/// Ask the history remote which kept snapshots its main (`tip`; None: it is empty) holds.
/// Only needed when this repository remembers a confirmation (the tracking ref,
/// [`ONCE_CONFIRMED`]), or the remote is empty and a history cache is here (it may keep what
/// the remote had); then the remote's whole history is fetched into the history cache
/// (`DIR/sqlgit-cache`, which reads of older snapshots reuse) and the kept snapshots are
/// looked for in it.
pub(super) fn remote_holds(
    store: &Store,
    url: &str,
    options: &super::Options,
    tip: Option<Oid>,
) -> Result<Held> {
    let remembered = [HISTORY_TRACKING, ONCE_CONFIRMED]
        .iter()
        .any(|r| store.repo.refname_to_id(r).is_ok());
    let cached = tip.is_none() && crate::store::cache::dir(store).exists();
    let mut held = Held::default();
    if !remembered && !cached {
        return Ok(held);
    }
    let _fetching = crate::store::cache::lock_for_fetch(store)?;
    let dir = crate::store::cache::create(store)?;
    let main = super::fetch_history(&dir, url, options).context(
        "fetch the history remote's history, to tell which snapshots kept here it still has \
         (a re-root never leaves out one it lacks)",
    )?;
    let cache = git2::Repository::open_bare(&dir).context("open the history cache")?;
    if main != tip {
        let show = |id: Option<Oid>| id.map_or("none".to_string(), short);
        bail!(
            "the history remote's main moved while re-rooting ({} then {}): run again",
            show(tip),
            show(main)
        );
    }
    // An empty remote holds none of them.
    let mut next = store.head()?;
    while let (Some(commit), Some(main)) = (next, main) {
        let mut ids = vec![commit.id()];
        // The oldest kept snapshot's own parent (pruned here) is asked about too.
        ids.extend(raw_parents(&commit));
        for id in ids {
            if id == main || cache.graph_descendant_of(main, id).unwrap_or(false) {
                held.ids.insert(id);
            }
        }
        next = commit.parent(0).ok();
    }
    (held.recovered, held.unrecovered) = recoverable(store, &cache, &held, tip)?;
    Ok(held)
}

/// The snapshots pruned here that the history cache kept when the remote (whose main is `tip`;
/// None: it is empty) lost them: the chain below the oldest kept snapshot that the cache's main
/// no longer holds and that is not older than `tip` (put on top of it, history would run back in time),
/// copied into the repository; oldest first. Also the newest lost one left out by its age.
fn recoverable(
    store: &Store,
    cache: &git2::Repository,
    held: &Held,
    tip: Option<Oid>,
) -> Result<(Vec<Oid>, Option<Oid>)> {
    let Some(mut oldest) = store.head()? else {
        return Ok((Vec::new(), None));
    };
    while let Ok(parent) = oldest.parent(0) {
        oldest = parent;
    }
    if held.ids.contains(&oldest.id()) {
        return Ok((Vec::new(), None));
    }
    let tip_time = match tip {
        Some(tip) => Some(cache.find_commit(tip)?.time().seconds()),
        None => None,
    };
    let newest_first = crate::store::cache::lost(cache);
    let lost: std::collections::HashSet<Oid> = newest_first.iter().copied().collect();
    let (mut chain, mut unrecovered) = (Vec::new(), None);
    let mut below = oldest.time().seconds();
    let mut next = raw_parents(&oldest).into_iter().next();
    loop {
        let id = match next {
            Some(id) if lost.contains(&id) => id,
            // A snapshot neither here nor in the cache (pruned here before the cache last
            // fetched): the lost ones older than it still go back, below the kept ones.
            Some(id) if cache.find_commit(id).is_err() => {
                let older = newest_first.iter().find(|&&l| {
                    !held.ids.contains(&l)
                        && cache
                            .find_commit(l)
                            .is_ok_and(|c| c.time().seconds() < below)
                });
                match older {
                    Some(&l) => l,
                    None => break,
                }
            }
            _ => break,
        };
        if held.ids.contains(&id) {
            break;
        }
        let commit = cache.find_commit(id)?;
        if tip_time.is_some_and(|t| commit.time().seconds() < t) {
            unrecovered = Some(id);
            break;
        }
        chain.push(id);
        below = commit.time().seconds();
        next = commit.parent_ids().next();
    }
    chain.reverse();
    for &id in &chain {
        crate::store::cache::copy_snapshot(cache, &store.repo, id)
            .context("copy a snapshot the history remote lost from the history cache")?;
    }
    Ok((chain, unrecovered))
}
