//! What a database is at a snapshot's moment, told without reading its pages: when it is the
//! same as at the last snapshot, no page changed, and an unchanged run need not hash the whole
//! file (2.26 GB: 0.5 s of CPU, most of an unchanged run) to find that out.
//!
//! SQLite itself tells each reader whether anything changed, and we keep what it told:
//! - rollback journal: the file change counter in the header (offset 24), which every write
//!   transaction increments (in exclusive locking mode, once per lock held, and no one reads
//!   while it is held);
//! - WAL: the WAL index header the read transaction took (`sqlite3_snapshot_get`: salts, frame
//!   count and the running checksum of every frame up to it, and a counter every commit moves).
//!   A checkpoint copies into the file only frames already counted, and restarting the WAL
//!   changes its salts;
//! - both: the database header (page 1's first 100 bytes, as the transaction reads it) and the
//!   device, inode, size, modification and change times of the file SQLite has open, and the
//!   WAL's device and inode. These catch what SQLite does not count: a WAL without frames (the
//!   file alone is the database), and writes by anything else (a copy put over the file, a
//!   restore tool). The change time cannot be set back by a user.
//!
//! The file's times are kept, and trusted, only where they move with every write:
//! - a write through a shared memory map moves them only when it makes a clean page dirty (the
//!   kernel's `page_mkwrite`); more writes to a page not yet written back move nothing. A page
//!   is written back within about 35 s (`dirty_expire_centisecs` 30 s, the flusher every 5 s),
//!   so an identity is kept only when the file's times are [`SETTLED`] (60 s) older than the
//!   look: every page dirtied before them is clean again, and its next write moves them;
//! - that also covers the granularity of file times (a kernel tick; up to 2 s on some file
//!   systems), git's "racily clean" case: a write in the same tick as the look moves nothing;
//! - tmpfs never writes pages back and a map's writes never move its times, and a network file
//!   system's times come from a cache: an identity is kept only on the local disk file systems
//!   of [`TIMED_FILESYSTEMS`] (and overlayfs over them).
//!
//! So a database written in the minute before a run is hashed once more at the next run.
//! Anything unknown (another VFS, another file system, a failed call) is no identity: the pages
//! are hashed. The daily check run (a full read compared with what the incremental runs give)
//! still runs.

use std::os::unix::io::RawFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ffi};

use super::sqlitefiles;

/// How much older than the look the file's times must be for its identity to be kept.
pub const SETTLED: Duration = Duration::from_secs(60);

/// File systems (`statfs` types) whose file times move with every write, mapped ones included
/// (see the module doc): ext2/3/4, XFS, Btrfs, F2FS, bcachefs, and overlayfs (the times of the
/// file below it).
const TIMED_FILESYSTEMS: [i64; 6] = [
    0xEF53,
    0x5846_5342,
    0x9123_683E,
    0xF2F5_2010,
    0xCA45_1A4E,
    0x794C_7630,
];

/// The identity of `conn`'s main database in its open read transaction, whose database header
/// (page 1's first 100 bytes) is `header`; None when it cannot be told (see the module doc).
pub fn of(conn: &Connection, header: &[u8], now: SystemTime) -> Option<Vec<u8>> {
    let header = header.get(..100)?;
    let mut id = Vec::with_capacity(256);
    id.extend_from_slice(b"sqlgit identity 1\0");
    id.extend_from_slice(header);
    let fd = sqlitefiles::database_fd(conn)?;
    if !timed_filesystem(fd) {
        return None;
    }
    let db = stat(fd)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?;
    let newest = db.mtime.max(db.ctime);
    if newest > now || now - newest < SETTLED {
        return None;
    }
    db.put(&mut id);
    let wal_mode = header[18] == 2;
    match sqlitefiles::wal_fd(conn) {
        // A database in WAL mode is read with its WAL: not knowing that file is not knowing.
        None if wal_mode => return None,
        None => id.push(0),
        Some(fd) => {
            let wal = stat(fd)?;
            id.push(1);
            id.extend_from_slice(&wal.dev.to_le_bytes());
            id.extend_from_slice(&wal.ino.to_le_bytes());
            match wal_snapshot(conn) {
                Some(hidden) => {
                    id.push(1);
                    id.extend_from_slice(&hidden);
                }
                // An empty WAL: the file alone is the database (its stat tells).
                None if wal.size == 0 => id.push(0),
                // SQLite had no snapshot to give (a WAL whose frames it does not count, or out
                // of memory): not known.
                None => return None,
            }
        }
    }
    Some(id)
}

struct Stat {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: Duration,
    ctime: Duration,
}

impl Stat {
    fn put(&self, id: &mut Vec<u8>) {
        for n in [self.dev, self.ino, self.size] {
            id.extend_from_slice(&n.to_le_bytes());
        }
        for t in [self.mtime, self.ctime] {
            id.extend_from_slice(&t.as_secs().to_le_bytes());
            id.extend_from_slice(&t.subsec_nanos().to_le_bytes());
        }
    }
}

/// Whether the file behind `fd` is on one of [`TIMED_FILESYSTEMS`].
#[cfg(target_os = "linux")]
fn timed_filesystem(fd: RawFd) -> bool {
    // SAFETY: fstatfs writes only into `st`.
    let kind = unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        if libc::fstatfs(fd, &mut st) != 0 {
            return false;
        }
        st.f_type as i64
    };
    TIMED_FILESYSTEMS.contains(&kind)
}

#[cfg(not(target_os = "linux"))]
fn timed_filesystem(_: RawFd) -> bool {
    false
}

fn stat(fd: RawFd) -> Option<Stat> {
    let st = sqlitefiles::fstat(fd)?;
    let time = |secs: i64, nanos: i64| {
        let secs = u64::try_from(secs).ok()?;
        Some(Duration::new(secs, u32::try_from(nanos).ok()?))
    };
    Some(Stat {
        dev: st.st_dev,
        ino: st.st_ino,
        size: u64::try_from(st.st_size).ok()?,
        mtime: time(st.st_mtime, st.st_mtime_nsec)?,
        ctime: time(st.st_ctime, st.st_ctime_nsec)?,
    })
}

/// The WAL index header `conn`'s read transaction took; None for a WAL without frames (SQLite
/// has no snapshot of one).
fn wal_snapshot(conn: &Connection) -> Option<Vec<u8>> {
    let snapshot = super::parallel::snapshot(conn)?;
    // SAFETY: a snapshot handle from sqlite3_snapshot_get, read at once and freed once.
    unsafe {
        let hidden = (*snapshot).hidden.to_vec();
        ffi::sqlite3_snapshot_free(snapshot);
        Some(hidden)
    }
}
