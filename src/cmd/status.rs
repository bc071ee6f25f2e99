//! `sqlgit status`: is the backup healthy? For people and for monitoring (exit code).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::error::Exit;
use serde_json::json;

use crate::cli::parse_duration;
use crate::output::human_bytes;
use crate::remote::{LATEST_TRACKING, pending_history};
use crate::state;
use crate::store::{Store, dir_size, lock};
use crate::when;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The sqlgit repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// Exit 1 when the newest snapshot is older than this (a dead-man check), e.g. 15m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_age: Option<Duration>,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

fn time(unix: i64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64),
    )
    .to_string()
}

pub fn run(args: StatusArgs) -> Result<Exit> {
    let store = Store::open_read(&args.repo)?;
    let st = state::load(&store.path);
    let now = when::unix_now();
    let head = store.head()?;
    let mut oldest = None;
    let mut count = 0;
    let mut next = head.clone();
    while let Some(c) = next {
        count += 1;
        oldest = Some(c.time().seconds());
        next = c.parent(0).ok();
    }
    let newest = head.as_ref().map(|c| c.time().seconds());
    let age = newest.map(|t| (now - t).max(0));
    let mut problems = Vec::new();
    if head.is_none() {
        problems.push("no snapshot yet".to_string());
    }
    if let (Some(max), Some(age)) = (args.max_age, age)
        && age as u64 > max.as_secs()
    {
        problems.push(format!(
            "the newest snapshot is {} old (more than {})",
            humantime::format_duration(Duration::from_secs(age as u64)),
            humantime::format_duration(max)
        ));
    }
    // A run that recorded its start and not its end: still running (it holds the lock), or
    // killed (it does not).
    let unfinished = st.running.as_ref().filter(|_| !lock::is_held(&store.path));
    if let Some(run) = unfinished {
        problems.push(format!(
            "the run started at {} did not finish (killed, or the machine stopped)",
            time(run.unix)
        ));
    } else if let Some(run) = st.last_run.as_ref().filter(|r| !r.ok) {
        problems.push(format!(
            "the last run failed: {}",
            run.error.clone().unwrap_or_default()
        ));
    }
    let pending = pending_history(&store).unwrap_or(0);
    let latest_current = match (&head, store.repo.refname_to_id(LATEST_TRACKING)) {
        (Some(h), Ok(id)) => store
            .repo
            .find_commit(id)
            .map(|c| c.tree_id() == h.tree_id())
            .unwrap_or(false),
        _ => false,
    };
    let size = dir_size(&store.path);
    if args.json {
        let remotes: serde_json::Map<String, serde_json::Value> = st
            .remotes
            .iter()
            .map(|(role, r)| {
                let pending = if role == "history" {
                    json!(pending)
                } else {
                    json!(if latest_current { 0 } else { 1 })
                };
                (
                    role.clone(),
                    json!({"url": r.url, "ok": r.ok, "time": time(r.unix), "unix": r.unix,
                           "error": r.error, "pending": pending}),
                )
            })
            .collect();
        let value = json!({
            "repo": store.path.display().to_string(),
            "ok": problems.is_empty(),
            "problems": problems,
            "newest": head.as_ref().map(|c| json!({"id": c.id().to_string(), "time": time(c.time().seconds()), "unix": c.time().seconds(), "age_seconds": age})),
            "local_snapshots": count,
            "oldest_local": oldest.map(time),
            "last_run": st.last_run,
            "running": st.running.as_ref().map(|r| json!({"time": time(r.unix), "unix": r.unix,
                                                          "pid": r.pid, "finished": false})),
            "last_success": st.last_success.map(time),
            "remotes": remotes,
            "repository_bytes": size,
        });
        say!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        say!(
            "repository: {} ({})",
            store.path.display(),
            human_bytes(size)
        );
        match (&head, age) {
            (Some(h), Some(age)) => say!(
                "newest snapshot: {} at {} ({} ago)",
                &h.id().to_string()[..12],
                time(h.time().seconds()),
                humantime::format_duration(Duration::from_secs(age as u64))
            ),
            _ => say!("newest snapshot: none"),
        }
        if let Some(o) = oldest {
            say!("local history: {count} snapshots since {}", time(o));
        }
        if let Some(run) = &st.running {
            say!(
                "run started at {}: {}",
                time(run.unix),
                if unfinished.is_some() {
                    "did not finish"
                } else {
                    "in progress"
                }
            );
        }
        if let Some(run) = &st.last_run {
            say!(
                "last run: {} at {} ({:.1}s){}",
                if run.ok { "ok" } else { "FAILED" },
                time(run.unix),
                run.duration_seconds,
                run.error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
        }
        for (role, r) in &st.remotes {
            let pending = if role == "history" {
                format!("{pending} commits pending")
            } else if latest_current {
                "up to date".into()
            } else {
                "newest snapshot not pushed".into()
            };
            say!(
                "{role} remote {}: last push {} at {}; {pending}{}",
                r.url,
                if r.ok { "ok" } else { "FAILED" },
                time(r.unix),
                r.error
                    .as_ref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
        }
    }
    let settings = crate::settings::Settings::load(&store);
    for (role, url) in [
        ("history", &settings.history_remote),
        ("latest", &settings.latest_remote),
    ] {
        if let Some(url) = url
            && !st.remotes.contains_key(role)
            && !args.json
        {
            say!("{role} remote {}: never pushed", crate::remote::redact(url));
        }
    }
    // Unhealthy is an error: said on stderr even with --quiet (cron mails it).
    for p in &problems {
        eprintln!("sqlgit: {}: {p}", store.path.display());
    }
    Ok(if problems.is_empty() {
        Exit::Success
    } else {
        Exit::Failure
    })
}
