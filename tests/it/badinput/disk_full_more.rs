//! Disk full, continued: the command that frees room runs on a full disk (`prune`), and what
//! reads past a full disk says it is full (`restore --into` of a WAL database, a fetch into the
//! history cache). On a small tmpfs, skipped when none can be mounted (not root).

use super::*;

/// A small filesystem at `name`, or None (said) when none can be mounted.
fn small(env: &TestEnv, name: &str, mib: u64) -> Option<SmallFs> {
    match SmallFs::mount(env, name, mib) {
        Ok(fs) => Some(fs),
        Err(why) => {
            eprintln!("SKIP: cannot mount a small filesystem: {why}");
            None
        }
    }
}

/// Fill `fs` up to `leave` bytes free.
fn fill(fs: &SmallFs, leave: u64) {
    let avail = fs.available();
    let file = std::fs::File::create(fs.dir.join("filler")).unwrap();
    let n = avail.saturating_sub(leave);
    let rc = unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&file), 0, 0, n as i64) };
    assert_eq!(rc, 0, "fallocate {n}");
    assert!(
        fs.available() <= leave + 8192,
        "not full: {}",
        fs.available()
    );
}

/// A database of `rows` rows of 200 random hex digits.
fn random_rows(env: &TestEnv, rows: u32) -> PathBuf {
    env.db_from_script(
        "app.db",
        format!(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n\
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {rows})\n\
             INSERT INTO t(v) SELECT hex(randomblob(100)) FROM c;\n"
        )
        .as_bytes(),
    )
}

/// Snapshot `db` `n` times into `repo`, a tenth of its rows changed before each.
fn snapshots(env: &TestEnv, db: &Path, repo: &str, n: u32) {
    for i in 0..n {
        env.sqlite3(
            db,
            format!("UPDATE t SET v = hex(randomblob(100)) WHERE id % 10 = {i};"),
        )
        .success();
        sqlgit(env, &["snapshot", "--repo", repo, "-q"], &[]).success();
    }
}

/// `prune --keep 2` on a repository whose filesystem is full: saving the setting needs room,
/// and so does the graft; pruning is what frees it, so it prunes first and saves after.
#[test]
fn prune_runs_on_a_full_disk() {
    let env = TestEnv::new();
    let Some(fs) = small(&env, "small", 6) else {
        return;
    };
    env.git_in(env.root(), &["init", "-q", "--bare", "-b", "main", "h.git"]);
    let db = random_rows(&env, 2000);
    let (h, d) = (env.path("h.git"), db.display().to_string());
    let repo = "small/a.sqlgit";
    let init = ["init", "--repo", repo, "--db", &d, "--history-remote"];
    sqlgit(
        &env,
        &[&init[..], &[h.to_str().unwrap(), "-q"]].concat(),
        &[],
    )
    .success();
    snapshots(&env, &db, repo, 8);
    fill(&fs, 0);
    let run = sqlgit(&env, &["prune", "--repo", repo, "--keep", "2"], &[]);
    let err = run.stderr_str();
    assert_eq!(run.code(), Some(0), "{err}");
    assert!(run.stdout_str().contains("pruned 6 old snapshots"), "{err}");
    assert!(fs.available() > 512 * 1024, "freed only {}", fs.available());
    let saved = env.git_in(
        env.root(),
        &["config", "-f", "small/a.sqlgit/config", "sqlgit.keep"],
    );
    assert_eq!(saved, "2");
    // The next snapshot reads the database whole (the page map made room for the graft).
    snapshots(&env, &db, repo, 1);
}

/// `restore --into` a WAL database that has no -shm file, on a full filesystem: SQLite says
/// "disk I/O error"; the line says the filesystem is full, as `snapshot` and `dump` do.
#[test]
fn restore_into_a_wal_database_on_a_full_filesystem_says_so() {
    let env = TestEnv::new();
    let Some(fs) = small(&env, "small", 4) else {
        return;
    };
    let live = env.path("small/app.db");
    let conn = Connection::open(&live).unwrap();
    conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(a); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(conn);
    let d = live.display().to_string();
    sqlgit(&env, &["snapshot", &d, "--repo", "r.sqlgit", "-q"], &[]).success();
    // As after the application closed its last connection.
    for side in ["small/app.db-shm", "small/app.db-wal"] {
        let _ = std::fs::remove_file(env.path(side));
    }
    let before = FileState::of(&live);
    fill(&fs, 0);
    let run = sqlgit(&env, &["restore", "--repo", "r.sqlgit", "--into", &d], &[]).code_is(1);
    let err = run.stderr_str();
    assert!(
        err.contains("small is full") && err.contains("-shm") && err.contains("free space"),
        "{err}"
    );
    before.assert_unchanged(&live, "restore --into onto a full disk");
}

/// `cat` of a pruned point when the repository's disk has too little room for the history
/// cache's fetch: the line says the local disk is full (the cache's folder, what is free), not
/// that the history remote failed; git's partial pack is not left taking the room.
#[test]
fn a_fetch_into_the_history_cache_on_a_full_disk_says_so() {
    let env = TestEnv::new();
    let Some(fs) = small(&env, "small", 8) else {
        return;
    };
    env.git_in(env.root(), &["init", "-q", "--bare", "-b", "main", "h.git"]);
    let db = random_rows(&env, 4000);
    let (h, d) = (env.path("h.git"), db.display().to_string());
    let repo = "small/a.sqlgit";
    let init = [
        "init",
        "--repo",
        repo,
        "--db",
        &d,
        "--keep",
        "1",
        "--history-remote",
    ];
    sqlgit(
        &env,
        &[&init[..], &[h.to_str().unwrap(), "-q"]].concat(),
        &[],
    )
    .success();
    snapshots(&env, &db, repo, 4);
    fill(&fs, 300 * 1024);
    let pack_dir = env.path("small/a.sqlgit/sqlgit-cache/objects/pack");
    for args in [
        vec!["cat", "HEAD~3", "--repo", repo],
        vec!["log", "--all", "--repo", repo],
    ] {
        let run = sqlgit(&env, &args, &[]).code_is(1);
        let err = run.stderr_str();
        assert!(
            err.contains("the local disk is full")
                && err.contains("sqlgit-cache")
                && err.contains("free space")
                && !err.contains("index-pack"),
            "{args:?}: {err}"
        );
        let left = list_dir(&pack_dir);
        assert!(
            !left.iter().any(|f| f.contains("tmp_")),
            "{args:?} left its partial fetch: {left:?}"
        );
    }
    let run = sqlgit(&env, &["diff", "HEAD~3", "HEAD", "--repo", repo], &[]).code_is(2);
    assert!(
        run.stderr_str().contains("the local disk is full"),
        "{}",
        run.stderr_str()
    );
}
