use super::*;

fn shape(sql: &str) -> Shape {
    analyze(format!("{sql};\n").as_bytes()).unwrap()
}

#[test]
fn keys() {
    let s = shape("CREATE TABLE t(id INTEGER PRIMARY KEY, a)");
    assert_eq!(
        s.key,
        KeyKind::Rowid {
            pos: 0,
            column: "\"id\"".into()
        }
    );
    assert_eq!(s.prefix, b"INSERT INTO \"t\" VALUES(");
    let s = shape("CREATE TABLE t(a TEXT PRIMARY KEY, rowid)");
    assert_eq!(
        s.key,
        KeyKind::Rowid {
            pos: 0,
            column: "_rowid_".into()
        }
    );
    assert_eq!(s.columns, ["_rowid_", "a", "rowid"]);
    let s = shape("CREATE TABLE t(a, b, c, PRIMARY KEY(c, a)) WITHOUT ROWID");
    assert_eq!(s.key, KeyKind::Columns(vec![2, 0]));
    let s = shape("CREATE TABLE t(rowid, oid, _rowid_)");
    assert_eq!(s.key, KeyKind::Multiset);
    let s = shape("CREATE TABLE t(a, b AS (a+1), c)");
    assert_eq!(s.columns, ["rowid", "a", "c"]);
}

#[test]
fn virtual_tables() {
    let file = b"PRAGMA writable_schema=ON;\nINSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql) VALUES('table','f''t','f''t',0,'CREATE VIRTUAL TABLE \"f''t\" USING fts5(x)');\nPRAGMA writable_schema=OFF;\n";
    let s = analyze(file).unwrap();
    assert_eq!(s.name, "f't");
    assert_eq!(s.sql, "CREATE VIRTUAL TABLE \"f't\" USING fts5(x)");
    assert!(s.virtual_table);
}

#[test]
fn alignment() {
    let a = shape("CREATE TABLE t(a, b, c)");
    let b = shape("CREATE TABLE t(id INTEGER PRIMARY KEY, a, x, c, d)");
    let al = align(Some(&a), Some(&b));
    // By name: b removed, x and d added, the rowid is id's.
    assert_eq!(al.names, ["id", "a", "x", "c", "d", "b"]);
    assert_eq!(al.from, [None, Some(1), None, Some(3), None, Some(2)]);
    assert_eq!(al.one_sided(), (vec!["id", "x", "d"], vec!["b"]));
    let n = shape("CREATE TABLE t(a, c)");
    let al = align(Some(&a), Some(&n));
    assert_eq!(al.names, ["rowid", "a", "c", "b"]);
    assert_eq!(al.from, [Some(0), Some(1), Some(3), Some(2)]);
    assert_eq!(al.to, [Some(0), Some(1), Some(2), None]);
    assert_eq!(al.matching(&a, &b), Matching::Rowid { from: 0, to: 0 });
    // An INTEGER PRIMARY KEY made of a column: the same column.
    let k = shape("CREATE TABLE t(k, v)");
    let ipk = shape("CREATE TABLE t(k INTEGER PRIMARY KEY, v)");
    for (x, y) in [(&k, &ipk), (&ipk, &k)] {
        let al = align(Some(x), Some(y));
        assert_eq!(al.one_sided(), (vec![], vec![]), "{:?}", al.names);
    }
    // The value that is the rowid never pairs with a column of that name.
    let r = shape("CREATE TABLE t(a, rowid)");
    let al = align(Some(&a), Some(&r));
    assert_eq!(al.one_sided(), (vec!["rowid"], vec!["b", "c"]));
}
