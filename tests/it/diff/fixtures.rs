//! Every fixture database of the dump tests through `diff --sql`, both ways, between the fixture,
//! a copy with a third of each table's rows deleted, and an unrelated database of the same
//! encoding: adding and removing every kind of table (virtual tables, odd names, generated
//! columns, STRICT, WITHOUT ROWID, AUTOINCREMENT), views on views and triggers, and deleting and
//! re-inserting rows keyed by every kind of value.

use std::path::Path;

use rusqlite::Connection;

use super::history::T0;
use super::oracle::strings;
use crate::env::TestEnv;

/// Delete every third row of every ordinary table (by rowid, primary key or all columns).
fn thin_out(db: &Path) {
    let conn = Connection::open(db).unwrap();
    let tables = strings(
        &conn,
        "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' \
         AND name NOT LIKE 'sqlite%' AND ?1 = ?1",
        "",
    );
    let quote = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
    for t in tables {
        let cols = strings(&conn, "SELECT name FROM pragma_table_xinfo(?1)", &t);
        let pk = strings(
            &conn,
            "SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk",
            &t,
        );
        let wr: bool = conn
            .query_row("SELECT wr FROM pragma_table_list(?1)", [&t], |r| r.get(0))
            .unwrap();
        let alias = ["rowid", "_rowid_", "oid"]
            .into_iter()
            .find(|a| !cols.iter().any(|c| c.eq_ignore_ascii_case(a)));
        let key: Vec<String> = match (wr, alias) {
            (false, Some(a)) => vec![a.to_string()],
            (true, _) => pk.iter().map(|c| quote(c)).collect(),
            _ => cols.iter().map(|c| quote(c)).collect(),
        };
        let k = key.join(", ");
        let q = quote(&t);
        let sql = format!(
            "DELETE FROM {q} WHERE ({k}) IN (SELECT {k} FROM \
             (SELECT {k}, row_number() OVER () AS sqlgit_n FROM {q}) WHERE sqlgit_n % 3 = 1)"
        );
        // A trigger may refuse (RAISE): then the table stays whole.
        let _ = conn.execute(&sql, []);
    }
}

#[test]
fn every_fixture_patches_both_ways() {
    let mut names: Vec<String> = std::fs::read_dir(crate::env::fixtures_dir())
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.strip_suffix(".sql").map(str::to_string)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 5, "fixtures not found");
    for name in names {
        let started = std::time::Instant::now();
        let env = TestEnv::new();
        let fixture = env.fixture_db(&name);
        let thinned = env.path("thinned.db");
        std::fs::copy(&fixture, &thinned).unwrap();
        thin_out(&thinned);
        let encoding: String = Connection::open(&fixture)
            .unwrap()
            .query_row("PRAGMA encoding", [], |r| r.get(0))
            .unwrap();
        // Another database of the same encoding (a patch cannot change it; an empty database
        // does not keep it), sharing nothing with the fixture.
        let other = env.db_from_script(
            "other.db",
            format!(
                "PRAGMA encoding='{encoding}'; CREATE TABLE other(x); INSERT INTO other VALUES (1);"
            )
            .as_bytes(),
        );
        let (db, repo) = (env.path("app.db"), env.path("app.sqlgit"));
        let repo_s = repo.to_str().unwrap().to_string();
        let mut commits = Vec::new();
        let mut dumps = Vec::new();
        for (n, source) in [&thinned, &fixture, &other].into_iter().enumerate() {
            std::fs::copy(source, &db).unwrap();
            let mut cmd = env.sqlgit_cmd(&[Path::new("snapshot"), &db, Path::new("--repo"), &repo]);
            cmd.env("SQLGIT_NOW", (T0 + 60 * n as u64).to_string());
            let run = env.run(cmd, b"").success();
            let id = run
                .stdout_str()
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            if id.len() != 40 {
                run.fail(&format!("{name}: snapshot {n} made no commit"));
            }
            dumps.push(
                env.sqlgit(&["cat", &id, "--repo", &repo_s])
                    .success()
                    .output
                    .stdout,
            );
            commits.push(id);
        }
        for i in 0..3 {
            for j in 0..3 {
                if i == j {
                    continue;
                }
                let what = format!("fixture {name}, snapshot {i} -> {j}");
                // SQL cannot drop sqlite_sequence: going back to a database without one leaves
                // it empty, with a warning.
                const MAKE_SEQUENCE: &str = "CREATE TABLE sqlgit_make_sequence(i INTEGER PRIMARY KEY AUTOINCREMENT);\n\
                     DROP TABLE sqlgit_make_sequence;\nDELETE FROM sqlite_sequence;\n";
                let has_sequence = |d: &[u8]| {
                    String::from_utf8_lossy(d).contains("DELETE FROM sqlite_sequence;\n")
                };
                let keeps_sequence = has_sequence(&dumps[i]) && !has_sequence(&dumps[j]);
                let patch = env
                    .sqlgit(&["diff", &commits[i], &commits[j], "--repo", &repo_s, "--sql"])
                    .code_is(1);
                if patch.stderr_str().contains("no sqlite_sequence") != keeps_sequence {
                    patch.fail(&format!(
                        "{what}: expected a warning exactly when sqlite_sequence must go"
                    ));
                }
                // Restored by the sqlite3 CLI, like the patch (`sqlgit restore` uses the bundled
                // SQLite, which reads a few affinity corner cases of `types` differently).
                let target = env.restore(&dumps[i], &format!("patched-{i}-{j}.db"));
                let to = target.to_str().unwrap();
                let applied = env.sqlite3(&target, patch.stdout());
                if applied.code() != Some(0) || !applied.stderr().is_empty() {
                    applied.fail(&format!("{what}: the patch does not apply cleanly"));
                }
                let mut dump = env.sqlgit(&["dump", to]).success().output.stdout;
                if keeps_sequence {
                    let text = String::from_utf8(dump).unwrap();
                    assert!(
                        text.contains(MAKE_SEQUENCE),
                        "{what}: no empty sqlite_sequence"
                    );
                    dump = text.replacen(MAKE_SEQUENCE, "", 1).into_bytes();
                }
                assert!(
                    dump == dumps[j],
                    "{what}: the patched database dumps differently\npatch:\n{}",
                    crate::env::excerpt(patch.stdout())
                );
                env.sqlgit(&[
                    "diff",
                    &commits[i],
                    &commits[j],
                    "--repo",
                    &repo_s,
                    "--json",
                ])
                .code_is(1)
                .assert_quiet();
                env.sqlgit(&["diff", &commits[i], &commits[j], "--repo", &repo_s])
                    .code_is(1)
                    .assert_quiet();
            }
        }
        eprintln!("fixture {name}: {:?}", started.elapsed());
    }
}
