//! A VFS for reading and building databases page after page: the dump's reads of the database
//! it backs up, a restore's build and check of a new one. SQLite reads and writes a file a page
//! (4 KiB) a system call: building and checking 280 MB took about 90,000 `pwrite`s and 200,000
//! `pread`s, and the kernel's cost per call was a sixth of the restore's CPU time (a 4 KiB
//! `pwrite` costs the kernel about three times what each 4 KiB of a 64 KiB one does). Here
//! writes that follow one another are gathered into writes of up to [`CHUNK`] bytes, and pages
//! read one after another, either way (a table read in order, an index built from its table,
//! SQLite's check, the sorter's runs), come out of reads of [`CHUNK`] bytes. Only the database
//! file and the sorter's temporary files are batched; everything else (journals, the WAL), and
//! every other call, goes to the default VFS as it is. Gathered writes reach the file before
//! anything could look at it there: before a lock is released, a sync, a size, a truncation, a
//! read of those bytes, the file's close. The read-ahead bytes are dropped at every lock change
//! (file locks, and the WAL index's locks that start and end a read transaction in WAL mode)
//! and every write over them: they are only used under the lock they were read under, which
//! keeps every writer from changing them (in WAL mode, a checkpoint only writes into the file
//! pages that a reader's snapshot takes from the WAL).

use std::ffi::{CStr, c_int, c_void};
use std::ptr::{null, null_mut};
use std::sync::OnceLock;

use rusqlite::ffi;

mod methods;
use methods::{
    x_check_reserved_lock, x_device_characteristics, x_fetch, x_file_control, x_file_size, x_lock,
    x_sector_size, x_shm_barrier, x_shm_lock, x_shm_map, x_shm_unmap, x_sync, x_truncate,
    x_unfetch, x_unlock,
};

/// The VFS's name, for `Connection::open_with_flags_and_vfs`.
const NAME: &CStr = c"sqlgit-batched";
/// The most bytes one gathered write or one read ahead covers. The default VFS reads and
/// writes less than 128 KiB a call (its `seekAndWriteFd` keeps the low 17 bits of the count).
const CHUNK: usize = 64 << 10;

/// The registered VFS's name, or None when it could not be registered (the default VFS then
/// serves, page by page).
fn name() -> Option<&'static CStr> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    // SAFETY: registration runs once; the VFS struct is leaked, as SQLite keeps a pointer.
    REGISTERED
        .get_or_init(|| unsafe { register() })
        .then_some(NAME)
}

/// Open the database at `path` through this VFS (through the default one when it could not be
/// registered).
pub fn open(
    path: &std::path::Path,
    flags: rusqlite::OpenFlags,
) -> rusqlite::Result<rusqlite::Connection> {
    match name() {
        Some(vfs) => rusqlite::Connection::open_with_flags_and_vfs(path, flags, vfs),
        None => rusqlite::Connection::open_with_flags(path, flags),
    }
}

/// The default VFS, which ours wraps (set once, before ours is registered).
static INNER: OnceLock<usize> = OnceLock::new();

fn inner_vfs() -> *mut ffi::sqlite3_vfs {
    *INNER.get().expect("registered") as *mut ffi::sqlite3_vfs
}

unsafe fn register() -> bool {
    unsafe {
        let inner = ffi::sqlite3_vfs_find(null());
        if inner.is_null() || (*inner).xOpen.is_none() {
            return false;
        }
        let _ = INNER.set(inner as usize);
        // The default VFS's own functions for everything but opening files (they do not look
        // at which VFS they are called for, apart from the open that ours forwards).
        let mut vfs: ffi::sqlite3_vfs = *inner;
        vfs.zName = NAME.as_ptr();
        vfs.pNext = null_mut();
        vfs.szOsFile = (INNER_AT + (*inner).szOsFile as usize) as c_int;
        vfs.xOpen = Some(x_open);
        ffi::sqlite3_vfs_register(Box::into_raw(Box::new(vfs)), 0) == ffi::SQLITE_OK
    }
}

/// Our part of an open file; the default VFS's file follows at [`INNER_AT`].
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    state: *mut State,
}

/// Where the default VFS's file starts in the space SQLite gives ours.
const INNER_AT: usize = std::mem::size_of::<File>().next_multiple_of(16);

struct State {
    inner: *mut ffi::sqlite3_file,
    /// Whether writes are gathered and reads read ahead (the database, the sorter's files).
    batched: bool,
    /// Written bytes not yet in the file, which start at `pending_at`.
    pending: Vec<u8>,
    pending_at: i64,
    /// Bytes read ahead, from `window_at` on.
    window: Vec<u8>,
    window_at: i64,
    /// The error of a gathered write that failed (0: none). Those bytes are not in the file,
    /// so every later read, write, sync or unlock of it fails the same way: SQLite does not
    /// look at every call's result (an unlock's), but it cannot go on past the next one.
    failed: c_int,
    /// Where the last read started and ended: a read starting at its end reads ahead, one
    /// ending at its start reads behind (SQLite's check walks a b-tree's pages backwards).
    read_start: i64,
    read_end: i64,
    /// Reads in a row that each followed the one before (see [`READ_AHEAD_AFTER`]).
    streak: u32,
}

/// Reads in a row that must each follow the one before for the next to read ahead: a seek
/// into a b-tree that reads a leaf and the next one (an incremental snapshot reading one
/// chunk again) would read 64 KiB for 8; a scan reads ahead from its fourth page on.
const READ_AHEAD_AFTER: u32 = 3;

impl State {
    fn methods(&self) -> &ffi::sqlite3_io_methods {
        // SAFETY: the default VFS opened `inner` successfully, so its methods are set.
        unsafe { &*(*self.inner).pMethods }
    }

    /// Write the gathered bytes to the file.
    unsafe fn flush(&mut self) -> c_int {
        if self.failed != ffi::SQLITE_OK || self.pending.is_empty() {
            return self.failed;
        }
        let write = self.methods().xWrite.expect("xWrite");
        // SAFETY: the inner file is open; the buffer holds `len` bytes.
        let rc = unsafe {
            write(
                self.inner,
                self.pending.as_ptr().cast(),
                self.pending.len() as c_int,
                self.pending_at,
            )
        };
        self.pending.clear();
        self.failed = rc;
        rc
    }

    fn overlaps_pending(&self, at: i64, len: i64) -> bool {
        !self.pending.is_empty()
            && at < self.pending_at + self.pending.len() as i64
            && self.pending_at < at + len
    }

    fn drop_window(&mut self) {
        self.window.clear();
    }
}

unsafe fn state<'a>(file: *mut ffi::sqlite3_file) -> &'a mut State {
    // SAFETY: every file with our methods was opened by `x_open`, which set its state.
    unsafe { &mut *(*(file as *mut File)).state }
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    unsafe {
        let ours = file as *mut File;
        (*ours).base.pMethods = null();
        (*ours).state = null_mut();
        let inner = (file as *mut u8).add(INNER_AT) as *mut ffi::sqlite3_file;
        let vfs = inner_vfs();
        let rc = ((*vfs).xOpen.expect("xOpen"))(vfs, name, inner, flags, out_flags);
        if rc != ffi::SQLITE_OK || (*inner).pMethods.is_null() {
            return if rc == ffi::SQLITE_OK {
                ffi::SQLITE_CANTOPEN
            } else {
                rc
            };
        }
        let batched = flags & (ffi::SQLITE_OPEN_MAIN_DB | ffi::SQLITE_OPEN_TEMP_JOURNAL) != 0;
        (*ours).state = Box::into_raw(Box::new(State {
            inner,
            batched,
            pending: Vec::new(),
            pending_at: 0,
            window: Vec::new(),
            window_at: 0,
            failed: ffi::SQLITE_OK,
            read_start: -1,
            read_end: -1,
            streak: 0,
        }));
        (*ours).base.pMethods = &METHODS;
        ffi::SQLITE_OK
    }
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: Some(x_fetch),
    xUnfetch: Some(x_unfetch),
};

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let ours = file as *mut File;
        let mut st = Box::from_raw((*ours).state);
        (*ours).state = null_mut();
        let flushed = st.flush();
        let rc = (st.methods().xClose.expect("xClose"))(st.inner);
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            rc
        }
    }
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    at: i64,
) -> c_int {
    unsafe {
        let st = state(file);
        if st.failed != ffi::SQLITE_OK {
            return st.failed;
        }
        let len = i64::from(amt);
        if st.overlaps_pending(at, len) {
            let rc = st.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        if st.batched && amt > 0 {
            let (forward, backward) = (at == st.read_end, at + len == st.read_start);
            (st.read_start, st.read_end) = (at, at + len);
            st.streak = if forward || backward {
                st.streak + 1
            } else {
                0
            };
            let covered = at >= st.window_at && at + len <= st.window_at + st.window.len() as i64;
            // A streak this long is of reads that follow one another (forward or backward).
            if !covered && st.streak >= READ_AHEAD_AFTER && (amt as usize) <= CHUNK / 4 {
                let from = if forward {
                    at
                } else {
                    (at + len - CHUNK as i64).max(0)
                };
                read_ahead(st, from);
            }
            let from = at - st.window_at;
            if at >= st.window_at && from + len <= st.window.len() as i64 {
                let bytes = &st.window[from as usize..(from + len) as usize];
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), bytes.len());
                return ffi::SQLITE_OK;
            }
        }
        (st.methods().xRead.expect("xRead"))(st.inner, buf, amt, at)
    }
}

/// Fill the window with up to [`CHUNK`] bytes from `at` (fewer at the end of the file); on
/// any error it stays empty, and the read asks the file itself.
unsafe fn read_ahead(st: &mut State, at: i64) {
    unsafe {
        st.drop_window();
        if st.flush() != ffi::SQLITE_OK {
            return;
        }
        let mut size = 0i64;
        if (st.methods().xFileSize.expect("xFileSize"))(st.inner, &mut size) != ffi::SQLITE_OK {
            return;
        }
        let n = (size - at).clamp(0, CHUNK as i64) as usize;
        st.window.resize(n, 0);
        let read = st.methods().xRead.expect("xRead");
        if n == 0 || read(st.inner, st.window.as_mut_ptr().cast(), n as c_int, at) != ffi::SQLITE_OK
        {
            st.drop_window();
            return;
        }
        st.window_at = at;
    }
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    at: i64,
) -> c_int {
    unsafe {
        let st = state(file);
        if st.failed != ffi::SQLITE_OK {
            return st.failed;
        }
        let len = i64::from(amt);
        if at < st.window_at + st.window.len() as i64 && st.window_at < at + len {
            st.drop_window();
        }
        if !st.batched || amt <= 0 {
            return (st.methods().xWrite.expect("xWrite"))(st.inner, buf, amt, at);
        }
        let bytes = std::slice::from_raw_parts(buf.cast::<u8>(), amt as usize);
        let follows = at == st.pending_at + st.pending.len() as i64;
        if !st.pending.is_empty() && follows && st.pending.len() + bytes.len() <= CHUNK {
            st.pending.extend_from_slice(bytes);
            return ffi::SQLITE_OK;
        }
        let rc = st.flush();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        if bytes.len() >= CHUNK {
            return (st.methods().xWrite.expect("xWrite"))(st.inner, buf, amt, at);
        }
        st.pending_at = at;
        st.pending.extend_from_slice(bytes);
        ffi::SQLITE_OK
    }
}

/// The default VFS's file under `file` when it is one of ours (our wrapper unwrapped), else
/// `file` itself.
///
/// # Safety
/// `file` must be null or an open file of a live connection.
pub unsafe fn inner_file(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    unsafe {
        if !file.is_null() && std::ptr::eq((*file).pMethods, &METHODS) {
            return state(file).inner;
        }
        file
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};

    /// Writes of every shape — appended pages, pages written again, overflow pages bigger than
    /// a chunk, a freelist, indexes sorted through temporary files, a VACUUM, a switch to WAL
    /// and a checkpoint — give the same file through this VFS as through the default one.
    #[test]
    fn files_come_out_as_the_default_vfs_writes_them() {
        let script = "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-256;
            PRAGMA threads=2;
            BEGIN;
            CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000)
            INSERT INTO t SELECT i, printf('key %08d', (i * 7919) % 40000),
                randomblob(CASE WHEN i % 5000 = 0 THEN 300000 ELSE i % 300 END) FROM n;
            UPDATE t SET v = zeroblob(50) WHERE id % 3 = 0;
            DELETE FROM t WHERE id % 7 = 0;
            CREATE INDEX t_k ON t(k);
            COMMIT;
            VACUUM;
            PRAGMA journal_mode=WAL;
            INSERT INTO t(k, v) SELECT k || 'x', v FROM t WHERE id < 2000;
            PRAGMA wal_checkpoint(TRUNCATE);";
        let dir = tempfile::tempdir().unwrap();
        let (ours, theirs) = (dir.path().join("ours.db"), dir.path().join("theirs.db"));
        // randomblob differs between runs: seed both from the same rows instead.
        let seeded = script.replace("randomblob(", "zeroblob(");
        for (path, batched) in [(&ours, true), (&theirs, false)] {
            let conn = if batched {
                open(path, OpenFlags::default()).unwrap()
            } else {
                Connection::open(path).unwrap()
            };
            conn.execute_batch(&seeded).unwrap();
            let n: i64 = conn
                .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 34286 + 1714);
            conn.close().unwrap();
        }
        assert!(name().is_some());
        let (a, b) = (
            std::fs::read(&ours).unwrap(),
            std::fs::read(&theirs).unwrap(),
        );
        assert_eq!(a.len(), b.len());
        assert!(a == b, "the files differ");
    }

    /// Another connection sees what a transaction wrote once it is committed, and a reader
    /// through this VFS sees another connection's later writes (nothing it read ahead stays).
    #[test]
    fn committed_writes_are_in_the_file_and_read_ahead_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = open(&path, OpenFlags::default()).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode=OFF; CREATE TABLE t(x);
                 BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
                 INSERT INTO t SELECT printf('%0200d', i) FROM n; COMMIT;",
            )
            .unwrap();
        let plain = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let reader = open(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let count = |c: &Connection| -> i64 {
            c.query_row("SELECT count(*) FROM t WHERE length(x) = 200", [], |r| {
                r.get(0)
            })
            .unwrap()
        };
        assert_eq!((count(&plain), count(&reader)), (5000, 5000));
        writer
            .execute_batch("UPDATE t SET x = printf('%0199d', rowid) WHERE rowid % 2 = 0")
            .unwrap();
        assert_eq!((count(&plain), count(&reader)), (2500, 2500));
    }
}
