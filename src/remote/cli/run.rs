//! Running one subprocess for a push: in a session of its own (no terminal to prompt on),
//! stdin null, its output collected, and its whole process group ended at the push's
//! deadline (SIGTERM, then SIGKILL: see [`crate::stop::end_git_groups`]).

use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

use super::GitCli;

/// A progress meter that changed this recently still moves data.
const STILL_MOVING: Duration = Duration::from_secs(3);

/// Record stderr output: now, and the last progress meter in it (`Writing objects:  45% …`).
pub(super) fn note_activity(activity: &Mutex<(Instant, String)>, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let meter = text
        .split(['\r', '\n'])
        .map(str::trim)
        .rfind(|l| l.contains("% (") && super::diagnose::is_progress(l));
    if let Ok(mut a) = activity.lock() {
        a.0 = Instant::now();
        if let Some(meter) = meter {
            a.1 = crate::error::one_line(meter).chars().take(200).collect();
        }
    }
}

/// `d` rounded up to whole seconds (the run's share of the budget is shown as such).
fn whole_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

/// What a finished git run left.
pub(super) struct Finished {
    pub(super) success: bool,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

impl GitCli {
    /// Run a command in a session of its own, stdin null, output collected; end its process
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
        // A stop of the run ends git with everything it started (PDEATHSIG reaches git only).
        let _group = crate::stop::kill_group_on_stop(pid);
        let (tx, rx) = mpsc::channel();
        // When stderr last said something, and its last progress meter (git runs with
        // --progress): a transfer still moving at the deadline is named as such.
        let activity = Arc::new(Mutex::new((Instant::now(), String::new())));
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
            let activity = (which == 1).then(|| Arc::clone(&activity));
            std::thread::spawn(move || {
                let _ = tx.send((which, collect(stream.as_mut(), activity.as_deref())));
            });
        }
        drop(tx);
        let status = loop {
            match child.try_wait()? {
                Some(status) => break status,
                None if Instant::now() >= self.deadline => {
                    // Asked to end first, as a stop does: a local remote's receive-pack, in
                    // this group, removes its ref's lock then.
                    crate::stop::end_git_groups(&[pid], || {
                        let _ = child.try_wait();
                    });
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(self.timed_out(&activity));
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

    /// The error of a call stopped at its deadline: a transfer that had started is named as
    /// such, with git's last progress meter, not as a remote that did not answer.
    fn timed_out(&self, activity: &Mutex<(Instant, String)>) -> anyhow::Error {
        let (last, meter) = activity
            .lock()
            .map(|a| a.clone())
            .unwrap_or_else(|_| (Instant::now(), String::new()));
        let timeout = humantime::format_duration(whole_seconds(self.timeout));
        if meter.is_empty() {
            return anyhow!(
                "the remote did not answer within {timeout} (--push-timeout): gave up and \
                 stopped git"
            );
        }
        let state = if last.elapsed() < STILL_MOVING {
            "still moving"
        } else if meter.ends_with("done.") {
            "all written; the remote had not yet confirmed storing it: on a slow link it is \
             still on its way, or the remote is still storing it"
        } else {
            "then nothing moved"
        };
        anyhow!(
            "the transfer had started ({meter}: {state}) when the time left of --push-timeout \
             ({timeout}; the run's calls to one server share it) ran out: stopped git; a slow \
             link or a remote slow to take in a big push is not a silent one: raise \
             --push-timeout (sqlgit.pushTimeout) so that it can finish (each run starts it \
             again from the beginning)"
        )
    }
}

/// Everything `stream` says until it ends, kept up to 1 MiB (the rest is read, so the writer
/// never blocks on a full pipe, and dropped); each piece noted in `activity` when given, as
/// whole lines: a meter cut by a read is noted once its line is complete.
pub(super) fn collect(
    stream: &mut dyn Read,
    activity: Option<&Mutex<(Instant, String)>>,
) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut partial: Vec<u8> = Vec::new();
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return buf,
            Ok(n) => {
                if let Some(activity) = activity {
                    let piece = &chunk[..n];
                    match piece.iter().rposition(|&b| b == b'\r' || b == b'\n') {
                        Some(end) => {
                            partial.extend_from_slice(&piece[..=end]);
                            note_activity(activity, &partial);
                            partial.clear();
                            partial.extend_from_slice(&piece[end + 1..]);
                        }
                        None => {
                            note_activity(activity, b"");
                            partial.extend_from_slice(piece);
                        }
                    }
                    if partial.len() > 4096 {
                        partial.clear();
                    }
                }
                let room = (1usize << 20).saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}
