//! `sqlgit dump`: the whole database as SQL text, to stdout or a file.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use crate::cli::{FilterArgs, db_path, parse_busy_timeout};
use crate::dump::{self, Filters, source};
use crate::error::Exit;
use crate::output::Output;
use crate::progress::{Counted, Progress};

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// The SQLite database file (opened read-only; never changed).
    #[arg(value_parser = db_path())]
    pub db: PathBuf,
    /// Write to FILE (created 0600, renamed into place when complete; gzip if it ends in .gz, zstd if it ends in .zst)
    /// instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// How long to wait for a writer's lock before giving up (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_busy_timeout)]
    pub busy_timeout: Duration,
    #[command(flatten)]
    pub filters: FilterArgs,
}

pub fn run(args: DumpArgs) -> Result<Exit> {
    let hint = crate::error::full_disk_by_hand(args.output.as_deref());
    crate::error::on_full_disk(dump(args), || hint)
}

fn dump(args: DumpArgs) -> Result<Exit> {
    let format = dump::Format::for_snapshots()?;
    let db = args.db.display().to_string();
    if let Some(target) = &args.output {
        crate::output::refuse_target(target, &[&args.db])?;
    }
    let conn = source::open(&args.db, args.busy_timeout).with_context(|| format!("dump {db}"))?;
    let filters = Filters {
        exclude_tables: args.filters.exclude_table.clone(),
        redact: args.filters.redact.clone(),
    };
    let mut out = Output::create(args.output.as_deref())?;
    // A meter only when the SQL goes to a file (on a terminal it would mix with the SQL).
    let meter = match &args.output {
        Some(_) => Progress::bytes(&format!("dump of {db}")),
        None => Progress::hidden(),
    };
    let mut counted = Counted {
        inner: &mut out,
        progress: &meter,
    };
    let result = dump::dump_noting(&conn, &mut counted, &filters, format);
    meter.finish();
    match result {
        Ok((_, converted)) => {
            out.finish()?;
            for line in converted {
                tell!("sqlgit: warning: {line}");
            }
            // Read again after the dump's transaction: a warning, not a promise.
            for line in dump::strictdefault::unrestorable(&conn, &filters).unwrap_or_default() {
                tell!("sqlgit: warning: this dump cannot be restored: {line}");
            }
            Ok(Exit::Success)
        }
        Err(e) => {
            out.abandon();
            Err(e.context(format!("dump {db}")))
        }
    }
}
