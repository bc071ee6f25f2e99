//! A virtual table's shadow tables, told from a snapshot.
//!
//! A virtual table's rows are not in its own folder (which holds only its `CREATE VIRTUAL
//! TABLE` text) but in its shadow tables (FTS5 `f_content`, `f_data`, …; R*Tree `r_node`, …),
//! which the dump writes as plain tables (see `crate::dump::filter`). `diff --table f` covers
//! them, and `history f KEY` names them. Which tables are shadows is what SQLite says: the
//! virtual table is created in an empty in-memory database and the tables its module makes
//! there are read back (an FTS5 table without content makes no `_content`); for a module this
//! SQLite lacks (or that cannot be created without the application, as a custom tokenizer),
//! the tables named `VTAB_…` are, as the dump takes them for a module it lacks.

use rusqlite::Connection;

use crate::dump::path::{decode_folder, folder_key, table_dir};

/// The names (of `tables`, as their folders decode: [`folder_name`]) that are shadow tables of
/// the virtual table `name` whose definition is `sql`.
pub fn of<'a>(name: &str, sql: &str, tables: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let made = made_by(sql);
    let prefix = format!("{}_", name.to_ascii_lowercase());
    tables
        .into_iter()
        .filter(|t| {
            let lower = t.to_ascii_lowercase();
            match &made {
                Some(made) => made.contains(&lower),
                None => lower.len() > prefix.len() && lower.starts_with(&prefix),
            }
        })
        .collect()
}

/// The shadow tables SQLite makes for `sql` (ASCII lower case), or None when it cannot make
/// the virtual table.
fn made_by(sql: &str) -> Option<Vec<String>> {
    let conn = Connection::open_in_memory().ok()?;
    conn.execute(sql, []).ok()?;
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'shadow'")
        .ok()?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .ok()?
        .collect::<rusqlite::Result<Vec<String>>>()
        .ok()?;
    Some(names.iter().map(|n| n.to_ascii_lowercase()).collect())
}

/// The table name a folder stands for (its `%XX` escapes decoded), when it can be told (a name
/// cut to fit and ended with a hash cannot).
pub fn folder_name(folder: &str) -> Option<String> {
    if folder == "%" {
        return Some(String::new());
    }
    let name = decode_folder(folder)?;
    // A folder its decoded name does not give back is no plain encoding of it (a cut name).
    (folder_key(folder) == table_dir(&name).to_ascii_lowercase()).then_some(name)
}

/// `history` of a virtual table: why no row of it can be named, and where its rows are
/// (`shadows`: its shadow tables; `key`: the key as given).
pub fn history_refused(name: &str, shadows: &[&str], key: &str) -> String {
    let shown = |t: &str| super::show::name(t);
    let Some(first) = shadows
        .iter()
        .find(|s| s.to_ascii_lowercase().ends_with("_content"))
        .or(shadows.first())
    else {
        return format!(
            "table {} is a virtual table: its rows are kept by its module, in no table of the \
             snapshot",
            shown(name)
        );
    };
    let all: Vec<String> = shadows.iter().map(|s| shown(s)).collect();
    format!(
        "table {} is a virtual table: its rows are stored in its shadow tables ({}); ask for a \
         row of one of them (sqlgit history {} {key})",
        shown(name),
        all.join(", "),
        shown(first)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadows_are_what_the_module_makes() {
        let tables = [
            "f",
            "f_content",
            "f_data",
            "f_idx",
            "f_docsize",
            "f_config",
            "f_notes",
            "r_node",
        ];
        let sql = "CREATE VIRTUAL TABLE f USING fts5(a, b)";
        let mut got = of("f", sql, tables);
        got.sort();
        assert_eq!(
            got,
            ["f_config", "f_content", "f_data", "f_docsize", "f_idx"]
        );
        // Contentless: no f_content.
        let sql = "CREATE VIRTUAL TABLE f USING fts5(a, content='')";
        assert!(!of("f", sql, tables).contains(&"f_content"));
        // A module SQLite lacks: its name with `_` before.
        let sql = "CREATE VIRTUAL TABLE f USING vec0(x float[4])";
        assert_eq!(of("F", sql, tables).len(), 6);
    }

    #[test]
    fn folder_names() {
        assert_eq!(folder_name("f_content").as_deref(), Some("f_content"));
        assert_eq!(folder_name("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(folder_name("%").as_deref(), Some(""));
    }
}
