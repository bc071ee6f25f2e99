//! `sqlgit diff`: what changed between two snapshots, or between a snapshot and a database as it
//! is now (`--live`). Exit status as diff(1): 0 same, 1 different, 2 error — so errors are
//! printed and turned into 2 here, not by `main`.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::cli::{db_path, parse_busy_timeout};
use crate::diff::{Format, LiveDb, Request, diff};
use crate::error::{Exit, FullDiskHint, is_broken_pipe, one_line, usage};

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The older point: commit id or revision (HEAD~3), RFC 3339 time (2026-11-24T10:00:00Z, or
    /// local 2026-11-24 10:00), or a duration ago (2h, 1day 3h). A time means the latest
    /// snapshot at or before it. Points older than local history are fetched from the history
    /// remote (kept in DIR/sqlgit-cache).
    pub from: String,
    /// The newer point, in the same forms. Default: the latest snapshot.
    pub to: Option<String>,
    /// Compare FROM with this database as it is now (read-only, one read transaction; nothing
    /// is committed and the repository is not changed). The repository's --exclude-table and
    /// --redact settings apply, as in a snapshot.
    #[arg(long, value_name = "DB", conflicts_with = "to", value_parser = db_path())]
    pub live: Option<PathBuf>,
    /// With --live: how long to wait for the database's writers (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_busy_timeout,
          requires = "live")]
    pub busy_timeout: Duration,
    /// The sqlgit repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// The database's folder, when the repository holds several.
    #[arg(long, value_name = "NAME")]
    pub db: Option<String>,
    /// Only this table (its rows, definition, indexes and triggers; a virtual table's shadow
    /// tables too); repeatable.
    #[arg(long = "table", value_name = "NAME")]
    pub tables: Vec<String>,
    /// One line per changed table: inserted, updated and deleted rows, schema changes.
    #[arg(long, conflicts_with_all = ["sql", "json"])]
    pub summary: bool,
    /// An SQL patch: `sqlite3 -bail db < patch` on a restore of FROM gives exactly TO (rows,
    /// rowids, storage classes, schema, pragmas), in one transaction, with no trigger firing.
    #[arg(long, conflicts_with = "json")]
    pub sql: bool,
    /// One JSON object: {"from", "to", "tables": [{"name", "inserted", "updated", "deleted",
    /// "schema_changed", …}], …}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: DiffArgs) -> Result<Exit> {
    let stdout = std::io::stdout();
    let format = if args.summary {
        Format::Summary
    } else if args.sql {
        Format::Sql
    } else if args.json {
        Format::Json
    } else {
        let color = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Format::Rows { color }
    };
    let req = Request {
        repo: &args.repo,
        db: args.db.as_deref(),
        from: &args.from,
        to: args.to.as_deref(),
        live: args.live.as_deref().map(|path| LiveDb {
            path,
            busy_timeout: args.busy_timeout,
        }),
        tables: &args.tables,
        format,
    };
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    // A panic is an error too, which `diff` says with exit 2 (not 1, "they differ").
    let result = crate::panics::caught(|| {
        diff(&req, &mut out).and_then(|(differ, warnings)| {
            out.flush()?;
            for w in warnings {
                tell!("sqlgit: warning: {w}");
            }
            Ok(differ)
        })
    });
    match result {
        Ok(false) => Ok(Exit::Success),
        Ok(true) => Ok(Exit::Failure),
        Err(e) if is_broken_pipe(&e) => Ok(Exit::Failure),
        Err(e) => {
            // `diff` says trouble with exit 2, like diff(1).
            let _ = out.flush();
            // A full-disk hint is no text of its own (see `FullDiskHint`): kept, not shown here.
            let parts: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            let parts: Vec<&str> = parts
                .iter()
                .map(String::as_str)
                .filter(|p| !p.is_empty())
                .collect();
            let line = one_line(&parts.join(": "));
            match e.downcast_ref::<FullDiskHint>() {
                Some(hint) => Err(usage(line).context(FullDiskHint(hint.0.clone()))),
                None => Err(usage(line)),
            }
        }
    }
}
