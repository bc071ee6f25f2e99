//! Executing a restore's SQL into a new database: statement by statement, as the sqlite3 shell
//! reads a script, from a snapshot's files or from an SQL file (plain or gzip), then checked.

use std::ffi::CStr;
use std::os::raw::c_char;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use rusqlite::Connection;
use rusqlite::ffi;

use super::check::{Check, check_integrity, quick_check_built};
use super::guard::{Guard, Pinned};

/// Execute SQL text (any bytes, several statements) on `conn`, read as the sqlite3 shell reads
/// a script (one CR before each line end dropped), so that every restore restores the same.
pub fn execute(conn: &Connection, sql: &[u8]) -> Result<()> {
    let sql = crate::dump::shell::shell_line_ends(sql);
    let sql: &[u8] = &sql;
    let db = unsafe { conn.handle() };
    let mut pos = 0usize;
    while pos < sql.len() {
        // A line starting with `.` where no statement has begun: a shell command.
        let start = blank_end(sql, pos);
        if sql.get(start) == Some(&b'.') && (start == 0 || sql[start - 1] == b'\n') {
            let end = sql[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(sql.len(), |n| start + n);
            shell_command(conn, &sql[start..end])?;
            pos = end;
            continue;
        }
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

/// Where the white space and SQL comments from `pos` end (the sqlite3 shell skips lines of only
/// those before it looks for a shell command).
fn blank_end(sql: &[u8], mut pos: usize) -> usize {
    loop {
        let rest = &sql[pos..];
        if rest.first().is_some_and(u8::is_ascii_whitespace) {
            pos += 1;
        } else if rest.starts_with(b"--") {
            pos += rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        } else if rest.starts_with(b"/*") {
            match rest[2..].windows(2).position(|w| w == b"*/") {
                Some(n) => pos += n + 4,
                None => return pos,
            }
        } else {
            return pos;
        }
    }
}

/// Run the sqlite3 shell command `line` as the CLI would: dumps hold only `.dbconfig dqs_ddl on`
/// (see `dump::dqs`) and `.dbconfig defensive off` (`dump::shell::WRITABLE_ON`); anything else
/// is refused rather than skipped.
fn shell_command(conn: &Connection, line: &[u8]) -> Result<()> {
    use rusqlite::config::DbConfig;
    let text = String::from_utf8_lossy(line);
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    let config = match words[..] {
        [".dbconfig", "dqs_ddl", _] => DbConfig::SQLITE_DBCONFIG_DQS_DDL,
        [".dbconfig", "dqs_dml", _] => DbConfig::SQLITE_DBCONFIG_DQS_DML,
        [".dbconfig", "defensive", _] => DbConfig::SQLITE_DBCONFIG_DEFENSIVE,
        _ => bail!(
            "the SQL holds the sqlite3 shell command {:?}, which sqlgit does not run (only \
             `.dbconfig dqs_ddl|dqs_dml|defensive on|off`): restore it with `sqlite3`",
            text.trim()
        ),
    };
    let on = match words[2] {
        "on" => true,
        "off" => false,
        other => bail!("the SQL's {:?}: {other:?} is not on or off", text.trim()),
    };
    conn.set_db_config(config, on)
        .with_context(|| format!("run {:?}", text.trim()))?;
    Ok(())
}

pub(super) fn sqlite_error(db: *mut ffi::sqlite3, at: &[u8]) -> anyhow::Error {
    let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }
        .to_string_lossy()
        .into_owned();
    let snippet: String = String::from_utf8_lossy(&at[..at.len().min(60)]).into();
    let hint = if msg.starts_with("UNIQUE constraint failed: index") && builds_an_index(at) {
        format!(
            "; the database's own SQLite built this index, and sqlgit's SQLite {} computes its \
             keys differently (an expression that turns a REAL into text, which SQLite versions \
             spell differently, or a function or collation defined otherwise), or the index was \
             damaged: restore with the sqlite3 the application uses, \
             `sqlgit cat … | sqlite3 NEW.db`",
            rusqlite::version()
        )
    } else {
        String::new()
    };
    anyhow!("{msg} (at: {}){hint}", snippet.trim())
}

/// Whether the statement at the start of `sql` is a `CREATE [UNIQUE] INDEX`.
fn builds_an_index(sql: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&sql[..sql.len().min(40)]).to_ascii_uppercase();
    let words: Vec<&str> = head.split_ascii_whitespace().take(3).collect();
    matches!(
        words[..],
        ["CREATE", "INDEX", ..] | ["CREATE", "UNIQUE", "INDEX", ..]
    )
}

/// Settings for building a new database: no journal and no syncing while it is built (it is
/// a temporary file until it is checked, synced and renamed), a bounded page cache, and two
/// helper threads for the sorts that build indexes (the threads that read and decode the
/// snapshot wait while an index is built, so their cores are free then). Rows that break a
/// CHECK constraint restore as they are, also from SQL whose header does not say so (an older
/// sqlgit's `cat -o` output).
const BUILD_PRAGMAS: &str = "PRAGMA journal_mode=OFF;\nPRAGMA synchronous=OFF;\n\
                             PRAGMA cache_size=-2048;\nPRAGMA threads=2;\n\
                             PRAGMA ignore_check_constraints=ON;\n";

/// What a build saw besides the database.
#[derive(Debug, Default)]
pub struct Built {
    /// Bytes of SQL executed.
    pub bytes: u64,
    /// Layout pragmas of the SQL not applied, as they were written (`page_size=1024`).
    pub ignored: Vec<String>,
    /// Layout pragmas the SQL left out where that means SQLite's default (format 2: an older
    /// format did not record them), watched only with a pinned layout (`page_size`).
    pub defaulted: Vec<&'static str>,
    /// A line per column whose values the restore converted (see [`crate::dump::affinity`]).
    pub converted: Vec<String>,
}

/// Build a database at `path` (which must not exist) from SQL pieces fed by `feed`, then check
/// it (`check`) and sync it to disk. Row statements take the fast path ([`super::fast`]); the
/// database is the same as executing the SQL gives.
pub fn build_database(
    path: &Path,
    check: Check,
    feed: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>,
) -> Result<()> {
    build_pinned(path, check, None, feed).map(|_| ())
}

/// [`build_database`] keeping the page size and auto_vacuum `pinned` (if given) whatever the
/// SQL sets.
pub fn build_pinned(
    path: &Path,
    check: Check,
    pinned: Option<Pinned>,
    feed: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>,
) -> Result<Built> {
    let conn = crate::vfs::open(path, rusqlite::OpenFlags::default())
        .with_context(|| format!("create {}", path.display()))?;
    crate::dump::real::register_sql_functions(&conn)?;
    conn.execute_batch(BUILD_PRAGMAS)
        .context("set up the new database")?;
    let guard = Guard::install(&conn, pinned)?;
    let meter = crate::progress::Progress::bytes("restoring");
    let mut bytes = 0u64;
    let mut format = None;
    let (conn, inserted, converted) = writing_back(path, || {
        super::fast::run(conn, |exec| {
            feed(&mut |sql| {
                if format.is_none() && !sql.is_empty() {
                    format = Some(crate::dump::Format::of_header(sql));
                }
                meter.inc(sql.len() as u64);
                bytes += sql.len() as u64;
                exec(sql)
            })
        })
    })?;
    meter.finish();
    let seen = guard.finish(&conn);
    if !conn.is_autocommit() {
        bail!("the SQL ended inside a transaction: the snapshot is incomplete");
    }
    complete_dump(seen.last_transaction.as_deref())?;
    // Every page is written (no journal, so nothing more is written before the close): the
    // disk catches up while the check reads the pages back from memory.
    let synced = std::thread::scope(|s| {
        let sync = s.spawn(|| std::fs::File::open(path).and_then(|f| f.sync_all()));
        let checked = match check {
            Check::Quick => quick_check_built(&conn, path, &inserted),
            Check::Full => check_integrity(&conn, check),
        }
        .context("integrity check of the restored database failed");
        let synced = sync
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("panicked")));
        checked.map(|_| synced)
    })?;
    conn.close().map_err(|(_, e)| e)?;
    synced.with_context(|| format!("sync {}", path.display()))?;
    check_encoding(path, seen.encoding.as_deref())?;
    let defaulted = match (pinned, format) {
        (Some(_), Some(crate::dump::Format::V2)) => ["page_size", "auto_vacuum"]
            .into_iter()
            .filter(|name| !seen.layout_set.contains(name))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Built {
        bytes,
        ignored: seen.ignored,
        defaulted,
        converted,
    })
}

/// Fail unless the database built at `path` has the encoding its SQL `asked` for: SQLite
/// writes it into the file only with the first table or view, so SQL that makes neither (an
/// older sqlgit's dump of such a database, saved by its `cat`) gives UTF-8 whatever it asked.
fn check_encoding(path: &Path, asked: Option<&str>) -> Result<()> {
    let Some(asked) = asked else {
        return Ok(());
    };
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("open {}", path.display()))?;
    let got: String = conn
        .query_row("PRAGMA encoding", [], |r| r.get(0))
        .context("read the restored database's encoding")?;
    let name = |e: &str| {
        e.trim_matches(['\'', '"'])
            .to_ascii_lowercase()
            .replace('-', "")
    };
    let (want, have) = (name(asked), name(&got));
    // `UTF-16` alone is the machine's byte order.
    if have == want || (want == "utf16" && have.starts_with("utf16")) {
        return Ok(());
    }
    bail!(
        "the restored database is {got} but its SQL asks for encoding {asked}: SQLite writes \
         the encoding only with the first table or view, and the SQL makes none (an older \
         sqlgit's dump: restore that snapshot with this sqlgit, which adds one); nothing was \
         restored"
    )
}

/// Fail unless the SQL's last transaction ended with COMMIT, as every complete dump does (sqlgit's
/// `9-commit.sql`, sqlite3's `.dump`): an empty file executes nothing, and sqlite3 ends a dump
/// that failed with `ROLLBACK; -- due to errors`.
fn complete_dump(last_transaction: Option<&str>) -> Result<()> {
    match last_transaction {
        Some("COMMIT") => Ok(()),
        Some("ROLLBACK") => bail!(
            "the SQL ends with ROLLBACK, not COMMIT: not a complete dump (sqlite3 ends a .dump \
             that failed with `ROLLBACK; -- due to errors`); nothing was restored"
        ),
        _ => bail!(
            "the SQL has no COMMIT: not a complete dump (an empty or cut-short file?); nothing \
             was restored"
        ),
    }
}

/// Run `build` while the disk is asked, every 100 ms, to start writing what is new in the file
/// at `path` (`sync_file_range`, which does not wait): the sync at the end then waits only for
/// the last of it, instead of for the whole database, written at once.
fn writing_back<R>(path: &Path, build: impl FnOnce() -> R) -> R {
    #[cfg(target_os = "linux")]
    if let Ok(file) = std::fs::File::open(path) {
        use std::os::unix::io::AsRawFd;
        use std::sync::mpsc::{RecvTimeoutError, channel};
        let (stop, stopped) = channel::<()>();
        return std::thread::scope(|s| {
            s.spawn(move || {
                let every = std::time::Duration::from_millis(100);
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    // SAFETY: our own open descriptor; the call only starts writes.
                    unsafe {
                        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE)
                    };
                }
            });
            let built = build();
            drop(stop);
            built
        });
    }
    build()
}

/// Feed an SQL file statement by statement — plain, gzip (1F 8B) or zstd (28 B5 2F FD), told by
/// its first bytes, read as a stream (a pipe works too): memory stays bounded.
pub(super) fn feed_file(path: &Path, exec: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
    use std::io::{BufRead, BufReader};
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    // Peek at the magic bytes without consuming them: the file may be a pipe.
    let mut buffered = BufReader::with_capacity(1 << 16, file);
    let head = buffered
        .fill_buf()
        .with_context(|| format!("read {}", path.display()))?;
    let reader: Box<dyn BufRead> = if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = zstd::stream::read::Decoder::with_buffer(buffered)
            .with_context(|| format!("read {}", path.display()))?;
        Box::new(BufReader::with_capacity(1 << 16, decoder))
    } else if head.starts_with(&[0x1f, 0x8b]) {
        let decoder = flate2::read::MultiGzDecoder::new(buffered);
        Box::new(BufReader::with_capacity(1 << 16, decoder))
    } else {
        Box::new(buffered)
    };
    let mut statement = Vec::new();
    let mut scan = EndScan::default();
    for line in reader.split(b'\n') {
        let line = line.with_context(|| format!("read {}", path.display()))?;
        statement.extend_from_slice(&line);
        statement.push(b'\n');
        // Only text ending in a `;` outside quotes and comments can end a statement: asking
        // sqlite3_complete about every such line of a long statement would read it again and
        // again (a value of many lines ending in `;` took minutes), so the quotes are followed
        // line by line, as the sqlite3 shell does (`quickscan`).
        if scan.line(&line) && complete(&statement) {
            exec(&statement)?;
            statement.clear();
            scan = EndScan::default();
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

/// Where the text read so far stands, line by line: inside a quote or a block comment, and
/// whether its last token outside them is a `;`.
#[derive(Default)]
struct EndScan {
    /// The closing byte of the quote the text is inside (`'`, `"`, `` ` ``, `]`).
    quote: Option<u8>,
    comment: bool,
    semicolon: bool,
}

impl EndScan {
    /// Follow one more line; whether the text now ends in a `;` outside quotes and comments
    /// (what sqlite3_complete needs to say complete).
    fn line(&mut self, line: &[u8]) -> bool {
        let mut i = 0;
        while i < line.len() {
            let c = line[i];
            if let Some(close) = self.quote {
                if c == close {
                    if close != b']' && line.get(i + 1) == Some(&close) {
                        i += 1; // a doubled quote stays inside
                    } else {
                        self.quote = None;
                    }
                }
            } else if self.comment {
                if c == b'*' && line.get(i + 1) == Some(&b'/') {
                    self.comment = false;
                    i += 1;
                }
            } else {
                match c {
                    b'-' if line.get(i + 1) == Some(&b'-') => break, // to the line's end
                    b'/' if line.get(i + 1) == Some(&b'*') => {
                        self.comment = true;
                        i += 1;
                    }
                    b'\'' | b'"' | b'`' | b'[' => {
                        self.quote = Some(if c == b'[' { b']' } else { c });
                        self.semicolon = false;
                    }
                    b';' => self.semicolon = true,
                    b' ' | b'\t' | b'\r' | 0x0c => {}
                    _ => self.semicolon = false,
                }
            }
            i += 1;
        }
        self.semicolon && self.quote.is_none() && !self.comment
    }
}

/// Whether `sql` ends with a complete statement (sqlite3_complete).
fn complete(sql: &[u8]) -> bool {
    let Ok(c) = std::ffi::CString::new(sql.to_vec()) else {
        return false; // a NUL byte inside: keep reading
    };
    unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) != 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan never says "not yet" where sqlite3_complete says complete (a statement end
    /// missed would run two statements as one), over random texts of quotes, comments, `;`
    /// and line ends; and a value of many lines ending in `;` is never asked about.
    #[test]
    fn the_scan_never_misses_an_end_sqlite3_complete_sees() {
        let alphabet = b"'\";[]`-/* \nx\t";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut asked = 0;
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let mut scan = EndScan::default();
            let mut so_far = Vec::new();
            for line in text.split(|&b| b == b'\n') {
                so_far.extend_from_slice(line);
                so_far.push(b'\n');
                let maybe = scan.line(line);
                asked += maybe as usize;
                assert!(
                    maybe || !complete(&so_far),
                    "missed the end of {:?}",
                    String::from_utf8_lossy(&so_far)
                );
            }
        }
        assert!(asked > 1000, "the scan said yes only {asked} times");
        let mut scan = EndScan::default();
        assert!(!scan.line(b"INSERT INTO t VALUES('a;"));
        for _ in 0..1000 {
            assert!(!scan.line(b"SELECT 1;"));
        }
        assert!(scan.line(b"');"));
    }
}
