//! Reading a changed WITHOUT ROWID table in part, by key (see [`read_keyed_in_part`]).

use anyhow::{Context, Result};
use rusqlite::Connection;
use rusqlite::types::Value;

use super::oldkeyed::{OldEntry, OldKeyed};
use super::{NotAsMapped, Previous, Replaced, Reuse};
use crate::dump::Format;
use crate::dump::Sink;
use crate::dump::keylist::{KeyList, PageKeys, within_budget};
use crate::dump::pagelist::PageList;
use crate::dump::pages::{Keys, Kind, Page, Side, TableMap, changed_pages};
use crate::dump::path::ordinal_chunk_name;
use crate::dump::rows::{Chunk, From, Groups, NextRow, Range, dump_rows_in};
use crate::dump::schema::Table;
use crate::dump::stmt::Encoding;

/// What the previous map has of a changed WITHOUT ROWID table: its map, and the pages and keys
/// taken out of it (see [`TableMap::take_mapped`]).
pub struct PreviousKeyed<'a> {
    pub map: &'a TableMap,
    pub pages: PageList,
    pub keys: Keys,
}

/// What [`read_keyed_in_part`] wrote.
pub struct KeyedPart {
    /// Bytes of SQL the table's rows now take, and how many of them were reused.
    pub bytes: u64,
    pub reused_bytes: u64,
    /// The first key of every chunk, in order (for the next map); None when they grew past
    /// what a table may keep (see [`crate::dump::keylist::within_budget`]).
    pub chunk_keys: Option<KeyList>,
}

/// Compares keys (SQL literals, each ended by NUL) in the table's b-tree order, in SQL: keys
/// whose values are all plain (NULL, integers, simple quoted text, blobs) are bound to one
/// prepared statement; any other spelling (reals, `char(…)` joins) is compared as SQL text.
struct KeyOrder<'c> {
    conn: &'c Connection,
    /// ` COLLATE "coll"` of each key column.
    collations: Vec<String>,
    /// Plain keys compare here, as SQLite compares bound values: every key column's collation
    /// is BINARY and the database's text is UTF-8 (BINARY compares the text's bytes as stored).
    here: bool,
    /// `SELECT (?1 COLLATE …, ?2 …) <= (?3, ?4)` for keys of `collations.len()` values.
    bound: String,
}

impl KeyOrder<'_> {
    fn new(conn: &Connection, collations: Vec<String>, encoding: Encoding) -> KeyOrder<'_> {
        let binary = |c: &String| {
            let name = c.trim_start_matches(" COLLATE ").trim_matches('"');
            c.is_empty() || name.eq_ignore_ascii_case("binary")
        };
        let here = encoding == Encoding::Utf8 && collations.iter().all(binary);
        let n = collations.len();
        let left: Vec<String> = (0..n)
            .map(|i| format!("?{}{}", i + 1, collations[i]))
            .collect();
        let right: Vec<String> = (0..n).map(|i| format!("?{}", n + i + 1)).collect();
        let bound = format!("SELECT ({}) <= ({})", left.join(","), right.join(","));
        KeyOrder {
            conn,
            collations,
            here,
            bound,
        }
    }

    /// `(a) <= (b)` in b-tree order.
    fn le(&self, a: &[u8], b: &[u8]) -> Result<bool> {
        let n = self.collations.len();
        if let (Some(a), Some(b)) = (plain_values(a), plain_values(b))
            && a.len() == n
            && b.len() == n
        {
            if self.here
                && let Some(le) = le_here(&a, &b)
            {
                return Ok(le);
            }
            let mut stmt = self.conn.prepare_cached(&self.bound)?;
            let params = rusqlite::params_from_iter(a.iter().chain(b.iter()));
            return Ok(stmt.query_row(params, |r| r.get::<_, bool>(0))?);
        }
        let a = literals(a, Some(&self.collations))?;
        let b = literals(b, None)?;
        let sql = format!("SELECT {a} <= {b}");
        Ok(self.conn.query_row(&sql, [], |r| r.get::<_, bool>(0))?)
    }

    /// The last chunk whose first key is <= `key` (None: before the first chunk).
    fn holder(&self, chunks: &KeyList, key: &[u8]) -> Result<Option<usize>> {
        let (mut lo, mut hi) = (0usize, chunks.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.le(chunks.get(mid), key)? {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo.checked_sub(1))
    }
}

/// `(a) <= (b)` for keys of plain values under BINARY collations in UTF-8, the way SQLite
/// compares values (NULL, then numbers, then text, then blobs; text and blobs by their bytes,
/// then length). None when a NULL is met (SQL says NULL; key columns are NOT NULL anyway).
fn le_here(a: &[Value], b: &[Value]) -> Option<bool> {
    use std::cmp::Ordering;
    let rank = |v: &Value| match v {
        Value::Null => 0,
        Value::Integer(_) | Value::Real(_) => 1,
        Value::Text(_) => 2,
        Value::Blob(_) => 3,
    };
    for (x, y) in a.iter().zip(b) {
        let order = match (x, y) {
            (Value::Null, _) | (_, Value::Null) => return None,
            (Value::Integer(x), Value::Integer(y)) => x.cmp(y),
            (Value::Text(x), Value::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
            (Value::Blob(x), Value::Blob(y)) => x.cmp(y),
            (x, y) if rank(x) != rank(y) => rank(x).cmp(&rank(y)),
            _ => return None, // a real: not a plain value
        };
        if order != Ordering::Equal {
            return Some(order == Ordering::Less);
        }
    }
    Some(true)
}

/// The values of a key (SQL literals, each ended by NUL) when every one is spelled plainly:
/// `NULL`, a decimal integer, `'text'` (UTF-8, quotes doubled) or `X'hex'`. None: some value
/// is spelled otherwise (left to SQL).
fn plain_values(key: &[u8]) -> Option<Vec<Value>> {
    let parts = key.strip_suffix(&[0])?;
    parts.split(|&b| b == 0).map(plain_value).collect()
}

fn plain_value(lit: &[u8]) -> Option<Value> {
    match lit {
        b"NULL" => Some(Value::Null),
        [b'\'', inner @ .., b'\''] => {
            let text = std::str::from_utf8(inner).ok()?;
            // Quotes inside come in pairs, and nothing else is special.
            let mut out = String::with_capacity(text.len());
            let mut rest = text;
            while let Some(at) = rest.find('\'') {
                if rest.as_bytes().get(at + 1) != Some(&b'\'') {
                    return None;
                }
                out.push_str(&rest[..=at]);
                rest = &rest[at + 2..];
            }
            out.push_str(rest);
            Some(Value::Text(out))
        }
        [b'X', b'\'', hex @ .., b'\''] if hex.len() % 2 == 0 => {
            let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
            let bytes: Option<Vec<u8>> = hex
                .chunks(2)
                .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
                .collect();
            bytes.map(Value::Blob)
        }
        _ => {
            let digits = lit.strip_prefix(b"-").unwrap_or(lit);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(lit)
                .ok()?
                .parse()
                .ok()
                .map(Value::Integer)
        }
    }
}

/// A key as a parenthesized SQL list, optionally with a collation after each value.
fn literals(key: &[u8], collations: Option<&[String]>) -> Result<String> {
    let parts: Vec<&[u8]> = key.split(|&b| b == 0).collect();
    let parts = &parts[..parts.len().saturating_sub(1)]; // the NUL ends the last one too
    let mut out = String::from("(");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(
            std::str::from_utf8(part).map_err(|_| anyhow::anyhow!("a key is not UTF-8 SQL"))?,
        );
        if let Some(c) = collations.and_then(|c| c.get(i)) {
            out.push_str(c);
        }
    }
    out.push(')');
    Ok(out)
}

/// [`read_in_part`] for a WITHOUT ROWID table read by key (`table.key_order`): the keys of the
/// changed pages give ranges, the ranges the previous chunks that may differ (the first keys of
/// the previous chunks are in the map), and those are read again from the first key of the
/// first of them, until a row that starts a later previous chunk comes right after a boundary.
/// What lies between reads is reused: whole group folders where nothing in or right after them
/// changed ([`OldKeyed`]), else chunk by chunk. None: the table must be read whole (a key that
/// is not UTF-8), nothing was passed to `sink`.
#[allow(clippy::too_many_arguments)]
pub fn read_keyed_in_part(
    conn: &Connection,
    table: &Table,
    (encoding, format): (Encoding, Format),
    previous: &dyn Previous,
    old: PreviousKeyed,
    (new_pages, new_keys): (&PageList, &PageKeys),
    sink: &mut dyn Sink,
    reuse: &mut Reuse,
) -> Result<Option<KeyedPart>> {
    let collations = table
        .key_order
        .as_ref()
        .context("no key order")?
        .iter()
        .map(|c| {
            c.rsplit_once(" COLLATE ")
                .map(|(_, coll)| format!(" COLLATE {coll}"))
                .unwrap_or_default()
        })
        .collect();
    let order = KeyOrder::new(conn, collations, encoding);
    let PreviousKeyed {
        map: old,
        pages: old_pages,
        keys: Keys {
            pages: old_page_keys,
            chunks: chunks_keys,
        },
    } = old;
    let chunks_keys = &chunks_keys;
    let changed = changed_keys(&old_pages, new_pages, &old_page_keys, new_keys);
    // Keys are compared and read from as SQL text (see `literals`): a key with text that is not
    // UTF-8 (stored as such) has none, so the table is read whole, as by a full read.
    let utf8 = |k: &[u8]| std::str::from_utf8(k).is_ok();
    if !chunks_keys.iter().all(utf8) || !changed.iter().all(|(a, b)| utf8(a) && utf8(b)) {
        return Ok(None);
    }
    // Not needed again: their memory goes before the rows are read.
    drop((old_pages, old_page_keys));
    let merged = changed_chunks(&order, chunks_keys, changed)?;
    let n = chunks_keys.len();
    let rows_tree = previous.rows_tree(&table.dir)?;
    let mut old_rows = OldKeyed::new(previous, rows_tree, chunks_keys, format)?;
    let mut placed = Placed {
        table,
        keys: chunks_keys,
        groups: Groups::new(format, true),
        out_keys: PlacedKeys {
            count: 0,
            keys: Some(KeyList::with_capacity(n)),
        },
    };
    let replaced = Replaced::default();
    let mut bytes = old.bytes;
    let mut read_bytes = 0u64;
    for (from, to) in merged {
        let start = from.unwrap_or(0).max(old_rows.taken());
        if start >= n && from.is_some() && old_rows.taken() >= n {
            break; // everything was read already
        }
        placed.reuse_before(&mut old_rows, start, false, sink, reuse)?;
        let read_from = match from {
            None if old_rows.taken() == 0 => From::Start,
            _ if start < n => From::Key(literals(chunks_keys.get(start), None)?),
            _ => From::Start, // unreachable: handled above
        };
        // Stop at a row that starts a previous chunk at or after `to`, right after a boundary
        // (the first row read starts chunk `start` itself, unless reading from the table's start).
        let mut watch = match read_from {
            From::Start => to,
            _ => to.max(start + 1),
        };
        let mut resume: Option<usize> = None;
        let mut stop = |row: &NextRow| -> bool {
            // A few ahead: a previous chunk whose first row was deleted is passed over.
            for j in watch..n.min(watch + 4) {
                if row.key == chunks_keys.get(j) {
                    if row.after_boundary {
                        resume = Some(j);
                        return true;
                    }
                    watch = j + 1;
                    break;
                }
            }
            false
        };
        let first_ordinal = placed.out_keys.len();
        let mut new_bytes = 0u64;
        let out_keys = &mut placed.out_keys;
        let mut emit_new = |chunk: Chunk| -> Result<()> {
            new_bytes += chunk.data.len() as u64;
            out_keys.push(&chunk.first_key);
            reuse.chunks_read += 1;
            crate::dump::put_chunk(sink, table, chunk)
        };
        let range = Range {
            from: read_from,
            first_ordinal,
            stop: &mut stop,
            statement: None,
        };
        let groups = &mut placed.groups;
        dump_rows_in(
            conn,
            table,
            encoding,
            format,
            Some(range),
            groups,
            &mut emit_new,
        )?;
        // The previous chunks the read replaced.
        while let Some(entry) = old_rows.next(resume.unwrap_or(n), |_, _, _, _| false)? {
            if let OldEntry::Chunk { oid, .. } = entry {
                replaced.add(oid);
            }
        }
        bytes += new_bytes;
        read_bytes += new_bytes;
        if resume.is_none() {
            break; // read to the end of the table
        }
    }
    placed.reuse_before(&mut old_rows, n, true, sink, reuse)?;
    if old_rows.taken() != n || !old_rows.is_done() {
        return Err(NotAsMapped("chunks do not match its map".into()).into());
    }
    let mut out_keys = placed.out_keys.keys;
    if let Some(keys) = &mut out_keys {
        keys.shrink_to_fit();
    }
    let bytes = bytes.saturating_sub(replaced.bytes(previous)?);
    Ok(Some(KeyedPart {
        bytes,
        reused_bytes: bytes.saturating_sub(read_bytes),
        chunk_keys: out_keys,
    }))
}

/// The intervals `[from, to)` of previous chunks (their first keys: `chunks`) that the changed
/// key ranges reach, merged and in order (from None: the table's start).
fn changed_chunks(
    order: &KeyOrder,
    chunks: &KeyList,
    changed: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<Vec<(Option<usize>, usize)>> {
    let mut spans: Vec<(Option<usize>, usize)> = Vec::new();
    for (first, last) in changed {
        let from = order.holder(chunks, &first)?;
        let to = match order.holder(chunks, &last)? {
            Some(i) => i + 1,
            None => 0,
        };
        spans.push((from, to.max(from.map_or(0, |f| f + 1))));
    }
    spans.sort_unstable_by_key(|&(from, _)| from.map_or(0, |f| f + 1));
    let mut merged: Vec<(Option<usize>, usize)> = Vec::new();
    for (from, to) in spans {
        match merged.last_mut() {
            Some(last) if from.map_or(0, |f| f) <= last.1 => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    Ok(merged)
}

/// The first keys of the chunks placed so far, and how many (chunks are named by position):
/// the keys are dropped when they grow past what a table may keep, the count goes on.
struct PlacedKeys {
    count: u64,
    keys: Option<KeyList>,
}

impl PlacedKeys {
    fn push(&mut self, key: &[u8]) {
        self.count += 1;
        if let Some(keys) = &mut self.keys {
            if within_budget(keys.bytes() + key.len(), self.count as usize) {
                keys.push(key);
            } else {
                self.keys = None; // the table is read whole when it changes next
            }
        }
    }

    fn len(&self) -> u64 {
        self.count
    }
}

/// The new rows tree of a table read in part, as far as it was placed.
struct Placed<'a> {
    table: &'a Table,
    /// The first keys of the previous snapshot's chunks.
    keys: &'a KeyList,
    groups: Groups,
    /// The first keys of the chunks placed.
    out_keys: PlacedKeys,
}

impl Placed<'_> {
    /// Place the previous snapshot's entries that come before its chunk `limit` (`last`: and
    /// nothing is read after them): whole folders when their chunks, and the one after them,
    /// are all before `limit` (or they end the table) and their first chunk starts a group of
    /// their level here too; else chunk by chunk.
    fn reuse_before(
        &mut self,
        old_rows: &mut OldKeyed,
        limit: usize,
        last: bool,
        sink: &mut dyn Sink,
        reuse: &mut Reuse,
    ) -> Result<()> {
        let n = self.keys.len();
        loop {
            let at_start = self.groups.is_empty();
            let whole = |_: usize, end: usize, level: usize, by_key: usize| {
                (end < limit || (last && end == n)) && (by_key >= level || at_start)
            };
            let Some(entry) = old_rows.next(limit, whole)? else {
                return Ok(());
            };
            match entry {
                OldEntry::Chunk { index, oid } => {
                    let name = ordinal_chunk_name(self.out_keys.len());
                    let (folders, name) = self.groups.place_chunk(name, self.keys.get(index));
                    let path = crate::dump::rows_path(self.table, &folders, &name);
                    sink.reuse(&path, oid, false, 0)?;
                    self.out_keys.push(self.keys.get(index));
                    reuse.chunks_reused += 1;
                }
                OldEntry::Folder {
                    start,
                    end,
                    level,
                    oid,
                } => {
                    let mut folders = self.groups.place_group(level, self.keys.get(start))?;
                    let name = folders.pop().expect("the group's own folder");
                    let path = crate::dump::rows_path(self.table, &folders, &name);
                    sink.reuse(&path, oid, true, 0)?;
                    for i in start..end {
                        self.out_keys.push(self.keys.get(i));
                    }
                    reuse.folders_reused += 1;
                }
            }
        }
    }
}

/// The key ranges (first, last) where rows may differ between `old` and `new` (both in page
/// number order, with their keys by page number): those of the leaves and overflow pages that
/// changed, appeared or went away, and the keys of the rows in interior cells that are on one
/// side only. Interior cells hold whole rows in an index b-tree; one that moved between pages
/// unchanged, as splits and merges move them, is no change.
fn changed_keys(
    old: &PageList,
    new: &PageList,
    old_keys: &PageKeys,
    new_keys: &PageKeys,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let same = |o: &Page, n: &Page| (o.kind, o.hash) == (n.kind, n.hash);
    let mut ranges = Vec::new();
    // (hash, key, side) of the cells of the interior pages that changed.
    let mut cells: Vec<(u64, &[u8], Side)> = Vec::new();
    for (side, p) in changed_pages(old, new, same) {
        let keys = match side {
            Side::Old => old_keys,
            Side::New => new_keys,
        };
        let Some((first, last)) = keys.find(p.pgno) else {
            continue;
        };
        let before = cells.len();
        if p.kind == Kind::Interior
            && let Some(list) = keys.cells(p.pgno)
        {
            cells.extend(list.map(|(hash, key)| (hash, key, side)));
        }
        if cells.len() == before {
            ranges.push((first.to_vec(), last.to_vec())); // no cells kept: its whole range
        }
    }
    cells.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut i = 0;
    while i < cells.len() {
        let (hash, key, side) = cells[i];
        if let Some(&(h, k, s)) = cells.get(i + 1)
            && (h, k) == (hash, key)
            && s != side
        {
            i += 2; // the same row, before and after
            continue;
        }
        ranges.push((key.to_vec(), key.to_vec()));
        i += 1;
    }
    ranges
}

#[cfg(test)]
mod tests;
