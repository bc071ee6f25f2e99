//! One time budget per server for all the network calls of a run, so that `--push-timeout`
//! bounds how long a run holds the repository lock for a server: a server that hangs and
//! serves both remotes (or the history remote asked before the snapshot, then pushed after it)
//! must not hold the lock for a multiple of it and make the next cron run miss its snapshot.
//! Each server has its own budget, so a hanging history server does not keep the latest remote,
//! on another server, from being pushed. A server is what [`super::url::server_of`] names: two
//! spellings of one (an ssh host alias, `localhost` and `127.0.0.1`) share its budget.
//!
//! A run opts in with [`share`]; from then on each client draws its time from what is left of
//! its server's budget and gives back none of what it used. Without it (reading older
//! snapshots, `push --reroot`), each client gets the whole timeout.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use git2::Oid;

use super::Client;
use super::url::{Server, server_of};

/// What is left of the shared total, per server.
type Left = Vec<(Server, Duration)>;

/// The shared total and what is left of it per server; None: not shared.
static LEFT: Mutex<Option<(Duration, Left)>> = Mutex::new(None);

/// From now on, the network calls of this process to one server share `total` (what
/// `--push-timeout` says).
pub fn share(total: Duration) {
    if let Ok(mut left) = LEFT.lock() {
        *left = Some((total, Vec::new()));
    }
}

/// Whether the budget is shared ([`share`]).
fn shared() -> bool {
    LEFT.lock().is_ok_and(|left| left.is_some())
}

/// How long a client of `server` created now may take: `timeout`, or what is left of the
/// server's shared budget. The second value: the shared total, when the budget is shared.
fn grant(timeout: Duration, server: &Server) -> (Duration, Option<Duration>) {
    match LEFT.lock().ok().as_deref().and_then(Option::as_ref) {
        Some((total, left)) => {
            let left = left
                .iter()
                .find(|(s, _)| s.same(server))
                .map_or(*total, |(_, left)| *left);
            (left.min(timeout), Some(*total))
        }
        None => (timeout, None),
    }
}

/// Give back nothing: `used` of `server`'s budget is spent.
fn spend(server: &Server, used: Duration) {
    if let Ok(mut left) = LEFT.lock()
        && let Some((total, left)) = left.as_mut()
    {
        match left.iter_mut().find(|(s, _)| s.same(server)) {
            Some((_, rest)) => *rest = rest.saturating_sub(used),
            None => left.push((server.clone(), total.saturating_sub(used))),
        }
    }
}

/// A client that draws its time from the shared budget (see the module documentation).
pub(super) struct Budgeted<'a> {
    inner: Box<dyn Client + 'a>,
    /// None: the budget is not shared.
    server: Option<Server>,
    started: Instant,
    /// The shared total when nothing is left of it.
    exhausted: Option<Duration>,
}

/// The timeout a client of the server `url` reaches gets now, and the wrapper that accounts
/// for it. `ssh_config`: the repository, when ssh reads `~/.ssh/config` (its host aliases).
pub(super) fn budgeted<'a>(
    timeout: Duration,
    url: &str,
    ssh_config: Option<&Path>,
    make: impl FnOnce(Duration) -> Box<dyn Client + 'a>,
) -> Box<dyn Client + 'a> {
    let server = shared().then(|| server_of(url, ssh_config));
    let (granted, total) = match &server {
        Some(server) => grant(timeout, server),
        None => (timeout, None),
    };
    let exhausted = total.filter(|_| granted < Duration::from_millis(100));
    Box::new(Budgeted {
        inner: make(granted),
        server,
        started: Instant::now(),
        exhausted,
    })
}

impl Budgeted<'_> {
    fn check(&self) -> Result<()> {
        if let Some(total) = self.exhausted {
            bail!(
                "not asked: the run's calls to one server share --push-timeout ({}), and the \
                 calls to it before this one used all of it (it did not answer)",
                humantime::format_duration(total)
            );
        }
        Ok(())
    }
}

impl Drop for Budgeted<'_> {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            spend(server, self.started.elapsed());
        }
    }
}

impl Client for Budgeted<'_> {
    fn remote_main(&self, url: &str) -> Result<Option<Oid>> {
        self.check()?;
        self.inner.remote_main(url)
    }
    fn send(
        &self,
        url: &str,
        src: &str,
        force: bool,
        unrelated: Option<Oid>,
        lease: Option<Oid>,
    ) -> Result<()> {
        self.check()?;
        self.inner.send(url, src, force, unrelated, lease)
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
    fn a_servers_budget_is_drawn_down_by_all_its_spellings_and_other_servers_keep_theirs() {
        share(Duration::from_secs(10));
        let server = |url| server_of(url, None);
        let (a, b) = (server("git://127.0.0.1"), server("git://127.0.0.2"));
        let (a_too, a_also) = (server("git://localhost:9418/x"), server("git://2130706433"));
        assert_eq!(
            grant(Duration::from_secs(60), &a).0,
            Duration::from_secs(10)
        );
        spend(&a, Duration::from_secs(7));
        assert_eq!(grant(Duration::from_secs(60), &a).0, Duration::from_secs(3));
        assert_eq!(
            grant(Duration::from_secs(60), &a_too).0,
            Duration::from_secs(3)
        );
        assert_eq!(grant(Duration::from_secs(1), &a).0, Duration::from_secs(1));
        spend(&a_also, Duration::from_secs(7));
        assert!(grant(Duration::from_secs(60), &a).0.is_zero());
        assert!(grant(Duration::from_secs(60), &a_too).0.is_zero());
        assert_eq!(
            grant(Duration::from_secs(60), &b).0,
            Duration::from_secs(10)
        );
        if let Ok(mut left) = LEFT.lock() {
            *left = None;
        }
    }
}
