//! Table names as SQLite tells them apart: case is folded in ASCII letters only, so "é" and "É"
//! are two tables to `diff --table` and `history`, as they are to SQLite.

use super::repo::Repo;

#[test]
fn table_names_fold_case_in_ascii_only() {
    let mut r = Repo::new("CREATE TABLE \"é\"(a); CREATE TABLE \"É\"(a); CREATE TABLE Tx(a);");
    r.change(
        "INSERT INTO \"é\" VALUES (1); INSERT INTO \"É\" VALUES (2); INSERT INTO Tx VALUES (3);",
    );
    let out = r
        .run(&["diff", "HEAD~1", "HEAD", "--table", "é"])
        .code_is(1)
        .stdout_str();
    assert!(
        out.contains("table \"é\"") && !out.contains("\"É\""),
        "{out}"
    );
    let out = r
        .run(&["diff", "HEAD~1", "HEAD", "--table", "É"])
        .code_is(1)
        .stdout_str();
    assert!(
        out.contains("table \"É\"") && !out.contains("\"é\""),
        "{out}"
    );
    // ASCII letters still fold, as in SQLite.
    let out = r
        .run(&["diff", "HEAD~1", "HEAD", "--table", "tX"])
        .code_is(1)
        .stdout_str();
    assert!(out.contains("table Tx"), "{out}");
    let out = r.run(&["history", "É", "1"]).success().stdout_str();
    assert!(out.contains("a=2") && !out.contains("a=1"), "{out}");
}
