//! What a finished run or push leaves for monitoring: the state file, the metrics file and a
//! hook. A snapshot run records itself whatever happened (also before its repository exists);
//! `sqlgit push` records a failure, or the success that completes a run which failed only in
//! its pushes, so `status`, the metrics and the hooks follow the backup, not the command.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use git2::Oid;

use super::Report;
use crate::dump::Summary;
use crate::error::error_line;
use crate::remote::PushResult;
use crate::settings::Settings;
use crate::snapshot::Outcome;
use crate::state::{self, Run};
use crate::store::Store;
use crate::when;

/// The warnings worth saying: each once, and a full disk (which fails every write of the
/// record: start, state, metrics) as one line. A full disk met by a step of the run (merging
/// packs) is said as it is: the record may well have been written.
pub(super) fn fold_warnings(warnings: Vec<String>) -> Vec<String> {
    let mut folded: Vec<String> = Vec::new();
    let mut disk_full = false;
    let of_the_record = |w: &str| w.contains(state::STATE_FILE) || w.starts_with("metrics file");
    for w in warnings {
        if w.contains(crate::error::DISK_FULL) && of_the_record(&w) {
            disk_full = true;
        } else if !folded.contains(&w) {
            folded.push(w);
        }
    }
    if disk_full {
        let full = match crate::room::inode_shortage() {
            Some((short, fix)) => format!("{short} ({fix})"),
            None => "the disk is full".to_string(),
        };
        folded.push(format!(
            "{full}: this run could not be fully recorded in the state file or the metrics \
             file ({})",
            crate::error::DISK_FULL
        ));
    }
    folded
}

/// Where a finished run is recorded.
pub(super) struct Recorder<'a> {
    pub(super) repo: &'a Path,
    /// The repository, when it could be opened.
    pub(super) store: Option<&'a Store>,
    /// Whether this run holds the lock (else another run is live: its start stays recorded).
    pub(super) holds_lock: bool,
}

impl Recorder<'_> {
    /// Record the run (state file), write the metrics file, run the hook. Problems here are
    /// warnings, never a failure of the run.
    pub(super) fn finish(&self, settings: &Settings, report: &mut Report, started: Instant) {
        // A run the stop interrupted (a killed git push returning) leaves the record to it.
        crate::stop::wait_if_stopped_elsewhere();
        let (repo, store) = (self.repo, self.store);
        let ok = report.ok();
        let failure = report.failure_line();
        let mut run = Run {
            unix: when::unix_now(),
            ok,
            error: failure.clone(),
            duration_seconds: started.elapsed().as_secs_f64(),
            ..Run::default()
        };
        let taken = report
            .outcome
            .as_ref()
            .map(|o| (o.commit, o.summary))
            .or_else(|| stopped_after_snapshot().map(|t| (t.commit, t.summary)));
        let holds_lock = self.holds_lock;
        let push_only = !ok && (report.error.is_none() || report.push_phase);
        if !ok {
            // A stop while the failure hook runs keeps this (see `record_if_stopped`).
            TOLD_PUSH_ONLY.store(push_only, Ordering::SeqCst);
        }
        let (st, run, mut warnings) = record_state(repo, store, settings, move |st| {
            if let Some((commit, summary)) = taken {
                run.commit = commit.map(|c| c.to_string());
                run.changed = commit.is_some();
                run.tables = summary.tables;
                run.rows = summary.rows;
                run.bytes = summary.bytes;
            } else if let Some(last) = &st.last_run {
                // No snapshot taken: the figures stay the last snapshot's (the metrics say so).
                (run.tables, run.rows, run.bytes) = (last.tables, last.rows, last.bytes);
            }
            run.push_only = push_only;
            run.read_unix = run.push_only.then_some(run.unix);
            if ok {
                st.last_success = Some(run.unix);
            }
            st.last_run = Some(run.clone());
            if holds_lock {
                st.running = None;
            }
            super::due::record(st, run.error.as_deref());
            run
        });
        let hook = if ok {
            &settings.on_success
        } else {
            &settings.on_failure
        };
        let told = Told {
            repo,
            store,
            hook: hook.as_deref(),
            failure: failure.as_deref(),
        };
        warnings.extend(told.publish(settings, &st, &run));
        report.warnings.extend(warnings);
    }
}

/// Change the state file with `change` (under its own lock: see [`state::update`]), forgetting
/// the remotes no longer configured (`--history-remote ""`; not when the config is lost). A repository that cannot be
/// opened is not written, but its state file is still read: the metrics keep the last
/// success. Returns the state, what `change` returned, and a warning when it was not saved.
fn record_state<T>(
    repo: &Path,
    store: Option<&Store>,
    settings: &Settings,
    change: impl FnOnce(&mut state::State) -> T,
) -> (state::State, T, Vec<String>) {
    // A repository that lost its config lost the settings, not its remotes: the records of
    // them name the remotes in the command that writes the config again.
    let settings_known = !crate::store::lostconfig::config_lost(store.map_or(repo, |s| &s.path));
    let change = |st: &mut state::State| {
        if settings_known {
            st.remotes
                .retain(|role, r| settings.is_current_remote(role, &r.url));
        }
        change(st)
    };
    let Some(store) = store else {
        let mut st = state::load(repo);
        let out = change(&mut st);
        return (st, out, Vec::new());
    };
    let (st, out, saved) = state::update(&store.path, change);
    (st, out, saved.err().iter().map(error_line).collect())
}

/// What this run's snapshot step made, once it is done: a run stopped after it (during a push,
/// pruning or recording) records and hooks its commit and figures, as a run whose push failed
/// does — failed only in its pushes (a later `sqlgit push` completes it), unless the snapshot
/// step itself failed (`failures`).
#[derive(Clone)]
struct Taken {
    commit: Option<Oid>,
    summary: Summary,
    failures: Vec<String>,
}

static TAKEN: Mutex<Option<Taken>> = Mutex::new(None);

/// Whether the failure the run recorded (and is telling its hook) was only in its pushes.
static TOLD_PUSH_ONLY: AtomicBool = AtomicBool::new(false);

/// Note the snapshot step's outcome, and the run's failures so far, for [`record_if_stopped`].
pub(super) fn snapshot_taken(outcome: &Outcome, failures: &[String]) {
    *TAKEN.lock().unwrap_or_else(|e| e.into_inner()) = Some(Taken {
        commit: outcome.commit,
        summary: outcome.summary,
        failures: failures.to_vec(),
    });
}

fn stopped_after_snapshot() -> Option<Taken> {
    TAKEN.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Why a stopped run failed, and whether only in its pushes: stopped while telling a failure
/// it recorded, that cause stays (the stop added to it); stopped after its commit, the run
/// failed only in its pushes unless its snapshot step failed (that failure is kept first).
fn stopped_cause(reason: &str, told: Option<&str>) -> (anyhow::Error, bool) {
    if let Some(line) = told {
        let push_only = TOLD_PUSH_ONLY.load(Ordering::SeqCst);
        return (anyhow::anyhow!("{line}; then {reason}"), push_only);
    }
    match stopped_after_snapshot() {
        Some(t) if !t.failures.is_empty() => (
            anyhow::anyhow!("{}; then {reason}", t.failures.join("; ")),
            false,
        ),
        Some(_) => (anyhow::anyhow!("{reason}"), true),
        None => (anyhow::anyhow!("{reason}"), false),
    }
}

/// A run stopped by a signal, or by a deadline nothing could interrupt, is recorded as a failed
/// run like any other (see [`crate::stop`]).
/// `holds_lock`: whether the run holds the repository's lock (else it is waiting for it, and
/// the live run's start stays recorded).
pub(super) fn record_if_stopped(
    repo: &Path,
    settings: &Settings,
    started: Instant,
    holds_lock: bool,
) {
    let (repo, settings) = (repo.to_path_buf(), settings.clone());
    crate::stop::on_stop(move |reason| {
        let store = Store::open(&repo).ok();
        // Stopped while telling a failure it recorded: that cause stays, its hook is not fired
        // again (see `crate::stop::failure_told`).
        let told = crate::stop::told_failure();
        let settings = Settings {
            on_failure: settings.on_failure.clone().filter(|_| told.is_none()),
            ..settings.clone()
        };
        let (error, push_phase) = stopped_cause(reason, told.as_deref());
        let mut report = Report {
            error: Some(error),
            push_phase,
            ..Report::default()
        };
        let stopped = Recorder {
            repo: &repo,
            store: store.as_ref(),
            holds_lock,
        };
        stopped.finish(&settings, &mut report, started);
        for w in fold_warnings(report.warnings) {
            tell!("sqlgit: warning: {w}");
        }
    });
    crate::stop::watch_signals();
}

/// A `sqlgit push` stopped by a signal (or a deadline) under the lock is recorded as a failed
/// push (see [`record_push`]): a later push that completes it makes the run a success.
pub fn record_push_if_stopped(repo: &Path, settings: &Settings, started: Instant) {
    let (repo, settings) = (repo.to_path_buf(), settings.clone());
    crate::stop::on_stop(move |reason| {
        let Ok(store) = Store::open(&repo) else {
            return;
        };
        if crate::stop::told_failure().is_some() {
            return; // the push's failure is recorded and its hook running
        }
        let error = anyhow::anyhow!("{reason}");
        for w in fold_warnings(record_push(&store, &settings, Some(&error), &[], started)) {
            tell!("sqlgit: warning: {w}");
        }
    });
    crate::stop::watch_signals();
}

/// What a finished run or push tells monitoring: the state file, the metrics file, a hook.
struct Told<'a> {
    repo: &'a Path,
    store: Option<&'a Store>,
    hook: Option<&'a str>,
    failure: Option<&'a str>,
}

impl Told<'_> {
    /// Write the metrics file from `st` (saved), run the hook with `run`'s variables. Returns
    /// the problems (warnings: recording never fails a run).
    fn publish(&self, settings: &Settings, st: &state::State, run: &Run) -> Vec<String> {
        let mut warnings = Vec::new();
        // One name per repository however `--repo` was spelled (metrics of several
        // repositories share a file by it).
        let path = self.store.map_or(self.repo, |s| s.path.as_path());
        let repo_path = path
            .canonicalize()
            .or_else(|_| std::path::absolute(path))
            .unwrap_or_else(|_| path.to_path_buf());
        let repo_label = state::path_label(&repo_path);
        if let Some(line) = self.failure {
            // Recorded: a stop from now on keeps this cause and fires no second hook.
            crate::stop::failure_told(line);
        }
        if let Some(metrics) = &settings.metrics_file {
            let repository = match self.store {
                Some(s) => Some((s.local_snapshots(), crate::store::dir_size(&s.path))),
                // A repository git cannot open (a syntax error in its config) is still there:
                // its figures stay the last ones told, not 0.
                None if self.repo.is_dir() => None,
                None => Some((0, 0)),
            };
            let keep: &[&str] = match repository {
                Some(_) => &[],
                None => &state::REPOSITORY_METRICS,
            };
            let text = state::metrics(st, &repo_label, repository);
            let label = state::metrics_label(&repo_label);
            let path = Path::new(metrics);
            crate::room::writes_file(path);
            if let Err(e) = crate::metricsfile::write(path, &text, &label, keep) {
                warnings.push(error_line(&e.context("metrics file")));
            }
        }
        if let Some(cmd) = self.hook {
            let vars = state::hook_vars(&repo_path, run, self.failure);
            if let Err(e) = state::run_hook(cmd, &vars) {
                warnings.push(error_line(&e));
            }
        }
        warnings
    }
}

/// Record a `sqlgit push` (the caller holds the lock and has saved the push records; `error`:
/// why it could not push at all). A failed push is recorded as a failed run (state, metrics,
/// failure hook), the last snapshot's figures kept — unless the last run failed for another
/// reason, which stays recorded (the hook still fires). Every failure of a push (`error` too:
/// a stop, the history remote not continued, the push records not saved) is one in the push
/// phase: a push that completes what the last run failed to push makes that run a success
/// (success hook), with that run's time as the last success; any other successful push only
/// refreshes the metrics file. Returns warnings.
pub fn record_push(
    store: &Store,
    settings: &Settings,
    error: Option<&anyhow::Error>,
    pushes: &[PushResult],
    started: Instant,
) -> Vec<String> {
    // A push the stop interrupted (its git killed) leaves the record to the stop.
    crate::stop::wait_if_stopped_elsewhere();
    let failure = error
        .map(error_line)
        .or_else(|| super::push_failure_line(pushes));
    let change = |st: &mut state::State| push_into(st, store, settings, &failure, started);
    let (st, (run, hook), mut warnings) = record_state(&store.path, Some(store), settings, change);
    let told = Told {
        repo: &store.path,
        store: Some(store),
        hook,
        failure: failure.as_deref(),
    };
    warnings.extend(told.publish(settings, &st, &run));
    warnings
}

/// [`record_push`]'s change of the state: the run to tell and the hook to run.
fn push_into<'s>(
    st: &mut state::State,
    store: &Store,
    settings: &'s Settings,
    failure: &Option<String>,
    started: Instant,
) -> (Run, Option<&'s str>) {
    if st
        .running
        .as_ref()
        .is_some_and(|r| r.pid == std::process::id())
    {
        st.running = None;
    }
    super::due::record(st, failure.as_deref());
    let mut run = st.last_run.clone().unwrap_or_default();
    let hook = match failure {
        // The last run failed for another reason (a missing database, a bad setting): that
        // cause stays recorded until a run snapshots; this push's failure is told by its
        // hook and by the remotes' push records.
        Some(_) if st.last_run.as_ref().is_some_and(|r| !r.ok && !r.push_only) => {
            settings.on_failure.as_deref()
        }
        Some(line) => {
            // Until a push completes it, the backup is as old as the last run that read the
            // database (a push never reads it).
            let read_unix = if run.ok {
                Some(run.unix)
            } else {
                run.read_unix
            };
            run = Run {
                unix: when::unix_now(),
                ok: false,
                error: Some(line.clone()),
                duration_seconds: started.elapsed().as_secs_f64(),
                push_only: true,
                read_unix,
                ..run
            };
            st.last_run = Some(run.clone());
            settings.on_failure.as_deref()
        }
        None if !run.ok && run.push_only => {
            complete_run(store, st, &mut run);
            settings.on_success.as_deref()
        }
        None => None,
    };
    (run, hook)
}

/// A push completed `run`, which had failed only in its pushes: it becomes a success, as
/// fresh as the snapshot run that read the database (not this push, which never reads it).
fn complete_run(store: &Store, st: &mut state::State, run: &mut Run) {
    run.ok = true;
    run.error = None;
    run.push_only = false;
    if run.commit.is_some() {
        // `push --reroot` gave the run's snapshot a new id: name the one pushed.
        if let Ok(Some(head)) = store.head() {
            run.commit = Some(head.id().to_string());
        }
    }
    if let Some(read) = run.read_unix.take() {
        st.last_success = st.last_success.max(Some(read));
    }
    st.last_run = Some(run.clone());
}

#[cfg(test)]
mod tests {
    use super::fold_warnings;

    #[test]
    fn a_full_disk_is_one_warning_and_repeats_are_said_once() {
        let full = |what: &str| format!("{what}: No space left on device (os error 28)");
        let merge = full("merge small packs: write pack");
        let folded = fold_warnings(vec![
            full("write /r/sqlgit-state.json"),
            "hook failed".into(),
            merge.clone(),
            full("write /r/.sqlgit-state.json.tmp"),
            full("metrics file: write /m.prom"),
            "hook failed".into(),
        ]);
        assert_eq!(folded.len(), 3, "{folded:?}");
        assert_eq!(folded[0], "hook failed");
        // A step of the run that met a full disk is named, not taken for the record.
        assert_eq!(folded[1], merge);
        assert!(folded[2].starts_with("the disk is full"), "{folded:?}");
    }
}
