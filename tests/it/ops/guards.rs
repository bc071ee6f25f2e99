//! Settings and paths that must not silently mean something else: a database dropped from the
//! list, a relative path in a hand-edited config, the configured database reached through a
//! symlink, remotes named twice in the config, credentials in a URL's query, a refused first run,
//! `-o` naming a database or the repository, and commands printed for the user to run.

use super::*;
use crate::env::FileState;

fn new_db(env: &TestEnv, name: &str, script: &str) -> PathBuf {
    let db = env.path(name);
    sql(env, &db, script);
    db
}

#[test]
fn a_database_removed_from_the_list_leaves_the_next_snapshot() {
    let env = TestEnv::new();
    new_db(
        &env,
        "a.db",
        "create table t(x); insert into t values('a');",
    );
    new_db(
        &env,
        "b.db",
        "create table u(x); insert into u values('b');",
    );
    let r = s(&env.path("R"));
    sg(
        &env,
        T0,
        &["init", "--repo", &r, "--db", "a.db", "--db", "b.db", "-q"],
    )
    .success();
    sg(&env, T0, &["snapshot", "--repo", &r, "-q"]).success();
    sg(&env, T0 + 60, &["init", "--repo", &r, "--db", "a.db", "-q"]).success();
    sg(&env, T0 + 120, &["snapshot", "--repo", &r, "-q"]).success();
    assert_eq!(top_folders(&env, &env.path("R"), "main"), ["a.db"]);
    assert_eq!(
        top_folders(&env, &env.path("R"), "main~1"),
        ["a.db", "b.db"]
    );
    sg(&env, T0 + 120, &["cat", "--repo", &r]).success();
    // A one-off run keeps the configured databases' folders.
    new_db(&env, "c.db", "create table v(x);");
    sg(&env, T0 + 180, &["snapshot", "c.db", "--repo", &r, "-q"]).success();
    assert_eq!(top_folders(&env, &env.path("R"), "main"), ["a.db", "c.db"]);
}

#[test]
fn a_relative_database_path_in_the_config_is_refused() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("x")).unwrap();
    new_db(&env, "x/app.db", "create table t(a);");
    let r = s(&env.path("R"));
    sg(&env, T0, &["init", "--repo", &r, "--db", "x/app.db", "-q"]).success();
    let config = s(&env.path("R/config"));
    git(
        &env,
        env.root(),
        &["config", "-f", &config, "sqlgit.db", "app.db"],
    );
    let err = one_error_line(sg(&env, T0, &["snapshot", "--repo", &r]), 1);
    assert!(
        err.contains("sqlgit.db \"app.db\"") && err.contains("relative"),
        "{err}"
    );
    // The command it names fixes it.
    sg(&env, T0, &["init", "--repo", &r, "--db", "x/app.db", "-q"]).success();
    sg(&env, T0, &["snapshot", "--repo", &r, "-q"]).success();
}

#[test]
fn the_configured_database_through_a_symlinked_folder_is_the_configured_one() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("d")).unwrap();
    std::os::unix::fs::symlink(env.path("d"), env.path("L")).unwrap();
    new_db(&env, "d/app.db", "create table t(a);");
    let r = s(&env.path("R"));
    sg(&env, T0, &["snapshot", "d/app.db", "--repo", &r, "-q"]).success();
    sg(&env, T0 + 60, &["snapshot", "L/app.db", "--repo", &r, "-q"]).success();
    assert_eq!(
        config_values(&env, &env.path("R"), "sqlgit.db"),
        [s(&env.path("d/app.db"))]
    );
}

#[test]
fn remotes_named_alike_in_the_config_are_named_as_its_keys() {
    let env = TestEnv::new();
    new_db(&env, "app.db", "create table t(a);");
    git(
        &env,
        env.root(),
        &["init", "-q", "--bare", "-b", "main", "h.git"],
    );
    let (r, h) = (s(&env.path("R")), s(&env.path("h.git")));
    sg(
        &env,
        T0,
        &[
            "snapshot",
            "app.db",
            "--repo",
            &r,
            "--history-remote",
            &h,
            "-q",
        ],
    )
    .success();
    let config = s(&env.path("R/config"));
    git(
        &env,
        env.root(),
        &["config", "-f", &config, "sqlgit.latestRemote", &h],
    );
    let err = one_error_line(sg(&env, T0, &["snapshot", "--repo", &r]), 1);
    assert!(
        err.contains("sqlgit.historyRemote in") && err.contains("sqlgit.latestRemote in"),
        "{err}"
    );
    assert!(!err.contains("--history-remote and"), "{err}");
    // The command it suggests runs.
    sg(
        &env,
        T0,
        &["init", "--repo", &r, "--latest-remote", "", "-q"],
    )
    .success();
    sg(&env, T0, &["snapshot", "--repo", &r, "-q"]).success();
}

#[test]
fn a_token_in_the_query_string_is_neither_printed_nor_saved() {
    let env = TestEnv::new();
    new_db(&env, "app.db", "create table t(a);");
    let r = s(&env.path("R"));
    let url = "https://127.0.0.1:1/x.git?access_token=QueryTok3nSecret";
    let run = sg(
        &env,
        T0,
        &["snapshot", "app.db", "--repo", &r, "--history-remote", url],
    );
    let out = format!("{}{}", run.stdout_str(), run.stderr_str());
    assert!(!out.contains("QueryTok3nSecret"), "{out}");
    for file in ["config", "sqlgit-state.json"] {
        let text = std::fs::read_to_string(env.path("R").join(file)).unwrap();
        assert!(!text.contains("QueryTok3nSecret"), "{file}: {text}");
    }
}

#[test]
fn a_refused_first_run_creates_no_repository() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("dir.db")).unwrap();
    env.write("notes.txt", "hello\n");
    for db in ["dir.db", "/dev/null", "notes.txt"] {
        sg(&env, T0, &["snapshot", db, "--repo", "app.sqlgit"]).failure();
        assert!(
            !env.path("app.sqlgit").exists(),
            "{db}: the repository was created"
        );
    }
}

#[test]
fn output_files_never_replace_a_database_or_the_repository() {
    let env = TestEnv::new();
    let db = new_db(
        &env,
        "app.db",
        "create table t(a); insert into t values(1);",
    );
    let other = new_db(&env, "other.db", "create table u(a);");
    let r = s(&env.path("R"));
    sg(&env, T0, &["snapshot", "app.db", "--repo", &r, "-q"]).success();
    std::fs::write(env.path("app.db-wal"), b"").unwrap();
    for args in [
        vec!["dump", "app.db", "-o", "app.db"],
        vec!["dump", "app.db", "-o", "app.db-wal"],
        vec!["dump", "app.db", "-o", "other.db"],
        vec!["cat", "--repo", &r, "-o", "app.db"],
        vec!["cat", "--repo", &r, "-o", "R/config"],
    ] {
        let before = (FileState::of(&db), FileState::of(&other));
        one_error_line(sg(&env, T0, &args), 1);
        before.0.assert_unchanged(&db, &args.join(" "));
        before.1.assert_unchanged(&other, &args.join(" "));
    }
    assert!(env.path("R/config").is_file());
    sg(&env, T0, &["dump", "app.db", "-o", "new.sql"]).success();
}

#[test]
fn init_changes_one_setting_without_the_database_list() {
    let env = TestEnv::new();
    new_db(&env, "app.db", "create table t(a);");
    let r = s(&env.path("R"));
    let err = one_error_line(sg(&env, T0, &["init", "--repo", &r, "--keep", "3"]), 2);
    assert!(err.contains("--db"), "{err}");
    assert!(!env.path("R").exists());
    sg(&env, T0, &["init", "--repo", &r, "--db", "app.db", "-q"]).success();
    sg(&env, T0, &["init", "--repo", &r, "--keep", "3", "-q"]).success();
    assert_eq!(config_values(&env, &env.path("R"), "sqlgit.keep"), ["3"]);
    assert_eq!(
        config_values(&env, &env.path("R"), "sqlgit.db"),
        [s(&env.path("app.db"))]
    );
}

/// A run refused because the repository is another user's (an admin's `sudo sqlgit snapshot`)
/// records nothing in that user's files: their metrics file and state stay theirs and as they
/// were, and their hooks do not run as this user. Only the error is told.
#[test]
fn a_run_refused_as_another_users_records_nothing_in_their_files() {
    let env = TestEnv::new();
    let db = new_db(
        &env,
        "app.db",
        "CREATE TABLE t(a); INSERT INTO t VALUES (1);",
    );
    let repo = env.path("app.sqlgit");
    let (metrics, hooked) = (env.path("m.prom"), env.path("hooked"));
    let on_failure = format!("touch {}", s(&hooked));
    let args = [
        "snapshot",
        &s(&db),
        "--repo",
        &s(&repo),
        "--metrics-file",
        &s(&metrics),
    ];
    let mut args = args.to_vec();
    args.extend(["--on-failure", &on_failure]);
    sg(&env, T0, &args).success();
    let chown = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&repo)
        .arg(&metrics)
        .status();
    if !chown.is_ok_and(|s| s.success()) || unsafe { libc::geteuid() } == 65534 {
        eprintln!("SKIP: cannot give the repository to another user");
        return;
    }
    let before = std::fs::read(&metrics).unwrap();
    let err = sg(&env, T0 + 60, &["snapshot", "--repo", &s(&repo)])
        .code_is(1)
        .stderr_str();
    assert!(err.contains("owned by another user"), "{err}");
    assert_eq!(std::fs::read(&metrics).unwrap(), before, "metrics replaced");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&metrics).unwrap().uid(), 65534);
    assert!(
        !hooked.exists(),
        "the owner's failure hook ran as another user"
    );
}

/// Whether this test may give files to uid 65534 (it runs as root).
fn can_chown() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("SKIP: cannot give the repository to another user");
    }
    root
}

/// `init` by another user than the repository's owner (root, git not trusting the repository)
/// says so, not that the repository has no databases yet.
#[test]
fn init_on_another_users_repository_names_the_owner_not_missing_databases() {
    let env = TestEnv::new();
    let db = new_db(&env, "a.db", "create table t(x); insert into t values(1);");
    let repo = env.path("r");
    sg(&env, T0, &["snapshot", &s(&db), "--repo", &s(&repo), "-q"]).success();
    if !can_chown() {
        return;
    }
    std::os::unix::fs::chown(&repo, Some(65534), Some(65534)).unwrap();
    let err = sg(&env, T0, &["init", "--repo", &s(&repo), "--keep", "2d"])
        .code_is(1)
        .stderr_str();
    assert!(
        err.contains("owned by another user") && !err.contains("no databases yet"),
        "{err}"
    );
}

/// `sudo sqlgit init` on the job user's repository (git trusting it) leaves the files it
/// writes to that user; a file or folder of the repository root kept anyway names its owner
/// and the `chown -R` that gives it back, for every command of that user.
#[test]
fn root_keeps_the_owner_of_what_it_writes_and_a_root_file_names_the_chown() {
    use std::os::unix::fs::MetadataExt;
    let env = TestEnv::new();
    // A folder the other user may enter (the test's own is private).
    let dir = tempfile::Builder::new()
        .prefix("sqlgit-own")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = new_db(&env, "a.db", "create table t(x); insert into t values(1);");
    let repo = dir.path().join("r");
    sg(&env, T0, &["snapshot", &s(&db), "--repo", &s(&repo), "-q"]).success();
    if !can_chown() {
        return;
    }
    let chown = chown_r;
    chown(&repo, 65534);
    // Trusted (git's safe.directory) in the global config libgit2 reads ($HOME/.gitconfig).
    env.write(
        env.home().join(".gitconfig"),
        format!("[safe]\n\tdirectory = {}\n", s(&repo)),
    );
    sg(
        &env,
        T0,
        &["init", "--repo", &s(&repo), "--keep", "2d", "-q"],
    )
    .success();
    for name in ["config", "sqlgit.lock"] {
        let owner = std::fs::metadata(repo.join(name)).unwrap().uid();
        assert_eq!(owner, 65534, "{name} is no longer the repository owner's");
    }
    // Root's snapshot and prune (objects, packs, refs, `shallow`, the page map): all given back.
    env.sqlite3(&db, "insert into t values(2);").success();
    sg(&env, T0 + 10, &["snapshot", "--repo", &s(&repo), "-q"]).success();
    sg(
        &env,
        T0 + 20,
        &["prune", "--repo", &s(&repo), "--keep", "1"],
    )
    .success();
    let rooted = rooted(&repo);
    assert!(repo.join("shallow").exists());
    assert!(rooted.is_empty(), "left to root: {rooted:?}");
    // What an older sqlgit's init left: a root-owned config; then a root-owned private folder.
    let as_owner = |args: &[&str]| {
        let sqlgit = sqlgit_cmd(&env, T0, args, &[]);
        let mut cmd = as_nobody(&sqlgit);
        cmd.current_dir("/");
        run_limited(&env, cmd, b"").code_is(1).stderr_str()
    };
    std::os::unix::fs::chown(repo.join("config"), Some(0), Some(0)).unwrap();
    let fix = format!("chown -R 65534 {}", s(&repo));
    for args in [vec!["snapshot", "--repo"], vec!["status", "--repo"]] {
        let r = s(&repo);
        let err = as_owner(&[args.as_slice(), &[r.as_str()]].concat());
        assert!(
            err.contains("uid 0") && err.contains(&fix),
            "{args:?}: {err}"
        );
    }
    chown(&repo, 65534);
    std::os::unix::fs::chown(&repo, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&repo, std::fs::Permissions::from_mode(0o700)).unwrap();
    let err = as_owner(&["snapshot", "--repo", &s(&repo)]);
    assert!(err.contains("uid 0") && err.contains(&fix), "{err}");
    // The hook and metrics file given on the owner's command line still tell it.
    let drop_box = dir.path().join("box");
    std::fs::create_dir(&drop_box).unwrap();
    std::fs::set_permissions(&drop_box, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (hooked, metrics) = (drop_box.join("hooked"), drop_box.join("m.prom"));
    let on_failure = format!("touch {}", s(&hooked));
    let r = s(&repo);
    let m = s(&metrics);
    let flags = ["--on-failure", &on_failure, "--metrics-file", &m];
    as_owner(&[&["snapshot", "--repo", r.as_str()][..], &flags].concat());
    assert!(
        hooked.exists(),
        "the failure hook given as a flag did not run"
    );
    let written = std::fs::read_to_string(&metrics).unwrap_or_default();
    let success = written
        .lines()
        .find(|l| l.starts_with("sqlgit_last_run_success{"));
    assert!(success.is_some_and(|l| l.ends_with(" 0")), "{written}");
}

/// A symbolic link in place of the repository's lock file is not followed: a run (root's, on a
/// repository another user can write) would cut short and write the file it names.
#[test]
fn a_symlinked_lock_file_is_not_followed() {
    let env = TestEnv::new();
    let db = new_db(&env, "a.db", "create table t(x); insert into t values(1);");
    let repo = env.path("r");
    sg(&env, T0, &["snapshot", &s(&db), "--repo", &s(&repo), "-q"]).success();
    let victim = env.write("victim", "keep me\n");
    std::fs::remove_file(repo.join("sqlgit.lock")).unwrap();
    std::os::unix::fs::symlink(&victim, repo.join("sqlgit.lock")).unwrap();
    let line = one_error_line(sg(&env, T0 + 10, &["snapshot", "--repo", &s(&repo)]), 1);
    assert!(line.contains("sqlgit.lock"), "{line}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me\n");
}

/// Root's `log --all` on the job user's repository fetches into the history cache and marks it
/// used: it leaves no file there root owns (a root-owned stamp the owner cannot renew let the
/// owner's next prune drop the cache as idle); and a stamp an older sqlgit left to root is
/// replaced by the owner's next use, not kept.
#[test]
fn root_reading_pruned_snapshots_leaves_the_history_cache_to_the_owner() {
    let env = TestEnv::new();
    let dir = tempfile::Builder::new()
        .prefix("sqlgit-own")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = new_db(&env, "a.db", "create table t(x); insert into t values(1);");
    let (repo, hist) = (dir.path().join("r"), dir.path().join("hist.git"));
    git_run(&env, dir.path(), &["init", "-q", "--bare", &s(&hist)]).success();
    let (d, r, h) = (s(&db), s(&repo), s(&hist));
    for i in 0..3 {
        env.sqlite3(&db, format!("insert into t values({i});"))
            .success();
        let args = ["snapshot", &d, "--repo", &r, "--history-remote", &h, "-q"];
        sg(&env, T0 + 60 * i, &args).success();
    }
    sg(&env, T0 + 200, &["prune", "--repo", &r, "--keep", "1"]).success();
    if !can_chown() {
        return;
    }
    // The repository is the owner's; the history remote stays root's (git fetches only from
    // a repository its user owns).
    chown_r(&repo, 65534);
    env.write(env.home().join(".gitconfig"), "[safe]\n\tdirectory = *\n");
    let log = sg(&env, T0 + 300, &["log", "--all", "--repo", &r]).success();
    let pruned: Vec<String> = log
        .stdout_str()
        .lines()
        .filter(|l| l.contains("remote"))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert_eq!(pruned.len(), 2, "{}", log.stdout_str());
    let rooted = rooted(&repo);
    assert!(rooted.is_empty(), "left to root: {rooted:?}");
    let stamp = repo.join("sqlgit-cache/sqlgit-used");
    assert_eq!(std::fs::metadata(&stamp).unwrap().uid(), 65534);
    // An older sqlgit's leftover: root's private stamp, an hour old. The owner's use renews it.
    std::os::unix::fs::chown(&stamp, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&stamp, std::fs::Permissions::from_mode(0o600)).unwrap();
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    let file = std::fs::File::options().write(true).open(&stamp).unwrap();
    file.set_modified(hour_ago).unwrap();
    // The owner reads a pruned snapshot the cache holds.
    let sqlgit = sqlgit_cmd(&env, T0 + 400, &["cat", &pruned[0], "--repo", &r], &[]);
    let mut cmd = as_nobody(&sqlgit);
    cmd.current_dir("/");
    run_limited(&env, cmd, b"").success();
    let meta = std::fs::metadata(&stamp).unwrap();
    assert_eq!(meta.uid(), 65534, "the owner's use replaced root's stamp");
    assert!(meta.modified().unwrap() > hour_ago + Duration::from_secs(600));
}
