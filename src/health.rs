//! Is the backup healthy? What `sqlgit status` shows, and what monitoring checks: the newest
//! snapshot and its age, local history, the last run (or one that started and never finished),
//! and what each remote has not confirmed yet.

use std::time::Duration;

use anyhow::Result;

use crate::remote::{LATEST_TRACKING, pending_history};
use crate::settings::Settings;
use crate::state::{self, Started, State};
use crate::store::{Store, dir_size, lock};
use crate::verify::shape;

pub struct Health {
    pub state: State,
    pub settings: Settings,
    /// The newest snapshot: (commit id, commit time).
    pub newest: Option<(String, i64)>,
    /// Seconds since the newest snapshot.
    pub age: Option<i64>,
    pub local_snapshots: usize,
    pub oldest_local: Option<i64>,
    /// A run that started and is still running (it holds the lock).
    pub in_progress: Option<Started>,
    /// A run that started and never finished (killed, or the machine stopped).
    pub unfinished: Option<Started>,
    /// The process holding the repository's lock now, when it is alive and named itself (any
    /// command that takes the lock, not only a snapshot run).
    pub holder: Option<lock::Holder>,
    /// Snapshot commits the history remote has not confirmed.
    pub pending_history: usize,
    /// Whether the latest remote holds the newest snapshot.
    pub latest_current: bool,
    pub repo_bytes: u64,
    /// Why the backup is unhealthy; empty when it is healthy.
    pub problems: Vec<String>,
}

/// Look at the repository. `max_age`: the newest snapshot, or the last successful run (which
/// found the database unchanged since), must be younger.
pub fn check(store: &Store, max_age: Option<Duration>, now: i64) -> Result<Health> {
    let settings = Settings::load(store);
    let (mut st, unreadable) = state::load_checked(&store.path);
    // Only the remotes configured now.
    st.remotes
        .retain(|role, r| settings.is_current_remote(role, &r.url));
    let ref_problems = crate::store::refcheck::problems(&store.path, store.repo.path());
    let head = match store.head() {
        Err(_) if !ref_problems.is_empty() => anyhow::bail!("{}", ref_problems.join("\n")),
        head => head?,
    };
    let (count, oldest, damaged) = crate::store::walk::count(head.clone(), &store.path);
    let damaged = damaged.map(|e| crate::error::error_line(&e));
    let newest = head
        .as_ref()
        .map(|c| (c.id().to_string(), c.time().seconds()));
    let age = newest.as_ref().map(|(_, t)| (now - t).max(0));
    let holder = lock::holder(&store.path);
    let held = holder.is_some() || lock::is_held(&store.path);
    // A run's record is under way only while its own process holds the lock (a later prune
    // may hold it after the run was killed); a holder that did not name itself (an older
    // sqlgit) is taken for the run only while the run's process lives.
    let holds = |r: &Started| match &holder {
        Some(h) => h.pid == r.pid,
        None => !crate::store::left_by_dead_process(&r.pid.to_string()),
    };
    let (in_progress, unfinished) = match &st.running {
        Some(r) if held && holds(r) => (Some(r.clone()), None),
        Some(r) => (None, Some(r.clone())),
        None => (None, None),
    };
    let mut problems = Vec::new();
    if head.is_none() {
        problems.push("no snapshot yet".to_string());
    }
    problems.extend(damaged);
    problems.extend(ref_problems);
    // The top of the newest snapshot only (verify walks the whole tree).
    let top = head.as_ref().and_then(|c| c.tree().ok());
    let strays = top.map(|t| shape::root_problems(&store.repo, &t));
    if let Some(strays) = strays.filter(|s| !s.is_empty()) {
        problems.push(format!(
            "the newest snapshot's tree holds what sqlgit never writes (a commit made by plain \
             git?), so plain git reads other content than sqlgit: {}; {}",
            strays.join("; "),
            shape::fix(&store.repo)
        ));
    }
    // Only whether each root's object is here: status stays quick (verify looks deeper).
    let missing = crate::store::roots::missing(&store.repo, false)?;
    if let Err(e) = crate::store::roots::fail_if_missing(&missing) {
        problems.push(e.to_string());
    }
    problems.extend(freshness_problem(
        newest.as_ref().map(|(id, t)| (id.as_str(), *t)),
        &st,
        max_age,
        now,
    ));
    if let Some(run) = &unfinished {
        problems.push(format!(
            "the run started at {} did not finish (killed, or the machine stopped)",
            rfc3339(run.unix)
        ));
    } else if let Some(run) = st.last_run.as_ref().filter(|r| !r.ok) {
        problems.push(format!(
            "the last run failed: {}",
            run.error.clone().unwrap_or_default()
        ));
    }
    // It blocks every later run until someone continues or ends it.
    if let Some(h) = holder.as_ref().filter(|h| h.stopped) {
        problems.push(h.describe(now));
    }
    // A damaged record of what the remote confirmed: the remote is asked again by the next run.
    let pending = match crate::store::refcheck::damaged_bookkeeping(store.repo.path())
        .iter()
        .any(|n| n == crate::remote::HISTORY_TRACKING)
    {
        true => 0,
        false => pending_history(store).unwrap_or(0),
    };
    // A git copy (clone --mirror) sqlgit has not adopted: every run refuses it until `init`.
    if crate::store::lostconfig::unadopted_copy(&store.path) {
        problems.push(format!(
            "every snapshot run refuses it: {}",
            crate::store::lostconfig::copy_line(&store.path)
        ));
    } else if head.is_some()
        && st.last_run.is_none()
        && unreadable.is_none()
        && in_progress.is_none()
    {
        problems.push(
            "no run is recorded here (no state file, or one that records no run): what the \
             last runs did is unknown until the next run"
                .to_string(),
        );
    } else if settings.history_remote.is_some()
        && pending > 0
        && in_progress.is_none()
        && st.last_run.as_ref().is_some_and(|r| r.ok)
    {
        problems.push(format!(
            "{pending} snapshot{} not on the history remote (the next run pushes {})",
            if pending == 1 { " is" } else { "s are" },
            if pending == 1 { "it" } else { "them" }
        ));
    }
    if let Some(why) = unreadable {
        problems.push(format!(
            "the state file cannot be read ({why}): what the last runs did is unknown"
        ));
    }
    problems.extend(crate::room::free_room(&store.path).and_then(|room| room.problem(&store.path)));
    if !writable(&store.path, store.repo.path()) {
        problems.push(format!(
            "{} is not writable here: runs can neither snapshot nor record that they failed",
            store.path.display()
        ));
    }
    let latest_current = match (&head, store.repo.refname_to_id(LATEST_TRACKING)) {
        (Some(h), Ok(id)) => store
            .repo
            .find_commit(id)
            .map(|c| c.tree_id() == h.tree_id())
            .unwrap_or(false),
        _ => false,
    };
    Ok(Health {
        settings,
        newest,
        age,
        local_snapshots: count,
        oldest_local: oldest,
        in_progress,
        unfinished,
        holder,
        pending_history: pending,
        latest_current,
        repo_bytes: dir_size(&store.path),
        problems,
        state: st,
    })
}

/// How far in the future a time may be before it is not trusted: a clock set back by NTP.
const FUTURE_SLACK_SECS: i64 = 300;

/// Why the backup is not known to be current, if it is not. A run that found the database
/// unchanged proves the backup as current as one that committed: an idle database is healthy
/// while its runs succeed. Clock readings go by the order of the runs, not by their values: the
/// later evidence wins, so a snapshot dated ahead by a fast clock counts for nothing once a
/// later successful run's clock read earlier (not even after this clock passes that date).
/// Times in the future (a run while the clock was fast) prove nothing either: they would count
/// as 0 s old until the clock caught up.
fn freshness_problem(
    newest: Option<(&str, i64)>,
    st: &State,
    max_age: Option<Duration>,
    now: i64,
) -> Option<String> {
    let trusted = |t: &i64| *t <= now + FUTURE_SLACK_SECS;
    let newest_date = newest.map(|(_, t)| t);
    let success = st.last_success;
    let order = run_order(newest, st);
    // The last successful run vouches for the newest snapshot when it came after it.
    let confirmed = success.is_some_and(|ok| trusted(&ok)) && order != Order::NewestLast;
    if let Some(t) = newest_date.filter(|t| !trusted(t))
        && !confirmed
    {
        return Some(format!(
            "the newest snapshot is dated {}, {} ahead of this clock, and no run has confirmed \
             it since: the clock was wrong then or is now (the next run with the right clock \
             confirms the backup)",
            rfc3339(t),
            humantime::format_duration(Duration::from_secs((t - now) as u64))
        ));
    }
    // The latest evidence whose clock was not ahead.
    let fresh = match order {
        Order::SuccessLast => [newest_date, success],
        Order::NewestLast => [success, newest_date],
        Order::Unknown => {
            let max = [newest_date, success]
                .into_iter()
                .flatten()
                .filter(trusted)
                .max();
            [max, None]
        }
    }
    .into_iter()
    .rev()
    .flatten()
    .find(trusted)?;
    let max = max_age?;
    let fresh_age = (now - fresh).max(0);
    // A later successful run whose clock read earlier than the newest snapshot's date: that
    // snapshot was taken before it.
    let newest_taken = match (newest_date, success) {
        (Some(t), Some(ok)) if confirmed && order == Order::SuccessLast => Some(t.min(ok)),
        (t, _) => t,
    };
    let age = newest_taken
        .filter(trusted)
        .map_or(fresh_age, |t| (now - t).max(0));
    (fresh_age as u64 > max.as_secs()).then(|| {
        format!(
            "the newest snapshot is {} old and no run has confirmed it since (more than {})",
            humantime::format_duration(Duration::from_secs(age as u64)),
            humantime::format_duration(max)
        )
    })
}

/// Which came later in the order of runs: the newest snapshot or the last successful run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    /// The last run succeeded: it came at or after every snapshot.
    SuccessLast,
    /// The last run failed after taking the newest snapshot.
    NewestLast,
    /// A failed run that took no snapshot, or no run recorded: either may be later.
    Unknown,
}

fn run_order(newest: Option<(&str, i64)>, st: &State) -> Order {
    match &st.last_run {
        Some(last) if last.ok => Order::SuccessLast,
        Some(last) if newest.is_some_and(|(id, _)| last.commit.as_deref() == Some(id)) => {
            Order::NewestLast
        }
        _ => Order::Unknown,
    }
}

/// Whether this user may write the repository (and its objects, in `git_dir`: `DIR/.git` for a
/// non-bare clone): a run must.
fn writable(dir: &std::path::Path, git_dir: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    [dir.to_path_buf(), git_dir.join("objects")]
        .iter()
        .all(|p| {
            let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
                return false;
            };
            // SAFETY: access(2) on a NUL-terminated path.
            unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
        })
}

/// A Unix time as RFC 3339 (UTC, seconds).
pub fn rfc3339(unix: i64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64),
    )
    .to_string()
}
