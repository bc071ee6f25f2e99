use super::*;
use rusqlite::Connection;
use rusqlite::types::Value;

const TYPES: [(&str, Affinity); 9] = [
    ("INTEGER", Affinity::Integer),
    ("NUMERIC", Affinity::Numeric),
    ("REAL", Affinity::Real),
    ("TEXT", Affinity::Text),
    ("BLOB", Affinity::Blob),
    ("", Affinity::Blob),
    ("VARCHAR(10)", Affinity::Text),
    ("DOUBLE PRECISION", Affinity::Real),
    ("DECIMAL(5,2)", Affinity::Numeric),
];

fn texts() -> Vec<String> {
    let mut out: Vec<String> = [
        "12",
        "3.0",
        "-7",
        "+7",
        " 12",
        "12 ",
        "\t1\n",
        "1.",
        ".5",
        ".",
        "-",
        "+",
        "",
        " ",
        "1e5",
        "1E+5",
        "1e-5",
        "1e",
        "1e+",
        "e5",
        "1.5e3",
        "0x10",
        "1_000",
        "١٢",
        "inf",
        "nan",
        "NaN",
        "1e999",
        "-1e999",
        "99999999999999999999",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "00012",
        "1.2.3",
        "1 2",
        "--1",
        "+-1",
        "12abc",
        "abc",
        "1\u{b}",
        "\u{c}1",
        "1\r",
        "٠",
        "１２",
        "1.0e0",
        "0.0",
        "-0",
        "-0.0",
        "4.9e-324",
        "1e-400",
        "123456789012345678901234567890.5",
        "1 e5",
        "1e 5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Random mixes of the characters that matter.
    let alphabet = b"0123456789.eE+- x\t";
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..3000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 7) as usize;
        let s: String = (0..len)
            .map(|k| alphabet[((seed >> (8 + 5 * k)) % alphabet.len() as u64) as usize] as char)
            .collect();
        out.push(s);
    }
    out
}

fn reals() -> Vec<f64> {
    vec![
        3.0,
        -0.0,
        0.0,
        0.5,
        -2.5,
        1e15,
        1e18,
        9.2e18,
        9_223_372_036_854_774_784.0,
        9_223_372_036_854_775_808.0,
        -9_223_372_036_854_775_808.0,
        -9_223_372_036_854_774_784.0,
        1e19,
        -1e19,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        4.9e-324,
        123456.0,
        123456.789,
        f64::MAX,
    ]
}

/// What SQLite stores: insert into a column declared `decl`, read back typeof.
fn stored_class(conn: &Connection, decl: &str, v: &Value) -> String {
    class(&stored(conn, decl, v)).to_string()
}

/// The value SQLite stores: insert into a column declared `decl`, read it back.
fn stored(conn: &Connection, decl: &str, v: &Value) -> Value {
    conn.execute_batch(&format!("DROP TABLE IF EXISTS t; CREATE TABLE t(c {decl})"))
        .unwrap();
    conn.execute("INSERT INTO t VALUES (?1)", [v]).unwrap();
    conn.query_row("SELECT c FROM t", [], |r| r.get(0)).unwrap()
}

/// Whether two values are the same, a REAL bit for bit (the sign of zero counts).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Real(x), Value::Real(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

fn class(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Integer(_) => "integer",
        Value::Real(_) => "real",
        Value::Text(_) => "text",
        Value::Blob(_) => "blob",
    }
}

fn cell(v: &Value) -> Cell<'_> {
    match v {
        Value::Null => Cell::Null,
        Value::Integer(i) => Cell::Integer(*i),
        Value::Real(r) => Cell::Real(*r),
        Value::Text(t) => Cell::Text(t.as_bytes()),
        Value::Blob(b) => Cell::Blob(b),
    }
}

fn values() -> Vec<Value> {
    let mut values: Vec<Value> = texts().into_iter().map(Value::Text).collect();
    values.extend(reals().into_iter().map(Value::Real));
    values.extend([i64::MIN, -1, 0, 12, i64::MAX].map(Value::Integer));
    values.extend([Value::Null, Value::Blob(b"12".to_vec())]);
    values
}

#[test]
fn declared_types_get_sqlites_affinity() {
    for (decl, want) in TYPES {
        assert_eq!(Affinity::of_declared(decl, false), want, "{decl}");
    }
    for (decl, want) in [
        ("CHARINT", Affinity::Integer),
        ("BLOBTEXT", Affinity::Text),
        ("REALBLOB", Affinity::Blob),
        ("FLOATING POINT", Affinity::Integer),
        ("STRING", Affinity::Numeric),
        ("ANY", Affinity::Numeric),
    ] {
        assert_eq!(Affinity::of_declared(decl, false), want, "{decl}");
    }
    assert_eq!(Affinity::of_declared("ANY", true), Affinity::Blob);
}

/// The classifier against the bundled SQLite: for every value and column type, "converts" is
/// exactly "an INSERT stores something else" (another storage class, or another REAL: -0.0).
#[test]
fn converts_exactly_what_the_bundled_sqlite_converts() {
    let conn = Connection::open_in_memory().unwrap();
    let mut checked = 0;
    for (decl, affinity) in TYPES {
        for v in values() {
            let stored = stored(&conn, decl, &v);
            assert_eq!(
                affinity.converts(&cell(&v)),
                !same(&stored, &v),
                "{v:?} in a {decl} column is stored as {stored:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 9 * 3000);
}

/// Text holding a NUL byte: the bundled SQLite (3.54) reads a number up to it and stores that
/// (3.40 keeps the text): what `restore --to/--into` bind is classified by the bundled rule.
#[test]
fn text_with_a_nul_converts_as_the_bundled_sqlite_does() {
    let conn = Connection::open_in_memory().unwrap();
    let texts = [
        "1\u{0}2", "1\u{0}x", " 1\u{0}", "\u{0}1", "1.5\u{0}", "1e\u{0}5", "x\u{0}1", "\u{0}",
    ];
    for (decl, affinity) in TYPES {
        for t in texts {
            let v = Value::Text(t.to_string());
            let stored = stored_class(&conn, decl, &v);
            assert_eq!(
                affinity.converts_when_bound(&cell(&v)),
                stored != "text",
                "{t:?} in a {decl} column is stored as {stored}"
            );
        }
    }
}

/// The same in a UTF-16 database (text read as stored code units).
#[test]
fn utf16_text_is_classified_like_utf8() {
    for t in texts() {
        let units: Vec<u8> = t.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let be: Vec<u8> = t.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        let want = text_is_numeric(t.as_bytes());
        for (bytes, big_endian) in [(&units, false), (&be, true)] {
            let cell = Cell::Text16 { bytes, big_endian };
            assert_eq!(Affinity::Integer.converts(&cell), want, "{t:?}");
        }
    }
}

/// The same against the `sqlite3` CLI that restores run (3.40 here), when there is one.
#[test]
fn converts_exactly_what_the_sqlite3_cli_converts() {
    let Ok(out) = std::process::Command::new("sqlite3")
        .arg(":memory:")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    else {
        return;
    };
    let texts = texts();
    let mut sql = String::from("CREATE TABLE t(i INTEGER, n NUMERIC, r REAL);\n");
    for t in &texts {
        let q = t.replace('\'', "''");
        sql.push_str(&format!("INSERT INTO t VALUES('{q}','{q}','{q}');\n"));
    }
    sql.push_str("SELECT typeof(i)||typeof(n)||typeof(r) FROM t ORDER BY rowid;\n");
    let mut child = out;
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), texts.len());
    for (t, line) in texts.iter().zip(lines) {
        let converted = line != "texttexttext";
        assert_eq!(text_is_numeric(t.as_bytes()), converted, "{t:?}: {line}");
    }
}

#[test]
fn a_warning_names_the_column_and_the_fix() {
    let found = Converted::default();
    found.note(1, &Cell::Text(b"12"));
    found.note(1, &Cell::Text(b"13"));
    let lines = found.lines(
        "t1",
        &["x".into(), "a".into()],
        &[Affinity::Blob, Affinity::Integer],
    );
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("table \"t1\" column \"a\": 2 values (e.g. TEXT '12')"));
    assert!(lines[0].contains("INTEGER affinity"));
    assert!(lines[0].ends_with("UPDATE \"t1\" SET \"a\" = \"a\""));
}

/// The statement the warning names, `UPDATE "t" SET "c" = "c"`, stores every value as an
/// INSERT would (bundled SQLite; the integration tests run it with the sqlite3 CLI too).
#[test]
fn the_named_update_makes_values_consistent() {
    let conn = Connection::open_in_memory().unwrap();
    for (decl, _) in TYPES {
        for v in values().into_iter().step_by(7) {
            let want = stored_class(&conn, decl, &v);
            conn.execute_batch("DROP TABLE t; CREATE TABLE t(c BLOB)")
                .unwrap();
            conn.execute("INSERT INTO t VALUES (?1)", [&v]).unwrap();
            let sql = format!("CREATE TABLE t(c {decl})").replace('\'', "''");
            conn.execute_batch(&format!(
                "PRAGMA writable_schema=ON; UPDATE sqlite_schema SET sql='{sql}' WHERE name='t'; \
                 PRAGMA writable_schema=RESET; UPDATE \"t\" SET \"c\" = \"c\";"
            ))
            .unwrap();
            let got: String = conn
                .query_row("SELECT typeof(c) FROM t", [], |r| r.get(0))
                .unwrap();
            assert_eq!(got, want, "{v:?} in a {decl} column");
        }
    }
}

/// REALs and INTEGERs, written as the dump writes them, against the `sqlite3` CLI (3.40 here):
/// "converts" is exactly "the CLI stores another class or another REAL" (-0.0 in a REAL column).
#[test]
fn numbers_convert_as_the_sqlite3_cli_stores_them() {
    let mut numbers: Vec<Value> = reals().into_iter().map(Value::Real).collect();
    numbers.extend([i64::MIN, -1, 0, 12, i64::MAX].map(Value::Integer));
    let decls = ["INTEGER", "NUMERIC", "REAL", "TEXT", "BLOB"];
    let shown = |c: &str| {
        format!(
            "typeof({c})||':'||CASE typeof({c}) WHEN 'real' THEN hex(ieee754_to_blob({c})) \
             ELSE quote({c}) END"
        )
    };
    let mut sql = String::from("CREATE TABLE t(a INTEGER, b NUMERIC, c REAL, d TEXT, e BLOB);\n");
    for v in &numbers {
        let mut lit = Vec::new();
        write_cell(&mut lit, cell(v));
        let lit = String::from_utf8(lit).unwrap();
        sql.push_str(&format!(
            "INSERT INTO t VALUES({lit},{lit},{lit},{lit},{lit});\n"
        ));
    }
    let cols: Vec<String> = ["a", "b", "c", "d", "e"].iter().map(|c| shown(c)).collect();
    sql.push_str(&format!(
        "SELECT {} FROM t ORDER BY rowid;\n",
        cols.join(",")
    ));
    let Some(text) = run_cli(&sql) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), numbers.len());
    for (v, line) in numbers.iter().zip(lines) {
        let unchanged = match v {
            Value::Real(r) => format!("real:{:016X}", r.to_bits()),
            Value::Integer(i) => format!("integer:{i}"),
            _ => unreachable!(),
        };
        for ((decl, got), (_, affinity)) in decls.iter().zip(line.split('|')).zip(TYPES) {
            assert_eq!(
                affinity.converts(&cell(v)),
                got != unchanged,
                "{v:?} in a {decl} column is stored by the CLI as {got}"
            );
        }
    }
}

/// The `sqlite3` CLI's output for `sql` on a scratch database, when there is one.
fn run_cli(sql: &str) -> Option<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("sqlite3")
        .arg(":memory:")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    Some(String::from_utf8(output.stdout).unwrap())
}
