//! `--sql`: a patch that turns a restore of the older snapshot into exactly the newer one.
//!
//! Exact means the newer snapshot's dump, byte for byte: rows with their rowids and storage
//! classes, float bits, schema objects, user_version/application_id, sqlite_sequence and
//! sqlite_stat1. So rows are never re-spelled: a changed row is deleted by its key and the newer
//! dump's own INSERT statement is copied. The order makes it apply cleanly: triggers first go
//! (none may fire), then the views and indexes that change (and a table's indexes after one that
//! does, so they come back in the newer order), then tables (all drops before any
//! create, so a name can move from one object to another; within a table all deletes before any
//! insert, so UNIQUE constraints hold throughout), then new indexes and views, the system tables
//! and pragmas, and the triggers come back last — all inside one transaction.

use std::io::Write;

use anyhow::{Result, bail};

use super::chunks;
use super::matching::{Event, for_each_change};
use super::plan::{Change, Plan, SEQUENCE, STAT1, TablePlan, pragma_line};
use super::rows::RowRef;
use super::shape::{KeyKind, Shape};
use super::sqltext::Stmt;
use crate::dump::literal::{quote_ident, quote_str};

/// Write the patch; returns warnings (what SQL cannot do exactly) for the caller to show, and
/// whether it changes anything (two snapshots whose chunks differ may hold the same rows: a
/// format-1 and a format-2 one, or chunks cut by different rules).
pub fn write(plan: &Plan, out: &mut dyn Write) -> Result<(Vec<String>, bool)> {
    write_counted(plan, &mut Counted { out, bytes: 0 })
}

/// A writer that counts what went through it.
struct Counted<'a> {
    out: &'a mut dyn Write,
    bytes: u64,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

fn write_counted(plan: &Plan, out: &mut Counted) -> Result<(Vec<String>, bool)> {
    refuse_file_format_changes(plan)?;
    let repo = plan.repo;
    writeln!(
        out,
        "-- sqlgit diff {} {}: apply to a restore of the first with `sqlite3 -bail DB < PATCH`",
        plan.from.point.id(),
        plan.to.point.id()
    )?;
    if plan.filtered {
        writeln!(
            out,
            "-- only some tables (--table): the rest of the database is left as it is"
        )?;
    }
    // As in the dump: the rows are the data, even where they break their own CHECKs.
    out.write_all(
        b"PRAGMA foreign_keys=OFF;\nPRAGMA ignore_check_constraints=ON;\nBEGIN TRANSACTION;\n",
    )?;
    let begun = out.bytes;
    // Triggers are dropped before any row changes (they must not fire) — but only once there is
    // a change: snapshots of the same data (a format-1 and a format-2 one) give an empty patch.
    let mut drops = Vec::new();
    for s in &plan.triggers.0 {
        writeln!(drops, "DROP TRIGGER IF EXISTS {};", quote_ident(&s.name))?;
    }
    let mut out = Deferred {
        out,
        pending: drops,
    };
    let out = &mut out;
    if let Some((a, b)) = &plan.views {
        for s in only_in(a, b) {
            writeln!(out, "DROP VIEW IF EXISTS {};", quote_ident(&s.name))?;
        }
    }
    let user = || plan.tables.iter().filter(|t| !t.system);
    for t in user().filter(|t| t.patch_change() == Change::Same) {
        for s in indexes_to_drop(t) {
            writeln!(out, "DROP INDEX IF EXISTS {};", quote_ident(&s.name))?;
        }
    }
    for t in user().filter(|t| matches!(t.patch_change(), Change::Removed | Change::Rebuilt)) {
        drop_table(t.from_shape.as_deref().expect("older side"), out)?;
    }
    for t in user() {
        match t.patch_change() {
            Change::Removed => {}
            Change::Added | Change::Rebuilt => {
                let to = t.to.expect("newer side");
                out.write_all(repo.find_blob(to.create)?.content())?;
                for chunk in chunks::all(repo, to.rows)? {
                    out.write_all(&chunks::read(repo, &chunk)?)?;
                }
                if let Some(fixup) = to.fixup {
                    out.write_all(repo.find_blob(fixup)?.content())?;
                }
            }
            Change::Same => rows(plan, t, out)?,
        }
    }
    for t in user() {
        let creates: Vec<&Stmt> = match t.patch_change() {
            Change::Removed => Vec::new(),
            Change::Added | Change::Rebuilt => t.to_indexes.iter().collect(),
            Change::Same => indexes_to_create(t).collect(),
        };
        for s in creates {
            writeln!(out, "{};", s.sql)?;
        }
    }
    if let Some((a, b)) = &plan.views {
        for s in only_in(b, a) {
            writeln!(out, "{};", s.sql)?;
        }
    }
    let data_changed = out.out.bytes > begun
        || plan.header.is_some()
        || plan.triggers_changed()
        || system_rows_differ(plan)?;
    if !data_changed {
        let changes = out.out.bytes > begun;
        out.out.write_all(b"COMMIT;\n")?;
        return Ok((Vec::new(), changes));
    }
    out.flush_pending()?;
    let warnings = system_tables(plan, out)?;
    if let Some((_, b)) = &plan.header {
        // Between FULL (1) and INCREMENTAL (2) the mode changes without a VACUUM.
        for name in ["user_version", "application_id", "auto_vacuum"] {
            if let Some(line) = pragma_line(b, name) {
                out.write_all(line)?;
                out.write_all(b"\n")?;
            }
        }
    }
    for s in &plan.triggers.1 {
        writeln!(out, "{};", s.sql)?;
    }
    let changes = out.out.bytes > begun;
    out.write_all(b"COMMIT;\n")?;
    Ok((warnings, changes))
}

/// A writer that writes `pending` before the first bytes written through it.
struct Deferred<'a, 'b> {
    out: &'a mut Counted<'b>,
    pending: Vec<u8>,
}

impl Deferred<'_, '_> {
    fn flush_pending(&mut self) -> std::io::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        self.out.write_all(&pending)
    }
}

impl Write for Deferred<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !buf.is_empty() && !self.pending.is_empty() {
            self.flush_pending()?;
        }
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Whether the rows of sqlite_sequence or sqlite_stat1 differ between the two sides (not only
/// their files' text: a format-1 and a format-2 snapshot write them differently).
fn system_rows_differ(plan: &Plan) -> Result<bool> {
    for t in plan.tables.iter().filter(|t| t.system) {
        let (from_chunks, to_chunks) = t.changed_chunks(plan.repo)?;
        let mut differ = false;
        for_each_change(&t.rows(plan.repo, &from_chunks, &to_chunks), &mut |_| {
            differ = true;
            Ok(())
        })?;
        if differ {
            return Ok(true);
        }
    }
    Ok(false)
}

/// How many indexes a table keeps where it is: the ones both sides have first, in the same
/// order. The rest are dropped and the newer side's created in its order after them, so the
/// patched table lists its indexes (and the planner picks between equal ones) as the newer
/// snapshot does ([`crate::dump::schema`]).
fn indexes_kept(t: &TablePlan) -> usize {
    (t.from_indexes.iter().zip(&t.to_indexes))
        .take_while(|(a, b)| a.sql == b.sql)
        .count()
}

fn indexes_to_drop(t: &TablePlan) -> impl Iterator<Item = &Stmt> {
    t.from_indexes[indexes_kept(t)..].iter()
}

fn indexes_to_create(t: &TablePlan) -> impl Iterator<Item = &Stmt> {
    t.to_indexes[indexes_kept(t)..].iter()
}

/// The statements of `a` that `b` does not have verbatim.
fn only_in<'a>(a: &'a [Stmt], b: &'a [Stmt]) -> impl Iterator<Item = &'a Stmt> + 'a {
    a.iter().filter(move |s| !b.iter().any(|o| o.sql == s.sql))
}

/// Refuse what only a new file or a VACUUM changes: the text encoding, the page size, and
/// auto_vacuum turned on or off. A VACUUM gives new rowids to the rows of tables with neither
/// an INTEGER PRIMARY KEY nor an index, so no patch that runs one can promise the newer
/// snapshot exactly. Compared as a restore of each side has them: a pragma an older snapshot
/// did not record is SQLite's default there.
fn refuse_file_format_changes(plan: &Plan) -> Result<()> {
    let Some((a, b)) = &plan.layouts else {
        return Ok(());
    };
    if a.encoding != b.encoding {
        bail!(
            "the text encoding changed between the snapshots; an SQL patch cannot change it \
             (restore the newer snapshot instead)"
        );
    }
    if a.page_size != b.page_size || (a.auto_vacuum != 0) != (b.auto_vacuum != 0) {
        let unrecorded = if a.unrecorded || b.unrecorded {
            " (an older sqlgit's snapshot did not record them: its restore has SQLite's \
             defaults, page_size 4096 and auto_vacuum none)"
        } else {
            ""
        };
        bail!(
            "the page size or auto_vacuum changed between the snapshots{unrecorded}; an SQL \
             patch cannot change them exactly (it takes a VACUUM, which renumbers rowids; \
             restore the newer snapshot instead)"
        );
    }
    Ok(())
}

fn drop_table(shape: &Shape, out: &mut dyn Write) -> Result<()> {
    if shape.virtual_table {
        // The way the dump made it: its row in sqlite_schema (its shadow tables are tables).
        // RESET reloads the schema, so the name is free for whatever takes it next.
        writeln!(
            out,
            ".dbconfig defensive off\nPRAGMA writable_schema=ON;\n\
             DELETE FROM sqlite_schema WHERE type='table' AND name={};\n\
             PRAGMA writable_schema=RESET;",
            quote_str(&shape.name)
        )?;
    } else {
        writeln!(out, "DROP TABLE IF EXISTS {};", shape.quoted())?;
    }
    Ok(())
}

/// Row changes of a table whose definition did not change.
fn rows(plan: &Plan, t: &TablePlan, out: &mut dyn Write) -> Result<()> {
    let repo = plan.repo;
    let (from_chunks, to_chunks) = t.changed_chunks(repo)?;
    if from_chunks.is_empty() && to_chunks.is_empty() {
        return Ok(());
    }
    let shape = t.to_shape.as_deref().expect("newer side");
    if shape.key == KeyKind::Multiset {
        // No name reaches the rowid: rewrite the table, so rows keep the newer dump's order.
        writeln!(out, "DELETE FROM {};", shape.quoted())?;
        for chunk in chunks::all(repo, t.to.and_then(|f| f.rows))? {
            out.write_all(&chunks::read(repo, &chunk)?)?;
        }
        return Ok(());
    }
    let rows = t.rows(repo, &from_chunks, &to_chunks);
    let table = shape.quoted();
    let mut line = Vec::new();
    for_each_change(&rows, &mut |e| {
        if let Event::Delete(a) | Event::Update(a, _) = e {
            line.clear();
            line.extend_from_slice(b"DELETE FROM ");
            line.extend_from_slice(table.as_bytes());
            line.extend_from_slice(b" WHERE ");
            match &shape.key {
                KeyKind::Rowid { pos, column } => {
                    line.extend_from_slice(column.as_bytes());
                    line.push(b'=');
                    line.extend_from_slice(a.value(*pos));
                }
                KeyKind::Columns(positions) => key_terms(shape, positions, &a, &mut line),
                KeyKind::Multiset => unreachable!("handled above"),
            }
            line.extend_from_slice(b";\n");
            out.write_all(&line)?;
        }
        Ok(())
    })?;
    for_each_change(&rows, &mut |e| {
        if let Event::Insert(b) | Event::Update(_, b) = e {
            out.write_all(b.text)?;
        }
        Ok(())
    })
}

/// The WHERE terms that find exactly the row `a` by its WITHOUT ROWID key. A bare `"k"=value`
/// compares with the column's collation, which may be looser than the key's (a NOCASE column
/// keyed BINARY holds both 'a' and 'A'), so every term compares bytes (`COLLATE BINARY`: one
/// stored value at most); a key that compares with another collation gets that term too, so
/// SQLite still finds the row through the key instead of scanning the table.
fn key_terms(shape: &Shape, positions: &[usize], a: &RowRef<'_>, line: &mut Vec<u8>) {
    for (n, &p) in positions.iter().enumerate() {
        let column = quote_ident(&shape.columns[p]);
        let key = shape.key_collations.get(n).map_or("BINARY", String::as_str);
        let colls: &[&str] = if key.eq_ignore_ascii_case("BINARY") {
            &["BINARY"]
        } else {
            &[key, "BINARY"]
        };
        for coll in colls {
            if n > 0 || *coll != colls[0] {
                line.extend_from_slice(b" AND ");
            }
            line.extend_from_slice(format!("{column} COLLATE {}=", quote_ident(coll)).as_bytes());
            line.extend_from_slice(a.value(p));
        }
    }
}

/// sqlite_sequence and sqlite_stat1 as in the newer snapshot. Without `--table` they are always
/// rewritten: dropping a table or index and inserting rows change them as a side effect.
fn system_tables(plan: &Plan, out: &mut dyn Write) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    for (table, file) in [
        (SEQUENCE, "2-sqlite_sequence.sql"),
        (STAT1, "3-sqlite_stat1.sql"),
    ] {
        if plan.filtered && !plan.tables.iter().any(|t| t.system && t.name() == table) {
            continue;
        }
        if let Some(e) = plan.to.db.get_name(file) {
            out.write_all(plan.repo.find_blob(e.id())?.content())?;
        } else if plan.from.db.get_name(file).is_some() {
            if table == SEQUENCE {
                // SQLite refuses to drop sqlite_sequence: emptying it is as close as SQL gets.
                warnings.push(
                    "the newer snapshot has no sqlite_sequence table, which SQL cannot drop; \
                     the patch leaves it empty"
                        .to_string(),
                );
                out.write_all(b"DELETE FROM sqlite_sequence;\n")?;
            } else {
                out.write_all(b"DROP TABLE IF EXISTS sqlite_stat1;\n")?;
            }
        }
    }
    Ok(warnings)
}
