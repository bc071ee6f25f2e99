//! The time each snapshot counts as taken, for a time in a WHEN: its own date, unless a wrong
//! clock set it (see [`crate::store::dates`], which pruning by age shares, so that it keeps
//! every snapshot a time can pick). An answer that rests on a misdated snapshot is warned of.

use std::collections::HashSet;
use std::sync::Mutex;

use git2::{Commit, Oid};

use super::{at, show, unix_now};
use crate::store::{dates, short_id};

/// A snapshot, the time it counts as taken, and whether a wrong clock dated it.
pub(super) struct Dated {
    pub id: Oid,
    pub time: i64,
    pub raw: i64,
    pub misdated: bool,
}

/// The snapshots from `head` back, each with the time it counts as taken. Times need not fall
/// along the chain (a clock was slow or fast for one run or several): the correctly dated
/// snapshots keep their dates, a misdated one counts as taken at the nearest time they allow
/// (a fast one at the next correctly dated snapshot's, a slow one at the one before's). Times
/// then never rise going back, a time picks the latest snapshot at or before it, and a wrong
/// clock misleads no correctly dated snapshot's time.
pub(super) fn dated_chain(head: Commit<'_>) -> Vec<Dated> {
    let mut ids = Vec::new();
    let mut raw = Vec::new();
    let mut next = Some(head);
    while let Some(commit) = next {
        ids.push(commit.id());
        raw.push(commit.time().seconds());
        next = commit.parent(0).ok();
    }
    let now = unix_now();
    let sorted = dates::sort_out(&raw, now);
    let disputed = disputed(&raw, now);
    ids.into_iter()
        .enumerate()
        .map(|(i, id)| Dated {
            id,
            time: sorted.counted[i],
            raw: raw[i],
            misdated: sorted.misdated[i] || disputed[i],
        })
        .collect()
}

/// Which dates (newest first) are out of order with another snapshot's (one in the future
/// is left out of the older ones' latest: a fast clock disputes only its own snapshot): the
/// rule above picks the likelier clock to trust, but a slow clock for several runs cannot be
/// told from a fast one before it, so an answer resting on either side is warned of.
fn disputed(raw: &[i64], now: i64) -> Vec<bool> {
    // Dated before an older snapshot (one in the future left out: a fast clock's date disputes
    // only itself), as pruning by age counts dates.
    let latest = dates::latest_dates(raw, now);
    let mut out: Vec<bool> = (0..raw.len())
        .map(|i| latest[i].is_some_and(|d| d != raw[i]))
        .collect();
    let mut newer_min = i64::MAX; // the earliest date of a newer snapshot
    for i in 0..raw.len() {
        out[i] |= raw[i] > newer_min;
        newer_min = newer_min.min(raw[i]);
    }
    out
}

/// Warn (once per time and snapshot) when the time `secs`, answered by `chain[picked]`, rests
/// on a misdated snapshot: the one picked, or the next newer one (taken at some time between
/// its correctly dated neighbours, it may really be the one current at `secs`).
pub(super) fn warn_if_misdated(chain: &[Dated], picked: usize, secs: i64) {
    let Some(bad) = [Some(picked), picked.checked_sub(1)]
        .into_iter()
        .flatten()
        .find(|&i| chain[i].misdated)
    else {
        return;
    };
    static WARNED: Mutex<Option<HashSet<(i64, Oid)>>> = Mutex::new(None);
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if !warned
        .get_or_insert_default()
        .insert((secs, chain[picked].id))
    {
        return;
    }
    let d = &chain[bad];
    tell!(
        "sqlgit: warning: the time {} gives snapshot {} by the order of runs: snapshot {} is \
         misdated by a wrong clock ({}; counted as taken at {}); name a snapshot by commit id \
         to be sure",
        show(at(secs)),
        short_id(chain[picked].id),
        short_id(d.id),
        show(at(d.raw)),
        show(at(d.time))
    );
}
