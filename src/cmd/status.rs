//! `sqlgit status`: is the backup healthy? For people and for monitoring (exit code).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::error::Exit;
use serde_json::json;

use crate::cli::parse_duration;
use crate::health::{self, rfc3339};
use crate::output::human_bytes;
use crate::store::Store;
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

pub fn run(args: StatusArgs) -> Result<Exit> {
    let store = Store::open_read(&args.repo)?;
    let h = health::check(&store, args.max_age, when::unix_now())?;
    let (st, problems, pending, latest_current) =
        (&h.state, &h.problems, h.pending_history, h.latest_current);
    let (count, oldest, age, size) = (h.local_snapshots, h.oldest_local, h.age, h.repo_bytes);
    let time = rfc3339;
    if args.json {
        let value = to_json(&store, &h);
        answer!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        say!(
            "repository: {} ({})",
            store.path.display(),
            human_bytes(size)
        );
        match (&h.newest, age) {
            (Some((id, t)), Some(age)) => say!(
                "newest snapshot: {} at {} ({} ago)",
                &id[..12],
                time(*t),
                humantime::format_duration(Duration::from_secs(age as u64))
            ),
            _ => say!("newest snapshot: none"),
        }
        if let Some(o) = oldest {
            let s = if count == 1 { "" } else { "s" };
            say!("local history: {count} snapshot{s} since {}", time(o));
        }
        if let Some(run) = &st.running {
            say!(
                "run started at {}: {}",
                time(run.unix),
                if h.unfinished.is_some() {
                    "did not finish".to_string()
                } else {
                    format!("in progress (process {})", run.pid)
                }
            );
        }
        if let Some(holder) = &h.holder {
            say!("lock: {}", holder.describe(when::unix_now()));
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
    let settings = &h.settings;
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
    for p in problems {
        tell!("sqlgit: {}: {p}", store.path.display());
    }
    Ok(if problems.is_empty() {
        Exit::Success
    } else {
        Exit::Failure
    })
}

/// The status as one JSON object. Every configured remote is in `remotes`, one never pushed to
/// with `"pushed": false` (and no time); `running.in_progress` tells a run under way from one
/// that did not finish.
fn to_json(store: &Store, h: &health::Health) -> serde_json::Value {
    let (st, pending, latest_current) = (&h.state, h.pending_history, h.latest_current);
    let time = rfc3339;
    let pending_of = |role: &str| {
        if role == "history" {
            json!(pending)
        } else {
            json!(if latest_current { 0 } else { 1 })
        }
    };
    let mut remotes: serde_json::Map<String, serde_json::Value> = st
        .remotes
        .iter()
        .map(|(role, r)| {
            let value = json!({"url": r.url, "pushed": true, "ok": r.ok, "time": time(r.unix),
                               "unix": r.unix, "error": r.error, "pending": pending_of(role)});
            (role.clone(), value)
        })
        .collect();
    let settings = &h.settings;
    for (role, url) in [
        ("history", &settings.history_remote),
        ("latest", &settings.latest_remote),
    ] {
        if let Some(url) = url
            && !remotes.contains_key(role)
        {
            let url = crate::remote::redact(url);
            let value = json!({"url": url, "pushed": false, "ok": null, "time": null,
                               "unix": null, "error": null, "pending": pending_of(role)});
            remotes.insert(role.to_string(), value);
        }
    }
    json!({
        "repo": store.path.display().to_string(),
        "ok": h.problems.is_empty(),
        "problems": h.problems,
        "newest": h.newest.as_ref().map(|(id, t)| json!({"id": id, "time": time(*t), "unix": t,
                                                         "age_seconds": h.age})),
        "local_snapshots": h.local_snapshots,
        "oldest_local": h.oldest_local.map(time),
        "last_run": st.last_run,
        "running": st.running.as_ref().map(|r| json!({"time": time(r.unix), "unix": r.unix,
                                                      "pid": r.pid, "finished": false,
                                                      "in_progress": h.unfinished.is_none()})),
        "lock_holder": h.holder.as_ref().map(|l| json!({"pid": l.pid, "since": time(l.since),
                                                        "unix": l.since, "stopped": l.stopped})),
        "last_success": st.last_success.map(time),
        "remotes": remotes,
        "repository_bytes": h.repo_bytes,
    })
}
