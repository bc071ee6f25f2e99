//! The fast restore: SQL pieces are decoded on a thread of their own ([`super::decode`]) and the
//! resulting batches applied on another thread that owns the connection, binding row values to
//! one prepared `INSERT … VALUES(?,…)` per table instead of parsing every row's SQL. Whatever
//! was not decoded runs through [`execute`], in the same order, so the database is the same.

use std::collections::HashMap;
use std::os::raw::c_int;
use std::sync::mpsc::{Sender, channel};

use anyhow::{Result, anyhow};
use rusqlite::Connection;
use rusqlite::ffi;

use super::check::TableWeights;
use super::columns::{Columns, table_of};
use super::decode::{Batch, Decoder, Op, Val};
use super::exec::{execute, sqlite_error};
use crate::bounded::{self, Receiver};
use crate::dump::stmt::Cell;

/// A batch is sent once it weighs this much (bytes, roughly).
const BATCH: usize = 512 << 10;
/// Batches in flight between the threads: bounds memory (about 2 × QUEUE × BATCH), and lets
/// each thread run on while another is held up: three threads share two cores, and SQLite
/// writes in bursts. Measured restoring 280 MB (median of 5): 2 batches of 128 KiB 2.55 s,
/// 8 of 256 KiB 2.32 s, 8 of 512 KiB 2.26 s (peak RSS 32 → 44 MiB), 16 of 512 KiB 2.27 s.
const QUEUE: usize = 8;
/// And bytes in flight on each queue: QUEUE × BATCH, unless one batch alone (a big row's) is
/// bigger — a run of big rows then queues one, not QUEUE, of them.
const QUEUE_BYTES: usize = QUEUE * BATCH;
/// An emptied buffer that grew past this (a big row's) is let go, not kept for the next batch.
const KEEP: usize = 2 * BATCH;
/// Rows of one table bound to one statement, `INSERT … VALUES(?,…),(?,…),…`, and stepped
/// once: SQLite's cost per step (starting the statement, opening and seeking its cursors) is
/// then paid once per this many rows. Measured inserting 1.6 M rows of eight columns: 1 row a
/// step 0.97 s of CPU, 8 rows 0.67 s, 32 rows 0.65 s.
const ROWS_PER_STEP: usize = 16;

/// Run `feed`'s SQL pieces into `conn`. Three threads: the caller's reads the pieces (git
/// blobs, a file) and copies them into [`Pieces`], a second decodes them into batches, a third
/// owns the connection and applies them (and gives it back, with the number of values it
/// bound per table, and a warning line per column whose bound values its affinity converted).
pub fn run(
    conn: Connection,
    feed: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()>,
) -> Result<(Connection, TableWeights, Vec<String>)> {
    let (tx, rx) = bounded::channel::<Batch>(QUEUE, QUEUE_BYTES);
    let (pieces_tx, pieces_rx) = bounded::channel::<Pieces>(QUEUE, QUEUE_BYTES);
    std::thread::scope(|s| {
        // Emptied buffers come back, so that their memory is reused, not paged in again.
        let (back_tx, back_rx) = channel::<Batch>();
        let (pieces_back_tx, pieces_back_rx) = channel::<Pieces>();
        let writer = s.spawn(move || write_all(conn, rx, back_tx));
        let decoder = s.spawn(move || decode_all(pieces_rx, pieces_back_tx, tx, back_rx));
        let stopped = || anyhow!("the restore's writing thread stopped");
        let mut pieces = Pieces::default();
        let fed = feed(&mut |sql| {
            pieces.push(sql);
            if pieces.data.len() >= BATCH {
                let next = pieces_back_rx.try_recv().unwrap_or_default();
                let bytes = pieces.data.len();
                pieces_tx
                    .send(std::mem::replace(&mut pieces, next), bytes)
                    .map_err(|_| stopped())?;
            }
            Ok(())
        })
        .and_then(|()| {
            let bytes = pieces.data.len();
            pieces_tx.send(pieces, bytes).map_err(|_| stopped())
        });
        drop(pieces_tx);
        // A decoder that stopped early must not pass for the end of the SQL.
        decoder
            .join()
            .map_err(|p| crate::panics::joined("the restore's decoding thread", p))?;
        let written = writer
            .join()
            .map_err(|p| crate::panics::joined("the restore's writing thread", p))?;
        match (fed, written) {
            (_, Err(e)) | (Err(e), Ok(_)) => Err(e),
            (Ok(()), Ok(done)) => Ok(done),
        }
    })
}

/// SQL pieces, each kept whole (a piece is what `execute` would have run in one call).
#[derive(Default)]
struct Pieces {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Pieces {
    fn push(&mut self, piece: &[u8]) {
        self.data.extend_from_slice(piece);
        self.ends.push(self.data.len());
    }

    fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }
}

/// The decoding thread: pieces in, batches out, until either side stops.
fn decode_all(
    pieces: Receiver<Pieces>,
    pieces_back: Sender<Pieces>,
    tx: bounded::Sender<Batch>,
    back: std::sync::mpsc::Receiver<Batch>,
) {
    let mut decoder = Decoder::default();
    let mut batch = Batch::default();
    while let Ok(mut p) = pieces.recv() {
        let mut start = 0;
        for &end in &p.ends {
            decoder.decode(&p.data[start..end], &mut batch);
            start = end;
            let weight = batch.weight();
            if weight >= BATCH {
                let next = back.try_recv().unwrap_or_default();
                if tx
                    .send(std::mem::replace(&mut batch, next), weight)
                    .is_err()
                {
                    return;
                }
            }
        }
        if p.data.capacity() <= KEEP {
            p.clear();
            let _ = pieces_back.send(p);
        }
    }
    if !batch.is_empty() {
        let weight = batch.weight();
        let _ = tx.send(batch, weight);
    }
}

fn write_all(
    conn: Connection,
    rx: Receiver<Batch>,
    back: Sender<Batch>,
) -> Result<(Connection, TableWeights, Vec<String>)> {
    let (inserted, converted) = {
        let mut writer = Writer::new(&conn);
        while let Ok(mut batch) = rx.recv() {
            writer.apply(&batch)?;
            if batch.bytes.capacity() <= KEEP {
                batch.clear();
                let _ = back.send(batch);
            }
        }
        (writer.inserted_per_table(), writer.converted_lines())
    };
    Ok((conn, inserted, converted))
}

/// A prepared statement, finalized when dropped.
struct Stmt(*mut ffi::sqlite3_stmt);

impl Drop for Stmt {
    fn drop(&mut self) {
        // SAFETY: a statement prepared by us and finalized only here.
        unsafe { ffi::sqlite3_finalize(self.0) };
    }
}

/// Applies batches to a connection.
struct Writer<'c> {
    conn: &'c Connection,
    db: *mut ffi::sqlite3,
    sql: HashMap<u32, Vec<u8>>,
    stmts: HashMap<u32, Stmt>,
    /// Per statement id: the statement of [`ROWS_PER_STEP`] rows and how many rows it takes,
    /// or `None` when its parameters would pass SQLite's limit.
    multi: HashMap<u32, Option<(Stmt, usize)>>,
    utf16: Option<bool>,
    /// Values bound per statement id.
    inserted: HashMap<u32, u64>,
    /// Per statement id: its parameters' columns (see [`Columns`]).
    columns: HashMap<u32, Columns>,
}

impl<'c> Writer<'c> {
    fn new(conn: &'c Connection) -> Self {
        Writer {
            conn,
            // SAFETY: the handle is used only while `conn` lives, on this thread.
            db: unsafe { conn.handle() },
            sql: HashMap::new(),
            stmts: HashMap::new(),
            multi: HashMap::new(),
            utf16: None,
            inserted: HashMap::new(),
            columns: HashMap::new(),
        }
    }

    /// A warning line per column whose values its affinity converted, by table.
    fn converted_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = (self.columns.values())
            .flat_map(|c| c.converted.lines(&c.table, &c.names, &c.affinities))
            .collect();
        lines.sort();
        lines
    }

    /// Note the values of `vals` (rows of statement `id`) that their column's affinity
    /// converts: a branch per value.
    fn note(&self, id: u32, vals: &[Val], bytes: &[u8]) {
        let Some(c) = self.columns.get(&id).filter(|c| !c.affinities.is_empty()) else {
            return;
        };
        let n = c.affinities.len();
        for (i, v) in vals.iter().enumerate() {
            let cell = match *v {
                Val::Null | Val::Blob(..) => continue,
                Val::Int(x) => Cell::Integer(x),
                Val::Real(x) => Cell::Real(x),
                Val::Text(s, e) => Cell::Text(&bytes[s..e]),
            };
            if c.affinities[i % n].converts_when_bound(&cell) {
                c.converted.note(i % n, &cell);
            }
        }
    }

    /// Values bound per table, by the name the row statements give it.
    fn inserted_per_table(&self) -> TableWeights {
        let mut per_table = TableWeights::new();
        for (id, n) in &self.inserted {
            if let Some(table) = self.sql.get(id).and_then(|sql| table_of(sql)) {
                *per_table.entry(table).or_default() += n;
            }
        }
        per_table
    }

    fn apply(&mut self, batch: &Batch) -> Result<()> {
        for (id, sql) in &batch.stmts {
            self.sql.insert(*id, sql.clone());
        }
        let ops = &batch.ops[..];
        let mut i = 0;
        while i < ops.len() {
            match ops[i] {
                Op::Sql(start, end) => execute(self.conn, &batch.bytes[start..end])?,
                Op::Row {
                    sql: Some(range), ..
                } if self.utf16()? => execute(self.conn, batch.text(range))?,
                Op::Row { id, first, .. } => {
                    let run = ops[i..]
                        .iter()
                        .take(ROWS_PER_STEP)
                        .take_while(|op| matches!(op, Op::Row { id: same, .. } if *same == id))
                        .count();
                    // A full run goes in one step (a UTF-16 database binds row by row: some of
                    // its rows must run as SQL, above).
                    if run == ROWS_PER_STEP
                        && !self.utf16()?
                        && let Some(rows) = self.rows(id, &ops[i..i + run], batch)?
                    {
                        i += rows;
                        continue;
                    }
                    self.row(id, &batch.vals[first..], &batch.bytes)?;
                }
            }
            i += 1;
        }
        Ok(())
    }

    /// Whether the database is UTF-16 (known once it has a table, which rows need).
    fn utf16(&mut self) -> Result<bool> {
        if let Some(u) = self.utf16 {
            return Ok(u);
        }
        let enc: String = self.conn.query_row("PRAGMA encoding", [], |r| r.get(0))?;
        let u = enc != "UTF-8";
        self.utf16 = Some(u);
        Ok(u)
    }

    fn stmt(&mut self, id: u32) -> Result<*mut ffi::sqlite3_stmt> {
        if let Some(s) = self.stmts.get(&id) {
            return Ok(s.0);
        }
        let sql = self
            .sql
            .get(&id)
            .ok_or_else(|| anyhow!("row statement {id} unknown"))?;
        let stmt = self.prepare(sql)?;
        let raw = stmt.0;
        let columns = Columns::of(self.conn, sql, unsafe {
            // SAFETY: a live statement.
            ffi::sqlite3_bind_parameter_count(raw) as usize
        });
        self.columns.insert(id, columns);
        self.stmts.insert(id, stmt);
        Ok(raw)
    }

    /// The statement inserting [`ROWS_PER_STEP`] rows for statement `id`, and its row count;
    /// `None` when so many parameters would pass SQLite's limit.
    fn multi_stmt(&mut self, id: u32) -> Result<Option<(*mut ffi::sqlite3_stmt, usize)>> {
        if let Some(m) = self.multi.get(&id) {
            return Ok(m.as_ref().map(|(s, n)| (s.0, *n)));
        }
        let one = self.stmt(id)?;
        // SAFETY: a live statement and connection.
        let (values, limit) = unsafe {
            (
                ffi::sqlite3_bind_parameter_count(one) as usize,
                ffi::sqlite3_limit(self.db, ffi::SQLITE_LIMIT_VARIABLE_NUMBER, -1) as usize,
            )
        };
        let sql = &self.sql[&id];
        // `INSERT INTO "t"(…) VALUES(?,…,?)`: the row's part is the last 2 × values + 1 bytes.
        let row_part = sql.len().checked_sub(2 * values + 1).map(|at| &sql[at..]);
        let multi = match row_part {
            Some(part) if values > 0 && values * ROWS_PER_STEP <= limit && part[0] == b'(' => {
                let mut text = sql.clone();
                for _ in 1..ROWS_PER_STEP {
                    text.push(b',');
                    text.extend_from_slice(part);
                }
                Some((self.prepare(&text)?, values))
            }
            _ => None,
        };
        let got = multi.as_ref().map(|(s, n)| (s.0, *n));
        self.multi.insert(id, multi);
        Ok(got)
    }

    fn prepare(&self, sql: &[u8]) -> Result<Stmt> {
        let mut stmt = std::ptr::null_mut();
        // SAFETY: pointer and length describe `sql`; `stmt` receives the statement.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                self.db,
                sql.as_ptr().cast(),
                sql.len() as c_int,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK || stmt.is_null() {
            return Err(sqlite_error(self.db, sql));
        }
        Ok(Stmt(stmt))
    }

    /// Insert the rows of `ops` (all of statement `id`, [`ROWS_PER_STEP`] of them) in one step;
    /// `None` when the statement cannot take them at once (the caller inserts row by row).
    fn rows(&mut self, id: u32, ops: &[Op], batch: &Batch) -> Result<Option<usize>> {
        let Some((stmt, values)) = self.multi_stmt(id)? else {
            return Ok(None);
        };
        for (r, op) in ops.iter().enumerate() {
            let Op::Row { first, .. } = *op else {
                unreachable!("a run of rows")
            };
            // SAFETY: `stmt` is live; the batch outlives the step below.
            let bound = unsafe {
                bind(
                    stmt,
                    r * values,
                    &batch.vals[first..first + values],
                    &batch.bytes,
                )
            };
            if !bound {
                return Err(self.row_error(id));
            }
            self.note(id, &batch.vals[first..first + values], &batch.bytes);
        }
        // SAFETY: a live statement, every parameter bound.
        unsafe { self.step(stmt, id)? };
        *self.inserted.entry(id).or_default() += (ops.len() * values) as u64;
        Ok(Some(ops.len()))
    }

    /// Step a bound statement once and reset it.
    ///
    /// # Safety
    /// `stmt` is a live statement of `self.db` whose bound bytes are still alive.
    unsafe fn step(&self, stmt: *mut ffi::sqlite3_stmt, id: u32) -> Result<()> {
        unsafe {
            let rc = ffi::sqlite3_step(stmt);
            if rc != ffi::SQLITE_DONE {
                let e = self.row_error(id);
                ffi::sqlite3_reset(stmt);
                return Err(e);
            }
            ffi::sqlite3_reset(stmt);
        }
        Ok(())
    }

    /// Insert one row: bind `vals` (as many as the statement has parameters) and step.
    fn row(&mut self, id: u32, vals: &[Val], bytes: &[u8]) -> Result<()> {
        let stmt = self.stmt(id)?;
        // SAFETY: `stmt` is a live statement of `self.db`; bound bytes (SQLITE_STATIC) stay
        // alive and unchanged until the statement is reset in `step`.
        let n = unsafe {
            let n = ffi::sqlite3_bind_parameter_count(stmt) as usize;
            if !bind(stmt, 0, &vals[..n], bytes) {
                return Err(self.row_error(id));
            }
            self.note(id, &vals[..n], bytes);
            self.step(stmt, id)?;
            n
        };
        *self.inserted.entry(id).or_default() += n as u64;
        Ok(())
    }

    fn row_error(&self, id: u32) -> anyhow::Error {
        let sql = self.sql.get(&id).map(Vec::as_slice).unwrap_or_default();
        sqlite_error(self.db, sql)
    }
}

/// Bind `vals` to the parameters of `stmt` from number `offset + 1` on; false when SQLite
/// refuses one.
///
/// # Safety
/// `stmt` is a live statement; `bytes` (bound as SQLITE_STATIC) stays alive and unchanged
/// until the statement is reset.
unsafe fn bind(stmt: *mut ffi::sqlite3_stmt, offset: usize, vals: &[Val], bytes: &[u8]) -> bool {
    for (i, v) in vals.iter().enumerate() {
        let i = (offset + i) as c_int + 1;
        // SAFETY: the caller's.
        let rc = unsafe {
            match *v {
                Val::Null => ffi::sqlite3_bind_null(stmt, i),
                Val::Int(x) => ffi::sqlite3_bind_int64(stmt, i, x),
                Val::Real(x) => ffi::sqlite3_bind_double(stmt, i, x),
                Val::Text(s, e) => ffi::sqlite3_bind_text64(
                    stmt,
                    i,
                    bytes[s..e].as_ptr().cast(),
                    (e - s) as u64,
                    ffi::SQLITE_STATIC(),
                    ffi::SQLITE_UTF8 as u8,
                ),
                Val::Blob(s, e) => ffi::sqlite3_bind_blob64(
                    stmt,
                    i,
                    bytes[s..e].as_ptr().cast(),
                    (e - s) as u64,
                    ffi::SQLITE_STATIC(),
                ),
            }
        };
        if rc != ffi::SQLITE_OK {
            return false;
        }
    }
    true
}
