//! `sqlgit log`: the snapshots, newest first; with `--all` also those pruning removed locally,
//! from the history remote (through the history cache, see `timeline`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Result;
use clap::Args;

use crate::error::Exit;
use serde::Serialize;

use crate::timeline::Timeline;

#[derive(Debug, Args)]
pub struct LogArgs {
    /// The sqlgit repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// One JSON array of {id, time, unix, summary, database, tables, rows, bytes, databases}:
    /// tables, rows and bytes are the snapshot's totals; database names its one database (null
    /// when it holds several); databases lists each with its own {database, tables, rows, bytes}.
    #[arg(long)]
    pub json: bool,
    /// Also the snapshots pruned locally, from the history remote (fetched into
    /// DIR/sqlgit-cache); each marked local or remote, or cache: one the history remote lost
    /// (rewound) that only the local history cache keeps.
    #[arg(long)]
    pub all: bool,
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
    databases: Vec<Database>,
    /// With --all: whether the snapshot is in local history.
    #[serde(skip_serializing_if = "Option::is_none")]
    local: Option<bool>,
    /// With --all, for a snapshot not in local history: whether the history remote holds it
    /// (false: it lost it, rewound; only the local history cache has it).
    #[serde(skip_serializing_if = "Option::is_none")]
    remote: Option<bool>,
}

/// One database of a snapshot, with what its commit recorded of it (None: nothing recorded).
#[derive(Serialize)]
struct Database {
    database: String,
    tables: Option<u64>,
    rows: Option<u64>,
    bytes: Option<u64>,
}

pub fn run(args: LogArgs) -> Result<Exit> {
    let mut timeline = Timeline::open(&args.repo)?;
    let Some(head) = timeline.store.head()?.map(|c| c.id()) else {
        return finish(&args, &[]);
    };
    if args.all {
        timeline.refresh_cache()?;
    }
    let local = if args.all {
        timeline.local_ids()?
    } else {
        Default::default()
    };
    let lost: std::collections::HashSet<git2::Oid> = timeline
        .lost_by_remote()
        .into_iter()
        .filter(|id| !local.contains(id))
        .collect();
    let limit = args.max_count.unwrap_or(usize::MAX);
    let mut entries = Vec::new();
    let mut listed = std::collections::HashSet::new();
    let mut next = Some(timeline.repo().find_commit(head)?);
    let mut kept = Kept::default();
    while let Some(commit) = next {
        if entries.len() >= limit {
            break;
        }
        let mut entry = entry(&commit, &timeline.store.path, &mut kept);
        if args.all {
            let here = local.contains(&commit.id());
            entry.local = Some(here);
            entry.remote = (!here).then(|| !lost.contains(&commit.id()));
            if lost.contains(&commit.id()) {
                listed.insert(commit.id());
            }
        }
        entries.push(entry);
        next = crate::store::walk::parent(&commit, &timeline.store.path)?;
    }
    if !lost.is_empty() {
        warn_lost(&timeline, &lost, &listed);
    }
    finish(&args, &entries)
}

/// Warn that the history remote lost `lost` (pruned here, kept only by the history cache;
/// `listed`: those the listing shows, as `cache`): with the command that puts them back, unless
/// all are older than the remote's main (they cannot go back on top of it).
fn warn_lost(
    timeline: &Timeline,
    lost: &std::collections::HashSet<git2::Oid>,
    listed: &std::collections::HashSet<git2::Oid>,
) {
    let repo = timeline.repo();
    let time = |id: &git2::Oid| repo.find_commit(*id).ok().map(|c| c.time().seconds());
    let newest = lost.iter().max_by_key(|id| time(id)).copied();
    let main = repo
        .refname_to_id("refs/heads/main")
        .ok()
        .and_then(|id| time(&id));
    let behind = main.is_some_and(|main| lost.iter().all(|id| time(id).is_some_and(|t| t < main)));
    let (n, it, they) = match lost.len() {
        1 => ("", "it", "it is"),
        _ => ("s", "them", "they are"),
    };
    let shown = match listed.len() {
        0 => String::new(),
        _ => ", listed as `cache`".to_string(),
    };
    let fix = if behind {
        format!(
            "{they} older than its main, so {it} cannot go back on top of it (`sqlgit cat ID \
             --repo DIR` reads {it}; the cache is never deleted while it keeps {it})"
        )
    } else {
        format!(
            "put {it} back on the remote, run: {}",
            crate::remote::reroot_command(&timeline.store)
        )
    };
    tell!(
        "sqlgit: warning: the history remote no longer has {} snapshot{n} pruned here (it was \
         rewound or emptied; the newest: {}{shown}): only the local history cache {} keeps \
         {it}; {fix}",
        lost.len(),
        newest.map_or_else(String::new, crate::store::short_id),
        crate::store::cache::dir(&timeline.store).display(),
    );
}

fn entry(commit: &git2::Commit, dir: &std::path::Path, kept: &mut Kept) -> Entry {
    let message = commit.message().unwrap_or_default();
    let trailer = |key: &str| crate::snapshot::trailer(message, key).map(str::to_string);
    let num = |key: &str| trailer(key).and_then(|v| v.parse().ok());
    let unix = commit.time().seconds();
    let mut databases: Vec<Database> = message
        .lines()
        .filter_map(|l| l.strip_prefix("Sqlgit-Database:"))
        .map(|name| {
            let name = name.trim();
            database(name, crate::snapshot::recorded(message, name))
        })
        .collect();
    let mut summary = commit
        .summary()
        .ok()
        .flatten()
        .unwrap_or_default()
        .to_string();
    let (mut tables, mut rows, mut bytes) = (
        num("Sqlgit-Tables:"),
        num("Sqlgit-Rows:"),
        num("Sqlgit-Bytes:"),
    );
    // A one-off run's snapshot also holds the other databases' folders as they were: the
    // snapshot's databases and totals are all of them, with what earlier commits recorded.
    let others = kept.others(commit, dir, &databases);
    if !databases.is_empty() && !others.is_empty() {
        let names: Vec<&str> = others.iter().map(|d| d.database.as_str()).collect();
        let as_before = format!("{} as of an earlier snapshot", names.join(", "));
        databases.extend(others);
        databases.sort_by(|x, y| x.database.cmp(&y.database));
        let sum = |f: fn(&Database) -> Option<u64>| databases.iter().map(f).sum::<Option<u64>>();
        (tables, rows, bytes) = (sum(|d| d.tables), sum(|d| d.rows), sum(|d| d.bytes));
        let all: Vec<&str> = databases.iter().map(|d| d.database.as_str()).collect();
        summary = match (tables, rows, bytes) {
            (Some(t), Some(r), Some(b)) => format!(
                "{}: {t} tables, {r} rows, {} of SQL ({as_before})",
                all.join(", "),
                crate::output::human_bytes(b)
            ),
            _ => format!("{summary}; {as_before}"),
        };
    }
    Entry {
        id: commit.id().to_string(),
        time: humantime::format_rfc3339_seconds(
            UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64),
        )
        .to_string(),
        unix,
        summary,
        // A snapshot of several databases has no one database to name.
        database: match &databases[..] {
            [one] => Some(one.database.clone()),
            _ => None,
        },
        tables,
        rows,
        bytes,
        databases,
        local: None,
        remote: None,
    }
}

fn database(name: &str, recorded: Option<crate::dump::Summary>) -> Database {
    Database {
        database: name.to_string(),
        tables: recorded.as_ref().map(|s| s.tables),
        rows: recorded.as_ref().map(|s| s.rows),
        bytes: recorded.as_ref().map(|s| s.bytes),
    }
}

/// What earlier commits recorded of database folders a run kept without writing them (a
/// one-off run on another database), by folder name and tree id.
#[derive(Default)]
struct Kept(HashMap<(String, Option<git2::Oid>), Option<crate::dump::Summary>>);

impl Kept {
    /// The folders of `commit`'s tree that its message does not record (`recorded`), each with
    /// the figures of the nearest earlier commit that wrote that very folder (None when pruning
    /// cut the history before it).
    fn others(
        &mut self,
        commit: &git2::Commit,
        dir: &std::path::Path,
        recorded: &[Database],
    ) -> Vec<Database> {
        let Ok(tree) = commit.tree() else {
            return Vec::new();
        };
        let folders = crate::restore::folders(commit).unwrap_or_default();
        let unrecorded = folders
            .into_iter()
            .filter(|f| !recorded.iter().any(|d| &d.database == f));
        unrecorded
            .map(|folder| {
                let id = tree.get_name(&folder).map(|e| e.id());
                let key = (folder.clone(), id);
                let found = match self.0.get(&key).copied() {
                    Some(found) => found,
                    None => {
                        let found = id.and_then(|id| written_by(commit, dir, &folder, id));
                        self.0.insert(key, found);
                        found
                    }
                };
                database(&folder, found)
            })
            .collect()
    }
}

/// What the nearest commit before `commit` that holds folder `folder` as tree `id` and records
/// it recorded of it (the run that wrote it).
fn written_by(
    commit: &git2::Commit,
    dir: &std::path::Path,
    folder: &str,
    id: git2::Oid,
) -> Option<crate::dump::Summary> {
    let mut next = crate::store::walk::parent(commit, dir).ok()?;
    while let Some(c) = next {
        let same = c.tree().ok()?.get_name(folder).map(|e| e.id()) == Some(id);
        if !same {
            return None;
        }
        let message = c.message().unwrap_or_default();
        if let Some(found) = crate::snapshot::recorded(message, folder) {
            return Some(found);
        }
        next = crate::store::walk::parent(&c, dir).ok()?;
    }
    None
}

fn finish(args: &LogArgs, entries: &[Entry]) -> Result<Exit> {
    use std::io::Write as _;
    // A closed stdout (`sqlgit log | head`) ends the listing quietly (see `lib.rs`).
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(entries)?)?;
    } else {
        for e in entries {
            let place = match (e.local, e.remote) {
                (Some(true), _) => "local   ",
                (Some(false), Some(false)) => "cache   ",
                (Some(false), _) => "remote  ",
                (None, _) => "",
            };
            writeln!(out, "{}  {}  {place}{}", &e.id[..12], e.time, e.summary)?;
        }
    }
    out.flush()?;
    Ok(Exit::Success)
}
