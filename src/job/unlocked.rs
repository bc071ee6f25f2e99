//! A run or push that records itself before it holds the repository's lock: it could not
//! create the repository, another run held the lock past the timeout, it was stopped while it
//! waited, or its command line did not parse. Its settings come from the repository when it can
//! be read, else from the flags, and another user's repository is left unrecorded.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::anyhow;

use super::Report;
use super::record::{self, Recorder, fold_warnings, record_push};
use crate::settings::{Flags, Settings};
use crate::store::{Store, lock};

/// The settings a run records itself with before it holds the lock: the repository's, if it
/// can be read, under the flags; else the flags alone.
pub(super) fn unlocked_settings(repo: &Path, flags: &Flags) -> Settings {
    match Store::open(repo) {
        Ok(store) => Settings::load(&store).merged(flags),
        // A config git cannot parse, or HEAD gone: the saved hook and metrics file still
        // tell the failure.
        Err(_) => Settings::load_lenient(repo).merged(flags),
    }
}

/// Record a run (or push) that failed without the lock: it could not create the repository,
/// or another run held the lock past the timeout. The live run's start stays recorded.
pub(super) fn record_failure_unlocked(
    repo: &Path,
    flags: &Flags,
    report: &mut Report,
    started: Instant,
) {
    if owned_by_another_user(repo) {
        // Another user's repository (an admin's `sudo sqlgit snapshot`, or the job user's run
        // on a repository root took over): its state file and its saved hook and metrics file
        // are its owner's, not replaced or run as this user. The hook and metrics file given on
        // this command line are this user's own: they tell the failure.
        let settings = Settings::default().merged(flags);
        let unlocked = Recorder {
            repo,
            store: None,
            holds_lock: false,
        };
        unlocked.finish(&settings, report, started);
        return;
    }
    let store = open_to_record(repo);
    let settings = unlocked_settings(repo, flags);
    let unlocked = Recorder {
        repo,
        store: store.as_ref(),
        holds_lock: false,
    };
    unlocked.finish(&settings, report, started);
}

/// The repository to record a failure in, if it is sqlgit's: also one that lost its config,
/// whose state file still tells status and the metrics.
fn open_to_record(repo: &Path) -> Option<Store> {
    Store::open(repo).ok().or_else(|| {
        crate::store::lostconfig::config_lost(repo)
            .then(|| Store::open_read(repo).ok())
            .flatten()
    })
}

/// Whether the repository folder belongs to a user other than the one running sqlgit.
pub(super) fn owned_by_another_user(repo: &Path) -> bool {
    crate::output::other_owner(repo).is_some()
}

/// The lock for `sqlgit push`, which records itself like a run: stopped while it waits, or
/// given up after `timeout`, it is a failed push (state, metrics, failure hook: see
/// [`record_push`]), which a later push completes. Err: the recorded report (its error, and
/// warnings from recording it).
pub fn lock_for_push(
    repo: &Path,
    flags: &Flags,
    timeout: Duration,
    started: Instant,
) -> std::result::Result<lock::Lock, Box<Report>> {
    let settings = unlocked_settings(repo, flags);
    record::record_push_if_stopped(repo, &settings, started);
    lock::lock(repo, timeout).map_err(|e| {
        let mut report = Report {
            error: Some(e),
            ..Report::default()
        };
        if !owned_by_another_user(repo)
            && let Some(store) = open_to_record(repo)
        {
            let error = report.error.as_ref();
            report.warnings = record_push(&store, &settings, error, &[], started);
        }
        report.warnings = fold_warnings(std::mem::take(&mut report.warnings));
        Box::new(report)
    })
}

/// A cron line whose flags no longer parse (a typo, a flag an upgrade renamed) fails before any
/// run: record it like a failed run of the repository it names, when that repository exists,
/// so the failure hook fires and status and metrics show it. Returns warnings.
pub fn record_usage_error(repo: &Path, line: &str) -> Vec<String> {
    let Some(store) = open_to_record(repo) else {
        return Vec::new();
    };
    let settings = Settings::load(&store);
    let mut report = Report {
        error: Some(anyhow!("{line}")),
        ..Report::default()
    };
    let unlocked = Recorder {
        repo,
        store: Some(&store),
        holds_lock: false,
    };
    unlocked.finish(&settings, &mut report, Instant::now());
    report.warnings
}
