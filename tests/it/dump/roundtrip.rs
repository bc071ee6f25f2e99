//! Restores beyond the fixtures: with foreign keys enforced, through a real pipe into `sqlite3`,
//! the real-world corpus when present, and `sqlite_stat4` kept.

use super::*;

/// A dump restores the same with `PRAGMA foreign_keys=ON` in effect (child tables sort before their
/// parents, and the schema fixture has a dangling reference).
#[test]
fn restore_with_foreign_keys_on() {
    let env = TestEnv::new();
    let db = env.fixture_db("schema");
    let dump = dump_stdout(&env, &db);
    let restored = env.path("fk.db");
    env.sqlite3_args(&["-cmd", "PRAGMA foreign_keys=ON"], &restored, &dump)
        .success()
        .assert_quiet();
    compare_databases(&db, &restored);
}

/// `sqlgit dump DB | sqlite3 new.db` as in the spec, through a real pipe.
#[test]
fn dump_piped_into_sqlite3() {
    let env = TestEnv::new();
    let db = env.fixture_db("demo");
    let mut dump = env.sqlgit_cmd(&[Path::new("dump"), &db]);
    let mut child = dump.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let restored = env.path("piped.db");
    let mut sqlite = env.command(crate::env::sqlite3_bin());
    sqlite.arg(&restored).stdin(child.stdout.take().unwrap());
    let out = sqlite.output().unwrap();
    assert!(child.wait().unwrap().success(), "sqlgit dump failed");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    compare_databases(&db, &restored);
}

/// The real-world databases of `../shared/corpus/` (Chinook), when present; not copied into the repo.
#[test]
fn corpus_roundtrip() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let Ok(entries) = std::fs::read_dir(&corpus) else {
        eprintln!("skipped: no corpus at {}", corpus.display());
        return;
    };
    let env = TestEnv::new();
    let mut n = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "sqlite" | "db" | "sqlite3"))
        {
            let local = env.path(path.file_name().unwrap());
            std::fs::copy(&path, &local).unwrap();
            assert_roundtrip(&env, &local);
            n += 1;
        }
    }
    eprintln!("round-tripped {n} corpus databases");
}

/// `ANALYZE` by a SQLite built with STAT4 (like rusqlite's bundled one, or many apps') also fills
/// `sqlite_stat4`; a restore that drops it changes query plans. The sqlite3 3.40 CLI has no
/// STAT4: the table is created the way `writable_schema` makes one, and keeps its rows.
#[test]
fn stat4_is_kept() {
    let env = TestEnv::new();
    let db = env.path("stat4.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t(a, b); CREATE INDEX t_a ON t(a);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500)
             INSERT INTO t SELECT x % 13, x FROM c;
             ANALYZE;",
        )
        .unwrap();
    assert_roundtrip(&env, &db);
}

/// Texts with many CR or NUL bytes — 10k CRs, CRLF documents, UTF-16 stored as text (every other
/// byte NUL), the backslash pairs the `replace()` spelling uses as tokens, CR/NUL first and
/// last — are spelled with `replace()` and restore exactly every way: `sqlgit cat | sqlite3`
/// (within 256 MB of address space: the old `char()` pieces of one `a\r` x 300k value needed
/// far more), `restore --to`, and plain `git archive | tar -xO | sqlite3`; in UTF-8 and UTF-16
/// databases, in TEXT, NUMERIC and untyped columns.
#[test]
fn texts_with_many_cr_and_nul_bytes_restore_exactly() {
    let utf16 = "UTF-16 text\r\n".encode_utf16().cycle().take(4000);
    let utf16: Vec<u8> = utf16.flat_map(|u| u.to_le_bytes()).collect();
    let mut tokens = br"\r\0 \R\z \c\Z".to_vec();
    tokens.extend(b"\r\0'\r\\".repeat(40));
    let texts: Vec<Vec<u8>> = vec![
        vec![b'\r'; 10_000],
        b"a line of a document\r\n".repeat(3000),
        utf16,
        b"a\r".repeat(300_000),
        tokens,
        b"\\\r\\\0\\".repeat(50),
        b"\r\0 ".repeat(30),
        b"12\r".repeat(20),
    ];
    for encoding in ["UTF-8", "UTF-16le", "UTF-16be"] {
        let env = TestEnv::new();
        let db = env.path("crs.db");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA encoding='{encoding}'; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n NUMERIC, b);"
        ))
        .unwrap();
        for text in &texts {
            let text = String::from_utf8(text.clone()).unwrap();
            conn.execute("INSERT INTO t(v, n, b) VALUES(?1, ?1, ?1)", [&text])
                .unwrap();
        }
        drop(conn);
        let (db_s, repo) = (db.display().to_string(), env.path("r.sqlgit"));
        let repo_s = repo.display().to_string();
        env.sqlgit(&["snapshot", &db_s, "--repo", &repo_s])
            .success();
        let sql = env.sqlgit(&["cat", "--repo", &repo_s]).success();
        let replaced = String::from_utf8_lossy(sql.stdout())
            .matches("replace(")
            .count();
        assert!(replaced >= 3 * 6, "{encoding}: {replaced} replace() calls");
        let cli = env.path("cli.db");
        let mut limited = env.command("sh");
        limited.arg("-c").arg(format!(
            "ulimit -v 262144 && exec '{}' '{}'",
            crate::env::sqlite3_bin().display(),
            cli.display()
        ));
        env.run(limited, sql.stdout()).success().assert_quiet();
        let mut archive = env.command("sh");
        archive.arg("-c").arg(format!(
            "git --git-dir '{repo_s}' archive --format=tar main | tar -xO"
        ));
        let plain = env.restore(env.run(archive, b"").success().stdout(), "git.db");
        let to = env.path("to.db");
        let to_s = to.display().to_string();
        env.sqlgit(&["restore", "--repo", &repo_s, "--to", &to_s])
            .success();
        for restored in [&cli, &plain, &to] {
            compare_databases(&db, restored);
        }
        env.sqlgit(&["verify", "--repo", &repo_s]).success();
    }
}
