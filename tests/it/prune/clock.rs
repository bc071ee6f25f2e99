//! Pruning by age (`--keep DURATION`) and times in a WHEN when one run's clock was wrong: a
//! snapshot taken within the window by the real order of runs is never pruned, whether a run's
//! clock was slow (its snapshot dated before older ones) or fast (its snapshot dated in the
//! future, or its pruning done by a clock ahead of every other run).

use super::{Fx, printed_commit};
use crate::env::rfc3339;

const DAY: u64 = 86_400;

/// Six snapshots a minute apart under `--keep 1day`, newest first.
fn six(fx: &Fx) -> Vec<String> {
    let mut ids: Vec<String> = (0..6)
        .map(|_| printed_commit(&fx.snapshot(&["--keep", "1day"]).success()))
        .collect();
    ids.reverse();
    ids
}

#[test]
fn one_run_with_a_slow_clock_prunes_nothing_recent_and_times_still_find_snapshots() {
    let fx = Fx::new(false);
    let recent = six(&fx);
    let now = fx.now.get();
    // One run with the clock three days slow, then the clock is right again.
    fx.now.set(now - 3 * DAY);
    let slow = printed_commit(&fx.snapshot(&[]).success());
    fx.now.set(now + 60);
    let run = fx.snapshot(&[]).success();
    let newest = printed_commit(&run);
    assert!(
        run.stdout_str()
            .contains(&format!("note: snapshot {} (dated", &slow[..12])),
        "{}",
        run.stdout_str()
    );
    let mut all = vec![newest, slow.clone()];
    all.extend(recent.iter().cloned());
    assert_eq!(
        fx.ids(&fx.repo),
        all,
        "every snapshot of the last day stays"
    );
    // A time finds the snapshot current then by the order of runs: the misdated one counts as
    // taken no earlier than its parent.
    for (at, expect) in [
        (now - 150, &recent[3]),
        (now + 60, &slow),
        (now + 120, &all[0]),
    ] {
        let when = rfc3339(at);
        let run = fx.cat(Some(&when), &fx.repo).success();
        let want = fx.cat(Some(expect), &fx.repo).success();
        assert!(
            run.stdout() == want.stdout(),
            "cat {when}: not snapshot {expect}"
        );
    }
    fx.assert_fsck(&fx.repo);
}

#[test]
fn one_run_with_a_fast_clock_prunes_nothing_recent() {
    let fx = Fx::new(false);
    let recent = six(&fx);
    let now = fx.now.get();
    // An unchanged run with the clock 30 days ahead: warned, nothing pruned.
    fx.now.set(now + 30 * DAY);
    let run = fx.sqlgit(&["snapshot", "--repo", &fx.repo_arg()]).success();
    assert!(
        run.stderr_str().contains("ahead of the last run"),
        "{}",
        run.stderr_str()
    );
    assert_eq!(
        fx.ids(&fx.repo),
        recent,
        "nothing pruned by one clock reading"
    );
    // The clock is right again; then one snapshot is taken with it 30 days ahead.
    fx.now.set(now);
    let right = printed_commit(&fx.snapshot(&[]).success());
    fx.now.set(now + 30 * DAY);
    let fast = printed_commit(&fx.snapshot(&[]).success());
    fx.now.set(now + 60);
    let after = printed_commit(&fx.snapshot(&[]).success());
    let mut all = vec![after.clone(), fast, right.clone()];
    all.extend(recent.iter().cloned());
    assert_eq!(
        fx.ids(&fx.repo),
        all,
        "every snapshot of the last day stays"
    );
    // The misdated snapshot does not hide the one taken after it from a time.
    let run = fx.cat(Some(&rfc3339(now + 150)), &fx.repo).success();
    assert!(run.stdout() == fx.cat(Some(&after), &fx.repo).success().stdout());
    // A day later by clocks that agree: the snapshots before the window go, the fast one too
    // (taken before the one current when the window began, whatever its date says).
    fx.now.set(now + DAY + 60);
    let newest = printed_commit(&fx.snapshot(&[]).success());
    assert_eq!(fx.ids(&fx.repo), [newest, all[0].clone()]);
    fx.assert_fsck(&fx.repo);
}

const HOUR: u64 = 3_600;
const YEAR: u64 = 365 * DAY;

/// Run a snapshot dated `at` (`SQLGIT_NOW`) with `extra`; its commit id.
fn snapshot_at(fx: &Fx, at: u64, extra: &[&str]) -> String {
    fx.now.set(at - 60);
    printed_commit(&fx.snapshot(extra).success())
}

#[test]
fn one_fast_run_does_not_stop_pruning_by_age_and_is_the_one_named() {
    let fx = Fx::new(false);
    let t0 = fx.now.get() + 60;
    snapshot_at(&fx, t0, &["--keep", "1day"]);
    let fast = snapshot_at(&fx, t0 + YEAR, &["--keep", "1day"]);
    // Kept for now, the fast snapshot is named as misdated, and only it.
    fx.now.set(t0);
    let run = fx.snapshot(&[]).success();
    let out = run.stdout_str();
    let named = format!("note: snapshot {} (dated", &fast[..12]);
    assert!(
        out.contains(&named) && out.contains(" is dated in the future or before an older"),
        "{out}"
    );
    assert_eq!(out.matches("(dated").count(), 1, "{out}");
    let mut ids = Vec::new();
    for run in 1..=12 {
        ids.push(snapshot_at(&fx, t0 + run * 6 * HOUR, &[]));
    }
    ids.reverse();
    // The last day's snapshots and the one current when it began (by the previous run's
    // clock: pruning lags one run); the fast one is gone.
    assert_eq!(fx.ids(&fx.repo), ids[..6]);
    fx.assert_fsck(&fx.repo);
}

#[test]
fn times_go_by_the_correct_dates_after_several_fast_runs() {
    let fx = Fx::new(false);
    let t0 = fx.now.get() + 60;
    let before = snapshot_at(&fx, t0, &[]);
    snapshot_at(&fx, t0 + YEAR, &[]);
    snapshot_at(&fx, t0 + YEAR + 6 * HOUR, &[]);
    let mut ids = Vec::new();
    for run in 2..=12 {
        ids.push(snapshot_at(&fx, t0 + run * 6 * HOUR, &[]));
    }
    fx.now.set(t0 + 72 * HOUR + 60);
    let same = |when: &str, id: &str| {
        let run = fx.cat(Some(when), &fx.repo).success();
        assert!(
            run.stdout() == fx.cat(Some(id), &fx.repo).success().stdout(),
            "cat {when}: not {id}"
        );
        run.stderr_str().to_string()
    };
    assert_eq!(same("2h", &ids[9]), "");
    assert_eq!(same("1day", &ids[6]), "");
    assert_eq!(same(&rfc3339(t0 + 69 * HOUR), &ids[9]), "");
    // Between the snapshot before the fast runs and the first one after them: the answer rests
    // on the misdated snapshots' place in the order of runs, and a warning says so.
    let warned = same(&rfc3339(t0 + 11 * HOUR), &before);
    assert!(
        warned.contains("warning:") && warned.contains("misdated"),
        "{warned}"
    );
    assert_eq!(warned.lines().count(), 1, "{warned}");
}

/// One run with a slow clock (its snapshot dated before older ones, really taken between its
/// neighbours) must not make pruning keep less than right clocks would: that run may have come
/// after the window began, so the snapshot before it stays as the one current then. A time
/// before the kept window then says the points were pruned instead of giving the slow run's
/// snapshot, taken later; `--keep N` never cuts history at it either.
#[test]
fn a_slow_clock_keeps_the_snapshot_current_when_the_window_began() {
    let fx = Fx::new(false);
    let t0 = fx.now.get() + 60;
    let mut ids: Vec<String> = [t0, t0 + 100, t0 + 200, t0 - 5_000, t0 + 400, t0 + 500]
        .into_iter()
        .map(|at| snapshot_at(&fx, at, &[]))
        .collect();
    ids.reverse();
    let counted = fx.env.path("counted");
    crate::env::copy_dir(&fx.repo, &counted);
    // The window begins at t0 + 350: the slow run (really between t0 + 200 and t0 + 400) may
    // have come after it.
    let run = fx.prune(&["--keep", "150s"]).success();
    assert!(
        run.stdout_str()
            .contains(&format!("note: snapshot {} (dated", &ids[2][..12])),
        "{}",
        run.stdout_str()
    );
    assert_eq!(fx.ids(&fx.repo), ids[..4]);
    for at in [t0 + 150, t0 + 100] {
        let run = fx.cat(Some(&rfc3339(at)), &fx.repo).failure();
        let err = run.stderr_str();
        assert!(
            err.contains("no snapshot at or before") && err.contains("pruned"),
            "{err}"
        );
    }
    let repo = counted.display().to_string();
    fx.sqlgit(&["prune", "--repo", &repo, "--keep", "3"])
        .success();
    assert_eq!(
        fx.ids(&counted),
        ids[..4],
        "not cut at the slow run's snapshot"
    );
    let run = fx.cat(Some(&rfc3339(t0 + 150)), &counted).failure();
    assert!(run.stderr_str().contains("pruned"), "{}", run.stderr_str());
    fx.assert_fsck(&fx.repo);
}
