//! The dump: a whole database as SQL text that the `sqlite3` CLI (3.40+) restores exactly.
//!
//! The dump is produced as a sequence of files in the order of their paths, so that a snapshot
//! can store each file as a git blob and concatenating them in path order gives the dump back:
//!
//! ```text
//! 0-header.sql                      PRAGMAs, BEGIN
//! 1-tables/<table>/0-create.sql     CREATE TABLE (virtual tables: a sqlite_schema row)
//! 1-tables/<table>/1-rows/<groups>/<chunk>.sql  INSERTs, content-defined chunks
//! 1-tables/<table>/2-indexes.sql    CREATE INDEX, after the table's rows
//! 2-sqlite_sequence.sql, 3-sqlite_stat1.sql     AUTOINCREMENT counters, ANALYZE results
//! 4-views.sql, 5-triggers.sql       after all data, so no trigger fires during a restore
//! 9-commit.sql                      COMMIT: a dump cut short restores nothing
//! ```
//! Format 1 has one level of group folders (a `1-rows` folder with a single group holds its
//! chunks directly) and one `INSERT` per row. Format 2 ([`Format`]) writes one multi-row
//! `INSERT … VALUES` per chunk, one row per line, and nests groups up to [`rows::GROUP_LEVELS`]
//! deep (a group folder holding a single group folder is that folder), so no tree holds more
//! than a few hundred entries whatever the table's size.
//! Everything is read inside one read transaction: one moment of the database.

pub mod affinity;
pub mod btree;
pub mod buffers;
mod chunksums;
pub mod dqs;
mod fileview;
pub mod filter;
mod groups;
mod identity;
pub mod incremental;
pub mod keylist;
pub mod literal;
mod mapfile;
mod mapper;
pub mod pagelist;
pub mod pages;
mod parallel;
pub mod path;
pub mod real;
mod record;
pub mod recorded;
pub mod rows;
pub mod schema;
pub mod shell;
pub mod source;
mod sqlitefiles;
pub mod stmt;
pub mod strictdefault;
pub mod textlit;
mod viewreads;

use anyhow::{Context, Result};
use rusqlite::Connection;

use incremental::{Previous, Reuse};
use literal::write_text;
use mapper::Mapper;
use pages::{PageMap, Pages};
pub use schema::Filters;
use schema::{Object, Schema, Table, read_schema};
use shell::{ObjectKind, one_line, rename_rowid_tokens, write_fixup, write_object};
use stmt::Encoding;

/// The layout of a dump's row files. Every command reads both, forever; new dumps are
/// [`Format::CURRENT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One `INSERT … VALUES(…);` per row; chunks in one level of group folders.
    V1,
    /// One multi-row `INSERT … VALUES` statement per chunk, one row per line; chunks in nested
    /// group folders, so no tree grows with the table. The header's first line says so.
    V2,
}

/// The first line of a format-2 dump (an SQL comment: the sqlite3 shell skips it).
const V2_MARK: &[u8] = b"-- sqlgit snapshot format 2\n";

impl Format {
    pub const CURRENT: Format = Format::V2;

    /// The format of a dump whose `0-header.sql` (or whole text) starts with `header`.
    pub fn of_header(header: &[u8]) -> Format {
        if header.starts_with(V2_MARK) {
            Format::V2
        } else {
            Format::V1
        }
    }

    /// The format new snapshots (and `sqlgit dump`s) are written in: [`Format::CURRENT`], or
    /// format 1 when `SQLGIT_SNAPSHOT_FORMAT=1` (for tests of old repositories, and for a
    /// repository that an older sqlgit must still diff). Any other value than 1 or 2 (or
    /// empty) is a usage error: a typo must not quietly write the other format.
    pub fn for_snapshots() -> Result<Format> {
        match std::env::var_os("SQLGIT_SNAPSHOT_FORMAT") {
            None => Ok(Format::CURRENT),
            Some(v) if v.is_empty() || v == "2" => Ok(Format::V2),
            Some(v) if v == "1" => Ok(Format::V1),
            Some(v) => Err(crate::error::usage(format!(
                "SQLGIT_SNAPSHOT_FORMAT={:?}: not a snapshot format (give 1, or 2, the default; \
                 or unset it)",
                v.to_string_lossy()
            ))),
        }
    }

    /// A header without the format mark (what the database itself says).
    pub fn without_mark(header: &[u8]) -> &[u8] {
        header.strip_prefix(V2_MARK).unwrap_or(header)
    }

    pub fn number(self) -> i64 {
        match self {
            Format::V1 => 1,
            Format::V2 => 2,
        }
    }
}

/// Receives the dump's files, in path order.
pub trait Sink {
    /// `path` is relative to the database's folder; `data` is complete SQL statements.
    fn file(&mut self, path: &[&str], data: Vec<u8>) -> Result<()>;

    /// An object the previous snapshot already has, at `path`: a blob, or a folder (`dir`)
    /// holding `bytes` of SQL. Only sinks that store into git take these.
    fn reuse(&mut self, path: &[&str], _oid: git2::Oid, _dir: bool, _bytes: u64) -> Result<()> {
        anyhow::bail!("internal error: {} cannot be reused here", path.join("/"))
    }
}

/// What a dump contained, for commit messages and metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    pub tables: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// Counts bytes on their way to the real sink.
struct Counting<'a> {
    inner: &'a mut dyn Sink,
    bytes: u64,
}

impl Sink for Counting<'_> {
    fn file(&mut self, path: &[&str], data: Vec<u8>) -> Result<()> {
        self.bytes += data.len() as u64;
        self.inner.file(path, data)
    }

    fn reuse(&mut self, path: &[&str], oid: git2::Oid, dir: bool, bytes: u64) -> Result<()> {
        self.bytes += bytes;
        self.inner.reuse(path, oid, dir, bytes)
    }
}

/// Dump the database behind `conn` (opened by [`source::open`]) into `sink`, all inside one
/// read transaction.
pub fn dump(conn: &Connection, sink: &mut dyn Sink, filters: &Filters) -> Result<Summary> {
    dump_as(conn, sink, filters, Format::CURRENT)
}

/// [`dump`] in a given format (a format-1 snapshot is checked against a format-1 dump).
pub fn dump_as(
    conn: &Connection,
    sink: &mut dyn Sink,
    filters: &Filters,
    format: Format,
) -> Result<Summary> {
    dump_noting(conn, sink, filters, format).map(|(summary, _)| summary)
}

/// [`dump_as`], also returning a warning line per column whose values restores give back
/// converted ([`affinity`]) and per kept trigger that names an excluded table.
pub fn dump_noting(
    conn: &Connection,
    sink: &mut dyn Sink,
    filters: &Filters,
    format: Format,
) -> Result<(Summary, Vec<String>)> {
    conn.execute_batch("BEGIN DEFERRED")
        .context("begin read transaction")?;
    let mut converted = Vec::new();
    let result = dump_in_transaction(conn, sink, filters, format, None, &mut converted);
    let _ = conn.execute_batch("COMMIT");
    result.map(|summary| (summary, converted))
}

/// What a snapshot's dump produced besides its files.
pub struct Snapshot {
    pub summary: Summary,
    /// The page map of this moment, to make the next snapshot incremental.
    pub map: PageMap,
    pub reuse: Reuse,
    /// The read was incremental and the `check` sink got the same moment read whole.
    pub checked: bool,
    /// Every table was reused: the map is the previous one (no need to write it again).
    pub same_map: bool,
    /// Rows that no restore can insert again, one line per column (see [`strictdefault`]).
    pub unrestorable: Vec<String>,
    /// Values (of the rows this run read) that every restore gives back converted, one line per
    /// column (see [`affinity`]), and kept triggers that name an excluded table
    /// ([`filter::dangling_triggers`]): warning lines.
    pub converted: Vec<String>,
    /// The database had no page at all in the read transaction (an empty file): the moment a
    /// copy over it (`cp backup.db app.db`) truncated it, not a database whose tables were dropped.
    pub empty_file: bool,
}

/// A check run first inside a dump's read transaction, before anything is written: it sees
/// the schema the dump reads (the filters judged against it, see `job::filtercheck`).
pub type Guard<'a> = &'a dyn Fn(&Connection) -> Result<()>;

/// [`dump_as`] for a snapshot: also maps the pages of every table, and with the `previous`
/// snapshot's objects and map reads only what changed ([`incremental`]). A map whose
/// fingerprint differs (schema, settings, sqlgit version) is not used. `guard` runs first,
/// inside the read transaction.
pub fn dump_snapshot(
    conn: &Connection,
    sink: &mut dyn Sink,
    filters: &Filters,
    format: Format,
    previous: Option<&dyn Previous>,
    check: Option<&mut dyn Sink>,
    guard: Option<Guard>,
) -> Result<Snapshot> {
    conn.execute_batch("BEGIN DEFERRED")
        .context("begin read transaction")?;
    let result = (|| {
        if let Some(guard) = guard {
            guard(conn)?;
        }
        let extra = format!(
            "sqlgit {} format {} chunks {} order {} reals {} texts {} exclude {:?} redact {:?}",
            env!("CARGO_PKG_VERSION"),
            format.number(),
            rows::CHUNKING,
            rows::ROW_ORDER,
            real::SPELLING,
            textlit::spelling(),
            filters.exclude_tables,
            filters.redact
        );
        let fingerprint = pages::fingerprint(conn, extra.as_bytes())?;
        let previous = previous.filter(|p| p.map().fingerprint == fingerprint);
        // Keys of WITHOUT ROWID rows are compared as SQL literals, which may call ieee754().
        real::register_sql_functions(conn).context("register SQL functions")?;
        let seed = previous.map_or_else(pages::new_seed, |p| p.map().seed);
        let mut pages = Pages::new(conn, seed)?;
        let empty_file = pages.is_empty();
        let identity = pages
            .header()?
            .and_then(|header| identity::of(conn, &header, std::time::SystemTime::now()))
            .unwrap_or_default();
        let known_unchanged =
            previous.is_some_and(|p| !identity.is_empty() && p.map().identity == identity);
        let mut mapper = Mapper {
            pages,
            known_unchanged,
            helper: parallel::helper_for_snapshot(conn),
            previous,
            tables: Vec::new(),
            reuse: Reuse::default(),
            reused_bytes: 0,
        };
        let mut converted = Vec::new();
        let mut summary = dump_in_transaction(
            conn,
            sink,
            filters,
            format,
            Some(&mut mapper),
            &mut converted,
        )?;
        let same_map = previous.is_some_and(|p| {
            mapper.reuse.tables_read == 0
                && mapper.reuse.tables_partial == 0
                && mapper.tables.len() == p.map().tables.len()
                && p.map().identity == identity
        });
        if known_unchanged && mapper.reuse.tables_read + mapper.reuse.tables_partial == 0 {
            mapper.reuse.databases_unread = 1;
        }
        let mut checked = false;
        if let (Some(check), Some(_)) = (check, previous) {
            // The same moment read whole, into the check's sink: its map and summary are the
            // ones to keep (the caller compares the trees).
            mapper.previous = None;
            mapper.known_unchanged = false;
            mapper.tables.clear();
            mapper.reused_bytes = 0;
            converted.clear();
            summary = dump_in_transaction(
                conn,
                check,
                filters,
                format,
                Some(&mut mapper),
                &mut converted,
            )?;
            checked = true;
        }
        let unrestorable = strictdefault::unrestorable(conn, filters)?;
        let mut tables = mapper.tables;
        tables.sort_by_key(|t| t.rootpage); // see PageMap::table
        Ok(Snapshot {
            summary,
            map: PageMap {
                commit: [0; 20],
                fingerprint,
                seed,
                owner: 0,
                identity,
                tables,
            },
            reuse: mapper.reuse,
            checked,
            same_map,
            unrestorable,
            converted,
            empty_file,
        })
    })();
    let _ = conn.execute_batch("COMMIT");
    result
}

/// Where a chunk of `table`'s rows goes, relative to the database's folder.
fn rows_path<'a>(
    table: &'a Table,
    groups: &'a [std::sync::Arc<str>],
    name: &'a str,
) -> Vec<&'a str> {
    let mut path = Vec::with_capacity(4 + groups.len());
    path.extend(["1-tables", table.dir.as_str(), "1-rows"]);
    path.extend(groups.iter().map(|g| &**g));
    path.push(name);
    path
}

/// Put a chunk into `sink` at its place under `table`'s folder.
fn put_chunk(sink: &mut dyn Sink, table: &Table, chunk: rows::Chunk) -> Result<()> {
    let rows::Chunk {
        groups, name, data, ..
    } = chunk;
    sink.file(&rows_path(table, &groups, &name), data)
}

fn dump_in_transaction(
    conn: &Connection,
    sink: &mut dyn Sink,
    filters: &Filters,
    format: Format,
    mut mapper: Option<&mut Mapper>,
    converted: &mut Vec<String>,
) -> Result<Summary> {
    let schema = read_schema(conn, filters)?;
    converted.extend(filter::dangling_triggers(conn, filters).context("read schema")?);
    let encoding = Encoding::of(conn)?;
    let mut sink = Counting {
        inner: sink,
        bytes: 0,
    };
    let mut summary = Summary::default();
    let quotes = dqs::needed(conn).context("read schema")?;
    sink.file(&["0-header.sql"], header(&schema, format, quotes))?;
    // A whole read formats big tables on two cores (a snapshot's writer has the second).
    let mut helper = match mapper {
        None => parallel::helper(conn),
        Some(_) => None,
    };
    for table in &schema.tables {
        summary.tables += 1;
        let rows = match mapper.as_deref_mut() {
            Some(mapper) => Rows::Mapped(mapper),
            None => Rows::Whole(helper.as_mut()),
        };
        summary.rows += dump_table(conn, table, encoding, format, &mut sink, rows)?;
        converted.extend(table.converted_lines());
    }
    if let Some(seq) = &schema.sequence {
        // sqlite_sequence cannot be created directly; creating an AUTOINCREMENT table makes it
        // when no table has made it yet (whether one has cannot be told reliably from the text).
        let maker = &schema.sequence_maker; // [a-z0-9_]: needs no quotes
        let mut sql = format!(
            "CREATE TABLE {maker}(i INTEGER PRIMARY KEY AUTOINCREMENT);\n\
             DROP TABLE {maker};\nDELETE FROM sqlite_sequence;\n"
        )
        .into_bytes();
        summary.rows += system_rows(conn, seq, encoding, format, &mut sql)?;
        sink.file(&["2-sqlite_sequence.sql"], sql)?;
    }
    if let Some(stat1) = &schema.stat1 {
        // ANALYZE creates sqlite_stat1 (the only way to); a SQLite built with STAT4 also makes
        // sqlite_stat4, dropped again unless the source had one (restored with the tables).
        let has_stat4 = schema
            .tables
            .iter()
            .any(|t| t.name.eq_ignore_ascii_case("sqlite_stat4"));
        let mut sql = b"ANALYZE sqlite_schema;\n".to_vec();
        if !has_stat4 {
            sql.extend_from_slice(b"DROP TABLE IF EXISTS sqlite_stat4;\n");
        }
        sql.extend_from_slice(b"DELETE FROM sqlite_stat1;\n");
        summary.rows += system_rows(conn, stat1, encoding, format, &mut sql)?;
        sink.file(&["3-sqlite_stat1.sql"], sql)?;
    }
    if !schema.views.is_empty() {
        sink.file(&["4-views.sql"], objects(ObjectKind::View, &schema.views))?;
    }
    if !schema.triggers.is_empty() {
        sink.file(
            &["5-triggers.sql"],
            objects(ObjectKind::Trigger, &schema.triggers),
        )?;
    }
    sink.file(&["9-commit.sql"], b"COMMIT;\n".to_vec())?;
    summary.bytes = sink.bytes + mapper.map_or(0, |m| m.reused_bytes);
    Ok(summary)
}

/// What a header ends with for a database with no table or view and another encoding than
/// UTF-8: SQLite writes the encoding into the file only when it creates the first table or
/// view, and this view leaves no page behind. (An older sqlgit left it out: a restore adds it,
/// see `restore::older`.)
pub const ENCODING_VIEW: &str =
    "CREATE VIEW sqlgit_encoding AS SELECT 1;\nDROP VIEW sqlgit_encoding;\n";

/// SQLite's page size unless built otherwise (since 3.12.0).
pub const DEFAULT_PAGE_SIZE: i64 = 4096;

/// The header: `quotes` when the schema needs double-quoted strings ([`dqs`]).
fn header(schema: &Schema, format: Format, quotes: bool) -> Vec<u8> {
    let p = &schema.pragmas;
    let mut out = match format {
        Format::V1 => String::new(),
        Format::V2 => String::from_utf8_lossy(V2_MARK).into_owned(),
    };
    if quotes {
        out.push_str(dqs::LINE);
    }
    // Rows that break a CHECK constraint (written with ignore_check_constraints) restore too.
    out.push_str("PRAGMA foreign_keys=OFF;\nPRAGMA ignore_check_constraints=ON;\n");
    if p.encoding != "UTF-8" {
        // Only takes effect on a new, empty database: exactly what a restore writes into.
        out.push_str(&format!("PRAGMA encoding='{}';\n", p.encoding));
    }
    // Also only on a new database (before its first table); said only when not SQLite's
    // defaults, so the header of most databases stays as it was.
    if p.page_size != DEFAULT_PAGE_SIZE {
        out.push_str(&format!("PRAGMA page_size={};\n", p.page_size));
    }
    if p.auto_vacuum != 0 {
        out.push_str(&format!("PRAGMA auto_vacuum={};\n", p.auto_vacuum));
    }
    out.push_str("BEGIN TRANSACTION;\n");
    out.push_str(&format!("PRAGMA user_version={};\n", p.user_version));
    out.push_str(&format!("PRAGMA application_id={};\n", p.application_id));
    if p.encoding != "UTF-8" && schema.is_empty() {
        // A database with none would come back UTF-8 (said only here, so other dumps stay as
        // they were).
        out.push_str(ENCODING_VIEW);
    }
    out.into_bytes()
}

fn objects(kind: ObjectKind, objects: &[Object]) -> Vec<u8> {
    let mut out = Vec::new();
    for o in objects {
        write_object(&mut out, kind, &o.name, &o.sql);
    }
    out
}

/// How a table's rows are read.
enum Rows<'a, 'c, 'p> {
    /// With its pages mapped, reading only what changed where it can (a snapshot).
    Mapped(&'a mut Mapper<'c, 'p>),
    /// Whole, on two connections when there is a second.
    Whole(Option<&'a mut parallel::Helper>),
}

fn dump_table(
    conn: &Connection,
    table: &Table,
    encoding: Encoding,
    format: Format,
    sink: &mut dyn Sink,
    rows: Rows,
) -> Result<u64> {
    let dir = table.dir.as_str();
    if table.virtual_table {
        let mut sql = shell::WRITABLE_ON.to_vec();
        sql.extend_from_slice(
            b"INSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql) VALUES('table',",
        );
        write_text(&mut sql, table.name.as_bytes());
        sql.push(b',');
        write_text(&mut sql, table.name.as_bytes());
        sql.extend_from_slice(b",0,");
        write_text(&mut sql, &table.sql);
        sql.extend_from_slice(b");\nPRAGMA writable_schema=OFF;\n");
        sink.file(&["1-tables", dir, "0-create.sql"], sql)?;
        return Ok(0);
    }
    let mut create = Vec::new();
    match &table.rowid_column_temp {
        // Created with the column named `rowid` renamed, so the rows can set real rowids; the
        // exact text is put back after them (1-schema-fixup.sql).
        Some(temp) => {
            create.extend_from_slice(&one_line(&rename_rowid_tokens(&table.sql, temp)));
            create.extend_from_slice(b";\n");
        }
        None => write_object(&mut create, ObjectKind::Table, &table.name, &table.sql),
    }
    sink.file(&["1-tables", dir, "0-create.sql"], create)?;
    let rows = match rows {
        Rows::Mapped(mapper) => mapper.rows(conn, table, encoding, format, sink)?,
        Rows::Whole(helper) => {
            let mut emit = |chunk| put_chunk(sink, table, chunk);
            parallel::read_rows(conn, helper, table, encoding, format, &mut emit)?
        }
    };
    if table.rowid_column_temp.is_some() {
        let mut sql = Vec::new();
        write_fixup(&mut sql, ObjectKind::Table, &table.name, &table.sql);
        sink.file(&["1-tables", dir, "1-schema-fixup.sql"], sql)?;
    }
    if !table.indexes.is_empty() {
        sink.file(
            &["1-tables", dir, "2-indexes.sql"],
            objects(ObjectKind::Index, &table.indexes),
        )?;
    }
    Ok(rows)
}

/// The rows of a small system table, appended to `out` as one piece.
fn system_rows(
    conn: &Connection,
    table: &Table,
    encoding: Encoding,
    format: Format,
    out: &mut Vec<u8>,
) -> Result<u64> {
    rows::dump_rows(conn, table, encoding, format, &mut |chunk| {
        out.extend_from_slice(&chunk.data);
        Ok(())
    })
}
