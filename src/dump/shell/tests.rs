//! Unit tests of how the `sqlite3` shell reads a script (`shell.rs`), in their own file so that the
//! code stays short enough to read whole.

use super::*;

fn exact(kind: ObjectKind, sql: &str) -> bool {
    reads_back_exactly(kind, sql.as_bytes())
}

#[test]
fn ordinary_text_is_written_as_is() {
    assert!(exact(ObjectKind::Table, "CREATE TABLE t(a, b TEXT)"));
    assert!(exact(
        ObjectKind::Table,
        "CREATE TABLE t(\n  a INTEGER, -- the a\n  b /* bee */ TEXT\n)"
    ));
    assert!(exact(
        ObjectKind::Table,
        "CREATE TABLE t(a PRIMARY KEY) WITHOUT ROWID"
    ));
    assert!(exact(ObjectKind::Index, "CREATE UNIQUE INDEX i ON t(a)"));
    assert!(exact(ObjectKind::View, "CREATE VIEW v as select 1"));
    assert!(exact(
        ObjectKind::Trigger,
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  SELECT 1;\n  SELECT 2;\nEND"
    ));
}

#[test]
fn text_with_a_semicolon_is_not_stored_as_typed() {
    assert!(!exact(ObjectKind::Table, "CREATE TABLE t(a,b);"));
    assert!(!exact(ObjectKind::Table, "CREATE TABLE t(a) STRICT ; -- x"));
    assert!(!exact(ObjectKind::Index, "CREATE INDEX i ON t(b);"));
    assert!(!exact(ObjectKind::View, "CREATE VIEW v AS SELECT 1; junk"));
    assert!(exact(ObjectKind::View, "CREATE VIEW v AS SELECT ';' AS x"));
    let mut out = Vec::new();
    write_object(&mut out, ObjectKind::Table, "t", b"CREATE TABLE t(a); junk");
    assert!(
        out.starts_with(
            b"CREATE TABLE t(a);\n.dbconfig defensive off\nPRAGMA writable_schema=ON;\n"
        )
    );
}

#[test]
fn text_the_shell_would_misread_is_not() {
    assert!(!exact(
        ObjectKind::View,
        "CREATE VIEW v AS SELECT 1 -- note"
    ));
    assert!(!exact(
        ObjectKind::View,
        "CREATE VIEW v AS SELECT 1 /* note"
    ));
    assert!(!exact(
        ObjectKind::Table,
        "CREATE TABLE t(a DEFAULT 'x\r\ny')"
    ));
    assert!(!exact(ObjectKind::Table, "CREATE TABLE t(\na,\ngo\n)"));
    assert!(!exact(
        ObjectKind::Table,
        "CREATE TABLE t(\na,\n  GO -- x\n)"
    ));
    assert!(!exact(ObjectKind::View, "CREATE VIEW v AS SELECT 4\n/\n2"));
    assert!(exact(ObjectKind::View, "CREATE VIEW v AS SELECT 'a\ngo\n'"));
    assert!(!exact(ObjectKind::Table, "CREATE TABLE t(a) -- c"));
    assert!(!exact(ObjectKind::Table, "CREATE TABLE IF NOT EXISTS t(a)"));
    assert!(!exact(ObjectKind::Table, "CREATE TABLE  t(a)"));
    assert!(!exact(ObjectKind::Table, "CREATE TABLE main.t(a)"));
    // SQLite stores a view as `CREATE VIEW ` and the text from its name on.
    assert!(!exact(ObjectKind::View, "create view v as select 1"));
    assert!(!exact(
        ObjectKind::View,
        "CREATE VIEW IF NOT EXISTS v AS SELECT 2"
    ));
    assert!(!exact(ObjectKind::View, "CREATE TEMP VIEW v AS SELECT 2"));
    assert!(!exact(ObjectKind::View, "CREATE VIEW main.v AS SELECT 2"));
    assert!(!exact(
        ObjectKind::Trigger,
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END -- x"
    ));
}

#[test]
fn rowid_tokens_are_renamed_not_strings() {
    assert_eq!(
        rename_rowid_tokens(
            b"CREATE TABLE t(\"RowId\" CHECK(rowid<>'rowid'), [rowid], `rowid`, rowids, oid)",
            "tmp"
        ),
        b"CREATE TABLE t(\"tmp\" CHECK(tmp<>'rowid'), [tmp], `tmp`, rowids, oid)".to_vec()
    );
    // A table named `rowid` keeps its name, however it is quoted.
    for name in ["rowid", "\"rowid\"", "[RowId]", "main.rowid"] {
        let sql = format!("CREATE TABLE {name} (rowid, oid, _rowid_)");
        let want = format!("CREATE TABLE {name} (tmp, oid, _rowid_)");
        assert_eq!(
            rename_rowid_tokens(sql.as_bytes(), "tmp"),
            want.into_bytes()
        );
    }
}

#[test]
fn one_line_drops_comments_and_line_ends() {
    assert_eq!(
        one_line(b"CREATE TABLE t(\r\n a -- x ;\n , b /* y */ DEFAULT 'p\nq'\n)/* z"),
        b"CREATE TABLE t( a , b DEFAULT 'p\nq' )".to_vec()
    );
    assert_eq!(one_line(b"SELECT 1-/**/-1"), b"SELECT 1- -1".to_vec());
}

#[test]
fn cr_lf_in_names_survives_the_shell() {
    let line = one_line(b"CREATE TABLE \"a\r\nb\"(x)");
    assert_eq!(line, b"CREATE TABLE \"a\r\r\nb\"(x)".to_vec());
    assert_eq!(&*shell_line_ends(&line), b"CREATE TABLE \"a\r\nb\"(x)");
}

#[test]
fn quickscan_follows_quotes_and_comments() {
    assert!(semi_term(quickscan(b"SELECT 1;", 0)));
    assert!(!in_plain(quickscan(b"SELECT 'a", 0)));
    assert!(in_plain(quickscan(b"SELECT 'a''b' -- '", 0)));
    assert!(!in_plain(quickscan(b"SELECT /* x", 0)));
    assert!(is_terminator_line(b"  go  "));
    assert!(is_terminator_line(b"/ -- x"));
    assert!(!is_terminator_line(b"good"));
}

#[test]
fn index_mentions_splits_the_key_list_from_the_where() {
    let sql =
        b"CREATE UNIQUE INDEX \"i(\" ON \"t(\"(pw, lower(\"PW\")) WHERE (active AND pw <> '')";
    assert_eq!(index_mentions(sql, "pw"), Some((2, 1)));
    assert_eq!(index_mentions(sql, "active"), Some((0, 1)));
    let plain = b"CREATE INDEX i ON t(pw) WHERE id > 0";
    assert_eq!(index_mentions(plain, "pw"), Some((1, 0)));
    assert_eq!(index_mentions(b"CREATE INDEX i", "pw"), None);
}
