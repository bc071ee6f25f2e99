//! Reading a snapshot back: walk its files in path order (which is the dump), stream them to a
//! writer, or execute them into a new database and check it before it replaces anything.

use std::ffi::CStr;
use std::io::Write;
use std::os::raw::c_char;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use git2::{Commit, ObjectType, Repository, Tree, TreeWalkMode, TreeWalkResult};
use rusqlite::Connection;
use rusqlite::ffi;

/// The folder of the database in a snapshot: the only one, or the one named `db`.
pub fn db_tree<'r>(
    repo: &'r Repository,
    commit: &Commit<'r>,
    db: Option<&str>,
) -> Result<Tree<'r>> {
    let root = commit.tree()?;
    let folders: Vec<String> = root
        .iter()
        .filter(|e| e.kind() == Some(ObjectType::Tree))
        .filter_map(|e| e.name().ok().map(str::to_string))
        .collect();
    let name = match (db, folders.as_slice()) {
        (Some(db), _) => {
            // A folder name as the tree has it, or a database file name (escaped like one).
            let dir = if folders.iter().any(|f| f == db) {
                db.to_string()
            } else {
                crate::dump::path::table_dir(db)
            };
            if !folders.contains(&dir) {
                bail!(
                    "no database {db:?} in snapshot {} (it has: {})",
                    short(commit),
                    folders.join(", ")
                );
            }
            dir
        }
        (None, [only]) => only.clone(),
        (None, []) => bail!("snapshot {} holds no database", short(commit)),
        (None, _) => bail!(
            "snapshot {} holds several databases ({}); choose one with --db",
            short(commit),
            folders.join(", ")
        ),
    };
    let entry = root.get_name(&name).expect("listed above");
    Ok(repo.find_tree(entry.id())?)
}

pub fn short(commit: &Commit) -> String {
    commit.id().to_string()[..12].to_string()
}

/// Call `f` with every file of `tree`, in path order (that order is the dump).
pub fn for_each_file(
    repo: &Repository,
    tree: &Tree,
    mut f: impl FnMut(&str, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut failure: Option<anyhow::Error> = None;
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() != Some(ObjectType::Blob) {
            return TreeWalkResult::Ok;
        }
        let path = format!("{dir}{}", entry.name().unwrap_or_default());
        let result = repo
            .find_blob(entry.id())
            .map_err(|e| anyhow!("read {path}: {}", e.message()))
            .and_then(|blob| f(&path, blob.content()));
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
        None => Ok(()),
    }
}

/// Stream the snapshot's SQL to `out`.
pub fn write_sql(repo: &Repository, tree: &Tree, out: &mut dyn Write) -> Result<()> {
    for_each_file(repo, tree, |_, data| Ok(out.write_all(data)?))
}

/// Execute SQL text (any bytes, several statements) on `conn`, read as the sqlite3 shell reads
/// a script (one CR before each line end dropped), so that every restore restores the same.
pub fn execute(conn: &Connection, sql: &[u8]) -> Result<()> {
    let sql = crate::dump::shell::shell_line_ends(sql);
    let sql: &[u8] = &sql;
    let db = unsafe { conn.handle() };
    let mut pos = 0usize;
    while pos < sql.len() {
        let rest = &sql[pos..];
        let mut stmt: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
        let mut tail: *const c_char = std::ptr::null();
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                db,
                rest.as_ptr() as *const c_char,
                rest.len() as i32,
                &mut stmt,
                &mut tail,
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(sqlite_error(db, rest));
        }
        let used = (tail as usize).saturating_sub(rest.as_ptr() as usize);
        if stmt.is_null() {
            if used == 0 {
                break;
            }
            pos += used;
            continue;
        }
        let mut rc = unsafe { ffi::sqlite3_step(stmt) };
        while rc == ffi::SQLITE_ROW {
            rc = unsafe { ffi::sqlite3_step(stmt) };
        }
        unsafe { ffi::sqlite3_finalize(stmt) };
        if rc != ffi::SQLITE_DONE {
            return Err(sqlite_error(db, rest));
        }
        pos += used.max(1);
    }
    Ok(())
}

fn sqlite_error(db: *mut ffi::sqlite3, at: &[u8]) -> anyhow::Error {
    let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }
        .to_string_lossy()
        .into_owned();
    let snippet: String = String::from_utf8_lossy(&at[..at.len().min(60)]).into();
    anyhow!("{msg} (at: {})", snippet.trim())
}

/// Build a database at `path` (which must not exist) from SQL pieces fed by `feed`, then check
/// it with `PRAGMA integrity_check`.
pub fn build_database(
    path: &Path,
    feed: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>,
) -> Result<()> {
    let conn = Connection::open(path).with_context(|| format!("create {}", path.display()))?;
    crate::dump::real::register_sql_functions(&conn)?;
    let meter = crate::progress::Progress::bytes("restoring");
    feed(&mut |sql| {
        meter.inc(sql.len() as u64);
        execute(&conn, sql)
    })?;
    meter.finish();
    if !conn.is_autocommit() {
        bail!("the SQL ended inside a transaction: the snapshot is incomplete");
    }
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if check != "ok" {
        bail!("integrity check of the restored database failed: {check}");
    }
    conn.close().map_err(|(_, e)| e)?;
    Ok(())
}

/// Where a restore reads its SQL from.
pub enum Source<'a> {
    /// An SQL file (`sqlgit dump`/`cat -o` output, plain or gzip; a pipe works too).
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
/// -wal/-shm/-journal files only with `force`). Returns what was restored, for people.
pub fn restore_to(source: &Source, target: &Path, force: bool) -> Result<String> {
    if target.exists() && !force {
        bail!("{} exists; use --force to replace it", target.display());
    }
    let tmp = temp_path(target)?;
    remove_with_sidecars(&tmp)?;
    let (built, what) = match source {
        Source::File(file) => (
            build_database(&tmp, |exec| feed_file(file, exec)),
            file.display().to_string(),
        ),
        Source::Snapshot { repo, when, db } => {
            let store = crate::store::Store::open_read(repo)?;
            let commit = crate::when::resolve(&store.repo, *when)?;
            let tree = db_tree(&store.repo, &commit, *db)?;
            let built = build_database(&tmp, |exec| {
                for_each_file(&store.repo, &tree, |_, sql| exec(sql))
            });
            (built, format!("snapshot {}", short(&commit)))
        }
    };
    if let Err(e) = built {
        let _ = remove_with_sidecars(&tmp);
        return Err(e.context(format!("restore {what} to {}", target.display())));
    }
    for suffix in ["-wal", "-shm", "-journal"] {
        remove_if_exists(&sidecar(target, suffix))?;
    }
    std::fs::rename(&tmp, target)
        .with_context(|| format!("move restored database into {}", target.display()))?;
    Ok(what)
}

fn temp_path(target: &Path) -> Result<PathBuf> {
    crate::output::temp_beside(target, "sqlgit-restore-")
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

fn remove_with_sidecars(path: &Path) -> Result<()> {
    remove_if_exists(path)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        remove_if_exists(&sidecar(path, suffix))?;
    }
    Ok(())
}

/// Feed an SQL file (plain or gzip) statement by statement: memory stays bounded.
fn feed_file(path: &Path, exec: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
    use std::io::{BufRead, BufReader};
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    // Peek at the magic bytes without consuming them: the file may be a pipe.
    let mut buffered = BufReader::with_capacity(1 << 16, file);
    let gz = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn BufRead> = if gz {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(buffered)))
    } else {
        Box::new(buffered)
    };
    let mut statement = Vec::new();
    for line in reader.split(b'\n') {
        statement.extend_from_slice(&line.with_context(|| format!("read {}", path.display()))?);
        statement.push(b'\n');
        if complete(&statement) {
            exec(&statement)?;
            statement.clear();
        }
    }
    if statement.iter().any(|b| !b.is_ascii_whitespace()) {
        bail!(
            "{} ends inside an SQL statement (truncated?)",
            path.display()
        );
    }
    Ok(())
}

/// Whether `sql` ends with a complete statement (sqlite3_complete).
fn complete(sql: &[u8]) -> bool {
    let Ok(c) = std::ffi::CString::new(sql.to_vec()) else {
        return false; // a NUL byte inside: keep reading
    };
    unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) != 0 }
}
