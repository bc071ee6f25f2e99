//! Which snapshot dates a wrong clock set, and when such a snapshot counts as taken: one answer
//! shared by times in a WHEN (`when`) and pruning by age (`prune`), so that pruning keeps every
//! snapshot a time can pick.
//!
//! Snapshots are in the real order of runs (each commit's parent was taken before it), so
//! correct dates never fall going forward. The correctly dated snapshots are taken to be the
//! largest set whose dates do (a longest non-decreasing run of dates, in order): a clock that
//! was fast for one run or several (then corrected), or slow, misdates the fewest snapshots
//! that way. Dates after "now" count for little, so a fast clock's snapshots lose to the
//! correct ones even while they outnumber them. A misdated snapshot counts as taken at the
//! nearest date its correctly dated neighbours allow: a fast one at the newer neighbour's, a
//! slow one at the older neighbour's, never before an older snapshot.

/// The dates of a chain of snapshots, newest first.
pub struct Dates {
    /// When each snapshot counts as taken: never later than an older one's.
    pub counted: Vec<i64>,
    /// Whether its own date was set by a wrong clock.
    pub misdated: Vec<bool>,
}

/// Sort out `times` (snapshot dates, newest first) by the clock reading `now`.
pub fn sort_out(times: &[i64], now: i64) -> Dates {
    let chrono: Vec<i64> = times.iter().rev().copied().collect();
    let correct = longest_rising(&chrono, now);
    let n = chrono.len();
    let mut counted = chrono.clone();
    // The nearest correct dates before and after each snapshot.
    let mut before = vec![i64::MIN; n];
    let mut last = i64::MIN;
    for k in 0..n {
        before[k] = last;
        if correct[k] {
            last = chrono[k];
        }
    }
    let mut next = i64::MAX;
    for k in (0..n).rev() {
        if correct[k] {
            next = chrono[k];
        } else {
            counted[k] = chrono[k].clamp(before[k], next);
        }
    }
    // Within a run of misdated snapshots (fast, then slow), none before an older one.
    let mut oldest_max = i64::MIN;
    for t in &mut counted {
        oldest_max = oldest_max.max(*t);
        *t = oldest_max;
    }
    counted.reverse();
    let mut misdated: Vec<bool> = correct.iter().map(|c| !c).collect();
    misdated.reverse();
    Dates { counted, misdated }
}

/// Which of `chrono` (dates, oldest first) form the heaviest non-decreasing subsequence, a
/// date after `now` weighing far less than one at or before it. Ties keep the newest snapshot
/// (a newer run's clock was right; the one before it fast) and, before it, the higher date (an
/// older run's clock was right; the one after it slow). O(n log n): a Fenwick tree of the best
/// subsequence ending at each date.
fn longest_rising(chrono: &[i64], now: i64) -> Vec<bool> {
    let n = chrono.len();
    let mut ranks = chrono.to_vec();
    ranks.sort_unstable();
    ranks.dedup();
    let heavy = n as u64 + 1;
    // (weight of the best subsequence ending here, its last date, its last index)
    type Key = Option<(u64, i64, usize)>;
    let mut tree: Vec<Key> = vec![None; ranks.len() + 1];
    let mut prev = vec![usize::MAX; n];
    let mut end: Option<(u64, usize)> = None;
    for (k, &t) in chrono.iter().enumerate() {
        let rank = ranks.partition_point(|&r| r < t) + 1;
        let mut found: Key = None;
        let mut q = rank;
        while q > 0 {
            found = found.max(tree[q]);
            q &= q - 1;
        }
        let weight = if t > now { 1 } else { heavy } + found.map_or(0, |f| f.0);
        prev[k] = found.map_or(usize::MAX, |f| f.2);
        let mut u = rank;
        while u < tree.len() {
            tree[u] = tree[u].max(Some((weight, t, k)));
            u += u & u.wrapping_neg();
        }
        if end.is_none_or(|(w, _)| weight >= w) {
            end = Some((weight, k));
        }
    }
    let mut correct = vec![false; n];
    let mut k = end.map_or(usize::MAX, |(_, k)| k);
    while k != usize::MAX {
        correct[k] = true;
        k = prev[k];
    }
    correct
}

/// Each date (`times` newest first) counted as no earlier than an older snapshot's: what
/// pruning goes by to tell a date it can cut at (one equal to its own: neither after now nor
/// before an older one), and what a WHEN calls dated out of order. A date after `now` is None: a
/// fast clock set it, and it says nothing of the snapshot's age. A date before an older
/// snapshot's may be a slow clock's (a machine that booted in 2000 until NTP set it right) or
/// the older one's clock may have been fast: which cannot be told from dates alone, so pruning
/// does not take it as a bound of when its snapshot was taken (the older date bounds its own
/// snapshot either way: right, or later than it was taken), and a wrong clock only ever keeps
/// more.
pub fn latest_dates(times: &[i64], now: i64) -> Vec<Option<i64>> {
    let mut dates = vec![None; times.len()];
    let mut latest = i64::MIN;
    for (i, &t) in times.iter().enumerate().rev() {
        if t <= now {
            latest = latest.max(t);
            dates[i] = Some(latest);
        }
    }
    dates
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Misdated positions and counted times of `times` (newest first), now being 10_000.
    fn check(times: &[i64], misdated: &[usize], counted: &[i64]) {
        let d = sort_out(times, 10_000);
        let found: Vec<usize> = (0..times.len()).filter(|&i| d.misdated[i]).collect();
        assert_eq!(found, misdated, "misdated in {times:?}");
        assert_eq!(d.counted, counted, "counted in {times:?}");
    }

    #[test]
    fn one_wrong_clock() {
        check(&[400, 300, 200, 100], &[], &[400, 300, 200, 100]);
        check(&[300, 200, 200, 100], &[], &[300, 200, 200, 100]);
        // Slow: counts as taken at its parent's date.
        check(&[300, 10, 250, 200], &[1], &[300, 250, 250, 200]);
        check(&[300, 150, 200], &[1], &[300, 200, 200]);
        check(&[100, 300, 200], &[0], &[300, 300, 200]);
        // Fast: counts as taken at the next snapshot's date.
        check(&[300, 5000, 90, 80], &[1], &[300, 300, 90, 80]);
        check(&[300, 250, 90, 5000], &[3], &[300, 250, 90, 90]);
        // A fast head proves nothing wrong; a head before its parent but after the one before
        // that: the parent was fast.
        check(&[5000, 200, 100], &[], &[5000, 200, 100]);
        check(&[150, 200, 100], &[1], &[150, 150, 100]);
        check(&[], &[], &[]);
        check(&[7], &[], &[7]);
    }

    #[test]
    fn a_clock_wrong_for_several_runs() {
        // Two and three fast runs, then the clock corrected.
        check(
            &[500, 400, 300, 9000, 8000, 100],
            &[3, 4],
            &[500, 400, 300, 300, 300, 100],
        );
        check(
            &[600, 500, 400, 300, 8200, 8100, 8000, 100],
            &[4, 5, 6],
            &[600, 500, 400, 300, 300, 300, 300, 100],
        );
        // Once now passed their dates, the more numerous run is taken as correct.
        check(
            &[400, 300, 8200, 8100, 8000, 100],
            &[0, 1],
            &[8200, 8200, 8200, 8100, 8000, 100],
        );
        // Fast runs outnumbering the correct ones since: dated after now, they lose.
        check(
            &[300, 200, 19300, 19200, 19100, 100],
            &[2, 3, 4],
            &[300, 200, 200, 200, 200, 100],
        );
        // Two slow runs.
        check(
            &[500, 400, 20, 10, 300, 200],
            &[2, 3],
            &[500, 400, 300, 300, 300, 200],
        );
    }
}
