//! Files of the repository lost to a crash or a slip of the hand: a pack's index (the pack is
//! indexed again, never deleted with the only copy of older snapshots' objects), a pack (the
//! next incremental run reads everything instead of failing), the config (every command names
//! the `sqlgit init` that writes it again, and the failure is recorded), an older snapshot's
//! commit (`status` names it, not a push the next run would make).

use super::*;

/// A database of 3,000 rows and four snapshots, the first one's pack the biggest.
fn four_snapshots(env: &TestEnv) -> (PathBuf, PathBuf) {
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
          INSERT INTO t SELECT i, printf('%050d', i) FROM n;",
    );
    let repo = env.path("app.sqlgit");
    sg(env, T0, &["snapshot", &s(&db), "--repo", &s(&repo)]).success();
    for i in 1..=3u64 {
        sql(
            env,
            &db,
            &format!("UPDATE t SET v = 'u{i}' WHERE id = {};", i * 100),
        );
        sg(env, T0 + 60 * i, &["snapshot", "--repo", &s(&repo)]).success();
    }
    (db, repo)
}

/// The biggest pack of `repo` (the first snapshot's).
fn biggest_pack(repo: &Path) -> PathBuf {
    std::fs::read_dir(repo.join("objects/pack"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("a pack")
}

/// Set the file's modification time two hours back (a leftover's age).
fn two_hours_old(path: &Path) {
    let then = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(then)
        .unwrap();
}

#[test]
fn a_pack_that_lost_its_index_is_indexed_again_not_deleted() {
    let env = TestEnv::new();
    let (_db, repo) = four_snapshots(&env);
    let r = s(&repo);
    let pack = biggest_pack(&repo);
    std::fs::remove_file(pack.with_extension("idx")).unwrap();
    two_hours_old(&pack);
    let err = sg(&env, T0 + 600, &["snapshot", "--repo", &r])
        .success()
        .stderr_str();
    assert!(
        err.contains("had lost its index") && err.contains("indexed it again"),
        "{err}"
    );
    assert!(pack.exists() && pack.with_extension("idx").exists());
    for when in ["HEAD~1", "HEAD~2", "HEAD~3"] {
        sg(&env, T0 + 600, &["verify", "--repo", &r, when]).success();
    }
    git(&env, &repo, &["fsck", "--no-dangling"]);

    // A second copy of a pack (a merge killed between its renames): nothing only it holds,
    // so it goes, silently.
    let copy = pack.with_file_name("pack-0000000000000000000000000000000000000000.pack");
    std::fs::copy(&pack, &copy).unwrap();
    two_hours_old(&copy);
    sg(&env, T0 + 660, &["snapshot", "--repo", &r])
        .success()
        .assert_quiet();
    assert!(!copy.exists() && pack.exists());
}

#[test]
fn a_pack_without_index_that_git_cannot_read_is_set_aside_and_fails_the_run() {
    let env = TestEnv::new();
    let (_db, repo) = four_snapshots(&env);
    let r = s(&repo);
    let pack = biggest_pack(&repo);
    std::fs::remove_file(pack.with_extension("idx")).unwrap();
    let len = std::fs::metadata(&pack).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&pack)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    two_hours_old(&pack);
    let line = one_error_line(sg(&env, T0 + 600, &["snapshot", "--repo", &r]), 1);
    assert!(
        line.contains("had no index and git cannot index it")
            && line.contains("can no longer be restored")
            && line.contains("sqlgit-damaged"),
        "{line}"
    );
    assert!(!pack.exists());
    assert_eq!(list_dir(&repo.join("sqlgit-damaged")).len(), 1);
    let err = sg(&env, T0 + 600, &["status", "--repo", &r])
        .code_is(1)
        .stderr_str();
    assert!(
        err.contains("had no index and git cannot index it"),
        "{err}"
    );
}

#[test]
fn a_lost_pack_makes_the_next_run_read_everything() {
    let env = TestEnv::new();
    let (db, repo) = four_snapshots(&env);
    let r = s(&repo);
    std::fs::remove_file(biggest_pack(&repo)).unwrap();
    sql(&env, &db, "UPDATE t SET v = 'after' WHERE id = 2000;");
    // Read whole: the new snapshot is complete; what only older snapshots used is lost, and
    // said loudly, once.
    let err = sg(&env, T0 + 600, &["snapshot", "--repo", &r])
        .code_is(1)
        .stderr_str();
    assert!(
        err.contains("read previous snapshot")
            && err.contains("read every database whole instead")
            && err.contains("older snapshots that use them can no longer be restored"),
        "{err}"
    );
    sg(&env, T0 + 600, &["verify", "--repo", &r]).success();
    sql(&env, &db, "UPDATE t SET v = 'again' WHERE id = 2500;");
    sg(&env, T0 + 660, &["snapshot", "--repo", &r])
        .success()
        .assert_quiet();
}

#[test]
fn a_lost_config_is_named_with_the_init_that_writes_it_again() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');",
    );
    let (d, repo, hist) = (s(&db), env.path("app.sqlgit"), env.path("hist.git"));
    let r = s(&repo);
    git(
        &env,
        env.root(),
        &["init", "-q", "--bare", "-b", "main", &s(&hist)],
    );
    let init = [
        "init",
        "--repo",
        &r,
        "--db",
        &d,
        "--history-remote",
        &s(&hist),
    ];
    sg(&env, T0, &init).success();
    sg(&env, T0, &["snapshot", "--repo", &r]).success();
    std::fs::remove_file(repo.join("config")).unwrap();
    sql(&env, &db, "INSERT INTO t VALUES (2, 'b');");

    let line = one_error_line(sg(&env, T0 + 60, &["snapshot", "--repo", &r]), 1);
    let fix = format!(
        "sqlgit init --repo {r} --db PATH/app.db --history-remote {}",
        s(&hist)
    );
    assert!(
        line.contains("config is missing") && line.contains(&fix),
        "{line}"
    );
    let err = sg(&env, T0 + 60, &["status", "--repo", &r])
        .code_is(1)
        .stderr_str();
    assert!(
        err.contains("config is missing") && err.contains("last run failed"),
        "{err}"
    );
    let err = sg(&env, T0 + 60, &["verify", "--repo", &r])
        .code_is(1)
        .stderr_str();
    assert!(err.contains("config is missing"), "{err}");

    // The command as printed, with the database's path.
    let fixed = fix.replace("PATH/app.db", &d);
    let words: Vec<&str> = fixed.split(' ').skip(1).collect();
    sg(&env, T0 + 120, &words).success();
    sg(&env, T0 + 180, &["snapshot", "--repo", &r]).success();
    sg(&env, T0 + 180, &["status", "--repo", &r]).success();
    assert_eq!(git(&env, &hist, &["rev-parse", "main"]), head(&env, &repo));
}

#[test]
fn a_lost_config_names_the_database_file_as_one_shell_word() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "my app (2).db",
        b"CREATE TABLE t(a); INSERT INTO t VALUES (1);",
    );
    let repo = env.path("app.sqlgit");
    let r = s(&repo);
    sg(&env, T0, &["snapshot", &s(&db), "--repo", &r, "-q"]).success();
    std::fs::remove_file(repo.join("config")).unwrap();

    let line = one_error_line(sg(&env, T0 + 60, &["snapshot", "--repo", &r]), 1);
    let fix = line
        .rsplit_once("run: ")
        .unwrap_or_else(|| panic!("{line}"))
        .1;
    assert_eq!(
        fix,
        format!("sqlgit init --repo {r} --db 'PATH/my app (2).db'")
    );
    env.sqlgit_printed(T0 + 120, &fix.replace("PATH", &s(env.root())))
        .success();
    assert_eq!(config_values(&env, &repo, "sqlgit.db"), [s(&db)]);
    sg(&env, T0 + 180, &["snapshot", "--repo", &r, "-q"]).success();
}

#[test]
fn a_damaged_older_commit_is_no_pending_push_in_status() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');",
    );
    let (repo, hist) = (env.path("app.sqlgit"), env.path("hist.git"));
    let r = s(&repo);
    git(
        &env,
        env.root(),
        &["init", "-q", "--bare", "-b", "main", &s(&hist)],
    );
    let first = [
        "snapshot",
        &s(&db),
        "--repo",
        &r,
        "--history-remote",
        &s(&hist),
    ];
    sg(&env, T0, &first).success();
    for i in 2..=3u64 {
        sql(&env, &db, &format!("INSERT INTO t VALUES ({i}, 'x');"));
        sg(&env, T0 + 60 * i, &["snapshot", "--repo", &r]).success();
    }
    let id = git(&env, &repo, &["rev-parse", "HEAD~1"]);
    let file = repo.join("objects").join(&id[..2]).join(&id[2..]);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&file, b"").unwrap();
    let err = sg(&env, T0 + 600, &["status", "--repo", &r])
        .code_is(1)
        .stderr_str();
    assert!(
        err.contains(&format!("sqlgit snapshot --repo {r} --full"))
            && !err.contains("not on the history remote"),
        "{err}"
    );
}
