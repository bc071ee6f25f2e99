//! Opening the database to dump: read-only, never changed (no checkpoint, no journal-mode
//! change), waiting for locks up to a timeout instead of failing at the first SQLITE_BUSY.
//!
//! One exception, the one every SQLite reader makes: a hot rollback journal left by a writer
//! that crashed mid-transaction must be rolled back before anyone can read the database, and a
//! read-only connection cannot do that. Then the database is opened read-write just long enough
//! to read its schema (SQLite rolls the journal back, restoring the last committed state), and
//! opened read-only again.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, ErrorCode, OpenFlags};

/// Open `path` for dumping. Fails with a short reason for a missing file or a directory.
pub fn open(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("no such file"),
        Err(e) => return Err(e.into()),
        Ok(m) if m.is_dir() => bail!("is a directory, not a database file"),
        // A FIFO would block the run (holding the repository's lock) forever; a device reads
        // as an empty database.
        Ok(m) if !m.is_file() => bail!("is not a regular file (a device, FIFO or socket)"),
        Ok(_) => {}
    }
    // SQLite says only "unable to open database file".
    std::fs::File::open(path).context("cannot read it")?;
    let conn = open_with(path, OpenFlags::SQLITE_OPEN_READ_ONLY, busy_timeout)?;
    match first_read(&conn) {
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == ErrorCode::ReadOnly && e.extended_code == READONLY_ROLLBACK =>
        {
            drop(conn);
            roll_back_hot_journal(path, busy_timeout)?;
            open_with(path, OpenFlags::SQLITE_OPEN_READ_ONLY, busy_timeout)
        }
        // The lock was held past the timeout already: waiting again where the dump reads
        // would double --busy-timeout.
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => {
            Err(anyhow::Error::new(e).context("read schema"))
        }
        Err(e) if wal_failure(path, &e) => {
            Err(anyhow::Error::new(e).context(format!("read schema ({})", wal_hint(path))))
        }
        // Other errors (not a database…) surface where the dump reads, with context.
        _ => Ok(conn),
    }
}

/// `SQLITE_READONLY_ROLLBACK`: a hot journal that a read-only connection cannot roll back.
const READONLY_ROLLBACK: std::os::raw::c_int = 8 | (3 << 8);

fn open_with(path: &Path, flags: OpenFlags, busy_timeout: Duration) -> Result<Connection> {
    let conn = crate::vfs::open(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(busy_timeout)?;
    Ok(conn)
}

fn first_read(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
}

/// What a WAL database's reader lacks when that is why `err` (from opening or first reading
/// `path`, by any connection: `restore --into`'s read-write one too) failed; None for other
/// errors and other databases.
pub fn wal_trouble(path: &Path, err: &anyhow::Error) -> Option<String> {
    err.chain()
        .filter_map(|c| c.downcast_ref::<rusqlite::Error>())
        .any(|e| wal_failure(path, e))
        .then(|| wal_hint(path))
}

/// Whether `path` is a WAL database whose -wal or -shm file this user cannot open or create:
/// SQLite says "unable to open database file" of a file that opens, or "disk I/O error" when
/// the -shm file cannot grow on a full filesystem.
fn wal_failure(path: &Path, e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::SystemIoFailure)
    ) && is_wal(path)
}

/// What access a WAL database's reader lacks: to read its -wal or -shm file, or to create the
/// -shm file in its directory.
fn wal_hint(path: &Path) -> String {
    let beside = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    let shm = beside("-shm");
    for file in [&beside("-wal"), &shm] {
        match std::fs::File::open(file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                let e = std::io::Error::from(e.kind());
                return format!(
                    "cannot read {}: {e}; reading a WAL database needs read access to its -wal \
                     and -shm files",
                    file.display()
                );
            }
            _ => {}
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Some(full) = full_filesystem(dir) {
        return format!(
            "the filesystem of {} is full ({full}): SQLite cannot create or grow the -shm file \
             a WAL database's reader needs there; free space on it",
            dir.display()
        );
    }
    let why = if shm.exists() {
        "to recreate its -shm file"
    } else {
        "to create its -shm file"
    };
    format!(
        "reading a WAL database needs write access to its directory {}, {why}",
        dir.display()
    )
}

/// What is used up on the filesystem of `dir`, if it is full: no byte or no inode this user
/// may take (a filesystem that reports no inode count, such as btrfs, has no inode limit).
fn full_filesystem(dir: &Path) -> Option<&'static str> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs struct to fill.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    // The -shm file takes 32 KiB at once.
    if (st.f_bavail as u64).saturating_mul(st.f_frsize as u64) < 64 * 1024 {
        Some("no free space")
    } else if st.f_files > 0 && st.f_favail == 0 {
        Some("no free inodes")
    } else {
        None
    }
}

/// Whether the database file's header says WAL mode (its read and write versions, bytes 18
/// and 19, are 2).
fn is_wal(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| header[18] == 2 && header[19] == 2)
}

fn roll_back_hot_journal(path: &Path, busy_timeout: Duration) -> Result<()> {
    let conn = open_with(path, OpenFlags::SQLITE_OPEN_READ_WRITE, busy_timeout)
        .and_then(|c| first_read(&c).map(|_| c).map_err(Into::into))
        .context(
            "a writer crashed mid-transaction and left a hot rollback journal (its -journal \
             file): before anyone can read the database it must be rolled back, which needs \
             write access to the database file and its directory",
        )?;
    drop(conn);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wal_hint_is_for_wal_databases_only() {
        let dir = std::env::temp_dir().join(format!("sqlgit-wal-hint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (mode, wal) in [("WAL", true), ("DELETE", false)] {
            let path = dir.join(format!("{mode}.db"));
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "journal_mode", mode).unwrap();
            conn.execute_batch("CREATE TABLE t(x)").unwrap();
            drop(conn);
            assert_eq!(is_wal(&path), wal, "{mode}");
        }
        assert!(!is_wal(&dir.join("missing.db")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
