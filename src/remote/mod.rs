//! Pushing snapshots off-site, to two remotes with different jobs:
//!
//! * the **latest** remote gets one parentless commit with the head's tree, force-pushed, so a
//!   fresh clone is small;
//! * the **history** remote gets every snapshot commit (fast-forward pushes).
//!
//! Each is pushed independently; what a remote accepted is recorded in a remote-tracking ref
//! (`refs/remotes/history/main`, `refs/remotes/latest/main`), updated only on acceptance —
//! pruning relies on it. URLs are shown only with their credentials redacted.

mod budget;
mod cli;
mod confirmed;
mod held;
mod leftlock;
mod libgit2;
mod local;
mod overwrite;
mod recover;
mod rescue;
mod token;
mod url;
mod urlquery;

pub use budget::share as share_push_timeout;
use confirmed::{check_fast_forward, correct_confirmed, count_between};
pub use confirmed::{
    confirmed_history, forget_confirmed, pending_history, refresh_confirmed, reroot_command,
};
use overwrite::{check_overwritable, refuse_another_database};
pub(crate) use recover::ONCE_CONFIRMED;
pub use recover::{Adopted, Rerooted, adopt, reroot};
use rescue::refuse_older_latest;
pub use token::token_scope;
pub(crate) use url::{Userinfo, local_dir, scrub, url_user};
pub use url::{
    check_roles, is_recorded_as, local_path, redact, refuse_hidden_password, refuse_scp_password,
    relative_local, same_remote, validate_url, without_password,
};

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use git2::{Oid, Repository};

use crate::settings::Settings;
use crate::store::{BRANCH, Store};

pub const HISTORY_TRACKING: &str = "refs/remotes/history/main";
pub const LATEST_TRACKING: &str = "refs/remotes/latest/main";
/// The local parentless copy of the head that the latest remote receives.
const LATEST_LOCAL: &str = "refs/sqlgit/latest";
/// Environment variable holding an HTTPS token (used as the password).
pub const TOKEN_ENV: &str = "SQLGIT_HTTPS_TOKEN";
/// Optional user name to go with the token (default: the URL's, else `sqlgit`).
pub const TOKEN_USER_ENV: &str = "SQLGIT_HTTPS_USER";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Latest,
    History,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Latest => "latest",
            Role::History => "history",
        }
    }
}

/// Remote settings, from flags or the repository's config.
#[derive(Clone, Debug, Default)]
pub struct Remotes {
    pub latest: Option<String>,
    pub history: Option<String>,
    pub ssh_key: Option<PathBuf>,
}

/// What one push did.
pub struct Pushed {
    /// Commits the remote did not have before (history), or 1/0 for latest.
    pub commits: usize,
    pub up_to_date: bool,
    /// Something the user should fix on the remote's side (it works, but not as expected).
    pub note: Option<String>,
}

/// How to reach the remotes: the transport, the SSH key, and the time one push may take.
#[derive(Clone, Debug)]
pub struct Options {
    pub transport: Transport,
    pub ssh_key: Option<PathBuf>,
    /// Bound on one remote's push (asking it for its main and sending), all subprocesses
    /// included; the git transport kills what is still running then (libgit2: see `libgit2.rs`).
    pub timeout: Duration,
    /// The `scheme://host[:port]` that `SQLGIT_HTTPS_TOKEN` is sent to ([`token_scope`]).
    pub token_scope: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            transport: Transport::Auto,
            ssh_key: None,
            timeout: DEFAULT_PUSH_TIMEOUT,
            token_scope: None,
        }
    }
}

/// The default of `--push-timeout`.
pub const DEFAULT_PUSH_TIMEOUT: Duration = Duration::from_secs(300);

/// Which client talks to the remotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The `git` program when one is on PATH, else libgit2.
    Auto,
    /// The `git` program (`sqlgit.transport = git`); an error when none is on PATH.
    Git,
    /// libgit2 in-process (`sqlgit.transport = libgit2`).
    Libgit2,
}

impl Transport {
    /// Parse the setting / flag value (`git`, `libgit2`; empty or absent = auto).
    pub fn parse(value: Option<&str>) -> Result<Transport> {
        match value.map(str::trim) {
            None | Some("") | Some("auto") => Ok(Transport::Auto),
            Some("git") => Ok(Transport::Git),
            Some("libgit2") => Ok(Transport::Libgit2),
            Some(other) => bail!("unknown transport {other:?} (use git or libgit2)"),
        }
    }
}

/// The operations a transport offers, as in a litestream replica client: what the remote has,
/// and a push of one local ref to its `main`.
pub(crate) trait Client {
    /// The remote's `main`, or None when it has none.
    fn remote_main(&self, url: &str) -> Result<Option<Oid>>;
    /// Push the local ref `src` to the remote's `refs/heads/main` (`force`: overwrite, else
    /// fast-forward only). `unrelated`: the remote's main, when it is a parentless commit this
    /// repository has that `src` does not descend from (latest: its previous copy), so the
    /// transport can leave out what it shares with `src`. `lease`: the remote's main, which
    /// this repository lacks though `src` descends from it (a backup taken where pruning cut,
    /// [`crate::store::walk::continues_cut`]): replaced only while it is still the remote's.
    fn send(
        &self,
        url: &str,
        src: &str,
        force: bool,
        unrelated: Option<Oid>,
        lease: Option<Oid>,
    ) -> Result<()>;
    /// Fetch the remote's `main` with depth 1 (its commit and tree, no history: the commit
    /// becomes a shallow boundary) into the local ref `dst`; returns its id.
    fn fetch_main(&self, url: &str, dst: &str) -> Result<Oid>;
    /// What the remote's HEAD names: Some(Some(branch)), Some(None) when it names no branch
    /// that exists (an unborn `master`), None when the transport cannot tell.
    fn default_branch(&self, _url: &str) -> Option<Option<String>> {
        None
    }
}

/// The cause given when the history remote's main has commits that are not ours.
pub(crate) const DIVERGED: &str = "the remote's main has commits this repository does not have (it diverged: another machine, someone else, or an older copy of this repository pushed there)";

/// The client the options ask for, to reach `url`. The git transport asked for by name needs
/// the git program: without one on PATH (cron's PATH) it fails, never silently becoming
/// libgit2 (which reads no `~/.ssh/config`, and would fail in its own, misleading way).
fn client<'a>(store: &'a Store, options: &'a Options, url: &str) -> Result<Box<dyn Client + 'a>> {
    let git = match options.transport {
        // A local remote (a path, `file://`) is pushed by the git program when there is one:
        // its hooks and `receive.*` settings then apply, as a server's do; libgit2 would write
        // into it directly.
        Transport::Libgit2 if local_dir(url).is_some() => cli::git_program(),
        Transport::Libgit2 => None,
        Transport::Auto => cli::git_program(),
        Transport::Git => Some(required_git(
            "the git transport (--transport git, or sqlgit.transport = git)",
        )?),
    };
    // The git program runs OpenSSH, which reads `~/.ssh/config` (its host aliases).
    let ssh_config = git.is_some().then_some(store.path.as_path());
    Ok(budget::budgeted(
        options.timeout,
        url,
        ssh_config,
        |timeout| match git {
            Some(program) => Box::new(cli::GitCli::new(
                program,
                store.repo.path().to_path_buf(),
                options.ssh_key.clone(),
                timeout,
                options.token_scope.clone(),
            )),
            None => Box::new(libgit2::Libgit2::new(
                &store.repo,
                options.ssh_key.as_ref(),
                timeout,
                options.token_scope.clone(),
            )),
        },
    ))
}

/// Whether ssh remotes are reached with OpenSSH, which reads `~/.ssh/config`: the git transport
/// (`transport`: the setting), not libgit2.
pub fn reads_ssh_config(transport: Option<&str>) -> bool {
    match Transport::parse(transport) {
        Ok(Transport::Git) => true,
        Ok(Transport::Auto) => cli::git_program().is_some(),
        _ => false,
    }
}

/// The git program on PATH, or an error saying that `what` needs it and how to give it.
fn required_git(what: &str) -> Result<PathBuf> {
    cli::git_program().ok_or_else(|| {
        let path = std::env::var("PATH").unwrap_or_default();
        anyhow!(
            "{what} needs the git program, and git was not found on PATH ({path}): add git's \
             directory to PATH (in a crontab: a PATH=... line; `command -v git` shows where it \
             is)"
        )
    })
}

/// Push to one remote: the role decides what and how.
pub fn push(store: &Store, role: Role, url: &str, options: &Options) -> Result<Pushed> {
    let repo = &store.repo;
    let Some(head) = store.head()? else {
        bail!("nothing to push: the repository has no snapshots yet");
    };
    let (local, src, force, tracking) = match role {
        Role::History => (head.id(), BRANCH, false, HISTORY_TRACKING),
        Role::Latest => {
            let copy = latest_commit(repo, &head)?;
            repo.reference(LATEST_LOCAL, copy, true, "sqlgit: latest")?;
            (copy, LATEST_LOCAL, true, LATEST_TRACKING)
        }
    };
    validate_url(url)?;
    let client = client(store, options, url)?;
    // Ask the remote what it has: a tracking ref can be stale (remote recreated, URL changed).
    let remote_main = client.remote_main(url).map_err(|e| scrubbed(e, url))?;
    if remote_main == Some(local) {
        repo.reference(tracking, local, true, "sqlgit: confirmed")?;
        return Ok(Pushed {
            commits: 0,
            up_to_date: true,
            note: None,
        });
    }
    if role == Role::History {
        correct_confirmed(store, remote_main)?;
        check_fast_forward(store, local, remote_main)?;
    }
    if role == Role::Latest
        && let Some(main) = remote_main
    {
        check_overwritable(store, client.as_ref(), url, main)?;
        refuse_another_database(store, &head, main)?;
        rescue::refuse_before_adopting(store, &head, main)?;
        refuse_older_latest(store, &head, main)?;
    }
    let commits = match role {
        Role::Latest => 1,
        Role::History => {
            let base = remote_main
                .filter(|id| repo.find_commit(*id).is_ok())
                .unwrap_or(Oid::ZERO_SHA1);
            count_between(repo, local, base).unwrap_or(0)
        }
    };
    let unrelated = match role {
        Role::Latest => remote_main.filter(|id| {
            repo.find_commit(*id)
                .is_ok_and(|c| c.parent_count() == 0 && *id != local)
        }),
        Role::History => None,
    };
    // git refuses to update a ref whose value it does not have ("fetch first") unless it is
    // leased: the remote's main stays an ancestor of what is pushed.
    let lease = match role {
        Role::History => remote_main.filter(|id| repo.find_commit(*id).is_err()),
        Role::Latest => None,
    };
    let sent = client.send(url, src, force, unrelated, lease);
    // Root's push into another user's local remote leaves that remote theirs (pushed or not:
    // a refused push may have written objects).
    local::give_back(url);
    sent.map_err(|e| scrubbed(e, url))?;
    confirm_stored(client.as_ref(), role, url, local)?;
    repo.reference(tracking, local, true, "sqlgit: pushed")?;
    // Said once, when the remote got its first snapshot.
    let head = match remote_main {
        None => client.default_branch(url),
        Some(_) => None,
    };
    let note = match head {
        Some(Some(head)) if head == BRANCH => None,
        Some(head) => Some(format!(
            "the {} remote's HEAD {}, not main: a plain `git clone` of it checks nothing out; \
             on the server run `git symbolic-ref HEAD refs/heads/main` (or set its default \
             branch to main)",
            role.name(),
            match head {
                Some(head) => format!("names {head}"),
                None => "names a branch that does not exist".to_string(),
            }
        )),
        None => None,
    };
    Ok(Pushed {
        commits,
        up_to_date: false,
        note,
    })
}

/// A push counts as confirmed only when the remote is seen to hold it: a server may answer `ok`
/// and store nothing (a `proc-receive` hook queueing it for review, AGit flow), and pruning
/// relies on what is confirmed.
fn confirm_stored(client: &dyn Client, role: Role, url: &str, local: Oid) -> Result<()> {
    let main = client
        .remote_main(url)
        .map_err(|e| scrubbed(e, url))
        .context("ask the remote's main after the push")?;
    if main == Some(local) {
        return Ok(());
    }
    bail!(
        "the {} remote answered ok to the push but does not hold it: its main is {}, not {} \
         (a server that queues pushes for review, or another writer), so nothing is counted as \
         stored there",
        role.name(),
        main.map_or("absent".to_string(), short),
        short(local)
    )
}

/// The first 12 hex digits of a commit id.
fn short(id: Oid) -> String {
    crate::store::short_id(id)
}

/// An error with anything secret of `url` removed.
fn scrubbed(e: anyhow::Error, url: &str) -> anyhow::Error {
    anyhow!("{}", scrub(&format!("{e:#}"), url))
}

/// The head's tree in a commit without parents, with the head's author, time and message:
/// the same head always gives the same commit id.
fn latest_commit(repo: &Repository, head: &git2::Commit) -> Result<Oid> {
    let tree = head.tree()?;
    let message = head.message_raw().unwrap_or_default();
    Ok(repo.commit(None, &head.author(), &head.committer(), message, &tree, &[])?)
}

/// The last push attempt to a remote, as the state file keeps it.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct PushRecord {
    pub unix: i64,
    pub ok: bool,
    pub error: Option<String>,
    /// The remote's URL with credentials redacted.
    pub url: String,
}

/// One remote's push in a run.
#[derive(Debug, Clone)]
pub struct PushResult {
    pub role: Role,
    pub record: PushRecord,
    /// Commits sent (0 when the remote was up to date).
    pub commits: usize,
    /// See [`Pushed::note`].
    pub note: Option<String>,
}

/// Push every configured remote; a failure is recorded in its result, not returned. `done` is
/// told each result as soon as it is known.
/// `history_failed`: the history remote already failed to answer in this run (asked by
/// [`adopt`]); it is not asked again, so a refused credential costs one attempt per run.
pub fn push_all(
    store: &Store,
    settings: &Settings,
    now: i64,
    history_failed: Option<&str>,
    done: &mut dyn FnMut(&PushResult),
) -> Vec<PushResult> {
    let options = match settings.remote_options() {
        Ok(options) => options,
        Err(e) => {
            // A bad transport or timeout setting fails every remote, loudly.
            let error = crate::error::error_line(&e);
            return [
                (Role::History, &settings.history_remote),
                (Role::Latest, &settings.latest_remote),
            ]
            .into_iter()
            .filter_map(|(role, url)| {
                Some(PushResult {
                    role,
                    record: PushRecord {
                        unix: now,
                        ok: false,
                        error: Some(error.clone()),
                        url: redact(url.as_ref()?),
                    },
                    commits: 0,
                    note: None,
                })
            })
            .inspect(|r| done(r))
            .collect();
        }
    };
    let mut results = Vec::new();
    for (role, url) in [
        (Role::History, &settings.history_remote),
        (Role::Latest, &settings.latest_remote),
    ] {
        let Some(url) = url else { continue };
        if role == Role::Latest {
            crate::failpoint::panic_at("push-latest");
            crate::failpoint::hit("push-latest-killed");
        }
        let mut result = PushResult {
            role,
            record: PushRecord {
                unix: now,
                ok: true,
                error: None,
                url: redact(url),
            },
            commits: 0,
            note: None,
        };
        let pushed = match (role, history_failed) {
            (Role::History, Some(cause)) => Err(anyhow!("{cause}")),
            _ => push(store, role, url, &options).or_else(|e| {
                // The remote was still updating the ref for an earlier push (one whose run was
                // killed while the server went on): ask it again, once, when it is done.
                if format!("{e:#}").contains("cannot lock ref") {
                    std::thread::sleep(std::time::Duration::from_secs(2));
                    push(store, role, url, &options)
                } else {
                    Err(e)
                }
            }),
        };
        match pushed {
            Ok(p) => {
                result.commits = if p.up_to_date { 0 } else { p.commits };
                result.note = p.note;
            }
            Err(e) => {
                result.record.ok = false;
                result.record.error = Some(crate::error::error_line(&e));
            }
        }
        done(&result);
        results.push(result);
    }
    results
}

/// Fetch the history remote's whole `main` into the repository at `git_dir` (the history
/// cache), with the git program (the libgit2 transport is not used for this). Returns the
/// fetched id (None: the remote is empty); bounded by the options' timeout. A main that moved
/// back (the remote was rewound) or went (it was emptied) leaves what it had kept in the cache
/// ([`crate::store::cache::keep_rewound`], [`crate::store::cache::keep_emptied`]).
pub fn fetch_history(
    git_dir: &std::path::Path,
    url: &str,
    options: &Options,
) -> Result<Option<Oid>> {
    validate_url(url)?;
    let before = Repository::open_bare(git_dir)
        .ok()
        .and_then(|r| r.refname_to_id("refs/heads/main").ok());
    let program = required_git("fetching snapshots from the history remote")?;
    let client = cli::GitCli::new(
        program,
        git_dir.to_path_buf(),
        options.ssh_key.clone(),
        options.timeout,
        options.token_scope.clone(),
    );
    let after = match client.fetch_history(url) {
        Ok(after) => after,
        // An empty remote lost all the cache holds, as a rewound one loses its newer part.
        Err(e) => match client.remote_main(url) {
            Ok(None) => {
                let cache = Repository::open_bare(git_dir)?;
                crate::store::cache::keep_emptied(&cache)?;
                return Ok(None);
            }
            _ => return Err(scrubbed(e, url)),
        },
    };
    let cache = Repository::open_bare(git_dir)?;
    crate::store::cache::keep_rewound(&cache, before, after)?;
    Ok(Some(after))
}
