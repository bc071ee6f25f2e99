//! sqlgit: versions SQLite databases in git as exact, deterministic SQL text.
//!
//! `main` only calls [`main_with_exit_code`]; this is the one place where errors become exit codes
//! (0 ok, 1 failure, 2 usage) and where they are printed, as one line on stderr.

#[macro_use]
mod say;

pub mod bounded;
pub mod cause;
pub mod cli;
pub mod cmd;
pub mod diff;
pub mod dump;
pub mod error;
pub mod failpoint;
pub mod health;
pub mod job;
pub mod metricsfile;
pub mod output;
pub mod panics;
pub mod progress;
pub mod query;
pub mod remote;
pub mod restore;
pub mod room;
pub mod settings;
pub mod shellword;
pub mod snapshot;
pub mod state;
pub mod stop;
pub mod store;
pub mod timeline;
pub mod verify;
pub mod vfs;
pub mod when;

use std::process::ExitCode;

/// Parse the command line, run the command, and turn its result into an exit code.
pub fn main_with_exit_code() -> ExitCode {
    // Dumps hold private data: everything sqlgit creates is private to the user.
    unsafe { libc::umask(0o077) };
    store::configure_libgit2();
    panics::install();
    let cli = match cmd::parse() {
        Ok(cli) => cli,
        Err(err)
            if err.use_stderr()
                && err.kind()
                    != clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            let line = error::usage_line(&err.render().to_string());
            tell!("sqlgit: {line}");
            if let Some(repo) = cli::job_repo(std::env::args_os().skip(1)) {
                for warning in job::record_usage_error(&repo, &line) {
                    tell!("sqlgit: warning: {warning}");
                }
            }
            return ExitCode::from(2);
        }
        Err(err) => {
            // --help, --version (0); the help for a bare `sqlgit` (2)
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { 2 } else { 0 });
        }
    };
    say::set_quiet(cli.quiet);
    let result =
        panics::caught(|| cmd::run(cli)).and_then(|exit| say::check_stdout().map(|()| exit));
    if let Err(err) = &result
        && !error::is_broken_pipe(err)
    {
        tell!("sqlgit: {}", error::error_line(err));
    }
    error::exit_code(&result)
}
