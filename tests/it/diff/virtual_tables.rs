//! `diff --table` and `history` naming a virtual table (FTS5, R*Tree), whose rows are not in
//! its own folder but in its shadow tables (`f_content`, `f_data`, …, `r_node`, …): `--table`
//! covers them in every output mode, with exit 1 when they changed, and `history` says where
//! the rows are instead of blaming column names the table does not have.

use serde_json::Value;

use super::repo::Repo;

fn fts_and_rtree() -> Repo {
    let mut r = Repo::new(
        "CREATE VIRTUAL TABLE f USING fts5(title, body);
         INSERT INTO f VALUES ('a', 'hello world'), ('b', 'foo bar');
         CREATE VIRTUAL TABLE r USING rtree(id, x0, x1); INSERT INTO r VALUES (1, 0, 1);
         CREATE TABLE f_notes(x); INSERT INTO f_notes VALUES (1);",
    );
    r.change(
        "INSERT INTO f VALUES ('c', 'new text'); DELETE FROM f WHERE title = 'a';
         UPDATE f SET body = 'changed' WHERE title = 'b'; INSERT INTO r VALUES (2, 5, 6);
         UPDATE f_notes SET x = 2;",
    );
    r
}

fn json_names(doc: &Value) -> Vec<String> {
    let tables = doc["tables"].as_array().unwrap();
    tables
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn diff_table_of_a_virtual_table_covers_its_shadow_tables() {
    let r = fts_and_rtree();
    let diff = |extra: &[&str], code: i32| {
        let mut args = vec!["diff", "HEAD~1", "HEAD"];
        args.extend(extra);
        r.run(&args).code_is(code)
    };
    let rows = diff(&["--table", "f"], 1).stdout_str();
    assert!(
        rows.contains("table f_content: 1 inserted, 1 updated, 1 deleted\n")
            && rows.contains("  ~ id=2  c1: 'foo bar' → 'changed'\n")
            && rows.contains("table f_data: "),
        "{rows}"
    );
    // Its shadow tables only: not r's, and not a table of the user's named like one.
    assert!(
        !rows.contains("f_notes") && !rows.contains("r_node"),
        "{rows}"
    );
    let summary = diff(&["--table", "F", "--summary"], 1).stdout_str();
    assert!(summary.starts_with("f_content: 1 inserted"), "{summary}");
    let doc: Value = serde_json::from_slice(diff(&["--table", "r", "--json"], 1).stdout()).unwrap();
    let mut names = json_names(&doc);
    names.sort();
    assert_eq!(names, ["r_node", "r_rowid"], "{doc:#}");
    let patch = diff(&["--table", "f", "--sql"], 1).stdout_str();
    assert!(patch.contains("\"f_content\""), "{patch}");
    // A table that is in neither snapshot is an error, not "no differences".
    let missing = diff(&["--table", "nosuch"], 2);
    assert!(
        missing.stdout().is_empty() && missing.stderr_str().contains("no table \"nosuch\""),
        "{}",
        missing.stderr_str()
    );
    // A virtual table whose rows did not change: no differences.
    let mut r = r;
    r.change("UPDATE f_notes SET x = 3;");
    r.run(&["diff", "HEAD~1", "HEAD", "--table", "f"])
        .code_is(0)
        .assert_quiet();
}

#[test]
fn history_of_a_virtual_table_names_its_shadow_tables() {
    let r = fts_and_rtree();
    let refused = r.run(&["history", "f", "2"]).code_is(2);
    let err = refused.stderr_str();
    assert!(
        err.contains("table f is a virtual table")
            && err.contains("shadow tables (f_config, f_content, f_data, f_docsize, f_idx)")
            && err.contains("sqlgit history f_content 2")
            && !err.contains("column names")
            && err.trim_end().lines().count() == 1,
        "{err}"
    );
    let err = r.run(&["history", "r", "1"]).code_is(2).stderr_str();
    assert!(err.contains("table r is a virtual table"), "{err}");
    // The shadow table it names answers.
    let h = r.run(&["history", "f_content", "2"]).success().stdout_str();
    assert!(h.contains("c1: 'foo bar' → 'changed'"), "{h}");
}
