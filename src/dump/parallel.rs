//! A whole read of a table on two cores. Formatting rows as SQL is most of a dump's time, and
//! rows can be formatted in any order as long as they are cut into chunks in table order: a
//! second connection that sees the same moment of the database (the same WAL snapshot, or the
//! same file under the first connection's shared lock) formats rowid ranges, while this thread
//! formats others and cuts every range, in order, into the chunks a one-thread read writes. The
//! output is byte for byte the same; memory holds a few ranges (about 64 leaf pages each).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use rusqlite::{Connection, OpenFlags, ffi};

use super::Format;
use super::btree::split_keys;
use super::rows::{Chunk, Chunker, Groups, write_row};
use super::schema::{Key, RowidFrom, Table};
use super::sqlitefiles;
use super::stmt::{Encoding, RawStmt};

/// Ranges formatted but not yet cut into chunks, at most (bounds memory).
const WINDOW: usize = 4;
/// How long the second connection waits for a lock: it is an extra; without it the read goes
/// on on one core.
const HELPER_BUSY: Duration = Duration::from_millis(200);
/// Times the second connection tries to open a WAL snapshot while a checkpoint runs.
const SNAPSHOT_TRIES: usize = 100;

/// A second read-only connection whose read transaction sees the same moment as another's,
/// opened when the first table big enough to split comes (opening it reads the whole schema:
/// a dump of thousands of small tables would pay that for nothing).
pub struct Helper {
    path: PathBuf,
    /// None: not opened yet; Some(None): it could not be.
    conn: Option<Option<Connection>>,
}

impl Helper {
    /// The second connection on `conn`'s moment, opened at the first call.
    fn connection(&mut self, conn: &Connection) -> Option<&mut Connection> {
        let path = &self.path;
        self.conn
            .get_or_insert_with(|| open_helper(conn, path).ok())
            .as_mut()
    }
}

/// A [`Helper`] for `conn`, which must stay inside its read transaction (one that has read)
/// while the helper is used. None on a single core or an in-memory database; a helper whose
/// connection cannot join (a lock, an older WAL snapshot) leaves the read on one core.
pub fn helper(conn: &Connection) -> Option<Helper> {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return None;
    }
    if env_on("SQLGIT_ONE_CORE") {
        return None;
    }
    let path = conn.path().filter(|p| !p.is_empty())?;
    Some(Helper {
        path: PathBuf::from(path),
        conn: None,
    })
}

/// Whether switch `name` (`SQLGIT_ONE_CORE`, …) is on: set to anything but empty or `0`
/// (`SQLGIT_TWO_READERS=0` leaves it off).
pub(super) fn env_on(name: &str) -> bool {
    switch_on(std::env::var_os(name).as_deref())
}

fn switch_on(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

/// Cores a snapshot needs before its whole reads take a second connection: the dumping thread,
/// the object writer and its compressors keep two cores busy already.
const SNAPSHOT_CORES: usize = 4;

/// A [`Helper`] for a snapshot's reads: only with [`SNAPSHOT_CORES`] cores or more
/// (`SQLGIT_TWO_READERS=1` asks for one anyway, `SQLGIT_ONE_CORE=1` never).
pub fn helper_for_snapshot(conn: &Connection) -> Option<Helper> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < SNAPSHOT_CORES && !env_on("SQLGIT_TWO_READERS") {
        return None;
    }
    helper(conn)
}

fn open_helper(conn: &Connection, path: &Path) -> Result<Connection> {
    let helper = crate::vfs::open(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    helper.busy_timeout(HELPER_BUSY)?;
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    helper.execute_batch("BEGIN DEFERRED")?;
    if mode.eq_ignore_ascii_case("wal") {
        same_wal_snapshot(conn, &helper)?;
    }
    // Rollback journal: `conn`'s shared lock keeps every writer out of the file, so the
    // helper's first read sees what `conn` sees. Either way the first page (the file change
    // counter, the schema cookie) must match, or the helper is not used.
    let first_page = "SELECT data FROM sqlite_dbpage('main') WHERE pgno = 1";
    let mine: Vec<u8> = conn.query_row(first_page, [], |r| r.get(0))?;
    let theirs: Vec<u8> = helper.query_row(first_page, [], |r| r.get(0))?;
    if mine != theirs {
        bail!("the second connection sees another moment");
    }
    // The path names the file `conn` reads unless it was replaced since (a copy renamed over it).
    let ids = |c: &Connection| {
        let id = |fd: Option<i32>| fd.and_then(sqlitefiles::file_id);
        (id(sqlitefiles::database_fd(c)), id(sqlitefiles::wal_fd(c)))
    };
    if ids(conn) != ids(&helper) {
        bail!("the second connection opened another file");
    }
    Ok(helper)
}

/// Move `helper`'s read transaction onto `conn`'s WAL snapshot.
fn same_wal_snapshot(conn: &Connection, helper: &Connection) -> Result<()> {
    // A first read opens the WAL and a read transaction, which snapshot_open moves.
    let _: i64 = helper.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
    match snapshot(conn) {
        Some(snapshot) => {
            // SQLITE_BUSY while a checkpoint runs (opening a snapshot takes the checkpoint lock
            // for a moment, and does not wait for it).
            let mut rc = ffi::SQLITE_BUSY;
            for _ in 0..SNAPSHOT_TRIES {
                // SAFETY: an open connection used by this thread only, inside its transaction
                // with no statement running.
                rc = unsafe {
                    ffi::sqlite3_snapshot_open(helper.handle(), c"main".as_ptr(), snapshot)
                };
                if rc != ffi::SQLITE_BUSY {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            // SAFETY: a snapshot handle from sqlite3_snapshot_get, freed once.
            unsafe { ffi::sqlite3_snapshot_free(snapshot) };
            if rc != ffi::SQLITE_OK {
                bail!("sqlite3_snapshot_open: {rc}");
            }
            Ok(())
        }
        // SQLite has no snapshot of a WAL without frames: `conn` reads the database file alone.
        // Its read lock keeps checkpoints from writing into the file, so the helper sees the
        // same moment exactly when its WAL has no frames either.
        None => match snapshot(helper) {
            None => Ok(()),
            Some(theirs) => {
                // SAFETY: a snapshot handle from sqlite3_snapshot_get, freed once.
                unsafe { ffi::sqlite3_snapshot_free(theirs) };
                bail!("a writer committed after the first connection began reading")
            }
        },
    }
}

/// The WAL snapshot `conn`'s read transaction sees; None for a WAL without frames (free it with
/// `sqlite3_snapshot_free`).
pub(super) fn snapshot(conn: &Connection) -> Option<*mut ffi::sqlite3_snapshot> {
    let mut snapshot: *mut ffi::sqlite3_snapshot = std::ptr::null_mut();
    // SAFETY: an open connection used by this thread only, inside a read transaction.
    let rc = unsafe { ffi::sqlite3_snapshot_get(conn.handle(), c"main".as_ptr(), &mut snapshot) };
    (rc == ffi::SQLITE_OK && !snapshot.is_null()).then_some(snapshot)
}

/// Formatted text a range holds at most before it stops (rows with big values: a range is cut
/// by leaf pages, and overflow pages hold any amount); its thread formats the rest as it cuts.
const RANGE_BYTES: usize = 1 << 20;

/// A range of rows formatted: their values one after another, and where each row ends.
struct Formatted {
    text: Vec<u8>,
    rows: Vec<(i64, usize)>,
    /// Stopped at [`RANGE_BYTES`]: the rowid the rest of the range starts from.
    more: Option<i64>,
}

/// What the two threads share.
struct Shared {
    /// The next range to format.
    next: usize,
    /// The next range to cut into chunks.
    cut: usize,
    /// The number of ranges.
    total: usize,
    done: BTreeMap<usize, Result<Formatted>>,
    /// Buffers of ranges already cut, for the next ones (fresh ones cost page faults).
    spare: Vec<Formatted>,
    stop: bool,
    /// The second thread has stopped: every range it took is in `done`, unless it failed
    /// (panicked) in the middle of one.
    helper_gone: bool,
}

/// Marks the second thread gone however it ends, so the cutter never waits for a range that
/// will not come.
struct Gone<'a>(&'a Mutex<Shared>, &'a Condvar);

impl Drop for Gone<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.lock() {
            s.helper_gone = true;
        }
        self.1.notify_all();
    }
}

/// All of `table`'s rows, as [`super::rows::dump_rows`] reads them: on this connection and the
/// helper's when there is a helper and the table can be split, else on this one.
pub fn read_rows(
    conn: &Connection,
    helper: Option<&mut Helper>,
    table: &Table,
    encoding: Encoding,
    format: Format,
    emit: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<u64> {
    let helped = match helper {
        Some(helper) => dump_rows(conn, helper, table, encoding, format, emit)?,
        None => None,
    };
    match helped {
        Some(rows) => Ok(rows),
        None => super::rows::dump_rows(conn, table, encoding, format, emit),
    }
}

/// Read all of `table`'s rows as [`super::rows::dump_rows`] does, on this connection and the
/// helper's. None (nothing emitted) when the table is not one that can be split (no rowid that
/// SQL reaches, or too small to be worth it) or the helper's connection cannot join.
fn dump_rows(
    conn: &Connection,
    helper: &mut Helper,
    table: &Table,
    encoding: Encoding,
    format: Format,
    emit: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<Option<u64>> {
    let (Some(sql), RowidFrom::Select(at), Key::Rowid { .. }) =
        (&table.select_between, table.rowid_from, table.key)
    else {
        return Ok(None);
    };
    // The split is a hint: a page it cannot make sense of leaves the table to one connection
    // (and to SQLite, which reads it and reports any damage itself).
    let keys = split_keys(conn, table.rootpage).unwrap_or_default();
    if keys.len() < 2 {
        return Ok(None);
    }
    let Some(helper_conn) = helper.connection(conn) else {
        return Ok(None);
    };
    let ranges = ranges(&keys);
    let shared = Mutex::new(Shared {
        next: 0,
        cut: 0,
        total: ranges.len(),
        done: BTreeMap::new(),
        spare: Vec::new(),
        stop: false,
        helper_gone: false,
    });
    let wake = Condvar::new();
    let format_on = |conn: &Connection| -> Result<()> {
        let _gone = Gone(&shared, &wake);
        let mut stmt = RawStmt::prepare(conn, sql, encoding)
            .with_context(|| format!("read table {}", table.name))?;
        while let Some(i) = take_range(&shared, &wake, true) {
            let formatted = format_range(&mut stmt, table, at, ranges[i], spare(&shared));
            let mut s = shared.lock().map_err(|_| anyhow!("poisoned"))?;
            s.done.insert(i, formatted);
            wake.notify_all();
        }
        Ok(())
    };
    let cut = std::thread::scope(|scope| {
        let helping = scope.spawn(move || format_on(helper_conn));
        let cut = cut_in_order(
            conn, table, encoding, format, sql, at, &ranges, &shared, &wake, emit,
        );
        if let Ok(mut s) = shared.lock() {
            s.stop = true;
        }
        wake.notify_all();
        // The cutter had every range, from either thread, or failed: what the second thread
        // itself ended with (it could not prepare its statement, it panicked) changes nothing.
        let _ = helping.join();
        cut
    })?;
    Ok(Some(cut))
}

/// Rowid ranges, both ends included, between the split keys.
fn ranges(keys: &[i64]) -> Vec<(i64, i64)> {
    let mut out = Vec::with_capacity(keys.len() + 1);
    let mut from = i64::MIN;
    for &k in keys {
        out.push((from, k));
        match k.checked_add(1) {
            Some(next) => from = next,
            None => return out,
        }
    }
    out.push((from, i64::MAX));
    out
}

/// The next range to format, waiting while [`WINDOW`] ranges wait to be cut; None when all are
/// taken or the read stopped. `wait`: false takes one only if it can at once.
fn take_range(shared: &Mutex<Shared>, wake: &Condvar, wait: bool) -> Option<usize> {
    let mut s = shared.lock().ok()?;
    loop {
        if s.stop || s.next >= s.total {
            return None;
        }
        if s.next < s.cut + WINDOW {
            s.next += 1;
            return Some(s.next - 1);
        }
        if !wait {
            return None;
        }
        s = wake.wait(s).ok()?;
    }
}

#[allow(clippy::too_many_arguments)]
fn cut_in_order(
    conn: &Connection,
    table: &Table,
    encoding: Encoding,
    format: Format,
    sql: &str,
    at: usize,
    ranges: &[(i64, i64)],
    shared: &Mutex<Shared>,
    wake: &Condvar,
    emit: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<u64> {
    let context = || format!("read table {}", table.name);
    let mut stmt = RawStmt::prepare(conn, sql, encoding).with_context(context)?;
    let mut groups = Groups::new(format, false);
    let mut chunker = Chunker::new(table, format, &mut groups, 0);
    let mut cut = 0;
    while cut < ranges.len() {
        let ready = {
            let mut s = shared.lock().map_err(|_| anyhow!("poisoned"))?;
            let ready = s.done.remove(&cut);
            if ready.is_some() {
                s.cut += 1;
                wake.notify_all();
            }
            ready
        };
        let mut formatted = match ready {
            Some(f) => f?,
            None => {
                // Format one too while waiting, if the window allows; else wait for it.
                if let Some(i) = take_range(shared, wake, false) {
                    let f = format_range(&mut stmt, table, at, ranges[i], spare(shared));
                    let mut s = shared.lock().map_err(|_| anyhow!("poisoned"))?;
                    s.done.insert(i, f);
                } else {
                    let s = shared.lock().map_err(|_| anyhow!("poisoned"))?;
                    if !s.done.contains_key(&cut) {
                        if s.helper_gone {
                            bail!("internal error: the second reader stopped in a range");
                        }
                        drop(wake.wait(s).map_err(|_| anyhow!("poisoned"))?);
                    }
                }
                continue;
            }
        };
        loop {
            let mut from = 0;
            for &(rowid, end) in &formatted.rows {
                let start = chunker.begin_row();
                chunker.buf.extend_from_slice(&formatted.text[from..end]);
                from = end;
                chunker.end_row(start, Some(rowid), &[], emit)?;
            }
            let more = formatted.more;
            if let Ok(mut s) = shared.lock() {
                s.spare.push(formatted);
            }
            let Some(next) = more else { break };
            let rest = (next, ranges[cut].1);
            formatted = format_range(&mut stmt, table, at, rest, spare(shared))?;
        }
        cut += 1;
    }
    chunker.finish(emit)
}

/// A buffer for a range: one already used, or a new one.
fn spare(shared: &Mutex<Shared>) -> Formatted {
    let used = shared.lock().ok().and_then(|mut s| s.spare.pop());
    used.unwrap_or(Formatted {
        text: Vec::new(),
        rows: Vec::new(),
        more: None,
    })
}

/// Format the rows of one rowid range into `out`.
fn format_range(
    stmt: &mut RawStmt,
    table: &Table,
    at: usize,
    (from, to): (i64, i64),
    mut out: Formatted,
) -> Result<Formatted> {
    let context = || format!("read table {}", table.name);
    stmt.reset();
    stmt.bind_i64(1, from)?;
    stmt.bind_i64(2, to)?;
    out.text.clear();
    out.rows.clear();
    out.more = None;
    while stmt.step().with_context(context)? {
        let rowid = stmt.cell(at).as_i64();
        let Some(rowid) = rowid else {
            bail!("table {}: a row without a rowid", table.name);
        };
        write_row(&mut out.text, stmt, table, Some(rowid));
        out.rows.push((rowid, out.text.len()));
        if out.text.len() >= RANGE_BYTES {
            // Rowids ascend: the rest starts after this one (none after the largest).
            out.more = rowid.checked_add(1).filter(|&next| next <= to);
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
