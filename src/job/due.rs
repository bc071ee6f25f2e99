//! The remotes a run must push, from the moment their pushes are due (a snapshot run's once
//! its snapshot is taken, `sqlgit push`'s once it holds the lock) until each has finished. A run
//! that ends any other way — an error, a stop (a signal, a deadline), a panic — records each
//! push that did not finish as failed at this run's time, with the run's cause: the state file,
//! the metrics and `status` never keep the last run's success for a push this run cut off.
//! Each push is also recorded failed in the state file just before it starts, so that a run
//! killed outright (`kill -9`, out of memory) leaves the same in `status`.

use std::sync::Mutex;

use anyhow::Result;

use crate::remote::{PushRecord, PushResult, redact};
use crate::settings::Settings;
use crate::state::{self, State};
use crate::store::Store;
use crate::when;

/// This run's due pushes, once due.
static DUE: Mutex<Option<Due>> = Mutex::new(None);

struct Due {
    /// When the pushes started (when they became due, until then).
    unix: i64,
    /// Each configured remote: its role, its URL (redacted), and how its push ended.
    remotes: Vec<(String, String, Option<PushRecord>)>,
}

/// What a push recorded just before it starts says until it finishes.
const STARTED: &str = "the push did not finish: the run pushing it was killed, or is still pushing";

fn due() -> std::sync::MutexGuard<'static, Option<Due>> {
    DUE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every remote `settings` configures is to be pushed by this run from now on.
pub fn pushes_due(settings: &Settings) {
    let remotes = [
        ("history", &settings.history_remote),
        ("latest", &settings.latest_remote),
    ]
    .into_iter()
    .filter_map(|(role, url)| Some((role.to_string(), redact(url.as_ref()?), None)))
    .collect();
    *due() = Some(Due {
        unix: when::unix_now(),
        remotes,
    });
}

/// The pushes start at `now`: each one not finished is recorded failed in the state file (see
/// the module's comment) until [`finished`] records how it ended.
pub(super) fn starting(store: &Store, now: i64) -> Result<()> {
    let started: Vec<(String, PushRecord)> = {
        let mut due = due();
        let Some(due) = due.as_mut() else {
            return Ok(());
        };
        due.unix = now;
        let open = due.remotes.iter().filter(|(_, _, done)| done.is_none());
        open.map(|(role, url, _)| (role.clone(), failed(now, url, STARTED.to_string())))
            .collect()
    };
    state::update(&store.path, |st| st.remotes.extend(started)).2
}

/// `result`'s push finished: record it (unless the run is being recorded already: a stop).
pub(super) fn finished(store: &Store, result: &PushResult) -> Result<()> {
    // A push whose git the stop killed failed for no reason of the remote's: the stop records it.
    crate::stop::wait_if_stopped_elsewhere();
    let role = result.role.name();
    {
        let mut due = due();
        let Some(due) = due.as_mut() else {
            return Ok(());
        };
        if let Some(slot) = due.remotes.iter_mut().find(|(r, _, _)| r == role) {
            slot.2 = Some(result.record.clone());
        }
    }
    let record = |st: &mut State| {
        st.remotes.insert(role.to_string(), result.record.clone());
    };
    state::update(&store.path, record).2
}

/// Record in `st` how each due push of this run ended, and each that did not finish as failed
/// now with the run's `failure` (once: the run is being recorded).
pub(super) fn record(st: &mut State, failure: Option<&str>) {
    let Some(due) = due().take() else {
        return;
    };
    let cause = match failure {
        Some(line) => format!("the push did not finish: {line}"),
        None => "the push did not finish".to_string(),
    };
    for (role, url, done) in due.remotes {
        let record = done.unwrap_or_else(|| failed(due.unix, &url, cause.clone()));
        st.remotes.insert(role, record);
    }
}

fn failed(unix: i64, url: &str, error: String) -> PushRecord {
    PushRecord {
        unix,
        ok: false,
        error: Some(error),
        url: url.to_string(),
    }
}
