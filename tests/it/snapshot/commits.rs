//! An unchanged database makes no commit and `log` reports what the snapshots hold; chunk
//! stability: one edited row touches one (at most two) chunk files, appends only the last ones.

use super::*;

// ------------------------------------------------------------------------------------------------
// 2. An unchanged database makes no commit
// ------------------------------------------------------------------------------------------------

#[test]
fn unchanged_database_makes_no_commit() {
    let env = TestEnv::new();
    let db = env.fixture_db("demo");
    let repo = env.path("demo.sqlgit");

    let first = snapshot_commit(&env, &db, &repo, Some(T));
    // The repository is bare, sqlgit's, on main, and private.
    assert_eq!(
        git_str(&env, &repo, &["rev-parse", "--is-bare-repository"]),
        "true"
    );
    assert_eq!(git_str(&env, &repo, &["config", "sqlgit.format"]), "2");
    assert_eq!(
        git_str(&env, &repo, &["symbolic-ref", "HEAD"]),
        "refs/heads/main"
    );
    assert_private(&repo);
    let objects_before = dir_state(&repo.join("objects"));
    let refs_before = git_str(&env, &repo, &["for-each-ref"]);

    // Same database: no commit, says so, writes nothing.
    let run = snapshot_run(&env, &db, &repo, Some(T + 300), &[])
        .success()
        .assert_quiet();
    let out = run.stdout_str();
    if !out.contains("unchanged") || !out.contains(&first) {
        run.fail("expected `unchanged since <id>` on stdout");
    }
    assert_eq!(log_json(&env, &repo).len(), 1);
    assert_eq!(git_str(&env, &repo, &["for-each-ref"]), refs_before);
    assert_dir_unchanged(
        &objects_before,
        &repo.join("objects"),
        "an unchanged snapshot",
    );

    // VACUUM rewrites the file but not the content: still unchanged.
    sql(
        &env,
        &db,
        "CREATE TABLE junk(x); INSERT INTO junk VALUES (randomblob(100000)); DROP TABLE junk;",
    );
    let bytes_before = std::fs::read(&db).unwrap();
    sql(&env, &db, "VACUUM;");
    assert_ne!(
        std::fs::read(&db).unwrap(),
        bytes_before,
        "VACUUM should have rewritten the file"
    );
    assert_eq!(
        snapshot(&env, &db, &repo, Some(T + 400)),
        None,
        "VACUUM made a new snapshot"
    );

    // A new page size is part of the snapshot (a restore makes the file with it).
    sql(&env, &db, "PRAGMA page_size=1024; VACUUM;");
    let resized = snapshot_commit(&env, &db, &repo, Some(T + 500));
    assert!(cat(&env, &repo, None, None).starts_with(b"-- sqlgit snapshot format 2\n"));
    let header = git(
        &env,
        &repo,
        &["show", &format!("{resized}:demo.db/0-header.sql")],
    );
    assert!(
        header.stdout_str().contains("PRAGMA page_size=1024;\n"),
        "{}",
        header.stdout_str()
    );
    assert_eq!(
        git_str(&env, &repo, &["rev-parse", &format!("{resized}^")]),
        first
    );

    // A change makes a commit whose parent is the one before, at the new time.
    sql(
        &env,
        &db,
        "UPDATE authors SET name = name || '!' WHERE rowid = (SELECT min(rowid) FROM authors);",
    );
    let second = snapshot_commit(&env, &db, &repo, Some(T + 600));
    assert_eq!(
        git_str(&env, &repo, &["rev-parse", &format!("{second}^")]),
        resized
    );
    assert_eq!(git_str(&env, &repo, &["rev-list", "--count", "HEAD"]), "3");
    let log = log_json(&env, &repo);
    let ids: Vec<&str> = log.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids,
        [second.as_str(), resized.as_str(), first.as_str()],
        "log is newest first"
    );
    assert_eq!(log[0].unix, (T + 600) as i64);
    assert_eq!(log[2].unix, T as i64);
    let d = dump(&env, &db);
    assert_eq!(log[0].bytes, Some(d.len() as u64));
    let conn = Connection::open(&db).unwrap();
    // `rows` counts every row the dump inserts: the tables' and sqlite_sequence / sqlite_stat1's.
    let rows: u64 = [
        "authors",
        "books",
        "customers",
        "orders",
        "order_items",
        "sqlite_sequence",
        "sqlite_stat1",
    ]
    .iter()
    .map(|t| {
        conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap() as u64
    })
    .sum();
    let tables: u64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type='table' AND name NOT LIKE 'sqlite%'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap() as u64;
    drop(conn);
    assert_eq!(log[0].tables, Some(tables), "{:?}", log[0]);
    assert_eq!(log[0].rows, Some(rows), "{:?}", log[0]);

    // Text log: one line per snapshot, newest first, starting with the short id; -n limits it.
    let text = env
        .sqlgit(&[OsStr::new("log"), OsStr::new("--repo"), repo.as_os_str()])
        .success()
        .assert_quiet()
        .stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with(&second[..12]) && lines[2].starts_with(&first[..12]),
        "{text}"
    );
    let one = env
        .sqlgit(&[
            OsStr::new("log"),
            OsStr::new("-n"),
            OsStr::new("1"),
            OsStr::new("--repo"),
            repo.as_os_str(),
        ])
        .success()
        .stdout_str();
    assert_eq!(one.lines().count(), 1, "{one}");
    // `sqlgit log | head`: a reader that went away ends the listing quietly (no panic).
    for json in [false, true] {
        let mut cmd = env.sqlgit_cmd(&[OsStr::new("log"), OsStr::new("--repo"), repo.as_os_str()]);
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run sqlgit log");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait for sqlgit log");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.is_empty() && out.status.code().is_some(),
            "log into a closed pipe: {:?}\n{stderr}",
            out.status
        );
    }

    // And unchanged again after that.
    assert_eq!(snapshot(&env, &db, &repo, Some(T + 900)), None);
    assert_eq!(git_str(&env, &repo, &["rev-list", "--count", "HEAD"]), "3");
    assert_fsck_clean(&env, &repo);
}

// ------------------------------------------------------------------------------------------------
// 3. Chunk stability
// ------------------------------------------------------------------------------------------------

const ROWS_PREFIX: &str = "t.db/1-tables/t/1-rows/";

/// Chunks of table `t` in `rev`: (first rowid, is the first chunk of a group folder, path).
fn chunks(env: &TestEnv, repo: &Path, rev: &str) -> Vec<(i64, bool, String)> {
    let files = tree_files(env, repo, rev);
    let mut out = Vec::new();
    for f in files {
        let Some(rel) = f.strip_prefix(ROWS_PREFIX) else {
            continue;
        };
        // Format 2 nests group folders: the innermost one holds the chunk.
        let (group, name) = match rel.rsplit_once('/') {
            Some((g, n)) => (Some(g.rsplit('/').next().unwrap_or(g)), n),
            None => (None, rel),
        };
        let starts_group = group.is_some_and(|g| format!("{g}.sql") == name);
        out.push((chunk_first_rowid(name), starts_group, f.clone()));
    }
    out
}

/// A rowid near `near` that is neither the first nor the last row of its chunk, in a chunk that
/// neither starts a group folder nor is followed by one that does: updating, deleting it or
/// inserting a row just after it must touch only its own chunk (and at most one neighbour, when
/// the edited row is a chunk boundary). Rowids are multiples of 10.
fn quiet_row(chunks: &[(i64, bool, String)], near: i64) -> i64 {
    let home = chunks.iter().rposition(|c| c.0 <= near).unwrap_or(0);
    for offset in 0..chunks.len() {
        for i in [home + offset, home.wrapping_sub(offset)] {
            if i == 0 || i + 1 >= chunks.len() {
                continue;
            }
            let (first, group_start, _) = &chunks[i];
            let (next_first, next_group_start, _) = &chunks[i + 1];
            if *group_start || *next_group_start {
                continue;
            }
            let candidate = (near.clamp(first + 10, next_first - 20) / 10) * 10;
            if candidate > *first && candidate < next_first - 10 {
                return candidate;
            }
        }
    }
    panic!("no chunk suitable for a stable edit: {chunks:?}");
}

#[test]
fn chunk_stability() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "t.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER);
          WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20000)
          INSERT INTO t SELECT i * 10, printf('row %06d %08x', i, (i * 2654435761) % 4294967296), i * 7 FROM c;",
    );
    let repo = env.path("repo");
    let mut now = T;
    let mut snap = |what: &str| -> String {
        now += 100;
        match snapshot(&env, &db, &repo, Some(now)) {
            Some(id) => id,
            None => panic!("{what}: the snapshot made no commit"),
        }
    };
    snap("initial");
    let initial = chunks(&env, &repo, "HEAD");
    assert!(
        initial.len() > 100,
        "20,000 rows should make many ~4 KiB chunks, got {}",
        initial.len()
    );
    assert!(
        initial
            .iter()
            .any(|c| c.2[ROWS_PREFIX.len()..].contains('/')),
        "a table of {} chunks should fan out into group folders",
        initial.len()
    );
    for (_, _, path) in &initial {
        assert!(layout_ok(&path["t.db/".len()..]), "{path}");
    }

    // Update one row, keeping its length: exactly one chunk file changes.
    let row = quiet_row(&initial, 100_000);
    sql(
        &env,
        &db,
        &format!("UPDATE t SET name = upper(name) WHERE id = {row};"),
    );
    snap("update");
    let changed = changed_paths(&env, &repo, "HEAD~1", "HEAD");
    assert_eq!(
        changed.len(),
        1,
        "updating row {row} changed {} paths: {changed:?}",
        changed.len()
    );
    assert!(changed[0].starts_with(ROWS_PREFIX), "{changed:?}");
    let new_text = git(&env, &repo, &["show", &format!("HEAD:{}", changed[0])]).stdout_str();
    let old_text = git(&env, &repo, &["show", &format!("HEAD~1:{}", changed[0])]).stdout_str();
    let marker = format!("'ROW {:06} ", row / 10);
    assert!(
        new_text.contains(&marker) && !old_text.contains(&marker),
        "{} should hold the updated row",
        changed[0]
    );

    // Insert one row between two existing ones: one, at most two chunk files.
    let before = chunks(&env, &repo, "HEAD");
    let at = quiet_row(&before, 150_000) + 5;
    sql(
        &env,
        &db,
        &format!("INSERT INTO t VALUES({at}, 'inserted row 0000000', 1);"),
    );
    snap("insert");
    let changed = changed_paths(&env, &repo, "HEAD~1", "HEAD");
    assert!(
        (1..=2).contains(&changed.len()) && changed.iter().all(|p| p.starts_with(ROWS_PREFIX)),
        "inserting row {at} changed {} paths: {changed:?}",
        changed.len()
    );

    // Delete one row: one, at most two chunk files.
    let before = chunks(&env, &repo, "HEAD");
    let gone = quiet_row(&before, 60_000);
    sql(&env, &db, &format!("DELETE FROM t WHERE id = {gone};"));
    snap("delete");
    let changed = changed_paths(&env, &repo, "HEAD~1", "HEAD");
    assert!(
        (1..=2).contains(&changed.len()) && changed.iter().all(|p| p.starts_with(ROWS_PREFIX)),
        "deleting row {gone} changed {} paths: {changed:?}",
        changed.len()
    );

    // Append 100 rows: only files at the end (at or after the old last chunk) change.
    let before = chunks(&env, &repo, "HEAD");
    let old_last = before.last().unwrap().2.clone();
    sql(
        &env,
        &db,
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100)
         INSERT INTO t SELECT 200000 + i * 10, printf('new %06d %08x', i, i * 40503), i FROM c;",
    );
    snap("append");
    let changed = changed_paths(&env, &repo, "HEAD~1", "HEAD");
    assert!(!changed.is_empty());
    for p in &changed {
        assert!(
            p.starts_with(ROWS_PREFIX) && p.as_str() >= old_last.as_str(),
            "appending rows changed {p}, before the old last chunk {old_last} (all: {changed:?})"
        );
    }
    assert!(
        changed.len() <= 6,
        "100 rows of ~50 bytes changed {} files: {changed:?}",
        changed.len()
    );

    // The history still restores exactly, and log counts the rows.
    assert_same_sql(
        &dump(&env, &db),
        &cat(&env, &repo, None, None),
        "cat after the edits",
    );
    let log = log_json(&env, &repo);
    let rows: Vec<Option<u64>> = log.iter().map(|e| e.rows).collect();
    assert_eq!(
        rows,
        [
            Some(20100),
            Some(20000),
            Some(20001),
            Some(20000),
            Some(20000)
        ]
    );
    assert_fsck_clean(&env, &repo);
}
