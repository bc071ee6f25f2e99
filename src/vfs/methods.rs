//! The VFS's file methods other than open, close, read and write: each writes what is
//! gathered or drops the read-ahead bytes where the module's rules say it must (before a lock
//! is released, a sync, a size, a truncation; at every lock change), then calls the default
//! VFS's own method.

use std::ffi::{c_int, c_void};
use std::ptr::null_mut;

use rusqlite::ffi;

use super::{State, state};

/// Write what is gathered, then `then` (an error of the write wins).
unsafe fn flushed(file: *mut ffi::sqlite3_file, then: impl FnOnce(&mut State) -> c_int) -> c_int {
    unsafe {
        let st = state(file);
        let rc = st.flush();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        then(st)
    }
}

pub(super) unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    unsafe {
        flushed(file, |st| {
            st.drop_window();
            (st.methods().xTruncate.expect("xTruncate"))(st.inner, size)
        })
    }
}

pub(super) unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    unsafe {
        flushed(file, |st| {
            (st.methods().xSync.expect("xSync"))(st.inner, flags)
        })
    }
}

pub(super) unsafe extern "C" fn x_file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    unsafe {
        flushed(file, |st| {
            (st.methods().xFileSize.expect("xFileSize"))(st.inner, size)
        })
    }
}

pub(super) unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    unsafe {
        let st = state(file);
        st.drop_window();
        (st.methods().xLock.expect("xLock"))(st.inner, level)
    }
}

pub(super) unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    unsafe {
        flushed(file, |st| {
            st.drop_window();
            (st.methods().xUnlock.expect("xUnlock"))(st.inner, level)
        })
    }
}

pub(super) unsafe extern "C" fn x_check_reserved_lock(
    file: *mut ffi::sqlite3_file,
    out: *mut c_int,
) -> c_int {
    unsafe {
        let st = state(file);
        (st.methods().xCheckReservedLock.expect("xCheckReservedLock"))(st.inner, out)
    }
}

pub(super) unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    unsafe {
        let st = state(file);
        // The pager's size hint comes before every write of dirty pages: it must not empty the
        // gathered writes each time (it only grows the file, when a chunk size is set).
        if op != ffi::SQLITE_FCNTL_SIZE_HINT {
            let rc = st.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        (st.methods().xFileControl.expect("xFileControl"))(st.inner, op, arg)
    }
}

pub(super) unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let st = state(file);
        (st.methods().xSectorSize.expect("xSectorSize"))(st.inner)
    }
}

pub(super) unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let st = state(file);
        (st.methods()
            .xDeviceCharacteristics
            .expect("xDeviceCharacteristics"))(st.inner)
    }
}

pub(super) unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    unsafe {
        flushed(file, |st| match st.methods().xShmMap {
            Some(map) if st.methods().iVersion >= 2 => map(st.inner, page, size, extend, out),
            _ => ffi::SQLITE_IOERR,
        })
    }
}

pub(super) unsafe extern "C" fn x_shm_lock(
    file: *mut ffi::sqlite3_file,
    at: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    unsafe {
        flushed(file, |st| match st.methods().xShmLock {
            // In WAL mode a read transaction starts and ends with these locks, not xLock.
            Some(lock) if st.methods().iVersion >= 2 => {
                st.drop_window();
                lock(st.inner, at, n, flags)
            }
            _ => ffi::SQLITE_IOERR,
        })
    }
}

pub(super) unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    unsafe {
        let st = state(file);
        if let Some(barrier) = st
            .methods()
            .xShmBarrier
            .filter(|_| st.methods().iVersion >= 2)
        {
            barrier(st.inner);
        }
    }
}

pub(super) unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    unsafe {
        flushed(file, |st| match st.methods().xShmUnmap {
            Some(unmap) if st.methods().iVersion >= 2 => unmap(st.inner, delete),
            _ => ffi::SQLITE_OK,
        })
    }
}

pub(super) unsafe extern "C" fn x_fetch(
    file: *mut ffi::sqlite3_file,
    at: i64,
    amt: c_int,
    out: *mut *mut c_void,
) -> c_int {
    unsafe {
        *out = null_mut();
        flushed(file, |st| match st.methods().xFetch {
            Some(fetch) if st.methods().iVersion >= 3 => fetch(st.inner, at, amt, out),
            _ => ffi::SQLITE_OK,
        })
    }
}

pub(super) unsafe extern "C" fn x_unfetch(
    file: *mut ffi::sqlite3_file,
    at: i64,
    p: *mut c_void,
) -> c_int {
    unsafe {
        let st = state(file);
        match st.methods().xUnfetch {
            Some(unfetch) if st.methods().iVersion >= 3 => unfetch(st.inner, at, p),
            _ => ffi::SQLITE_OK,
        }
    }
}
