//! Bad databases: missing, a directory, a text file, random bytes (encrypted), truncated, with a
//! corrupt page, locked past `--busy-timeout`: each refused naming the file, nothing changed.

use super::*;

// ------------------------------------------------------------------------------------------------
// Bad databases
// ------------------------------------------------------------------------------------------------

/// `sqlgit snapshot NAME --repo app.sqlgit [EXTRA]` on a bad database made by `make` (which returns
/// what it is): refused, naming the file; repository, bad file and directory unchanged.
fn bad_database(
    order: u32,
    case: &'static str,
    name: &str,
    extra: &[&str],
    make: impl FnOnce(&TestEnv, &Path),
    must_say: &[&str],
) {
    let fx = Fx::new();
    let env = &fx.env;
    let path = env.path(name);
    make(env, &path);
    let file_before = path.is_file().then(|| FileState::of(&path));
    let listing = list_dir(env.root());
    let before = fx.state();

    let mut args = vec!["snapshot", name, "--repo", "app.sqlgit"];
    args.extend_from_slice(extra);
    let run = fx.run(&args);
    let mut rows = Rows::new(env, order, case);
    rows.add(case, &args, &run);

    let mut p = Problems::default();
    let mut names = vec![name];
    names.extend_from_slice(must_say);
    if let Err(e) = refusal(&run, &names) {
        p.push(e);
    }
    for e in state_problems(&before, &fx.state(), true, case) {
        p.push(e);
    }
    match &file_before {
        Some(state) => state.assert_unchanged(&path, case),
        None => p.check(path.is_dir() || !path.exists(), || {
            format!("{case}: {} was created", path.display())
        }),
    }
    p.check(list_dir(env.root()) == listing, || {
        format!(
            "{case}: files appeared or vanished beside the database: {:?} -> {:?}",
            listing,
            list_dir(env.root())
        )
    });
    p.finish();
}

/// A valid database of about 100 pages (rollback journal), for truncating and corrupting.
fn big_db(env: &TestEnv, path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA page_size=4096; PRAGMA journal_mode=DELETE;
         CREATE TABLE blobs(id INTEGER PRIMARY KEY, body TEXT NOT NULL);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000)
         INSERT INTO blobs SELECT i, printf('%0120d', i) FROM c;",
    )
    .unwrap();
    drop(conn);
    let _ = env;
    let len = std::fs::metadata(path).unwrap().len();
    assert!(len > 80 * 4096, "the big database is only {len} bytes");
}

#[test]
fn database_missing() {
    bad_database(1, "database missing", "missing.db", &[], |_, _| {}, &[]);
}

#[test]
fn database_is_a_directory() {
    bad_database(
        2,
        "database is a directory",
        "dir.db",
        &[],
        |_, p| std::fs::create_dir(p).unwrap(),
        &[],
    );
}

#[test]
fn database_is_a_text_file() {
    bad_database(
        3,
        "database is a text file",
        "notes.txt",
        &[],
        |_, p| std::fs::write(p, "shopping list\n- milk\n- bread\n").unwrap(),
        &[],
    );
}

#[test]
fn database_is_random_bytes() {
    bad_database(
        4,
        "database is random bytes (encrypted)",
        "secret.db",
        &[],
        |_, p| {
            let mut rng = StdRng::seed_from_u64(4);
            let bytes: Vec<u8> = (0..8 * 4096).map(|_| rng.random()).collect();
            std::fs::write(p, bytes).unwrap();
        },
        &[],
    );
}

#[test]
fn database_truncated() {
    bad_database(
        5,
        "database truncated",
        "truncated.db",
        &[],
        |env, p| {
            big_db(env, p);
            let len = std::fs::metadata(p).unwrap().len();
            let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(len / 2 / 4096 * 4096).unwrap();
        },
        &[],
    );
}

#[test]
fn database_with_a_corrupt_page() {
    bad_database(
        6,
        "database with a corrupt page",
        "corrupt.db",
        &[],
        |env, p| {
            big_db(env, p);
            // Page 3: a b-tree page of the table; an invalid page type and garbage cell pointers.
            let mut bytes = std::fs::read(p).unwrap();
            for b in &mut bytes[2 * 4096..2 * 4096 + 64] {
                *b = 0xff;
            }
            std::fs::write(p, bytes).unwrap();
        },
        &[],
    );
}

#[test]
fn database_locked_past_busy_timeout() {
    let fx = Fx::new();
    let env = &fx.env;
    let path = env.path("locked.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=DELETE;
         CREATE TABLE t(x);
         INSERT INTO t VALUES (1);",
    )
    .unwrap();
    // Before the lock: reading the file afterwards would close a descriptor of it in this
    // process, and closing any descriptor drops the process's POSIX locks on the file.
    let file_before = FileState::of(&path);
    conn.execute_batch("BEGIN EXCLUSIVE; INSERT INTO t VALUES (2);")
        .unwrap();
    let listing = list_dir(env.root());
    let before = fx.state();

    let args = [
        "snapshot",
        "locked.db",
        "--repo",
        "app.sqlgit",
        "--busy-timeout",
        "1s",
    ];
    let started = Instant::now();
    let run = fx.run(&args);
    let took = started.elapsed();
    let mut rows = Rows::new(env, 7, "database locked");
    rows.add(
        "database locked (`BEGIN EXCLUSIVE` held, rollback journal)",
        &args,
        &run,
    );
    let mut p = Problems::default();
    if let Err(e) = refusal(&run, &["locked.db", "locked"]) {
        p.push(e);
    }
    p.check(
        // Waited once, not once to open and again to read.
        took >= Duration::from_millis(900) && took < Duration::from_millis(1900),
        || format!("--busy-timeout 1s, but the run took {took:?}"),
    );
    for e in state_problems(&before, &fx.state(), true, "locked database") {
        p.push(e);
    }
    p.check(list_dir(env.root()) == listing, || {
        format!(
            "files appeared beside the locked database: {:?}",
            list_dir(env.root())
        )
    });
    file_before.assert_unchanged(&path, "locked database");
    drop(conn); // rolls back
    p.finish();
}
