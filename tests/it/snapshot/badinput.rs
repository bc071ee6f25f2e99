//! Bad input: a regular file, a foreign git repository or a missing repository for the readers,
//! usage errors, an empty database file, a database path that is not a regular file.

use super::*;

// ------------------------------------------------------------------------------------------------
// 6. Bad input
// ------------------------------------------------------------------------------------------------

/// `log`, `cat` and `restore` on `repo`.
fn reader_runs(env: &TestEnv, repo: &Path, to: &Path) -> [Run; 5] {
    [
        env.sqlgit(&[OsStr::new("log"), OsStr::new("--repo"), repo.as_os_str()]),
        env.sqlgit(&[
            OsStr::new("log"),
            OsStr::new("--json"),
            OsStr::new("--repo"),
            repo.as_os_str(),
        ]),
        env.sqlgit(&[OsStr::new("cat"), OsStr::new("--repo"), repo.as_os_str()]),
        env.sqlgit(&[
            OsStr::new("cat"),
            OsStr::new("HEAD"),
            OsStr::new("--repo"),
            repo.as_os_str(),
        ]),
        restore_run(env, repo, None, to, false),
    ]
}

/// `log`, `cat` and `restore` on `repo` all fail with one line and change nothing.
#[track_caller]
fn assert_readers_refuse(env: &TestEnv, repo: &Path) {
    let to = env.path("never-restored.db");
    for run in reader_runs(env, repo, &to) {
        assert_error_line(run, 1);
    }
    assert!(!to.exists(), "a refused restore created {}", to.display());
}

#[test]
fn repo_is_a_regular_file() {
    let env = TestEnv::new();
    let db = env.fixture_db("types");
    let file = env.write("not-a-repo", "just a file\n");
    let before = FileState::of(&file);
    let msg = assert_error_line(snapshot_run(&env, &db, &file, Some(T), &[]), 1);
    assert!(
        msg.contains("not-a-repo"),
        "the message should name the repository: {msg}"
    );
    assert_readers_refuse(&env, &file);
    before.assert_unchanged(&file, "sqlgit on a regular file");
    assert_eq!(
        list_dir(env.root()),
        [".home", "not-a-repo", "types.db"],
        "files created beside it"
    );
}

#[test]
fn missing_repository_for_readers() {
    let env = TestEnv::new();
    let repo = env.path("missing.sqlgit");
    assert_readers_refuse(&env, &repo);
    assert!(
        !repo.exists(),
        "a reader created the repository {}",
        repo.display()
    );
    // A missing parent directory too.
    let nested = env.path("no/such/dir");
    assert_readers_refuse(&env, &nested);
    assert!(!env.path("no").exists());
}

#[test]
fn foreign_git_repositories_are_refused() {
    let env = TestEnv::new();
    let db = env.fixture_db("types");

    // A non-bare repository with a commit on main.
    let work = env.path("work");
    std::fs::create_dir(&work).unwrap();
    git(&env, &work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("README"), "mine\n").unwrap();
    git(&env, &work, &["add", "README"]);
    git(&env, &work, &["commit", "-q", "-m", "my work"]);
    // A bare repository with a commit on main (pushed from the first).
    let bare = env.path("bare.git");
    git(
        &env,
        env.root(),
        &["init", "-q", "--bare", "-b", "main", "bare.git"],
    );
    git(&env, &work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    // An empty bare repository, and an empty non-bare one (no commit, no branch).
    let empty_bare = env.path("empty.git");
    git(&env, env.root(), &["init", "-q", "--bare", "empty.git"]);
    let empty_work = env.path("empty-work");
    git(&env, env.root(), &["init", "-q", "empty-work"]);

    for repo in [&work, &bare, &empty_bare, &empty_work] {
        let before = dir_state(repo);
        let refs = git(&env, repo, &["for-each-ref"]).stdout_str();
        let msg = assert_error_line(snapshot_run(&env, &db, repo, Some(T), &[]), 1);
        assert!(
            msg.contains("did not create") || msg.contains("not") || msg.contains("refus"),
            "{}: unclear refusal: {msg}",
            repo.display()
        );
        // Reading a plain git repository is allowed (a clone of a history remote is one), but it
        // holds no database to cat or restore, and reading changes nothing.
        let to = env.path("never-restored.db");
        let [_, _, cat_latest, cat_head, restore] = reader_runs(&env, repo, &to);
        assert_error_line(cat_latest, 1);
        assert_error_line(cat_head, 1);
        assert_error_line(restore, 1);
        assert!(!to.exists());
        assert_eq!(
            git(&env, repo, &["for-each-ref"]).stdout_str(),
            refs,
            "{}: refs changed",
            repo.display()
        );
        assert_dir_unchanged(&before, repo, "sqlgit on a foreign git repository");
    }
    // The .git of the work tree, given directly, is refused as well.
    let dotgit = work.join(".git");
    let before = dir_state(&dotgit);
    assert_error_line(snapshot_run(&env, &db, &dotgit, Some(T), &[]), 1);
    assert_dir_unchanged(&before, &dotgit, "sqlgit on work/.git");

    // A non-empty directory that is not a git repository at all.
    let plain = env.path("plain");
    std::fs::create_dir(&plain).unwrap();
    std::fs::write(plain.join("notes.txt"), "x").unwrap();
    let before = dir_state(&plain);
    assert_error_line(snapshot_run(&env, &db, &plain, Some(T), &[]), 1);
    assert_readers_refuse(&env, &plain);
    assert_dir_unchanged(&before, &plain, "sqlgit on a plain directory");

    // An existing empty directory is fine: it becomes the repository.
    let empty_dir = env.path("empty-dir");
    std::fs::create_dir(&empty_dir).unwrap();
    snapshot_commit(&env, &db, &empty_dir, Some(T));
    assert_fsck_clean(&env, &empty_dir);
}

#[test]
fn usage_errors_exit_2() {
    let env = TestEnv::new();
    let db = env.fixture_db("types");
    let repo = env.path("repo");
    let d = db.to_str().unwrap();
    let r = repo.to_str().unwrap();
    for args in [
        vec!["snapshot", d], // no --repo
        vec!["snapshot", d, "--repo", r, "--lock-timeout", "soon"],
        vec!["log"],
        vec!["cat", "--repo"],
        vec!["restore", "--repo", r], // no --to
        vec!["restore", "--repo", r, "--to", "x.db", "--bogus"],
    ] {
        env.sqlgit(&args).code_is(2);
    }
    assert!(!repo.exists(), "a usage error created the repository");
}

/// An application that creates its database lazily leaves an empty file: SQLite reads it as an
/// empty database, and so do `dump` and `snapshot`, then and once it has tables.
#[test]
fn an_empty_database_file_is_an_empty_database() {
    let env = TestEnv::new();
    let db = env.write("lazy.db", b"");
    let repo = env.path("lazy.sqlgit");
    snapshot_commit(&env, &db, &repo, Some(T));
    assert_eq!(snapshot(&env, &db, &repo, Some(T + 60)), None);
    let c = Connection::open(&db).unwrap();
    c.execute_batch("CREATE TABLE t(a); INSERT INTO t VALUES('first');")
        .unwrap();
    drop(c);
    snapshot_commit(&env, &db, &repo, Some(T + 120));
    let restored = env.path("restored.db");
    let (repo_arg, to) = (repo.display().to_string(), restored.display().to_string());
    sqlgit_at(&env, None, &["restore", "--repo", &repo_arg, "--to", &to]).success();
    compare_databases(&db, &restored);
    sqlgit_at(&env, None, &["verify", "HEAD~1", "--repo", &repo_arg]).success();

    // Once it had tables, a file truncated to 0 bytes is refused, not recorded as emptied (with
    // --keep 1 that would prune the last good snapshot).
    let head = env.git_in(&repo, &["rev-parse", "main"]);
    std::fs::write(&db, b"").unwrap();
    let run = sqlgit_at(
        &env,
        Some(T + 180),
        &["snapshot", "--repo", &repo_arg, "--keep", "1"],
    )
    .code_is(1);
    assert!(
        run.stderr_str().contains("empty file (0 bytes)"),
        "{}",
        run.stderr_str()
    );
    assert_eq!(env.git_in(&repo, &["rev-parse", "main"]), head);
}

/// A copy over the database (`cp backup.db app.db`) truncates it to 0 bytes for a moment; a run
/// that opened the file just before is refused, not recorded as every table deleted with exit 0:
/// the emptiness is asked of the moment the snapshot reads, not of the file before it.
#[test]
fn a_database_truncated_after_the_run_opened_it_is_refused() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(a); INSERT INTO t VALUES('kept');",
    );
    let repo = env.path("r.sqlgit");
    snapshot_commit(&env, &db, &repo, Some(T));
    let head = env.git_in(&repo, &["rev-parse", "main"]);
    let run = env.sqlgit_paused(
        T + 60,
        &[
            OsStr::new("snapshot"),
            db.as_os_str(),
            OsStr::new("--repo"),
            repo.as_os_str(),
        ],
        "snapshot-opened",
        || std::fs::write(&db, b"").unwrap(), // what `cp` does first
    );
    let run = run.code_is(1);
    assert!(
        run.stderr_str().contains("empty file (0 bytes)"),
        "{}",
        run.stderr_str()
    );
    assert_eq!(env.git_in(&repo, &["rev-parse", "main"]), head);
}

/// Not a regular file: refused at once (a FIFO would block the run, with the lock, forever).
#[test]
fn a_database_path_that_is_not_a_regular_file_is_refused() {
    let env = TestEnv::new();
    let fifo = env.path("fifo.db");
    let c = std::ffi::CString::new(fifo.display().to_string()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for db in [fifo.display().to_string(), "/dev/null".to_string()] {
        let repo = env.path("r").display().to_string();
        let run = sqlgit_at(&env, Some(T), &["snapshot", &db, "--repo", &repo]).code_is(1);
        assert!(
            run.stderr_str().contains("not a regular file"),
            "{}",
            run.stderr_str()
        );
    }
}
