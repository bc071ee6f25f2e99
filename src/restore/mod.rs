//! Reading a snapshot back: walk its files in path order (which is the dump), stream them to a
//! writer, or execute them into a new database and check it before it replaces anything (a new
//! file with `--to`; a live database's content with `--into`, in `into.rs`).

mod aside;
mod canonical;
mod check;
mod columns;
mod decode;
mod exec;
mod fast;
mod guard;
mod into;
mod older;
mod owner;
mod pick;
mod vtab;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use git2::{Commit, ObjectType, Repository, Tree, TreeWalkMode, TreeWalkResult};

use crate::store::packread::PackReader;
pub use check::{Check, check_integrity, is_about_values, is_stale_fts_index};
use exec::feed_file;
pub use exec::{Built, build_database, build_pinned, execute};
pub use guard::Pinned;
pub use into::restore_into;
pub use pick::{db_folder, db_tree, folders, live_folder, same_db_folder};
pub use vtab::{check_around_modules, check_virtual_tables, finding_table};

pub fn short(commit: &Commit) -> String {
    crate::store::short_id(commit.id())
}

/// Call `f` with every file of `tree`, in path order (that order is the dump), an older
/// sqlgit's header with the lines it left out put in (see [`older`]). Returns the bytes of
/// SQL so added (0 for what the current sqlgit writes): what the snapshot's commit recorded
/// does not count them. Blobs stored whole in a pack are read with `pread` and inflated by
/// libdeflate, each checked against its id (SHA-1); anything else (deltas, loose objects)
/// through libgit2.
pub fn for_each_file(
    repo: &Repository,
    tree: &Tree,
    mut f: impl FnMut(&str, &[u8]) -> Result<()>,
) -> Result<u64> {
    let packs = PackReader::open(&repo.path().join("objects"));
    let mut failure: Option<anyhow::Error> = None;
    let mut added = 0u64;
    let mut give = |path: &str, data: &[u8]| -> Result<()> {
        match (path == older::HEADER)
            .then(|| older::header_as_current(tree, data))
            .flatten()
        {
            Some(header) => {
                added += (header.len() - data.len()) as u64;
                f(path, &header)
            }
            None => f(path, data),
        }
    };
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() != Some(ObjectType::Blob) {
            return TreeWalkResult::Ok;
        }
        let path = format!("{dir}{}", entry.name().unwrap_or_default());
        let result = match packs.whole_blob(entry.id()) {
            Ok(Some(data)) => give(&path, &data),
            Ok(None) => repo
                .find_blob(entry.id())
                .map_err(|e| anyhow!("read {path}: {}", e.message()))
                .and_then(|blob| give(&path, blob.content())),
            Err(e) => Err(e.context(format!("read {path}"))),
        };
        match result {
            Ok(()) => TreeWalkResult::Ok,
            Err(e) => {
                failure = Some(e);
                TreeWalkResult::Abort
            }
        }
    })
    .or_else(|e| if failure.is_some() { Ok(()) } else { Err(e) })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(added),
    }
}

/// Stream the snapshot's SQL to `out`. Returns the bytes of the snapshot written (not those
/// [`for_each_file`] added for an older sqlgit's snapshot).
pub fn write_sql(repo: &Repository, tree: &Tree, out: &mut dyn Write) -> Result<u64> {
    let mut bytes = 0u64;
    let added = for_each_file(repo, tree, |_, data| {
        bytes += data.len() as u64;
        Ok(out.write_all(data)?)
    })?;
    Ok(bytes - added)
}

/// Fail when the `bytes` of SQL a snapshot's `tree` gave differ from what its commit recorded
/// for the database `folder` (what `cat` can check without executing the SQL).
pub fn check_bytes(commit: &Commit, folder: &str, bytes: u64) -> Result<()> {
    let message = String::from_utf8_lossy(commit.message_bytes());
    match crate::dump::recorded::recorded(&message, folder) {
        Some(want) if want.bytes != bytes => bail!(
            "snapshot {} is incomplete: its commit records {} bytes of SQL for {folder}, its \
             files hold {bytes} (files are missing from its tree; `sqlgit verify` says more)",
            short(commit),
            want.bytes
        ),
        _ => Ok(()),
    }
}

/// Where a restore reads its SQL from.
pub enum Source<'a> {
    /// An SQL file (`sqlgit dump`/`cat -o` output, plain, gzip or zstd; a pipe works too).
    File(&'a Path),
    /// A snapshot of a repository.
    Snapshot {
        repo: &'a Path,
        when: Option<&'a str>,
        db: Option<&'a str>,
    },
}

/// Build a new database at `target` from `source`, safely: into a temporary file beside it,
/// checked with `PRAGMA integrity_check`, then renamed into place (replacing `target` and its
/// -wal/-shm/-journal files only with `force`, and never while a process has it open). Returns
/// what was restored, for people, and warnings (values it gave back converted).
pub fn restore_to(source: &Source, target: &Path, force: bool) -> Result<(String, Vec<String>)> {
    // A symlink is followed, as SQLite and `--into` follow it: the database it names is
    // replaced (or created), not the link (a deploy's `current/app.db -> shared/app.db`).
    let followed = crate::output::follow_symlinks(target)?;
    let target = followed.as_path();
    if target.is_dir() {
        bail!(
            "{} is a directory: give the path of a database file",
            target.display()
        );
    }
    let tmp = temp_path(target)?;
    let _remove = crate::output::remove_on_stop(&tmp);
    if target.exists() && !force {
        bail!("{} exists; use --force to replace it", target.display());
    }
    // Also when only its -wal, -shm or -journal is left (the database deleted or moved away
    // under a running application): they are removed before the rename.
    into::refuse_if_open(target, true)?;
    remove_with_sidecars(&tmp)?;
    // Over a configured database (--force): its own folder only, as --into reads it.
    let (folder, over);
    let source = match *source {
        Source::Snapshot { repo, when, db } if target.exists() => {
            folder = pick::pin(repo, when, db, target)?.1;
            let db = folder.as_deref().or(db);
            over = Source::Snapshot { repo, when, db };
            &over
        }
        _ => source,
    };
    let (what, built) = build_from(source, &tmp, None, &format!("to {}", target.display()))?;
    let placed = (|| {
        let mut kept = None;
        // Again, just before the rename: the build may have taken minutes.
        into::refuse_if_open(target, false)?;
        if let Ok(replaced) = std::fs::metadata(target) {
            kept = owner::keep_owner_and_mode(&tmp, &replaced, target)?;
        }
        for suffix in crate::output::SIDE_FILES {
            remove_if_exists(&crate::output::side_file(target, suffix))?;
        }
        std::fs::rename(&tmp, target)
            .with_context(|| format!("move restored database into {}", target.display()))?;
        Ok(kept)
    })();
    let kept = match placed {
        Ok(kept) => kept,
        Err(e) => {
            let _ = remove_with_sidecars(&tmp);
            return Err(e);
        }
    };
    let mut warnings = converted_warnings(&built.converted);
    warnings.extend(kept);
    Ok((what, warnings))
}

/// The warnings for the values a restore gave back converted (SQL cannot store them as they
/// were: see [`crate::dump::affinity`]).
pub fn converted_warnings(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| format!("the restored database differs from its source: {l}"))
        .collect()
}

/// Build a new database at `tmp` from `source`, keeping the layout `pinned` (if given: see
/// [`build_pinned`]). Returns what was restored, for people, and what the build saw; on failure
/// `tmp` is removed and the error says what was being restored `dest` ("to new.db", "into
/// app.db").
fn build_from(
    source: &Source,
    tmp: &Path,
    pinned: Option<Pinned>,
    dest: &str,
) -> Result<(String, Built)> {
    let (built, what) = match source {
        Source::File(file) => (
            build_pinned(tmp, Check::Quick, pinned, |exec| feed_file(file, exec)),
            file.display().to_string(),
        ),
        Source::Snapshot { repo, when, db } => build_point(repo, *when, *db, tmp, pinned)?,
    };
    match built {
        Ok(built) => Ok((what, built)),
        Err(e) => {
            let _ = remove_with_sidecars(tmp);
            Err(unrestorable(e).context(format!("restore {what} {dest}")))
        }
    }
}

/// [`build_from`] a snapshot: also fails when the database holds other tables, rows or bytes of
/// SQL than its commit recorded (a tree that lost files restores cleanly, only smaller).
fn build_point(
    repo: &Path,
    when: Option<&str>,
    db: Option<&str>,
    tmp: &Path,
    pinned: Option<Pinned>,
) -> Result<(Result<Built>, String)> {
    // Points pruned locally come from the history remote (see `crate::timeline`).
    let mut timeline = crate::timeline::Timeline::open(repo)?;
    let id = timeline.resolve(when)?;
    let repo = timeline.repo();
    let commit = repo.find_commit(id)?;
    let tree = db_tree(repo, &commit, db)?;
    let built = build_recorded(repo, &commit, &tree, db, tmp, pinned);
    Ok((built, format!("snapshot {}", short(&commit))))
}

/// [`build_snapshot`] of database `db`'s folder `tree` in `commit`, checked against what the
/// commit recorded: a tree that lost files restores cleanly, only smaller, and must not be
/// taken for the snapshot (`restore`, `query`).
pub fn build_recorded(
    repo: &Repository,
    commit: &git2::Commit,
    tree: &git2::Tree,
    db: Option<&str>,
    path: &Path,
    pinned: Option<Pinned>,
) -> Result<Built> {
    let folder = db_folder(commit, db)?;
    let built = build_snapshot(repo, tree, path, pinned)?;
    let conn = rusqlite::Connection::open(path)?;
    let counted = crate::dump::recorded::count(&conn).context("count what was restored")?;
    let got = crate::dump::Summary {
        bytes: built.bytes,
        ..counted
    };
    let message = String::from_utf8_lossy(commit.message_bytes());
    crate::dump::recorded::check(&format!("database {folder}"), &message, &folder, &got)?;
    Ok(built)
}

/// Build a new database at `path` from a snapshot's database folder `tree` (the fast path),
/// keeping the layout `pinned` (if given); checked with `PRAGMA quick_check`. The caller
/// removes `path` on failure. Also what `sqlgit query` reads past databases from.
pub fn build_snapshot(
    repo: &Repository,
    tree: &Tree,
    path: &Path,
    pinned: Option<Pinned>,
) -> Result<Built> {
    // Blobs stored whole are checked against their ids as they are read (`for_each_file`);
    // for the others (deltas, after a `git gc`) libgit2's hashing with collision detection
    // would be a third of the restore: zlib's own checksum still catches a damaged object,
    // and the result is checked; `sqlgit verify` keeps libgit2's full checks.
    git2::opts::strict_hash_verification(false);
    let mut added = 0;
    let built = build_pinned(path, Check::Quick, pinned, |exec| {
        added = for_each_file(repo, tree, |_, sql| exec(sql))?;
        Ok(())
    })?;
    // The bytes of the snapshot, as its commit recorded them.
    Ok(Built {
        bytes: built.bytes - added,
        ..built
    })
}

/// A restore that SQLite refused because a row breaks its table's STRICT types or NOT NULL:
/// say what it is (such rows get in by editing the schema, or through a mistyped ADD COLUMN
/// default; no restore can insert them).
pub fn unrestorable(e: anyhow::Error) -> anyhow::Error {
    let text = format!("{e:#}");
    if text.contains("cannot store ") || text.contains("NOT NULL constraint failed") {
        return e.context(
            "a row breaks its table's STRICT column types or NOT NULL (made by editing the \
             schema with writable_schema, or by ALTER TABLE ADD COLUMN with a DEFAULT of the \
             wrong type, which rows written before it read): SQLite refuses to insert it, so \
             this snapshot cannot be restored (`sqlgit cat | sqlite3` loses the whole statement \
             the row is in); fix the rows or the default in the database (PRAGMA \
             integrity_check lists them)",
        );
    }
    e
}

fn temp_path(target: &Path) -> Result<PathBuf> {
    crate::output::temp_beside(target, "sqlgit-restore-")
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        // A name too long to exist (the -journal of a database named at the limit).
        Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => Ok(()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

fn remove_with_sidecars(path: &Path) -> Result<()> {
    remove_if_exists(path)?;
    for suffix in crate::output::SIDE_FILES {
        remove_if_exists(&crate::output::side_file(path, suffix))?;
    }
    Ok(())
}
