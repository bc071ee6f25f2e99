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
            .contains("1 snapshot is dated before an older one"),
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
    // A day later by clocks that agree: the snapshots before the window go.
    fx.now.set(now + DAY + 60);
    let newest = printed_commit(&fx.snapshot(&[]).success());
    assert_eq!(
        fx.ids(&fx.repo)[..4],
        [newest, all[0].clone(), all[1].clone(), right]
    );
    assert_eq!(fx.ids(&fx.repo).len(), 4);
    fx.assert_fsck(&fx.repo);
}
