//! `sqlgit push`: push what the remotes lack, without taking a snapshot.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Args;

use crate::cli::{FilterArgs, JobArgs, KeepArgs, RemoteArgs, flags, parse_duration};
use crate::error::Exit;
use crate::remote::{Adopted, PushResult};
use crate::settings::Settings;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The sqlgit repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    #[command(flatten)]
    pub remotes: RemoteArgs,
    /// Rewrite the snapshots kept here on top of the history remote's main (or as a new history
    /// when it is empty: a recreated remote), then push. Same trees, messages and times; new
    /// commit ids. The remote's own commits stay: its history is never rewritten. A push that
    /// needs this says so, with the exact command.
    #[arg(long)]
    pub reroot: bool,
    /// How long to wait for another sqlgit run on the same repository to finish.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

pub fn run(args: PushArgs) -> Result<Exit> {
    let started = Instant::now();
    let path = Store::open(&args.repo)?.path;
    let given = flags(
        &[],
        &args.remotes,
        &KeepArgs::default(),
        &FilterArgs::default(),
        &JobArgs::default(),
    );
    let lock = match crate::job::lock_for_push(&path, &given, args.lock_timeout, started) {
        Ok(lock) => lock,
        Err(report) => {
            for w in &report.warnings {
                tell!("sqlgit: warning: {w}");
            }
            return Err(report.error.expect("a lock error"));
        }
    };
    let mut store = Store::open(&path)?;
    store.remove_stale_locks(&lock, args.lock_timeout)?;
    let old = Settings::load(&store);
    let settings = old.merged(&given);
    for note in crate::job::save_settings(&store, &old, &settings)? {
        say!("note: {note}");
    }
    if settings.history_remote.is_none() && settings.latest_remote.is_none() {
        return Err(crate::error::usage(
            "no remote is set: give --history-remote URL or --latest-remote URL (remembered)",
        ));
    }
    // Failures from here on are recorded like a failed run (state, metrics, failure hook), and
    // a push killed midway shows in `sqlgit status` as a run that did not finish until a push
    // or a snapshot run completes (a killed snapshot run's mark is left for the next snapshot
    // run to replace). Under the lock, no run that left a mark is live.
    if crate::state::load(&path)
        .running
        .is_none_or(|killed| killed.push)
        && let Err(e) = crate::state::mark_started(&path, crate::when::unix_now(), true)
    {
        tell!("sqlgit: warning: {}", crate::error::error_line(&e));
    }
    crate::job::record_push_if_stopped(&path, &settings, started);
    // Every remote's push from now on: one that does not finish is recorded failed.
    crate::job::pushes_due(&settings);
    let pushed = push(&mut store, &settings, args.reroot);
    let (error, results) = match pushed {
        Ok(results) => (None, results),
        Err(e) => (Some(e), Vec::new()),
    };
    for w in crate::job::record_push(&store, &settings, error.as_ref(), &results, started) {
        tell!("sqlgit: warning: {w}");
    }
    if let Some(e) = error {
        return Err(e);
    }
    for p in &results {
        if let Some(note) = &p.note {
            say!("note: {note}");
        }
        match &p.record.error {
            None if p.commits > 0 => say!(
                "pushed {} commit{} to {} remote {}",
                p.commits,
                plural(p.commits),
                p.role.name(),
                p.record.url
            ),
            None => {}
            Some(cause) => tell!(
                "sqlgit: push to {} remote {}: {cause}",
                p.role.name(),
                p.record.url
            ),
        }
    }
    Ok(if results.iter().all(|p| p.record.ok) {
        Exit::Success
    } else {
        Exit::Failure
    })
}

/// Re-root or adopt as asked, then push every remote.
fn push(store: &mut Store, settings: &Settings, reroot: bool) -> Result<Vec<PushResult>> {
    let mut unreachable = None;
    // A `main` lost with plain git: pushing (or adopting the remote's) would leave the snapshots
    // not pushed yet behind.
    let why = "deleted or renamed with plain git, or lost with packed-refs?";
    if let Some(warning) =
        crate::store::lostmain::recover(store, why).context("point main at the snapshots")?
    {
        tell!("sqlgit: warning: {warning}");
    }
    if !reroot {
        // The run's network calls take --push-timeout together (a re-root, which may fetch
        // the remote's whole history, is not bounded this way).
        if let Ok(options) = settings.remote_options() {
            crate::remote::share_push_timeout(options.timeout);
        }
        // Snapshots taken while the history remote was unreachable on a new repository.
        let folders = crate::snapshot::db_folders(&settings.dbs);
        let adopted = crate::remote::adopt(store, settings, &folders)
            .context("continue the history remote")?;
        if let Adopted::Deferred(cause) = adopted {
            unreachable = Some(cause);
        }
    } else {
        let done = crate::remote::reroot(store, settings).context("re-root")?;
        if let (Some(onto), true) = (done.onto, done.rewound > 0) {
            say!(
                "the history remote was rewound (restored from an older backup of itself?): its \
                 main {onto} no longer has {} snapshot{} it had confirmed; they go back on top of \
                 it",
                done.rewound,
                plural(done.rewound)
            );
        }
        if done.recovered > 0 {
            say!(
                "put back {} snapshot{} pruned here that the history remote lost (rewound or \
                 emptied), from the local history cache",
                done.recovered,
                plural(done.recovered)
            );
        }
        if let Some(lost) = done.lost {
            // Loud: on stderr too, so cron mails it.
            let kept = crate::store::cache::holds(store, lost);
            tell!(
                "warning: snapshots pruned here after the history remote confirmed them (the \
                 newest: {lost}) are no longer on it either: the rewind lost them, and {}",
                if kept {
                    format!(
                        "they are older than its main, so they cannot go back on top of it: \
                         only the local history cache {} keeps them (never deleted while it \
                         does; `sqlgit cat {lost} --repo DIR` reads them)",
                        crate::store::cache::dir(store).display()
                    )
                } else {
                    "no copy is left here".to_string()
                }
            );
        }
        match (done.snapshots, done.onto) {
            (0, Some(onto)) if done.left > 0 => say!(
                "the history remote's main {onto} is newer than the {} snapshot{} kept here, \
                 which it has: this repository now continues it",
                done.left,
                plural(done.left)
            ),
            (0, _) => say!("the snapshots here already continue the history remote's main"),
            (n, Some(onto)) if done.left > 0 => say!(
                "re-rooted {n} snapshot{} on top of the history remote's main {onto} (the {} \
                 older one{} it has left out)",
                plural(n),
                done.left,
                plural(done.left)
            ),
            (n, Some(onto)) => say!(
                "re-rooted {n} snapshot{} on top of the history remote's main {onto}",
                plural(n)
            ),
            (n, None) => say!(
                "re-rooted {n} snapshot{} as a new history (the history remote was empty)",
                plural(n)
            ),
        }
    }
    crate::job::push_all(store, settings, unreachable.as_deref())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
