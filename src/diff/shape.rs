//! What a table's rows look like in the dump, learned from its `0-create.sql` alone.
//!
//! To key and compare rows, a diff needs each table's INSERT prefix, the names of the values in
//! each statement and which of them form the key. The snapshot holds only the CREATE TABLE text,
//! so it is executed in an empty in-memory database and read back with the dump's own
//! [`read_schema`] — the one place that decides how rows are written — plus
//! `pragma_table_xinfo` for the column names. When a table's CREATE text changed between the two
//! snapshots, [`align`] pairs the columns of both sides by name, so rows can still be matched and
//! compared value by value on the columns both have; a column only one side has was added or
//! removed (a renamed column is both), never a change of value. A table whose rowid no name
//! reaches keeps its hidden rowid in the rows, but is compared as a multiset without it.

use anyhow::{Context, Result, anyhow, bail};
use rusqlite::Connection;

use super::keyvalue::{Collation, Encoding};
pub use super::pairing::Matching;
use super::rows::decode_text;
use super::show;
use crate::dump::affinity::Affinity;
use crate::dump::literal::quote_ident;
use crate::dump::schema::{Filters, Key, read_schema};

/// How a table's rows are matched between two snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// By rowid: the value at `pos` (an explicit rowid, or the INTEGER PRIMARY KEY); `column` is
    /// how an SQL statement names it (`rowid`, `_rowid_`, `oid` or the quoted column).
    Rowid { pos: usize, column: String },
    /// By the primary key values at these positions (WITHOUT ROWID tables).
    Columns(Vec<usize>),
    /// No key a statement can name (rowid, _rowid_ and oid all shadowed): rows form a multiset.
    Multiset,
}

#[derive(Debug)]
pub struct Shape {
    pub name: String,
    /// The CREATE statement, without `;` (for a virtual table: its CREATE VIRTUAL TABLE text).
    pub sql: String,
    /// The table's text as sqlite_schema holds it (what `diff` shows): without the dump's
    /// restore steps around it (a one-line stand-in and its `UPDATE sqlite_schema`, a temporary
    /// column name; see `crate::dump::shell`).
    pub stored: String,
    pub virtual_table: bool,
    /// Every row statement starts with this (up to and including `VALUES(`).
    pub prefix: Vec<u8>,
    /// The names of the values of a row statement, in order.
    pub columns: Vec<String>,
    /// The same, as people know them: a table whose rowid aliases are all columns is filled
    /// under a temporary name for its `rowid` column (see [`Shape::with_fixup`]).
    pub shown: Vec<String>,
    pub key: KeyKind,
    /// The position of a value that is the rowid and no column (`rowid` when no column has
    /// that name; the hidden rowid of a table whose rowid aliases are all columns).
    pub rowid_value: Option<usize>,
    /// The rows share their file with other statements (system tables).
    pub lenient: bool,
    /// Per value of `columns`: the column has BLOB affinity (no declared type), so the integer
    /// 1 and the text '1' are different values there (see `super::keymatch`).
    pub untyped: Vec<bool>,
    /// Per position of `KeyKind::Columns`: the collation the primary key compares it with.
    pub key_collations: Vec<String>,
    /// The positions of the declared PRIMARY KEY's columns, in its order (also of a rowid
    /// table whose key is not its rowid): rows keep it across a rebuild as WITHOUT ROWID.
    pub declared_key: Vec<usize>,
    /// The database's text encoding (what `CAST(X'..' AS TEXT)` values hold).
    pub encoding: Encoding,
}

impl Shape {
    /// The quoted table name, for statements.
    pub fn quoted(&self) -> String {
        quote_ident(&self.name)
    }

    /// Positions of the key's values (empty for a multiset).
    pub fn key_positions(&self) -> Vec<usize> {
        match &self.key {
            KeyKind::Rowid { pos, .. } => vec![*pos],
            KeyKind::Columns(p) => p.clone(),
            KeyKind::Multiset => Vec::new(),
        }
    }
}

/// The shape of a table from the contents of its `0-create.sql`.
pub fn analyze(create: &[u8]) -> Result<Shape> {
    let (sql, reserved) = match create_text(create)? {
        CreateText::Virtual(rest) => return virtual_shape(rest),
        CreateText::Table { sql, reserved } => (sql, reserved),
    };
    let conn = reading_connection(reserved)?;
    crate::restore::execute(&conn, sql.as_bytes())
        .with_context(|| format!("cannot read the table definition {sql:?}"))?;
    let schema = read_schema(&conn, &Filters::default())?;
    let [table] = schema.tables.as_slice() else {
        bail!("{sql:?} does not define exactly one table");
    };
    if let Some(coll) = (table.key_collations.iter()).find(|c| Collation::known(c).is_none()) {
        bail!(
            "table {}: its key uses collation {}, which only the application defines, so \
             sqlgit cannot compare its keys",
            show::name(&table.name),
            show::name(coll)
        );
    }
    let cols = table_columns(&conn, &table.name)?;
    let stored: Vec<&(String, i64, i64)> = cols.iter().filter(|c| !matches!(c.2, 2 | 3)).collect();
    let without_rowid: i64 =
        conn.query_row("SELECT wr FROM pragma_table_list(?1)", [&table.name], |r| {
            r.get(0)
        })?;
    let mut columns: Vec<String> = Vec::new();
    let mut rowid_value = None;
    let mut prefix = table.insert_prefix.clone().into_bytes();
    let key = match table.key {
        Key::Rowid { emit: true } if table.rowid_column_temp.is_some() => {
            // Every rowid alias is a column and the snapshot's CREATE file does not rename one
            // (snapshots before rowids were kept for such tables): rows were written without
            // their rowids, and form a multiset.
            let quoted: Vec<String> = stored.iter().map(|c| quote_ident(&c.0)).collect();
            prefix = if stored.len() != cols.len() {
                format!(
                    "INSERT INTO {}({}) VALUES(",
                    quote_ident(&table.name),
                    quoted.join(",")
                )
            } else {
                format!("INSERT INTO {} VALUES(", quote_ident(&table.name))
            }
            .into_bytes();
            KeyKind::Multiset
        }
        Key::Rowid { emit: true } => {
            let alias = ["rowid", "_rowid_", "oid"]
                .into_iter()
                .find(|a| !cols.iter().any(|c| c.0.eq_ignore_ascii_case(a)))
                .expect("the dump found a rowid alias");
            columns.push(alias.to_string());
            rowid_value = Some(0);
            KeyKind::Rowid {
                pos: 0,
                column: alias.to_string(),
            }
        }
        Key::Rowid { emit: false } => {
            let pos = stored
                .iter()
                .position(|c| c.1 > 0)
                .expect("an INTEGER PRIMARY KEY column");
            KeyKind::Rowid {
                pos,
                column: quote_ident(&stored[pos].0),
            }
        }
        Key::Columns if without_rowid != 0 => KeyKind::Columns(table.key_columns.clone()),
        Key::Columns => KeyKind::Multiset,
    };
    let offset = columns.len();
    columns.extend(stored.iter().map(|c| c.0.clone()));
    let mut declared: Vec<(i64, usize)> = (stored.iter().enumerate())
        .filter(|(_, c)| c.1 > 0)
        .map(|(i, c)| (c.1, offset + i))
        .collect();
    declared.sort();
    let untyped = untyped_columns(&conn, &table.name, &columns)?;
    let stored = super::sqltext::stored(&super::sqltext::statements(create));
    Ok(Shape {
        name: table.name.clone(),
        sql: sql.to_string(),
        stored: stored.into_iter().next().unwrap_or_else(|| sql.to_string()),
        virtual_table: false,
        prefix,
        shown: columns.clone(),
        columns,
        key,
        rowid_value,
        lenient: false,
        untyped,
        key_collations: table.key_collations.clone(),
        declared_key: declared.into_iter().map(|(_, pos)| pos).collect(),
        encoding: Encoding::Utf8,
    })
}

/// For each of `columns`, whether it has BLOB affinity (no declared type, or one naming BLOB
/// and nothing SQLite's affinity rules look for first).
fn untyped_columns(conn: &Connection, table: &str, columns: &[String]) -> Result<Vec<bool>> {
    let mut stmt = conn.prepare("SELECT name, upper(type) FROM pragma_table_xinfo(?1)")?;
    let types: Vec<(String, String)> = stmt
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let blob = |t: &str| Affinity::of_declared(t, false) == Affinity::Blob;
    Ok(columns
        .iter()
        .map(|c| types.iter().any(|(n, t)| n == c && blob(t)))
        .collect())
}

/// What a snapshot's CREATE file holds.
enum CreateText<'a> {
    /// A virtual table's schema row (the `INSERT INTO sqlite_schema` after writable_schema).
    Virtual(&'a [u8]),
    /// A table's CREATE statement without its `;`; `reserved`: a name SQLite reserves
    /// (`sqlite_stat4`, or one made under writable_schema), created with writable_schema on.
    Table { sql: &'a str, reserved: bool },
}

fn create_text(create: &[u8]) -> Result<CreateText<'_>> {
    const WRITABLE: &[u8] = b"PRAGMA writable_schema=ON;\n";
    // An older sqlgit did not ask for defensive mode off first.
    let create = create
        .strip_prefix(b".dbconfig defensive off\n".as_slice())
        .unwrap_or(create);
    let (create, reserved) = match create.strip_prefix(WRITABLE) {
        Some(rest) if rest.starts_with(b"INSERT INTO sqlite_schema") => {
            return Ok(CreateText::Virtual(rest));
        }
        Some(rest) => (
            rest.strip_suffix(b"PRAGMA writable_schema=RESET;\n")
                .unwrap_or(rest),
            true,
        ),
        None => (create, false),
    };
    let sql = std::str::from_utf8(create)
        .context("CREATE TABLE text is not UTF-8")?
        .strip_suffix(";\n")
        .ok_or_else(|| anyhow!("CREATE TABLE text does not end with ;"))?;
    Ok(CreateText::Table { sql, reserved })
}

/// An in-memory database to create a snapshot's table in (`reserved`: with writable_schema on,
/// for a name SQLite reserves).
fn reading_connection(reserved: bool) -> Result<Connection> {
    let conn = Connection::open_in_memory()?;
    crate::dump::real::register_sql_functions(&conn)?;
    // A collation only the application defines (`v TEXT COLLATE mine`): the table is created
    // empty, so nothing here compares by it; a key that would is refused in [`analyze`].
    conn.collation_needed(|conn, name| conn.create_collation(name, |a: &str, b: &str| a.cmp(b)))?;
    if reserved {
        conn.execute_batch("PRAGMA writable_schema=ON;")?;
    }
    Ok(conn)
}

/// Every column of `table`: name, position in the primary key, hidden (2, 3: generated).
fn table_columns(conn: &Connection, table: &str) -> Result<Vec<(String, i64, i64)>> {
    let mut stmt = conn.prepare("SELECT name, pk, hidden FROM pragma_table_xinfo(?1)")?;
    let cols = stmt
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(cols)
}

/// The shape of a table from its `0-create.sql` and `1-schema-fixup.sql` blobs, in a
/// database of text encoding `encoding`.
pub fn of_table(
    repo: &git2::Repository,
    create: git2::Oid,
    fixup: Option<git2::Oid>,
    encoding: Encoding,
) -> Result<Shape> {
    let mut shape = analyze(repo.find_blob(create)?.content())?;
    shape.encoding = encoding;
    match fixup {
        Some(f) => shape.with_fixup(repo.find_blob(f)?.content()),
        None => Ok(shape),
    }
}

impl Shape {
    /// Name the columns as the table's exact text does, from its `1-schema-fixup.sql` (the
    /// column the rows fill as `sqlgit_rowid` is `rowid`; the real rowid shows as `(rowid)`).
    pub fn with_fixup(mut self, fixup: &[u8]) -> Result<Shape> {
        let reserved = self
            .name
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("sqlite_"));
        let conn = reading_connection(reserved)?;
        let create = format!("{};\n", self.sql);
        crate::restore::execute(&conn, create.as_bytes())?;
        crate::restore::execute(&conn, fixup).context("read the table's exact text")?;
        if let Some(text) = super::sqltext::stored(&super::sqltext::statements(fixup)).pop() {
            self.stored = text;
        }
        let names: Vec<String> = table_columns(&conn, &self.name)?
            .into_iter()
            .filter(|c| !matches!(c.2, 2 | 3))
            .map(|c| c.0)
            .collect();
        let offset = self.columns.len().saturating_sub(names.len());
        if offset > 1 || names.len() > self.columns.len() {
            return Ok(self);
        }
        let mut shown: Vec<String> = self.columns[..offset]
            .iter()
            .map(|c| format!("({c})"))
            .collect();
        // No name reaches the hidden rowid (VACUUM may renumber it): the rows are a multiset
        // of their columns' values, as in snapshots that did not keep it.
        let shadowed = ["rowid", "_rowid_", "oid"]
            .iter()
            .all(|a| names.iter().any(|n| n.eq_ignore_ascii_case(a)));
        if offset == 1 && shadowed {
            self.key = KeyKind::Multiset;
        }
        shown.extend(names);
        self.shown = shown;
        Ok(self)
    }
}

/// A virtual table: its row in sqlite_schema, `VALUES('table',name,name,0,sql)`.
fn virtual_shape(rest: &[u8]) -> Result<Shape> {
    const INSERT: &[u8] = b"INSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql) VALUES(";
    let rows = super::rows::parse(rest.to_vec(), INSERT, true)?;
    if rows.len() != 1 {
        bail!("unexpected virtual table definition");
    }
    let r = rows.get(0);
    let text = |i: usize| -> Result<String> {
        let bytes = decode_text(r.value(i)).ok_or_else(|| anyhow!("bad virtual table row"))?;
        String::from_utf8(bytes).context("virtual table definition is not UTF-8")
    };
    if r.len() != 5 {
        bail!("unexpected virtual table definition");
    }
    let sql = text(4)?;
    Ok(Shape {
        name: text(1)?,
        stored: sql.clone(),
        sql,
        virtual_table: true,
        prefix: Vec::new(),
        columns: Vec::new(),
        shown: Vec::new(),
        key: KeyKind::Multiset,
        rowid_value: None,
        lenient: false,
        untyped: Vec::new(),
        key_collations: Vec::new(),
        declared_key: Vec::new(),
        encoding: Encoding::Utf8,
    })
}

/// sqlite_sequence or sqlite_stat1, whose rows the dump writes with their rowids after a few
/// other statements in one file.
pub fn system(name: &str) -> Shape {
    let cols: &[&str] = if name == "sqlite_sequence" {
        &["name", "seq"]
    } else {
        &["tbl", "idx", "stat"]
    };
    let mut columns = vec!["rowid".to_string()];
    columns.extend(cols.iter().map(|c| c.to_string()));
    let quoted: Vec<String> = cols.iter().map(|c| quote_ident(c)).collect();
    let prefix = format!(
        "INSERT INTO {}(rowid,{}) VALUES(",
        quote_ident(name),
        quoted.join(",")
    );
    Shape {
        name: name.to_string(),
        sql: String::new(),
        stored: String::new(),
        virtual_table: false,
        prefix: prefix.into_bytes(),
        shown: columns.clone(),
        columns,
        key: KeyKind::Rowid {
            pos: 0,
            column: "rowid".into(),
        },
        rowid_value: Some(0),
        lenient: true,
        untyped: Vec::new(),
        key_collations: Vec::new(),
        declared_key: Vec::new(),
        encoding: Encoding::Utf8,
    }
}

/// The columns of both sides of a table, paired.
#[derive(Debug)]
pub struct Alignment {
    /// The union of the columns: the newer side's in order, then those only the older has.
    pub names: Vec<String>,
    /// For each union column, its value position on the older / newer side.
    pub from: Vec<Option<usize>>,
    pub to: Vec<Option<usize>>,
    /// Both sides have the same shape: rows are equal exactly when their texts are.
    pub identical: bool,
    /// Both sides have the table.
    pub both: bool,
}

/// Pair the columns of two versions of a table by name (as the table names them, any case).
/// A value that is only the rowid pairs with the other side's only when both are keyed by it;
/// the rowid of a side keyed by an INTEGER PRIMARY KEY is that column, which pairs by name.
pub fn align(from: Option<&Shape>, to: Option<&Shape>) -> Alignment {
    let hidden = |s: &Shape| s.key == KeyKind::Multiset && s.rowid_value.is_some();
    let identical = match (from, to) {
        (Some(f), Some(t)) => {
            f.prefix == t.prefix && f.columns == t.columns && f.key == t.key && !hidden(f)
        }
        _ => false,
    };
    let none: &[String] = &[];
    let (fs, ts) = (
        from.map_or(none, |s| &s.shown),
        to.map_or(none, |s| &s.shown),
    );
    let mut al = Alignment {
        names: Vec::new(),
        from: Vec::new(),
        to: Vec::new(),
        identical,
        both: from.is_some() && to.is_some(),
    };
    if identical {
        al.names = ts.to_vec();
        al.from = (0..ts.len()).map(Some).collect();
        al.to = al.from.clone();
        return al;
    }
    let rowid_keyed = |s: Option<&Shape>| matches!(s.map(|s| &s.key), Some(KeyKind::Rowid { .. }));
    let both_rowid = rowid_keyed(from) && rowid_keyed(to);
    let pseudo = |s: Option<&Shape>| s.and_then(|s| s.rowid_value);
    let mut used = vec![false; fs.len()];
    for (j, name) in ts.iter().enumerate() {
        let i = if pseudo(to) == Some(j) {
            match pseudo(from) {
                Some(i) if both_rowid => Some(i),
                // The rowid, which the other side holds in a column or not at all.
                _ => continue,
            }
        } else {
            (0..fs.len())
                .find(|&i| !used[i] && pseudo(from) != Some(i) && fs[i].eq_ignore_ascii_case(name))
        };
        if let Some(i) = i {
            used[i] = true;
        }
        al.names.push(name.clone());
        al.from.push(i);
        al.to.push(Some(j));
    }
    for (i, name) in fs.iter().enumerate() {
        if !used[i] && pseudo(from) != Some(i) {
            al.names.push(name.clone());
            al.from.push(Some(i));
            al.to.push(None);
        }
    }
    al
}

impl Alignment {
    /// The columns only the newer side has, and those only the older has (for a table on both
    /// sides): added and removed, never compared.
    pub fn one_sided(&self) -> (Vec<&str>, Vec<&str>) {
        let (mut added, mut removed) = (Vec::new(), Vec::new());
        for (u, name) in self.names.iter().enumerate() {
            match (self.from[u], self.to[u]) {
                (None, Some(_)) if self.both => added.push(name.as_str()),
                (Some(_), None) if self.both => removed.push(name.as_str()),
                _ => {}
            }
        }
        (added, removed)
    }
}

#[cfg(test)]
mod tests;
