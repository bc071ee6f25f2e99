//! A run stopped from outside — SIGTERM from cron's `timeout`, systemd's stop timeout or a
//! shutdown, SIGINT, SIGHUP — or stuck where nothing can interrupt it (a libgit2 network call
//! past `--push-timeout`) must still fail loudly: one line on stderr, the failure recorded in
//! the state and metrics files, the failure hook fired, a non-zero exit. Lower modules call
//! [`stop`]; the snapshot job registers, with [`on_stop`], how its failure is recorded, and
//! commands their temporary files and directories with [`remove_on_stop`]. The repository is
//! left as a `kill -9` would leave it, which the next run repairs by itself; the run's git
//! commands are asked to end first (SIGTERM, [`GIT_GRACE`]), so that a remote's git, which no
//! run of ours repairs, removes its lock files. Every command
//! watches for signals the same way ([`watch_command`], called once where commands are
//! dispatched); its [`Kind`] decides what the line says, and its error exit code is kept (2 for
//! `diff` and `history`, whose 1 means an answer).
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

type Recorder = Box<dyn Fn(&str) + Send + Sync>;

static RECORDER: Mutex<Option<Recorder>> = Mutex::new(None);
static STOPPING: AtomicBool = AtomicBool::new(false);
static WATCHING: Once = Once::new();
/// What the process is (a [`Kind`] as u8), and its exit code when stopped.
static KIND: AtomicU8 = AtomicU8::new(Kind::Run as u8);
static EXIT_CODE: AtomicI32 = AtomicI32::new(1);
/// Files and directories removed when the run is stopped, by their guard's number.
static SCRATCH: Mutex<Vec<(u64, PathBuf)>> = Mutex::new(Vec::new());
static SCRATCH_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What a command leaves when it is stopped, which its line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A run that records itself (`snapshot`, `push`, `verify`): the next run goes on from it.
    Run,
    /// A command that only reads (`cat`, `log`, `diff`, `query`…): nothing was changed.
    Reading,
    /// A command whose change is made in one step at its end (`restore`, `prune`, `init`):
    /// stopped, it was not made, or it was made whole.
    Changing,
}

/// Remove `paths` (temporary files, or directories with everything in them) if the run is
/// stopped before the returned guard is dropped. Each must be a name this process alone uses.
pub fn remove_on_stop(paths: impl IntoIterator<Item = PathBuf>) -> Scratch {
    let id = SCRATCH_IDS.fetch_add(1, Ordering::SeqCst);
    SCRATCH
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(paths.into_iter().map(|p| (id, p)));
    Scratch(id)
}

/// Dropping it forgets what [`remove_on_stop`] registered.
pub struct Scratch(u64);

impl Drop for Scratch {
    fn drop(&mut self) {
        SCRATCH
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, _)| *id != self.0);
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

/// Process groups of the hooks running now, and the thread stopping the run.
static HOOKS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
static STOPPER: Mutex<Option<std::thread::ThreadId>> = Mutex::new(None);

/// A hook started with [`spawn_hook`]; dropping it (once it has ended) forgets it.
pub struct Hook {
    pub child: std::process::Child,
}

impl Drop for Hook {
    fn drop(&mut self) {
        let group = self.child.id() as i32;
        HOOKS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&g| g != group);
    }
}

/// Start `cmd` (made the leader of its own process group) as a hook that a stop of the run
/// ends with it: a success hook must not finish after the run was recorded as failed. None when
/// the run is being stopped: only the stop's own (failure) hook runs then.
pub fn spawn_hook(cmd: &mut std::process::Command) -> std::io::Result<Option<Hook>> {
    let mut hooks = HOOKS.lock().unwrap_or_else(|e| e.into_inner());
    let stopper = *STOPPER.lock().unwrap_or_else(|e| e.into_inner());
    if stopping() && stopper != Some(std::thread::current().id()) {
        return Ok(None);
    }
    let child = cmd.spawn()?;
    hooks.push(child.id() as i32);
    Ok(Some(Hook { child }))
}

/// A thread the stop interrupted waits here for the stop's exit: returning, it could end the
/// process with exit 0 first (its hook was killed), or record the run over the stop's record
/// (its git push was killed: a cause-less "git push failed", a second error line).
pub fn wait_if_stopped_elsewhere() {
    let stopper = *STOPPER.lock().unwrap_or_else(|e| e.into_inner());
    if stopping() && stopper != Some(std::thread::current().id()) {
        loop {
            std::thread::park();
        }
    }
}

/// Process groups of the git commands running now (each in a session of its own), and the
/// failure a run has already recorded and is telling its failure hook.
static GIT_GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
static FAILURE_TOLD: Mutex<Option<String>> = Mutex::new(None);

/// End the process group `group` (a git command that leads it: git, its ssh, its
/// `git-remote-https`, a local remote's `git-receive-pack`) with [`end_git_groups`] if the run
/// is stopped before the returned guard is dropped: a push left running outside the lock would
/// race the next run's.
pub fn kill_group_on_stop(group: i32) -> GitGroup {
    GIT_GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(group);
    if stopping() {
        // Started after the stop ended the others: it has taken no lock yet.
        // SAFETY: kill(2) of the group this git command leads.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
    GitGroup(group)
}

/// How long git commands asked to end (SIGTERM) get before they are killed (SIGKILL). git
/// removes its lock files from its signal handlers, in far less; killed, it leaves them, and a
/// `refs/heads/main.lock` left in a local remote by its `git-receive-pack` fails every later
/// push to it.
pub const GIT_GRACE: Duration = Duration::from_secs(1);

/// End the git commands leading the process groups `groups`: SIGTERM, then SIGKILL for what is
/// left of them after [`GIT_GRACE`]. `reap` is called while waiting: a group whose leader has
/// exited lives on as long as nobody collects it.
pub fn end_git_groups(groups: &[i32], mut reap: impl FnMut()) {
    // SAFETY: kill(2) of a git command's own process group (signal 0 only asks whether it
    // still exists).
    let signal = |group: i32, signal| unsafe { libc::kill(-group, signal) } == 0;
    let alive = || groups.iter().any(|&g| signal(g, 0));
    for &group in groups {
        signal(group, libc::SIGTERM);
    }
    let until = std::time::Instant::now() + GIT_GRACE;
    while alive() && std::time::Instant::now() < until {
        reap();
        std::thread::sleep(Duration::from_millis(5));
    }
    for &group in groups.iter().filter(|&&g| signal(g, 0)) {
        signal(group, libc::SIGKILL);
    }
}

/// Dropping it forgets the group [`kill_group_on_stop`] registered.
pub struct GitGroup(i32);

impl Drop for GitGroup {
    fn drop(&mut self) {
        GIT_GROUPS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&g| g != self.0);
    }
}

/// The run has recorded its failure (`line`) and is telling its failure hook: a stop now keeps
/// that cause (adding itself to it), lets the hook finish, and fires no second one.
pub fn failure_told(line: &str) {
    *FAILURE_TOLD.lock().unwrap_or_else(|e| e.into_inner()) = Some(line.to_string());
}

/// The failure the run recorded before it was stopped, if any (see [`failure_told`]).
pub fn told_failure() -> Option<String> {
    FAILURE_TOLD
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Wait (up to the hooks' own time limit and a little) for the failure hook running now.
fn wait_for_hooks() {
    let until = std::time::Instant::now() + Duration::from_secs(130);
    let alive = || {
        HOOKS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            // SAFETY: kill(2) with signal 0 only asks whether the group still exists.
            .any(|&g| unsafe { libc::kill(-g, 0) } == 0)
    };
    while alive() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kill the hooks running now, with everything they started.
fn kill_hooks() {
    for &group in HOOKS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        // SAFETY: kill(2) of a hook's own process group (its id is the hook's pid).
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
}

/// Say why, record it, exit 1. A second caller (a signal during the recording) waits for the
/// first one's exit.
pub fn stop(reason: &str) -> ! {
    if STOPPING.swap(true, Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
    *STOPPER.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::thread::current().id());
    // Asked first: killed, a local remote's receive-pack would leave its ref locked there.
    // Their threads collect them, and wait in `wait_if_stopped_elsewhere` for this exit.
    let groups = GIT_GROUPS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    end_git_groups(&groups, || {});
    let told = told_failure();
    match &told {
        // The failure hook already running carries the real cause: it finishes.
        Some(line) => tell!("sqlgit: {line}\nsqlgit: {reason}"),
        None => {
            kill_hooks();
            tell!("sqlgit: {reason}");
        }
    }
    for (_, path) in SCRATCH.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
            _ => std::fs::remove_file(path),
        };
    }
    if let Ok(slot) = RECORDER.lock()
        && let Some(record) = slot.as_ref()
    {
        record(reason);
    }
    if told.is_some() {
        wait_for_hooks();
    }
    std::process::exit(EXIT_CODE.load(Ordering::SeqCst))
}

/// Watch for signals (see [`watch_signals`]) in a command of this `kind`, which exits with
/// `exit_code` when stopped.
pub fn watch_command(kind: Kind, exit_code: i32) {
    KIND.store(kind as u8, Ordering::SeqCst);
    EXIT_CODE.store(exit_code, Ordering::SeqCst);
    watch_signals();
}

/// Stop the run on SIGTERM, SIGINT or SIGHUP (a thread waits for them; once per process), and
/// on a SIGBUS (see [`watch_bus_errors`]).
/// Children started afterwards keep the default handling (handlers do not survive `exec`).
pub fn watch_signals() {
    WATCHING.call_once(|| {
        start_watching();
        watch_bus_errors();
    });
}

/// The write end of the pipe the SIGBUS handler wakes [`watch_bus_errors`]'s thread with.
static BUS_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// A file read through a memory map (the database's pages, libgit2's packs) that another
/// process cuts short under the map faults the reading thread with SIGBUS, which would kill the
/// process without a word. The handler only wakes a thread that stops the run as a signal
/// does; the faulting thread waits in the handler until the process exits.
fn watch_bus_errors() {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) into a two-int array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return;
    }
    BUS_PIPE.store(fds[1], Ordering::SeqCst);
    let read_end = fds[0];
    let watcher = std::thread::Builder::new()
        .name("sqlgit-bus".into())
        .spawn(move || {
            let mut byte = 0u8;
            // SAFETY: read(2) of one byte into a live local.
            if unsafe { libc::read(read_end, (&raw mut byte).cast(), 1) } == 1 {
                stop(
                    "a file was cut short while this run read it through a memory map (the \
                     database overwritten or truncated in place, e.g. by cp, or a damaged pack): \
                     nothing is lost, the next run reads it again",
                );
            }
        });
    if watcher.is_err() {
        return;
    }
    extern "C" fn on_bus_error(_: libc::c_int) {
        let fd = BUS_PIPE.load(Ordering::SeqCst);
        let byte = 1u8;
        // SAFETY: write(2) and pause(2) are async-signal-safe.
        unsafe {
            libc::write(fd, (&raw const byte).cast(), 1);
            loop {
                libc::pause();
            }
        }
    }
    // SAFETY: a sigaction with a handler that only calls async-signal-safe functions.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_bus_error as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
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
                let why = "a time limit in cron or systemd, a shutdown, or by hand";
                let kind = KIND.load(Ordering::SeqCst);
                if kind == Kind::Reading as u8 {
                    stop(&format!(
                        "stopped by {name}: its temporary files were removed, nothing else \
                         was changed"
                    ));
                }
                if kind == Kind::Changing as u8 {
                    stop(&format!(
                        "stopped by {name} before it finished ({why}): its temporary files \
                         were removed and nothing is lost; run it again to finish"
                    ));
                }
                stop(&format!(
                    "stopped by {name} before the run finished ({why}): nothing is lost, the \
                     next run goes on from here"
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
