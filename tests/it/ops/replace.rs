//! Restoring over an application's database file: the replaced file's owner, group and mode
//! stay (the application's user must still open it), file names at the file system's limit
//! restore (sqlgit's temporary and saved copies fit beside them), and `--into` a file SQLite
//! cannot read names the command that restores it.

use super::*;

fn app_db(env: &TestEnv, name: &str) -> PathBuf {
    let db = env.path(name);
    sql(
        env,
        &db,
        "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);",
    );
    db
}

/// `restore --to APP.db --force` keeps APP.db's mode (0664 here) and, run as root, its owner
/// and group: the application's user opens it afterwards.
#[test]
fn restore_to_force_keeps_the_replaced_files_owner_and_mode() {
    let env = TestEnv::new();
    let db = app_db(&env, "app.db");
    let (d, r) = (s(&db), s(&env.path("app.sqlgit")));
    sg(&env, T0, &["snapshot", &d, "--repo", &r]).success();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o664)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        std::os::unix::fs::chown(&db, Some(65534), Some(65534)).unwrap();
    }
    let before = std::fs::metadata(&db).unwrap();
    sg(
        &env,
        T0 + 10,
        &["restore", "--repo", &r, "--to", &d, "--force"],
    )
    .success();
    let after = std::fs::metadata(&db).unwrap();
    assert_eq!(after.permissions().mode() & 0o7777, 0o664);
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert_ne!(
        after.ino(),
        before.ino(),
        "a new file was renamed into place"
    );
    // A new file stays private.
    let new = env.path("new.db");
    sg(&env, T0 + 20, &["restore", "--repo", &r, "--to", &s(&new)]).success();
    let mode = std::fs::metadata(&new).unwrap().permissions().mode() & 0o077;
    assert_eq!(mode, 0, "a new database is not readable by others");
}

/// A database named with 243 bytes (valid: sqlite3 makes it) restores with `--to` and
/// `--into`: the temporary and saved copies' names are shortened to fit.
#[test]
fn a_database_name_at_the_limit_restores_to_and_into() {
    let env = TestEnv::new();
    let name = format!("{}.db", "a".repeat(240));
    let db = app_db(&env, &name);
    let (d, r) = (s(&db), s(&env.path("app.sqlgit")));
    sg(&env, T0, &["snapshot", &d, "--repo", &r]).success();
    sql(&env, &db, "INSERT INTO t VALUES (3);");
    let out = sg(&env, T0 + 10, &["restore", "--repo", &r, "--into", &d]).success();
    let rows = env.sqlite3(&db, "SELECT count(*) FROM t;").stdout_str();
    assert_eq!(rows.trim(), "2", "{}", out.stderr_str());
    let saved: Vec<String> = list_dir(env.root())
        .into_iter()
        .filter(|n| n.contains(".before-restore-"))
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    let copy = env
        .sqlite3(env.path(&saved[0]), "SELECT count(*) FROM t;")
        .stdout_str();
    assert_eq!(copy.trim(), "3", "the old content was saved");
    sql(&env, &db, "INSERT INTO t VALUES (4);");
    sg(
        &env,
        T0 + 20,
        &["restore", "--repo", &r, "--to", &d, "--force"],
    )
    .success();
    let rows = env.sqlite3(&db, "SELECT count(*) FROM t;").stdout_str();
    assert_eq!(rows.trim(), "2");
    assert!(
        list_dir(env.root()).iter().all(|n| !n.starts_with(".a")),
        "no temporary left"
    );
    // A name whose `-journal` could not exist (255 bytes with it): restored to, too.
    let longest = env.path(format!("{}.db", "b".repeat(249)));
    sg(
        &env,
        T0 + 30,
        &["restore", "--repo", &r, "--to", &s(&longest)],
    )
    .success();
    let rows = env
        .sqlite3(&longest, "SELECT count(*) FROM t;")
        .stdout_str();
    assert_eq!(rows.trim(), "2");
}

/// `--into` a file whose header is damaged (SQLite cannot read it) fails in one line naming
/// the command that restores it (`--to … --force`), which works as printed.
#[test]
fn into_a_damaged_database_names_the_command_that_restores_it() {
    let env = TestEnv::new();
    let db = app_db(&env, "app.db");
    let (d, r) = (s(&db), s(&env.path("app.sqlgit")));
    sg(&env, T0, &["snapshot", &d, "--repo", &r]).success();
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[..16].copy_from_slice(b"garbage garbage!");
    std::fs::write(&db, &bytes).unwrap();
    let run = sg(&env, T0 + 10, &["restore", "--repo", &r, "--into", &d]);
    let line = one_error_line(run, 1);
    let printed = line
        .split("run: ")
        .nth(1)
        .unwrap_or_else(|| panic!("{line}"));
    assert!(printed.ends_with("app.db --force"), "{line}");
    // It names the snapshot by its commit id: run after the next snapshot, it restores this one.
    let id = git(&env, &env.path("app.sqlgit"), &["rev-parse", "main"]);
    assert!(
        printed.starts_with(&format!("sqlgit restore {id} ")),
        "{line}"
    );
    let args: Vec<&str> = printed.split_whitespace().skip(1).collect();
    sg(&env, T0 + 20, &args).success();
    let rows = env.sqlite3(&db, "SELECT count(*) FROM t;").stdout_str();
    assert_eq!(rows.trim(), "2");
}
