//! One time budget for all the network calls of a run, so that `--push-timeout` bounds how
//! long a run holds the repository lock for its remotes together: a server that hangs and
//! serves both remotes (or the history remote asked before the snapshot, then pushed after it)
//! must not hold the lock for a multiple of it and make the next cron run miss its snapshot.
//!
//! A run opts in with [`share`]; from then on each client draws its time from what is left and
//! gives back none of what it used. Without it (reading older snapshots, `push --reroot`), each
//! client gets the whole timeout.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use git2::Oid;

use super::Client;

/// What is left of the run's budget; None: not shared.
static LEFT: Mutex<Option<(Duration, Duration)>> = Mutex::new(None);

/// From now on, the network calls of this process share `total` (what `--push-timeout` says).
pub fn share(total: Duration) {
    if let Ok(mut left) = LEFT.lock() {
        *left = Some((total, total));
    }
}

/// How long a client created now may take: `timeout`, or what is left of the shared budget.
/// The second value: the shared total, when the budget is shared.
fn grant(timeout: Duration) -> (Duration, Option<Duration>) {
    match LEFT.lock().ok().and_then(|l| *l) {
        Some((left, total)) => (left.min(timeout), Some(total)),
        None => (timeout, None),
    }
}

/// Give back nothing: `used` is spent.
fn spend(used: Duration) {
    if let Ok(mut left) = LEFT.lock()
        && let Some((rest, _)) = left.as_mut()
    {
        *rest = rest.saturating_sub(used);
    }
}

/// A client that draws its time from the shared budget (see the module documentation).
pub(super) struct Budgeted<'a> {
    inner: Box<dyn Client + 'a>,
    started: Instant,
    /// The shared total when nothing is left of it.
    exhausted: Option<Duration>,
}

/// The timeout a client created now gets, and the wrapper that accounts for it.
pub(super) fn budgeted<'a>(
    timeout: Duration,
    make: impl FnOnce(Duration) -> Box<dyn Client + 'a>,
) -> Box<dyn Client + 'a> {
    let (granted, total) = grant(timeout);
    let exhausted = total.filter(|_| granted < Duration::from_millis(100));
    Box::new(Budgeted {
        inner: make(granted),
        started: Instant::now(),
        exhausted,
    })
}

impl Budgeted<'_> {
    fn check(&self) -> Result<()> {
        if let Some(total) = self.exhausted {
            bail!(
                "not asked: the run's remotes share --push-timeout ({}), and the calls before \
                 this one used all of it (a remote that did not answer)",
                humantime::format_duration(total)
            );
        }
        Ok(())
    }
}

impl Drop for Budgeted<'_> {
    fn drop(&mut self) {
        spend(self.started.elapsed());
    }
}

impl Client for Budgeted<'_> {
    fn remote_main(&self, url: &str) -> Result<Option<Oid>> {
        self.check()?;
        self.inner.remote_main(url)
    }
    fn send(&self, url: &str, src: &str, force: bool, unrelated: Option<Oid>) -> Result<()> {
        self.check()?;
        self.inner.send(url, src, force, unrelated)
    }
    fn fetch_main(&self, url: &str, dst: &str) -> Result<Oid> {
        self.check()?;
        self.inner.fetch_main(url, dst)
    }
    fn default_branch(&self, url: &str) -> Option<Option<String>> {
        self.check().ok()?;
        self.inner.default_branch(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_budget_is_drawn_down_and_then_refuses() {
        share(Duration::from_secs(10));
        assert_eq!(grant(Duration::from_secs(60)).0, Duration::from_secs(10));
        spend(Duration::from_secs(7));
        assert_eq!(grant(Duration::from_secs(60)).0, Duration::from_secs(3));
        assert_eq!(grant(Duration::from_secs(1)).0, Duration::from_secs(1));
        spend(Duration::from_secs(7));
        assert!(grant(Duration::from_secs(60)).0.is_zero());
        if let Ok(mut left) = LEFT.lock() {
            *left = None;
        }
    }
}
