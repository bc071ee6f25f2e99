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
    if text.contains("failed to spawn thread") || text.contains("Resource temporarily unavailable")
    {
        return format!(
            "cannot start a thread ({text}): a limit on processes or tasks is reached (ulimit \
             -u, systemd TasksMax, a container's pids.max); sqlgit needs about 8 threads: raise \
             the limit"
        );
    }
    if text.contains("memory allocation") || text.contains("out of memory") {
        return format!("out of memory ({text}): raise the memory limit (ulimit -v, MemoryMax)");
    }
    format!("internal error: {text} (please report it)")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_an_error_naming_the_limit() {
        let e = caught::<()>(|| panic!("failed to spawn thread: Os {{ code: 11 }}")).unwrap_err();
        assert!(e.to_string().contains("ulimit -u"), "{e}");
        let e = caught::<()>(|| panic!("boom")).unwrap_err();
        assert!(e.to_string().contains("internal error: boom"), "{e}");
        assert_eq!(caught(|| Ok(3)).unwrap(), 3);
    }
}
