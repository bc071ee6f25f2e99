//! Tests of `sqlgit diff FROM [TO] --repo DIR [--table NAME]... [--summary|--sql|--json]` through
//! the real binary.
//!
//! One seeded random history (8 snapshots) on a schema with every kind of key — an INTEGER
//! PRIMARY KEY, a TEXT PRIMARY KEY (rowid-keyed), a WITHOUT ROWID composite key, a table with no
//! key (rowid) and one whose rowid no name can reach (a multiset, though the dump keeps its real
//! rowids) — an index, a view and an AFTER
//! UPDATE trigger writing an AUTOINCREMENT audit table, with schema changes along the way (added
//! columns, indexes added and dropped, a view and a trigger replaced, a table created and dropped,
//! ANALYZE, user_version). For every ordered pair of snapshots, the `--sql` patch applied with the
//! sqlite3 CLI to a restore of the first must dump byte for byte like the second, and the `--json`
//! counts must equal what an independent oracle (rusqlite reading the database at each snapshot)
//! says changed. Around that: WHEN resolution, identical points, `--table`, and bad input.

mod collations;
mod fixtures;
mod history;
mod kinds;
mod live;
mod names;
mod oracle;
mod repo;
mod rowkeys;
mod several;
mod shown;
mod textkeys;
mod virtual_tables;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::env::{Run, rfc3339};
use history::{SNAPSHOTS, STEP, T0, build_history};
use oracle::{Changes, expected_changes, read_state};

#[track_caller]
fn assert_one_error_line(run: Run) {
    let run = run.code_is(2);
    let err = run.stderr_str();
    if !run.stdout().is_empty() || !err.starts_with("sqlgit: ") || err.trim_end().contains('\n') {
        run.fail("expected nothing on stdout and one `sqlgit: …` line on stderr");
    }
}

fn json_counts(run: &Run) -> (serde_json::Value, Changes) {
    let doc: serde_json::Value = serde_json::from_slice(run.stdout())
        .unwrap_or_else(|e| run.fail(&format!("--json output is not JSON: {e}")));
    let mut out = BTreeMap::new();
    for t in doc["tables"].as_array().unwrap() {
        let n = |k: &str| t[k].as_u64().unwrap();
        out.insert(
            t["name"].as_str().unwrap().to_string(),
            (
                n("inserted"),
                n("updated"),
                n("deleted"),
                t["schema_changed"].as_bool().unwrap(),
            ),
        );
    }
    (doc, out)
}

#[test]
fn random_history_patches_and_counts() {
    let h = build_history();
    let repo = h.repo.to_str().unwrap().to_string();
    let env = &h.env;
    // One restore per snapshot; each patch applies to a fresh copy.
    let bases: Vec<PathBuf> = (0..SNAPSHOTS)
        .map(|i| {
            let base = env.path(format!("base{i}.db"));
            let to = base.to_str().unwrap();
            h.sqlgit(&["restore", &h.commits[i], "--repo", &repo, "--to", to])
                .success();
            base
        })
        .collect();
    for (i, base) in bases.iter().enumerate() {
        for j in 0..SNAPSHOTS {
            if i == j {
                continue;
            }
            let what = format!("snapshot {i} -> snapshot {j}");
            let (ci, cj) = (&h.commits[i], &h.commits[j]);

            let patch = h.diff(&[ci, cj, "--sql"]).code_is(1).assert_quiet();
            let db = env.path(format!("patched-{i}-{j}.db"));
            std::fs::copy(base, &db).unwrap();
            let applied = env.sqlite3(&db, patch.stdout());
            if applied.code() != Some(0) || !applied.stderr().is_empty() {
                applied.fail(&format!("{what}: the patch does not apply cleanly"));
            }
            let dump = env
                .sqlgit(&[Path::new("dump"), db.as_path()])
                .success()
                .output
                .stdout;
            if dump != h.dumps[j] {
                let first = dump.iter().zip(&h.dumps[j]).position(|(a, b)| a != b);
                let at = first.unwrap_or(dump.len().min(h.dumps[j].len()));
                let from = at.saturating_sub(200);
                panic!(
                    "{what}: patched database dumps differently from the snapshot at byte {at}:\n\
                     patched:  {:?}\nexpected: {:?}\npatch:\n{}",
                    String::from_utf8_lossy(&dump[from..(at + 200).min(dump.len())]),
                    String::from_utf8_lossy(&h.dumps[j][from..(at + 200).min(h.dumps[j].len())]),
                    crate::env::excerpt(patch.stdout())
                );
            }
            std::fs::remove_file(&db).unwrap();

            let json = h.diff(&[ci, cj, "--json"]).code_is(1).assert_quiet();
            let (doc, got) = json_counts(&json);
            assert_eq!(doc["from"], ci.as_str(), "{what}: from");
            assert_eq!(doc["to"], cj.as_str(), "{what}: to");
            let expected = expected_changes(&h.states[i], &h.states[j]);
            assert_eq!(
                got, expected,
                "{what}: --json counts (inserted, updated, deleted, schema_changed)"
            );
            let (si, sj) = (&h.states[i], &h.states[j]);
            assert_eq!(
                doc["views_changed"],
                si.views != sj.views,
                "{what}: views_changed"
            );
            assert_eq!(
                doc["triggers_changed"],
                si.triggers != sj.triggers,
                "{what}: triggers_changed"
            );
            assert_eq!(
                doc["pragmas_changed"],
                si.pragmas != sj.pragmas,
                "{what}: pragmas_changed"
            );

            if j == i + 1 {
                let summary = h.diff(&[ci, cj, "--summary"]).code_is(1).assert_quiet();
                let lines = summary.stdout_str();
                for name in got.keys() {
                    assert!(
                        lines.lines().any(|l| l.starts_with(&format!("{name}: "))),
                        "{what}: summary lacks {name}:\n{lines}"
                    );
                }
                let rows = h.diff(&[ci, cj]).code_is(1).assert_quiet();
                let text = rows.stdout_str();
                assert!(!text.contains('\x1b'), "{what}: colour on a pipe");
                assert!(
                    text.contains("table users:") && text.contains(" → "),
                    "{what}:\n{text}"
                );
            }
        }
    }
}

#[test]
fn times_identical_points_tables_and_bad_input() {
    let h = build_history();
    let repo = h.repo.to_str().unwrap().to_string();
    let c = &h.commits;

    // A time between two snapshots selects the earlier one.
    let between = rfc3339(T0 + 2 * STEP + STEP / 2);
    for mode in [&[][..], &["--summary"], &["--sql"]] {
        let mut args = vec![between.as_str(), c[2].as_str()];
        args.extend_from_slice(mode);
        let run = h.diff(&args).code_is(0).assert_quiet();
        assert!(
            run.stdout().is_empty(),
            "identical points printed something"
        );
    }
    // --json is for scripts: always its one object, with no tables when nothing differs.
    let run = h.diff(&[&between, &c[2], "--json"]).code_is(0);
    let (doc, got) = json_counts(&run);
    assert!(got.is_empty() && doc["tables"] == serde_json::json!([]));
    assert_eq!(
        (doc["from"].as_str(), doc["to"].as_str()),
        (Some(c[2].as_str()), Some(c[2].as_str()))
    );
    let run = h.diff(&[&between, &c[3], "--json"]).code_is(1);
    let (doc, _) = json_counts(&run);
    assert_eq!(doc["from"], c[2].as_str());
    assert_eq!(doc["to"], c[3].as_str());
    // TO defaults to the latest snapshot.
    let run = h.diff(&[&c[5], "--json"]).code_is(1);
    assert_eq!(json_counts(&run).0["to"], c[SNAPSHOTS - 1].as_str());

    // Identical points: exit 0, nothing printed (--json: its object, no tables).
    for mode in [&[][..], &["--summary"], &["--json"], &["--sql"]] {
        for (a, b) in [(c[4].as_str(), c[4].as_str()), ("HEAD", "HEAD")] {
            let mut args = vec![a, b];
            args.extend_from_slice(mode);
            let run = h.diff(&args).code_is(0).assert_quiet();
            if mode == ["--json"] {
                assert_eq!(json_counts(&run).0["tables"], serde_json::json!([]));
            } else {
                assert!(run.stdout().is_empty());
            }
        }
    }
    h.diff(&["HEAD"]).code_is(0).assert_quiet();

    // --table: only that table, counted as without it; its patch brings just that table along.
    let run = h
        .diff(&[&c[0], &c[7], "--table", "users", "--json"])
        .code_is(1);
    let (doc, got) = json_counts(&run);
    let all = expected_changes(&h.states[0], &h.states[7]);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["users"]);
    assert_eq!(got["users"], all["users"]);
    assert_eq!(doc["views_changed"], false);
    let run = h
        .diff(&[
            &c[1],
            &c[2],
            "--table",
            "pairs",
            "--table",
            "bag",
            "--summary",
        ])
        .code_is(1);
    let names: Vec<String> = run
        .stdout_str()
        .lines()
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect();
    assert_eq!(names, ["bag", "pairs"]);
    let patch = h
        .diff(&[&c[0], &c[7], "--table", "users", "--sql"])
        .code_is(1);
    let db = h.env.path("users-only.db");
    h.sqlgit(&[
        "restore",
        &c[0],
        "--repo",
        &repo,
        "--to",
        db.to_str().unwrap(),
    ])
    .success();
    h.env.sqlite3(&db, patch.stdout()).success().assert_quiet();
    let users = |conn: &Connection| read_state(conn).tables.remove("users").unwrap().keyed;
    let patched = users(&Connection::open(&db).unwrap());
    let latest = users(&Connection::open(&h.db).unwrap());
    assert!(
        patched == latest,
        "--table users --sql did not bring users to the newer snapshot"
    );
    let audit_rows = |conn: &Connection| read_state(conn).tables["audit"].keyed.len();
    assert_eq!(
        audit_rows(&Connection::open(&db).unwrap()),
        h.states[0].tables["audit"].keyed.len(),
        "a trigger fired while the patch applied, or another table changed"
    );

    // Bad input: one line on stderr, exit 2.
    let missing = h.env.path("missing");
    let cases: Vec<Vec<&str>> = vec![
        vec!["nosuchrev"],
        vec!["HEAD~100"],
        vec![&c[0], "nosuchrev"],
        vec!["2026-13-45T99:00:00Z"],
        vec!["2000-01-01T00:00:00Z"],
        vec![&c[0], "--table", "nosuch"],
    ];
    for args in cases {
        assert_one_error_line(h.diff(&args));
    }
    assert_one_error_line(h.sqlgit(&["diff", "HEAD", "--repo", missing.to_str().unwrap()]));
    h.sqlgit(&["diff", "HEAD", "--repo", &repo, "--sql", "--json"])
        .code_is(2);
}
