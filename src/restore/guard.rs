//! What a restore's SQL may not do to the database it builds, watched by an SQLite authorizer
//! (called as each statement is prepared, which in a restore is just before it runs): set
//! another page size or auto_vacuum than the build was given (`restore --into` keeps the
//! target's, and its reserved bytes per page: converting afterwards takes a VACUUM, which
//! renumbers hidden rowids), how its last transaction ended (a complete dump ends with
//! COMMIT), and the encoding it asked for.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::sync::Mutex;

use anyhow::{Context, Result};
use rusqlite::{Connection, ffi};

/// A page size, auto_vacuum and reserved bytes per page (file header byte 20, which the
/// checksum VFS and other per-page extensions use) the built database keeps, whatever its SQL
/// says (SQL cannot set the reserved bytes).
#[derive(Clone, Copy, Debug)]
pub struct Pinned {
    pub page_size: i64,
    pub auto_vacuum: i64,
    pub reserve: u8,
}

/// What the SQL did that the build checks afterwards.
#[derive(Debug, Default)]
pub struct Seen {
    /// `PRAGMA page_size=…` or `auto_vacuum=…` the SQL asked for that differ from the pinned
    /// layout and were not applied (`page_size=1024`).
    pub ignored: Vec<String>,
    /// The layout pragmas (`page_size`, `auto_vacuum`) the SQL set, to any value (watched
    /// only with a pinned layout).
    pub layout_set: Vec<&'static str>,
    /// The last `BEGIN`, `COMMIT` (also `END`) or `ROLLBACK`, as SQLite names it.
    pub last_transaction: Option<String>,
    /// The first `PRAGMA encoding=…` the SQL set, as written (`'UTF-16be'`).
    pub encoding: Option<String>,
}

struct State {
    pinned: Option<Pinned>,
    seen: Seen,
}

/// The authorizer installed on a connection; [`Guard::finish`] removes it.
pub struct Guard {
    state: Box<Mutex<State>>,
}

impl Guard {
    /// Pin the layout (if given: set it now, before any table) and watch `conn`.
    pub fn install(conn: &Connection, pinned: Option<Pinned>) -> Result<Guard> {
        if let Some(p) = pinned {
            conn.execute_batch(&format!(
                "PRAGMA page_size={};\nPRAGMA auto_vacuum={};\n",
                p.page_size, p.auto_vacuum
            ))
            .context("set the target's page size and auto_vacuum")?;
            set_reserve(conn, p.reserve)?;
        }
        let state = Box::new(Mutex::new(State {
            pinned,
            seen: Seen::default(),
        }));
        // SAFETY: the state outlives the authorizer: `finish` removes it, and a connection
        // dropped before (a failed build) calls it no more.
        unsafe {
            ffi::sqlite3_set_authorizer(
                conn.handle(),
                Some(authorize),
                (&raw const *state).cast_mut().cast(),
            )
        };
        Ok(Guard { state })
    }

    /// Remove the authorizer from `conn` (the connection it was installed on); what it saw.
    pub fn finish(self, conn: &Connection) -> Seen {
        // SAFETY: a live connection; no callback runs after this returns.
        unsafe { ffi::sqlite3_set_authorizer(conn.handle(), None, std::ptr::null_mut()) };
        let state = self.state.into_inner().unwrap_or_else(|e| e.into_inner());
        state.seen
    }
}

/// Set the reserved bytes per page of `conn`'s still empty database.
fn set_reserve(conn: &Connection, reserve: u8) -> Result<()> {
    let (rc, _) = reserve_control(conn, c_int::from(reserve));
    if rc != ffi::SQLITE_OK {
        anyhow::bail!("set the target's reserved bytes per page: error {rc}");
    }
    Ok(())
}

/// The reserved bytes per page of `conn`'s main database (its header read).
pub fn reserve_of(conn: &Connection) -> Result<u8> {
    let (rc, n) = reserve_control(conn, -1); // -1: read, not set
    match u8::try_from(n) {
        Ok(n) if rc == ffi::SQLITE_OK => Ok(n),
        _ => anyhow::bail!("read the reserved bytes per page: error {rc}"),
    }
}

/// SQLITE_FCNTL_RESERVE_BYTES on `conn`'s main database with `n` (a negative `n` only reads):
/// SQLite's return code and the value it leaves in `n`.
fn reserve_control(conn: &Connection, mut n: c_int) -> (c_int, c_int) {
    // SAFETY: SQLITE_FCNTL_RESERVE_BYTES reads and writes one int.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_RESERVE_BYTES,
            (&raw mut n).cast(),
        )
    };
    (rc, n)
}

unsafe extern "C" fn authorize(
    ctx: *mut c_void,
    action: c_int,
    arg1: *const c_char,
    arg2: *const c_char,
    _db: *const c_char,
    _trigger: *const c_char,
) -> c_int {
    let text = |p: *const c_char| {
        // SAFETY: SQLite passes NUL-terminated strings (or NULL) valid during the call.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    };
    // SAFETY: `ctx` is the `Guard`'s state, alive while the authorizer is installed.
    let state = unsafe { &*(ctx as *const Mutex<State>) };
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    match action {
        ffi::SQLITE_TRANSACTION => state.seen.last_transaction = text(arg1),
        ffi::SQLITE_PRAGMA => {
            let (name, value) = (text(arg1), text(arg2));
            if let (Some(name), Some(value)) = (&name, &value)
                && name.eq_ignore_ascii_case("encoding")
                && state.seen.encoding.is_none()
            {
                state.seen.encoding = Some(value.clone());
            }
            let (Some(pinned), Some(name), Some(value)) = (state.pinned, name, value) else {
                return ffi::SQLITE_OK;
            };
            let (name, want) = match name.to_ascii_lowercase().as_str() {
                "page_size" => ("page_size", pinned.page_size),
                "auto_vacuum" => ("auto_vacuum", pinned.auto_vacuum),
                _ => return ffi::SQLITE_OK,
            };
            if !state.seen.layout_set.contains(&name) {
                state.seen.layout_set.push(name);
            }
            let asked = format!("{name}={value}");
            if setting(&value) != Some(want) && !state.seen.ignored.contains(&asked) {
                state.seen.ignored.push(asked);
            }
            // A PRAGMA the authorizer ignores is a no-op, not an error.
            return ffi::SQLITE_IGNORE;
        }
        _ => {}
    }
    ffi::SQLITE_OK
}

/// A page_size or auto_vacuum value as a number (`incremental` is 2).
fn setting(value: &str) -> Option<i64> {
    let value = value.trim().trim_matches(['\'', '"']);
    match value.to_ascii_lowercase().as_str() {
        "none" => Some(0),
        "full" => Some(1),
        "incremental" => Some(2),
        v => v.parse().ok(),
    }
}
