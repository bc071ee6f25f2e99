//! The snapshot run that cron starts, in one place: settings → lock → snapshot → push → prune →
//! record → metrics and hooks.
//!
//! Every step's failure ends up in the returned [`Report`] and is recorded wherever possible:
//! the state file and metrics file say the run failed and the failure hook runs — also when the
//! repository cannot be created or its lock is held past the timeout (the hook and metrics file
//! then come from the flags, or from the repository's settings when it can be read). The
//! repository is opened again after the lock is taken, so a run that waited for another never
//! works from what that run changed (pruned objects, moved refs). A run records that it started
//! before it does anything else, so a run killed midway is visible to `sqlgit status`.
//! Nothing here prints: the caller shows the report.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

use crate::error::error_line;
use crate::remote::{self, PushResult};
use crate::settings::{Flags, Settings};
use crate::snapshot::{self, Outcome, Reading};
use crate::state;
use crate::store::prune;
use crate::store::scrub::Findings;
use crate::store::{Store, lock, pack};
use crate::store::{headrepair, refcheck};
use crate::when;

mod due;
pub mod filtercheck;
mod given;
mod moved;
mod push_prune;
mod record;
mod renamed;
mod repair;
mod unlocked;

pub use due::pushes_due;
use filtercheck::{FilterCheck, Purpose};
use given::{as_configured, refuse_taken_folders, refused_metrics_file, remember, same_set};
pub use given::{refuse_bad_urls, save_settings};
pub use push_prune::{Heard, Pruned, clock_ahead_line, prune_now, push_all};
use record::{Recorder, fold_warnings};
pub use record::{record_push, record_push_if_stopped};
pub use unlocked::{lock_for_push, record_usage_error};
use unlocked::{record_failure_unlocked, unlocked_settings};

/// What a snapshot run is asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    pub repo: PathBuf,
    pub busy_timeout: Duration,
    pub lock_timeout: Duration,
    /// Read every database whole (`--full`).
    pub full: bool,
    /// Settings given as flags (database paths absolute), saved for later runs.
    pub flags: Flags,
}

/// What a run did.
#[derive(Default)]
pub struct Report {
    /// What became of the history remote's history in a new repository.
    pub adopted: Option<remote::Adopted>,
    /// The latest snapshot's commit could not be read and was set aside (see
    /// [`headrepair`]); `adopted` then tells what the history remote gave back.
    pub head_set_aside: bool,
    /// The `shallow` file could not be read and was set aside (see [`headrepair`]).
    pub shallow_set_aside: bool,
    /// The snapshot, when one was taken (a commit, or "unchanged").
    pub outcome: Option<Outcome>,
    pub pushes: Vec<PushResult>,
    pub pruned: Option<prune::Report>,
    /// Size of the repository after pruning, when it pruned.
    pub repo_bytes: u64,
    /// Why the run failed (push failures are in `pushes`).
    pub error: Option<anyhow::Error>,
    /// `error` came after the snapshot was committed with nothing wrong, in the push phase (a
    /// stop, the pushes' records not saved): the run failed only in its pushes, which a later
    /// `sqlgit push` completes.
    pub push_phase: bool,
    /// Problems recording the run (state, metrics, hook): said, never fatal.
    pub warnings: Vec<String>,
    /// Things the user should know that are not problems (a URL password that was not saved).
    pub notes: Vec<String>,
}

impl Report {
    /// Everything succeeded, every push included.
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.pushes.iter().all(|p| p.record.ok)
    }

    /// One line for the state file, the metrics and the hook: the error, or the failed pushes.
    pub fn failure_line(&self) -> Option<String> {
        match &self.error {
            Some(e) => Some(error_line(e)),
            None => push_failure_line(&self.pushes),
        }
    }
}

/// The failed pushes as one line, if any failed.
fn push_failure_line(pushes: &[PushResult]) -> Option<String> {
    let failed: Vec<String> = pushes
        .iter()
        .filter_map(|p| {
            let cause = p.record.error.as_ref()?;
            Some(format!(
                "{} remote {}: {cause}",
                p.role.name(),
                p.record.url
            ))
        })
        .collect();
    (!failed.is_empty()).then(|| format!("push failed: {}", failed.join("; ")))
}

/// Run one snapshot job.
pub fn run(req: &Request) -> Report {
    snapshot::enable_fsync();
    let started = Instant::now();
    let mut report = Report::default();
    // Stopped while it waits for another run's lock: recorded like a lock timeout.
    record::record_if_stopped(
        &req.repo,
        &unlocked_settings(&req.repo, &req.flags),
        started,
        false,
    );
    let (store, _lock) = match open_locked(req) {
        Ok((store, lock, shallow_set_aside, ref_warnings)) => {
            report.shallow_set_aside = shallow_set_aside;
            report.warnings.extend(ref_warnings);
            (store, lock)
        }
        Err(e) => {
            report.error = Some(e);
            record_failure_unlocked(&req.repo, &req.flags, &mut report, started);
            return report;
        }
    };
    let mut store = store;
    let old = Settings::load(&store);
    let req = &Request {
        flags: Flags {
            dbs: as_configured(&req.flags.dbs, &old.dbs),
            ..req.flags.clone()
        },
        ..req.clone()
    };
    let settings = old.merged(&req.flags);
    if let Err(e) = state::mark_started(&store.path, when::unix_now(), false) {
        report.warnings.push(error_line(&e));
    }
    record::record_if_stopped(&store.path, &settings, started, true);
    // A panic (a thread that cannot be started) fails the run like any error: recorded, hooked.
    if let Err(e) = crate::panics::caught(|| steps(&mut store, req, &old, &settings, &mut report)) {
        report.error = Some(e);
    }
    // Stopped: the stop records the run and exits.
    crate::stop::wait_if_stopped_elsewhere();
    let settings = match refused_metrics_file(&old, &settings) {
        Some(_) => Settings {
            metrics_file: old.metrics_file.clone(),
            ..settings
        },
        None => settings,
    };
    let locked = Recorder {
        repo: &req.repo,
        store: Some(&store),
        holds_lock: true,
    };
    locked.finish(&settings, &mut report, started);
    report.warnings = fold_warnings(std::mem::take(&mut report.warnings));
    report
}

/// Create the repository if needed, take its lock, and open it afresh under the lock.
fn open_locked(req: &Request) -> Result<(Store, lock::Lock, bool, Vec<String>)> {
    // A database that is not there, or none at all: do not create a repository for it (a
    // mistyped --repo in a crontab line would leave a new empty repository at each run).
    let empty = std::fs::read_dir(&req.repo).is_ok_and(|mut d| d.next().is_none());
    if req.flags.dbs.is_empty() && (!req.repo.exists() || empty) {
        // A rebuilt machine lost the settings `init` wrote (remotes included) with the
        // repository: giving them again is what continues the history remote.
        return Err(anyhow!(
            "no database given, and {} is no sqlgit repository yet: check --repo; if the \
             machine was rebuilt, set it up again as before, remotes included (sqlgit init \
             --repo {} --db DB --history-remote URL --latest-remote URL), and the next run \
             continues the history remote; for a new repository, name a database (sqlgit \
             snapshot DB --repo DIR)",
            req.repo.display(),
            crate::shellword::path(&req.repo)
        ));
    }

    if !req.repo.exists() {
        // Nor for one that cannot be read as a database (a folder, a device, a text file): a
        // refused run creates no file.
        for db in &req.flags.dbs {
            readable_database(Path::new(db), req.busy_timeout)
                .with_context(|| format!("database {db}"))?;
        }
        given::refuse_bad_urls(&req.flags.history_remote, &req.flags.latest_remote)?;
    }
    let path = match Store::open_or_create(&req.repo) {
        Ok(store) => store.path,
        // Repaired under the lock, below.
        Err(_) if headrepair::shallow_damaged(&req.repo) || refcheck::head_damaged(&req.repo) => {
            req.repo.clone()
        }
        Err(e) => return Err(e),
    };
    let lock = lock::lock(&path, req.lock_timeout)?;
    let shallow_set_aside =
        headrepair::set_aside_shallow(&path).context("set aside the damaged shallow file")?;
    let (mut warnings, main_lost) = refcheck::repair(&path).context("repair the ref files")?;
    let store = Store::open(&path)?;
    if main_lost {
        warnings.extend(refcheck::repoint_lost_main(&store)?);
    }
    store.remove_stale_locks(&lock, req.lock_timeout)?;
    Ok((store, lock, shallow_set_aside, warnings))
}

/// Whether `db` opens and its schema reads, as a snapshot's first step would.
fn readable_database(db: &Path, busy_timeout: Duration) -> Result<()> {
    let conn = crate::dump::source::open(db, busy_timeout)?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
        .context("read schema")
}

fn steps(
    store: &mut Store,
    req: &Request,
    old: &Settings,
    settings: &Settings,
    report: &mut Report,
) -> Result<()> {
    // First: what a failed run left (a partial pack) may be what fills the disk.
    let unindexed = pack::remove_leftovers(&store.objects_dir());
    if !unindexed.warnings.is_empty() || !unindexed.failures.is_empty() {
        // Packs indexed again or set aside: libgit2 still lists the packs it found.
        *store = Store::open(&store.path)?;
    }
    report.warnings.extend(unindexed.warnings);
    // git may have written indexes sqlgit does not read (`pack.indexVersion=1`).
    if crate::store::reindex::upgrade_old_indexes(&store.objects_dir())? > 0 {
        report
            .notes
            .push("rewrote version 1 pack indexes as version 2 (git index-pack)".into());
    }
    report.notes.extend(save_settings(store, old, settings)?);
    if settings.dbs.is_empty() {
        return Err(anyhow!(
            "no database given: name one (sqlgit snapshot DB --repo DIR) or set it with sqlgit init"
        ));
    }
    let mut start = prepare(store, settings, report)?;
    // A one-off run on other databases than the configured ones.
    let one_off =
        !req.flags.dbs.is_empty() && !old.dbs.is_empty() && !same_set(&old.dbs, &req.flags.dbs);
    if one_off {
        refuse_taken_folders(&store.path, &req.flags.dbs, &old.dbs)?;
    } else if !old.dbs.is_empty() {
        moved::refuse_gone(&store.path, &settings.dbs)?;
    }
    let (outcome, mut failures) = take_snapshot(store, req, settings, one_off, &mut start, report)?;
    failures.splice(0..0, unindexed.failures);
    let dropped = remember(store, req, old, settings)?;
    report.warnings.extend(dropped);
    // From here on a stop records this commit (and `failures`, the run's own).
    record::snapshot_taken(&outcome, &failures);
    // And each remote's push, until it finishes, as failed.
    due::pushes_due(settings);
    if one_off {
        report.notes.push(format!(
            "snapshotted {} only; the repository's databases stay {} (change them with \
             sqlgit init --repo {} --db …)",
            req.flags.dbs.join(", "),
            old.dbs.join(", "),
            crate::shellword::repo(&store.path)
        ));
    }
    report.outcome = Some(outcome);
    // A push that fails keeps the commit; the next run catches up. Still a failure.
    // A history remote that could not be continued is not pushed: its failure is that.
    let adopt_failed = start.adopt_failed.as_ref().map(error_line);
    let unreachable = match (&report.adopted, &adopt_failed) {
        (Some(remote::Adopted::Deferred(cause)), _) => Some(cause.as_str()),
        (_, Some(line)) => Some(line.as_str()),
        _ => None,
    };
    report.pushes = match push_all(store, settings, unreachable) {
        Ok(pushes) => pushes,
        // The pushes went out but their records were not saved (a full disk): a push phase
        // failure, unless the snapshot failed already (that failure is kept first).
        Err(e) if failures.is_empty() => {
            report.push_phase = true;
            return Err(e);
        }
        Err(e) => return Err(anyhow!("{}; then {}", failures.join("; "), error_line(&e))),
    };
    // What the history remote confirmed counts only if it answered in this run.
    let heard = match report
        .pushes
        .iter()
        .any(|p| p.role == remote::Role::History && !p.record.ok)
    {
        true => Heard::PushFailed,
        false => Heard::Yes,
    };
    match prune_now(store, settings, heard)? {
        Pruned::Done(p) => {
            report.warnings.extend(clock_ahead_line(&p));
            report.warnings.extend(p.damaged.iter().cloned());
            report.repo_bytes = crate::store::dir_size(&store.path);
            report.pruned = Some(p);
        }
        Pruned::Held(line) => report.warnings.push(line),
        Pruned::Off => {}
    }
    // One pack a run: merged geometrically so lookups do not slow down with history's length.
    match crate::store::repack::maintain(store) {
        Ok(0) => {}
        Ok(_) => *store = Store::open(&store.path)?,
        Err(e) => report
            .warnings
            .push(format!("merge small packs: {}", error_line(&e))),
    }
    if !failures.is_empty() {
        return Err(anyhow!(failures.join("; ")));
    }
    Ok(())
}

/// What a run found before its snapshot.
struct Start {
    /// The latest snapshot's commit was unreadable and set aside (see [`repair`]).
    damaged_head: Option<headrepair::SetAside>,
    /// The history remote's history could not be continued (the snapshot is still taken).
    adopt_failed: Option<anyhow::Error>,
    /// Failure lines for history lost to damage, reported when the run ends.
    head_lost: Vec<String>,
}

/// Repair damaged history that would fail every run, and let a new repository continue what
/// the history remote has.
fn prepare(store: &mut Store, settings: &Settings, report: &mut Report) -> Result<Start> {
    let remote_copy = settings.history_remote.is_some();
    // The run's network calls, from here to its last push, take --push-timeout together.
    if let Ok(options) = settings.remote_options() {
        remote::share_push_timeout(options.timeout);
    }
    let damaged_head = repair::before_adopt(store, remote_copy, report)?;
    // When that fails, the snapshot is still taken (the run fails afterwards, and the next run
    // tries again).
    let folders = crate::snapshot::db_folders(&settings.dbs);
    let adopt_failed = match remote::adopt(store, settings, &folders) {
        Ok(adopted) => {
            report.adopted = Some(adopted);
            None
        }
        Err(e) => Some(e.context("continue the history remote's snapshots")),
    };
    let head_lost = damaged_head
        .as_ref()
        .and_then(|aside| repair::damaged_head_report(aside, report))
        .into_iter()
        .collect();
    Ok(Start {
        damaged_head,
        adopt_failed,
        head_lost,
    })
}

/// How this run reads the databases: whole when asked or due, else incrementally.
fn choose_reading(store: &Store, req: &Request, full_every: Duration, start: &Start) -> Reading {
    let last_full = state::load(&store.path).last_full_read;
    let packs_rewritten = start
        .damaged_head
        .as_ref()
        .is_some_and(|a| a.packs_rewritten);
    if req.full || packs_rewritten {
        Reading::Full
    } else if last_full.is_none_or(|t| {
        // A time in the future is from a run while the clock was fast: it proves nothing.
        let now = when::unix_now();
        now - t >= i64::try_from(full_every.as_secs()).unwrap_or(i64::MAX) || t > now
    }) {
        Reading::Check
    } else {
        Reading::Incremental
    }
}

/// Take the snapshot; returns it with the run's failure lines so far.
fn take_snapshot(
    store: &mut Store,
    req: &Request,
    settings: &Settings,
    one_off: bool,
    start: &mut Start,
    report: &mut Report,
) -> Result<(Outcome, Vec<String>)> {
    let dbs: Vec<PathBuf> = settings.dbs.iter().map(PathBuf::from).collect();
    let filters = settings.filters();
    let filtercheck = FilterCheck::new(&filters, Purpose::Snapshot);
    if !one_off {
        // The saved filters were written for the configured databases: checked before anything
        // is read, and again in each dump's read transaction, as a pattern a migration left
        // behind lets its values in.
        for db in &dbs {
            filtercheck.add(db, snapshot::db_folder(db), true);
        }
        report.warnings.extend(filtercheck.check_all(store)?);
    }
    let remote_copy = settings.history_remote.is_some();
    let reading = choose_reading(store, req, settings.full_every()?, start);
    if reading != Reading::Incremental || report.shallow_set_aside {
        // Checked with the packs' scrub, by runs that read everything (a walk of the history).
        let cut = repair::cut_damaged_history(store, remote_copy, report)?;
        start.head_lost.extend(cut);
    }
    let others = if one_off {
        snapshot::Others::Keep
    } else {
        snapshot::Others::Drop
    };
    let judge = |i: usize, conn: &rusqlite::Connection| filtercheck.in_transaction(store, i, conn);
    let guard = (!one_off).then_some(&judge as snapshot::Guards);
    let take = |reading| {
        let busy = req.busy_timeout;
        snapshot::take(store, &dbs, busy, &filters, reading, others, guard)
    };
    let outcome = match take(reading) {
        // A damaged object of the previous snapshot (bit rot in its trees) would fail every
        // incremental run: read everything instead, which scrubs the packs and repairs them.
        // Unless the packs could not be opened (too few file descriptors): no damage, and a
        // full read would fail or pass for a repair.
        Err(e)
            if reading != Reading::Full
                && crate::store::previous::is_unreadable(&e)
                && !crate::cause::descriptors_short() =>
        {
            report.warnings.push(format!(
                "{}: read every database whole instead (the damaged objects are rewritten)",
                error_line(&e)
            ));
            take(Reading::Full)?
        }
        taken => taken?,
    };
    if outcome.read_whole {
        let now = when::unix_now();
        state::update(&store.path, |st| st.last_full_read = Some(now)).2?;
    }
    let mut failures: Vec<String> = outcome.mismatch.iter().cloned().collect();
    failures.extend(outcome.unrestorable.iter().map(|line| {
        format!(
            "snapshot {} cannot be restored: {line}",
            crate::store::short_id(outcome.head)
        )
    }));
    failures.append(&mut start.head_lost);
    report
        .warnings
        .extend(outcome.scrub.repaired.iter().cloned());
    report.warnings.extend(outcome.warnings.iter().cloned());
    failures.extend(scrub_failures(&outcome.scrub, settings));
    if outcome.scrub.packs_changed {
        // The repository still had the removed packs open.
        *store = Store::open(&store.path)?;
    }
    Ok((outcome, failures))
}

/// What a scrub found that fails the run: damaged objects no database produced again (the
/// repair removed them), and what could not be checked or repaired.
fn scrub_failures(scrub: &Findings, settings: &Settings) -> Vec<String> {
    let mut failures = scrub.problems.clone();
    if scrub.lost > 0 {
        let remote = match &settings.history_remote {
            Some(url) => format!(
                "only the history remote {url} still holds them: read such a snapshot from a \
                 clone of it, `git clone --bare {word} /tmp/history.git`, then `git -C \
                 /tmp/history.git archive --format=tar <commit> | tar -xO | sqlite3 /tmp/then.db`",
                url = remote::redact(url),
                word = crate::shellword::quote(&remote::redact(url))
            ),
            None => "no history remote is set".to_string(),
        };
        failures.insert(
            0,
            format!(
                "{} damaged object{} in the packs could not be written again (no database \
                 holds their data any more): older snapshots that use them can no longer be \
                 restored from this repository; {remote}",
                scrub.lost,
                if scrub.lost == 1 { "" } else { "s" }
            ),
        );
    }
    failures
}
