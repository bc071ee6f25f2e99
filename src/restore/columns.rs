//! The columns a fast restore binds values to, read from the table it just created: their
//! affinities, so that values every restore gives back converted are named (see
//! [`crate::dump::affinity`]), and the table a row statement writes to.

use rusqlite::Connection;

use crate::dump::affinity::{Affinity, Converted};

/// The columns a row statement's parameters go to: their affinities (none known: empty), and
/// the values found that restores give back converted.
pub(super) struct Columns {
    pub(super) table: String,
    pub(super) names: Vec<String>,
    pub(super) affinities: Vec<Affinity>,
    pub(super) converted: Converted,
}

impl Columns {
    /// For `INSERT INTO "t"("a",…) VALUES(?,…)` with `params` parameters, the table just
    /// created in `conn`.
    pub(super) fn of(conn: &Connection, sql: &[u8], params: usize) -> Columns {
        let table = table_of(sql).unwrap_or_default();
        let mut c = Columns {
            table,
            names: Vec::new(),
            affinities: Vec::new(),
            converted: Converted::default(),
        };
        let declared = || -> rusqlite::Result<(Vec<(String, String)>, bool)> {
            let mut stmt = conn.prepare(
                "SELECT name, type FROM pragma_table_xinfo(?1) WHERE hidden NOT IN (2, 3)",
            )?;
            let cols: Vec<(String, String)> = stmt
                .query_map([&c.table], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            // STRICT changes only what a column declared ANY means, so only such a table asks:
            // `pragma_table_list` looks at every table of the schema, and asking it for each of
            // 10,000 tables made their restore quadratic (246 s).
            let any = cols
                .iter()
                .any(|(_, t)| t.trim().eq_ignore_ascii_case("ANY"));
            let strict = any
                && conn
                    .query_row(
                        "SELECT strict FROM pragma_table_list(?1) WHERE schema = 'main'",
                        [&c.table],
                        |r| r.get::<_, bool>(0),
                    )
                    .unwrap_or(false);
            Ok((cols, strict))
        };
        let Ok((declared, strict)) = declared() else {
            return c;
        };
        let names = match insert_columns(sql) {
            Some(names) => names,
            None => declared.iter().map(|(n, _)| n.clone()).collect(),
        };
        if names.len() != params {
            return c;
        }
        for name in names {
            let decl = declared.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name));
            // The rowid (or a column renamed while rows go in): no affinity to apply.
            c.affinities
                .push(decl.map_or(Affinity::Blob, |(_, d)| Affinity::of_declared(d, strict)));
            c.names.push(name);
        }
        c
    }
}

/// The column list of `INSERT INTO "t"("a",rowid) VALUES…`, when it has one.
fn insert_columns(sql: &[u8]) -> Option<Vec<String>> {
    let rest = sql.strip_prefix(b"INSERT INTO \"")?;
    let mut p = crate::dump::literal::quoted_end(rest, 0, b'"')?;
    if rest.get(p) != Some(&b'(') {
        return None;
    }
    let end = crate::dump::literal::group_end(rest, p)?;
    let mut names = Vec::new();
    p += 1;
    while p < end {
        if rest[p] == b'"' {
            let q = crate::dump::literal::quoted_end(rest, p + 1, b'"')?;
            names.push(String::from_utf8_lossy(&rest[p + 1..q - 1]).replace("\"\"", "\""));
            p = q;
        } else {
            let len = rest[p..end]
                .iter()
                .position(|&b| b == b',')
                .unwrap_or(end - p);
            names.push(
                String::from_utf8_lossy(&rest[p..p + len])
                    .trim()
                    .to_string(),
            );
            p += len;
        }
        p += usize::from(rest.get(p) == Some(&b','));
    }
    Some(names)
}

/// The table an `INSERT INTO "t"…` statement writes to (`""` in the name is one `"`).
pub(super) fn table_of(sql: &[u8]) -> Option<String> {
    let rest = sql.strip_prefix(b"INSERT INTO \"")?;
    let end = crate::dump::literal::quoted_end(rest, 0, b'"')?;
    let name = std::str::from_utf8(&rest[..end - 1]).ok()?;
    Some(name.replace("\"\"", "\""))
}
