//! The page map: which b-tree pages hold each table, and a keyed hash of each, taken inside a
//! snapshot's read transaction.
//!
//! SQLite shows its pages as a table (`sqlite_dbpage`, read through the pager: WAL frames
//! included, the view is the transaction's). A table's rows live only in the pages reached from
//! its root page (interior pages, leaves, overflow chains), so when none of the pages a table
//! had at the last snapshot changed, and its root page and schema are the same, its rows are the
//! same — proof by walking the b-tree from the same root through the same bytes. For a table
//! that did change, the leaves record the rowid range they held, so the rows that can differ
//! lie in the ranges of leaves (and overflow pages) that changed, appeared or went away.
//!
//! The hash is XXH3-64 keyed with a random seed kept in the map (0600): fast enough to read a
//! whole database at memory speed, 8 bytes a page in memory, and not predictable to someone
//! who writes data to make two pages collide (a chance collision: 2^-64 per changed page; the
//! daily check run would still catch it).

use std::io::Read;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use rusqlite::Connection;
use xxhash_rust::xxh3::{Xxh3, xxh3_64_with_seed};

use super::btree::{be16, be32, varint};
use super::fileview::FileView;
use super::keylist::{PageKeys, within_budget};
use super::pagelist::PageList;
use super::record::record_key;
use super::stmt::{Cell, Encoding, RawStmt};

mod changes;
mod split;
mod sums;

pub use changes::{
    Ranges, Side, changed_pages, changed_ranges, changed_ranges_split, merge_ranges,
};
use sums::{CellSums, add_runs};

/// What a page is to the table that owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A table or index interior page.
    Interior = 1,
    /// A table leaf: `lo..=hi` are its first and last rowids (`lo > hi` when empty).
    Leaf = 2,
    /// An overflow page of the row with rowid `lo` (0 in an index b-tree).
    Overflow = 3,
    /// A leaf of an index b-tree (a WITHOUT ROWID table): no rowids.
    IndexLeaf = 4,
}

impl Kind {
    pub(super) fn from_u8(b: u8) -> Result<Kind> {
        Ok(match b {
            1 => Kind::Interior,
            2 => Kind::Leaf,
            3 => Kind::Overflow,
            4 => Kind::IndexLeaf,
            _ => bail!("page map: unknown page kind {b}"),
        })
    }
}

/// One page of a table, as the walk found it. Packed: 29 bytes, not 32 (a walk holds one per
/// page of its table until they are sorted and kept as a [`PageList`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, packed)]
pub struct Page {
    pub pgno: u32,
    pub kind: Kind,
    pub hash: u64,
    pub lo: i64,
    pub hi: i64,
}

/// What [`Pages::walk_keyed`] found.
pub struct Walked {
    pub pages: Vec<Page>,
    pub rows: u64,
    pub keys: Option<PageKeys>,
    /// Pages left to walk (see [`Pages::walk_from`]).
    deferred: Vec<u32>,
    /// With [`What::firsts`]: the sum of the cells of each chunk (see [`Pages::range_sums`]);
    /// None when a row lay before the first chunk (the sums are not kept then). Inside a walk:
    /// where the parts walked so far are added up (see [`Walked::merge`]).
    pub sums: Option<Vec<u64>>,
    /// Cells summed by chunk (chunk, sum) and not added to `sums` yet.
    runs: Vec<(usize, u64)>,
    /// A row lay before the first chunk.
    stray: bool,
}

/// What a walk gathers besides the pages.
#[derive(Clone, Copy, Default)]
pub struct What<'a> {
    /// An index b-tree's key fields (see [`Pages::walk_keyed`]).
    pub keys: Option<usize>,
    /// A rowid table's chunks (their first rowids, ascending): sum each one's cells as the
    /// leaves go by, as [`Pages::range_sums`] would.
    pub firsts: Option<&'a [i64]>,
}

impl Walked {
    /// Add what another part of the same b-tree's walk found.
    fn merge(&mut self, other: Walked) {
        self.stray |= other.stray;
        match &mut self.sums {
            Some(sums) => add_runs(sums, &other.runs),
            None => self.runs.extend_from_slice(&other.runs),
        }
        self.pages.extend_from_slice(&other.pages);
        self.rows += other.rows;
        self.keys = match (self.keys.take(), other.keys) {
            (Some(mut mine), Some(theirs))
                if within_budget(mine.bytes() + theirs.bytes(), self.pages.len()) =>
            {
                mine.append(&theirs);
                Some(mine)
            }
            _ => None,
        };
    }
}

/// A table's pages and what its rows came to in the snapshot.
#[derive(Debug, Default)]
pub struct TableMap {
    pub rootpage: u32,
    /// Rows and bytes of SQL its row files held (for the commit message of a run that reuses them).
    pub rows: u64,
    pub bytes: u64,
    /// What the map knows of the table's b-tree. None once a run that found the table changed
    /// took it out of the previous map (see [`TableMap::take_mapped`]).
    mapped: Mutex<Option<Mapped>>,
}

/// What a map knows of a table's b-tree: what a run compares the table as it is now with.
#[derive(Debug, Default)]
pub struct Mapped {
    pub pages: PageList,
    /// WITHOUT ROWID tables read by key: the keys of the pages (by page number), and the first
    /// key of each chunk of rows in the snapshot, in order. None: not kept (read such a table
    /// whole when it changed).
    pub keys: Option<Keys>,
    /// Rowid tables read in part: each chunk's first rowid and the sum of its rows' cells (see
    /// [`super::chunksums`]). None: not kept (every chunk next to a changed leaf is read).
    pub sums: Option<super::chunksums::ChunkSums>,
}

impl TableMap {
    pub fn new(rootpage: u32, (rows, bytes): (u64, u64), mapped: Mapped) -> TableMap {
        TableMap {
            rootpage,
            rows,
            bytes,
            mapped: Some(mapped).into(),
        }
    }

    /// What the map knows of the b-tree (None: taken).
    pub fn mapped(&self) -> std::sync::MutexGuard<'_, Option<Mapped>> {
        self.mapped.lock().expect("table map")
    }

    /// What the map knows of the b-tree, leaving nothing: a run that found the table changed
    /// compares it with the table as it is now once, then its memory goes (the new map has
    /// its own). None when it was taken already.
    pub fn take_mapped(&self) -> Option<Mapped> {
        self.mapped().take()
    }
}

/// See [`Mapped::keys`].
#[derive(Clone, Debug, Default)]
pub struct Keys {
    pub pages: PageKeys,
    pub chunks: super::keylist::KeyList,
}

/// The page map of one database in one snapshot.
#[derive(Clone, Debug, Default)]
pub struct PageMap {
    /// The commit whose tree this map describes (all zero until the commit is made).
    pub commit: [u8; 20],
    /// Everything besides the pages that the dump's text depends on (see [`fingerprint`]).
    pub fingerprint: u128,
    pub seed: u64,
    /// By root page; shared with the next map when a table did not change.
    pub tables: Vec<Arc<TableMap>>,
}

/// Everything besides table pages that the dump's text depends on: the whole schema (types,
/// names, root pages, SQL), encoding, page size, and `extra` (format, filters, sqlgit version).
/// A different fingerprint means the map cannot be trusted.
pub fn fingerprint(conn: &Connection, extra: &[u8]) -> Result<u128> {
    let mut h = Xxh3::new();
    h.update(extra);
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name, rootpage, sql FROM sqlite_schema ORDER BY rowid")
        .context("read schema")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        for i in 0..5 {
            let v = r.get_ref(i)?;
            let bytes: Vec<u8> = match v {
                rusqlite::types::ValueRef::Null => b"\x00N".to_vec(),
                rusqlite::types::ValueRef::Integer(n) => format!("\x01{n}").into_bytes(),
                rusqlite::types::ValueRef::Real(f) => format!("\x02{}", f.to_bits()).into_bytes(),
                rusqlite::types::ValueRef::Text(t) => [b"\x03".as_slice(), t].concat(),
                rusqlite::types::ValueRef::Blob(b) => [b"\x04".as_slice(), b].concat(),
            };
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(&bytes);
        }
    }
    for pragma in ["encoding", "page_size"] {
        let v: String = conn.query_row(&format!("SELECT * FROM pragma_{pragma}"), [], |r| {
            r.get::<_, rusqlite::types::Value>(0)
                .map(|v| format!("{v:?}"))
        })?;
        h.update(v.as_bytes());
        h.update(b"\0");
    }
    Ok(h.digest128())
}

/// Reads pages of the database in the current transaction.
pub struct Pages<'c> {
    /// Pages the file view cannot give are read through SQLite (None: a helper's pages, which
    /// has only the file view; see [`Pages::walk_keyed`]).
    stmt: Option<RawStmt<'c>>,
    seed: u64,
    /// Usable bytes per page (page size minus the reserved bytes at the end of each page).
    usable: usize,
    page_count: u32,
    /// The current page: in the file view's mapping or in SQLite's result (see [`Pages::read`]).
    cur: (*const u8, usize),
    encoding: Encoding,
    /// The database file, for pages the transaction reads from it (see [`FileView`]).
    file: Option<FileView>,
    /// A page copied out of the file (see [`Pages::read_scattered`]).
    copy: Vec<u8>,
}

impl<'c> Pages<'c> {
    pub fn new(conn: &'c Connection, seed: u64) -> Result<Pages<'c>> {
        let stmt = RawStmt::prepare(
            conn,
            "SELECT data FROM sqlite_dbpage('main') WHERE pgno = ?1",
            Encoding::Utf8,
        )
        .context("read database pages (sqlite_dbpage)")?;
        let page_count: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let mut pages = Pages {
            stmt: Some(stmt),
            seed,
            usable: 0,
            page_count: u32::try_from(page_count).unwrap_or(u32::MAX),
            cur: (std::ptr::null(), 0),
            encoding: Encoding::of(conn)?,
            file: None,
            copy: Vec::new(),
        };
        if page_count == 0 {
            // An empty file is an empty database (SQLite writes page 1 with its first table):
            // no table, so no page is ever asked for.
            return Ok(pages);
        }
        // Page 1 through SQLite first: the transaction's lock (or WAL read mark) is held
        // before the file is looked at.
        pages.read(1)?;
        let page_size = pages.cur().len();
        let reserved = pages.cur().get(20).copied().unwrap_or(0) as usize;
        pages.usable = page_size.saturating_sub(reserved);
        if pages.usable < 480 {
            bail!("page 1: not a database header");
        }
        if std::env::var_os("SQLGIT_PAGES_THROUGH_SQLITE").is_none() {
            pages.file = FileView::open(conn, page_size, pages.page_count);
            pages.copy = vec![0; page_size];
        }
        Ok(pages)
    }

    /// Make page `pgno` the current page ([`Pages::cur`]), where it is read: in the file
    /// view's mapping, or in SQLite's result for it. No copy.
    fn read(&mut self, pgno: u32) -> Result<()> {
        let data = page(&mut self.file, &mut self.stmt, self.page_count, pgno)?;
        self.cur = (data.as_ptr(), data.len());
        Ok(())
    }

    /// [`Pages::read`] for pages scattered over the file: copied out of it (one `pread`)
    /// rather than mapped, where the file view can give it.
    fn read_scattered(&mut self, pgno: u32) -> Result<()> {
        if let Some(file) = &self.file
            && file.copy_page(pgno, &mut self.copy).is_some()
        {
            self.cur = (self.copy.as_ptr(), self.copy.len());
            return Ok(());
        }
        self.read(pgno)
    }

    /// The current page (see [`Pages::read`]).
    fn cur(&self) -> &[u8] {
        // SAFETY: `cur` points into the file view's mapping (alive as long as `self.file`),
        // into `self.copy` (never resized after `new`), or into the result of
        // `self.stmt`, valid until the statement runs again — which only `read`,
        // `read_scattered` and `hash` do, and they take `&mut self`, so no slice of `cur` is
        // alive then.
        unsafe { std::slice::from_raw_parts(self.cur.0, self.cur.1) }
    }

    /// The keyed hash of page `pgno` as it is now (hashed where it is read: no copy).
    pub fn hash(&mut self, pgno: u32) -> Result<u64> {
        let data = page(&mut self.file, &mut self.stmt, self.page_count, pgno)?;
        Ok(xxh3_64_with_seed(data, self.seed))
    }

    /// Whether every page of `old` still has the hash it had: then the table's rows are the same.
    /// The pages on the b-tree's rightmost path are looked at first: rows added at the end of a
    /// table (the most common change) change them, and the table's other pages are then not
    /// hashed twice (here, and by the walk that follows).
    pub fn unchanged(&mut self, old: &TableMap) -> Result<bool> {
        let mapped = old.mapped();
        let Some(Mapped { pages, .. }) = mapped.as_ref() else {
            return Ok(false); // taken by a read of this run: not known
        };
        let mut path = self.rightmost_path(old.rootpage).unwrap_or_default();
        for p in pages {
            if path.is_empty() {
                break;
            }
            if let Some(at) = path.iter().position(|&(pgno, _)| pgno == p.pgno)
                && path.swap_remove(at).1 != p.hash
            {
                return Ok(false);
            }
        }
        if !path.is_empty() {
            return Ok(false); // a page the table did not have
        }
        for p in pages {
            if self.hash(p.pgno)? != p.hash {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The pages from `rootpage` down to the b-tree's last leaf (each interior page's right
    /// child), with their hashes as they are now.
    fn rightmost_path(&mut self, rootpage: u32) -> Result<Vec<(u32, u64)>> {
        let mut path = Vec::new();
        let mut pgno = rootpage;
        while path.len() < 64 {
            let data = page(&mut self.file, &mut self.stmt, self.page_count, pgno)?;
            path.push((pgno, xxh3_64_with_seed(data, self.seed)));
            let h = if pgno == 1 { 100 } else { 0 };
            match data.get(h) {
                Some(0x02 | 0x05) => pgno = be32(data, h + 8)?,
                _ => break,
            }
        }
        Ok(path)
    }

    /// Walk the b-tree rooted at `rootpage`: every page it reaches, hashed, in page number
    /// order, and the number of rows (cells of its leaves).
    pub fn walk(&mut self, rootpage: u32, expect: usize) -> Result<(Vec<Page>, u64)> {
        let walked = self.walk_keyed(rootpage, expect, None)?;
        Ok((walked.pages, walked.rows))
    }

    /// [`Pages::walk`], and for an index b-tree (a WITHOUT ROWID table) whose first `keys`
    /// record fields are its key, the keys of each page's first and last cell, of each
    /// overflow page's cell, and of each cell of an interior page with the hash of its bytes
    /// (None when a key does not fit in its page).
    pub fn walk_keyed(
        &mut self,
        rootpage: u32,
        expect: usize,
        keys: Option<usize>,
    ) -> Result<Walked> {
        let what = What { keys, firsts: None };
        self.walk_what(rootpage, expect, what)
    }

    /// [`Pages::walk_keyed`] gathering `what`.
    pub fn walk_what(&mut self, rootpage: u32, expect: usize, what: What) -> Result<Walked> {
        let mut walked = match self.walk_in_two(rootpage, expect, what)? {
            Some(walked) => walked,
            None => self.walk_from(rootpage, vec![rootpage], (expect, what), false)?,
        };
        walked.sums = match what.firsts {
            Some(firsts) if !walked.stray => {
                let mut sums = walked.sums.take().unwrap_or_else(|| vec![0; firsts.len()]);
                add_runs(&mut sums, &std::mem::take(&mut walked.runs));
                Some(sums)
            }
            _ => None,
        };
        if let Some(file) = &mut self.file {
            file.release(); // nothing of the file stays resident between walks
        }
        let out = &mut walked.pages;
        out.sort_unstable_by_key(|p| p.pgno);
        out.shrink_to_fit(); // kept in the map until the next snapshot
        if out.len() > self.page_count as usize {
            bail!("b-tree of page {rootpage} reaches more pages than the database has");
        }
        if out.windows(2).any(|w| w[0].pgno == w[1].pgno) {
            bail!("b-tree of page {rootpage} reaches a page twice");
        }
        if let Some(list) = &mut walked.keys {
            list.sort_by_pgno();
        }
        Ok(walked)
    }

    /// The pages reached from the pages on `todo` (a stack), unsorted; with `defer_children`,
    /// the children of `rootpage` are not walked but listed in [`Walked::deferred`]. With
    /// [`What::firsts`], the cells summed by chunk are in [`Walked::runs`].
    fn walk_from(
        &mut self,
        rootpage: u32,
        mut todo: Vec<u32>,
        (expect, what): (usize, What),
        defer_children: bool,
    ) -> Result<Walked> {
        let keys = what.keys;
        let mut sums = what.firsts.map(CellSums::new);
        let mut deferred: Option<Vec<u32>> = None;
        let mut page_keys: Option<PageKeys> = keys.map(|_| PageKeys::default());
        let mut out = Vec::with_capacity(expect + expect / 16);
        let mut rows = 0u64;
        let limit = self.page_count as usize;
        while let Some(pgno) = todo.pop() {
            if out.len() > limit {
                bail!("b-tree of page {rootpage} reaches more pages than the database has");
            }
            if out.len() % 1024 == 0 {
                super::buffers::trim_now_and_then();
            }
            self.read(pgno)?;
            let Parsed {
                page,
                children,
                overflow,
                rows: held,
            } = self.parse_page(pgno, keys, &mut page_keys, sums.as_mut())?;
            rows += held;
            out.push(page);
            if let Some(list) = &page_keys
                && !within_budget(list.bytes(), out.len())
            {
                page_keys = None; // keys too long to keep: the table is read whole
            }
            for (first, owner, key) in overflow {
                let start = out.len();
                self.walk_overflow(first, owner, &mut out, limit)?;
                if let Some(list) = &mut page_keys {
                    for p in &out[start..] {
                        list.push(p.pgno, &key, &key);
                    }
                }
            }
            if defer_children && pgno == rootpage && deferred.is_none() {
                deferred = Some(children);
                continue;
            }
            // Depth first, children in order (the order only has to be the same every time).
            todo.extend(children.into_iter().rev());
        }
        Ok(Walked {
            pages: out,
            rows,
            keys: page_keys,
            deferred: deferred.unwrap_or_default(),
            sums: None,
            runs: sums.as_mut().map(CellSums::take_runs).unwrap_or_default(),
            stray: sums.is_some_and(|s| s.stray),
        })
    }

    /// The current page (`pgno`, just read): its [`Page`] and what the walk goes on to. With
    /// `keys`, its keys go to `page_keys` (None from the first key that cannot be read); with
    /// `sums`, its rows' cells are summed.
    fn parse_page(
        &self,
        pgno: u32,
        keys: Option<usize>,
        page_keys: &mut Option<PageKeys>,
        mut sums: Option<&mut CellSums>,
    ) -> Result<Parsed> {
        let hash = xxh3_64_with_seed(self.cur(), self.seed);
        let h = if pgno == 1 { 100 } else { 0 };
        let kind = *self.cur().get(h).context("page truncated")?;
        let cells = be16(self.cur(), h + 3)? as usize;
        let interior = matches!(kind, 0x02 | 0x05);
        let pointers = h + if interior { 12 } else { 8 };
        let mut parsed = Parsed {
            page: Page {
                pgno,
                kind: match kind {
                    0x02 | 0x05 => Kind::Interior,
                    0x0a => Kind::IndexLeaf,
                    _ => Kind::Leaf,
                },
                hash,
                lo: if matches!(kind, 0x02 | 0x0a) { 0 } else { 1 },
                hi: 0,
            },
            children: Vec::new(),
            overflow: Vec::new(),
            // Every cell of a table leaf is a row, and every cell of an index b-tree.
            rows: if kind == 0x05 { 0 } else { cells as u64 },
        };
        let mut index_page = IndexPageKeys {
            interior: kind == 0x02,
            ..Default::default()
        };
        if let Some(sums) = &mut sums {
            sums.new_leaf();
        }
        for i in 0..cells {
            let at = be16(self.cur(), pointers + 2 * i)? as usize;
            match kind {
                0x05 => parsed.children.push(be32(self.cur(), at)?),
                0x0d => self.table_leaf_cell(at, i == 0, &mut parsed, sums.as_deref_mut())?,
                0x02 | 0x0a => {
                    let at = if kind == 0x02 {
                        parsed.children.push(be32(self.cur(), at)?);
                        at + 4
                    } else {
                        at
                    };
                    let wanted = i == 0 || i + 1 == cells || kind == 0x02;
                    let keys = keys.filter(|_| page_keys.is_some());
                    let (key, spill) = self.index_cell(at, keys, wanted, kind == 0x02)?;
                    match key {
                        Some((key, hash)) => {
                            index_page.add_cell(&key, hash, (i == 0, i + 1 == cells));
                            if let Some(first) = spill {
                                parsed.overflow.push((first, 0, key));
                            }
                        }
                        None => {
                            if keys.is_some() && (wanted || spill.is_some()) {
                                *page_keys = None; // a key we cannot read: no ranges
                            }
                            if let Some(first) = spill {
                                parsed.overflow.push((first, 0, Vec::new()));
                            }
                        }
                    }
                }
                _ => bail!("page {pgno} is not a b-tree page (type {kind:#04x})"),
            }
        }
        if interior {
            parsed.children.push(be32(self.cur(), h + 8)?);
        }
        if let Some(list) = page_keys
            && matches!(kind, 0x02 | 0x0a)
            && cells > 0
        {
            index_page.add_to(list, pgno);
        }
        Ok(parsed)
    }

    /// A cell of the current table leaf, at `at` (the page's `first`): its rowid bounds the
    /// page, its overflow chain is walked next, and it is summed.
    fn table_leaf_cell(
        &self,
        at: usize,
        first: bool,
        parsed: &mut Parsed,
        sums: Option<&mut CellSums>,
    ) -> Result<()> {
        let (size, n) = varint(self.cur(), at)?;
        let (rowid, m) = varint(self.cur(), at + n)?;
        let rowid = rowid as i64;
        if first {
            parsed.page.lo = rowid;
        }
        parsed.page.hi = rowid;
        let (local, spills) = self.local_size(size, true);
        if spills {
            let first = be32(self.cur(), at + n + m + local)?;
            parsed.overflow.push((first, rowid, Vec::new()));
        }
        if let Some(sums) = sums {
            let cell = self.cell_bytes(at, n + m, (local, spills))?;
            sums.add(rowid, xxh3_64_with_seed(cell, self.seed));
        }
        Ok(())
    }

    /// A cell of the current index b-tree page whose payload starts at `at`: its key (with
    /// `keys`, the key's field count, when `wanted` or the payload spills; None when it cannot
    /// be read) with the hash of the cell's bytes (`hashed`: an interior cell's, else 0), and
    /// its first overflow page.
    fn index_cell(
        &self,
        at: usize,
        keys: Option<usize>,
        wanted: bool,
        hashed: bool,
    ) -> Result<(Option<KeyedCell>, Option<u32>)> {
        let (size, n) = varint(self.cur(), at)?;
        let (local, spills) = self.local_size(size, false);
        let spill = match spills {
            true => Some(be32(self.cur(), at + n + local)?),
            false => None,
        };
        let Some(k) = keys.filter(|_| wanted || spills) else {
            return Ok((None, spill));
        };
        let Some(key) = record_key(self.local_payload(at + n, size), k, self.encoding) else {
            return Ok((None, spill));
        };
        let hash = match hashed {
            true => xxh3_64_with_seed(self.cell_bytes(at, n, (local, spills))?, self.seed),
            false => 0,
        };
        Ok((Some((key, hash)), spill))
    }

    /// The part of a payload of `size` bytes at `at` that is on this page (index b-tree cell).
    fn local_payload(&self, at: usize, size: u64) -> &[u8] {
        let (local, _) = self.local_size(size, false);
        let end = (at + local).min(self.cur().len());
        &self.cur()[at.min(end)..end]
    }

    /// How many bytes of a payload of `size` bytes a cell holds on its own page (of a table
    /// leaf, or of an index b-tree), and whether the rest spills onto overflow pages (SQLite's
    /// file format, section "Cell Payload Overflow Pages").
    pub(super) fn local_size(&self, size: u64, table_leaf: bool) -> (usize, bool) {
        let u = self.usable as u64;
        let x = if table_leaf {
            u - 35
        } else {
            ((u - 12) * 64 / 255) - 23
        };
        if size <= x {
            return (size as usize, false);
        }
        let m = ((u - 12) * 32 / 255) - 23;
        let k = m + ((size - m) % (u - 4));
        ((if k <= x { k } else { m }) as usize, true)
    }

    fn walk_overflow(
        &mut self,
        mut pgno: u32,
        owner: i64,
        out: &mut Vec<Page>,
        limit: usize,
    ) -> Result<()> {
        while pgno != 0 {
            if out.len() > limit {
                bail!("an overflow chain longer than the database");
            }
            self.read(pgno)?;
            out.push(Page {
                pgno,
                kind: Kind::Overflow,
                hash: xxh3_64_with_seed(self.cur(), self.seed),
                lo: owner,
                hi: owner,
            });
            pgno = be32(self.cur(), 0)?;
        }
        Ok(())
    }
}

/// An index b-tree cell's key and the hash of its bytes (0 where not needed).
type KeyedCell = (Vec<u8>, u64);

/// What [`Pages::parse_page`] found on a page: the page, its children in order, the overflow
/// chains its cells start (first page, owner: a table leaf's rowid, and an index cell's key),
/// and the rows it holds.
struct Parsed {
    page: Page,
    children: Vec<u32>,
    overflow: Vec<(u32, i64, Vec<u8>)>,
    rows: u64,
}

/// What an index b-tree page gives its table's [`PageKeys`] (see [`Pages::walk_keyed`]).
#[derive(Default)]
struct IndexPageKeys {
    /// An interior page (its cells are kept).
    interior: bool,
    first: Vec<u8>,
    last: Vec<u8>,
    /// An interior page's cells: the hash of each one's bytes, and its key.
    cells: Vec<(u64, Vec<u8>)>,
}

impl IndexPageKeys {
    /// Cell `key` (the page's first and/or last); on an interior page, with its `hash`.
    fn add_cell(&mut self, key: &[u8], hash: u64, (first, last): (bool, bool)) {
        if first {
            self.first = key.to_vec();
        }
        if last {
            self.last = key.to_vec();
        }
        if self.interior {
            self.cells.push((hash, key.to_vec()));
        }
    }

    fn add_to(&self, list: &mut PageKeys, pgno: u32) {
        let cells = self.cells.iter().map(|(hash, key)| (*hash, key.as_slice()));
        list.push_interior(pgno, &self.first, &self.last, cells);
    }
}

/// Page `pgno` as the transaction sees it: from the file where that is the same (`file`), else
/// through SQLite (valid until `stmt` runs again).
fn page<'s>(
    file: &'s mut Option<FileView>,
    stmt: &'s mut Option<RawStmt>,
    page_count: u32,
    pgno: u32,
) -> Result<&'s [u8]> {
    if pgno == 0 || (page_count > 0 && pgno > page_count) {
        bail!("b-tree points at page {pgno}, beyond the database");
    }
    if let Some(data) = file.as_mut().and_then(|f| f.page(pgno)) {
        return Ok(data);
    }
    let Some(stmt) = stmt else {
        bail!("page {pgno} is read through SQLite, which a helper thread cannot");
    };
    stmt.reset();
    stmt.bind_i64(1, i64::from(pgno))?;
    if !stmt.step()? {
        bail!("page {pgno} does not exist");
    }
    match stmt.cell(0) {
        Cell::Blob(b) => Ok(b),
        _ => bail!("page {pgno} is empty"),
    }
}

/// A fresh random seed for a new map.
pub fn new_seed() -> u64 {
    let mut buf = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        buf = (t ^ u64::from(std::process::id()).rotate_left(32)).to_le_bytes();
    }
    u64::from_le_bytes(buf)
}
