//! Opening the database to dump: read-only, never changed (no checkpoint, no journal-mode
//! change), waiting for locks up to a timeout instead of failing at the first SQLITE_BUSY.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};
use rusqlite::{Connection, OpenFlags};

/// Open `path` for dumping. Fails with a short reason for a missing file or a directory.
pub fn open(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("no such file"),
        Err(e) => return Err(e.into()),
        Ok(m) if m.is_dir() => bail!("is a directory, not a database file"),
        Ok(_) => {}
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy_timeout)?;
    Ok(conn)
}
