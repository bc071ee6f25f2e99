//! Schema objects whose order changes what a database does. SQLite fires a table's triggers for
//! one event newest first (by their order in sqlite_schema), and lists a table's indexes, and
//! picks between indexes of equal cost, newest first. Snapshots keep that order: every restore
//! (`cat | sqlite3`, plain git, `restore --to`) fires and plans as the original did; `verify`
//! fails a restore that comes back in another order; an older snapshot (objects by name) still
//! restores as it always did, and `diff` calls the change of order a schema change.

use std::path::{Path, PathBuf};

use crate::env::{TestEnv, compare_databases, sqlite3_bin};
use crate::verify::rewrite_file;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The tester's database: `z_validate` created before `a_notify`, so `a_notify` fires first. A
/// second table with triggers on two events and a view's INSTEAD OF triggers, and two indexes
/// of equal cost created in the other order than their names.
const SCRIPT: &[u8] = b"CREATE TABLE orders(x, y); CREATE TABLE audit(m);
    CREATE TRIGGER z_validate AFTER INSERT ON orders BEGIN INSERT INTO audit VALUES('validate'); END;
    CREATE TABLE items(v);
    CREATE TRIGGER b_items AFTER UPDATE ON items BEGIN INSERT INTO audit VALUES('b_items'); END;
    CREATE TRIGGER a_notify AFTER INSERT ON orders BEGIN INSERT INTO audit VALUES('notify'); END;
    CREATE TRIGGER a_items AFTER UPDATE ON items BEGIN INSERT INTO audit VALUES('a_items'); END;
    CREATE VIEW w AS SELECT v FROM items;
    CREATE TRIGGER z_w INSTEAD OF INSERT ON w BEGIN INSERT INTO audit VALUES('z_w'); END;
    CREATE TRIGGER m_w INSTEAD OF INSERT ON w BEGIN INSERT INTO audit VALUES('m_w'); END;
    CREATE INDEX z_by_x ON orders(x); CREATE INDEX a_by_y ON orders(y);
    CREATE INDEX a_by_x ON orders(x);
    INSERT INTO items VALUES (1);";

/// What the database does: the order its triggers fire in, and the index its planner picks.
fn behaviour(env: &TestEnv, db: &Path) -> String {
    let copy = env.path(format!(
        "{}.fired",
        db.file_name().unwrap().to_string_lossy()
    ));
    std::fs::copy(db, &copy).unwrap();
    let sql = "DELETE FROM audit; INSERT INTO orders VALUES (1, 2); UPDATE items SET v = 2 WHERE rowid = 1;
               INSERT INTO w VALUES (3); SELECT group_concat(m) FROM audit;
               EXPLAIN QUERY PLAN SELECT * FROM orders WHERE x = 1 AND y = 2;";
    env.sqlite3(&copy, sql)
        .success()
        .assert_quiet()
        .stdout_str()
}

fn restores(env: &TestEnv, repo: &Path, tag: &str) -> Vec<PathBuf> {
    let sql = env.sqlgit(&["cat", "--repo", &s(repo)]).success();
    let cli = env.restore(sql.stdout(), &format!("cat-{tag}.db"));
    let mut archive = env.command("sh");
    archive.arg("-c").arg(format!(
        "git --git-dir '{}' archive --format=tar main | tar -xO",
        s(repo)
    ));
    let plain = env.restore(
        env.run(archive, b"").success().stdout(),
        &format!("git-{tag}.db"),
    );
    let to = env.path(format!("to-{tag}.db"));
    env.sqlgit(&["restore", "--repo", &s(repo), "--to", &s(&to)])
        .success();
    vec![cli, plain, to]
}

/// bug4: after a snapshot every restore fired `validate,notify` instead of `notify,validate`,
/// and verify was green.
#[test]
fn triggers_fire_and_indexes_plan_as_created_after_every_restore() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", SCRIPT);
    let want = behaviour(&env, &db);
    assert!(
        want.starts_with("notify,validate,a_items,b_items,m_w,z_w\n") && want.contains("a_by_x"),
        "{want}"
    );
    let repo = env.path("r.sqlgit");
    env.sqlgit(&["snapshot", &s(&db), "--repo", &s(&repo)])
        .success();
    env.sqlgit(&["verify", "--repo", &s(&repo)]).success();
    for restored in restores(&env, &repo, "1") {
        assert_eq!(behaviour(&env, &restored), want, "{}", restored.display());
        compare_databases(&db, &restored);
    }

    // A trigger and an index made again move to the end; an incremental run writes the tree a
    // whole read does.
    env.sqlite3(
        &db,
        "DROP TRIGGER z_validate; CREATE TRIGGER z_validate AFTER INSERT ON orders BEGIN \
         INSERT INTO audit VALUES('validate'); END; DROP INDEX z_by_x; \
         CREATE INDEX z_by_x ON orders(x); INSERT INTO items VALUES (5);",
    )
    .success();
    let want = behaviour(&env, &db);
    assert!(
        want.starts_with("validate,notify,") && want.contains("z_by_x"),
        "{want}"
    );
    let part = crate::incremental::snapshot_json(&env, &db, &repo, &[]);
    assert_eq!(part["read"]["whole"], false, "{part}");
    let full = crate::incremental::snapshot_json(&env, &db, &repo, &["--full"]);
    assert_eq!(
        full["changed"], false,
        "the same tree as a whole read: {full}"
    );
    env.sqlgit(&["verify", "--repo", &s(&repo)]).success();
    for restored in restores(&env, &repo, "2") {
        assert_eq!(behaviour(&env, &restored), want, "{}", restored.display());
        compare_databases(&db, &restored);
    }
    let summary = env
        .sqlgit(&["diff", "HEAD~1", "HEAD", "--repo", &s(&repo), "--summary"])
        .code_is(1)
        .stdout_str();
    assert_eq!(
        summary,
        "items: 1 inserted, 0 updated, 0 deleted\n\
         orders: 0 inserted, 0 updated, 0 deleted; schema changed (order only)\n\
         triggers changed (order only)\n"
    );
}

/// A sqlite3 CLI that restores, then makes trigger `z_validate` again (it fires first then).
fn reordering_cli(env: &TestEnv) -> PathBuf {
    let script = format!(
        "#!/bin/sh\n{real} \"$@\" || exit $?\n\
         [ \"$1\" = -bail ] || exit 0\n\
         for db; do :; done\n\
         exec {real} \"$db\" \"DROP TRIGGER z_validate; CREATE TRIGGER z_validate AFTER INSERT \
         ON orders BEGIN INSERT INTO audit VALUES('validate'); END;\"\n",
        real = sqlite3_bin().display()
    );
    let cli = env.write("reordering-sqlite3", script);
    std::fs::set_permissions(&cli, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    cli
}

/// verify compares the order a restore fires triggers in: a restore that gives back every
/// trigger's text but another order fails it, naming the file.
#[test]
fn verify_fails_a_restore_that_fires_triggers_in_another_order() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", SCRIPT);
    let repo = env.path("r.sqlgit");
    env.sqlgit(&["snapshot", &s(&db), "--repo", &s(&repo)])
        .success();
    let mut verify = env.sqlgit_cmd(&["-q", "verify", "--repo", &s(&repo)]);
    verify.env("SQLGIT_SQLITE3", reordering_cli(&env));
    let err = env.run(verify, b"").code_is(1).stderr_str();
    assert!(
        err.contains("does not dump back to the snapshot") && err.contains("5-triggers.sql"),
        "{err}"
    );
}

/// A snapshot of an older sqlgit lists triggers and indexes by name: it still restores (firing
/// them in name order, as it always did) and verifies; diff against a snapshot taken now says
/// the order changed, no row did, and its patch gives the newer order.
#[test]
fn older_snapshots_by_name_restore_and_diff_as_an_order_change() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", SCRIPT);
    let repo = env.path("r.sqlgit");
    env.sqlgit(&["snapshot", &s(&db), "--repo", &s(&repo)])
        .success();
    let now = env.git_in(&repo, &["rev-parse", "main"]);
    let show = |path: &str| env.git_in(&repo, &["show", &format!("main:{path}")]) + "\n";
    let (triggers, indexes) = (
        show("app.db/5-triggers.sql"),
        show("app.db/1-tables/orders/2-indexes.sql"),
    );
    let by_name = |text: &str| {
        let mut stmts: Vec<String> = text.split_inclusive(";\n").map(String::from).collect();
        // Each CREATE TRIGGER holds a `;\n`-free body here: one statement a line.
        stmts.sort_by_key(|l| l.split(' ').nth(2).unwrap().to_string());
        stmts.concat()
    };
    rewrite_file(
        &env,
        &repo,
        "app.db/5-triggers.sql",
        by_name(&triggers).as_bytes(),
    );
    rewrite_file(
        &env,
        &repo,
        "app.db/1-tables/orders/2-indexes.sql",
        by_name(&indexes).as_bytes(),
    );
    env.sqlgit(&["verify", "--repo", &s(&repo)]).success();
    let old = restores(&env, &repo, "old");
    for restored in &old {
        let got = behaviour(&env, restored);
        assert!(
            got.starts_with("validate,notify,b_items,a_items,z_w,m_w\n") && got.contains("z_by_x"),
            "{}: {got}",
            restored.display()
        );
    }

    let older = env.git_in(&repo, &["rev-parse", "main"]);
    let diff = |args: &[&str]| {
        let mut all = vec!["diff", older.as_str(), now.as_str(), "--repo"];
        let r = s(&repo);
        all.push(&r);
        all.extend(args);
        env.sqlgit(&all).code_is(1).stdout().to_vec()
    };
    assert_eq!(
        String::from_utf8_lossy(&diff(&["--summary"])),
        "orders: 0 inserted, 0 updated, 0 deleted; schema changed (order only)\n\
         triggers changed (order only)\n"
    );
    let json: serde_json::Value = serde_json::from_slice(&diff(&["--json"])).unwrap();
    assert_eq!(json["triggers_changed"], true, "{json}");
    assert_eq!(json["tables"][0]["inserted"], 0, "{json}");
    let patch = diff(&["--sql"]);
    let patched = &old[0];
    env.sqlite3_args(&["-bail"], patched, &patch)
        .success()
        .assert_quiet();
    assert_eq!(behaviour(&env, patched), behaviour(&env, &db));
    compare_databases(&db, patched);
}

/// Triggers of different tables keep no order between them (none changes what a table does):
/// an older snapshot whose tables' triggers each came by name in the order they were created
/// holds the same database as one taken now, for `diff`.
#[test]
fn an_older_snapshot_in_the_same_order_per_table_is_no_change() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE b(x); CREATE TABLE a(x);
          CREATE TRIGGER b_a1 AFTER INSERT ON a BEGIN SELECT 1; END;
          CREATE TRIGGER a_b1 AFTER INSERT ON b BEGIN SELECT 1; END;
          CREATE TRIGGER c_b2 AFTER INSERT ON b BEGIN SELECT 2; END;",
    );
    let repo = env.path("r.sqlgit");
    env.sqlgit(&["snapshot", &s(&db), "--repo", &s(&repo)])
        .success();
    let now = env.git_in(&repo, &["rev-parse", "main"]);
    // What an older sqlgit wrote: all triggers by name.
    let text = env.git_in(&repo, &["show", "main:app.db/5-triggers.sql"]) + "\n";
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].contains("TRIGGER b_a1"),
        "in the order created: {text}"
    );
    lines.sort_by_key(|l| l.split(' ').nth(2).unwrap().to_string());
    rewrite_file(
        &env,
        &repo,
        "app.db/5-triggers.sql",
        (lines.join("\n") + "\n").as_bytes(),
    );
    let older = env.git_in(&repo, &["rev-parse", "main"]);
    assert_ne!(older, now);
    env.sqlgit(&["diff", &older, &now, "--repo", &s(&repo)])
        .success()
        .assert_quiet();
}
