//! `sqlgit init` and remembered settings: a config-driven snapshot of several databases, flags that
//! override and are remembered, relative paths meaning the same files from another directory.

use super::*;

/// Whether the repository has a `main` (a snapshot was taken).
fn has_snapshot(env: &TestEnv, repo: &std::path::Path) -> bool {
    let args = ["rev-parse", "-q", "--verify", "refs/heads/main"];
    git_run(env, repo, &args).code() == Some(0)
}

// ------------------------------------------------------------------------------------------------
// 1. Config-driven snapshot of several databases

#[test]
fn init_then_snapshot_with_no_flags_snapshots_every_configured_database() {
    let env = TestEnv::new();
    let daemon = GitDaemon::start_in(env.path("srv"));
    let remote = daemon.create_bare("hist");
    let url = daemon.url("hist");
    let a = db_from_fixture(&env, "A.db", "rowids");
    let b = db_from_fixture(&env, "B.db", "identifiers");
    let repo = env.path("R");
    let r = s(&repo);

    // Relative database paths: remembered as absolute ones (cron runs elsewhere).
    let init = sg(
        &env,
        T0,
        &[
            "init",
            "--repo",
            &r,
            "--db",
            "A.db",
            "--db",
            "B.db",
            "--keep",
            "5",
            "--history-remote",
            &url,
        ],
    )
    .success()
    .assert_quiet();
    assert!(
        init.stdout_str().contains("config"),
        "init should say where the settings are:\n{}",
        init.stdout_str()
    );
    assert_eq!(config_values(&env, &repo, "sqlgit.db"), [s(&a), s(&b)]);
    assert_eq!(config_values(&env, &repo, "sqlgit.keep"), ["5"]);
    assert_eq!(
        config_values(&env, &repo, "sqlgit.historyRemote"),
        std::slice::from_ref(&url)
    );
    assert!(!has_snapshot(&env, &repo), "init must not take a snapshot");

    // `sqlgit snapshot --repo R` and nothing else, from another directory.
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let mut cmd = sqlgit_cmd(&env, T0, &["snapshot", "--repo", &r], &[]);
    cmd.current_dir(&elsewhere);
    run_limited(&env, cmd, b"").success().assert_quiet();
    assert_eq!(commit_count(&env, &repo), 1, "one commit");
    assert_eq!(top_folders(&env, &repo, "main"), ["A.db", "B.db"]);
    assert_eq!(
        git(&env, &remote, &["rev-parse", "refs/heads/main"]),
        head(&env, &repo),
        "the configured history remote received the snapshot"
    );
    assert_eq!(
        git(&env, &repo, &["log", "-1", "--format=%ct", "main"]),
        T0.to_string(),
        "the commit time is SQLGIT_NOW"
    );

    // Each database restores exactly from its folder.
    for (db, folder, name) in [(&a, "A.db", "A.restored.db"), (&b, "B.db", "B.restored.db")] {
        let dump = sg(&env, T0, &["cat", "--repo", &r, "--db", folder])
            .success()
            .assert_quiet()
            .output
            .stdout;
        assert_restores(&env, &dump, db, name);
    }
    // Without --db, cat refuses to guess between two databases.
    one_error_line(sg(&env, T0, &["cat", "--repo", &r]), 1);

    // Flags override the config and are remembered; a database given as an argument is
    // snapshotted, but does not replace the configured list (a one-off run must not stop the
    // backup of the others): the run says so.
    let c = env.db_from_script(
        "C.db",
        b"CREATE TABLE c(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO c VALUES (1, 'one');",
    );
    let run = sg(
        &env,
        T0 + 60,
        &["snapshot", "C.db", "--repo", &r, "--keep", "7"],
    )
    .success();
    assert!(
        run.stdout_str().contains("C.db only") && run.stdout_str().contains("sqlgit init"),
        "{}",
        run.stdout_str()
    );
    assert_eq!(config_values(&env, &repo, "sqlgit.db"), [s(&a), s(&b)]);
    assert_eq!(config_values(&env, &repo, "sqlgit.keep"), ["7"]);
    assert_eq!(
        config_values(&env, &repo, "sqlgit.historyRemote"),
        std::slice::from_ref(&url),
        "a setting not given stays"
    );
    assert_eq!(commit_count(&env, &repo), 2);
    assert!(top_folders(&env, &repo, "main").contains(&"C.db".to_string()));

    // A bare run snapshots the configured databases: A's change is taken.
    sql(&env, &a, "INSERT INTO plain VALUES (99, 99);");
    sg(&env, T0 + 120, &["snapshot", "--repo", &r])
        .success()
        .assert_quiet();
    assert_eq!(commit_count(&env, &repo), 3);
    let dump = sg(&env, T0, &["cat", "--repo", &r, "--db", "A.db"])
        .success()
        .output
        .stdout;
    assert_restores(&env, &dump, &a, "A.restored-2.db");
    // A one-off database of a configured one's file name would take its folder: refused.
    std::fs::create_dir_all(env.path("other")).unwrap();
    let other_a = env.db_from_script("other/A.db", b"CREATE TABLE x(y);");
    let line = one_error_line(
        sg(&env, T0 + 140, &["snapshot", &s(&other_a), "--repo", &r]),
        1,
    );
    assert!(line.contains("folder \"A.db\""), "{line}");
    // `init --db` changes the list.
    sg(&env, T0 + 150, &["init", "--repo", &r, "--db", &s(&c)]).success();
    assert_eq!(config_values(&env, &repo, "sqlgit.db"), [s(&c)]);
    assert_eq!(
        git(&env, &remote, &["rev-parse", "refs/heads/main"]),
        head(&env, &repo),
        "every snapshot reached the history remote"
    );
    drop(daemon);
}

// ------------------------------------------------------------------------------------------------
// Settings with relative paths

/// cron runs in another directory than `sqlgit init` did: every path setting given relative must
/// mean the same file later (databases already are remembered as absolute paths).
#[test]
fn relative_path_settings_mean_the_same_files_from_another_directory() {
    let env = TestEnv::new();
    env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');",
    );
    std::fs::create_dir_all(env.path("prom")).unwrap();
    env.write("keys/id_test", "not really a key\n");
    let repo = env.path("app.sqlgit");
    sg(
        &env,
        T0,
        &[
            "init",
            "--repo",
            "app.sqlgit",
            "--db",
            "app.db",
            "--metrics-file",
            "prom/app.prom",
            "--ssh-key",
            "keys/id_test",
        ],
    )
    .success();
    assert_eq!(
        config_values(&env, &repo, "sqlgit.db"),
        [s(&env.path("app.db"))]
    );
    for key in ["sqlgit.metricsFile", "sqlgit.sshKey"] {
        let values = config_values(&env, &repo, key);
        assert!(
            values.len() == 1 && values[0].starts_with('/'),
            "{key} must be remembered as an absolute path (cron runs elsewhere): {values:?}"
        );
    }
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let mut cmd = sqlgit_cmd(&env, T0, &["snapshot", "--repo", &s(&repo)], &[]);
    cmd.current_dir(&elsewhere);
    run_limited(&env, cmd, b"").success().assert_quiet();
    assert!(
        env.path("prom/app.prom").is_file(),
        "the metrics file goes where it was configured"
    );
    assert_eq!(list_dir(&elsewhere), Vec::<String>::new());
}

/// A setting the config file holds but sqlgit would not read fails every run, loudly, with the
/// key named: a typo (`histroyRemote` would leave the backup without its remote, silently), a
/// key without a value, one setting given twice, a value the command line would refuse. Fixed,
/// the next run works.
#[test]
fn settings_in_the_config_that_would_be_ignored_fail_the_run() {
    let env = TestEnv::new();
    let a = db_from_fixture(&env, "A.db", "rowids");
    let repo = env.path("R");
    let r = s(&repo);
    sg(&env, T0, &["init", "--repo", &r, "--db", &s(&a)]).success();
    let config = repo.join("config");
    let original = std::fs::read_to_string(&config).unwrap();
    for (added, said) in [
        (
            "\thistroyRemote = /srv/h.git\n",
            "unknown setting sqlgit.histroyremote (did you mean sqlgit.historyRemote?)",
        ),
        ("\tkeep\n", "sqlgit.keep has no value"),
        (
            "\tkeep = 5\n\tkeep = 7\n",
            "sqlgit.keep is set more than once",
        ),
        // A bad value is named where it is, not as a flag nobody typed.
        ("\tkeep = 3x\n", "sqlgit.keep in "),
        // A redact pattern the command line refuses would redact nothing: the values would be
        // committed in clear.
        ("\tredact = password_hash\n", "sqlgit.redact in "),
        ("\tredact = *\n", "\"*\" is not TABLE.COLUMN"),
        (
            "\tredact = t.x\n\tredact = users.\n",
            "\"users.\" is not TABLE.COLUMN",
        ),
    ] {
        std::fs::write(&config, format!("{original}{added}")).unwrap();
        let run = sg(&env, T0 + 60, &["snapshot", "--repo", &r]).code_is(1);
        assert!(run.stderr_str().contains(said), "{}", run.stderr_str());
        assert!(
            !has_snapshot(&env, &repo),
            "a run with a config it cannot read took a snapshot"
        );
    }
    std::fs::write(&config, &original).unwrap();
    sg(&env, T0 + 120, &["snapshot", "--repo", &r]).success();
}

// ------------------------------------------------------------------------------------------------
// Saving settings and creating the repository, killed half-way

/// git rewrites its config whole for each key: an `init` killed between two of those rewrites
/// (here: after the database list was removed, before it was written again) must leave the old
/// settings, not a config without databases that fails every later run.
#[test]
fn a_killed_init_leaves_the_old_settings_or_the_new_ones() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    let repo = env.path("r");
    let (r, d) = (s(&repo), s(&db));
    sg(&env, T0, &["snapshot", &d, "--repo", &r, "--keep", "3"]).success();
    let before = std::fs::read(repo.join("config")).unwrap();
    let init = ["init", "--repo", &r, "--db", &d, "--keep", "7"];
    let killed = sg_vars(
        &env,
        T0 + 60,
        &init,
        &[("SQLGIT_FAILPOINT", "settings-list-removed")],
    );
    assert_eq!(
        killed.code(),
        None,
        "the failpoint kills init while it saves"
    );
    assert_eq!(
        std::fs::read(repo.join("config")).unwrap(),
        before,
        "a killed init must leave the config as it was"
    );
    sg(&env, T0 + 120, &["snapshot", "--repo", &r]).success();
    let config = repo.join("config");
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let leftovers: Vec<String> = list_dir(&repo)
        .into_iter()
        .filter(|n| n.starts_with(".sqlgit"))
        .collect();
    assert!(leftovers.is_empty(), "the next run removes {leftovers:?}");
    sg(&env, T0 + 180, &init).success();
    assert_eq!(config_values(&env, &repo, "sqlgit.keep"), ["7"]);
    assert_eq!(
        config_values(&env, &repo, "sqlgit.db"),
        std::slice::from_ref(&d)
    );
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// A repository folder an administrator made for the backup user, empty, often in a folder that
/// user cannot write (`/srv/backup`, root's): used in place — the same folder (inode), nothing
/// created beside it — also after a first run killed while creating it.
#[test]
fn an_existing_empty_repository_folder_is_filled_in_place() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    let parent = env.path("backup");
    let repo = parent.join("app.sqlgit");
    std::fs::create_dir_all(&repo).unwrap();
    let inode = std::fs::metadata(&repo).unwrap().ino();
    // What a first run killed while creating it in place leaves.
    std::fs::create_dir_all(repo.join(".sqlgit-new-999999999/objects")).unwrap();
    std::fs::create_dir_all(repo.join("objects")).unwrap();
    std::fs::write(repo.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    let (r, d) = (s(&repo), s(&db));
    sg(&env, T0, &["snapshot", &d, "--repo", &r]).success();
    assert_eq!(std::fs::metadata(&repo).unwrap().ino(), inode);
    assert_eq!(
        list_dir(&parent),
        ["app.sqlgit"],
        "nothing created beside it"
    );
    assert!(
        !list_dir(&repo).iter().any(|n| n.starts_with(".sqlgit-new")),
        "{:?}",
        list_dir(&repo)
    );
    sg(&env, T0 + 60, &["snapshot", "--repo", &r]).success();
    assert_eq!(commit_count(&env, &repo), 1);
    // A folder holding anything else is not taken over.
    let other = parent.join("other");
    std::fs::create_dir_all(other.join("objects")).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    sg(&env, T0, &["snapshot", &d, "--repo", &s(&other)]).failure();
    assert_eq!(list_dir(&other), ["notes.txt", "objects"]);
}

/// The command `init` prints for the crontab is one word per path for sh: a folder with a space
/// in its name comes out quoted, and the printed command, run as it is, snapshots.
#[test]
fn the_printed_command_quotes_a_repository_path_with_a_space() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    let repo = env.path("my backups/app repo");
    let run = sg(&env, T0, &["init", "--repo", &s(&repo), "--db", &s(&db)]).success();
    let out = run.stdout_str();
    let quoted = format!("--repo '{}'", s(&repo));
    assert!(out.contains(&quoted), "{out}");
    let printed = out.split("run: ").nth(1).unwrap().trim().to_string();
    let args = printed
        .strip_prefix("sqlgit ")
        .unwrap()
        .replace(&quoted, "");
    assert_eq!(
        args.split_whitespace().collect::<Vec<_>>(),
        ["snapshot"],
        "{printed}"
    );
    sg(&env, T0 + 60, &["snapshot", "--repo", &s(&repo)]).success();
    assert!(has_snapshot(&env, &repo));
}

/// Two databases of one file name in different folders would share their folder in the
/// repository, and every run would fail: init and snapshot refuse them up front, naming the
/// way out (a symlink of another name), which works.
#[test]
fn two_databases_of_one_file_name_are_refused_up_front() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("a")).unwrap();
    std::fs::create_dir_all(env.path("b")).unwrap();
    let one = env.db_from_script("a/app.db", b"CREATE TABLE t(v); INSERT INTO t VALUES (1);");
    let two = env.db_from_script("b/app.db", b"CREATE TABLE u(v); INSERT INTO u VALUES (2);");
    let repo = env.path("r.sqlgit");
    let (one_arg, two_arg, r) = (s(&one), s(&two), s(&repo));
    for cmd in [
        vec!["init", "--repo", &r, "--db", &one_arg, "--db", &two_arg],
        vec!["snapshot", &one_arg, &two_arg, "--repo", &r],
    ] {
        let run = env.sqlgit(&cmd).code_is(2);
        let err = run.stderr_str();
        assert_eq!(err.lines().count(), 1, "{cmd:?}: one line:\n{err}");
        assert!(err.contains("ln -s"), "{cmd:?}: {err}");
        assert!(!has_snapshot(&env, &repo), "{cmd:?}");
    }
    let run = env.sqlgit(&["init", "--repo", &r, "--db", &one_arg, "--db", &one_arg]);
    assert!(run.code_is(2).stderr_str().contains("given twice"));
    let other = env.path("other.db");
    std::os::unix::fs::symlink(&two, &other).unwrap();
    env.sqlgit(&["init", "--repo", &r, "--db", &one_arg, "--db", &s(&other)])
        .success();
    env.sqlgit(&["snapshot", "--repo", &r, "-q"]).success();
    assert!(has_snapshot(&env, &repo));
}

/// A run whose settings are what the config holds leaves the config alone (not copied, not
/// renamed): on a read-only or full disk only a run with something to save fails to save it.
#[test]
fn a_run_that_changes_no_setting_leaves_the_config_alone() {
    use std::os::unix::fs::MetadataExt;
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(v); INSERT INTO t VALUES (1);");
    let repo = env.path("r.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    env.sqlgit(&["snapshot", &d, "--repo", &r, "--keep", "3", "-q"])
        .success();
    let config = repo.join("config");
    let before = std::fs::metadata(&config).unwrap().ino();
    env.sqlite3(&db, "INSERT INTO t VALUES (2);").success();
    env.sqlgit(&["snapshot", "--repo", &r, "-q"]).success();
    env.sqlgit(&["snapshot", &d, "--repo", &r, "--keep", "3", "-q"])
        .success();
    assert_eq!(std::fs::metadata(&config).unwrap().ino(), before);
    env.sqlgit(&["snapshot", "--repo", &r, "--keep", "4", "-q"])
        .success();
    assert_ne!(std::fs::metadata(&config).unwrap().ino(), before);
    assert!(std::fs::read_to_string(&config).unwrap().contains('4'));
}

/// A first run refused before it saved its databases (a redact pattern matching nothing) leaves
/// a repository with no database list; the fix it prints (`sqlgit init --repo DIR --redact ''`)
/// runs as printed, and the next run snapshots. `init` with nothing to set still says what to do.
#[test]
fn the_fix_a_refused_first_run_prints_runs_as_printed() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let args = ["snapshot", &d, "--repo", &r, "--redact", "nosuch.col"];
    let err = sg(&env, T0, &args).code_is(1).stderr_str();
    assert!(!has_snapshot(&env, &repo));
    let printed = err
        .split('`')
        .rfind(|p| p.starts_with("sqlgit init ") && p.ends_with("--redact ''"))
        .unwrap_or_else(|| panic!("no fix printed: {err}"))
        .to_string();
    let mut cmd = env.command("sh");
    cmd.arg("-c")
        .arg(format!(
            "exec \"$0\" {}",
            printed.strip_prefix("sqlgit ").unwrap()
        ))
        .arg(env!("CARGO_BIN_EXE_sqlgit"))
        .env("SQLGIT_NOW", (T0 + 10).to_string());
    let out = env.run(cmd, b"").success().stdout_str();
    assert!(out.contains("no database is set yet"), "{out}");
    sg(&env, T0 + 20, &["snapshot", &d, "--repo", &r]).success();
    assert!(has_snapshot(&env, &repo));
    let empty = env.path("empty.sqlgit");
    let err = sg(&env, T0 + 30, &["init", "--repo", &s(&empty)])
        .code_is(2)
        .stderr_str();
    assert!(err.contains("no databases yet"), "{err}");
    assert!(!empty.exists());
}

/// Unsetting the history remote while pruning is on says that pruning now deletes for good;
/// unsetting it with no pruning, or changing another setting, says nothing of it.
#[test]
fn unsetting_the_history_remote_while_pruning_says_so() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    git(
        &env,
        env.root(),
        &["init", "-q", "--bare", "-b", "main", "h.git"],
    );
    let url = format!("file://{}", s(&env.path("h.git")));
    let (d, r) = (s(&db), s(&env.path("app.sqlgit")));
    let args = [
        "snapshot",
        &d,
        "--repo",
        &r,
        "--keep",
        "1",
        "--history-remote",
        &url,
    ];
    sg(&env, T0, &args).success();
    let out = sg(&env, T0 + 10, &["init", "--repo", &r, "--keep", "2"]).success();
    assert!(
        !out.stdout_str().contains("for good"),
        "{}",
        out.stdout_str()
    );
    let out = sg(
        &env,
        T0 + 20,
        &["init", "--repo", &r, "--history-remote", ""],
    )
    .success();
    let said = out.stdout_str();
    assert!(said.contains("no history remote is set any more"), "{said}");
    assert!(said.contains("keep 2"), "{said}");
    let args = ["init", "--repo", &r, "--history-remote", &url, "--keep", ""];
    sg(&env, T0 + 30, &args).success();
    let out = sg(
        &env,
        T0 + 40,
        &["init", "--repo", &r, "--history-remote", ""],
    )
    .success();
    assert!(
        !out.stdout_str().contains("for good"),
        "{}",
        out.stdout_str()
    );
}
