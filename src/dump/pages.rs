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
//!
//! Here: the map's types and the reading of pages; the b-tree walk is in `walk`, the parsing of
//! one page's cells in `cells`, and what changed between two maps in `changes`.

use std::io::Read;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use rusqlite::Connection;
use xxhash_rust::xxh3::{Xxh3, xxh3_64_with_seed};

use super::fileview::FileView;
use super::keylist::{PageKeys, within_budget};
use super::pagelist::PageList;
use super::stmt::{Cell, Encoding, RawStmt};

mod cells;
mod changes;
mod split;
mod sums;
mod walk;

pub use changes::{
    Ranges, Side, changed_pages, changed_ranges, changed_ranges_split, merge_ranges,
};
use sums::add_runs;

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
    /// Which database of the repository the map describes (a hash of its folder's name, set
    /// when the map is kept): a map copied over another database's is not that database's.
    pub owner: u64,
    /// What the database was at the map's moment (see [`super::identity`]; empty: not known).
    /// The same identity at the next snapshot means no page changed.
    pub identity: Vec<u8>,
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
        if !super::parallel::env_on("SQLGIT_PAGES_THROUGH_SQLITE") {
            pages.file = FileView::open(conn, page_size, pages.page_count);
            pages.copy = vec![0; page_size];
        }
        Ok(pages)
    }

    /// The database had no page in the transaction: an empty (0-byte) file, which SQLite reads
    /// as a database with no table.
    pub fn is_empty(&self) -> bool {
        self.page_count == 0
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

    /// The database header (page 1's first 100 bytes) as the transaction reads it; None for an
    /// empty database file.
    pub fn header(&mut self) -> Result<Option<Vec<u8>>> {
        if self.page_count == 0 {
            return Ok(None);
        }
        let data = page(&mut self.file, &mut self.stmt, self.page_count, 1)?;
        Ok(data.get(..100).map(<[u8]>::to_vec))
    }

    /// The keyed hash of page `pgno` as it is now (hashed where it is read: no copy).
    pub fn hash(&mut self, pgno: u32) -> Result<u64> {
        let data = page(&mut self.file, &mut self.stmt, self.page_count, pgno)?;
        Ok(xxh3_64_with_seed(data, self.seed))
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
