//! Tests of `sqlgit query [WHEN] SQL --repo DIR [--at WHEN]... [--json | --csv]` through the real
//! binary: at three snapshots its answers equal what SQLite answers on a restore of each one made
//! by hand (`sqlgit restore --to`), value for value (REAL bits, text and blob bytes, storage
//! classes); the three output shapes; a point asked twice; statements that write are refused;
//! nothing is left in TMPDIR and the repository does not change.

use std::path::PathBuf;

use rusqlite::Connection;
use rusqlite::types::Value;

use crate::badinput::tree_state;
use crate::env::{Run, TestEnv, list_dir, one_error_line, parse_csv, rfc3339};

/// `SQLGIT_NOW` of the first snapshot; the others follow `STEP` seconds apart.
const T0: u64 = 1_800_000_000;
const STEP: u64 = 600;

/// The statement every point is asked: all kinds of values, in a fixed order.
const SQL: &str = "SELECT t.id, t.name, t.price, t.data, t.n, w.v AS w_v \
                   FROM t LEFT JOIN w ON w.k = t.name ORDER BY t.id";

struct Fx {
    env: TestEnv,
    repo: PathBuf,
    commits: Vec<String>,
}

impl Fx {
    fn repo(&self) -> &str {
        self.repo.to_str().unwrap()
    }

    /// `sqlgit query ARGS --repo REPO`, a step after the last snapshot (`now`).
    fn query(&self, args: &[&str]) -> Run {
        let mut all = vec!["query"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--repo", self.repo()]);
        let mut cmd = self.env.sqlgit_cmd(&all);
        cmd.env("SQLGIT_NOW", (T0 + 3 * STEP).to_string());
        self.env.run(cmd, b"")
    }

    /// What SQLite answers on a restore of snapshot `i` made by hand.
    fn by_hand(&self, i: usize) -> (Vec<String>, Vec<Vec<Value>>) {
        let db = self.env.path(format!("by-hand-{i}.db"));
        if !db.exists() {
            let to = db.to_str().unwrap();
            self.env
                .sqlgit(&[
                    "restore",
                    &self.commits[i],
                    "--repo",
                    self.repo(),
                    "--to",
                    to,
                ])
                .success();
        }
        let conn = Connection::open(&db).unwrap();
        let mut stmt = conn.prepare(SQL).unwrap();
        let names: Vec<String> = stmt.column_names().map(str::to_string).collect();
        let n = names.len();
        let rows = stmt
            .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
            .unwrap()
            .collect::<rusqlite::Result<Vec<Vec<Value>>>>()
            .unwrap();
        (names, rows)
    }
}

/// Three snapshots of a database with a rowid table and a WITHOUT ROWID table, values of every
/// storage class among them (REALs that print badly, text with quotes, commas, CR, LF and NUL,
/// empty text and blobs, extreme integers).
fn fixture() -> Fx {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, price REAL, data BLOB, n);
          CREATE TABLE w(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
          INSERT INTO t VALUES
            (1, 'apple', 1.5, X'00ff', 9223372036854775807),
            (2, 'it''s, \"quoted\"'||char(13,10)||'two lines', 0.1, X'', -9223372036854775808),
            (3, '', 1e300, NULL, 'text in an untyped column'),
            (4, NULL, 5e-324, X'000102', 2.0),
            (5, 'nul'||char(0)||'inside', -0.0, 'text in a blob column', 1e999),
            (6, 'caf\xc3\xa9 \xe2\x82\xac', 1.0/3, zeroblob(3), -1e999);
          INSERT INTO w VALUES ('apple', 1), ('', 'empty key'), ('pear', 0.30000000000000004);",
    );
    let repo = env.path("app.sqlgit");
    let mut commits = vec![env.snapshot_at(&db, &repo, T0)];
    env.sqlite3(
        &db,
        "UPDATE t SET price = 2.25, name = 'pear' WHERE id = 1;
         DELETE FROM t WHERE id = 3;
         INSERT INTO t VALUES (7, 'kiwi', 123456789.123, X'ab', NULL);
         UPDATE w SET v = 2 WHERE k = 'apple';",
    )
    .success()
    .assert_quiet();
    commits.push(env.snapshot_at(&db, &repo, T0 + STEP));
    env.sqlite3(
        &db,
        "DELETE FROM t WHERE id IN (2, 4);
         INSERT INTO w VALUES ('kiwi', X'cafe');
         ALTER TABLE t ADD COLUMN extra;",
    )
    .success()
    .assert_quiet();
    commits.push(env.snapshot_at(&db, &repo, T0 + 2 * STEP));
    Fx { env, repo, commits }
}

/// CSV fields against SQLite's values: exact (REALs to the bit), each read as the kind of value
/// expected (CSV itself has no types; `--json` checks those).
#[track_caller]
fn assert_csv_row(fields: &[Vec<u8>], row: &[Value], what: &str) {
    assert_eq!(fields.len(), row.len(), "{what}: number of fields");
    for (f, v) in fields.iter().zip(row) {
        let text = String::from_utf8_lossy(f);
        let ok = match v {
            Value::Null => f.is_empty(),
            Value::Integer(i) => text == i.to_string(),
            Value::Real(r) => match text.as_ref() {
                "1e999" => *r == f64::INFINITY,
                "-1e999" => *r == f64::NEG_INFINITY,
                t => t.parse::<f64>().is_ok_and(|x| x.to_bits() == r.to_bits()),
            },
            Value::Text(s) => f == s.as_bytes(),
            Value::Blob(b) => *f == hex(b).into_bytes(),
        };
        assert!(ok, "{what}: CSV field {text:?} is not {v:?}");
    }
}

/// JSON values against SQLite's: the same kind (null, integer, real, string), integers and text
/// exact, blobs as lowercase hex, infinities as "Infinity"/"-Infinity". (REALs: serde_json may
/// read a decimal one bit off, so CSV checks their bits.)
#[track_caller]
fn assert_json_row(obj: &serde_json::Value, names: &[String], row: &[Value], what: &str) {
    let obj = obj.as_object().unwrap();
    assert_eq!(obj.len(), names.len(), "{what}: keys");
    for (name, v) in names.iter().zip(row) {
        let j = &obj[name.as_str()];
        let ok = match v {
            Value::Null => j.is_null(),
            Value::Integer(i) => j.as_i64() == Some(*i),
            Value::Real(r) if r.is_infinite() => {
                j.as_str() == Some(if *r < 0.0 { "-Infinity" } else { "Infinity" })
            }
            Value::Real(r) => j.is_f64() && (j.as_f64().unwrap() - r).abs() <= r.abs() * 1e-15,
            Value::Text(s) => j.as_str() == Some(s.as_str()),
            Value::Blob(b) => j.as_str() == Some(hex(b).as_str()),
        };
        assert!(ok, "{what}: JSON {name} = {j} is not {v:?}");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn query_at_three_points_matches_restores_by_hand() {
    let fx = fixture();
    let c = &fx.commits;
    let repo_before = tree_state(&fx.repo);
    let expected: Vec<_> = (0..3).map(|i| fx.by_hand(i)).collect();
    assert_ne!(expected[0].1, expected[1].1, "the fixture changes rows");

    // CSV at all three points: `commit` and `time` first, then the columns; values exact.
    let run = fx
        .query(&["--at", &c[0], "--at", &c[1], "--at", "now", SQL, "--csv"])
        .success()
        .assert_quiet();
    let records = parse_csv(run.stdout());
    let (names, _) = &expected[0];
    let mut header = vec![b"commit".to_vec(), b"time".to_vec()];
    header.extend(names.iter().map(|n| n.as_bytes().to_vec()));
    assert_eq!(records[0], header, "CSV header");
    let mut at = 1;
    for (i, (_, rows)) in expected.iter().enumerate() {
        for row in rows {
            let r = &records[at];
            assert_eq!(r[0], c[i].as_bytes(), "snapshot {i}: commit column");
            assert_eq!(
                r[1],
                rfc3339(T0 + i as u64 * STEP).as_bytes(),
                "time column"
            );
            assert_csv_row(&r[2..], row, &format!("snapshot {i}, row {}", at));
            at += 1;
        }
    }
    assert_eq!(at, records.len(), "CSV has rows no snapshot has");

    // One point at a time: bare rows (CSV: header and rows; JSON: an array of objects); a time
    // between two snapshots selects the earlier one.
    for (i, (names, rows)) in expected.iter().enumerate() {
        let when = rfc3339(T0 + i as u64 * STEP + STEP / 2);
        let run = fx.query(&[&when, SQL, "--csv"]).success().assert_quiet();
        let records = parse_csv(run.stdout());
        let want: Vec<Vec<u8>> = names.iter().map(|n| n.as_bytes().to_vec()).collect();
        assert_eq!(records[0], want);
        assert_eq!(records.len(), rows.len() + 1, "snapshot {i}: CSV rows");
        for (r, row) in records[1..].iter().zip(rows) {
            assert_csv_row(r, row, &format!("snapshot {i} alone"));
        }
        let run = fx.query(&[&c[i], SQL, "--json"]).success().assert_quiet();
        let doc: serde_json::Value = serde_json::from_slice(run.stdout()).unwrap();
        let objs = doc.as_array().unwrap();
        assert_eq!(objs.len(), rows.len(), "snapshot {i}: JSON rows");
        for (obj, row) in objs.iter().zip(rows) {
            assert_json_row(obj, names, row, &format!("snapshot {i} --json"));
        }
    }

    // JSON at several points: [{"commit", "time", "rows"}] in the order asked; the same point
    // twice (restored once) answers twice.
    let run = fx
        .query(&["--at", &c[1], "--at", &c[0], "--at", &c[1], SQL, "--json"])
        .success();
    let doc: serde_json::Value = serde_json::from_slice(run.stdout()).unwrap();
    let points = doc.as_array().unwrap();
    assert_eq!(points.len(), 3);
    for (p, i) in points.iter().zip([1, 0, 1]) {
        assert_eq!(p["commit"], c[i].as_str());
        assert_eq!(p["time"], rfc3339(T0 + i as u64 * STEP).as_str());
        assert_eq!(
            p["rows"].as_array().unwrap().len(),
            expected[i].1.len(),
            "point {i}: rows"
        );
    }
    assert_eq!(points[0]["rows"], points[2]["rows"]);

    // The table: one block per point, labelled; values as SQL literals on one line each.
    let run = fx
        .query(&[
            "--at",
            &c[0],
            "--at",
            "HEAD",
            "SELECT id, name, data, n FROM t ORDER BY id",
        ])
        .success()
        .assert_quiet();
    let text = run.stdout_str();
    let blocks: Vec<&str> = text.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "two blocks:\n{text}");
    for (block, i) in blocks.iter().zip([0, 2]) {
        let lines: Vec<&str> = block.lines().collect();
        let label = format!(
            "snapshot {}  {}",
            &c[i][..12],
            rfc3339(T0 + i as u64 * STEP)
        );
        assert_eq!(lines[0], label, "{text}");
        assert!(lines[1].starts_with("id  name"), "{text}");
        let n = expected[i].1.len();
        assert_eq!(
            lines.len(),
            n + 4,
            "label, header, rule, {n} rows, count:\n{text}"
        );
        assert_eq!(lines[n + 3], format!("({n} rows)"));
    }
    for literal in [
        "'it''s, \"quoted\"'||char(13,10)||'two lines'",
        "X'00ff'",
        "9223372036854775807",
        "-9223372036854775808",
        "'nul'||char(0)||'inside'",
        "'text in a blob column'",
        "1e999",
        "-1e999",
        "2.0",
        "NULL",
    ] {
        assert!(text.contains(literal), "the table lacks {literal}:\n{text}");
    }

    // Nothing left behind, nothing changed.
    assert_eq!(list_dir(&fx.env.tmpdir()), Vec::<String>::new(), "TMPDIR");
    assert!(
        tree_state(&fx.repo) == repo_before,
        "query changed the repository"
    );
}

#[test]
fn query_refuses_writes_and_bad_usage() {
    let fx = fixture();
    let c = &fx.commits;
    let repo_before = tree_state(&fx.repo);
    let copy = fx.env.path("copy.db");
    let vacuum = format!("VACUUM INTO '{}'", copy.display());
    // Statements that would write: exit 2, one line, before or after the restore.
    for sql in [
        "DELETE FROM t",
        "  insert into t(id) values (100)",
        "WITH x AS (SELECT 1) UPDATE t SET name = 'x'",
        "/* a comment first */ DROP TABLE t",
        vacuum.as_str(),
        "CREATE TEMP TABLE x(a)",
    ] {
        let line = one_error_line(fx.query(&[&c[1], sql]), 2);
        assert!(
            line.starts_with("sqlgit: ") && line.contains("would change the database"),
            "{sql}: {line}"
        );
    }
    assert!(!copy.exists(), "VACUUM INTO wrote a file");
    // Other usage errors: 2.
    for args in [
        vec![c[0].as_str(), "SELECT 1; SELECT 2"],
        vec!["   "],
        vec![c[0].as_str(), "SELECT 1", "--at", c[1].as_str()],
    ] {
        one_error_line(fx.query(&args), 2);
    }
    fx.query(&["SELECT 1", "--json", "--csv"]).code_is(2);
    fx.env.sqlgit(&["query", "SELECT 1"]).code_is(2); // no --repo
    // Failures: 1, naming the snapshot.
    let line = one_error_line(fx.query(&[&c[0], "SELECT * FROM nosuch"]), 1);
    assert!(
        line.contains(&c[0][..12]) && line.contains("no such table: nosuch"),
        "{line}"
    );
    let line = one_error_line(
        fx.query(&["--at", &c[0], "--at", "nosuchrev", "SELECT 1"]),
        1,
    );
    assert!(line.contains("not a valid WHEN: \"nosuchrev\""), "{line}");
    // `extra` exists only at the last point: the CSV of all three cannot have one header.
    let line = one_error_line(
        fx.query(&["--at", &c[1], "--at", &c[2], "SELECT * FROM t", "--csv"]),
        1,
    );
    assert!(line.contains("other columns"), "{line}");
    // A read-only PRAGMA and a statement with no rows are fine.
    let run = fx.query(&["PRAGMA user_version", "--json"]).success();
    assert_eq!(run.stdout_str(), "[\n  {\"user_version\": 0}\n]\n");
    let run = fx.query(&["SELECT id FROM t WHERE 0", "--json"]).success();
    assert_eq!(run.stdout_str(), "[]\n");

    assert_eq!(list_dir(&fx.env.tmpdir()), Vec::<String>::new(), "TMPDIR");
    assert!(
        tree_state(&fx.repo) == repo_before,
        "query changed the repository"
    );
}

/// `query` and `diff --live` stopped by a signal (Ctrl-C, a time limit) remove their temporary
/// copies from TMPDIR — the restored database, the live dump's repository — and say so.
#[test]
fn query_and_diff_live_stopped_by_a_signal_leave_nothing_in_tmpdir() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v);
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<40000)
          INSERT INTO t SELECT i, randomblob(1000) FROM n;",
    );
    let repo = env.path("r.sqlgit");
    env.snapshot_at(&db, &repo, T0);
    env.sqlite3(&db, "UPDATE t SET v = randomblob(1000);")
        .success();
    let tmp = env.tmpdir();
    std::fs::create_dir_all(&tmp).unwrap();
    let r = repo.to_str().unwrap();
    let slow = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<1000000000) \
                SELECT count(*) FROM c";
    // `diff` errors with exit 2: its 1 means "they differ".
    let runs: [(&[&str], &str, libc::c_int, i32); 2] = [
        (
            &["query", slow, "--repo", r],
            "sqlgit-query-",
            libc::SIGINT,
            1,
        ),
        (
            &["diff", "HEAD", "--live", db.to_str().unwrap(), "--repo", r],
            "sqlgit-live-",
            libc::SIGTERM,
            2,
        ),
    ];
    for (args, prefix, signal, code) in runs {
        let out = env.sqlgit_signalled(args, signal, prefix, || {
            let started = list_dir(&tmp).iter().any(|n| n.starts_with(prefix));
            if started {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            started
        });
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{prefix}: {err}");
        assert!(err.contains("its temporary files were removed"), "{err}");
        assert_eq!(
            list_dir(&tmp),
            Vec::<String>::new(),
            "{prefix}: left in TMPDIR"
        );
    }
}

/// What a `kill -9` (or the out-of-memory killer) leaves in TMPDIR from `query`, `diff --live`
/// and `verify` — restored copies of the data, as large as the database — is removed by the
/// next such command and named; a directory of a process still running is left alone.
#[test]
fn what_killed_runs_left_in_tmpdir_is_removed_by_the_next_one() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(v); INSERT INTO t VALUES (1);");
    let repo = env.path("r.sqlgit");
    env.snapshot_at(&db, &repo, T0);
    let tmp = env.tmpdir();
    std::fs::create_dir_all(&tmp).unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let r = repo.to_str().unwrap();
    let runs: [(&str, &[&str]); 3] = [
        ("query", &["query", "SELECT 1", "--repo", r]),
        (
            "live",
            &["diff", "HEAD", "--live", db.to_str().unwrap(), "--repo", r],
        ),
        ("verify", &["verify", "--repo", r]),
    ];
    for (tag, args) in runs {
        let left = tmp.join(format!("sqlgit-{tag}-{dead}-Ab12Cd"));
        let running = tmp.join(format!("sqlgit-{tag}-1-Ef34Gh"));
        for dir in [&left, &running] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("copy.db"), b"private rows").unwrap();
        }
        let out = env.sqlgit(args);
        assert!(
            matches!(out.code(), Some(0 | 1)),
            "{tag}: {}",
            out.stderr_str()
        );
        assert!(
            !left.exists(),
            "{tag}: a killed run's copy is still in TMPDIR"
        );
        assert!(
            out.stderr_str()
                .contains(&format!("left by a run that was killed (process {dead})")),
            "{tag}: {}",
            out.stderr_str()
        );
        assert!(
            running.join("copy.db").exists(),
            "{tag}: a running process's copy was removed"
        );
        std::fs::remove_dir_all(&running).unwrap();
        assert_eq!(
            list_dir(&tmp),
            Vec::<String>::new(),
            "{tag}: left in TMPDIR"
        );
    }
}

/// In a UTF-16 database, text UTF-8 cannot carry (unpaired surrogates) is shown as its stored
/// code units, `CAST(X'..' AS TEXT)` as `diff` prints it (SQLite's own conversion to UTF-8
/// glued a lone D800 or DC00 to the next unit: both showed as 'A𐁂'); JSON gets U+FFFD there.
#[test]
fn query_shows_unpaired_surrogates_of_utf16_text_as_stored() {
    let env = TestEnv::new();
    for (enc, units) in [
        (
            "UTF-16be",
            ["0041d8000042", "0041dc000042", "dc00d800", "00680069"],
        ),
        (
            "UTF-16le",
            ["410000d84200", "410000dc4200", "00dc00d8", "68006900"],
        ),
    ] {
        let script = format!(
            "PRAGMA encoding='{enc}'; CREATE TABLE t(id INTEGER PRIMARY KEY, v); \
             INSERT INTO t VALUES (1, CAST(X'{}' AS TEXT)), (2, CAST(X'{}' AS TEXT)), \
             (3, CAST(X'{}' AS TEXT)), (4, CAST(X'{}' AS TEXT));",
            units[0], units[1], units[2], units[3]
        );
        let db = env.db_from_script(&format!("{enc}.db"), script.as_bytes());
        let repo = env.path(format!("{enc}.sqlgit"));
        let repo = repo.to_str().unwrap();
        env.sqlgit(&["-q", "snapshot", db.to_str().unwrap(), "--repo", repo])
            .success();
        let sql = "SELECT v, v || '' AS w FROM t ORDER BY id";
        let table = env.sqlgit(&["query", sql, "--repo", repo]).success();
        let out = table.stdout_str();
        for u in &units[..3] {
            let lit = format!("CAST(X'{u}' AS TEXT)");
            let both = out.lines().any(|l| l.matches(&lit).count() == 2);
            assert!(both, "{enc}: {lit} twice on a line in {out}");
        }
        assert!(out.lines().any(|l| l.matches("'hi'").count() == 2), "{out}");
        assert!(
            !out.contains('\u{10042}') && !out.contains('\u{10000}'),
            "{out}"
        );
        let json = env
            .sqlgit(&["query", sql, "--repo", repo, "--json"])
            .success();
        let rows: serde_json::Value = serde_json::from_slice(json.stdout()).unwrap();
        let v: Vec<&str> = (rows.as_array().unwrap().iter())
            .map(|r| r["v"].as_str().unwrap())
            .collect();
        assert_eq!(
            v,
            ["A\u{fffd}B", "A\u{fffd}B", "\u{fffd}\u{fffd}", "hi"],
            "{enc}"
        );
    }
}
