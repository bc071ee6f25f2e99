//! Local history against the history remote: a point older than local history is fetched from
//! it, a remote added after free pruning is refused, and a recreated remote is asked again before
//! what it once confirmed is trusted.

use super::*;

#[test]
fn a_point_older_than_local_history_is_fetched_from_the_history_remote() {
    let fx = Fx::new(true);
    let url = fx.url();
    fx.snapshot(&["--keep", "10", "--history-remote", &url])
        .success();
    for _ in 1..3 {
        fx.snapshot(&[]).success().assert_quiet();
    }
    // Snapshot 3: remember its SQL, its id, its time and the database as it was.
    let third_id = fx.ids(&fx.repo)[0].clone();
    let third_time = fx.now.get();
    let third_sql = fx
        .cat(None, &fx.repo)
        .success()
        .assert_quiet()
        .output
        .stdout;
    let third_db = fx.env.path("third.db");
    std::fs::copy(&fx.db, &third_db).unwrap();
    for _ in 3..20 {
        fx.snapshot(&[]).success().assert_quiet();
    }
    assert_eq!(fx.count(&fx.repo), 10);
    let config_before = std::fs::read(fx.repo.join("config")).unwrap();
    let shallow_before = std::fs::read(fx.repo.join("shallow")).unwrap();

    // Half a minute after the third snapshot: the third is the latest at or before that. It is
    // fetched from the history remote (one line on stderr naming it), into the cache.
    let when = rfc3339(third_time + 30);
    let run = fx.cat(Some(&when), &fx.repo).success();
    assert_one_line(&run, &format!("from history remote {url}"));
    assert!(
        run.stdout() == &third_sql[..],
        "the SQL for {when} differs from what sqlgit cat gave at that time"
    );
    fx.assert_restores_to(run.stdout(), "third-restored.db", &third_db);
    // `sqlgit restore` of that point works too, from the cache, without fetching again.
    let to = fx.env.path("old.db");
    fx.sqlgit(&[
        "restore",
        &when,
        "--repo",
        &fx.repo_arg(),
        "--to",
        &to.display().to_string(),
    ])
    .success();
    compare_databases(&third_db, &to);
    // So does a pruned commit id.
    let by_id = fx.cat(Some(&third_id), &fx.repo).success().assert_quiet();
    assert!(by_id.stdout() == &third_sql[..], "sqlgit cat {third_id}");
    // And `sqlgit verify` of it.
    fx.sqlgit(&["verify", &third_id, "--repo", &fx.repo_arg()])
        .success();
    // `diff --live` reads local snapshots only, and says so.
    let live = fx.sqlgit(&[
        "diff",
        &third_id,
        "--live",
        &fx.db.display().to_string(),
        "--repo",
        &fx.repo_arg(),
    ]);
    assert_eq!(live.code(), Some(2), "{}", live.stderr_str());
    assert!(
        live.stderr_str().contains("reads local ones only")
            && !live.stderr_str().contains("fetches them"),
        "{}",
        live.stderr_str()
    );
    assert_eq!(
        std::fs::read(fx.repo.join("config")).unwrap(),
        config_before,
        "asking for an old point changed the repository config"
    );
    assert_eq!(
        std::fs::read(fx.repo.join("shallow")).unwrap(),
        shallow_before,
        "asking for an old point moved the shallow graft"
    );
    assert_eq!(fx.count(&fx.repo), 10);
    fx.assert_fsck(&fx.repo);

    // Without sqlgit, a plain clone of the history remote still has it (the emergency path).
    let clone = fx.env.path("history-clone.git");
    let mut cmd = fx.git_cmd(&["clone", "--quiet", "--bare", &url]);
    cmd.arg(&clone);
    run_limited(&fx.env, cmd, RUN_LIMIT).success();
    let old = fx.cat(Some(&when), &clone).success().assert_quiet();
    assert!(
        old.stdout() == &third_sql[..],
        "the clone's SQL for {when} differs from what sqlgit cat gave at that time"
    );
}

/// Local history was cut without a history remote (pruning is free then); a history remote added
/// later cannot receive the full history any more. The push must fail (exit 1, one line) and
/// leave both sides intact, not hand the remote a history with missing parents.
fn history_remote_added_after_free_pruning(fx: &Fx, remote: &Path, url: &str) {
    for _ in 0..6 {
        fx.snapshot(&["--keep", "3"]).success().assert_quiet();
    }
    let local = fx.ids(&fx.repo);
    assert_eq!(local.len(), 3);
    let run = fx.sqlgit(&["push", "--repo", &fx.repo_arg(), "--history-remote", url]);
    let remote_ok = {
        let mut cmd = fx.git_cmd(&["-C"]);
        cmd.arg(remote)
            .args(["fsck", "--strict", "--no-dangling", "--no-progress"]);
        let fsck = run_limited(&fx.env, cmd, RUN_LIMIT);
        let text = format!("{}{}", fsck.stdout_str(), fsck.stderr_str());
        // An empty remote: "notice: HEAD points to an unborn branch".
        fsck.code() == Some(0) && text.lines().all(|l| l.starts_with("notice: "))
    };
    if run.code() == Some(0) || !remote_ok {
        run.fail(&format!(
            "pushing a pruned history must fail and leave the remote intact \
             (remote fsck clean: {remote_ok})"
        ));
    }
    assert_one_line(&run, "history remote");
    assert_eq!(fx.ids(&fx.repo), local, "local history changed");
    fx.assert_fsck(&fx.repo);
    // A later snapshot fails the same way and still prunes nothing unconfirmed.
    let run = fx.snapshot(&[]).code_is(1);
    assert_one_line(&run, "history remote");
    assert_eq!(
        fx.ids(&fx.repo)[1..],
        local[..],
        "nothing unconfirmed is pruned"
    );
}

#[test]
fn a_history_remote_on_git_daemon_added_after_free_pruning_is_refused() {
    let fx = Fx::new(true);
    let (remote, url) = (fx.remote_path(), fx.url());
    history_remote_added_after_free_pruning(&fx, &remote, &url);
}

#[test]
fn a_history_remote_on_a_local_path_added_after_free_pruning_is_refused() {
    let fx = Fx::new(false);
    let remote = fx.env.path("hist.git");
    let mut cmd = fx.git_cmd(&["init", "--quiet", "--bare", "-b", "main"]);
    cmd.arg(&remote);
    run_limited(&fx.env, cmd, RUN_LIMIT).success();
    history_remote_added_after_free_pruning(&fx, &remote, &remote.display().to_string());
}

#[test]
fn prune_asks_a_recreated_history_remote_before_trusting_what_it_once_confirmed() {
    let fx = Fx::new(false);
    let remote = fx.env.path("hist.git");
    let init_remote = || {
        let _ = std::fs::remove_dir_all(&remote);
        let mut cmd = fx.git_cmd(&["init", "--quiet", "--bare", "-b", "main"]);
        cmd.arg(&remote);
        run_limited(&fx.env, cmd, RUN_LIMIT).success();
    };
    init_remote();
    let url = remote.display().to_string();
    for _ in 0..5 {
        fx.snapshot(&["--history-remote", &url])
            .success()
            .assert_quiet();
    }
    let all = fx.ids(&fx.repo);
    assert_eq!(all.len(), 5);
    // The remote is recreated empty: it no longer has what it confirmed.
    init_remote();
    fx.prune(&["--keep", "1"]).success();
    assert_eq!(
        fx.ids(&fx.repo),
        all,
        "pruned what the remote no longer has"
    );
    // The remote is gone: nothing can be confirmed, so nothing is pruned, loudly.
    std::fs::remove_dir_all(&remote).unwrap();
    let run = fx.prune(&["--keep", "1"]).code_is(1);
    assert_one_line(&run, "nothing pruned");
    assert_eq!(fx.ids(&fx.repo), all);
    // Once the remote has them again, pruning goes ahead.
    init_remote();
    let repo = fx.repo_arg();
    fx.sqlgit(&["push", "--repo", repo.as_str()]).success();
    fx.prune(&["--keep", "1"]).success();
    assert_eq!(fx.ids(&fx.repo), all[..1]);
}

#[test]
fn a_snapshot_run_that_cannot_reach_the_history_remote_prunes_nothing() {
    let fx = Fx::new(false);
    let remote = fx.env.path("hist.git");
    let init_remote = || {
        let mut cmd = fx.git_cmd(&["init", "--quiet", "--bare", "-b", "main"]);
        cmd.arg(&remote);
        run_limited(&fx.env, cmd, RUN_LIMIT).success();
    };
    init_remote();
    let url = remote.display().to_string();
    for _ in 0..5 {
        fx.snapshot(&["--history-remote", &url])
            .success()
            .assert_quiet();
    }
    // The server is lost: what it confirmed in earlier runs is gone with it.
    std::fs::remove_dir_all(&remote).unwrap();
    let run = fx.snapshot(&["--keep", "2"]).code_is(1);
    let err = run.stderr_str();
    if !err.contains("nothing pruned") || err.contains("pruned 4") {
        run.fail("a run whose history push failed pruned on an old confirmation");
    }
    assert_eq!(
        fx.count(&fx.repo),
        6,
        "pruned what the remote was not asked about"
    );
    // It comes back empty: the next run pushes every snapshot, and only then prunes.
    init_remote();
    fx.snapshot(&[]).success();
    assert_eq!(fx.count(&remote), 7);
    assert_eq!(fx.count(&fx.repo), 2);
}
