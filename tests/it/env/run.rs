//! What a finished command did ([`Run`]), and how failures show a command and its output:
//! the command line, exit code, stdout, stderr and the directory, the way ripgrep's test helper
//! does.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output};

/// What a finished command did.
pub struct Run {
    pub cmdline: String,
    pub output: Output,
    pub dir: PathBuf,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }
    pub fn stdout(&self) -> &[u8] {
        &self.output.stdout
    }
    pub fn stderr(&self) -> &[u8] {
        &self.output.stderr
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Panic unless the command exited 0.
    #[track_caller]
    pub fn success(self) -> Run {
        if !self.output.status.success() {
            self.fail("expected success");
        }
        self
    }

    /// Panic unless the command exited non-zero (a signal death is a failure too, not a "failure").
    #[track_caller]
    pub fn failure(self) -> Run {
        match self.code() {
            Some(0) => self.fail("expected a non-zero exit code"),
            None => {
                self.fail("expected a non-zero exit code, but the process was killed by a signal")
            }
            Some(_) => self,
        }
    }

    /// Panic unless the exit code is exactly `code`.
    #[track_caller]
    pub fn code_is(self, code: i32) -> Run {
        if self.code() != Some(code) {
            self.fail(&format!("expected exit code {code}"));
        }
        self
    }

    /// Panic if anything was written to stderr.
    #[track_caller]
    pub fn assert_quiet(self) -> Run {
        if !self.output.stderr.is_empty() {
            self.fail("expected an empty stderr");
        }
        self
    }

    /// Panic with `what`, the command line, exit status, stdout, stderr and the test directory.
    #[track_caller]
    pub fn fail(&self, what: &str) -> ! {
        panic!(
            "\n\n==================== {what} ====================\n\
             command: {}\n\
             dir:     {}\n\
             status:  {}\n\
             ---------------- stdout ----------------\n{}\n\
             ---------------- stderr ----------------\n{}\n\
             ========================================\n",
            self.cmdline,
            self.dir.display(),
            self.output.status,
            excerpt(&self.output.stdout),
            excerpt(&self.output.stderr),
        );
    }
}

/// A shell-like rendering of `cmd` for failure messages.
pub fn describe(cmd: &Command) -> String {
    let mut out = String::new();
    let words =
        std::iter::once(cmd.get_program().to_owned()).chain(cmd.get_args().map(OsString::from));
    for word in words {
        let w = word.to_string_lossy();
        if !out.is_empty() {
            out.push(' ');
        }
        if !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./=:+,".contains(&b))
        {
            out.push_str(&w);
        } else {
            write!(out, "'{}'", w.replace('\'', r"'\''")).unwrap();
        }
    }
    out
}

/// At most ~8 KiB of `bytes` as lossy text, with a note of what was cut.
pub fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 8 * 1024;
    if bytes.len() <= MAX {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    format!(
        "{}\n[... {} bytes omitted ...]\n{}",
        String::from_utf8_lossy(&bytes[..MAX / 2]),
        bytes.len() - MAX,
        String::from_utf8_lossy(&bytes[bytes.len() - MAX / 2..])
    )
}
