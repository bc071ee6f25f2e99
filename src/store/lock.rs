//! One run at a time per repository: an advisory `flock` on `DIR/sqlgit.lock`. The kernel drops
//! the lock when its process dies, so a killed run never blocks the next one.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// Held while alive.
pub struct Lock {
    _file: File,
}

/// Take the repository's lock, waiting up to `timeout` for another run to finish.
pub fn lock(repo_dir: &Path, timeout: Duration) -> Result<Lock> {
    match lock_file(&repo_dir.join("sqlgit.lock"), timeout)? {
        Some(lock) => Ok(lock),
        None => Err(crate::error::Failure::Busy {
            repo: repo_dir.display().to_string(),
            waited: humantime::format_duration(timeout).to_string(),
        }
        .into()),
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
        .open(path)
        .with_context(|| format!("open lock file {}", path.display()))?;
    let start = Instant::now();
    loop {
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Some(Lock { _file: file }));
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(err).with_context(|| format!("lock {}", path.display()));
        }
        if start.elapsed() >= timeout {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a run holds the repository's lock now (false when there is no lock file).
pub fn is_held(repo_dir: &Path) -> bool {
    let Ok(file) = File::open(repo_dir.join("sqlgit.lock")) else {
        return false;
    };
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
        return false;
    }
    true
}
