//! Named points at which a test has the process killed (`SQLGIT_FAILPOINT=<name>`): the moments
//! between two writes that a SIGKILL from cron's timeout or the OOM killer can hit, so that the
//! tests can check that a run killed there leaves a repository the next run recovers by itself.
//! Nothing happens unless the variable names the point. [`panic_at`] stands in for what Rust
//! reports by panicking: a thread that cannot be started (a process limit). [`pause`] stops
//! the process (SIGSTOP) so that a test can change a file at that moment, then continue it.

/// Kill this process with SIGKILL (no destructor, no cleanup) when `SQLGIT_FAILPOINT` is `name`.
pub fn hit(name: &str) {
    if std::env::var_os("SQLGIT_FAILPOINT").is_some_and(|v| v == name) {
        // SAFETY: sends a signal to this process; nothing is touched.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Panic, as Rust does when a thread cannot be started, when `SQLGIT_FAILPOINT` is `name`.
pub fn panic_at(name: &str) {
    if std::env::var_os("SQLGIT_FAILPOINT").is_some_and(|v| v == name) {
        panic!("failed to spawn thread: Os {{ code: 11, kind: WouldBlock }} (failpoint {name})");
    }
}

/// Stop this process (SIGSTOP, until a SIGCONT) when `SQLGIT_FAILPOINT` is `name`.
pub fn pause(name: &str) {
    if std::env::var_os("SQLGIT_FAILPOINT").is_some_and(|v| v == name) {
        // SAFETY: sends a signal to this process; nothing is touched.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGSTOP);
        }
    }
}
