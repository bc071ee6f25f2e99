//! Running one subprocess for a push: in a session of its own (no terminal to prompt on),
//! stdin null, its output collected, and its whole process group killed at the push's
//! deadline.

use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use super::GitCli;

/// What a finished git run left.
pub(super) struct Finished {
    pub(super) success: bool,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

impl GitCli {
    /// Run a command in a session of its own, stdin null, output collected; kill its process
    /// group at the deadline.
    pub(super) fn run_bounded(&self, cmd: &mut Command) -> Result<Finished> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: setsid, prctl and getppid are async-signal-safe; nothing else runs between
        // fork and exec.
        let parent = std::process::id() as libc::pid_t;
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                // A sqlgit killed mid-push takes its git with it: a push left running outside
                // the repository lock would race the next run's push to the same ref.
                #[cfg(target_os = "linux")]
                {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if libc::getppid() != parent {
                        return Err(std::io::Error::other("sqlgit exited"));
                    }
                }
                #[cfg(not(target_os = "linux"))]
                let _ = parent;
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| anyhow!("cannot run {}: {e}", self.program.display()))?;
        let pid = child.id() as libc::pid_t;
        let (tx, rx) = mpsc::channel();
        for (which, stream) in [
            (
                0,
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
            ),
            (
                1,
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
            ),
        ] {
            let Some(mut stream) = stream else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = stream.by_ref().take(1 << 20).read_to_end(&mut buf);
                // Drain the rest unread, so the writer never blocks on a full pipe.
                let _ = std::io::copy(&mut stream, &mut std::io::sink());
                let _ = tx.send((which, buf));
            });
        }
        drop(tx);
        let status = loop {
            match child.try_wait()? {
                Some(status) => break status,
                None if Instant::now() >= self.deadline => {
                    // SAFETY: plain syscalls on the group this child leads.
                    unsafe {
                        libc::kill(-pid, libc::SIGKILL);
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "the remote did not answer within {} (--push-timeout): gave up and \
                         stopped git",
                        humantime::format_duration(self.timeout)
                    );
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        // Output: whatever arrived; a grandchild that outlived git (an ssh control master)
        // may hold the pipes open, so do not wait for it long.
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let grace = Instant::now() + Duration::from_secs(2);
        for _ in 0..2 {
            let left = grace.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((0, b)) => stdout = b,
                Ok((_, b)) => stderr = b,
                Err(_) => break,
            }
        }
        Ok(Finished {
            success: status.success(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }
}
