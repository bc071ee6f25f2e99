//! `sqlgit log`: the snapshots, newest first.

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Result;
use clap::Args;

use crate::error::Exit;
use serde::Serialize;

use crate::store::Store;

#[derive(Debug, Args)]
pub struct LogArgs {
    /// The sqlgit repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// One JSON array of {id, time, unix, summary, database, tables, rows, bytes}.
    #[arg(long)]
    pub json: bool,
    /// Show at most N snapshots.
    #[arg(short = 'n', long, value_name = "N")]
    pub max_count: Option<usize>,
}

#[derive(Serialize)]
struct Entry {
    id: String,
    time: String,
    unix: i64,
    summary: String,
    database: Option<String>,
    tables: Option<u64>,
    rows: Option<u64>,
    bytes: Option<u64>,
}

pub fn run(args: LogArgs) -> Result<Exit> {
    let store = Store::open_read(&args.repo)?;
    let mut entries = Vec::new();
    let mut next = store.head()?;
    while let Some(commit) = next {
        if args.max_count.is_some_and(|n| entries.len() >= n) {
            break;
        }
        let message = commit.message().unwrap_or_default();
        let trailer = |key: &str| {
            message
                .lines()
                .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        };
        let num = |key: &str| trailer(key).and_then(|v| v.parse().ok());
        let unix = commit.time().seconds();
        entries.push(Entry {
            id: commit.id().to_string(),
            time: humantime::format_rfc3339_seconds(
                UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64),
            )
            .to_string(),
            unix,
            summary: commit
                .summary()
                .ok()
                .flatten()
                .unwrap_or_default()
                .to_string(),
            database: trailer("Sqlgit-Database:"),
            tables: num("Sqlgit-Tables:"),
            rows: num("Sqlgit-Rows:"),
            bytes: num("Sqlgit-Bytes:"),
        });
        next = commit.parent(0).ok();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
    } else {
        for e in &entries {
            println!("{}  {}  {}", &e.id[..12], e.time, e.summary);
        }
    }
    Ok(Exit::Success)
}
