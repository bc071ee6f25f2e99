//! An older copy of the repository put back (a machine restored from last night's backup)
//! while the remotes went on receiving newer snapshots: the history remote's history must never
//! run back in time — `push --reroot` puts only the snapshots it lacks (those taken after its
//! newest) on top, so a restore by time still returns what was current then — and the latest
//! remote is never given an older snapshot than the one it holds.

use std::path::{Path, PathBuf};

use super::recovery::{run_printed_command, snapshot_run};
use super::{Fx, assert_push_failures, printed_commit};

/// Six cron runs to a history and a latest remote on the git daemon (a change before each but
/// the first), the repository copied aside after the third; then the copy is put back.
/// Returns (history, latest, each snapshot's time).
fn put_back_after_six(fx: &Fx) -> (PathBuf, PathBuf, Vec<u64>) {
    let (history, latest, h_url, l_url) = fx.both_remotes();
    let cron = ["--history-remote", &h_url, "--latest-remote", &l_url];
    let backup = fx.env.path("backup.sqlgit");
    let mut times = Vec::new();
    for i in 0..6 {
        if i == 3 {
            copy_dir(fx, &fx.repo, &backup);
        }
        if i > 0 {
            fx.change();
        }
        times.push(fx.now.get());
        fx.snapshot(&cron).success().assert_quiet();
    }
    std::fs::remove_dir_all(&fx.repo).unwrap();
    copy_dir(fx, &backup, &fx.repo);
    (history, latest, times)
}

fn copy_dir(fx: &Fx, from: &Path, to: &Path) {
    let mut cmd = fx.env.command("cp");
    cmd.arg("-a").arg(from).arg(to);
    fx.env.run(cmd, b"").success();
}

/// Commit times of `main` in `dir`, newest first.
fn commit_times(fx: &Fx, dir: &Path) -> Vec<u64> {
    fx.git(dir, &["log", "--format=%ct", "refs/heads/main"])
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

/// The printed `--reroot` re-commits only the snapshot taken after the remote's newest; the
/// old ones it has stay where they are, and every point in time restores what was current then.
#[test]
fn an_older_copy_rerooted_puts_only_its_newer_snapshots_on_top() {
    let fx = Fx::new();
    let (history, latest, mut times) = put_back_after_six(&fx);
    let h_url = fx.daemon.url("history");
    let newest = fx.rev(&history, "refs/heads/main").unwrap();
    fx.change();
    times.push(fx.now.get());
    let run = snapshot_run(&fx, &[]);
    printed_commit(&run);
    let causes = assert_push_failures(&run, &[("history", &h_url)]);
    fx.assert_latest(&latest);

    let fix = run_printed_command(&fx, &causes[0]).success();
    let said = fix.stdout_str();
    assert!(
        said.contains("re-rooted 1 snapshot on top") && said.contains("3 older ones it has"),
        "{said}"
    );
    let tip = fx.rev(&history, "refs/heads/main").unwrap();
    assert_eq!(tip, fx.head());
    assert_eq!(fx.git(&history, &["rev-parse", "main^"]), newest);
    assert_eq!(fx.git(&history, &["rev-list", "--count", "main"]), "7");
    let mut sorted = commit_times(&fx, &history);
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(commit_times(&fx, &history), sorted, "time never runs back");
    fx.assert_fsck(&history);
    let repo = fx.repo_arg();
    for (i, t) in times.iter().enumerate() {
        let at = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(t + 30),
        )
        .to_string();
        let cat = fx.sqlgit(&["cat", "--repo", &repo, &at]).success();
        let dump = cat.stdout_str();
        let rows = i + 1;
        assert!(
            dump.contains(&format!("'row {rows}'"))
                && !dump.contains(&format!("'row {}'", rows + 1)),
            "at {at} the snapshot with {rows} rows was current:\n{dump}"
        );
    }
    fx.change();
    snapshot_run(&fx, &[]).success().assert_quiet();
    fx.assert_history(&history, 8);
}

/// A plain `sqlgit push` from the older copy refuses to put its older snapshot over the latest
/// remote's newer one, saying so; the printed `--reroot` then makes the repository continue
/// the remotes' newest, which both keep.
#[test]
fn an_older_copy_never_replaces_the_latest_remotes_newer_snapshot() {
    let fx = Fx::new();
    let (history, latest, _) = put_back_after_six(&fx);
    let newest = fx.rev(&history, "refs/heads/main").unwrap();
    let latest_before = fx.rev(&latest, "refs/heads/main").unwrap();
    let run = fx.push(&[]);
    assert_eq!(run.code(), Some(1), "{}", run.stderr_str());
    assert!(
        run.stderr_str()
            .contains("refusing to replace it with an older one"),
        "{}",
        run.stderr_str()
    );
    assert_eq!(fx.rev(&latest, "refs/heads/main").unwrap(), latest_before);
    assert_eq!(fx.rev(&history, "refs/heads/main").unwrap(), newest);

    let fix = fx.push(&["--reroot"]).success();
    assert!(
        fix.stdout_str()
            .contains("this repository now continues it"),
        "{}",
        fix.stdout_str()
    );
    assert_eq!(fx.head(), newest);
    assert_eq!(fx.rev(&latest, "refs/heads/main").unwrap(), latest_before);
    fx.assert_history(&history, 6);
    fx.change();
    fx.snapshot(&[]).success().assert_quiet();
    fx.assert_history(&history, 7);
    fx.assert_latest(&latest);
}

/// A snapshot from a clock that ran a month fast reached the latest remote: it was this
/// repository's own, so the next run's (older by the clock, newer in fact) still replaces it.
#[test]
fn the_latest_remotes_snapshot_from_a_fast_clock_is_still_replaced() {
    let fx = Fx::new();
    let latest = fx.daemon.create_bare("latest");
    let l_url = fx.daemon.url("latest");
    fx.snapshot(&["--latest-remote", &l_url]).success();
    fx.change();
    let db = fx.db.display().to_string();
    let repo = fx.repo_arg();
    let ahead = (fx.now.get() + 30 * 86400).to_string();
    let args = ["snapshot", db.as_str(), "--repo", repo.as_str()];
    fx.sqlgit_with(&args, &[("SQLGIT_NOW", ahead.as_str())], super::RUN_LIMIT)
        .0
        .success();
    fx.change();
    fx.snapshot(&[]).success().assert_quiet();
    fx.assert_latest(&latest);
}

/// The history remote restored from an older backup of itself (its main rewound below two
/// snapshots it had confirmed, a third pruned here since), after a clock that ran an hour fast
/// for its first snapshots: the run names the rewind, and the printed `--reroot` puts every kept
/// snapshot the remote lacks back on top of its main, never leaving one out because the remote
/// once confirmed it, and says that the pruned one is lost.
#[test]
fn a_rewound_history_remote_gets_back_every_kept_snapshot_it_lacks() {
    let fx = Fx::new();
    let history = fx.daemon.create_bare("history");
    let h_url = fx.daemon.url("history");
    let start = fx.now.get();
    let cron = ["--history-remote", h_url.as_str(), "--keep", "2"];
    for (i, at) in [3600, 3900, 100, 400, 700].into_iter().enumerate() {
        if i > 0 {
            fx.change();
        }
        fx.now.set(start + at);
        fx.snapshot(&cron).success();
    }
    let kept_trees = fx.git(&fx.repo, &["log", "--format=%T", "refs/heads/main"]);
    fx.git(
        &history,
        &["update-ref", "refs/heads/main", "refs/heads/main~3"],
    );
    fx.git(&history, &["reflog", "expire", "--expire=now", "--all"]);
    fx.git(&history, &["gc", "-q", "--prune=now"]);
    fx.now.set(start + 1000);
    let run = fx.push(&[]);
    assert_eq!(run.code(), Some(1), "{}", run.stderr_str());
    assert!(
        run.stderr_str().contains("or it was rewound"),
        "{}",
        run.stderr_str()
    );

    let fix = fx.push(&["--reroot"]).success();
    let said = fix.stdout_str();
    assert!(
        said.contains("the history remote was rewound")
            && said.contains("no longer has 2 snapshots it had confirmed")
            && said.contains("re-rooted 2 snapshots on top"),
        "{said}"
    );
    assert!(
        fix.stderr_str().contains("the rewind lost them"),
        "{}",
        fix.stderr_str()
    );
    let remote_trees = fx.git(&history, &["log", "--format=%T", "refs/heads/main"]);
    for tree in kept_trees.lines() {
        assert!(remote_trees.contains(tree), "{tree} lost:\n{said}");
    }
    assert_eq!(fx.rev(&history, "refs/heads/main").unwrap(), fx.head());
    fx.assert_fsck(&history);
    fx.change();
    fx.snapshot(&cron).success().assert_quiet();
    fx.assert_history(&history, 5);
}

/// Six snapshots (`--keep 2`), `log --all` (the history cache now holds them all), then the
/// history remote is restored from a backup four snapshots old: (history, cron flags, the trees
/// of the six snapshots newest first, the ids of the two pruned here that the rewind lost).
fn rewound_below_pruned_snapshots(
    fx: &Fx,
) -> (std::path::PathBuf, Vec<String>, String, [String; 2]) {
    let history = fx.daemon.create_bare("history");
    let cron: Vec<String> = ["--history-remote", &fx.daemon.url("history"), "--keep", "2"]
        .map(String::from)
        .into();
    let flags: Vec<&str> = cron.iter().map(String::as_str).collect();
    for i in 0..6 {
        if i > 0 {
            fx.change();
        }
        fx.snapshot(&flags).success().assert_quiet();
    }
    let repo = fx.repo_arg();
    fx.sqlgit(&["log", "--all", "--repo", &repo]).success();
    let trees = fx.git(&history, &["log", "--format=%T", "refs/heads/main"]);
    let lost = ["main~2", "main~3"].map(|r| fx.git(&history, &["rev-parse", r]));
    fx.git(
        &history,
        &["update-ref", "refs/heads/main", "refs/heads/main~4"],
    );
    fx.git(&history, &["reflog", "expire", "--expire=now", "--all"]);
    fx.git(&history, &["gc", "-q", "--prune=now"]);
    (history, cron, trees, lost)
}

/// Make the history cache look unused for two hours (what `prune` checks).
fn backdate_cache(fx: &Fx) {
    let stamp = fx.repo.join("sqlgit-cache").join("sqlgit-used");
    let mut cmd = fx.env.command("touch");
    cmd.arg("-d").arg("2 hours ago").arg(&stamp);
    fx.env.run(cmd, b"").success();
}

/// The rewind lost two snapshots pruned here, but the history cache still holds them: the
/// printed `--reroot` puts them back on the remote (under the kept ones) instead of saying no
/// copy is left, and every snapshot ever confirmed is on the remote again.
#[test]
fn a_reroot_puts_back_pruned_snapshots_the_history_cache_kept() {
    let fx = Fx::new();
    let (history, cron, trees, _) = rewound_below_pruned_snapshots(&fx);
    let flags: Vec<&str> = cron.iter().map(String::as_str).collect();
    fx.change();
    let run = fx.snapshot(&flags);
    assert_eq!(run.code(), Some(1), "{}", run.stderr_str());
    let fix = super::recovery::run_printed_command(&fx, &run.stderr_str()).success();
    assert!(
        !fix.stderr_str().contains("no copy is left") && !fix.stderr_str().contains("lost them"),
        "{}",
        fix.stderr_str()
    );
    assert!(
        fix.stdout_str()
            .contains("put back 2 snapshots pruned here"),
        "{}",
        fix.stdout_str()
    );
    let remote_trees = fx.git(&history, &["log", "--format=%T", "refs/heads/main"]);
    for tree in trees.lines() {
        assert!(remote_trees.contains(tree), "{tree} lost:\n{remote_trees}");
    }
    assert_eq!(fx.rev(&history, "refs/heads/main").unwrap(), fx.head());
    fx.assert_fsck(&history);
    backdate_cache(&fx);
    fx.change();
    fx.snapshot(&flags).success().assert_quiet();
    fx.assert_history(&history, 8);
}

/// After the rewind, with the remote reachable, `log --all` marks the lost snapshots `cache`
/// (not `remote`) and warns with the fix; the cache holding them outlives an hour unused and a
/// cron run's prune, so `cat` still reads them.
#[test]
fn log_all_marks_snapshots_a_rewound_history_remote_lost() {
    let fx = Fx::new();
    let (_history, cron, _, lost) = rewound_below_pruned_snapshots(&fx);
    let repo = fx.repo_arg();
    let log = fx.sqlgit(&["log", "--all", "--repo", &repo]).success();
    for id in &lost {
        let line = log
            .stdout_str()
            .lines()
            .find(|l| l.starts_with(&id[..12]))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("{id} not listed:\n{}", log.stdout_str()));
        assert!(
            line.contains(" cache ") && !line.contains("remote"),
            "{line}"
        );
    }
    assert!(
        log.stderr_str().contains("no longer has 2 snapshots")
            && log.stderr_str().contains("--reroot"),
        "{}",
        log.stderr_str()
    );
    let json = fx
        .sqlgit(&["log", "--all", "--json", "--repo", &repo])
        .success();
    let entries: serde_json::Value = serde_json::from_str(&json.stdout_str()).unwrap();
    let gone = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == lost[0].as_str())
        .unwrap();
    assert_eq!(gone["remote"], false, "{gone}");
    backdate_cache(&fx);
    let flags: Vec<&str> = cron.iter().map(String::as_str).collect();
    fx.change();
    fx.snapshot(&flags).code_is(1);
    let cat = fx.sqlgit(&["cat", &lost[0], "--repo", &repo]).success();
    assert!(cat.stdout_str().contains("row 4"), "{}", cat.stdout_str());
}

/// The history cache last fetched three snapshots ago, so the one right below the oldest kept
/// one is nowhere; the rewind lost it and the one below it, which the cache kept: the re-root
/// still puts that one back (newer than the rewound main), and afterwards `log --all` no
/// longer points at a `--reroot` that has nothing left to do.
#[test]
fn a_reroot_puts_back_what_the_cache_kept_below_a_snapshot_it_never_fetched() {
    let fx = Fx::new();
    let history = fx.daemon.create_bare("history");
    let url = fx.daemon.url("history");
    let cron = ["--history-remote", url.as_str(), "--keep", "2"];
    let repo = fx.repo_arg();
    for i in 0..6 {
        if i == 3 {
            fx.sqlgit(&["log", "--all", "--repo", &repo]).success();
        }
        if i > 0 {
            fx.change();
        }
        fx.snapshot(&cron).success().assert_quiet();
    }
    let kept_by_cache = fx.git(&history, &["rev-parse", "main~3^{tree}"]);
    fx.git(
        &history,
        &["update-ref", "refs/heads/main", "refs/heads/main~4"],
    );
    // Fails (neither the remote nor the cache has the oldest kept snapshot's parent), but the
    // cache has seen the rewind.
    fx.sqlgit(&["log", "--all", "--repo", &repo]);
    fx.push(&["--reroot"]).success();
    let remote = fx.git(&history, &["log", "--format=%T", "refs/heads/main"]);
    assert!(remote.contains(&kept_by_cache), "not put back:\n{remote}");
    let log = fx.sqlgit(&["log", "--all", "--repo", &repo]).success();
    assert!(
        !log.stderr_str().contains("--reroot"),
        "{}",
        log.stderr_str()
    );
}

/// Another writer moved the rewound remote past the snapshot it lost: the re-root puts the kept
/// ones back on top, and `log --all` then counts only the one that could not go back, without
/// pointing at a `--reroot` that cannot do it.
#[test]
fn after_a_reroot_log_all_counts_only_what_stays_lost() {
    let fx = Fx::new();
    let history = fx.daemon.create_bare("history");
    let url = fx.daemon.url("history");
    let cron = ["--history-remote", url.as_str(), "--keep", "2"];
    for i in 0..5 {
        if i > 0 {
            fx.change();
        }
        fx.snapshot(&cron).success().assert_quiet();
    }
    let repo = fx.repo_arg();
    fx.sqlgit(&["log", "--all", "--repo", &repo]).success();
    fx.git(
        &history,
        &["update-ref", "refs/heads/main", "refs/heads/main~3"],
    );
    let other = fx.env.path("other.sqlgit").display().to_string();
    let db = fx.db.display().to_string();
    fx.change();
    let args = ["snapshot", &db, "--repo", &other, "--history-remote", &url];
    fx.sqlgit(&args).success();
    fx.sqlgit(&["log", "--all", "--repo", &repo]).success();
    fx.push(&["--reroot"]).success();
    let log = fx.sqlgit(&["log", "--all", "--repo", &repo]).success();
    assert!(
        log.stderr_str().contains("no longer has 1 snapshot ")
            && log.stderr_str().contains("cannot go back")
            && !log.stderr_str().contains("--reroot"),
        "{}",
        log.stderr_str()
    );
}
