//! Hostile filesystems and exhausted resources: a pack that cannot be read is a failure, never
//! damage; a run that fails on a full disk leaves no temporary files; resource limits (threads,
//! file size) end a run with one error line, its hook and its state recorded.

use super::*;

/// A database of 2,000 rows and its first snapshot, then three more.
fn four_snapshots(env: &TestEnv) -> (PathBuf, PathBuf) {
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
          INSERT INTO t SELECT i, printf('%030d value of row %d', i * 7919, i) FROM n;",
    );
    let repo = env.path("app.sqlgit");
    sg(env, T0, &["snapshot", &s(&db), "--repo", &s(&repo)]).success();
    for i in 1..=3u64 {
        sql(
            env,
            &db,
            &format!("UPDATE t SET v = 'v{i}' WHERE id % 9 = {i};"),
        );
        sg(env, T0 + 60 * i, &["snapshot", "--repo", &s(&repo)]).success();
    }
    (db, repo)
}

/// The packs of `repo`, oldest name first.
fn packs(repo: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repo.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .collect();
    found.sort();
    found
}

#[test]
fn a_pack_that_cannot_be_opened_is_a_failure_and_is_not_rewritten() {
    let env = TestEnv::new();
    let (_db, repo) = four_snapshots(&env);
    let r = s(&repo);
    let first = git(&env, &repo, &["rev-list", "--max-parents=0", "main"]);
    let tree = git(&env, &repo, &["rev-parse", &format!("{first}^{{tree}}")]);
    let before = packs(&repo);
    // The first snapshot's pack cannot be opened (as root cannot be refused a read, a symlink
    // to itself stands in for a permission: ELOOP), its bytes intact elsewhere.
    let pack = packs(&repo)
        .into_iter()
        .find(|p| {
            let idx = p.with_extension("idx");
            git(&env, env.root(), &["verify-pack", "-v", &s(&idx)]).contains(&tree)
        })
        .expect("a pack holding the first snapshot's tree");
    let aside = env.path("intact.pack");
    std::fs::rename(&pack, &aside).unwrap();
    std::os::unix::fs::symlink(&pack, &pack).unwrap();

    let run = sg(&env, T0 + 600, &["snapshot", "--repo", &r, "--full"]).failure();
    let err = run.stderr_str();
    assert!(
        err.contains("cannot open") && err.contains(&s(&pack)),
        "{err}"
    );
    assert!(
        !err.contains("damaged") && !err.contains("repaired"),
        "{err}"
    );
    // Nothing was rewritten, removed or set aside.
    assert!(std::fs::symlink_metadata(&pack).unwrap().is_symlink());
    assert!(pack.with_extension("idx").exists());
    assert!(!repo.join("sqlgit-damaged").exists());
    std::fs::remove_file(&pack).unwrap();
    std::fs::rename(&aside, &pack).unwrap();
    for p in &before {
        assert!(p.exists(), "{} was removed", p.display());
    }
    sg(&env, T0 + 660, &["verify", "--repo", &r, &first]).success();
    git(&env, &repo, &["fsck", "--no-dangling"]);
}

/// `sqlgit ARGS` at `now` under `bash`'s `ulimit LIMIT` (e.g. `-f 40`: files of at most 40 KiB).
fn sg_limited(env: &TestEnv, now: u64, limit: &str, args: &[&str]) -> Run {
    let mut cmd = env.command("bash");
    cmd.arg("-c")
        .arg(format!("ulimit {limit} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_sqlgit"))
        .args(args)
        .env("SQLGIT_NOW", now.to_string());
    run_limited(env, cmd, b"")
}

/// The temporary files in `repo`'s pack folder.
fn temporaries(repo: &Path) -> Vec<String> {
    list_dir(&repo.join("objects/pack"))
        .into_iter()
        .filter(|n| !n.starts_with("pack-"))
        .collect()
}

#[test]
fn a_file_size_limit_fails_the_run_with_its_hook_and_leaves_no_partial_pack() {
    let env = TestEnv::new();
    let (db, repo) = four_snapshots(&env);
    let r = s(&repo);
    let hook = env.path("hook.log");
    let on_failure = format!("echo fired >> {}", s(&hook));
    sql(
        &env,
        &db,
        "UPDATE t SET v = hex(randomblob(40)) WHERE id % 2 = 0;",
    );
    // The pack outgrows the limit: SIGXFSZ would kill the run; ignored, the write fails.
    let args = ["snapshot", "--repo", &r, "--on-failure", &on_failure];
    let run = sg_limited(&env, T0 + 600, "-f 20", &args).code_is(1);
    let err = run.stderr_str();
    assert!(err.contains("write pack: File too large"), "{err}");
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), "fired\n");
    let state: Value =
        serde_json::from_slice(&std::fs::read(repo.join("sqlgit-state.json")).unwrap()).unwrap();
    assert!(
        state["running"].is_null() && state["last_run"]["ok"] == false,
        "{state}"
    );
    assert_eq!(temporaries(&repo), Vec::<String>::new());
    sg(&env, T0 + 660, &["snapshot", "--repo", &r]).success();
}

#[test]
fn a_merge_that_fails_leaves_no_partial_pack_and_is_named() {
    let env = TestEnv::new();
    let (db, repo) = four_snapshots(&env);
    let r = s(&repo);
    // 16 packs: the next run's pack makes 17 and merges the small ones, which outgrow the limit
    // (each pack is about 20 KiB).
    for i in 4..=15u64 {
        sql(
            &env,
            &db,
            &format!("UPDATE t SET v = 'r{i}' || id WHERE id % 50 = {i};"),
        );
        sg(&env, T0 + 60 * i, &["snapshot", "--repo", &r]).success();
    }
    assert_eq!(packs(&repo).len(), 16);
    sql(
        &env,
        &db,
        "UPDATE t SET v = 'final' || id WHERE id % 7 = 0;",
    );
    let run = sg_limited(&env, T0 + 1200, "-f 60", &["snapshot", "--repo", &r]).success();
    let err = run.stderr_str();
    assert!(
        err.contains("warning: merge small packs: File too large")
            && !err.contains("could not be fully recorded"),
        "{err}"
    );
    assert_eq!(temporaries(&repo), Vec::<String>::new());
    assert_eq!(packs(&repo).len(), 17);
    sg(&env, T0 + 1260, &["snapshot", "--repo", &r]).success();
    assert!(packs(&repo).len() < 17);
}

#[test]
fn a_config_that_cannot_be_read_is_said_so_not_taken_for_a_foreign_repository() {
    let env = TestEnv::new();
    let (_db, repo) = four_snapshots(&env);
    let r = s(&repo);
    // As root cannot be refused a read, a symlink to itself stands in for a config another
    // user replaced with a 0600 one (ELOOP instead of EACCES).
    let config = repo.join("config");
    let intact = env.path("config.intact");
    std::fs::rename(&config, &intact).unwrap();
    std::os::unix::fs::symlink(&config, &config).unwrap();
    let err = sg(&env, T0 + 600, &["snapshot", "--repo", &r])
        .code_is(1)
        .stderr_str();
    assert!(
        err.contains(&format!("cannot read {}", s(&config))) && !err.contains("did not create"),
        "{err}"
    );
    let status = sg(&env, T0 + 600, &["status", "--repo", &r]).code_is(1);
    assert!(
        status.stderr_str().contains("cannot read"),
        "{}",
        status.stderr_str()
    );
    std::fs::remove_file(&config).unwrap();
    std::fs::rename(&intact, &config).unwrap();
    sg(&env, T0 + 660, &["snapshot", "--repo", &r]).success();
}

#[test]
fn a_database_path_with_a_line_break_is_refused_before_anything_is_committed() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app\nprod.db",
        b"CREATE TABLE t(v); INSERT INTO t VALUES (1);",
    );
    let repo = env.path("r");
    let run = sg(&env, T0, &["snapshot", &s(&db), "--repo", &s(&repo)]).code_is(2);
    assert!(
        run.stderr_str().contains("line break"),
        "{}",
        run.stderr_str()
    );
    assert!(!repo.join("refs/heads/main").exists());
    let run = sg(&env, T0, &["init", "--repo", &s(&repo), "--db", &s(&db)]).code_is(2);
    assert!(
        run.stderr_str().contains("line break"),
        "{}",
        run.stderr_str()
    );
}

/// A thread that cannot be started (a process limit: `ulimit -u`, TasksMax, pids.max) is a
/// panic in Rust: the run still fails with one line, exit 1, its hook and its state recorded.
#[test]
fn a_thread_that_cannot_start_fails_the_run_with_one_line_its_hook_and_state() {
    let env = TestEnv::new();
    let (db, repo) = four_snapshots(&env);
    sql(&env, &db, "UPDATE t SET v = 'changed' WHERE id % 5 = 0;");
    let hook = env.path("hook.log");
    let on_failure = format!("echo fired >> {}", s(&hook));
    let run = sg_vars(
        &env,
        T0 + 600,
        &["snapshot", "--repo", &s(&repo), "--on-failure", &on_failure],
        &[
            ("SQLGIT_FAILPOINT", "spawn-writer"),
            ("RUST_BACKTRACE", "0"),
        ],
    )
    .failure();
    assert_eq!(run.code(), Some(1), "{}", run.stderr_str());
    let err = run.stderr_str();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("sqlgit: ") && err.contains("ulimit -u"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), "fired\n");
    let state = std::fs::read_to_string(repo.join("sqlgit-state.json")).unwrap();
    assert!(state.contains("ulimit -u"), "{state}");
    assert!(state.contains("\"running\": null"), "{state}");
}
