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
    #[command(flatten)]
    pub filters: FilterArgs,
}

/// What to leave out (for remotes less trusted than the database).
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// Leave out tables whose name matches PATTERN (`*`, `?`; case-insensitive), with their
    /// indexes and triggers. Repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub exclude_table: Vec<String>,
    /// Replace the values of TABLE.COLUMN (`*` allowed) with NULL, or a fixed placeholder in
    /// NOT NULL columns. Repeatable. Primary-key columns cannot be redacted.
    #[arg(long, value_name = "TABLE.COLUMN")]
    pub redact: Vec<String>,
}

impl FilterArgs {
    /// Save the filters that were given; the filters in force (given, else remembered).
    pub fn remember(&self, store: &crate::store::Store) -> Result<dump::Filters> {
        use crate::config::list_setting;
        Ok(dump::Filters {
            exclude_tables: list_setting(store, "excludeTable", &self.exclude_table)?,
            redact: list_setting(store, "redact", &self.redact)?,
        })
    }

    pub fn filters(&self) -> dump::Filters {
        dump::Filters {
            exclude_tables: self.exclude_table.clone(),
            redact: self.redact.clone(),
        }
    }
}

/// humantime durations for clap.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30s, 5m, 1h 30m)"))
}

pub fn run(args: DumpArgs) -> Result<ExitCode> {
    let db = args.db.display().to_string();
    let conn = source::open(&args.db, args.busy_timeout).with_context(|| format!("dump {db}"))?;
    let mut out = Output::create(args.output.as_deref())?;
    match dump::dump(&conn, &mut out, &args.filters.filters()) {
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
