//! Pushing snapshots off-site, to two remotes with different jobs:
//!
//! * the **latest** remote gets one parentless commit with the head's tree, force-pushed, so a
//!   fresh clone is small;
//! * the **history** remote gets every snapshot commit (fast-forward pushes).
//!
//! Each is pushed independently; what a remote accepted is recorded in a remote-tracking ref
//! (`refs/remotes/history/main`, `refs/remotes/latest/main`), updated only on acceptance —
//! pruning relies on it. URLs are shown only with their credentials redacted.

use std::cell::RefCell;
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use auth_git2::GitAuthenticator;
use git2::{Oid, PushOptions, RemoteCallbacks, Repository};

use crate::progress::Progress;
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
}

/// Check a remote URL before it is remembered: a scheme URL must parse and use a transport
/// sqlgit speaks; `user@host:path` and local paths are taken as they are.
pub fn validate_url(url: &str) -> Result<()> {
    if url.is_empty() || !url.contains("://") {
        return Ok(());
    }
    let parsed =
        url::Url::parse(url).map_err(|e| anyhow!("bad remote URL {}: {e}", redact(url)))?;
    match parsed.scheme() {
        "ssh" | "git" | "http" | "https" | "file" => Ok(()),
        other => bail!(
            "bad remote URL {}: unsupported scheme {other:?} (use ssh, https, http, git or file)",
            redact(url)
        ),
    }
}

/// `https://user:secret@host/x` → `https://***@host/x`; other URLs unchanged.
pub fn redact(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            return format!("{}://***@{}", &url[..scheme_end], &rest[at + 1..]);
        }
    }
    url.to_string()
}

/// Remove anything secret (the URL's userinfo, the token) from a message.
fn scrub(message: &str, url: &str) -> String {
    let mut out = message.replace(url, &redact(url));
    if let Ok(token) = std::env::var(TOKEN_ENV)
        && !token.is_empty()
    {
        out = out.replace(&token, "***");
    }
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@')
            && let Some((_, password)) = rest[..at].split_once(':')
            && !password.is_empty()
        {
            out = out.replace(password, "***");
        }
    }
    out
}

/// Push to one remote: the role decides what and how.
pub fn push(store: &Store, role: Role, url: &str, ssh_key: Option<&PathBuf>) -> Result<Pushed> {
    let repo = &store.repo;
    let Some(head) = store.head()? else {
        bail!("nothing to push: the repository has no snapshots yet");
    };
    let (local, refspec, tracking) = match role {
        Role::History => (
            head.id(),
            format!("{BRANCH}:refs/heads/main"),
            HISTORY_TRACKING,
        ),
        Role::Latest => {
            let copy = latest_commit(repo, &head)?;
            repo.reference(LATEST_LOCAL, copy, true, "sqlgit: latest")?;
            (
                copy,
                format!("+{LATEST_LOCAL}:refs/heads/main"),
                LATEST_TRACKING,
            )
        }
    };
    validate_url(url)?;
    let scrubbed = |e: anyhow::Error| anyhow!("{}", scrub(&format!("{e:#}"), url));
    // Ask the remote what it has: a tracking ref can be stale (remote recreated, URL changed).
    let remote_main = remote_main(repo, url, ssh_key).map_err(scrubbed)?;
    if remote_main == Some(local) {
        repo.reference(tracking, local, true, "sqlgit: confirmed")?;
        return Ok(Pushed {
            commits: 0,
            up_to_date: true,
        });
    }
    let known_remote_tip = remote_main.is_some_and(|id| repo.find_commit(id).is_ok());
    if role == Role::History && repo.path().join("shallow").exists() && !known_remote_tip {
        bail!(
            "local history was pruned before this remote received it: pushing would leave the \
             remote with commits whose parents are missing (give a history remote that has the \
             pruned snapshots, or keep pruning off until a history remote is set up)"
        );
    }
    let commits = match role {
        Role::Latest => 1,
        Role::History => {
            let base = remote_main
                .filter(|id| repo.find_commit(*id).is_ok())
                .unwrap_or(Oid::ZERO_SHA1);
            count_between(repo, local, base)
        }
    };
    send(repo, url, &refspec, ssh_key).map_err(scrubbed)?;
    repo.reference(tracking, local, true, "sqlgit: pushed")?;
    Ok(Pushed {
        commits,
        up_to_date: false,
    })
}

/// The head's tree in a commit without parents, with the head's author, time and message:
/// the same head always gives the same commit id.
fn latest_commit(repo: &Repository, head: &git2::Commit) -> Result<Oid> {
    let tree = head.tree()?;
    let message = head.message_raw().unwrap_or_default();
    Ok(repo.commit(None, &head.author(), &head.committer(), message, &tree, &[])?)
}

fn count_between(repo: &Repository, tip: Oid, base: Oid) -> usize {
    let Ok(mut walk) = repo.revwalk() else {
        return 0;
    };
    if walk.push(tip).is_err() {
        return 0;
    }
    if !base.is_zero() {
        let _ = walk.hide(base);
    }
    walk.count()
}

fn authenticator(url: &str, ssh_key: Option<&PathBuf>) -> GitAuthenticator {
    let mut auth = GitAuthenticator::new_empty()
        .try_ssh_agent(true)
        .add_default_ssh_keys()
        .try_cred_helper(true);
    if let Some(key) = ssh_key {
        auth = auth.add_ssh_key_from_file(key.clone(), None);
    }
    if let Ok(token) = std::env::var(TOKEN_ENV) {
        let user = std::env::var(TOKEN_USER_ENV)
            .ok()
            .or_else(|| url_user(url))
            .unwrap_or_else(|| "sqlgit".into());
        auth = auth.add_plaintext_credentials("*", user, token);
    }
    auth
}

/// Credentials, with a cap on password attempts: refused credentials are not replayed (a
/// server counting failed logins would lock the account).
fn callbacks<'a>(auth: &'a GitAuthenticator, config: &'a git2::Config) -> RemoteCallbacks<'a> {
    let mut inner = auth.credentials(config);
    let mut password_tries = 0;
    let mut callbacks = RemoteCallbacks::new();
    callbacks.credentials(move |url, user, allowed| {
        if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT) {
            password_tries += 1;
            if password_tries > 1 {
                return Err(git2::Error::from_str(
                    "authentication failed: the remote refused the credentials",
                ));
            }
        }
        inner(url, user, allowed)
    });
    callbacks
}

/// The remote's `main`, or None when it has none.
fn remote_main(repo: &Repository, url: &str, ssh_key: Option<&PathBuf>) -> Result<Option<Oid>> {
    let auth = authenticator(url, ssh_key);
    let config = repo.config()?;
    let mut remote = repo
        .remote_anonymous(url)
        .map_err(|e| anyhow!("bad remote URL: {}", e.message()))?;
    let connection = remote
        .connect_auth(git2::Direction::Push, Some(callbacks(&auth, &config)), None)
        .map_err(|e| anyhow!("{}", explain(&e)))?;
    let heads = connection.list().map_err(|e| anyhow!("{}", explain(&e)))?;
    Ok(heads
        .iter()
        .find(|h| h.name() == "refs/heads/main")
        .map(|h| h.oid()))
}

fn send(repo: &Repository, url: &str, refspec: &str, ssh_key: Option<&PathBuf>) -> Result<()> {
    let auth = authenticator(url, ssh_key);
    let config = repo.config()?;
    let rejected: RefCell<Option<String>> = RefCell::new(None);
    let said: RefCell<String> = RefCell::new(String::new());
    let meter = Progress::items("pushing objects", 0);
    let mut callbacks = callbacks(&auth, &config);
    callbacks.push_update_reference(|refname, status| {
        if let Some(status) = status {
            *rejected.borrow_mut() = Some(format!("{refname}: {status}"));
        }
        Ok(())
    });
    callbacks.sideband_progress(|text| {
        let mut said = said.borrow_mut();
        if said.len() < 4096 {
            said.push_str(&String::from_utf8_lossy(text));
        }
        true
    });
    callbacks.push_transfer_progress(|current, total, _bytes| {
        meter.set(current as u64, total as u64);
    });
    let mut options = PushOptions::new();
    options.remote_callbacks(callbacks);
    let mut remote = repo
        .remote_anonymous(url)
        .map_err(|e| anyhow!("bad remote URL: {}", e.message()))?;
    remote
        .push(&[refspec], Some(&mut options))
        .map_err(|e| anyhow!("{}", explain(&e)))?;
    drop(options);
    if let Some(reason) = rejected.into_inner() {
        // The remote's own words, without its progress meters.
        let said: Vec<String> = said
            .into_inner()
            .split(['\r', '\n'])
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.contains('%'))
            .map(str::to_string)
            .collect();
        let said = crate::error::one_line(&said.join(" "));
        let said: String = said.chars().take(300).collect();
        if said.is_empty() {
            bail!("push rejected by the remote ({reason})");
        }
        bail!("push rejected by the remote ({reason}; the remote said: {said})");
    }
    Ok(())
}

fn explain(e: &git2::Error) -> String {
    let msg = e.message();
    if msg.contains("cannot push because a reference that you are trying to update on the remote contains commits that are not present locally")
        || msg.contains("not present locally")
    {
        return "the remote's main has commits this repository does not have (it diverged: someone else pushed there)".into();
    }
    msg.to_string()
}

fn url_user(url: &str) -> Option<String> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    Some(userinfo.split(':').next()?.to_string())
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
}

/// Push every configured remote; a failure is recorded in its result, not returned.
pub fn push_all(store: &Store, settings: &Settings, now: i64) -> Vec<PushResult> {
    let ssh_key = settings.ssh_key.as_ref().map(PathBuf::from);
    let mut results = Vec::new();
    for (role, url) in [
        (Role::History, &settings.history_remote),
        (Role::Latest, &settings.latest_remote),
    ] {
        let Some(url) = url else { continue };
        let mut result = PushResult {
            role,
            record: PushRecord {
                unix: now,
                ok: true,
                error: None,
                url: redact(url),
            },
            commits: 0,
        };
        match push(store, role, url, ssh_key.as_ref()) {
            Ok(p) => result.commits = if p.up_to_date { 0 } else { p.commits },
            Err(e) => {
                result.record.ok = false;
                result.record.error = Some(crate::error::error_line(&e));
            }
        }
        results.push(result);
    }
    results
}

/// Forget what a remote confirmed (its URL changed: the new one may have nothing).
pub fn forget_confirmed(store: &Store, role: Role) -> Result<()> {
    let tracking = match role {
        Role::History => HISTORY_TRACKING,
        Role::Latest => LATEST_TRACKING,
    };
    if let Ok(mut r) = store.repo.find_reference(tracking) {
        r.delete()?;
    }
    Ok(())
}

/// The newest snapshot the history remote confirmed having.
pub fn confirmed_history(store: &Store) -> Option<Oid> {
    store.repo.refname_to_id(HISTORY_TRACKING).ok()
}

/// How many snapshot commits the history remote has not confirmed.
pub fn pending_history(store: &Store) -> Result<usize> {
    let Some(head) = store.head()? else {
        return Ok(0);
    };
    let base = store
        .repo
        .refname_to_id(HISTORY_TRACKING)
        .unwrap_or(Oid::ZERO_SHA1);
    Ok(count_between(&store.repo, head.id(), base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo() {
        assert_eq!(
            redact("https://u:p@h.example/x.git"),
            "https://***@h.example/x.git"
        );
        assert_eq!(redact("https://h.example/a@b"), "https://h.example/a@b");
        assert_eq!(redact("git@host:repo.git"), "git@host:repo.git");
        let msg = scrub(
            "failed for https://u:s3cret@h/x (s3cret)",
            "https://u:s3cret@h/x",
        );
        assert!(!msg.contains("s3cret"), "{msg}");
    }
}
