//! Restoring into a live database (`restore --into`): the restored database is built beside the
//! target, the target's old content is saved aside, and SQLite's online backup API copies the new
//! content in as one write transaction, so open connections see it at their next transaction.
//! Also `restore --to`'s refusal to replace a file (or remove its -wal, -shm, -journal) that
//! another process has open.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, ffi};

use super::aside::{PagerFile, save_aside};
use super::{Check, Source, build_from, check_integrity, remove_with_sidecars};

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
    // The snapshot is fixed now, by its commit id: the command printed for a failure must
    // restore this one when it is run later, after more snapshots were taken.
    let (id, folder);
    let source = match *source {
        Source::Snapshot { repo, when, db } => {
            (id, folder) = super::pick::pin(repo, when, db, target)?;
            Source::Snapshot {
                repo,
                when: Some(&id),
                db: folder.as_deref().or(db),
            }
        }
        Source::File(file) => Source::File(file),
    };
    let source = &source;
    let fallback = fallback(source, target);
    let mut live = open(target, busy_timeout)?;
    // A file SQLite cannot read as a database (a damaged header) cannot be replaced in place.
    let layout = Layout::of(&live).map_err(|e| {
        use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
        let unreadable = e.chain().find_map(|c| {
            let sqlite = c.downcast_ref::<rusqlite::Error>()?;
            let code = sqlite.sqlite_error_code()?;
            matches!(code, NotADatabase | DatabaseCorrupt).then(|| sqlite.to_string())
        });
        let Some(why) = unreadable else {
            // A WAL database whose -shm file cannot be made (a full or read-only filesystem).
            let hint = crate::dump::source::wal_trouble(target, &e)
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            return e.context(format!("database {}{hint}", target.display()));
        };
        anyhow::anyhow!(
            "database {}: {why}: --into replaces a database's content through SQLite, which \
             cannot read this file; stop the application, keep the damaged file if you want it \
             (cp), then run: {fallback}",
            target.display()
        )
    })?;
    let tmp = crate::output::temp_beside(target, "sqlgit-into-")?;
    let _remove = crate::output::remove_on_stop(&tmp);
    remove_with_sidecars(&tmp)?;
    let dest = format!("into {}", target.display());
    let (what, built) = build_from(source, &tmp, Some(layout.pinned()), &dest)?;
    let copied = layout
        .apply(&tmp)
        .and_then(|()| layout.same_reserve(&tmp))
        .and_then(|()| copy_in(&tmp, &mut live, target, &layout, busy_timeout, &fallback));
    let _ = remove_with_sidecars(&tmp);
    let saved = copied.with_context(|| format!("restore {what} {dest}"))?;
    let found = layout.check(&live).with_context(|| {
        format!(
            "after restoring {what} into {} (the old content is in {})",
            target.display(),
            saved.display()
        )
    })?;
    let mut warnings = layout.kept(&built.ignored, &built.defaulted, target);
    warnings.extend(super::converted_warnings(&built.converted));
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

/// The command that restores `source` to `target` without --into (once the applications are
/// stopped): `sqlgit restore WHEN --repo REPO --to TARGET --force`.
fn fallback(source: &Source, target: &Path) -> String {
    use crate::shellword::{path, quote as word};
    let from = match source {
        Source::File(file) => format!("--from-file {}", path(file)),
        Source::Snapshot { repo, when, db } => {
            let mut s = String::new();
            if let Some(when) = when {
                s.push_str(&word(when));
                s.push(' ');
            }
            s.push_str(&format!("--repo {}", path(repo)));
            if let Some(db) = db {
                s.push_str(&format!(" --db {}", word(db)));
            }
            s
        }
    };
    format!("sqlgit restore {from} --to {} --force", path(target))
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
    /// Reserved bytes per page (file header byte 20): the checksum VFS keeps its checksums there.
    reserve: u8,
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
            reserve: super::guard::reserve_of(conn)?,
            wal: mode.eq_ignore_ascii_case("wal"),
            encoding,
        })
    }

    /// What the build keeps whatever its SQL says.
    fn pinned(&self) -> super::Pinned {
        super::Pinned {
            page_size: self.page_size,
            auto_vacuum: self.auto_vacuum,
            reserve: self.reserve,
        }
    }

    /// The warning when the SQL's layout is not the target's: a page_size or auto_vacuum it
    /// set to another value (`ignored`, from the build), or one it left out where that means
    /// SQLite's default (`defaulted`: a format-2 header writes only other values).
    fn kept(&self, ignored: &[String], defaulted: &[&str], target: &Path) -> Vec<String> {
        let defaulted: Vec<String> = defaulted
            .iter()
            .filter_map(|&name| {
                let (own, default) = match name {
                    "page_size" => (self.page_size, crate::dump::DEFAULT_PAGE_SIZE),
                    _ => (self.auto_vacuum, 0),
                };
                (own != default).then(|| format!("{name}={default}"))
            })
            .collect();
        let mut said = Vec::new();
        if !ignored.is_empty() {
            said.push(format!("sets PRAGMA {}", ignored.join(", ")));
        }
        match defaulted.len() {
            0 => {}
            1 => said.push(format!("leaves {} (SQLite's default)", defaulted[0])),
            _ => said.push(format!(
                "leaves {} (SQLite's defaults)",
                defaulted.join(", ")
            )),
        }
        if said.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "the restored SQL {}; {} keeps its own page_size={} and auto_vacuum={} \
             (--into keeps the target's layout: converting it takes a VACUUM, which renumbers \
             hidden rowids; every row and rowid is the snapshot's). For the snapshot's layout, \
             stop the application and use --to --force",
            said.join(" and "),
            target.display(),
            self.page_size,
            self.auto_vacuum
        )]
    }

    /// Refuse a built file at `path` whose reserved bytes per page are not the target's (the
    /// build pins them; the backup copies them with page 1).
    fn same_reserve(&self, path: &Path) -> Result<()> {
        let conn = Connection::open(path).with_context(|| format!("open {}", path.display()))?;
        conn.query_row("PRAGMA page_size", [], |_| Ok(()))?;
        let reserve = super::guard::reserve_of(&conn)?;
        if reserve != self.reserve {
            bail!(
                "the restored database reserves {reserve} bytes per page, the target {}",
                self.reserve
            );
        }
        Ok(())
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
    layout: &Layout,
    busy_timeout: Duration,
    fallback: &str,
) -> Result<PathBuf> {
    // Taken before the backup borrows `live`: the handles stay valid while it is open.
    let db = PagerFile::of(live, ffi::SQLITE_FCNTL_FILE_POINTER)?;
    let wal = match layout.wal {
        true => Some(PagerFile::of(live, ffi::SQLITE_FCNTL_JOURNAL_POINTER)?),
        false => None,
    };
    let src = open(tmp, busy_timeout)?;
    let backup = Backup::new(&src, live).context("start the backup")?;
    let locked = |step: StepResult| match step {
        StepResult::Busy | StepResult::Locked => {
            bail!("{}: database is locked", target.display())
        }
        _ => Ok(()),
    };
    locked(backup.step(0).context("lock the target")?)?;
    let saved = save_aside(target, &db, wal.as_ref(), layout.page_size).with_context(|| {
        format!(
            "save the old content (nothing was changed; if it cannot be saved, stop the \
             applications and run `{fallback}`)"
        )
    })?;
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

/// Fail when another process has `target` (or its -wal, -shm or -journal file) open: replacing
/// the file, or removing its side files, would leave that process writing to the old, unlinked
/// ones. Every side file that exists is checked, also when `target` itself is gone (deleted or
/// moved away under a running application, which still has its -wal and -shm open). Linux:
/// every `/proc/PID/fd/*` this user may read is compared by device and inode (processes of other
/// users are seen only by root). Without a readable /proc, a warning (if `warn`) says nothing
/// was checked. Nothing to check when none of the files exists.
pub(super) fn refuse_if_open(target: &Path, warn: bool) -> Result<()> {
    let files: Vec<(PathBuf, (u64, u64))> = ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| crate::output::side_file(target, suffix))
        .filter_map(|p| {
            let m = std::fs::metadata(&p).ok()?;
            Some((p, (m.dev(), m.ino())))
        })
        .collect();
    if files.is_empty() {
        return Ok(());
    }
    if std::fs::read_dir("/proc/self/fd").is_err() {
        if !warn {
            return Ok(());
        }
        tell!(
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
        let open = fds.flatten().find_map(|fd| {
            let m = std::fs::metadata(fd.path()).ok()?;
            files.iter().find(|(_, id)| *id == (m.dev(), m.ino()))
        });
        let Some((file, _)) = open else { continue };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let comm = comm.trim();
        if !target.exists() {
            bail!(
                "{} is open in process {pid} ({comm}), whose {} is gone (deleted or moved away \
                 under it): removing its side files would lose everything it writes from now \
                 on; stop that process first, or restore --to another file",
                file.display(),
                target.display()
            );
        }
        bail!(
            "{} is open in process {pid} ({comm}); replacing the file would leave it writing to \
             the old, deleted one: restore into the live database with --into instead",
            target.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_is_one_command_quoted_for_a_shell() {
        let source = Source::Snapshot {
            repo: Path::new("/srv/app.sqlgit"),
            when: Some("2026-11-24T10:00:00Z"),
            db: None,
        };
        assert_eq!(
            fallback(&source, Path::new("my app.db")),
            "sqlgit restore 2026-11-24T10:00:00Z --repo /srv/app.sqlgit --to 'my app.db' --force"
        );
        let source = Source::File(Path::new("it's.sql"));
        assert_eq!(
            fallback(&source, Path::new("app.db")),
            r"sqlgit restore --from-file 'it'\''s.sql' --to app.db --force"
        );
    }
}
