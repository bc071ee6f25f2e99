//! sqlgit: versions SQLite databases in git as exact, deterministic SQL text.
//!
//! `main` only calls [`main_with_exit_code`]; this is the one place where errors become exit codes
//! (0 ok, 1 failure, 2 usage) and where they are printed, as one line on stderr.

#[macro_use]
mod say;

pub mod cli;
pub mod cmd;
pub mod config;
pub mod diff;
pub mod dump;
pub mod output;
pub mod remote;
pub mod restore;
pub mod snapshot;
pub mod state;
pub mod store;
pub mod when;

use std::process::ExitCode;

/// Parse the command line, run the command, and turn its result into an exit code.
pub fn main_with_exit_code() -> ExitCode {
    // Dumps hold private data: everything sqlgit creates is private to the user.
    unsafe {
        libc::umask(0o077);
        // Bound libgit2's pack mmaps: reading many trees of a big pack must not map all of it.
        let _ = git2::opts::set_mwindow_mapped_limit(32 << 20);
        let _ = git2::opts::set_mwindow_size(8 << 20);
    }
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    say::set_quiet(cli.quiet);
    match cmd::run(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::from(1);
            }
            eprintln!("sqlgit: {}", error_line(&err));
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// An error and its causes as one line, without the repetitions that layered libraries add
/// ("database is locked: Error code 5: database is locked").
pub fn error_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let mut text = cause.to_string();
        if let Some(rest) = text.strip_prefix("Error code ") {
            text = rest
                .split_once(": ")
                .map(|(_, m)| m.to_string())
                .unwrap_or(text);
        }
        let text = one_line(&text);
        if text.is_empty() || parts.iter().any(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    let mut line = parts.join(": ");
    if line.contains("database is locked") {
        line.push_str(" (a writer held its lock past --busy-timeout; raise it to wait longer)");
    }
    line
}

/// Error messages are one line, whatever the causes contained.
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
