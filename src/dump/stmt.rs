//! A prepared statement read through SQLite's C API, for the dump's row loop.
//!
//! rusqlite reads every TEXT value through `sqlite3_column_text`, which converts the text of a
//! UTF-16 database to UTF-8 and replaces what UTF-8 cannot carry (unpaired surrogates, U+FFFE,
//! U+FFFF) with U+FFFD. The dump must see the stored code units as they are, so in UTF-16
//! databases text is read with `sqlite3_column_blob` (the bytes as stored, no conversion).

use std::ffi::{CStr, c_char, c_int};

use anyhow::{Result, anyhow};
use rusqlite::Connection;
use rusqlite::ffi;

/// One value of a row, borrowed from the statement until its next step.
#[derive(Clone, Copy, Debug)]
pub enum Cell<'a> {
    Null,
    Integer(i64),
    Real(f64),
    /// UTF-8 text (any bytes: invalid UTF-8 is kept as stored).
    Text(&'a [u8]),
    /// The stored code units of a text value in a UTF-16 database.
    Text16 {
        bytes: &'a [u8],
        big_endian: bool,
    },
    Blob(&'a [u8]),
}

impl Cell<'_> {
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Cell::Integer(i) => Some(i),
            _ => None,
        }
    }
}

/// Which text encoding the database stores (decides how text is read).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
}

impl Encoding {
    pub fn of(conn: &Connection) -> Result<Encoding> {
        let name: String = conn.query_row("PRAGMA encoding", [], |r| r.get(0))?;
        Ok(match name.as_str() {
            "UTF-16le" => Encoding::Utf16Le,
            "UTF-16be" => Encoding::Utf16Be,
            _ => Encoding::Utf8,
        })
    }
}

pub struct RawStmt<'c> {
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
    encoding: Encoding,
    _conn: &'c Connection,
}

impl<'c> RawStmt<'c> {
    pub fn prepare(conn: &'c Connection, sql: &str, encoding: Encoding) -> Result<RawStmt<'c>> {
        // SAFETY: the handle stays valid while `conn` is borrowed; this type only uses it on
        // the thread that owns `conn`.
        let db = unsafe { conn.handle() };
        let mut stmt = std::ptr::null_mut();
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                db,
                sql.as_ptr() as *const c_char,
                sql.len() as c_int,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK || stmt.is_null() {
            return Err(errmsg(db));
        }
        Ok(RawStmt {
            db,
            stmt,
            encoding,
            _conn: conn,
        })
    }

    pub fn bind_i64(&mut self, index: usize, value: i64) -> Result<()> {
        let rc = unsafe { ffi::sqlite3_bind_int64(self.stmt, index as c_int, value) };
        if rc != ffi::SQLITE_OK {
            return Err(errmsg(self.db));
        }
        Ok(())
    }

    pub fn reset(&mut self) {
        unsafe { ffi::sqlite3_reset(self.stmt) };
    }

    /// Advance to the next row; false at the end.
    pub fn step(&mut self) -> Result<bool> {
        match unsafe { ffi::sqlite3_step(self.stmt) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            _ => Err(errmsg(self.db)),
        }
    }

    pub fn column_count(&self) -> usize {
        unsafe { ffi::sqlite3_column_count(self.stmt) as usize }
    }

    /// The value of column `i` of the current row.
    pub fn cell(&self, i: usize) -> Cell<'_> {
        let (s, i) = (self.stmt, i as c_int);
        // SAFETY: `s` is a statement positioned on a row; pointers returned by SQLite stay valid
        // until the next step/reset, which needs `&mut self`, so the borrow covers their use.
        unsafe {
            match ffi::sqlite3_column_type(s, i) {
                ffi::SQLITE_INTEGER => Cell::Integer(ffi::sqlite3_column_int64(s, i)),
                ffi::SQLITE_FLOAT => Cell::Real(ffi::sqlite3_column_double(s, i)),
                ffi::SQLITE_TEXT => match self.encoding {
                    Encoding::Utf8 => Cell::Text(bytes(ffi::sqlite3_column_text(s, i), s, i)),
                    enc => Cell::Text16 {
                        bytes: bytes(ffi::sqlite3_column_blob(s, i).cast(), s, i),
                        big_endian: enc == Encoding::Utf16Be,
                    },
                },
                ffi::SQLITE_BLOB => Cell::Blob(bytes(ffi::sqlite3_column_blob(s, i).cast(), s, i)),
                _ => Cell::Null,
            }
        }
    }
}

/// The `sqlite3_column_bytes` bytes at `p` (called after the pointer, as SQLite requires).
unsafe fn bytes<'a>(p: *const u8, s: *mut ffi::sqlite3_stmt, i: c_int) -> &'a [u8] {
    let n = unsafe { ffi::sqlite3_column_bytes(s, i) } as usize;
    if p.is_null() || n == 0 {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(p, n) }
    }
}

impl Drop for RawStmt<'_> {
    fn drop(&mut self) {
        unsafe { ffi::sqlite3_finalize(self.stmt) };
    }
}

fn errmsg(db: *mut ffi::sqlite3) -> anyhow::Error {
    let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) };
    anyhow!("{}", msg.to_string_lossy())
}
