//! Saving a live database's old content before `restore --into` replaces it, as raw pages,
//! never through its b-trees: a damaged database (the likeliest reason to restore into it) must
//! be saved as it is, not fail to be read. The caller holds the database's write lock.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::raw::{c_int, c_void};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, ffi};

use super::remove_with_sidecars;

/// Save the current content of the database `target` (open in `db`, with its WAL in `wal` if
/// it is in WAL mode; `page_size` its page size) to `TARGET.before-restore-<UTC time>` (0600, never an existing file), while
/// the caller holds its write lock: no one else can commit. A rollback-journal database file is
/// then exactly its committed content; a WAL database's is its file plus the WAL's committed
/// frames, which are copied beside the copy and checkpointed into it. Both are read through
/// SQLite's own handles (see [`PagerFile`]). Written under a hidden temporary name (removed on
/// failure; one a killed run left, by the next run) and given its name only once synced: a
/// file of that name always holds the whole content.
pub(super) fn save_aside(
    target: &Path,
    db: &PagerFile,
    wal: Option<&PagerFile>,
    page_size: i64,
) -> Result<PathBuf> {
    let tmp = crate::output::temp_beside(target, "sqlgit-saving-")?;
    let _remove = crate::output::remove_on_stop(&tmp);
    remove_with_sidecars(&tmp)?;
    let saved = (|| -> Result<PathBuf> {
        let mut out = create(&tmp)?;
        // Read the committed WAL frames' count before the file: a checkpoint another process
        // runs meanwhile only copies frames up to it into the file, so every page it changes
        // under our read is one the WAL gives again.
        let frames = if wal.is_some() { wal_frames(db)? } else { 0 };
        db.copy_to(&mut out, None)?;
        out.sync_all()?;
        drop(out);
        if let Some(wal) = wal.filter(|_| frames > 0) {
            let wal_len = 32 + i64::from(frames) * (24 + page_size);
            let mut wal_out = create(&crate::output::side_file(&tmp, "-wal"))?;
            wal.copy_to(&mut wal_out, Some(wal_len))?;
            wal_out.sync_all()?;
            drop(wal_out);
            checkpoint(&tmp, frames)?;
        }
        crate::failpoint::hit("into-saved-unnamed");
        name_aside(target, &tmp)
    })();
    let _ = remove_with_sidecars(&tmp);
    saved
}

fn create(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))
}

/// How many frames of the WAL of the database open in `file` are committed (`mxFrame` in the
/// WAL index header, which only a writer changes: stable while we hold the write lock).
fn wal_frames(file: &PagerFile) -> Result<u32> {
    // SAFETY: the connection owning the file is open and in a transaction, so the first WAL
    // index region is mapped (xShmMap returns that mapping); its header starts with the
    // 48-byte WalIndexHdr: mxFrame is the native-endian u32 at offset 16.
    unsafe {
        let methods = &*(*file.0).pMethods;
        let Some(shm_map) = methods.xShmMap.filter(|_| methods.iVersion >= 2) else {
            bail!("the VFS has no WAL index");
        };
        let mut region: *mut c_void = std::ptr::null_mut();
        let rc = shm_map(file.0, 0, 32768, 0, &mut region);
        if rc != ffi::SQLITE_OK || region.is_null() {
            bail!("read the WAL index: error {rc}");
        }
        Ok(region.cast::<u8>().add(16).cast::<u32>().read_volatile())
    }
}

/// Apply the WAL copied beside the saved copy `tmp` (`frames` frames) to it: SQLite recovers
/// the WAL (checking every frame's checksum) and a checkpoint writes its pages into the file
/// as they are, then closing removes the WAL. No b-tree is read.
fn checkpoint(tmp: &Path, frames: u32) -> Result<()> {
    let conn = Connection::open(tmp).with_context(|| format!("open {}", tmp.display()))?;
    // Opens the WAL without reading the schema (a checkpoint alone would, to open it).
    conn.query_row("PRAGMA user_version", [], |_| Ok(()))
        .context("read the copied WAL")?;
    let (busy, log, done): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    // The TRUNCATE mode empties the WAL it checkpointed: its size is 0 afterwards.
    if busy != 0 || done != log {
        bail!("apply the copied WAL ({frames} frames): {done} of {log} checkpointed");
    }
    conn.close().map_err(|(_, e)| e)?;
    File::open(tmp)?.sync_all()?;
    Ok(())
}

/// A file as SQLite has it open for a connection (its database, or its WAL or rollback
/// journal). Reading the file through another descriptor is not an option: closing any
/// descriptor of a file drops all of this process's POSIX locks on it, SQLite's included, and
/// lets other processes write under our feet.
pub(super) struct PagerFile(*mut ffi::sqlite3_file);

impl PagerFile {
    /// `op`: SQLITE_FCNTL_FILE_POINTER (the database) or SQLITE_FCNTL_JOURNAL_POINTER.
    pub(super) fn of(conn: &Connection, op: c_int) -> Result<PagerFile> {
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: both opcodes write one pointer; the file stays open (and the pointer valid)
        // as long as the connection is (the WAL: while it stays in WAL mode).
        let rc = unsafe {
            ffi::sqlite3_file_control(conn.handle(), c"main".as_ptr(), op, (&raw mut file).cast())
        };
        if rc != ffi::SQLITE_OK || file.is_null() || unsafe { (*file).pMethods.is_null() } {
            bail!("cannot reach the open database file (error {rc})");
        }
        Ok(PagerFile(file))
    }

    /// Copy the whole file (or its first `len` bytes) to `out` (only while a lock keeps
    /// writers out). Bytes past its end (a WAL database's file shrunk by a checkpoint while
    /// it is read; none of them is content) are copied as zeros.
    fn copy_to(&self, out: &mut impl Write, len: Option<i64>) -> Result<()> {
        // SAFETY: the connection owning the file is open (see `of`); the VFS methods read into
        // our buffer within its length.
        let methods = unsafe { &*(*self.0).pMethods };
        let (Some(file_size), Some(read)) = (methods.xFileSize, methods.xRead) else {
            bail!("the VFS cannot read the database file");
        };
        let mut size: i64 = 0;
        let rc = unsafe { file_size(self.0, &mut size) };
        if rc != ffi::SQLITE_OK {
            bail!("read the database file's size: error {rc}");
        }
        if let Some(len) = len {
            if len > size {
                bail!("the file has {size} bytes, not the {len} it should");
            }
            size = len;
        }
        let mut buf = vec![0u8; 1 << 20];
        let mut offset = 0i64;
        while offset < size {
            let n = (size - offset).min(buf.len() as i64) as usize;
            // A short read fills the rest of the buffer with zeros.
            let rc = unsafe { read(self.0, buf.as_mut_ptr().cast(), n as c_int, offset) };
            if rc != ffi::SQLITE_OK && rc != ffi::SQLITE_IOERR_SHORT_READ {
                bail!("read the database file: error {rc}");
            }
            out.write_all(&buf[..n])?;
            offset += n as i64;
        }
        Ok(())
    }
}

fn name_aside(target: &Path, tmp: &Path) -> Result<PathBuf> {
    let stamp = humantime::format_rfc3339_seconds(crate::when::now())
        .to_string()
        .replace(['-', ':'], "");
    let file_name = target.file_name().unwrap_or(target.as_os_str());
    // Room for `.NN` and SQLite's `-journal` when the copy is opened.
    let suffix = format!(".before-restore-{stamp}");
    let base = target.with_file_name(crate::output::fitted_name("", file_name, &suffix, 3 + 8));
    for n in 1..100 {
        let path = match n {
            1 => base.clone(),
            n => PathBuf::from(format!("{}.{n}", base.display())),
        };
        match std::fs::hard_link(tmp, &path) {
            Ok(()) => {
                let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
                let _ = File::open(dir.unwrap_or(Path::new("."))).and_then(|d| d.sync_all());
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("create {}", path.display())),
        }
    }
    bail!("{}: too many saved copies with this time", base.display())
}
