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
