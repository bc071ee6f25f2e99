//! `--quiet`: nothing on stdout or stderr on success (cron mails any output); errors still go
//! to stderr. Output asked for by a flag (`--json`) is printed all the same ([`answer!`]).

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);
/// The OS error of the first failed write to stdout (0: none; -1: one without an OS code).
static WRITE_ERROR: AtomicI32 = AtomicI32::new(0);

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Note a failed write to stdout; a closed stdout (`| head`) is not an error.
pub fn write_failed(e: &std::io::Error) {
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        let code = e.raw_os_error().unwrap_or(-1);
        let _ = WRITE_ERROR.compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// How a failed write to stdout starts its error line: the command's work is done (a snapshot
/// committed, a file restored), only what it printed is lost, so running it again is no fix.
pub const STDOUT_LOST: &str = "the command finished, but its output could not be written to stdout";

/// Flush stdout; an error if it, or a line [`say!`] wrote before, could not be written (a full
/// disk, `> /dev/full`): what a command printed must not be lost with exit 0.
pub fn check_stdout() -> anyhow::Result<()> {
    use std::io::Write as _;
    if let Err(e) = std::io::stdout().flush() {
        write_failed(&e);
    }
    match WRITE_ERROR.load(Ordering::Relaxed) {
        0 => Ok(()),
        -1 => Err(anyhow::anyhow!("{STDOUT_LOST}: failed")),
        code => {
            Err(anyhow::Error::from(std::io::Error::from_raw_os_error(code)).context(STDOUT_LOST))
        }
    }
}

/// `println!` unless `--quiet`; a closed stdout (`| head`) is not an error worth a panic, any
/// other failed write fails the command at its end ([`check_stdout`]).
macro_rules! say {
    ($($arg:tt)*) => {
        if !$crate::say::quiet() {
            use std::io::Write as _;
            if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
                $crate::say::write_failed(&e);
            }
        }
    };
}

/// `println!` even with `--quiet`, for output the command was asked for (`--json`): a closed
/// stdout and failed writes as for [`say!`].
macro_rules! answer {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            $crate::say::write_failed(&e);
        }
    }};
}

/// `eprintln!` without its panic when stderr cannot be written (a log on a full disk,
/// `2>/dev/full`, a closed pipe): the exit code stays the one the command's result gives.
macro_rules! tell {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let text = format!($($arg)*);
        let _ = writeln!(std::io::stderr(), "{}", $crate::say::no_controls(&text));
    }};
}

/// A message for the terminal with every control character but line feeds shown as `\x1b`: a
/// name or value from a database that reaches a message unescaped cannot clear the screen or
/// set the window title.
pub fn no_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\n') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c.is_control() && c != '\n' {
            true => out.push_str(&format!("\\x{:02x}", c as u32)),
            false => out.push(c),
        }
    }
    out.into()
}
