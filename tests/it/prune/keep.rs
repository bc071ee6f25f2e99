//! Keeping the newest N snapshots or a duration of them: with a history remote (nothing it has
//! not confirmed is pruned, even while it is down), without one (pruning is free), and the `--keep`
//! values that are refused without changing anything.

use super::*;

#[test]
fn keep_10_with_a_history_remote_keeps_the_newest_10_locally_and_all_60_remotely() {
    let fx = Fx::new(true);
    let url = fx.url();
    let remote = fx.remote_path();
    fx.snapshot(&["--keep", "10", "--history-remote", &url])
        .success()
        .assert_quiet();
    assert_eq!(fx.keep_setting().as_deref(), Some("10"), "sqlgit.keep");
    for _ in 1..10 {
        fx.snapshot(&[]).success().assert_quiet();
    }
    assert_eq!(fx.count(&fx.repo), 10);
    assert!(
        !fx.repo.join("shallow").exists(),
        "nothing to prune yet, but REPO/shallow exists"
    );
    let size_10 = dir_size(&fx.repo);

    for i in 10..60 {
        let run = fx.snapshot(&[]).success().assert_quiet();
        if i == 10 {
            let out = run.stdout_str();
            assert!(
                out.contains("pruned 1 old snapshot;") && out.contains("10 kept locally"),
                "the 11th snapshot should report pruning one:\n{out}"
            );
        }
    }
    let local = fx.ids(&fx.repo);
    let remote_ids = fx.ids(&remote);
    assert_eq!(
        remote_ids.len(),
        60,
        "the history remote has every snapshot"
    );
    assert_eq!(local.len(), 10, "local history is the newest 10");
    assert_eq!(
        local,
        remote_ids[..10],
        "the same ids as the remote's newest 10"
    );
    assert_eq!(fx.logged(), local, "sqlgit log lists the kept snapshots");
    fx.assert_shallow_is(&local[9]);
    assert_eq!(
        fx.git(&fx.repo, &["rev-parse", "refs/remotes/history/main"]),
        local[0],
        "the remote-tracking ref follows the pushes"
    );
    fx.assert_fsck(&fx.repo);
    fx.assert_fsck(&remote);

    // Plain git on the pruned repository.
    let log = fx.git(&fx.repo, &["log", "--format=%H %ct %s", "main"]);
    assert_eq!(log.lines().count(), 10, "git log:\n{log}");
    for (line, id) in log.lines().zip(&local) {
        assert!(
            line.starts_with(id.as_str()),
            "git log line {line:?} vs {id}"
        );
    }
    let archived = fx.env.path("archived.db");
    let pipeline = format!(
        "git -C '{}' archive main | tar -xO | sqlite3 -bail '{}'",
        fx.repo.display(),
        archived.display()
    );
    let mut sh = fx.env.command("sh");
    sh.args(["-c", &pipeline]);
    run_limited(&fx.env, sh, RUN_LIMIT).success().assert_quiet();
    compare_databases(&fx.db, &archived);

    let size_60 = dir_size(&fx.repo);
    eprintln!("repository size: {size_10} bytes after 10 snapshots, {size_60} after 60");
    assert!(
        size_60 <= 2 * size_10,
        "disk use not bounded: {size_10} bytes after 10 snapshots, {size_60} after 60"
    );
}

#[test]
fn with_the_remote_down_nothing_unconfirmed_is_pruned_and_history_shrinks_back() {
    let mut fx = Fx::new(true);
    let url = fx.url();
    let remote = fx.remote_path();
    fx.snapshot(&["--keep", "10", "--history-remote", &url])
        .success();
    for _ in 1..12 {
        fx.snapshot(&[]).success().assert_quiet();
    }
    assert_eq!(fx.count(&fx.repo), 10);
    assert_eq!(fx.count(&remote), 12);
    let confirmed = fx.ids(&remote)[0].clone();

    // Outage: every snapshot commits, fails to push (exit 1), and prunes nothing, saying so in
    // one line: what the remote confirmed in an earlier run counts only once it answers again
    // (it may have been lost or recreated meanwhile).
    fx.daemon().stop();
    let mut unconfirmed = Vec::new();
    for k in 1..=15 {
        let run = fx.snapshot(&[]).code_is(1);
        let err = run.stderr_str();
        if err.lines().count() != 2
            || !err.contains("push to history remote")
            || !err.contains("nothing pruned")
        {
            run.fail("expected the push failure and one 'nothing pruned' line");
        }
        unconfirmed.insert(0, printed_commit(&run));
        let local = fx.ids(&fx.repo);
        assert_eq!(
            local[..k],
            unconfirmed[..],
            "after {k} failed pushes: the unconfirmed snapshots are all local"
        );
        assert!(
            local.contains(&confirmed),
            "after {k} failed pushes: the last confirmed commit was pruned"
        );
        assert_eq!(local.len(), 10 + k, "after {k} failed pushes");
    }
    assert_eq!(fx.count(&remote), 12, "the remote was down");
    assert_eq!(
        fx.count(&fx.repo),
        25,
        "15 unconfirmed + the 10 kept before"
    );
    fx.assert_fsck(&fx.repo);

    // Back up: `sqlgit push` catches up (without pruning), `sqlgit prune` shrinks to 10.
    fx.daemon().start();
    let run = fx
        .sqlgit(&["push", "--repo", &fx.repo_arg()])
        .success()
        .assert_quiet();
    assert!(
        run.stdout_str().contains("pushed 15 commits"),
        "{}",
        run.stdout_str()
    );
    assert_eq!(fx.count(&remote), 27, "everything pushed");
    assert_eq!(fx.count(&fx.repo), 25, "push alone does not prune");
    let run = fx.prune(&[]).success().assert_quiet();
    assert!(
        run.stdout_str().contains("pruned 15 old snapshots"),
        "{}",
        run.stdout_str()
    );
    let local = fx.ids(&fx.repo);
    assert_eq!(
        local,
        fx.ids(&remote)[..10],
        "local = the remote's newest 10"
    );
    fx.assert_shallow_is(&local[9]);
    fx.assert_fsck(&fx.repo);

    // A second outage, this time ended by the next snapshot alone.
    fx.daemon().stop();
    for _ in 0..12 {
        fx.snapshot(&[]).code_is(1);
    }
    assert_eq!(
        fx.count(&fx.repo),
        22,
        "12 unconfirmed + the 10 kept before"
    );
    fx.daemon().start();
    fx.snapshot(&[]).success().assert_quiet();
    assert_eq!(fx.count(&remote), 27 + 13, "everything pushed");
    let local = fx.ids(&fx.repo);
    assert_eq!(local.len(), 10, "local history shrank back to 10");
    assert_eq!(local, fx.ids(&remote)[..10]);
    fx.assert_shallow_is(&local[9]);
    fx.assert_fsck(&fx.repo);
    fx.assert_fsck(&remote);
}

#[test]
fn duration_retention_without_a_remote_prunes_freely() {
    let fx = Fx::new(false);
    let mut printed = Vec::new();
    for i in 0..30 {
        let run = fx.snapshot(&["--keep", "10min"]).success().assert_quiet();
        assert_eq!(fx.now.get(), T0 + 60 * i);
        printed.insert(0, printed_commit(&run));
    }
    assert_eq!(fx.keep_setting().as_deref(), Some("10min"), "sqlgit.keep");
    let now = fx.now.get();
    // Each run goes by the earlier of its clock and the previous run's (now-60 s): snapshots at
    // now-660 ... now, the one current when that window began included.
    let times = fx.times(&fx.repo);
    assert_eq!(times.len(), 12, "snapshot times kept: {times:?}");
    assert!(
        times.iter().all(|&t| t + 660 >= now),
        "a snapshot older than the window survived: {times:?} (now {now})"
    );
    assert_eq!(*times.last().unwrap(), now - 660);
    let local = fx.ids(&fx.repo);
    assert_eq!(local, printed[..12], "the newest 12 snapshots");
    fx.assert_shallow_is(&local[11]);
    fx.assert_fsck(&fx.repo);

    // A window longer than any clock can count (u64::MAX seconds) keeps everything, without a
    // clock-ahead warning (it once wrapped to a negative age and pruned like --keep 1).
    fx.prune(&["--keep", "18446744073709551615s"])
        .success()
        .assert_quiet();
    assert_eq!(fx.ids(&fx.repo), local, "an endless window prunes nothing");

    // `sqlgit prune` with a shorter duration, and then much later: the newest always stays.
    // The window begins between two snapshots (now-150 s): the one current then (now-180 s)
    // stays, so every moment of the window can still be restored.
    let run = fx.prune(&["--keep", "150s"]).success().assert_quiet();
    assert!(
        run.stdout_str().contains("pruned 8 old snapshots"),
        "{}",
        run.stdout_str()
    );
    assert_eq!(fx.keep_setting().as_deref(), Some("150s"), "sqlgit.keep");
    assert_eq!(fx.ids(&fx.repo), printed[..4]);
    // A day later by this clock only: the last run's time is trusted, loudly.
    fx.now.set(now + 86_400);
    let run = fx.prune(&[]).success();
    assert!(
        run.stderr_str().contains("ahead of the last run"),
        "{}",
        run.stderr_str()
    );
    assert_eq!(
        fx.ids(&fx.repo),
        printed[..4],
        "one clock reading ages nothing out"
    );
    // A run at that time agrees: the one after it goes by the new clock, and keeps the
    // snapshot current when its window began (the one from a day before).
    let newest = printed_commit(&fx.snapshot(&[]).success());
    fx.prune(&[]).success().assert_quiet();
    assert_eq!(fx.ids(&fx.repo), [newest, printed[0].clone()]);
    fx.assert_shallow_is(&printed[0]);
    fx.assert_fsck(&fx.repo);
    let sql = fx.cat(None, &fx.repo).success().assert_quiet();
    fx.assert_restores_to(sql.stdout(), "newest.db", &fx.db);
}

#[test]
fn bad_keep_values_are_refused_and_change_nothing() {
    let fx = Fx::new(false);
    for _ in 0..5 {
        fx.snapshot(&["--keep", "3"]).success().assert_quiet();
    }
    assert_eq!(fx.count(&fx.repo), 3);
    let before = tree_state(&fx.repo);
    let repo = fx.repo_arg();

    for bad in ["banana", "-3", "1.5", "10 parsecs"] {
        let flag = format!("--keep={bad}");
        let run = fx.sqlgit(&["prune", "--repo", &repo, &flag]);
        if !matches!(run.code(), Some(1 | 2)) {
            run.fail("expected exit 1 or 2");
        }
        assert_one_line(&run, "");
        assert!(run.stdout().is_empty(), "{}", run.stdout_str());
        assert!(
            tree_state(&fx.repo) == before,
            "sqlgit prune {flag} changed the repository"
        );

        fx.change();
        let db = fx.db.display().to_string();
        let run = fx.sqlgit(&["snapshot", &db, "--repo", &repo, &flag]);
        if !matches!(run.code(), Some(1 | 2)) {
            run.fail("expected exit 1 or 2");
        }
        assert_one_line(&run, "");
        assert!(
            tree_state(&fx.repo) == before,
            "sqlgit snapshot {flag} changed the repository"
        );
    }

    // No retention given or configured: a usage error.
    let other = Fx::new(false);
    other.snapshot(&[]).success();
    other.snapshot(&[]).success();
    let before_other = tree_state(&other.repo);
    let run = other.prune(&[]).code_is(2);
    assert_one_line(&run, "--keep");
    assert!(
        tree_state(&other.repo) == before_other,
        "a refused prune changed the repository"
    );
    assert_eq!(other.count(&other.repo), 2);

    // A repository that does not exist.
    let missing = fx.env.path("missing.sqlgit").display().to_string();
    let run = fx
        .sqlgit(&["prune", "--repo", &missing, "--keep", "3"])
        .code_is(1);
    assert_one_line(&run, "does not exist");
    assert!(!fx.env.path("missing.sqlgit").exists());
}

/// `--keep 0` asks for a history of zero snapshots: refuse it (exit 1 or 2, one line) and leave the
/// repository — including its remembered `sqlgit.keep` — exactly as it was.
#[test]
fn prune_keep_0_is_refused_and_changes_nothing() {
    let fx = Fx::new(false);
    for _ in 0..5 {
        fx.snapshot(&["--keep", "3"]).success().assert_quiet();
    }
    let before = tree_state(&fx.repo);
    let run = fx.prune(&["--keep", "0"]);
    if !matches!(run.code(), Some(1 | 2)) {
        run.fail("expected exit 1 or 2");
    }
    assert_one_line(&run, "");
    assert_eq!(
        fx.keep_setting().as_deref(),
        Some("3"),
        "sqlgit.keep after prune --keep 0"
    );
    assert!(
        tree_state(&fx.repo) == before,
        "sqlgit prune --keep 0 changed the repository"
    );
}
