//! Recycled chunk buffers. The dumping thread fills ~4 KiB buffers that the object-writer
//! threads consume; handing them back instead of freeing them on another thread avoids the
//! allocator's cross-thread locking, which otherwise costs a third of an incremental snapshot.
//!
//! And [`trim_now_and_then`]: the allocator's free memory handed back to the system a few times
//! a second while a dump runs.

use std::cell::RefCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The buffers kept, and the sum of their capacities.
static POOL: Mutex<(Vec<Vec<u8>>, usize)> = Mutex::new((Vec::new(), 0));
/// Buffers kept at most, and bytes (bounded memory: a run of big rows must not leave the pool
/// holding 256 buffers of their size).
const KEEP: usize = 256;
const KEEP_BYTES: usize = 4 << 20;
/// A buffer bigger than this (a big row's) is let go: chunks are ~4 KiB.
const KEEP_CAPACITY: usize = 64 << 10;
/// Buffers a thread takes from the pool at once: one lock per batch, not per chunk (the lock
/// was contended between the dumping thread and the compressors, and every contended unlock
/// is a system call that wakes a thread).
const BATCH: usize = 32;

thread_local! {
    /// Buffers this thread took from the pool and has not used yet.
    static TAKEN: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with at least `capacity` bytes of room.
pub fn take(capacity: usize) -> Vec<u8> {
    trim_now_and_then();
    let recycled = TAKEN.with_borrow_mut(|taken| {
        if taken.is_empty()
            && let Ok(mut pool) = POOL.lock()
        {
            let (bufs, bytes) = &mut *pool;
            let from = bufs.len().saturating_sub(BATCH);
            for buf in bufs.drain(from..) {
                *bytes -= buf.capacity();
                taken.push(buf);
            }
        }
        taken.pop()
    });
    match recycled {
        Some(mut buf) => {
            buf.reserve(capacity);
            buf
        }
        None => Vec::with_capacity(capacity),
    }
}

/// Give a buffer back for reuse.
pub fn give(buf: Vec<u8>) {
    give_all([buf]);
}

/// Give buffers back for reuse, under one lock.
pub fn give_all(bufs: impl IntoIterator<Item = Vec<u8>>) {
    let kept: Vec<Vec<u8>> = bufs
        .into_iter()
        // A big row's buffer: let it go.
        .filter(|buf| buf.capacity() <= KEEP_CAPACITY)
        .map(|mut buf| {
            buf.clear();
            buf
        })
        .collect();
    if kept.is_empty() {
        return;
    }
    if let Ok(mut pool) = POOL.lock() {
        let (bufs, bytes) = &mut *pool;
        for buf in kept {
            if bufs.len() >= KEEP || *bytes + buf.capacity() > KEEP_BYTES {
                break;
            }
            *bytes += buf.capacity();
            bufs.push(buf);
        }
    }
}

/// Whether [`trim_now_and_then`] trims: set by the program that tuned the allocator for it
/// ([`enable_trim`]). In a process that is not this tool (the tests call the library), other
/// threads share the heap, and a trim takes the allocator's locks from under them.
static TRIM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Let [`trim_now_and_then`] trim (the sqlgit program, with its one malloc arena).
pub fn enable_trim() {
    TRIM.store(true, Ordering::Relaxed);
}

/// Time between two trims of the allocator's free memory.
const TRIM_EVERY_MS: u64 = 100;
/// Free bytes in the allocator's heap below which a trim is not worth it.
const TRIM_FREE: usize = 1 << 20;

/// Hand the allocator's free memory back to the system when the last time is
/// [`TRIM_EVERY_MS`] ago; cheap to call often (per chunk, per few pages read).
///
/// glibc keeps every page of its heap that was ever used resident, free or not. With the
/// dumping thread, the object writer and two compressors allocating in one arena, free chunks
/// are scattered over the whole heap: a first snapshot of a 2.26 GB database held 20 MiB of
/// heap for about 10 MiB in use, and the page maps of its last table came on top of that.
/// `malloc_trim` returns the free pages (not just the heap's top): the resident size follows
/// what is in use (that first snapshot peaked 8–12 MiB lower, no slower). A heap with little
/// free memory is left alone.
pub fn trim_now_and_then() {
    if !TRIM.load(Ordering::Relaxed) {
        return;
    }
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    static LAST_MS: AtomicU64 = AtomicU64::new(0);
    let now = START.get_or_init(Instant::now).elapsed().as_millis() as u64;
    let last = LAST_MS.load(Ordering::Relaxed);
    if now < last + TRIM_EVERY_MS {
        return;
    }
    if LAST_MS
        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        trim();
    }
}

/// See [`trim_now_and_then`]: only when the heap holds [`TRIM_FREE`] bytes free or more.
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallinfo2 reads the allocator's statistics and malloc_trim releases its free
    // memory; both are thread-safe.
    unsafe {
        if libc::mallinfo2().fordblks >= TRIM_FREE {
            libc::malloc_trim(0);
        }
    }
}
