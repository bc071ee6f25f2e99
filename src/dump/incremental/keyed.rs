//! Reading a changed WITHOUT ROWID table in part, by key (see [`read_keyed_in_part`]).

use anyhow::{Context, Result, bail};
use git2::Oid;
use rusqlite::Connection;

use super::{Previous, Reuse, reuse_chunk};
use crate::dump::Format;
use crate::dump::Sink;
use crate::dump::keylist::{KeyList, PageKeys};
use crate::dump::pages::{Keys, Page, Side, TableMap, changed_pages};
use crate::dump::rows::{Chunk, From, Groups, NextRow, Range, dump_rows_in};
use crate::dump::schema::Table;
use crate::dump::stmt::Encoding;

/// What [`read_keyed_in_part`] wrote.
pub struct KeyedPart {
    /// Bytes of SQL the table's rows now take, and how many of them were reused.
    pub bytes: u64,
    pub reused_bytes: u64,
    /// The first key of every chunk, in order (for the next map).
    pub chunk_keys: KeyList,
}

/// Compares keys (SQL literals, each ended by NUL) in the table's b-tree order, in SQL.
struct KeyOrder<'c> {
    conn: &'c Connection,
    /// ` COLLATE "coll"` of each key column.
    collations: Vec<String>,
}

impl KeyOrder<'_> {
    /// `(a) <= (b)` in b-tree order.
    fn le(&self, a: &[u8], b: &[u8]) -> Result<bool> {
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
/// Chunk files are named by position, so the chunks after a read are renamed, not rewritten.
#[allow(clippy::too_many_arguments)]
pub fn read_keyed_in_part(
    conn: &Connection,
    table: &Table,
    encoding: Encoding,
    format: Format,
    previous: &dyn Previous,
    (old, old_keys): (&TableMap, &Keys),
    (new_pages, new_keys): (&[Page], &PageKeys),
    sink: &mut dyn Sink,
    reuse: &mut Reuse,
) -> Result<KeyedPart> {
    let order = KeyOrder {
        conn,
        collations: table
            .key_order
            .as_ref()
            .context("no key order")?
            .iter()
            .map(|c| {
                c.rsplit_once(" COLLATE ")
                    .map(|(_, coll)| format!(" COLLATE {coll}"))
                    .unwrap_or_default()
            })
            .collect(),
    };
    let chunks_keys = &old_keys.chunks;
    // Intervals [from, to) of previous chunks that may differ (from None: the table's start).
    let mut spans: Vec<(Option<usize>, usize)> = Vec::new();
    for (first, last) in changed_keys(&old.pages, new_pages, &old_keys.pages, new_keys) {
        let from = order.holder(chunks_keys, &first)?;
        let to = match order.holder(chunks_keys, &last)? {
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

    let dir = table.dir.as_str();
    let mut files = super::all_chunks(previous, dir)?;
    let mut next_file = 0usize; // index of the next previous chunk in `files`
    let mut groups = Groups::new(format);
    let mut out_keys = KeyList::with_capacity(chunks_keys.len());
    let mut bytes = old.bytes;
    let mut read_bytes = 0u64;
    let mut take_file = |next_file: &mut usize| -> Result<Oid> {
        let (_, oid) = files
            .next()
            .context("the previous snapshot has fewer chunks than its map")??;
        *next_file += 1;
        Ok(oid)
    };
    let reuse_old = |groups: &mut Groups, sink: &mut dyn Sink, ordinal: usize, oid: Oid| {
        let name = crate::dump::path::ordinal_chunk_name(ordinal as u64);
        reuse_chunk(sink, groups, table, &name, oid)
    };
    for (from, to) in merged {
        let start = from.unwrap_or(0).max(next_file);
        if start >= chunks_keys.len() && from.is_some() && next_file >= chunks_keys.len() {
            break; // everything was read already
        }
        while next_file < start {
            let i = next_file;
            let oid = take_file(&mut next_file)?;
            reuse_old(&mut groups, sink, out_keys.len(), oid)?;
            out_keys.push(chunks_keys.get(i));
            reuse.chunks_reused += 1;
        }
        let read_from = match from {
            None if next_file == 0 => From::Start,
            _ if start < chunks_keys.len() => From::Key(literals(chunks_keys.get(start), None)?),
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
            for j in watch..chunks_keys.len().min(watch + 4) {
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
        let first_ordinal = out_keys.len() as u64;
        let mut new_bytes = 0u64;
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
        dump_rows_in(
            conn,
            table,
            encoding,
            format,
            Some(range),
            &mut groups,
            &mut emit_new,
        )?;
        let end = resume.unwrap_or(chunks_keys.len());
        while next_file < end {
            let oid = take_file(&mut next_file)?;
            bytes = bytes.saturating_sub(previous.blob_size(oid)?);
        }
        bytes += new_bytes;
        read_bytes += new_bytes;
        if resume.is_none() {
            break; // read to the end of the table
        }
    }
    while next_file < chunks_keys.len() {
        let i = next_file;
        let oid = take_file(&mut next_file)?;
        reuse_old(&mut groups, sink, out_keys.len(), oid)?;
        out_keys.push(chunks_keys.get(i));
        reuse.chunks_reused += 1;
    }
    out_keys.shrink_to_fit();
    if files.next().is_some() {
        bail!(
            "the previous snapshot has more chunks than its map; run `sqlgit snapshot --full` once"
        );
    }
    Ok(KeyedPart {
        bytes,
        reused_bytes: bytes.saturating_sub(read_bytes),
        chunk_keys: out_keys,
    })
}

/// The key ranges (first, last) of the index b-tree pages that changed, appeared or went away
/// between `old` and `new` (both in page number order, with their keys by page number).
fn changed_keys(
    old: &[Page],
    new: &[Page],
    old_keys: &PageKeys,
    new_keys: &PageKeys,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let key_of = |keys: &PageKeys, pgno: u32| -> Option<(Vec<u8>, Vec<u8>)> {
        let (first, last) = keys.find(pgno)?;
        Some((first.to_vec(), last.to_vec()))
    };
    let same = |o: &Page, n: &Page| (o.kind, o.hash) == (n.kind, n.hash);
    changed_pages(old, new, same)
        .into_iter()
        .filter_map(|(side, p)| match side {
            Side::Old => key_of(old_keys, p.pgno),
            Side::New => key_of(new_keys, p.pgno),
        })
        .collect()
}
