//! `sqlgit snapshot`: the main job, run from cron. The run itself is [`crate::job`]; this
//! parses the flags and prints the report.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::cli::{
    FilterArgs, JobArgs, KeepArgs, RemoteArgs, check_db_paths, db_path, flags, parse_busy_timeout,
    parse_duration,
};
use crate::error::Exit;
use crate::job::{self, Report, Request};
use crate::output::human_bytes;
use crate::remote::Adopted;

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The SQLite database file(s), opened read-only and never changed; each gets its own folder
    /// in the tree. Default: the databases set with `sqlgit init`. Given ones become that list
    /// only on a repository's first run; later, a run on others is one-off (the configured
    /// databases' folders stay as they were; change the list with `sqlgit init --db`).
    #[arg(value_parser = db_path())]
    pub dbs: Vec<PathBuf>,
    /// The git repository holding the snapshots (created, bare and private, if missing).
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// How long to wait for a writer's lock on the database.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_busy_timeout)]
    pub busy_timeout: Duration,
    /// How long to wait for another sqlgit run on the same repository to finish.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
    /// Print the run's report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Read every table whole, ignoring the page map that lets a run read only what changed.
    #[arg(long)]
    pub full: bool,
    #[command(flatten)]
    pub remotes: RemoteArgs,
    #[command(flatten)]
    pub keep: KeepArgs,
    #[command(flatten)]
    pub filters: FilterArgs,
    #[command(flatten)]
    pub job: JobArgs,
}

pub fn run(args: SnapshotArgs) -> Result<Exit> {
    check_db_paths(&args.dbs)?;
    // A crontab line's bad environment is refused like its bad flags: recorded, hooked.
    if let Err(e) = crate::dump::Format::for_snapshots() {
        for w in job::record_usage_error(&args.repo, &crate::error::error_line(&e)) {
            tell!("sqlgit: warning: {w}");
        }
        return Err(e);
    }
    let request = Request {
        repo: args.repo.clone(),
        busy_timeout: args.busy_timeout,
        lock_timeout: args.lock_timeout,
        full: args.full,
        flags: flags(
            &args.dbs,
            &args.remotes,
            &args.keep,
            &args.filters,
            &args.job,
        ),
    };
    let mut report = job::run(&request);
    if args.json {
        answer!("{}", serde_json::to_string_pretty(&to_json(&report))?);
    } else {
        print(&report);
    }
    for w in &report.warnings {
        tell!("sqlgit: warning: {w}");
    }
    for p in report.pushes.iter().filter(|p| !p.record.ok) {
        let cause = p.record.error.as_deref().unwrap_or_default();
        tell!(
            "sqlgit: push to {} remote {}: {cause}",
            p.role.name(),
            p.record.url
        );
    }
    match report.error.take() {
        Some(e) => Err(e),
        None if report.ok() => Ok(Exit::Success),
        None => Ok(Exit::Failure),
    }
}

fn print(report: &Report) {
    if let Some(outcome) = &report.outcome {
        let s = &outcome.summary;
        match outcome.commit {
            Some(id) => say!(
                "{id} {} tables, {} rows, {} of SQL, {} added to the repository",
                s.tables,
                s.rows,
                human_bytes(s.bytes),
                human_bytes(outcome.pack_bytes)
            ),
            None => say!("unchanged since {}: no new snapshot", outcome.head),
        }
    }
    match &report.adopted {
        // Said by the run's warning or failure about the latest snapshot.
        _ if report.head_set_aside => {}
        Some(Adopted::Continued {
            tip,
            rescued: Some(latest),
            ..
        }) => say!(
            "new repository: continuing the history remote's snapshots from {tip}, with the \
             latest remote's newer snapshot {latest} (which the history remote never got) put \
             back on top of them"
        ),
        Some(Adopted::Continued {
            tip, rerooted: 0, ..
        }) => {
            say!("new repository: continuing the history remote's snapshots from {tip}")
        }
        Some(Adopted::Continued { tip, rerooted, .. }) => say!(
            "put {rerooted} snapshot{} taken while the history remote was unreachable on top of \
             its main {tip}",
            if *rerooted == 1 { "" } else { "s" }
        ),
        Some(Adopted::Rescued { latest, rerooted }) => say!(
            "new repository, and the history remote is empty: the history starts from the latest \
             remote's snapshot {latest} (its only copy){}",
            match rerooted {
                0 => String::new(),
                &n => format!(
                    ", with the {n} snapshot{} taken here on top",
                    if n == 1 { "" } else { "s" }
                ),
            }
        ),
        Some(Adopted::Deferred(_)) => say!(
            "the history remote could not be asked for its snapshots (this repository is \
             new): the snapshots taken here go on top of them once it answers"
        ),
        _ => {}
    }
    for p in report
        .pushes
        .iter()
        .filter(|p| p.record.ok && p.commits > 0)
    {
        say!(
            "pushed {} commit{} to {} remote {}",
            p.commits,
            if p.commits == 1 { "" } else { "s" },
            p.role.name(),
            p.record.url
        );
    }
    if let Some(p) = &report.pruned {
        super::prune_lines(p, report.repo_bytes);
    }
    let push_notes = report.pushes.iter().filter_map(|p| p.note.as_ref());
    for note in report.notes.iter().chain(push_notes) {
        say!("note: {note}");
    }
}

fn to_json(report: &Report) -> serde_json::Value {
    let pushes: Vec<serde_json::Value> = report
        .pushes
        .iter()
        .map(|p| {
            serde_json::json!({"remote": p.role.name(), "url": p.record.url, "ok": p.record.ok,
                               "commits": p.commits, "error": p.record.error,
                               "note": p.note})
        })
        .collect();
    let outcome = report.outcome.as_ref();
    serde_json::json!({
        "ok": report.ok(),
        "error": report.failure_line(),
        "commit": outcome.and_then(|o| o.commit).map(|c| c.to_string()),
        "head": outcome.map(|o| o.head.to_string()),
        "changed": outcome.is_some_and(|o| o.commit.is_some()),
        "tables": outcome.map(|o| o.summary.tables),
        "rows": outcome.map(|o| o.summary.rows),
        "bytes": outcome.map(|o| o.summary.bytes),
        "added_bytes": outcome.map(|o| o.pack_bytes),
        "read": outcome.map(|o| serde_json::json!({
            "whole": o.read_whole,
            "tables_reused": o.reuse.tables_reused,
            "tables_partial": o.reuse.tables_partial,
            "tables_read": o.reuse.tables_read,
            "chunks_reused": o.reuse.chunks_reused,
            "folders_reused": o.reuse.folders_reused,
            "chunks_read": o.reuse.chunks_read,
            "databases_unread": o.reuse.databases_unread,
        })),
        "pushes": pushes,
        "pruned": report.pruned.as_ref().map(|p| p.pruned),
        "warnings": report.warnings,
        "notes": report.notes,
    })
}
