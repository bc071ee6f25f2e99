//! Table pages read straight from the database file, where that is the read transaction's view.
//!
//! The page map hashes every page of every table on each run; through `sqlite_dbpage` that costs
//! a statement step and a `pread` a page (about 2 µs; 1 s for a 2 GB database). Inside the
//! snapshot's read transaction most pages can instead be read from a memory map of the file:
//! - rollback journal: the transaction's SHARED lock keeps every writer out of the file, so the
//!   file is the transaction's view;
//! - WAL: the transaction reads a page from the WAL when a frame up to its read mark holds it,
//!   else from the file. While it holds that mark, a checkpoint copies into the file only pages
//!   that have frames up to the mark (and none while a reader on mark 0 reads the file alone),
//!   and the WAL is not restarted. So every page that no frame of the WAL file names is read
//!   from the file; pages that any frame names (a superset of those up to the mark, read after
//!   the mark was taken) are left to SQLite.
//!
//! Memory: the map is dropped from the process's pages (`MADV_DONTNEED`) as the reads move on,
//! so the resident size stays bounded whatever the database size. A page fault maps the whole
//! cached folio around the page read (Linux 6.18 maps large folios whole; a folio of a file is
//! up to 2 MiB, aligned to its size), so what is dropped is whole 2 MiB blocks of the file: a
//! range of just the pages read left the rest of their folios mapped, growing with every drop
//! (a first snapshot of a 2.26 GB database held up to 6 MiB of it at the end of its dump).
//!
//! The file mapped is the one SQLite reads (its descriptor, duplicated; the WAL is read through
//! SQLite's own descriptor), never the path opened again: a file renamed over the path after
//! SQLite opened it is not what the transaction reads (see [`super::sqlitefiles`]).
//!
//! The file descriptor behind the map stays open until the process ends: closing a descriptor
//! of a file releases every POSIX lock the process holds on it — SQLite's read lock included.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::{AsRawFd, FromRawFd, RawFd};
use std::sync::Mutex;

use rusqlite::Connection;

use super::sqlitefiles;

/// The largest folio of a file (the PMD size on x86-64 and arm64 with 4 KiB pages): a fault
/// maps at most the block of this size, aligned, that holds the page read. The map keeps one
/// block resident: reading a page of another drops it (a b-tree walk moves to another block
/// about once per interior page and once per 2 MiB of leaves).
const BLOCK: usize = 2 << 20;

/// The database file, mapped, and the pages its WAL holds.
pub struct FileView {
    base: *mut libc::c_void,
    len: usize,
    page_size: usize,
    /// Bit per page number: a frame of the WAL holds this page (read it through SQLite).
    in_wal: Vec<u64>,
    /// The block pages were read from since the map was last dropped from the resident set
    /// (None: none).
    block: Option<usize>,
    /// This view made the mapping and unmaps it (not a [`FileView::share`]d one).
    owner: bool,
    /// The file, kept open for the life of the process (see the module doc).
    fd: i32,
}

impl FileView {
    /// The view of the main database of `conn`, which must be inside a read transaction that
    /// has read a page already (its lock or WAL read mark is held). None when the file cannot
    /// be read this way (not a file, an unknown journal mode, a WAL of another page size…):
    /// then every page is read through SQLite.
    pub fn open(conn: &Connection, page_size: usize, page_count: u32) -> Option<FileView> {
        let mode: String = conn
            .query_row("PRAGMA main.journal_mode", [], |r| r.get(0))
            .ok()?;
        // The files SQLite reads, not the paths again (see `sqlitefiles`).
        let in_wal = match mode.to_ascii_lowercase().as_str() {
            "wal" => match sqlitefiles::wal_fd(conn) {
                Some(wal) => wal_pages(wal, page_size, page_count)?,
                // The connection has no WAL open: it reads every page from the file.
                None => Vec::new(),
            },
            "delete" | "truncate" | "persist" | "memory" | "off" => Vec::new(),
            _ => return None,
        };
        let fd = kept_open(sqlitefiles::database_fd(conn)?)?;
        // SAFETY: fd stays open for the life of the process; ManuallyDrop never closes it.
        let file = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if len < page_size || page_size == 0 {
            return None;
        }
        // SAFETY: a private read-only view of a file we keep open; SQLite's lock keeps it from
        // shrinking below the transaction's pages (see the module comment).
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        Some(FileView {
            base,
            len,
            page_size,
            in_wal,
            block: None,
            owner: true,
            fd,
        })
    }

    /// A second view of the same mapping, for another thread reading other pages; it must not
    /// outlive this one.
    pub fn share(&self) -> FileView {
        FileView {
            base: self.base,
            len: self.len,
            page_size: self.page_size,
            in_wal: self.in_wal.clone(),
            block: None,
            owner: false,
            fd: self.fd,
        }
    }

    /// Page `pgno` as the transaction sees it, or None: read it through SQLite.
    pub fn page(&mut self, pgno: u32) -> Option<&[u8]> {
        let start = self.offset(pgno)?;
        let block = start / BLOCK;
        if self.block != Some(block) {
            if self.block.is_some_and(|b| b + 1 == block) {
                self.read_ahead(block + 1);
            }
            self.release();
            self.block = Some(block);
        }
        // SAFETY: start..end lies inside the mapping, which lives as long as self.
        Some(unsafe {
            std::slice::from_raw_parts((self.base as *const u8).add(start), self.page_size)
        })
    }

    /// Where page `pgno` starts in the file, if the view can give it (not in the WAL, inside
    /// the file).
    fn offset(&self, pgno: u32) -> Option<usize> {
        let n = pgno as usize;
        if pgno == 0
            || self
                .in_wal
                .get(n / 64)
                .is_some_and(|w| w & (1 << (n % 64)) != 0)
        {
            return None;
        }
        let start = (n - 1).checked_mul(self.page_size)?;
        let end = start.checked_add(self.page_size)?;
        (end <= self.len).then_some(start)
    }

    /// Page `pgno` copied into `buf` (a page long) with one `pread`, where the view can give
    /// it. For pages read here and there across the file: a fault maps a whole 2 MiB folio
    /// and dropping it again unmaps it (about 4 µs a page), a copy costs about 1 µs.
    pub fn copy_page(&self, pgno: u32, buf: &mut [u8]) -> Option<()> {
        let start = self.offset(pgno)?;
        if buf.len() != self.page_size {
            return None;
        }
        // SAFETY: fd stays open for the life of the process; ManuallyDrop never closes it.
        let file = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(self.fd) });
        file.read_exact_at(buf, start as u64).ok()
    }

    /// Ask the kernel to start reading `block` of the file into its cache (reads moving
    /// through the file block after block are sequential: the next block's faults then find
    /// its pages cached instead of waiting for the disk page by page). Nothing is mapped.
    fn read_ahead(&self, block: usize) {
        self.advise(block, libc::MADV_WILLNEED);
    }

    /// Drop the pages read so far (one block: pages never straddle blocks, a page size divides
    /// 2 MiB) from the resident set; the kernel keeps them cached.
    pub fn release(&mut self) {
        if let Some(block) = self.block.take() {
            self.advise(block, libc::MADV_DONTNEED);
        }
    }

    /// `madvise` one block of the mapping (nothing past the file's end).
    fn advise(&self, block: usize, advice: libc::c_int) {
        let start = block * BLOCK;
        if start >= self.len {
            return;
        }
        let len = BLOCK.min(self.len - start);
        // SAFETY: a range inside our own read-only shared mapping: WILLNEED only starts reads,
        // DONTNEED drops pages that are read again from the file when touched.
        unsafe {
            libc::madvise((self.base as *mut u8).add(start).cast(), len, advice);
        }
    }
}

impl Drop for FileView {
    fn drop(&mut self) {
        self.release();
        if self.owner {
            // SAFETY: the mapping made in `open`, not used after this (shared views are gone:
            // they live in scoped helper threads).
            unsafe {
                libc::munmap(self.base, self.len);
            }
        }
    }
}

/// A file by device and inode.
type FileId = (u64, u64);

/// A descriptor of the file SQLite reads through `sqlite_fd` (a duplicate, opened once per
/// file for the life of the process: see the module comment).
fn kept_open(sqlite_fd: RawFd) -> Option<RawFd> {
    static OPEN: Mutex<Vec<(FileId, File)>> = Mutex::new(Vec::new());
    let id = sqlitefiles::file_id(sqlite_fd)?;
    let mut open = OPEN.lock().ok()?;
    if let Some((_, f)) = open.iter().find(|(k, _)| *k == id) {
        return Some(f.as_raw_fd());
    }
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor, owned by the File from here on.
    let dup = unsafe { libc::fcntl(sqlite_fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return None;
    }
    let file = unsafe { File::from_raw_fd(dup) };
    open.push((id, file));
    Some(dup)
}

/// A bit per page number named by any frame of the WAL SQLite reads through `wal` (valid or
/// not: a superset of the frames any reader can see), up to `page_count` (pages beyond the
/// transaction's database are never read). None when the WAL cannot be read or has another
/// page size. Read with `pread` only: the descriptor is SQLite's.
fn wal_pages(wal: RawFd, page_size: usize, page_count: u32) -> Option<Vec<u64>> {
    // SAFETY: SQLite keeps the descriptor open while the transaction lasts; ManuallyDrop never
    // closes it.
    let file = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(wal) });
    let mut header = [0u8; 32];
    match file.read_exact_at(&mut header, 0) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Some(Vec::new()),
        Err(_) => return None,
    }
    let magic = u32::from_be_bytes(header[0..4].try_into().ok()?);
    let wal_page_size = u32::from_be_bytes(header[8..12].try_into().ok()?) as usize;
    if magic & !1 != 0x377f_0682 || wal_page_size != page_size {
        return None;
    }
    let frame = page_size + 24;
    let len = file.metadata().ok()?.len();
    let mut bits = vec![0u64; page_count as usize / 64 + 1];
    let mut at = 32u64;
    let mut head = [0u8; 4];
    while at + 4 <= len {
        file.read_exact_at(&mut head, at).ok()?;
        let pgno = u32::from_be_bytes(head);
        if pgno <= page_count {
            let n = pgno as usize;
            bits[n / 64] |= 1 << (n % 64);
        }
        at += frame as u64;
    }
    Some(bits)
}
