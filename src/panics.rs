//! A panic is a failure like any other: one line on stderr, exit 1, and — inside a snapshot run —
//! the failure hook fired and the state and metrics recording it. The likeliest cause in the
//! field is not a bug but a limit: a thread that cannot be started (`ulimit -u`, systemd's
//! `TasksMax`, a container's `pids.max`) or memory that cannot be had, and Rust reports both by
//! panicking. The default report (a multi-line message, the run left "running", no hook) is
//! replaced: the hook here keeps the message for [`caught`], which turns the unwound panic into
//! an error that says what to do about the limit.

use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::sync::Mutex;

use anyhow::{Result, anyhow};

/// The message of the latest panic on any thread (a thread's panic is usually joined into
/// another's, whose message then says less).
static LAST: Mutex<Option<String>> = Mutex::new(None);

/// Keep panics' messages instead of printing them (`RUST_BACKTRACE` set: Rust's report too).
pub fn install() {
    let rust_report = std::panic::take_hook();
    let backtrace = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
    std::panic::set_hook(Box::new(move |info: &PanicHookInfo| {
        if backtrace {
            rust_report(info);
        }
        let text = message(info);
        if let Ok(mut last) = LAST.lock() {
            // The first cause wins: the joins that follow it panic about the join.
            if last.is_none() {
                *last = Some(text);
            }
        }
    }));
}

fn message(info: &PanicHookInfo) -> String {
    explained(&payload_text(info.payload()))
}

/// What a panic said (`panic!` gives a `&str` or a `String`).
fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".into())
}

/// A panic's message with the fix for the limits that cause them in the field.
fn explained(text: &str) -> String {
    explained_under(text, crate::cause::address_space_limit())
}

/// [`explained`] under an address-space limit of `memory_limit` bytes (`ulimit -v`): a thread
/// whose stack cannot be mapped fails with the same EAGAIN as one over the process limit.
fn explained_under(text: &str, memory_limit: Option<u64>) -> String {
    let no_memory = text.contains("Cannot allocate memory") || text.contains("os error 12");
    let spawn = text.contains("failed to spawn thread")
        || text.contains("Resource temporarily unavailable")
        || text.contains("os error 11");
    if spawn && (no_memory || memory_limit.is_some()) {
        let limit = memory_limit.map_or(String::new(), |b| format!(" is {} KiB", b >> 10));
        return format!(
            "cannot start a thread ({text}): there is no memory for its stack under the memory \
             limit (ulimit -v{limit}, systemd LimitAS or MemoryMax): raise it; sqlgit needs \
             about 8 threads"
        );
    }
    if spawn {
        return format!(
            "cannot start a thread ({text}): a limit on processes or tasks is reached (ulimit \
             -u, systemd TasksMax, a container's pids.max); sqlgit needs about 8 threads: raise \
             the limit"
        );
    }
    if text.contains("memory allocation") || text.contains("out of memory") {
        return format!(
            "out of memory ({text}): raise the memory limit (ulimit -v, systemd LimitAS or \
             MemoryMax)"
        );
    }
    format!("internal error: {text} (please report it)")
}

/// The error for a thread that panicked, found when joining it: the panic's message (a thread
/// that could not be started, memory that could not be had), else `what` panicked.
pub fn joined(what: &str, payload: Box<dyn std::any::Any + Send>) -> anyhow::Error {
    let kept = LAST.lock().ok().and_then(|mut last| last.take());
    let text = kept.unwrap_or_else(|| match payload_text(payload.as_ref()) {
        t if t == "unknown cause" => format!("internal error: {what} panicked (please report it)"),
        t => explained(&t),
    });
    anyhow!("{text}")
}

/// Run `f`; a panic in it (or in a thread it joined) becomes an error with the panic's message.
pub fn caught<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let kept = LAST.lock().ok().and_then(|mut last| last.take());
            let text = kept.unwrap_or_else(|| explained(&payload_text(payload.as_ref())));
            Err(anyhow!("{text}"))
        }
    }
}

/// The system allocator, which writes one `sqlgit:` line to stderr when an allocation fails,
/// before Rust aborts the process ("memory allocation of N bytes failed", exit 134). Nothing
/// more can be done there: no memory to record the failure with, and an allocator must not
/// unwind. The run is left "running" in the state file, which `sqlgit status` reports as a run
/// that did not finish.
pub struct LoudAlloc;

// SAFETY: every call is passed to the system allocator unchanged.
unsafe impl std::alloc::GlobalAlloc for LoudAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { std::alloc::System.alloc(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { std::alloc::System.alloc_zeroed(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { std::alloc::System.realloc(ptr, layout, size) };
        if p.is_null() {
            out_of_memory(size);
        }
        p
    }
}

/// Say that `size` bytes could not be had, without allocating (a fixed buffer, write(2)).
fn out_of_memory(size: usize) {
    let mut line = [0u8; 256];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        let n = bytes.len().min(line.len() - len);
        line[len..len + n].copy_from_slice(&bytes[..n]);
        len += n;
    };
    put(b"sqlgit: out of memory: ");
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = size;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    put(&digits[at..]);
    put(
        b" bytes cannot be had: raise the memory limit (ulimit -v, systemd LimitAS or MemoryMax)\n",
    );
    // SAFETY: writes `len` initialized bytes of a live buffer to stderr.
    unsafe { libc::write(2, line.as_ptr().cast(), len) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_an_error_naming_the_limit() {
        let e = caught::<()>(|| panic!("failed to spawn thread: Os {{ code: 11 }}")).unwrap_err();
        assert!(e.to_string().contains("ulimit -u"), "{e}");
        let e = caught::<()>(|| panic!("boom")).unwrap_err();
        assert!(e.to_string().contains("internal error: boom"), "{e}");
        let spawn = "failed to spawn thread: Os { code: 11, kind: WouldBlock }";
        let under_ulimit_v = explained_under(spawn, Some(20 << 20));
        assert!(
            under_ulimit_v.contains("ulimit -v is 20480 KiB"),
            "{under_ulimit_v}"
        );
        assert!(!under_ulimit_v.contains("ulimit -u"), "{under_ulimit_v}");
        assert!(explained_under(spawn, None).contains("ulimit -u"));
        let enomem = "failed to spawn thread: Os { code: 12, message: \"Cannot allocate memory\" }";
        assert!(explained_under(enomem, None).contains("ulimit -v"));
        assert_eq!(caught(|| Ok(3)).unwrap(), 3);
    }
}
