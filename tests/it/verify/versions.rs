//! What the SQLite that restores computes otherwise than the SQLite that wrote the database
//! (3.54 turns `0.1+0.2` into the text `0.30000000000000004`, 3.40 into `0.3`), reaching
//! indexes on expressions and full-text indexes: warnings naming the object, whatever its name
//! holds, never a failure of a sound snapshot.

use super::s;
use crate::env::TestEnv;

/// An index the two SQLites build differently, named with a line break, a CR or a `|`: the
/// CLI's integrity check was read line by line, so `row 1 missing from index i\na` became two
/// findings and the second (`a`) failed verify as damage, instead of the warning naming it.
#[test]
fn an_index_built_differently_is_a_warning_whatever_its_name_holds() {
    for name in ["i\na", "i\rb|c", "plain"] {
        let env = TestEnv::new();
        let script = format!(
            "CREATE TABLE t(a); INSERT INTO t VALUES(0.1+0.2), (1e-7), (123456.7890123456);
             CREATE INDEX \"{name}\" ON t(lower(a));"
        );
        let db = env.db_from_script("app.db", script.as_bytes());
        let repo = env.path("r.sqlgit");
        env.sqlgit(&["-q", "snapshot", &s(&db), "--repo", &s(&repo)])
            .success();
        let run = env.sqlgit(&["-q", "verify", "--repo", &s(&repo)]);
        let err = run.stderr_str();
        assert_eq!(run.code(), Some(0), "{name:?}: {err}");
        let shown = format!("{name:?}");
        let named = if name == "plain" { name } else { &shown };
        // A CLI that spells the values as the bundled SQLite does builds the same index.
        let differs =
            super::cli_spells_reals_otherwise(&env, &["0.1+0.2", "1e-7", "123456.7890123456"]);
        assert_eq!(
            err.contains(&format!("index {named} as `sqlgit cat | sqlite3`")),
            differs,
            "{name:?}: {err}"
        );
    }
}
