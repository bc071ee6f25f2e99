//! The files SQLite itself has open for a connection: its database and its WAL, as descriptors.
//!
//! What the page map hashes must be what the snapshot's read transaction reads. Opening the
//! database's path again is not that when the file was replaced (renamed over, as a copy moved
//! into place is) after SQLite opened it: SQLite goes on reading the file it has open, the path
//! names another. So the file view reads through the descriptors SQLite reads through, found by
//! `sqlite3_file_control` (`SQLITE_FCNTL_FILE_POINTER`, `SQLITE_FCNTL_JOURNAL_POINTER`): the
//! default unix VFS's file (`unixFile`, under our batching wrapper) begins with its methods, its
//! VFS, its inode and its descriptor. A file of any other VFS gives none (pages are then read
//! through SQLite).

use std::ffi::{CStr, c_int, c_void};
use std::os::unix::io::RawFd;

use rusqlite::{Connection, ffi};

/// The beginning of SQLite's `unixFile` (see `os_unix.c`).
#[repr(C)]
struct UnixFile {
    methods: *const ffi::sqlite3_io_methods,
    vfs: *const ffi::sqlite3_vfs,
    inode: *const c_void,
    fd: c_int,
}

/// The descriptor SQLite reads `conn`'s main database through (None: not a unix VFS's file).
pub fn database_fd(conn: &Connection) -> Option<RawFd> {
    file_fd(conn, ffi::SQLITE_FCNTL_FILE_POINTER)
}

/// The descriptor SQLite reads `conn`'s WAL through, when the connection is in WAL mode and has
/// it open (None: not open, or not a unix VFS's file).
pub fn wal_fd(conn: &Connection) -> Option<RawFd> {
    file_fd(conn, ffi::SQLITE_FCNTL_JOURNAL_POINTER)
}

fn file_fd(conn: &Connection, op: c_int) -> Option<RawFd> {
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: the handle is live for the call; both ops write one sqlite3_file pointer (of a
    // file the connection keeps open while it lives; read here at once).
    unsafe {
        let rc =
            ffi::sqlite3_file_control(conn.handle(), c"main".as_ptr(), op, (&raw mut file).cast());
        let file = crate::vfs::inner_file(file);
        if rc != ffi::SQLITE_OK || file.is_null() || (*file).pMethods.is_null() {
            return None;
        }
        let unix = file as *const UnixFile;
        let vfs = (*unix).vfs;
        if vfs.is_null() || (*vfs).zName.is_null() {
            return None;
        }
        if !CStr::from_ptr((*vfs).zName).to_bytes().starts_with(b"unix") {
            return None;
        }
        let fd = (*unix).fd;
        // A descriptor of a regular file, or the layout is not the one above.
        let mut st: libc::stat = std::mem::zeroed();
        (fd >= 0 && libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG)
            .then_some(fd)
    }
}

/// The device and inode of the file behind descriptor `fd`.
pub fn file_id(fd: RawFd) -> Option<(u64, u64)> {
    fstat(fd).map(|st| (st.st_dev, st.st_ino))
}

/// `fstat` of descriptor `fd` (never closed here: closing a descriptor of the database would
/// release SQLite's locks on it).
pub fn fstat(fd: RawFd) -> Option<libc::stat> {
    // SAFETY: fstat writes only into `st`.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some(st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The descriptors found are those of the files at the paths (in WAL mode, the WAL too),
    /// through our VFS and the default one.
    #[test]
    fn descriptors_name_the_database_and_its_wal() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA journal_mode=wal; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        let id = |p: &std::path::Path| {
            let m = std::fs::metadata(p).unwrap();
            Some((m.dev(), m.ino()))
        };
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        for conn in [
            crate::vfs::open(&path, flags).unwrap(),
            Connection::open_with_flags(&path, flags).unwrap(),
        ] {
            conn.execute_batch("BEGIN; SELECT count(*) FROM t;")
                .unwrap();
            assert_eq!(database_fd(&conn).and_then(file_id), id(&path));
            let wal = dir.path().join("a.db-wal");
            assert_eq!(wal_fd(&conn).and_then(file_id), id(&wal));
            conn.execute_batch("COMMIT").unwrap();
        }
    }
}
