//! The whole read of a snapshot's table, or the part of it that changed: maps the table's pages
//! while the dump reads it, and reuses what the previous snapshot has (see [`super::incremental`]).

use std::sync::Arc;

use anyhow::Result;
use rusqlite::Connection;

use super::incremental::{self, Previous, Reuse};
use super::pagelist::PageList;
use super::pages::{self, Mapped, Pages, TableMap};
use super::schema::Table;
use super::stmt::Encoding;
use super::{Format, Sink, chunksums, keylist, parallel, put_chunk, rows};

/// Maps each table's pages while the dump reads it, and reuses what the previous snapshot has.
pub(super) struct Mapper<'c, 'p> {
    pub pages: Pages<'c>,
    /// The database's identity is the previous map's: no page changed, none is hashed (see
    /// [`super::identity`]).
    pub known_unchanged: bool,
    /// A second connection for tables read whole (see [`parallel::helper_for_snapshot`]).
    pub helper: Option<parallel::Helper>,
    pub previous: Option<&'p dyn Previous>,
    pub tables: Vec<Arc<TableMap>>,
    pub reuse: Reuse,
    /// Bytes of SQL in chunks reused inside partly read tables (not seen by the sink).
    pub reused_bytes: u64,
}

impl Mapper<'_, '_> {
    /// Put `table`'s rows into `sink`; returns the row count.
    pub fn rows(
        &mut self,
        conn: &Connection,
        table: &Table,
        encoding: Encoding,
        format: Format,
        sink: &mut dyn Sink,
    ) -> Result<u64> {
        let rootpage = table.rootpage;
        let old = self
            .previous
            .zip(self.previous.and_then(|p| p.map().table(rootpage)));
        if let Some((previous, old)) = old {
            if (self.known_unchanged && old.mapped().is_some()) || self.pages.unchanged(old)? {
                self.reuse.tables_reused += 1;
                self.tables.push(old.clone());
                return incremental::reuse_unchanged(previous, old, table, sink);
            }
            // Changed: what the map knew of it is compared with the table as it is now once,
            // then its memory goes (the new map has its own).
            if let Some(mapped) = old.take_mapped() {
                if incremental::can_read_in_part(table) {
                    let old = (&**old, mapped);
                    return self.read_in_part(conn, table, (encoding, format), previous, old, sink);
                }
                if let (
                    Mapped {
                        pages,
                        keys: Some(keys),
                        ..
                    },
                    Some(_),
                ) = (mapped, &table.key_order)
                {
                    let old = incremental::PreviousKeyed {
                        map: old,
                        pages,
                        keys,
                    };
                    if let Some(rows) = self.read_keyed_in_part(
                        conn,
                        table,
                        (encoding, format),
                        previous,
                        old,
                        sink,
                    )? {
                        return Ok(rows);
                    }
                }
            }
        }
        let mut bytes = 0u64;
        let mut chunks = 0u64;
        let keyed = table.key_order.is_some();
        let mut chunk_keys = keylist::KeyList::default();
        let summed = incremental::can_read_in_part(table);
        let mut firsts: Vec<i64> = Vec::new();
        let mut keys_kept = keyed;
        let mut emit = |chunk: rows::Chunk| {
            bytes += chunk.data.len() as u64;
            chunks += 1;
            if keys_kept {
                let kept = chunk_keys.bytes() + chunk.first_key.len();
                if keylist::within_budget(kept, chunks as usize) {
                    chunk_keys.push(&chunk.first_key);
                } else {
                    keys_kept = false; // keys too long to keep: the table is read whole
                    chunk_keys = keylist::KeyList::default();
                }
            }
            if summed {
                firsts.extend(chunk.first_rowid);
            }
            put_chunk(sink, table, chunk)
        };
        let helper = self.helper.as_mut();
        let rows = parallel::read_rows(conn, helper, table, encoding, format, &mut emit)?;
        let keys = keys_kept.then_some(table.key_columns.len());
        let what = pages::What {
            keys,
            firsts: summed.then_some(&firsts[..]),
        };
        let mut walked = self.pages.walk_what(rootpage, 0, what)?;
        let sums = walked
            .sums
            .take()
            .map(|sums| chunksums::whole(&firsts, &sums));
        drop(firsts);
        self.reuse.tables_read += 1;
        self.reuse.chunks_read += chunks;
        let mapped = Mapped {
            pages: walked.pages.into_iter().collect(),
            keys: walked.keys.map(|pages| {
                chunk_keys.shrink_to_fit();
                pages::Keys {
                    pages,
                    chunks: chunk_keys,
                }
            }),
            sums,
        };
        self.tables
            .push(Arc::new(TableMap::new(rootpage, (rows, bytes), mapped)));
        Ok(rows)
    }

    /// A changed WITHOUT ROWID table read by key: only the chunks the changed keys reach (see
    /// [`incremental::read_keyed_in_part`]). None: the new pages' keys could not all be kept,
    /// or a key is not UTF-8 (read the table whole).
    fn read_keyed_in_part(
        &mut self,
        conn: &Connection,
        table: &Table,
        (encoding, format): (Encoding, Format),
        previous: &dyn Previous,
        old: incremental::PreviousKeyed,
        sink: &mut dyn Sink,
    ) -> Result<Option<u64>> {
        let rootpage = table.rootpage;
        let n = table.key_columns.len();
        let walked = self.pages.walk_keyed(rootpage, old.pages.len(), Some(n))?;
        let Some(page_keys) = walked.keys else {
            return Ok(None);
        };
        let new_pages: PageList = walked.pages.into_iter().collect();
        let Some(part) = incremental::read_keyed_in_part(
            conn,
            table,
            (encoding, format),
            previous,
            old,
            (&new_pages, &page_keys),
            sink,
            &mut self.reuse,
        )?
        else {
            return Ok(None);
        };
        self.reuse.tables_partial += 1;
        self.reused_bytes += part.reused_bytes;
        let mapped = Mapped {
            pages: new_pages,
            keys: part.chunk_keys.map(|chunks| pages::Keys {
                pages: page_keys,
                chunks,
            }),
            sums: None,
        };
        let map = TableMap::new(rootpage, (walked.rows, part.bytes), mapped);
        self.tables.push(Arc::new(map));
        Ok(Some(walked.rows))
    }

    /// A changed rowid table: only the chunks whose rows changed are read (see
    /// [`incremental`] and [`chunksums`]).
    fn read_in_part(
        &mut self,
        conn: &Connection,
        table: &Table,
        (encoding, format): (Encoding, Format),
        previous: &dyn Previous,
        (old, mapped): (&TableMap, Mapped),
        sink: &mut dyn Sink,
    ) -> Result<u64> {
        let rootpage = table.rootpage;
        let Mapped {
            pages: old_pages,
            sums: old_sums,
            ..
        } = mapped;
        let (pages, rows) = self.pages.walk(rootpage, old_pages.len())?;
        let pages: PageList = pages.into_iter().collect();
        let (leaves, overflow) = pages::changed_ranges_split(&old_pages, &pages);
        drop(old_pages); // compared: its memory goes before the rows are read
        let (leaves, summed) = match &old_sums {
            Some(sums) => {
                let narrowed = chunksums::narrow(&mut self.pages, rootpage, sums, &leaves)?;
                (narrowed.changed, narrowed.summed)
            }
            None => (leaves, Vec::new()),
        };
        let ranges = pages::merge_ranges([&leaves[..], &overflow[..]].concat());
        let mut part = incremental::PartRead::default();
        let (bytes, reused_bytes) = incremental::read_in_part(
            conn,
            table,
            encoding,
            format,
            previous,
            old,
            &ranges,
            sink,
            &mut self.reuse,
            &mut part,
        )?;
        let sums = match &old_sums {
            Some(sums) => Some(chunksums::after_partial_read(
                &mut self.pages,
                rootpage,
                sums,
                &part.spans,
                &part.firsts,
                &summed,
            )?),
            None => None,
        };
        self.reuse.tables_partial += 1;
        self.reused_bytes += reused_bytes;
        let mapped = Mapped {
            pages,
            keys: None,
            sums,
        };
        self.tables
            .push(Arc::new(TableMap::new(rootpage, (rows, bytes), mapped)));
        Ok(rows)
    }
}
