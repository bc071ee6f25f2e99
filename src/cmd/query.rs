//! `sqlgit query`: a read-only SQL statement against the database as it was at one or more
//! snapshots, printed as a table, JSON or CSV.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::error::{Exit, is_broken_pipe, usage};
use crate::query::print::{Style, write};
use crate::query::{Request, query};

#[derive(Debug, Args)]
#[command(
    override_usage = "sqlgit query [WHEN] SQL --repo DIR [--db NAME] [--json | --csv]\n       \
                            sqlgit query --at WHEN [--at WHEN]... SQL --repo DIR [--json | --csv]"
)]
pub struct QueryArgs {
    /// Which snapshot, as for `sqlgit cat` (default: the latest). Leave it out with --at.
    #[arg(value_name = "WHEN")]
    pub when: Option<String>,
    /// One SQL statement that only reads (SELECT, WITH … SELECT, a read-only PRAGMA); the first
    /// argument when WHEN is left out.
    #[arg(value_name = "SQL")]
    pub sql: Option<String>,
    /// Run the statement at this point (instead of WHEN; `now` is the latest snapshot);
    /// repeatable: one result per point, in the order given.
    #[arg(long = "at", value_name = "WHEN")]
    pub at: Vec<String>,
    /// The sqlgit repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// The database's folder, when the repository holds several.
    #[arg(long, value_name = "NAME")]
    pub db: Option<String>,
    /// A JSON array of row objects (column → value; blobs as hex strings); with several points
    /// an array of {"commit", "time", "rows"}.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV (RFC 4180) with a header line; with several points, `commit` and `time` columns
    /// come first.
    #[arg(long)]
    pub csv: bool,
}

pub fn run(args: QueryArgs) -> Result<Exit> {
    // One positional is the SQL; two are WHEN and the SQL.
    let (when, sql) = match (args.when, args.sql) {
        (when, Some(sql)) => (when, sql),
        (Some(sql), None) => (None, sql),
        (None, None) => return Err(usage("give an SQL statement to run")),
    };
    let points: Vec<Option<String>> = match (when, args.at.is_empty()) {
        (Some(_), false) => {
            return Err(usage(
                "give the point either before the SQL or with --at, not both",
            ));
        }
        (when, true) => vec![when],
        (None, false) => args.at.into_iter().map(Some).collect(),
    };
    let style = if args.json {
        Style::Json
    } else if args.csv {
        Style::Csv
    } else {
        Style::Table
    };
    let answers = query(&Request {
        repo: &args.repo,
        db: args.db.as_deref(),
        points: &points,
        sql: &sql,
    })?;
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match write(&answers, style, &mut out).and_then(|()| Ok(out.flush()?)) {
        Err(e) if is_broken_pipe(&e) => Ok(Exit::Failure),
        Err(e) => Err(e),
        Ok(()) => Ok(Exit::Success),
    }
}
