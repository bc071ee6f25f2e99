//! Getting data back: `verify` noticing a damaged object, gzip dumps with `cat` and
//! `restore --from-file` (pipes too), and exact restores of analyzed databases.

use super::*;
use crate::env::FileState;

// ------------------------------------------------------------------------------------------------
// 7. verify

#[test]
fn verify_passes_then_fails_after_one_blob_is_damaged() {
    let env = TestEnv::new();
    let a = db_from_fixture(&env, "A.db", "rowids");
    let b = db_from_fixture(&env, "B.db", "identifiers");
    let repo = env.path("R");
    let r = s(&repo);
    sg(&env, T0, &["snapshot", &s(&a), &s(&b), "--repo", &r]).success();
    sql(&env, &a, "INSERT INTO plain VALUES (99, 99);");
    sg(&env, T0 + 60, &["snapshot", "--repo", &r]).success();

    let run = sg(&env, T0 + 60, &["verify", "--repo", &r])
        .code_is(0)
        .assert_quiet();
    assert!(
        run.stdout_str().contains("verified"),
        "{}",
        run.stdout_str()
    );
    sg(&env, T0 + 60, &["verify", "--repo", &r, "HEAD~1"]).code_is(0);
    sg(&env, T0 + 60, &["verify", "--repo", &r, "--db", "B.db"]).code_is(0);

    // Pick a row chunk of B (its blob is in the latest snapshot only once).
    let listing = git(&env, &repo, &["ls-tree", "-r", "main"]);
    let (oid, path) = listing
        .lines()
        .filter_map(|l| {
            let (meta, path) = l.split_once('\t')?;
            let f: Vec<&str> = meta.split_whitespace().collect();
            (f[1] == "blob" && path.starts_with("B.db/") && path.contains("/1-rows/"))
                .then(|| (f[2].to_string(), path.to_string()))
        })
        .max_by_key(|(oid, _)| {
            git(&env, &repo, &["cat-file", "-s", oid])
                .parse::<u64>()
                .unwrap()
        })
        .expect("a row chunk of B.db");
    assert_eq!(
        listing.matches(oid.as_str()).count(),
        1,
        "the chosen blob must appear once in the tree"
    );

    let damaged = env.path("R-damaged");
    copy_dir(&repo, &damaged);
    damage_object(&env, &damaged, &oid);
    // git agrees the copy is damaged (so the test damaged what it meant to).
    git_run(&env, &damaged, &["cat-file", "-p", &oid]).failure();

    let line = one_error_line(sg(&env, T0 + 60, &["verify", "--repo", &s(&damaged)]), 1);
    assert!(
        line.contains(&path) || line.contains(&oid) || line.contains(&oid[..12]),
        "the error names the damaged file ({path}) or object ({oid}): {line}"
    );
    let line = one_error_line(
        sg(
            &env,
            T0 + 60,
            &["verify", "--repo", &s(&damaged), "--db", "B.db"],
        ),
        1,
    );
    assert!(line.contains("B.db"), "{line}");
    // The original is untouched and still verifies.
    sg(&env, T0 + 60, &["verify", "--repo", &r]).code_is(0);
}

// ------------------------------------------------------------------------------------------------
// 8. gzip

#[test]
fn gzip_dump_cat_and_restore_from_file() {
    let env = TestEnv::new();
    let db = db_from_fixture(&env, "app.db", "rowids");
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let is_gzip = |p: &Path| std::fs::read(p).unwrap().starts_with(&[0x1f, 0x8b]);
    let gunzip = |p: &Path| {
        let mut cmd = env.command("gunzip");
        cmd.arg("-c").arg(p);
        run_limited(&env, cmd, b"")
            .success()
            .assert_quiet()
            .output
            .stdout
    };
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    // dump -o F.sql.gz
    let gz = env.path("dump.sql.gz");
    assert_silent(sg(&env, T0, &["dump", &d, "-o", &s(&gz)]));
    assert!(is_gzip(&gz), "dump -o *.gz writes gzip");
    assert_eq!(mode(&gz), 0o600);
    let plain = env.path("dump.sql");
    assert_silent(sg(&env, T0, &["dump", &d, "-o", &s(&plain)]));
    assert!(!is_gzip(&plain), "dump -o *.sql writes plain SQL");
    let sql_text = gunzip(&gz);
    assert!(
        sql_text == std::fs::read(&plain).unwrap(),
        "the gzip dump decompresses to the plain dump"
    );
    assert_restores(&env, &sql_text, &db, "from-dump-gz.db");
    assert_eq!(
        list_dir(env.root())
            .iter()
            .filter(|n| n.contains(".tmp"))
            .count(),
        0
    );

    // cat -o F.sql.gz
    sg(&env, T0, &["snapshot", &d, "--repo", &r]).success();
    let cat_gz = env.path("cat.sql.gz");
    assert_silent(sg(&env, T0, &["cat", "--repo", &r, "-o", &s(&cat_gz)]));
    assert!(is_gzip(&cat_gz), "cat -o *.gz writes gzip");
    assert_eq!(mode(&cat_gz), 0o600);
    assert_restores(&env, &gunzip(&cat_gz), &db, "from-cat-gz.db");

    // restore --from-file, gzip and plain.
    for (file, to) in [(&gz, "n1.db"), (&cat_gz, "n2.db"), (&plain, "n3.db")] {
        let to = env.path(to);
        sg(
            &env,
            T0,
            &["restore", "--from-file", &s(file), "--to", &s(&to)],
        )
        .success()
        .assert_quiet();
        compare_databases(&db, &to);
    }
    // A truncated gzip file is refused, and nothing is left at --to.
    let bytes = std::fs::read(&gz).unwrap();
    let cut = env.write("cut.sql.gz", &bytes[..bytes.len() / 2]);
    let to = env.path("cut.db");
    one_error_line(
        sg(
            &env,
            T0,
            &["restore", "--from-file", &s(&cut), "--to", &s(&to)],
        ),
        1,
    );
    assert!(!to.exists(), "a failed restore leaves no database behind");
}

// ------------------------------------------------------------------------------------------------
// restore: exactness beyond the basics

/// `ANALYZE` results (sqlite_stat1) are part of the dump; restoring them must not add tables the
/// source does not have (a STAT4-enabled SQLite would create sqlite_stat4 on `ANALYZE`).
#[test]
fn restore_of_an_analyzed_database_is_exact() {
    let env = TestEnv::new();
    let db = db_from_fixture(&env, "app.db", "demo");
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    sg(&env, T0, &["snapshot", &d, "--repo", &r]).success();
    let gz = env.path("app.sql.gz");
    sg(&env, T0, &["dump", &d, "-o", &s(&gz)]).success();
    let from_repo = env.path("from-repo.db");
    sg(&env, T0, &["restore", "--repo", &r, "--to", &s(&from_repo)]).success();
    let from_file = env.path("from-file.db");
    sg(
        &env,
        T0,
        &["restore", "--from-file", &s(&gz), "--to", &s(&from_file)],
    )
    .success();
    for restored in [&from_repo, &from_file] {
        compare_databases(&db, restored);
    }
}

/// `--from-file` on a pipe (`/dev/stdin`, process substitution): the file can be read only once.
#[test]
fn restore_from_file_reads_a_pipe() {
    let env = TestEnv::new();
    let db = db_from_fixture(&env, "app.db", "rowids");
    let plain = env.path("app.sql");
    let gz = env.path("app.sql.gz");
    sg(&env, T0, &["dump", &s(&db), "-o", &s(&plain)]).success();
    sg(&env, T0, &["dump", &s(&db), "-o", &s(&gz)]).success();
    for (file, to) in [(&plain, "plain.db"), (&gz, "gz.db")] {
        let to = env.path(to);
        let cmd = sqlgit_cmd(
            &env,
            T0,
            &["restore", "--from-file", "/dev/stdin", "--to", &s(&to)],
            &[],
        );
        run_limited(&env, cmd, &std::fs::read(file).unwrap())
            .success()
            .assert_quiet();
        compare_databases(&db, &to);
    }
}

/// Input that is not a complete dump — an empty file (a dump that failed into `> backup.sql`),
/// a sqlite3 `.dump` that ends with `ROLLBACK; -- due to errors` — is refused by `--to` and
/// `--into`, leaving no file and the live database untouched; dumps ending with COMMIT (sqlite3's,
/// also of an empty database) still restore.
#[test]
fn restore_refuses_sql_without_its_commit() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v);\n\
                                             INSERT INTO t VALUES (1, 'precious');",
    );
    let dump = env.sqlite3(&db, ".dump").success().stdout_str();
    assert!(dump.trim_end().ends_with("COMMIT;"), "{dump}");
    let rolled_back =
        dump.trim_end().trim_end_matches("COMMIT;").to_string() + "ROLLBACK; -- due to errors\n";
    let empty = env.write("empty.sql", b"");
    let failed = env.write("failed.sql", rolled_back.as_bytes());
    let before = FileState::of(&db);
    for (file, says) in [(&empty, "no COMMIT"), (&failed, "ends with ROLLBACK")] {
        let to = env.path("new.db");
        let run = sg(
            &env,
            T0,
            &["restore", "--from-file", &s(file), "--to", &s(&to)],
        );
        let line = one_error_line(run, 1);
        assert!(
            line.contains(says) && line.contains("not a complete dump"),
            "{line}"
        );
        assert!(!to.exists(), "{} left", to.display());
        let run = sg(
            &env,
            T0,
            &["restore", "--from-file", &s(file), "--into", &s(&db)],
        );
        let line = one_error_line(run, 1);
        assert!(line.contains(says), "{line}");
        before.assert_unchanged(&db, "the live database");
    }
    let good = env.write("good.sql", dump.as_bytes());
    let to = env.path("good.db");
    sg(
        &env,
        T0,
        &["restore", "--from-file", &s(&good), "--to", &s(&to)],
    )
    .success();
    compare_databases(&db, &to);
    let empty_db = env.db_from_script("empty.db", b"PRAGMA user_version=0;");
    let dump = env.sqlite3(&empty_db, ".dump").success().stdout().to_vec();
    let good = env.write("empty-db.sql", &dump);
    let to = env.path("empty-again.db");
    sg(
        &env,
        T0,
        &["restore", "--from-file", &s(&good), "--to", &s(&to)],
    )
    .success();
}

/// `--to` a directory is refused before anything is built, and leaves nothing behind.
#[test]
fn restore_to_a_directory_is_refused_and_leaves_nothing() {
    let env = TestEnv::new();
    let db = db_from_fixture(&env, "app.db", "rowids");
    let repo = env.path("app.sqlgit");
    sg(&env, T0, &["snapshot", &s(&db), "--repo", &s(&repo)]).success();
    let dir = env.path("out");
    std::fs::create_dir(&dir).unwrap();
    let before = list_dir(env.root());
    for force in [false, true] {
        let mut args = vec!["restore", "--repo", repo.to_str().unwrap(), "--to"];
        args.push(dir.to_str().unwrap());
        if force {
            args.push("--force");
        }
        let line = one_error_line(sg(&env, T0, &args), 1);
        assert!(line.contains("is a directory"), "{line}");
        assert_eq!(list_dir(env.root()), before, "restore left files behind");
    }
}

// ------------------------------------------------------------------------------------------------
// Temporary files of killed runs

/// A killed `restore --to`, `restore --into` or `dump -o` leaves a hidden temporary file as large
/// as the database: the next run of the command on the same target removes those whose process
/// is gone (and says so), never one of a live process.
#[test]
fn the_next_run_removes_the_temporary_files_of_killed_runs() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    let repo = env.path("r");
    let (r, d) = (s(&repo), s(&db));
    sg(&env, T0, &["snapshot", &d, "--repo", &r]).success();
    let live = std::process::id();
    let dead = 999_999_999;
    let dir = env.path("out");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&db, dir.join("live.db")).unwrap();
    let cases: [(&str, Vec<&str>, &str); 3] = [
        (
            "new.db",
            vec!["restore", "--repo", &r, "--to"],
            "sqlgit-restore-",
        ),
        (
            "live.db",
            vec!["restore", "--repo", &r, "--into"],
            "sqlgit-into-",
        ),
        ("d.sql", vec!["dump", &d, "-o"], "tmp"),
    ];
    for (target, args, tag) in cases {
        let stale = [
            format!(".{target}.{tag}{dead}"),
            format!(".{target}.{tag}{dead}-journal"),
        ];
        let kept = [
            format!(".{target}.{tag}{live}"),
            format!(".other.db.{tag}{dead}"),
        ];
        for name in stale.iter().chain(&kept) {
            std::fs::write(dir.join(name), "left over").unwrap();
        }
        let path = s(&dir.join(target));
        let mut args = args.clone();
        args.push(&path);
        let run = sg(&env, T0, &args).success();
        for name in &stale {
            assert!(!dir.join(name).exists(), "{target}: {name} must be removed");
            assert!(
                run.stdout_str().contains(name.as_str()),
                "{target}: say what was removed:\n{}",
                run.stdout_str()
            );
        }
        for name in &kept {
            assert!(dir.join(name).exists(), "{target}: {name} must be kept");
        }
    }
}

/// `restore --to LINK --force` where LINK is a symlink (a deploy's `release/app.db ->
/// shared/app.db`) restores the database the link names, as SQLite and `--into` follow it; the
/// link stays. A link to a file not there yet creates that file.
#[test]
fn restore_to_a_symlink_replaces_the_database_it_names() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("shared")).unwrap();
    std::fs::create_dir_all(env.path("release")).unwrap();
    let db = env.path("shared/app.db");
    env.sqlite3(&db, "CREATE TABLE t(v); INSERT INTO t VALUES ('good');")
        .success();
    let repo = env.path("R");
    sg(&env, T0, &["snapshot", &s(&db), "--repo", &s(&repo)]).success();
    sql(&env, &db, "UPDATE t SET v = 'bad';");
    let link = env.path("release/app.db");
    std::os::unix::fs::symlink("../shared/app.db", &link).unwrap();
    let value = |p: &Path| -> String {
        rusqlite::Connection::open(p)
            .unwrap()
            .query_row("SELECT v FROM t", [], |r| r.get(0))
            .unwrap()
    };
    sg(
        &env,
        T0,
        &["restore", "--repo", &s(&repo), "--to", &s(&link)],
    )
    .code_is(1);
    assert_eq!(value(&db), "bad", "without --force nothing is replaced");
    sg(
        &env,
        T0,
        &["restore", "--repo", &s(&repo), "--to", &s(&link), "--force"],
    )
    .success();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(value(&db), "good");

    let dangling = env.path("release/new.db");
    std::os::unix::fs::symlink("../shared/new.db", &dangling).unwrap();
    sg(
        &env,
        T0,
        &["restore", "--repo", &s(&repo), "--to", &s(&dangling)],
    )
    .success();
    assert!(
        std::fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(value(&env.path("shared/new.db")), "good");
}

/// A repository another user owns (root restoring an application user's backup, a copy put back
/// with another uid): git refuses it unless trusted. The error says whose it is and prints the
/// command that trusts it, and that command works.
#[test]
fn a_repository_owned_by_another_user_names_the_command_that_trusts_it() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(a); INSERT INTO t VALUES (1);");
    let repo = env.path("app.sqlgit");
    sg(&env, T0, &["snapshot", &s(&db), "--repo", &s(&repo)]).success();
    let chown = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&repo)
        .status();
    if !chown.is_ok_and(|s| s.success()) || unsafe { libc::geteuid() } == 65534 {
        eprintln!("SKIP: cannot give the repository to another user");
        return;
    }
    let new = s(&env.path("new.db"));
    let err = sg(&env, T0, &["restore", "--repo", &s(&repo), "--to", &new])
        .code_is(1)
        .stderr_str();
    assert!(err.contains("owned by another user (uid 65534)"), "{err}");
    let command = err
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command in: {err}"));
    assert!(
        command.starts_with("git config --global --add safe.directory "),
        "{err}"
    );
    // The printed command, as the user would run it (their global config: ~/.gitconfig).
    let mut git = env.command("sh");
    git.arg("-c")
        .arg(command)
        .env("GIT_CONFIG_GLOBAL", env.home().join(".gitconfig"));
    env.run(git, b"").success();
    sg_vars(
        &env,
        T0,
        &["restore", "--repo", &s(&repo), "--to", &new],
        &[("GIT_CONFIG_GLOBAL", &s(&env.home().join(".gitconfig")))],
    )
    .success();
}
