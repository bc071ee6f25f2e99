//! Recycled chunk buffers. The dumping thread fills ~4 KiB buffers that the object-writer
//! threads consume; handing them back instead of freeing them on another thread avoids the
//! allocator's cross-thread locking, which otherwise costs a third of an incremental snapshot.

use std::sync::Mutex;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// Buffers kept at most (bounded memory).
const KEEP: usize = 256;

/// An empty buffer with at least `capacity` bytes of room.
pub fn take(capacity: usize) -> Vec<u8> {
    let recycled = POOL.lock().map(|mut p| p.pop()).unwrap_or(None);
    match recycled {
        Some(mut buf) => {
            buf.reserve(capacity);
            buf
        }
        None => Vec::with_capacity(capacity),
    }
}

/// Give a buffer back for reuse.
pub fn give(mut buf: Vec<u8>) {
    if buf.capacity() > 1 << 20 {
        return; // a huge row's buffer: let it go
    }
    buf.clear();
    if let Ok(mut pool) = POOL.lock()
        && pool.len() < KEEP
    {
        pool.push(buf);
    }
}
