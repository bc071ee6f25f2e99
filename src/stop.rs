//! A run stopped from outside — SIGTERM from cron's `timeout`, systemd's stop timeout or a
//! shutdown, SIGINT, SIGHUP — or stuck where nothing can interrupt it (a libgit2 network call
//! past `--push-timeout`) must still fail loudly: one line on stderr, the failure recorded in
//! the state and metrics files, the failure hook fired, a non-zero exit. Lower modules call
//! [`stop`]; the snapshot job registers, with [`on_stop`], how its failure is recorded, and
//! `verify` its scratch directory, with [`remove_on_stop`]. The repository is left as a
//! `kill -9` would leave it, which the next run repairs by itself.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

type Recorder = Box<dyn Fn(&str) + Send + Sync>;

static RECORDER: Mutex<Option<Recorder>> = Mutex::new(None);
static STOPPING: AtomicBool = AtomicBool::new(false);
static WATCHING: Once = Once::new();
/// Directories removed when the run is stopped.
static SCRATCH: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Remove the directory `dir` (a scratch directory of restored copies) if the run is stopped
/// before the returned guard is dropped.
pub fn remove_on_stop(dir: &Path) -> Scratch {
    let dir = dir.to_path_buf();
    SCRATCH
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(dir.clone());
    Scratch(dir)
}

/// Dropping it forgets the directory [`remove_on_stop`] registered.
pub struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        SCRATCH
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|d| d != &self.0);
    }
}

/// How a stopped run is recorded from now on (replacing an earlier registration: a run records
/// itself one way while it waits for the lock, another once it holds it).
pub fn on_stop(record: impl Fn(&str) + Send + Sync + 'static) {
    if let Ok(mut slot) = RECORDER.lock() {
        *slot = Some(Box::new(record));
    }
}

/// Whether the process is being stopped: a run that finishes meanwhile must not record
/// itself over the stop's record.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// Say why, record it, exit 1. A second caller (a signal during the recording) waits for the
/// first one's exit.
pub fn stop(reason: &str) -> ! {
    if STOPPING.swap(true, Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
    eprintln!("sqlgit: {reason}");
    for dir in SCRATCH.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = std::fs::remove_dir_all(dir);
    }
    if let Ok(slot) = RECORDER.lock()
        && let Some(record) = slot.as_ref()
    {
        record(reason);
    }
    std::process::exit(1)
}

/// Stop the run on SIGTERM, SIGINT or SIGHUP (a thread waits for them; once per process).
/// Children started afterwards keep the default handling (handlers do not survive `exec`).
pub fn watch_signals() {
    WATCHING.call_once(start_watching);
}

fn start_watching() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("sqlgit-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let name = match signal {
                    SIGTERM => "SIGTERM",
                    SIGINT => "SIGINT",
                    _ => "SIGHUP",
                };
                stop(&format!(
                    "stopped by {name} before the run finished (a time limit in cron or \
                     systemd, a shutdown, or by hand): nothing is lost, the next run goes on \
                     from here"
                ));
            }
        });
}

/// A bound on something that cannot be interrupted: past `limit`, the run is stopped with
/// `reason`, unless the returned guard was dropped first.
pub fn deadline(limit: Duration, reason: String) -> Deadline {
    let (cancel, wait) = std::sync::mpsc::channel::<()>();
    let _ = std::thread::Builder::new()
        .name("sqlgit-deadline".into())
        .spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
                stop(&reason);
            }
        });
    Deadline { _cancel: cancel }
}

/// Dropping it lifts the [`deadline`].
pub struct Deadline {
    _cancel: std::sync::mpsc::Sender<()>,
}
