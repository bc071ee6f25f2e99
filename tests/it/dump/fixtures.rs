//! Every fixture database of `fixtures/` round-trips exactly: dumped, restored with the `sqlite3`
//! CLI and compared value by value; virtual tables restore and pass their own checks.

use super::fixture_roundtrip;
use rusqlite::Connection;

#[test]
fn types() {
    fixture_roundtrip("types");
}
#[test]
fn floats() {
    fixture_roundtrip("floats");
}
#[test]
fn text() {
    fixture_roundtrip("text");
}
#[test]
fn rowids() {
    fixture_roundtrip("rowids");
}
#[test]
fn schema() {
    fixture_roundtrip("schema");
}
#[test]
fn identifiers() {
    fixture_roundtrip("identifiers");
}
#[test]
fn utf16() {
    fixture_roundtrip("utf16");
}
#[test]
fn utf16_nul() {
    fixture_roundtrip("utf16_nul");
}
#[test]
fn utf16be() {
    fixture_roundtrip("utf16be");
}
#[test]
fn demo() {
    fixture_roundtrip("demo");
}

/// FTS5 and R*Tree content comes back, and so do their query results.
#[test]
fn virtual_tables() {
    let (_env, db, restored) = fixture_roundtrip("virtual");
    let queries = [
        "SELECT rowid, title FROM docs WHERE docs MATCH 'sqlite' ORDER BY rowid",
        "SELECT rowid, title FROM docs WHERE docs MATCH 'word3 AND alpha2' ORDER BY rank, rowid",
        "SELECT rowid, highlight(docs, 1, '[', ']') FROM docs WHERE docs MATCH 'NUL OR Köln' ORDER BY rowid",
        "SELECT rowid FROM articles_fts WHERE articles_fts MATCH 'quick' ORDER BY rowid",
        "SELECT rowid FROM tri WHERE s LIKE '%ump%'",
        "SELECT id FROM geo WHERE min_x <= 100 AND max_x >= 90 AND min_y <= -60 ORDER BY id",
        "SELECT id, label FROM geo_i32 WHERE x0 <= 5 AND x1 >= 5 ORDER BY id",
    ];
    let (a, b) = (
        Connection::open(&db).unwrap(),
        Connection::open(&restored).unwrap(),
    );
    for q in queries {
        let run = |c: &Connection| -> Vec<String> {
            let mut st = c.prepare(q).unwrap_or_else(|e| panic!("{q}: {e}"));
            let n = st.column_count();
            st.query_map([], |r| {
                Ok((0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
        };
        let (ra, rb) = (run(&a), run(&b));
        assert!(!ra.is_empty(), "query returns nothing on the source: {q}");
        assert_eq!(ra, rb, "query results differ after restore: {q}");
    }
    for fts in ["docs", "articles_fts", "tri"] {
        b.execute(
            &format!("INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)"),
            [],
        )
        .unwrap_or_else(|e| panic!("fts5 integrity-check of {fts} on the restored database: {e}"));
    }
    let rtree: String = b
        .query_row("SELECT rtreecheck('geo')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rtree, "ok", "rtreecheck on the restored database");
}
