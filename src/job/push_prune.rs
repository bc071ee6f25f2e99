//! The push and prune steps of a run, which `sqlgit push` and `sqlgit prune` take on their own
//! too: each push recorded in the state file, and pruning that relies on the history remote's
//! confirmation only when it answered in this run.

use std::time::Duration;

use anyhow::Result;

use crate::remote::{self, PushResult};
use crate::settings::Settings;
use crate::state;
use crate::store::Store;
use crate::store::prune::{self, HistoryRemote};
use crate::when;

/// Push every configured remote (due: see [`super::due`]) and record each attempt in the
/// state file, before it starts and when it ends (`history_failed`: see
/// [`remote::push_all`]).
pub fn push_all(
    store: &Store,
    settings: &Settings,
    history_failed: Option<&str>,
) -> Result<Vec<PushResult>> {
    let now = when::unix_now();
    // Not saved (a full disk): pushed anyway, the run then fails in its push phase.
    let marked = super::due::starting(store, now);
    let mut saved = Ok(());
    let results = remote::push_all(store, settings, now, history_failed, &mut |p| {
        let recorded = super::due::finished(store, p);
        if saved.is_ok() {
            saved = recorded;
        }
    });
    // Stopped meanwhile: a push whose git the stop killed failed for no reason of the remote's.
    crate::stop::wait_if_stopped_elsewhere();
    marked.and(saved)?;
    Ok(results)
}

/// A warning when pruning by age did not trust this run's clock (see `prune::trusted_now`).
pub fn clock_ahead_line(report: &prune::Report) -> Option<String> {
    let last = report.clock_ahead?;
    Some(format!(
        "this clock is more than the --keep window ahead of the last run ({}): pruning by age \
         went by that time instead (a clock that jumped ahead must not age out recent \
         snapshots); the next run goes by its own clock if it agrees",
        when::show(std::time::UNIX_EPOCH + Duration::from_secs(last.max(0) as u64))
    ))
}

/// Whether the history remote answered in this run. Pruning relies on what it confirmed, and a
/// confirmation from an earlier run may be of a remote that was recreated or lost since: only a
/// remote that answered now (a push seen stored, or asked for its main) is relied on.
pub enum Heard {
    /// It answered in this run (or there is none).
    Yes,
    /// This run's push to it failed (its error is the run's failure already).
    PushFailed,
    /// It could not be asked: why.
    Unreachable(String),
}

/// What [`prune_now`] did.
pub enum Pruned {
    /// No retention is set.
    Off,
    Done(prune::Report),
    /// Nothing pruned though retention and an earlier confirmation would have: the history
    /// remote did not answer in this run (the line says so).
    Held(String),
}

/// Prune by the retention setting. Never drops what the history remote has not confirmed, and
/// relies on its confirmation only when it answered in this run (`heard`).
pub fn prune_now(store: &mut Store, settings: &Settings, heard: Heard) -> Result<Pruned> {
    let Some(keep) = settings.retention()? else {
        return Ok(Pruned::Off);
    };
    let history = match (&settings.history_remote, heard) {
        (Some(_), Heard::PushFailed) => HistoryRemote::Unasked(remote::confirmed_history(store)),
        (Some(url), Heard::Unreachable(cause)) => {
            return Ok(Pruned::Held(format!(
                "nothing pruned: cannot ask the history remote {} what it has (pruning never \
                 drops what it lacks): {cause}",
                remote::redact(url)
            )));
        }
        (Some(_), Heard::Yes) => HistoryRemote::Confirmed(remote::confirmed_history(store)),
        (None, _) => HistoryRemote::None,
    };
    // The previous run's clock bounds this one's (see `prune::trusted_now`).
    let last_run = state::load(&store.path).last_run.map(|r| r.unix);
    let report = prune::prune(store, keep, history, when::now(), last_run)
        .map_err(|e| e.context("prune"))?;
    if let (Some(url), n @ 1..) = (&settings.history_remote, report.unasked) {
        return Ok(Pruned::Held(format!(
            "nothing pruned: the history remote {} did not confirm what it has in this run, so \
             the {n} older snapshot{} it confirmed before stay (pruning never drops what it \
             lacks; the next run that reaches it prunes)",
            remote::redact(url),
            if n == 1 { "" } else { "s" }
        )));
    }
    Ok(Pruned::Done(report))
}
