//! Driving a `sqlgit` run from outside while it runs: a signal once it is ready, or a stop
//! (SIGSTOP) at a failpoint with something done in between.

use std::ffi::OsStr;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Run, TestEnv, describe};

impl TestEnv {
    /// Start `sqlgit ARGS`, wait (up to 30 s, failing if it ends first) until `ready` says so,
    /// send it `signal`, and collect its output (stderr piped, stdout dropped).
    pub fn sqlgit_signalled<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        signal: libc::c_int,
        what: &str,
        ready: impl FnMut() -> bool,
    ) -> std::process::Output {
        self.signalled(self.sqlgit_cmd(args), signal, what, ready)
    }

    /// [`TestEnv::sqlgit_signalled`] for a command made with [`TestEnv::sqlgit_cmd`].
    pub fn signalled(
        &self,
        mut cmd: Command,
        signal: libc::c_int,
        what: &str,
        mut ready: impl FnMut() -> bool,
    ) -> std::process::Output {
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while !ready() {
            assert!(start.elapsed().as_secs() < 30, "{what}: never ready");
            assert!(
                child.try_wait().unwrap().is_none(),
                "{what}: finished first"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        // SAFETY: our child's pid.
        unsafe { libc::kill(child.id() as i32, signal) };
        child.wait_with_output().unwrap()
    }

    /// `sqlgit ARGS` at `now`, stopped (SIGSTOP) at the failpoint `point` (see
    /// `src/failpoint.rs`): `between` runs while it is stopped, then it goes on to its end.
    pub fn sqlgit_paused<S: AsRef<OsStr>>(
        &self,
        now: u64,
        args: &[S],
        point: &str,
        between: impl FnOnce(),
    ) -> Run {
        let mut cmd = self.sqlgit_cmd(args);
        cmd.env("SQLGIT_NOW", now.to_string())
            .env("SQLGIT_FAILPOINT", point)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let cmdline = describe(&cmd);
        let child = cmd.spawn().unwrap();
        let stat = format!("/proc/{}/stat", child.id());
        let stopped = || {
            std::fs::read_to_string(&stat).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('T'))
            })
        };
        let start = std::time::Instant::now();
        while !stopped() {
            assert!(start.elapsed().as_secs() < 60, "{cmdline}: never paused");
            std::thread::sleep(Duration::from_millis(10));
        }
        between();
        // SAFETY: our child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
        Run {
            cmdline,
            output: child.wait_with_output().unwrap(),
            dir: self.root.clone(),
        }
    }
}
