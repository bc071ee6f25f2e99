//! One run at a time per repository: an advisory `flock` on `DIR/sqlgit.lock`. The kernel drops
//! the lock when its process dies, so a killed run never blocks the next one. A run that is
//! alive but stopped (SIGSTOP, Ctrl-Z) or stuck keeps it, though: the holder writes its pid and
//! the time into the file, so that a run that finds the lock busy, and `status`, can name it,
//! say whether it is stopped, and give the command that frees the lock. While it holds the lock
//! it also touches the file every [`BEAT`], and marks it `ended` when it lets go, so that the next
//! run knows when the run before worked on the repository ([`Lock::previous`]): git lock files
//! made in that time, and still there, are ones it left (`store::gitlocks`).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};

/// Held while alive.
pub struct Lock {
    _file: File,
    /// `PID SINCE`, as written in the file.
    line: String,
    previous: Option<Span>,
    /// Stops the heartbeat (dropping it), which the drop then waits for.
    beat: Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
    /// The folder of the lock file: root gives what it wrote there back when it lets go.
    folder: PathBuf,
}

/// How often the holder of a repository's lock touches its file.
const BEAT: Duration = Duration::from_secs(1);
/// How long before its `ended` time a run's span is taken to end (file times lag).
const ENDED_MARGIN: Duration = Duration::from_millis(100);
/// How long before now an older sqlgit's run, which recorded no end, is taken to have ended.
const OLDER_MARGIN: Duration = Duration::from_secs(5);

/// When a run held a repository's lock: from when it took it to when it let go, or, for one that
/// was killed (no `ended` mark), to a little after its last heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: SystemTime,
    pub end: SystemTime,
}

impl Lock {
    /// When the run before this one held the lock, as its file tells (None for a new file, or
    /// one another program wrote).
    pub fn previous(&self) -> Option<Span> {
        self.previous
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Some((stop, beat)) = self.beat.take() {
            drop(stop);
            let _ = beat.join();
        }
        // Root's run on another user's repository leaves it theirs.
        crate::output::give_back_tree(&self.folder);
        // The end of this run's span.
        let line = format!("{} ended\n", self.line.trim_end());
        let _ = self
            ._file
            .set_len(0)
            .and_then(|()| self._file.write_all_at(line.as_bytes(), 0))
            .and_then(|()| self._file.set_modified(SystemTime::now()));
    }
}

/// Take the repository's lock, waiting up to `timeout` for another run to finish.
pub fn lock(repo_dir: &Path, timeout: Duration) -> Result<Lock> {
    match lock_file(&repo_dir.join(LOCK_FILE), timeout)? {
        Some(mut lock) => {
            lock.beat = heartbeat(&lock._file);
            // Whatever this run goes on to do (an `init` too): the git lock files a killed run
            // left are removed now, while its span is known; the next holder no longer knows it.
            super::gitlocks::remove_left(repo_dir, lock.previous);
            Ok(lock)
        }
        None => Err(crate::error::Failure::Busy {
            repo: repo_dir.display().to_string(),
            detail: busy_detail(holder(repo_dir).as_ref(), timeout),
        }
        .into()),
    }
}

const LOCK_FILE: &str = "sqlgit.lock";

/// Why the lock is still held after waiting `waited`, and what frees it.
fn busy_detail(holder: Option<&Holder>, waited: Duration) -> String {
    let waited = humantime::format_duration(waited);
    match holder {
        Some(h) if h.stopped => format!("{} (waited {waited})", h.describe(now())),
        Some(h) => format!(
            "{} (waited {waited}; a run holds it while it snapshots and then for up to \
             --push-timeout while its remotes answer: if runs overlap, lower --push-timeout or \
             raise --lock-timeout; if it is stuck, `kill {}` ends it)",
            h.describe(now()),
            h.pid
        ),
        None => format!(
            "another sqlgit run holds its lock (waited {waited}; a run holds it while it \
             snapshots and then for up to --push-timeout while its remotes answer: if runs \
             overlap, lower --push-timeout or raise --lock-timeout)"
        ),
    }
}

/// An exclusive `flock` on the file at `path` (created 0600), waiting up to `timeout`; None
/// when another process still holds it then.
pub fn lock_file(path: &Path, timeout: Duration) -> Result<Option<Lock>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        // A symbolic link put in its place is not followed: root's run would otherwise cut
        // short and write whatever file it names.
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("open lock file {}", path.display()))?;
    crate::output::keep_folder_owner(path)
        .with_context(|| format!("give lock file {} to its folder's owner", path.display()))?;
    let taken = flock_within(&file, timeout, Duration::from_millis(50))
        .with_context(|| format!("lock {}", path.display()))?;
    if !taken {
        return Ok(None);
    }
    let previous = span(&file);
    // Best effort: a holder that is not named is only less helpful.
    // `beat`: this holder touches the file while it holds it (see [`span`]).
    let line = format!("{} {} beat\n", std::process::id(), now());
    let _ = file
        .set_len(0)
        .and_then(|()| file.write_all_at(line.as_bytes(), 0));
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(Some(Lock {
        _file: file,
        line,
        previous,
        beat: None,
        folder,
    }))
}

/// The span of the last holder of a lock file that was just taken: its `PID SINCE [ended]`
/// line and the file's time (when it let go, or its last heartbeat: then it died within a
/// [`BEAT`] of it, give or take a thread scheduled late).
fn span(file: &File) -> Option<Span> {
    let mut buf = [0u8; 64];
    let n = file.read_at(&mut buf, 0).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    let mut words = text.split_whitespace().skip(1);
    let since = u64::try_from(words.next()?.parse::<i64>().ok()?).ok()?;
    // Whole seconds: the run took the lock within the second after.
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(since);
    let last = file.metadata().and_then(|m| m.modified()).ok()?;
    let marks: Vec<&str> = words.collect();
    let end = if marks.contains(&"ended") {
        // It let go then. A file made just after gets a time from the kernel's coarse clock,
        // some milliseconds behind the precise one this was written with.
        // (A run shorter than that: an empty span at its start.)
        last.checked_sub(ENDED_MARGIN)?.max(start)
    } else if marks.contains(&"beat") {
        // Killed: within a beat of its last one, give or take a thread scheduled late.
        last + 3 * BEAT
    } else {
        // An older sqlgit's record (no heartbeat, no end mark): it may have run until
        // moments ago; only a lock made in the last seconds is taken for another command's.
        SystemTime::now().checked_sub(OLDER_MARGIN)?
    };
    (end >= start).then_some(Span { start, end })
}

/// A thread that touches the lock file every [`BEAT`] until the returned sender is dropped.
fn heartbeat(file: &File) -> Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)> {
    let file = file.try_clone().ok()?;
    let (stop, stopped) = mpsc::channel::<()>();
    let beat = std::thread::Builder::new()
        .name("lock heartbeat".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(BEAT) {
                let _ = file.set_modified(SystemTime::now());
            }
        })
        .ok()?;
    Some((stop, beat))
}

/// An exclusive `flock` on `file`, tried every `every` until `timeout` has passed: false when
/// another process still holds it then. The lock is released when `file` is closed.
fn flock_within(file: &File, timeout: Duration, every: Duration) -> std::io::Result<bool> {
    let start = Instant::now();
    loop {
        // SAFETY: flock(2) on an open descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(err);
        }
        if start.elapsed() >= timeout {
            return Ok(false);
        }
        std::thread::sleep(every);
    }
}

/// A short-lived exclusive `flock` on `file` (a folder: the state file's, the metrics file's),
/// waiting up to `timeout`: a process stopped (SIGSTOP, Ctrl-Z) while it held one must not
/// hang every later run forever. The error says who holds `repo_dir`'s lock, when it can.
pub fn flock_briefly(file: &File, what: &Path, repo_dir: &Path, timeout: Duration) -> Result<()> {
    let taken = flock_within(file, timeout, Duration::from_millis(20))
        .with_context(|| format!("lock {}", what.display()))?;
    if !taken {
        let who = holder(repo_dir).map_or_else(
            || "a stopped or stuck process holds it".to_string(),
            |h| h.describe(now()),
        );
        anyhow::bail!(
            "lock {}: still held after {} ({who})",
            what.display(),
            humantime::format_duration(timeout)
        );
    }
    Ok(())
}

/// Whether a run holds the repository's lock now (false when there is no lock file).
pub fn is_held(repo_dir: &Path) -> bool {
    let Ok(file) = File::open(repo_dir.join(LOCK_FILE)) else {
        return false;
    };
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
        return false;
    }
    true
}

/// The process that holds a repository's lock, as it wrote itself into the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// When it took the lock (Unix seconds).
    pub since: i64,
    /// Stopped by SIGSTOP or SIGTSTP (Ctrl-Z): it never lets go of the lock by itself.
    pub stopped: bool,
}

impl Holder {
    /// "sqlgit process PID has held it for D", or for a stopped one, that and what frees it.
    pub fn describe(&self, now: i64) -> String {
        let held =
            humantime::format_duration(Duration::from_secs((now - self.since).max(0) as u64));
        let pid = self.pid;
        if self.stopped {
            format!(
                "sqlgit process {pid} holds its lock and is stopped (SIGSTOP, or Ctrl-Z in a \
                 terminal; held for {held}): it never lets go by itself; `kill -CONT {pid}` \
                 lets it finish, `kill {pid}; kill -CONT {pid}` ends it (a stopped process \
                 acts on `kill` only once continued)"
            )
        } else {
            format!("sqlgit process {pid} has held its lock for {held}")
        }
    }
}

/// Who holds the lock of `repo_dir` now, if it is held and its holder recorded itself. A pid
/// whose process is gone, or was started after the lock was taken (the pid reused), is not
/// named: only a live holder is.
pub fn holder(repo_dir: &Path) -> Option<Holder> {
    if !is_held(repo_dir) {
        return None;
    }
    let text = std::fs::read_to_string(repo_dir.join(LOCK_FILE)).ok()?;
    let mut words = text.split_whitespace();
    let (pid, since) = (words.next()?, words.next()?);
    let (pid, since) = (pid.parse::<u32>().ok()?, since.parse::<i64>().ok()?);
    let stopped = match proc_stat(pid) {
        Some((state, started)) => {
            if matches!(state, 'Z' | 'X') || started.is_some_and(|s| s > since + 2) {
                return None;
            }
            matches!(state, 'T' | 't')
        }
        // No /proc (not Linux): whether it exists at all.
        None if super::left_by_dead_process(&pid.to_string()) => return None,
        None => false,
    };
    Some(Holder {
        pid,
        since,
        stopped,
    })
}

/// A process's state letter and start time (Unix seconds, when known) from `/proc/PID/stat`;
/// None when there is no such file (no such process, or no /proc).
fn proc_stat(pid: u32) -> Option<(char, Option<i64>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (COMM) STATE PPID …": COMM may hold spaces and parentheses; field 22 is the start
    // time in clock ticks after boot.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ticks = fields.nth(18).and_then(|f| f.parse::<i64>().ok());
    // SAFETY: sysconf only reads a system setting.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<i64>().ok())
    });
    let started = match (ticks, boot) {
        (Some(t), Some(b)) if hz > 0 => Some(b + t / hz as i64),
        _ => None,
    };
    Some((state, started))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_is_named_only_while_it_lives_and_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(holder(dir.path()), None);
        let lock = lock(dir.path(), Duration::ZERO).unwrap();
        let me = holder(dir.path()).expect("the holder is named");
        assert_eq!((me.pid, me.stopped), (std::process::id(), false));
        assert!((now() - me.since).abs() <= 2, "{me:?}");
        drop(lock);
        // The file still names the last holder, which no longer holds the lock.
        assert_eq!(holder(dir.path()), None);
        // A recorded pid whose process is gone is not named, even while the lock is held.
        let _held = lock_file(&dir.path().join(LOCK_FILE), Duration::ZERO).unwrap();
        std::fs::write(
            dir.path().join(LOCK_FILE),
            format!("{} {}\n", i32::MAX, now()),
        )
        .unwrap();
        assert_eq!(holder(dir.path()), None);
        // One started after the lock was taken reuses a dead holder's pid.
        std::fs::write(
            dir.path().join(LOCK_FILE),
            format!("{} 1000\n", std::process::id()),
        )
        .unwrap();
        assert_eq!(holder(dir.path()), None);
    }

    #[test]
    fn the_next_holder_knows_when_the_last_one_held_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path(), Duration::ZERO).unwrap();
        assert_eq!(first.previous(), None);
        drop(first);
        let ended = std::fs::metadata(dir.path().join(LOCK_FILE))
            .and_then(|m| m.modified())
            .unwrap();
        let second = lock(dir.path(), Duration::ZERO).unwrap();
        let span = second.previous().expect("the first run's span");
        // A file made just after it let go may have a time a little before (a coarse clock).
        assert_eq!(
            span.end,
            (ended - ENDED_MARGIN).max(span.start),
            "a run that let go ended then"
        );
        assert!(span.start <= span.end);
        drop(second);
        // A holder that was killed (no `ended`): a little after its last heartbeat.
        let killed = format!("1 {} beat\n", now() - 10);
        std::fs::write(dir.path().join(LOCK_FILE), killed).unwrap();
        let beat = std::fs::metadata(dir.path().join(LOCK_FILE))
            .and_then(|m| m.modified())
            .unwrap();
        let third = lock(dir.path(), Duration::ZERO).unwrap();
        assert_eq!(third.previous().unwrap().end, beat + 3 * BEAT);
        drop(third);
        // An older sqlgit's record (no heartbeat): up to a few seconds ago, whatever its time.
        std::fs::write(dir.path().join(LOCK_FILE), format!("1 {}\n", now() - 100)).unwrap();
        let before = SystemTime::now();
        let fourth = lock(dir.path(), Duration::ZERO).unwrap();
        let end = fourth.previous().unwrap().end;
        assert!(
            end <= before && end + OLDER_MARGIN + BEAT >= before,
            "{end:?}"
        );
    }

    #[test]
    fn a_brief_lock_held_by_a_stopped_process_fails_instead_of_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let held = File::open(dir.path()).unwrap();
        assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
        let again = File::open(dir.path()).unwrap();
        let start = Instant::now();
        let e = flock_briefly(&again, dir.path(), dir.path(), Duration::from_millis(200));
        assert!(format!("{:#}", e.unwrap_err()).contains("still held after 200ms"));
        assert!(start.elapsed() < Duration::from_secs(5));
        drop(held);
        flock_briefly(&again, dir.path(), dir.path(), Duration::ZERO).unwrap();
    }

    #[test]
    fn a_stopped_holder_gets_the_commands_that_free_the_lock() {
        let h = Holder {
            pid: 4242,
            since: 100,
            stopped: true,
        };
        let line = busy_detail(Some(&h), Duration::from_secs(2));
        assert!(
            line.contains("process 4242") && line.contains("stopped"),
            "{line}"
        );
        assert!(
            line.contains("`kill -CONT 4242`") && line.contains("`kill 4242; kill -CONT 4242`"),
            "{line}"
        );
        assert!(!line.contains("--lock-timeout"), "{line}");
        let running = Holder {
            stopped: false,
            ..h
        };
        assert!(running.describe(160).ends_with("held its lock for 1m"));
    }
}
