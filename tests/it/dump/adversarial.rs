//! Property tests with adversarial input: schema text with comments of both kinds at every
//! position, CR LF / CR / LF line ends, lines the sqlite3 shell takes for `;` (`go`, `/`), lines
//! starting with `.` or `#`, every quote style and non-UTF-8 bytes; values of every storage class
//! in every affinity, text with NUL/CR/shell-looking lines, and in UTF-16 databases code units
//! UTF-8 cannot carry. Each database is dumped, restored by the real `sqlite3` CLI (`-bail`,
//! silent), compared value by value and schema byte by byte, and dumped again (fixed point).
//! `SQLGIT_ADVERSARIAL_CASES` scales the number of databases (default 6 per family).

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rusqlite::Connection;

use super::{assert_roundtrip, assert_same_dump, dump_stdout, try_exec_bytes as exec_bytes};
use crate::env::TestEnv;

fn cases() -> u64 {
    std::env::var("SQLGIT_ADVERSARIAL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6)
}

/// Filler between two tokens: blanks, line ends of every kind, comments, shell-looking lines.
fn gap(rng: &mut StdRng) -> Vec<u8> {
    let pieces: &[&[u8]] = &[
        b" ",
        b"\n",
        b"\r\n",
        b"\r",
        b"\t",
        b" -- note ; with a semicolon\n",
        b" -- windows note\r\n",
        b"/* block ; */",
        b"/* multi\r\nline\n*/",
        b"/*\ngo\n*/",
        b"\n-- /\n",
        b" /* caf\xe9 \xff */ ",
        b"\n-- \xfe\xfe\n",
    ];
    let mut out = Vec::new();
    for _ in 0..rng.random_range(1..3usize) {
        out.extend_from_slice(pieces[rng.random_range(0..pieces.len())]);
    }
    out
}

/// Something that may end a statement's text: nothing, a comment, an unterminated comment.
fn tail(rng: &mut StdRng) -> &'static [u8] {
    let tails: &[&[u8]] = &[b"", b" -- trailing", b" /* open", b"\r\n-- x\r\n", b"\n"];
    tails[rng.random_range(0..tails.len())]
}

fn string_literal(rng: &mut StdRng) -> Vec<u8> {
    let texts: &[&[u8]] = &[
        b"'plain'",
        b"'it''s'",
        b"'x\r\ny'",
        b"'a\ngo\nb'",
        b"'\n/\n'",
        b"'\n.quit\n'",
        b"'-- not a comment'",
        b"'/* not either'",
        b"'caf\xe9'",
        b"'only\rcr'",
    ];
    texts[rng.random_range(0..texts.len())].to_vec()
}

fn ident(rng: &mut StdRng, base: &str, n: usize) -> String {
    match rng.random_range(0..5) {
        0 => format!("{base}{n}"),
        1 => format!("\"{base} {n}\""),
        2 => format!("[{base}{n}]"),
        3 => format!("`{base}{n}`"),
        _ => format!("\"{base}\"\"{n}\""),
    }
}

/// One database of adversarial schema objects (each stored as generated, or skipped when SQLite
/// rejects the text), with a few rows.
fn schema_db(env: &TestEnv, name: &str, rng: &mut StdRng) -> std::path::PathBuf {
    let path = env.path(name);
    let conn = Connection::open(&path).unwrap();
    for t in 0..6 {
        let table = format!("t{t}");
        let mut sql = b"CREATE TABLE".to_vec();
        sql.extend(gap(rng));
        sql.extend_from_slice(table.as_bytes());
        sql.extend(gap(rng));
        sql.push(b'(');
        let ncols = rng.random_range(1..4);
        let mut first = String::from("go");
        let strict = rng.random_bool(0.3);
        for c in 0..ncols {
            sql.extend(gap(rng));
            if c == 0 && rng.random_bool(0.3) {
                // A column the shell would take for `;` (SQL Server's terminator).
                sql.extend_from_slice(b"\ngo\n");
            } else {
                let name = ident(rng, "c", c);
                sql.extend_from_slice(name.as_bytes());
                if c == 0 {
                    first = name;
                }
            }
            sql.extend(gap(rng));
            if strict {
                sql.extend_from_slice(b"ANY ");
            }
            if rng.random_bool(0.5) {
                sql.extend_from_slice(b"DEFAULT ");
                sql.extend(string_literal(rng));
            }
            if rng.random_bool(0.3) {
                // `/` alone on a line: Oracle's terminator to the shell, a division to SQLite.
                sql.extend_from_slice(b" CHECK (100\n/\n2 > 1)");
            }
            if c + 1 < ncols {
                sql.push(b',');
            }
        }
        sql.extend(gap(rng));
        sql.push(b')');
        if strict {
            sql.extend(gap(rng));
            sql.extend_from_slice(b"STRICT");
        }
        sql.extend_from_slice(tail(rng));
        if exec_bytes(&conn, &sql).is_err() {
            continue;
        }
        let _ = exec_bytes(
            &conn,
            format!("INSERT INTO {table} DEFAULT VALUES").as_bytes(),
        );
        let mut idx = format!("CREATE INDEX i{t} ON {table}(").into_bytes();
        idx.extend(gap(rng));
        idx.extend_from_slice(first.as_bytes());
        idx.push(b')');
        idx.extend_from_slice(tail(rng));
        let _ = exec_bytes(&conn, &idx);
        let mut view = format!("CREATE VIEW v{t} AS SELECT").into_bytes();
        view.extend(gap(rng));
        view.extend(string_literal(rng));
        view.extend(gap(rng));
        view.extend_from_slice(b"AS s,");
        view.extend(gap(rng));
        view.extend_from_slice(b"4");
        view.extend(gap(rng));
        view.extend_from_slice(b"\n/\n2 AS q, ");
        view.extend_from_slice(table.as_bytes());
        view.extend_from_slice(b"\n.rowid AS r FROM ");
        view.extend_from_slice(table.as_bytes());
        view.extend_from_slice(tail(rng));
        let _ = exec_bytes(&conn, &view);
        let mut trig = format!("CREATE TRIGGER g{t} AFTER INSERT ON {table} BEGIN").into_bytes();
        trig.extend(gap(rng));
        trig.extend_from_slice(b"SELECT 1;");
        trig.extend(gap(rng));
        trig.extend_from_slice(b"END");
        trig.extend_from_slice(tail(rng));
        let _ = exec_bytes(&conn, &trig);
    }
    drop(conn);
    path
}

/// Values of every storage class into columns of every affinity.
fn values_db(env: &TestEnv, name: &str, encoding: &str, rng: &mut StdRng) -> std::path::PathBuf {
    let path = env.path(name);
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA encoding='{encoding}';
         CREATE TABLE v(i INTEGER, r REAL, n NUMERIC, t TEXT, b BLOB, a);"
    ))
    .unwrap();
    let le = encoding != "UTF-16be";
    for _ in 0..120 {
        let mut params: Vec<rusqlite::types::Value> = Vec::new();
        let mut slots: Vec<String> = Vec::new();
        for n in 1..=6 {
            let (value, text) = random_value(rng);
            params.push(value);
            slots.push(if text {
                format!("CAST(?{n} AS TEXT)")
            } else {
                format!("?{n}")
            });
        }
        conn.execute(
            &format!("INSERT INTO v VALUES ({})", slots.join(", ")),
            rusqlite::params_from_iter(params),
        )
        .unwrap();
        if encoding != "UTF-8" {
            // Code units that UTF-8 cannot carry, as stored text.
            let units: Vec<u16> = (0..rng.random_range(1..5))
                .map(|_| match rng.random_range(0..5) {
                    0 => 0xd800 + rng.random_range(0..0x400),
                    1 => 0xdc00 + rng.random_range(0..0x400),
                    2 => 0xfffe,
                    3 => 0xffff,
                    _ => rng.random_range(0..0xd800),
                })
                .collect();
            let bytes: Vec<u8> = units
                .iter()
                .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
                .collect();
            conn.execute(
                "INSERT INTO v(t, a) VALUES (CAST(?1 AS TEXT), CAST(?1 AS TEXT))",
                [bytes],
            )
            .unwrap();
        }
    }
    drop(conn);
    path
}

/// A value, and whether its bytes are to be stored as TEXT (any bytes, invalid UTF-8 included).
fn random_value(rng: &mut StdRng) -> (rusqlite::types::Value, bool) {
    use rusqlite::types::Value;
    let value = match rng.random_range(0..5) {
        0 => Value::Null,
        1 => Value::Integer(match rng.random_range(0..3) {
            0 => i64::MIN,
            1 => i64::MAX,
            _ => rng.random(),
        }),
        2 => Value::Real(match rng.random_range(0..4) {
            0 => -0.0,
            1 => f64::from_bits(rng.random_range(1..1 << 52)),
            2 => f64::from_bits(
                rng.random::<u64>() & !(0x7ff << 52) | (rng.random_range(1..0x7ff) << 52),
            ),
            _ => rng.random::<f64>() * 1e6,
        }),
        3 => {
            let pieces: &[&[u8]] = &[
                b"x",
                b"\0",
                b"\r",
                b"\r\n",
                b"\ngo\n",
                b"\n/\n",
                b"\n.exit\n",
                b"'",
                b"\xff",
                b"12",
                b"3.5",
                b" ",
                b"\xc3\xa9",
            ];
            let mut t = Vec::new();
            for _ in 0..rng.random_range(0..6) {
                t.extend_from_slice(pieces[rng.random_range(0..pieces.len())]);
            }
            return (Value::Blob(t), true);
        }
        _ => Value::Blob((0..rng.random_range(0..8)).map(|_| rng.random()).collect()),
    };
    (value, false)
}

/// The round trip; returns the dump.
fn check(env: &TestEnv, db: &std::path::Path, seed: u64) -> Vec<u8> {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (dump, restored) = assert_roundtrip(env, db);
        assert_same_dump(&dump, &dump_stdout(env, &restored), "fixed point");
        dump
    }));
    match result {
        Ok(dump) => dump,
        Err(e) => {
            eprintln!("seed {seed}: {}", db.display());
            std::panic::resume_unwind(e);
        }
    }
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[test]
fn adversarial_schema_text() {
    let (mut objects, mut fixups) = (0, 0);
    for case in 0..cases() {
        let env = TestEnv::new();
        let seed = 0x5eed_0000 + case;
        let mut rng = StdRng::seed_from_u64(seed);
        let db = schema_db(&env, "schema.db", &mut rng);
        let dump = check(&env, &db, seed);
        // The generator must reach both ways of writing schema text.
        objects += count(&dump, b"CREATE ");
        fixups += count(&dump, b"PRAGMA writable_schema=RESET");
    }
    assert!(
        objects > 15 * cases() as usize && fixups > 4 * cases() as usize,
        "the generator made too few objects ({objects}) or fix-ups ({fixups})"
    );
}

#[test]
fn adversarial_values_in_every_encoding() {
    for case in 0..cases() {
        for encoding in ["UTF-8", "UTF-16le", "UTF-16be"] {
            let env = TestEnv::new();
            let seed = 0xbad_0000 + case;
            let mut rng = StdRng::seed_from_u64(seed);
            let db = values_db(&env, "values.db", encoding, &mut rng);
            check(&env, &db, seed);
        }
    }
}
