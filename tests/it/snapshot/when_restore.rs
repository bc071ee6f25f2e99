//! WHEN resolution (revisions, RFC 3339 times, durations, and their errors), and `restore`
//! refusing to replace a file without `--force`, leaving no stale `-wal`/`-shm`.

use super::*;

// ------------------------------------------------------------------------------------------------
// 4. WHEN resolution
// ------------------------------------------------------------------------------------------------

#[test]
fn when_resolution() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "w.db",
        b"CREATE TABLE kv(k TEXT PRIMARY KEY, v INTEGER); INSERT INTO kv VALUES('state', 1);",
    );
    let repo = env.path("repo");
    let mut dumps = Vec::new();
    let mut copies = Vec::new();
    for (i, at) in [T, T + 100, T + 200].into_iter().enumerate() {
        if i > 0 {
            sql(
                &env,
                &db,
                &format!(
                    "UPDATE kv SET v = {}; INSERT INTO kv VALUES('added {i}', {i});",
                    i + 1
                ),
            );
        }
        snapshot_commit(&env, &db, &repo, Some(at));
        dumps.push(dump(&env, &db));
        let copy = env.path(format!("state{}.db", i + 1));
        std::fs::copy(&db, &copy).unwrap();
        copies.push(copy);
    }
    let log = log_json(&env, &repo);
    let ids: Vec<String> = log.iter().rev().map(|e| e.id.clone()).collect(); // oldest first
    assert_eq!(ids.len(), 3);
    let unix: Vec<i64> = log.iter().rev().map(|e| e.unix).collect();
    assert_eq!(unix, [T as i64, T as i64 + 100, T as i64 + 200]);

    // (WHEN, SQLGIT_NOW, TZ, expected snapshot 1..=3)
    let cases: Vec<(String, Option<u64>, &str, usize)> = vec![
        (ids[0].clone(), None, "UTC", 1),
        (ids[1][..10].to_string(), None, "UTC", 2),
        ("HEAD~2".into(), None, "UTC", 1),
        ("HEAD~1".into(), None, "UTC", 2),
        ("HEAD".into(), None, "UTC", 3),
        // RFC 3339: a time selects the latest snapshot at or before it.
        (rfc3339(T + 50), None, "UTC", 1),
        (rfc3339(T), None, "UTC", 1),
        (rfc3339(T + 99), None, "UTC", 1),
        (rfc3339(T + 100), None, "UTC", 2),
        (rfc3339(T + 199), None, "UTC", 2),
        (rfc3339(T + 100_000), None, "UTC", 3),
        (
            format!("{}+02:00", local_form(T + 150, 7200)),
            None,
            "UTC",
            2,
        ),
        (
            format!("{}+02:00", local_form(T + 50, 7200)),
            None,
            "UTC",
            1,
        ),
        (
            format!("{}-04:30", local_form(T + 250, -16200)),
            None,
            "UTC",
            3,
        ),
        // Local time (no zone), in the zone of TZ.
        (local_form(T + 150, 0).replace('T', " "), None, "UTC", 2),
        (
            local_form(T + 150, 5 * 3600).replace('T', " "),
            None,
            "<+05>-5",
            2,
        ),
        (
            local_form(T + 50, -3 * 3600).replace('T', " "),
            None,
            "<-03>3",
            1,
        ),
        // Durations: "that long ago" from SQLGIT_NOW.
        ("120s".into(), Some(T + 250), "UTC", 2),
        ("1m 30s".into(), Some(T + 250), "UTC", 2),
        ("4m".into(), Some(T + 250), "UTC", 1),
        ("10s".into(), Some(T + 250), "UTC", 3),
    ];
    for (when, now, tz, expected) in &cases {
        let mut cmd = sqlgit_cmd_at(
            &env,
            *now,
            &[
                OsStr::new("cat"),
                OsStr::new(when),
                OsStr::new("--repo"),
                repo.as_os_str(),
            ],
        );
        cmd.env("TZ", tz);
        let run = env.run(cmd, b"").success().assert_quiet();
        if run.stdout() != dumps[expected - 1].as_slice() {
            let got = dumps
                .iter()
                .position(|d| d.as_slice() == run.stdout())
                .map(|i| i + 1);
            run.fail(&format!(
                "WHEN {when:?} (TZ={tz}) should select snapshot {expected}, got {got:?}"
            ));
        }
    }
    // No WHEN: the latest.
    assert_same_sql(&dumps[2], &cat(&env, &repo, None, None), "cat without WHEN");

    // restore takes the same WHEN.
    let to = env.path("restored-1.db");
    restore_run(&env, &repo, Some("HEAD~2"), &to, false).success();
    compare_databases(&copies[0], &to);
    let to = env.path("restored-2.db");
    let mut cmd = env.sqlgit_cmd(&[
        OsStr::new("restore"),
        OsStr::new("2m"),
        OsStr::new("--repo"),
        repo.as_os_str(),
        OsStr::new("--to"),
        to.as_os_str(),
    ]);
    cmd.env("SQLGIT_NOW", (T + 250).to_string());
    env.run(cmd, b"").success();
    compare_databases(&copies[1], &to);

    // Errors: one line, exit 1, nothing on stdout.
    let errors: Vec<(String, Option<u64>)> = vec![
        (rfc3339(T - 1), None), // before the first snapshot
        (format!("{}+02:00", local_form(T - 60, 7200)), None),
        ("1h".into(), Some(T + 250)), // a duration reaching before it
        ("HEAD~3".into(), None),      // unknown revision
        ("0123456789abcdef0123456789abcdef01234567".into(), None),
        ("no-such-branch".into(), None),
        ("2027-13-45T10:00:00Z".into(), None), // unparseable times
        ("yesterday-ish".into(), None),
        ("2027-01-15T08:00:00+2:00".into(), None),
        ("".into(), None),
    ];
    for (when, now) in &errors {
        let run = sqlgit_at(
            &env,
            *now,
            &[
                OsStr::new("cat"),
                OsStr::new(when),
                OsStr::new("--repo"),
                repo.as_os_str(),
            ],
        );
        let msg = assert_error_line(run, 1);
        assert!(
            msg.len() > "sqlgit: ".len() + 10,
            "WHEN {when:?}: unhelpful message {msg:?}"
        );
        let to = env.path("never.db");
        let mut cmd = sqlgit_cmd_at(
            &env,
            *now,
            &[
                OsStr::new("restore"),
                OsStr::new(when),
                OsStr::new("--repo"),
                repo.as_os_str(),
                OsStr::new("--to"),
                to.as_os_str(),
            ],
        );
        cmd.env("TZ", "UTC");
        assert_error_line(env.run(cmd, b""), 1);
        assert!(
            !to.exists(),
            "restore {when:?} failed but created {}",
            to.display()
        );
    }
    assert_eq!(
        log_json(&env, &repo).len(),
        3,
        "reading must not add snapshots"
    );
}

// ------------------------------------------------------------------------------------------------
// 5. restore
// ------------------------------------------------------------------------------------------------

#[test]
fn restore_refuses_then_replaces_without_stale_files() {
    let env = TestEnv::new();
    let db = env.fixture_db("floats");
    let repo = env.path("repo");
    snapshot_commit(&env, &db, &repo, Some(T));

    // An existing target: refused without --force, untouched, nothing left beside it.
    let out_dir = env.path("out");
    std::fs::create_dir(&out_dir).unwrap();
    let target = out_dir.join("app.db");
    // The old target is a WAL database with committed frames still in its -wal: if that -wal
    // survived next to the restored file, SQLite would replay it into the new database.
    let (wal_bytes, shm_bytes) = {
        let writer = Connection::open(env.path("old.db")).unwrap();
        let mode: String = writer
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        writer
            .execute_batch(
                "PRAGMA wal_autocheckpoint=0;
                 CREATE TABLE authors(x); INSERT INTO authors VALUES('stale wal row');
                 CREATE TABLE other(y); INSERT INTO other VALUES(1);",
            )
            .unwrap();
        std::fs::copy(env.path("old.db"), &target).unwrap();
        let wal = std::fs::read(env.path("old.db-wal")).unwrap();
        let shm = std::fs::read(env.path("old.db-shm")).unwrap();
        assert!(!wal.is_empty(), "the old database should have WAL frames");
        (wal, shm)
    };
    std::fs::write(out_dir.join("app.db-wal"), &wal_bytes).unwrap();
    std::fs::write(out_dir.join("app.db-shm"), &shm_bytes).unwrap();
    let before = dir_state(&out_dir);

    let msg = assert_error_line(restore_run(&env, &repo, None, &target, false), 1);
    assert!(msg.contains("--force") || msg.contains("exists"), "{msg}");
    assert_dir_unchanged(&before, &out_dir, "restore without --force");

    // --force: replaced, checked, no -wal/-shm/-journal/temp file left.
    restore_run(&env, &repo, None, &target, true).success();
    assert_eq!(
        list_dir(&out_dir),
        ["app.db"],
        "files beside the restored database"
    );
    compare_databases(&db, &target);
    assert_integrity(&env, &target);

    // Into a fresh path: same, and repeatable with --force over its own result.
    let fresh = out_dir.join("fresh.db");
    restore_run(&env, &repo, None, &fresh, false).success();
    restore_run(&env, &repo, None, &fresh, true).success();
    assert_eq!(list_dir(&out_dir), ["app.db", "fresh.db"]);
    compare_databases(&db, &fresh);

    // Restoring must not change the repository.
    assert_eq!(log_json(&env, &repo).len(), 1);
    assert_fsck_clean(&env, &repo);
}
