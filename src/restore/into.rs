//! Restoring into a live database (`restore --into`): the restored database is built beside the
//! target, the target's old content is saved aside, and SQLite's online backup API copies the new
//! content in as one write transaction, so open connections see it at their next transaction.
//! Also `restore --to --force`'s refusal to replace a file that another process has open.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::raw::c_int;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, ffi};

use super::{Check, Source, build_from, check_integrity, remove_with_sidecars, sidecar};

/// What `restore --into` did, for people.
pub struct Restored {
    /// What was restored (`snapshot 0123abcd…` or the SQL file).
    pub what: String,
    /// Where the target's old content was saved.
    pub saved: PathBuf,
    /// What people should know: the snapshot's page size or auto_vacuum, not applied.
    pub warnings: Vec<String>,
}

/// Replace the content of the existing database `target` with `source`, while applications
/// may have it open: build into a temporary file beside it (with the target's page size,
/// auto_vacuum and WAL or rollback-journal mode: the SQL's own page_size and auto_vacuum are
/// not applied, a warning says so), take the target's write lock (waiting up to
/// `busy_timeout`), save its old content aside, copy the new pages in with the backup API in one
/// step, then check the target with `PRAGMA integrity_check`.
pub fn restore_into(source: &Source, target: &Path, busy_timeout: Duration) -> Result<Restored> {
    match std::fs::metadata(target) {
        Ok(m) if m.is_file() => {}
        Ok(_) => bail!("{}: not a database file", target.display()),
        Err(_) => bail!(
            "{} does not exist; --into replaces the content of an existing database (use --to \
             to create one)",
            target.display()
        ),
    }
    let mut live = open(target, busy_timeout)?;
    let layout = Layout::of(&live).with_context(|| format!("database {}", target.display()))?;
    let tmp = crate::output::temp_beside(target, "sqlgit-into-")?;
    remove_with_sidecars(&tmp)?;
    let dest = format!("into {}", target.display());
    let (what, built) = build_from(source, &tmp, Some(layout.pinned()), &dest)?;
    let copied = layout
        .apply(&tmp)
        .and_then(|()| copy_in(&tmp, &mut live, target, layout.wal, busy_timeout));
    let _ = remove_with_sidecars(&tmp);
    let saved = copied.with_context(|| format!("restore {what} {dest}"))?;
    let found = layout.check(&live).with_context(|| {
        format!(
            "after restoring {what} into {} (the old content is in {})",
            target.display(),
            saved.display()
        )
    })?;
    let mut warnings = layout.kept(&built.ignored, target);
    warnings.extend(held(&found, target));
    Ok(Restored {
        what,
        saved,
        warnings,
    })
}

/// The warning for what the integrity check of `target` found that the restored SQL holds too
/// (values its schema rejects, a virtual table's own finding): the database the snapshot was
/// taken of gives the same finding.
fn held(found: &[String], target: &Path) -> Option<String> {
    let first = found.first()?;
    let more = match found.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    Some(format!(
        "the integrity check of {} finds what the restored SQL holds, as the database it was \
         taken of does: {first}{more}; restored as it is",
        target.display()
    ))
}

/// A read-write connection to `path` that waits up to `busy_timeout` for locks.
fn open(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("open {}", path.display()))?;
    conn.busy_timeout(busy_timeout)?;
    Ok(conn)
}

/// What the restored file must share with the target: the backup API refuses to copy into a WAL
/// database with another page size, and the copied header decides WAL or rollback journal.
struct Layout {
    page_size: i64,
    auto_vacuum: i64,
    wal: bool,
    /// Open connections cannot follow a change of text encoding: it must stay.
    encoding: String,
}

impl Layout {
    fn of(conn: &Connection) -> Result<Layout> {
        let pragma = |name: &str| {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| {
                r.get::<_, rusqlite::types::Value>(0)
            })
            .with_context(|| format!("read PRAGMA {name}"))
        };
        use rusqlite::types::Value::{Integer, Text};
        let (Integer(page_size), Integer(auto_vacuum), Text(mode), Text(encoding)) = (
            pragma("page_size")?,
            pragma("auto_vacuum")?,
            pragma("journal_mode")?,
            pragma("encoding")?,
        ) else {
            bail!("unexpected PRAGMA results");
        };
        Ok(Layout {
            page_size,
            auto_vacuum,
            wal: mode.eq_ignore_ascii_case("wal"),
            encoding,
        })
    }

    /// What the build keeps whatever its SQL says.
    fn pinned(&self) -> super::Pinned {
        super::Pinned {
            page_size: self.page_size,
            auto_vacuum: self.auto_vacuum,
        }
    }

    /// The warning when the SQL asked for another layout (`ignored`, from the build).
    fn kept(&self, ignored: &[String], target: &Path) -> Vec<String> {
        if ignored.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "the restored SQL sets PRAGMA {}; {} keeps its own page_size={} and auto_vacuum={} \
             (--into keeps the target's layout: converting it takes a VACUUM, which renumbers \
             hidden rowids; every row and rowid is the snapshot's). For the snapshot's layout, \
             stop the application and use --to --force",
            ignored.join(", "),
            target.display(),
            self.page_size,
            self.auto_vacuum
        )]
    }

    /// Put the built file at `path` in the target's journal mode; refuse another text encoding
    /// (or layout: the build keeps the target's).
    fn apply(&self, path: &Path) -> Result<()> {
        let conn = Connection::open(path).with_context(|| format!("open {}", path.display()))?;
        let encoding: String = conn.query_row("PRAGMA encoding", [], |r| r.get(0))?;
        if encoding != self.encoding {
            bail!(
                "the restored database is {encoding} but the target is {}: the connections \
                 applications have open cannot follow a change of text encoding (stop them and \
                 use --to --force)",
                self.encoding
            );
        }
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let auto_vacuum: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
        if page_size != self.page_size || auto_vacuum != self.auto_vacuum {
            // Pinned while it was built (`Pinned`): converting now would take a VACUUM, which
            // gives new rowids to tables without an INTEGER PRIMARY KEY.
            bail!(
                "the restored database has page_size={page_size} and auto_vacuum={auto_vacuum}, \
                 the target {} and {}",
                self.page_size,
                self.auto_vacuum
            );
        }
        let mode = if self.wal { "WAL" } else { "DELETE" };
        let set: String =
            conn.query_row(&format!("PRAGMA journal_mode={mode}"), [], |r| r.get(0))?;
        if !set.eq_ignore_ascii_case(mode) {
            bail!("cannot set journal_mode={mode} on the restored database (it is {set})");
        }
        conn.close().map_err(|(_, e)| e)?;
        Ok(())
    }

    /// The target after the copy: intact, and still in its journal mode. Returns what the
    /// check finds that the snapshot holds too (see [`check_integrity`]).
    fn check(&self, conn: &Connection) -> Result<Vec<String>> {
        let found = check_integrity(conn, Check::Full).context("integrity check failed")?;
        let now = Layout::of(conn)?;
        if now.wal != self.wal || now.page_size != self.page_size {
            bail!("its journal mode or page size changed");
        }
        Ok(found)
    }
}

/// Copy the database at `tmp` into `live` (the target) with the backup API: first take the
/// target's write lock (`step(0)`), save its content aside while no one else can write, then
/// copy every page and commit in one step. Returns where the old content was saved.
fn copy_in(
    tmp: &Path,
    live: &mut Connection,
    target: &Path,
    wal: bool,
    busy_timeout: Duration,
) -> Result<PathBuf> {
    let file = PagerFile::of(live)?;
    let src = open(tmp, busy_timeout)?;
    let backup = Backup::new(&src, live).context("start the backup")?;
    let locked = |step: StepResult| match step {
        StepResult::Busy | StepResult::Locked => {
            bail!("{}: database is locked", target.display())
        }
        _ => Ok(()),
    };
    locked(backup.step(0).context("lock the target")?)?;
    let saved = save_aside(target, wal.then_some(busy_timeout), &file)?;
    let copied = backup
        .step(-1)
        .context("copy the restored pages")
        .and_then(|step| {
            locked(step)?;
            if step != StepResult::Done {
                bail!("the copy did not finish in one step");
            }
            Ok(())
        });
    copied.with_context(|| {
        format!(
            "the old content is saved in {} (delete it once {} is checked)",
            saved.display(),
            target.display()
        )
    })?;
    Ok(saved)
}

/// Save the target's current content to `TARGET.before-restore-<UTC time>` (0600, never an
/// existing file), while the caller holds its write lock. A WAL database (`wal_busy` given) is
/// copied by `VACUUM INTO` on a second connection (readers still work under a WAL writer's
/// lock); a rollback-journal database file is then exactly its committed content, copied as is
/// through `file`, SQLite's own handle (no reader gets past the lock, not even ours). Written
/// under a hidden temporary name (removed on failure; one a killed run left, by the next run)
/// and given its name only once synced: a file of that name always holds the whole content.
fn save_aside(target: &Path, wal_busy: Option<Duration>, file: &PagerFile) -> Result<PathBuf> {
    let tmp = crate::output::temp_beside(target, "sqlgit-saving-")?;
    remove_with_sidecars(&tmp)?;
    let saved = (|| -> Result<PathBuf> {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("create {}", tmp.display()))?;
        if let Some(busy_timeout) = wal_busy {
            let name = tmp.to_str().context("the file name is not UTF-8")?;
            open(target, busy_timeout)?.execute("VACUUM INTO ?1", [name])?;
        } else {
            file.copy_to(&mut out)?;
        }
        out.sync_all()?;
        crate::failpoint::hit("into-saved-unnamed");
        name_aside(target, &tmp)
    })();
    let _ = remove_with_sidecars(&tmp);
    saved.context("save the old content")
}

/// The database file as SQLite has it open for a connection. Reading the file through another
/// descriptor is not an option: closing any descriptor of a file drops all of this process's
/// POSIX locks on it, SQLite's included, and lets other processes write under our feet.
struct PagerFile(*mut ffi::sqlite3_file);

impl PagerFile {
    fn of(conn: &Connection) -> Result<PagerFile> {
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: SQLITE_FCNTL_FILE_POINTER writes one pointer; the file stays open (and the
        // pointer valid) as long as the connection is.
        let rc = unsafe {
            ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_FILE_POINTER,
                (&raw mut file).cast(),
            )
        };
        if rc != ffi::SQLITE_OK || file.is_null() || unsafe { (*file).pMethods.is_null() } {
            bail!("cannot reach the open database file (error {rc})");
        }
        Ok(PagerFile(file))
    }

    /// Copy the whole file to `out` (only while a lock keeps writers out).
    fn copy_to(&self, out: &mut impl Write) -> Result<()> {
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
        let mut buf = vec![0u8; 1 << 20];
        let mut offset = 0i64;
        while offset < size {
            let n = (size - offset).min(buf.len() as i64) as usize;
            let rc = unsafe { read(self.0, buf.as_mut_ptr().cast(), n as c_int, offset) };
            if rc != ffi::SQLITE_OK {
                bail!("read the database file: error {rc}");
            }
            out.write_all(&buf[..n])?;
            offset += n as i64;
        }
        Ok(())
    }
}

/// Give the saved copy `tmp` its name, `TARGET.before-restore-20261204T060207Z` (`.2`, `.3`, …
/// appended when that exists; a hard link, so no existing file is replaced), and sync the
/// directory.
fn name_aside(target: &Path, tmp: &Path) -> Result<PathBuf> {
    let stamp = humantime::format_rfc3339_seconds(crate::when::now())
        .to_string()
        .replace(['-', ':'], "");
    let mut name = target.as_os_str().to_owned();
    name.push(format!(".before-restore-{stamp}"));
    let base = PathBuf::from(name);
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

/// Fail when another process has `target` (or its -wal, -shm or -journal file) open: replacing
/// the file would leave that process writing to the old, unlinked one. Linux: every
/// `/proc/PID/fd/*` this user may read is compared by device and inode (processes of other
/// users are seen only by root). Without a readable /proc, a warning (if `warn`) says nothing
/// was checked.
pub(super) fn refuse_if_open(target: &Path, warn: bool) -> Result<()> {
    let files: Vec<(u64, u64)> = ["", "-wal", "-shm", "-journal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(sidecar(target, suffix)).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    if std::fs::read_dir("/proc/self/fd").is_err() {
        if !warn {
            return Ok(());
        }
        eprintln!(
            "sqlgit: warning: cannot tell whether another process has {} open (/proc is not \
             readable); replacing it anyway",
            target.display()
        );
        return Ok(());
    }
    let me = std::process::id();
    let pids = std::fs::read_dir("/proc")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me);
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue; // gone, or another user's
        };
        let open = fds.flatten().any(|fd| {
            std::fs::metadata(fd.path()).is_ok_and(|m| files.contains(&(m.dev(), m.ino())))
        });
        if open {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            bail!(
                "{} is open in process {pid} ({}); replacing the file would leave it writing to \
                 the old, deleted one: restore into the live database with --into instead",
                target.display(),
                comm.trim()
            );
        }
    }
    Ok(())
}
