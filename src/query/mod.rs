//! `sqlgit query`: one read-only SQL statement against the database as it was at one or more
//! snapshots. Each snapshot is rebuilt with the fast path of `restore --to`
//! ([`crate::restore::build_recorded`]) in a private temporary directory (0700, files 0600,
//! removed afterwards, also on error or when a signal stops the command), opened read-only with
//! `PRAGMA query_only=ON`, queried, and deleted before the next one is built; a snapshot asked
//! for twice is built once.
//! Statements that would write are refused. [`print`] writes the answers as a table, JSON or
//! CSV.

pub mod print;

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::dump::stmt::{Encoding, RawStmt};
use crate::error::usage;
use crate::restore::{build_recorded, db_tree, short};
use crate::timeline::Timeline;
use crate::when;

/// One `sqlgit query`.
pub struct Request<'a> {
    pub repo: &'a Path,
    pub db: Option<&'a str>,
    /// WHEN expressions (see [`crate::when`]), in the order asked; None is the latest snapshot.
    pub points: &'a [Option<String>],
    pub sql: &'a str,
}

/// A value as SQLite returned it (text as its bytes: SQLite does not promise valid UTF-8).
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(Vec<u8>),
    /// Text of a UTF-16 database that UTF-8 cannot carry (unpaired surrogates, U+FFFE, U+FFFF,
    /// an odd byte), as its stored code units.
    Text16 {
        bytes: Vec<u8>,
        big_endian: bool,
    },
    Blob(Vec<u8>),
}

impl Cell {
    /// A value the dump's statement reader gave (text of a UTF-16 database as stored: SQLite's
    /// own conversion to UTF-8 glues an unpaired surrogate to the next code unit or replaces it).
    fn of_stored(cell: crate::dump::stmt::Cell<'_>) -> Cell {
        use crate::dump::stmt::Cell as C;
        match cell {
            C::Null => Cell::Null,
            C::Integer(v) => Cell::Int(v),
            C::Real(v) => Cell::Real(v),
            C::Text(t) => Cell::Text(t.to_vec()),
            C::Text16 { bytes, big_endian } => {
                match crate::dump::literal::utf16_to_utf8(bytes, big_endian) {
                    Some(text) => Cell::Text(text.into_bytes()),
                    None => Cell::Text16 {
                        bytes: bytes.to_vec(),
                        big_endian,
                    },
                }
            }
            C::Blob(b) => Cell::Blob(b.to_vec()),
        }
    }

    /// Text as UTF-8 for JSON and CSV: what is not UTF-8 (or UTF-16) becomes U+FFFD.
    pub fn lossy_text(&self) -> Option<String> {
        match self {
            Cell::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            Cell::Text16 { bytes, big_endian } => {
                let units = bytes.chunks(2).map(|u| match (u, big_endian) {
                    ([a, b], true) => u16::from_be_bytes([*a, *b]),
                    ([a, b], false) => u16::from_le_bytes([*a, *b]),
                    _ => 0xfffd,
                });
                let text = char::decode_utf16(units).map(|c| c.unwrap_or('\u{fffd}'));
                Some(text.collect())
            }
            _ => None,
        }
    }
}

/// The statement's result at one snapshot.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The snapshot's full commit id.
    pub commit: String,
    /// Its time, Unix seconds.
    pub time: i64,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl Answer {
    /// `3f9c1e0a2b7d  2026-11-24T10:00:00Z`, for people.
    pub fn label(&self) -> String {
        format!("{}  {}", &self.commit[..12], self.time_text())
    }

    /// The snapshot's time in RFC 3339 (UTC).
    pub fn time_text(&self) -> String {
        let secs = std::time::Duration::from_secs(self.time.max(0) as u64);
        when::show(std::time::UNIX_EPOCH + secs)
    }
}

/// The one-line refusal of a statement that writes (a usage error: exit 2).
const WRITES: &str = "the statement would change the database; sqlgit query runs only statements \
                      that read (SELECT, WITH … SELECT, read-only PRAGMAs)";

/// Run `req.sql` at every point; the answers are in the order of `req.points`.
pub fn query(req: &Request) -> Result<Vec<Answer>> {
    if req.sql.trim().is_empty() {
        return Err(usage("give an SQL statement to run"));
    }
    if starts_with_write(req.sql) {
        return Err(usage(WRITES));
    }
    // Points pruned locally come from the history remote (see `crate::timeline`).
    let mut timeline = Timeline::open(req.repo)?;
    let ids = req
        .points
        .iter()
        .map(|p| timeline.resolve(p.as_deref()))
        .collect::<Result<Vec<_>>>()?;
    let repo = timeline.repo();
    let commits = ids
        .iter()
        .map(|id| repo.find_commit(*id))
        .collect::<Result<Vec<_>, _>>()?;
    crate::room::writes_in(&std::env::temp_dir());
    // Interrupted (Ctrl-C, a time limit), the restored copies go too.
    let (dir, _remove) = crate::output::private_tempdir("query")
        .context("create a temporary directory (TMPDIR) for the restored snapshot")?;
    // One database at every point, by its folder's name: never each snapshot's only one.
    let all: Vec<&git2::Commit> = commits.iter().collect();
    let folder = crate::restore::same_db_folder(&all, req.db)?;
    let db = Some(folder.as_str());
    let mut answers: Vec<Option<Answer>> = vec![None; commits.len()];
    for (i, commit) in commits.iter().enumerate() {
        if answers[i].is_some() {
            continue; // the same snapshot as an earlier point
        }
        let tree = db_tree(repo, commit, db)?;
        let path = dir.path().join(format!("{}.db", commit.id()));
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("create {}", path.display()))?;
        build_recorded(repo, commit, &tree, db, &path, None).map_err(|e| {
            // The TMPDIR hint only for what the disk refused, not for damage in the snapshot.
            let hint = match writing_failed(&e) {
                true => " (TMPDIR: set it to a disk with room for the database)",
                false => "",
            };
            e.context(format!(
                "restore snapshot {} into a temporary copy in {}{hint}",
                short(commit),
                dir.path().display()
            ))
        })?;
        let (columns, rows) = run_statement(&path, req.sql)
            .with_context(|| format!("query at snapshot {}", short(commit)))?;
        std::fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))?;
        let answer = Answer {
            commit: commit.id().to_string(),
            time: commit.time().seconds(),
            columns,
            rows,
        };
        for (j, other) in commits.iter().enumerate().skip(i) {
            if other.id() == commit.id() {
                answers[j] = Some(answer.clone());
            }
        }
    }
    Ok(answers.into_iter().flatten().collect())
}

/// Whether `e` is the disk refusing a write (full, read-only, a quota, a file size limit), as
/// opposed to a snapshot that cannot be read.
fn writing_failed(e: &anyhow::Error) -> bool {
    use rusqlite::ErrorCode as Sql;
    use std::io::ErrorKind as Io;
    const SAID: [&str; 4] = [
        "No space left on device",
        "database or disk is full",
        "Disk quota exceeded",
        "Read-only file system",
    ];
    e.chain().any(|c| {
        SAID.iter().any(|s| c.to_string().contains(s))
            || c.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    Io::StorageFull | Io::QuotaExceeded | Io::FileTooLarge | Io::ReadOnlyFilesystem
                )
            })
            || c.downcast_ref::<rusqlite::Error>().is_some_and(|r| {
                matches!(
                    r.sqlite_error_code(),
                    Some(Sql::DiskFull | Sql::SystemIoFailure | Sql::ReadOnly | Sql::CannotOpen)
                )
            })
    })
}

/// Whether the statement plainly writes (its first word says so): refused before any restore.
/// What this misses, `sqlite3_stmt_readonly` catches after it.
fn starts_with_write(sql: &str) -> bool {
    let first: String = sql
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    [
        "INSERT", "UPDATE", "DELETE", "REPLACE", "UPSERT", "CREATE", "DROP", "ALTER", "VACUUM",
        "REINDEX", "ANALYZE",
    ]
    .iter()
    .any(|w| first.eq_ignore_ascii_case(w))
}

/// Run one statement on the database at `path`, opened read-only: its column names and rows.
fn run_statement(path: &Path, sql: &str) -> Result<(Vec<String>, Vec<Vec<Cell>>)> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("open {}", path.display()))?;
    conn.execute_batch("PRAGMA query_only=ON")?;
    let mut stmt = conn.prepare(sql).map_err(|e| match e {
        rusqlite::Error::MultipleStatement => usage("give one SQL statement, not several"),
        rusqlite::Error::SqliteFailure(_, Some(message)) => anyhow::anyhow!(message),
        e => e.into(),
    })?;
    if !stmt.readonly() {
        return Err(usage(WRITES));
    }
    let columns: Vec<String> = stmt.column_names().map(str::to_string).collect();
    let encoding = Encoding::of(&conn)?;
    if encoding != Encoding::Utf8 {
        drop(stmt);
        return Ok((columns, utf16_rows(&conn, sql, encoding)?));
    }
    let n = columns.len();
    let mut rows = Vec::new();
    let mut result = stmt.query([])?;
    while let Some(row) = result.next()? {
        let cells = (0..n)
            .map(|i| {
                Ok(match row.get_ref(i)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Real(v) => Cell::Real(v),
                    ValueRef::Text(t) => Cell::Text(t.to_vec()),
                    ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
                })
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.push(cells);
    }
    Ok((columns, rows))
}

/// The rows of `sql` (checked to be one read-only statement) in a UTF-16 database, text read
/// as the dump reads it: as its stored code units, which `diff` shows too.
fn utf16_rows(conn: &Connection, sql: &str, encoding: Encoding) -> Result<Vec<Vec<Cell>>> {
    let mut stmt = RawStmt::prepare(conn, sql, encoding)?;
    let n = stmt.column_count();
    let mut rows = Vec::new();
    while stmt.step()? {
        rows.push((0..n).map(|i| Cell::of_stored(stmt.cell(i))).collect());
    }
    Ok(rows)
}
