//! Ref files cut short by a crash (`HEAD`, `packed-refs`, sqlgit's own bookkeeping refs) are
//! repaired by the next run, and named with their fix by `status` and `verify`; a replace ref,
//! which makes plain git read other content than sqlgit, fails `verify`.

use super::*;

/// One snapshot of a small database, with a local history remote; (db, repo, remote).
fn one_snapshot(env: &TestEnv) -> (PathBuf, PathBuf, PathBuf) {
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');",
    );
    let repo = env.path("app.sqlgit");
    let remote = env.path("hist.git");
    git(env, &env.path(""), &["init", "-q", "--bare", &s(&remote)]);
    git(env, &remote, &["symbolic-ref", "HEAD", "refs/heads/main"]);
    let args = [
        "snapshot",
        &s(&db),
        "--repo",
        &s(&repo),
        "--history-remote",
        &s(&remote),
    ];
    sg(env, T0, &args).success();
    (db, repo, remote)
}

#[test]
fn an_emptied_head_fails_verify_and_is_written_again_by_the_next_run() {
    let env = TestEnv::new();
    let (db, repo, remote) = one_snapshot(&env);
    let r = s(&repo);
    std::fs::write(repo.join("HEAD"), b"").unwrap();
    let err = sg(&env, T0 + 60, &["verify", "--repo", &r])
        .code_is(1)
        .stderr_str();
    assert!(
        err.contains("HEAD is damaged") && err.contains(&format!("sqlgit snapshot --repo {r}")),
        "{err}"
    );
    sql(&env, &db, "INSERT INTO t VALUES (2, 'b');");
    let err = sg(&env, T0 + 120, &["snapshot", "--repo", &r])
        .success()
        .stderr_str();
    assert!(
        err.contains("warning: HEAD could not be read by git"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("HEAD")).unwrap(),
        "ref: refs/heads/main\n"
    );
    assert_eq!(
        git(&env, &remote, &["rev-parse", "main"]),
        head(&env, &repo)
    );
    sg(&env, T0 + 180, &["verify", "--repo", &r]).success();
}

#[test]
fn a_bookkeeping_ref_cut_short_is_set_aside_and_the_remotes_asked_again() {
    for name in ["refs/remotes/history/main", "refs/sqlgit/latest"] {
        let env = TestEnv::new();
        let (db, repo, remote) = one_snapshot(&env);
        let r = s(&repo);
        let latest = env.path("latest.git");
        git(&env, &env.path(""), &["init", "-q", "--bare", &s(&latest)]);
        sql(&env, &db, "INSERT INTO t VALUES (2, 'b');");
        sg(
            &env,
            T0 + 60,
            &["snapshot", "--repo", &r, "--latest-remote", &s(&latest)],
        )
        .success();
        std::fs::write(repo.join(name), b"").unwrap();
        let err = sg(&env, T0 + 90, &["status", "--repo", &r])
            .code_is(1)
            .stderr_str();
        assert!(
            err.contains(&format!("{name} (sqlgit's own record) cannot be read"))
                && !err.contains("not on the history remote"),
            "{name}: {err}"
        );
        sql(&env, &db, "INSERT INTO t VALUES (3, 'c');");
        let err = sg(&env, T0 + 120, &["snapshot", "--repo", &r])
            .success()
            .stderr_str();
        assert!(
            err.contains(&format!("warning: {name}, sqlgit's own record")),
            "{err}"
        );
        assert_eq!(
            git(&env, &remote, &["rev-parse", "main"]),
            head(&env, &repo)
        );
        assert_eq!(
            git(&env, &latest, &["rev-parse", "main^{tree}"]),
            git(&env, &repo, &["rev-parse", "main^{tree}"])
        );
        sg(&env, T0 + 180, &["status", "--repo", &r]).success();
    }
}

#[test]
fn a_packed_refs_file_cut_short_is_repaired_by_the_next_run() {
    let env = TestEnv::new();
    let (db, repo, remote) = one_snapshot(&env);
    let r = s(&repo);
    let before = head(&env, &repo);
    git(&env, &repo, &["pack-refs", "--all"]);
    let packed = repo.join("packed-refs");
    let text = std::fs::read(&packed).unwrap();
    // Cut inside the first ref's line: main is lost with the rest.
    let first = text.iter().position(|&b| b == b'\n').unwrap() + 20;
    std::fs::write(&packed, &text[..first]).unwrap();
    let err = sg(&env, T0 + 60, &["verify", "--repo", &r])
        .code_is(1)
        .stderr_str();
    assert!(
        err.contains("packed-refs is damaged")
            && err.contains(&format!("sqlgit snapshot --repo {r}")),
        "{err}"
    );
    sql(&env, &db, "INSERT INTO t VALUES (2, 'b');");
    let err = sg(&env, T0 + 120, &["snapshot", "--repo", &r])
        .success()
        .stderr_str();
    assert!(err.contains("warning: packed-refs was damaged"), "{err}");
    assert_eq!(git(&env, &repo, &["rev-parse", "main~1"]), before);
    assert_eq!(
        git(&env, &remote, &["rev-parse", "main"]),
        head(&env, &repo)
    );
    sg(&env, T0 + 180, &["verify", "--repo", &r]).success();
}

#[test]
fn a_replace_ref_fails_verify_with_the_command_that_removes_it() {
    let env = TestEnv::new();
    let (_db, repo, _remote) = one_snapshot(&env);
    let r = s(&repo);
    let listing = git(&env, &repo, &["ls-tree", "-r", "main"]);
    let row = listing.lines().find(|l| l.contains("1-rows")).unwrap();
    let (blob, path) = (&row[12..52], row.split('\t').nth(1).unwrap());
    let shown = git(&env, &repo, &["show", &format!("main:{path}")]);
    let fake = env.write("fake.sql", shown.replace("'a'", "'X'"));
    let fake_id = git(&env, &repo, &["hash-object", "-w", &s(&fake)]);
    git(&env, &repo, &["replace", blob, &fake_id]);
    let tree = blob.to_string();
    let err = sg(&env, T0 + 60, &["verify", "--repo", &r])
        .code_is(1)
        .stderr_str();
    let fix = format!("replace -d {tree}");
    assert!(
        err.contains(&format!("refs/replace/{tree}")) && err.contains(&fix),
        "{err}"
    );
    git(&env, &repo, &["replace", "-d", &tree]);
    sg(&env, T0 + 120, &["verify", "--repo", &r]).success();
}

/// Snapshots of a small database without any remote, `--keep 10`; (db, repo).
fn local_snapshots(env: &TestEnv, runs: u64) -> (PathBuf, PathBuf) {
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('a');",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    sg(env, T0, &["snapshot", &d, "--repo", &r, "--keep", "10"]).success();
    for i in 1..runs {
        sql(env, &db, &format!("INSERT INTO t(v) VALUES ('run{i}');"));
        sg(env, T0 + 60 * i, &["snapshot", "--repo", &r]).success();
    }
    (db, repo)
}

#[test]
fn a_main_lost_without_a_history_remote_names_the_newest_snapshot_again() {
    for variant in ["branch -D", "rm packed-refs"] {
        let env = TestEnv::new();
        let (db, repo) = local_snapshots(&env, 3);
        let r = s(&repo);
        let old = head(&env, &repo);
        git(&env, &repo, &["gc", "-q"]);
        match variant {
            "branch -D" => drop(git(&env, &repo, &["branch", "-q", "-D", "main"])),
            _ => std::fs::remove_file(repo.join("packed-refs")).unwrap(),
        }
        // Before the run: status and verify say main is missing, with the command.
        for cmd in ["status", "verify"] {
            let err = sg(&env, T0 + 900, &[cmd, "--repo", &r])
                .code_is(1)
                .stderr_str();
            assert!(
                err.contains("refs/heads/main is missing")
                    && err.contains(&format!("sqlgit snapshot --repo {r}")),
                "{variant}, {cmd}: {err}"
            );
        }
        for i in 4..9u64 {
            sql(&env, &db, &format!("INSERT INTO t(v) VALUES ('run{i}');"));
            let err = sg(&env, T0 + 1000 + 60 * i, &["snapshot", "--repo", &r])
                .success()
                .stderr_str();
            assert_eq!(
                err.contains("warning: refs/heads/main was missing"),
                i == 4,
                "{variant}, run {i}: {err}"
            );
            if i == 4 {
                assert!(
                    err.contains(&format!("the newest snapshot here again, {old}")),
                    "{err}"
                );
            }
        }
        // One history: the lost main's snapshot is an ancestor, every snapshot kept.
        assert_eq!(git(&env, &repo, &["rev-parse", "main~5"]), old, "{variant}");
        assert_eq!(commit_count(&env, &repo), 8, "{variant}");
        sg(&env, T0 + 2000, &["verify", "--repo", &r]).success();
    }
}

#[test]
fn a_renamed_main_fails_verify_and_the_next_run_points_head_and_main_back() {
    let env = TestEnv::new();
    let (db, repo, remote) = one_snapshot(&env);
    let r = s(&repo);
    sql(&env, &db, "INSERT INTO t VALUES (2, 'b');");
    sg(&env, T0 + 60, &["snapshot", "--repo", &r]).success();
    let before = head(&env, &repo);
    git(&env, &repo, &["branch", "-m", "main", "master"]);
    for cmd in ["status", "verify"] {
        let err = sg(&env, T0 + 90, &[cmd, "--repo", &r])
            .code_is(1)
            .stderr_str();
        assert!(
            err.contains("HEAD names refs/heads/master, not refs/heads/main")
                && err.contains("refs/heads/main is missing")
                && err.contains(&format!("sqlgit snapshot --repo {r}")),
            "{cmd}: {err}"
        );
    }
    sql(&env, &db, "INSERT INTO t VALUES (3, 'c');");
    let err = sg(&env, T0 + 120, &["snapshot", "--repo", &r])
        .success()
        .stderr_str();
    assert!(
        err.contains("warning: HEAD named refs/heads/master")
            && err.contains("warning: refs/heads/main was missing")
            && !err.contains("continuing the history remote"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("HEAD")).unwrap(),
        "ref: refs/heads/main\n"
    );
    assert_eq!(git(&env, &repo, &["rev-parse", "main~1"]), before);
    assert_eq!(git(&env, &repo, &["rev-parse", "HEAD"]), head(&env, &repo));
    assert_eq!(
        git(&env, &remote, &["rev-parse", "main"]),
        head(&env, &repo)
    );
    sg(&env, T0 + 180, &["verify", "--repo", &r]).success();
}

#[test]
fn a_head_naming_another_branch_fails_verify_with_symbolic_ref_and_is_written_again() {
    let env = TestEnv::new();
    let (db, repo, _remote) = one_snapshot(&env);
    let r = s(&repo);
    git(&env, &repo, &["symbolic-ref", "HEAD", "refs/heads/trunk"]);
    let err = sg(&env, T0 + 60, &["verify", "--repo", &r])
        .code_is(1)
        .stderr_str();
    assert!(
        err.contains("HEAD names refs/heads/trunk")
            && err.contains(&format!("git -C {r} symbolic-ref HEAD refs/heads/main"))
            && !err.contains("refs/heads/main is missing"),
        "{err}"
    );
    sg(&env, T0 + 60, &["status", "--repo", &r]).code_is(1);
    sql(&env, &db, "INSERT INTO t VALUES (2, 'b');");
    let err = sg(&env, T0 + 120, &["snapshot", "--repo", &r])
        .success()
        .stderr_str();
    assert!(
        err.contains("warning: HEAD named refs/heads/trunk"),
        "{err}"
    );
    assert_eq!(git(&env, &repo, &["rev-parse", "HEAD"]), head(&env, &repo));
    sg(&env, T0 + 180, &["verify", "--repo", &r]).success();
}

#[test]
fn refs_migrated_to_reftable_name_the_migration_back() {
    let env = TestEnv::new();
    let (db, repo, _remote) = one_snapshot(&env);
    let r = s(&repo);
    let migrate = ["refs", "migrate", "--ref-format=reftable"];
    if git_run(&env, &repo, &migrate).code() != Some(0) {
        eprintln!("skipped: this git cannot migrate refs to reftable (needs git 2.46)");
        return;
    }
    sql(&env, &db, "INSERT INTO t VALUES (2, 'b');");
    for cmd in ["snapshot", "status", "verify"] {
        let err = sg(&env, T0 + 60, &[cmd, "--repo", &r])
            .code_is(1)
            .stderr_str();
        assert!(
            err.contains(&format!("git -C {r} refs migrate --ref-format=files"))
                && !err.contains("not a git repository"),
            "{cmd}: {err}"
        );
    }
    git(&env, &repo, &["refs", "migrate", "--ref-format=files"]);
    sg(&env, T0 + 120, &["snapshot", "--repo", &r]).success();
}
