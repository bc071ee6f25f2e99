//! `sqlgit dump`: the whole database as SQL text, to stdout or a file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use crate::dump::{self, source};
use crate::output::Output;

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// The SQLite database file (opened read-only; never changed).
    pub db: PathBuf,
    /// Write to FILE (created 0600, renamed into place when complete; gzip if it ends in .gz)
    /// instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// How long to wait for a writer's lock before giving up (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub busy_timeout: Duration,
}

/// humantime durations for clap.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30s, 5m, 1h 30m)"))
}

pub fn run(args: DumpArgs) -> Result<ExitCode> {
    let db = args.db.display().to_string();
    let conn = source::open(&args.db, args.busy_timeout).with_context(|| format!("dump {db}"))?;
    let mut out = Output::create(args.output.as_deref())?;
    match dump::dump(&conn, &mut out) {
        Ok(_) => {
            out.finish()?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            out.abandon();
            Err(e.context(format!("dump {db}")))
        }
    }
}
