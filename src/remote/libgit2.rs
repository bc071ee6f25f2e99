//! The libgit2 transport (git2): the fallback when no `git` program is installed,
//! or when `sqlgit.transport = libgit2`. Behaves as sqlgit always did: ssh-agent, `~/.ssh` keys,
//! `--ssh-key` (offered first), git credential helpers (through `git credential fill`) and the
//! HTTPS token, for the remote's own host only, one password attempt per connection (see `auth.rs`).
//!
//! A libgit2 network call cannot be interrupted, and a server that trickles bytes defeats its
//! socket timeouts. Asking a remote and pushing to it therefore run on a thread of their own
//! (with their own handle on the repository): past `--push-timeout` the run goes on without the
//! answer, as with a remote that cannot be reached — a hanging history remote must not keep the
//! snapshot from being taken, nor the latest remote from being pushed. A fetch writes into the
//! repository, so it is not left running: past the bound it stops the run.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use git2::{Oid, PushOptions, Repository};

mod auth;

use super::{Client, TOKEN_ENV};
use crate::progress::Progress;
use auth::{AuthFrom, callbacks};

pub struct Libgit2<'a> {
    repo: &'a Repository,
    ssh_key: Option<&'a PathBuf>,
    timeout: Duration,
    /// The `scheme://host[:port]` that `SQLGIT_HTTPS_TOKEN` is for (see `token.rs`).
    token_scope: Option<String>,
}

impl<'a> Libgit2<'a> {
    /// A client whose every network call is bounded by `timeout`: libgit2's own socket
    /// timeouts (http, git://), and past them (a server that trickles, an ssh server that never
    /// answers: nothing interrupts the call) an error while the call is left behind, or, for a
    /// fetch, a [`crate::stop::deadline`] that stops the run.
    pub fn new(
        repo: &'a Repository,
        ssh_key: Option<&'a PathBuf>,
        timeout: Duration,
        token_scope: Option<String>,
    ) -> Self {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: plain integer options, set before any network call.
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(ms);
            let _ = git2::opts::set_server_timeout_in_milliseconds(ms);
        }
        use_git_ca_settings(repo);
        Libgit2 {
            repo,
            ssh_key,
            timeout,
            token_scope,
        }
    }

    fn auth_from(&self) -> AuthFrom {
        AuthFrom {
            ssh_key: self.ssh_key.cloned(),
            token_scope: self.token_scope.clone(),
            git_dir: self.repo.path().to_path_buf(),
        }
    }

    /// How long a call may take: the socket timeouts, plus a little for libgit2 to say why.
    fn limit(&self) -> Duration {
        self.timeout + Duration::from_secs(5)
    }

    fn bounded(&self, what: &str, url: &str) -> crate::stop::Deadline {
        crate::stop::deadline(
            self.limit(),
            format!(
                "{what} {}: no answer within {} (--push-timeout); the libgit2 transport cannot \
                 be interrupted, so the run was stopped",
                super::redact(url),
                humantime::format_duration(self.timeout)
            ),
        )
    }

    /// `call` on a thread of its own with its own handle on the repository, waited for at most
    /// [`Self::limit`]: past it, an error, and the call is left to finish or end with the process.
    fn detached<T: Send + 'static>(
        &self,
        what: &str,
        url: &str,
        call: impl FnOnce(&Repository, &str, &AuthFrom) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let repo = crate::store::open_git_dir(self.repo.path())?;
        let (owned_url, from) = (url.to_string(), self.auth_from());
        let (answer, wait) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("sqlgit-remote".into())
            .spawn(move || {
                let _ = answer.send(call(&repo, &owned_url, &from));
            })?;
        match wait.recv_timeout(self.limit()) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => bail!(
                "{what} {}: no answer within {} (--push-timeout); the libgit2 call was left \
                 behind",
                super::redact(url),
                humantime::format_duration(self.timeout)
            ),
            Err(RecvTimeoutError::Disconnected) => {
                bail!(
                    "{what} {}: the call ended without an answer",
                    super::redact(url)
                )
            }
        }
    }
}

impl Client for Libgit2<'_> {
    fn remote_main(&self, url: &str) -> Result<Option<Oid>> {
        match self.detached("asking", url, remote_main) {
            Ok(listed) => super::local::checked_main(url, listed),
            Err(e) => Err(super::local::explained(url, e)),
        }
    }

    fn send(
        &self,
        url: &str,
        src: &str,
        force: bool,
        _unrelated: Option<Oid>,
        _lease: Option<Oid>,
    ) -> Result<()> {
        refuse_local_hooks(url)?;
        let refspec = format!("{}{src}:refs/heads/main", if force { "+" } else { "" });
        self.detached("pushing to", url, move |repo, url, from| {
            send(repo, url, &refspec, from)
        })
    }

    fn fetch_main(&self, url: &str, dst: &str) -> Result<Oid> {
        let _bound = self.bounded("fetching from", url);
        match self.fetch(url, dst, true) {
            // libgit2's local transport cannot fetch shallow: a local remote is fetched whole.
            Err(e) if e.to_string().contains("shallow fetch is not supported") => {
                self.fetch(url, dst, false)
            }
            other => other,
        }
    }
}

/// Trust a private CA the way git does: `GIT_SSL_CAINFO` / `GIT_SSL_CAPATH`, else
/// `http.sslCAInfo` / `http.sslCAPath` (the repository's config, the user's, the system's), in
/// addition to the system's certificates.
fn use_git_ca_settings(repo: &Repository) {
    let config = repo.config().ok();
    let setting = |env: &str, key: &str| {
        std::env::var_os(env)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| config.as_ref()?.get_path(key).ok())
            // git's GIT_CONFIG_GLOBAL, which libgit2 does not read.
            .or_else(|| crate::store::global_git_config()?.get_path(key).ok())
    };
    // SAFETY: set libgit2's global TLS context, which only connections read.
    if let Some(file) = setting("GIT_SSL_CAINFO", "http.sslCAInfo") {
        let _ = unsafe { git2::opts::set_ssl_cert_file(file) };
    }
    if let Some(dir) = setting("GIT_SSL_CAPATH", "http.sslCAPath") {
        let _ = unsafe { git2::opts::set_ssl_cert_dir(dir) };
    }
}

/// Hooks a local remote runs on a push, which libgit2 (writing into it directly) would skip.
const RECEIVE_HOOKS: &[&str] = &[
    "pre-receive",
    "update",
    "post-receive",
    "post-update",
    "reference-transaction",
    "proc-receive",
];

/// Refuse a push that libgit2 would write straight into a local remote with receive hooks:
/// they would not run (a refusal ignored, a replication never started).
fn refuse_local_hooks(url: &str) -> Result<()> {
    let Some(path) = super::local_dir(url) else {
        return Ok(());
    };
    let git_dir = if path.join("hooks").is_dir() {
        path
    } else {
        path.join(".git")
    };
    if let Some(hook) = RECEIVE_HOOKS
        .iter()
        .find(|h| git_dir.join("hooks").join(h).is_file())
    {
        bail!(
            "the remote {} has a {hook} hook, which only the git program runs (libgit2 writes \
             into a local repository directly, skipping its hooks and receive.* settings): \
             install git, or push to it over ssh://",
            super::redact(url)
        );
    }
    Ok(())
}

impl Libgit2<'_> {
    fn fetch(&self, url: &str, dst: &str, shallow: bool) -> Result<Oid> {
        let mut options = git2::FetchOptions::new();
        options
            .remote_callbacks(callbacks(url, &self.auth_from()))
            .download_tags(git2::AutotagOption::None)
            .update_fetchhead(false);
        if shallow {
            options.depth(1);
        }
        let mut remote = self
            .repo
            .remote_anonymous(url)
            .map_err(|e| anyhow!("bad remote URL: {}", e.message()))?;
        let refspec = format!("+refs/heads/main:{dst}");
        remote
            .fetch(&[refspec.as_str()], Some(&mut options), None)
            .map_err(|e| anyhow!("{}", explain(&e, url)))?;
        Ok(self.repo.refname_to_id(dst)?)
    }
}

/// The remote's `main`, or None when it has none.
fn remote_main(repo: &Repository, url: &str, from: &AuthFrom) -> Result<Option<Oid>> {
    let mut remote = repo
        .remote_anonymous(url)
        .map_err(|e| anyhow!("bad remote URL: {}", e.message()))?;
    let connection = remote
        .connect_auth(git2::Direction::Push, Some(callbacks(url, from)), None)
        .map_err(|e| anyhow!("{}", explain(&e, url)))?;
    let heads = connection
        .list()
        .map_err(|e| anyhow!("{}", explain(&e, url)))?;
    Ok(heads
        .iter()
        .find(|h| h.name() == "refs/heads/main")
        .map(|h| h.oid()))
}

fn send(repo: &Repository, url: &str, refspec: &str, from: &AuthFrom) -> Result<()> {
    let rejected: RefCell<Option<String>> = RefCell::new(None);
    let said: RefCell<String> = RefCell::new(String::new());
    let meter = Progress::items("pushing objects", 0);
    let mut callbacks = callbacks(url, from);
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
    remote.push(&[refspec], Some(&mut options)).map_err(|e| {
        super::leftlock::left_lock(url, e.message(), "libgit2")
            .unwrap_or_else(|| anyhow!("{}", explain(&e, url)))
    })?;
    drop(options);
    if let Some(reason) = rejected.into_inner() {
        let said = said.into_inner();
        if let Some(e) = super::leftlock::left_lock(url, &format!("{reason}\n{said}"), "libgit2") {
            return Err(e);
        }
        // The remote's own words, without its progress meters.
        let said: Vec<String> = said
            .split(['\r', '\n'])
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.contains('%'))
            .map(str::to_string)
            .collect();
        let said = crate::error::one_line(&said.join(" "));
        let said: String = said.chars().take(300).collect();
        // As the git transport says it: the latest remote is force-pushed every run.
        if refspec.starts_with('+')
            && (said.contains("denying non-fast-forward") || reason.contains("non-fast-forward"))
        {
            bail!(
                "the remote refuses forced pushes to main (receive.denyNonFastForwards, or a \
                 protected branch), and the latest remote is replaced by one new commit each \
                 run: allow force pushes to main there (in the remote repository: git config \
                 receive.denyNonFastForwards false) (libgit2: {reason})"
            );
        }
        if said.is_empty() {
            bail!("push rejected by the remote ({reason})");
        }
        bail!("push rejected by the remote ({reason}; the remote said: {said})");
    }
    Ok(())
}

fn explain(e: &git2::Error, url: &str) -> String {
    let msg = e.message();
    let ssh_url = url.starts_with("ssh://") || (!url.contains("://") && url.contains(':'));
    if msg.contains("cannot push because a reference that you are trying to update on the remote contains commits that are not present locally")
        || msg.contains("not present locally")
    {
        return super::DIVERGED.into();
    }
    let ssh = ssh_url || matches!(e.class(), git2::ErrorClass::Ssh);
    if msg.contains("failed to resolve address") && ssh {
        return format!(
            "{msg} (the libgit2 transport does not read ~/.ssh/config: a Host alias needs \
             --transport git)"
        );
    }
    if ssh && msg.contains("authentication") {
        let named = super::cli::ssh_destination(url).is_some_and(|(user, ..)| user.is_some());
        let as_user = match (named, super::cli::local_user()) {
            (true, _) => String::new(),
            (false, Some(user)) => format!(" as the local user {user}, the URL naming none"),
            (false, None) => {
                return format!(
                    "{msg} (the URL names no user, and the local user's name is unknown: \
                     write ssh://USER@HOST/PATH)"
                );
            }
        };
        return format!(
            "{msg} (no key was accepted{as_user}: a key with a passphrase must be in ssh-agent, \
             with SSH_AUTH_SOCK given to cron; or name a key without one: --ssh-key FILE)"
        );
    }
    // Every way of asking was tried (no token, no password in the URL, no credential helper):
    // say how to give credentials, as the git transport does.
    let http = url.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("http"));
    if http && msg.contains("authentication") && !msg.contains("refused the credentials") {
        return format!(
            "authentication required and no credentials available: sqlgit never prompts (set \
             {TOKEN_ENV}, put them in the URL, or configure a git credential helper) \
             (libgit2: {msg})"
        );
    }
    // A certificate naming another host fails libgit2's handshake as "SSL error: received
    // early EOF", nothing about the certificate: every TLS failure gets git's hint.
    if !ssh && (msg.to_ascii_lowercase().contains("certificate") || msg.contains("SSL error")) {
        return format!("{msg} ({})", super::cli::untrusted_certificate(true));
    }
    if ssh && msg.contains("exchange encryption keys") {
        return key_exchange_failed(msg, url);
    }
    if ssh && msg.contains("hostkey") {
        // libgit2 says the same for a host it does not know and for one whose key changed:
        // tell them apart, as ssh does, since the advice for one is dangerous for the other.
        return match known_host(url) {
            Some((name, types)) if !types.is_empty() => format!(
                "{msg} (the server's host key does not match the one ~/.ssh/known_hosts holds \
                 for {name}: it CHANGED — the server was rebuilt, or someone is in the middle; \
                 check the new key's fingerprint with the server's admin, then run ssh-keygen \
                 -R '{name}' and add the new key)"
            ),
            Some((name, _)) => format!(
                "{msg} (the server's host key is not in ~/.ssh/known_hosts: add it once with \
                 ssh-keyscan {} >> ~/.ssh/known_hosts, after checking its fingerprint)",
                keyscan_args(&name)
            ),
            None => format!(
                "{msg} (the server's host key is not in ~/.ssh/known_hosts, or it changed: \
                 check with ssh -p PORT HOST once, which says which)"
            ),
        };
    }
    msg.to_string()
}

/// A failed ssh key exchange explained. libgit2 asks the server only for host keys of the types
/// known_hosts holds for it: a server whose key was replaced by one of another type (rebuilt,
/// an old RSA key now ed25519) then offers none of them, and libssh2 says only that keys could
/// not be exchanged. When known_hosts holds keys for the host, that is the likely cause.
fn key_exchange_failed(msg: &str, url: &str) -> String {
    match known_host(url) {
        Some((name, types)) if !types.is_empty() => format!(
            "{msg} (~/.ssh/known_hosts holds a host key of type {} for {name}, and the server \
             offers no host key of that type: its host key was likely REPLACED — the server was \
             rebuilt, or someone is in the middle; check the new key's fingerprint with the \
             server's admin, then run ssh-keygen -R '{name}' and add the new key with \
             ssh-keyscan {} >> ~/.ssh/known_hosts)",
            types.join(", "),
            keyscan_args(&name)
        ),
        _ => format!(
            "{msg} (the server and the libgit2 transport share no key exchange, cipher or host \
             key type: try --transport git, which uses OpenSSH)"
        ),
    }
}

/// The name known_hosts files know the URL's host by (`host`, or `[host]:port` for another port
/// than 22) and the key types one of them (the user's, the system's; hashed entries too, as
/// `ssh-keygen -F` finds them) holds for it (none: the host is not known). None when it cannot
/// be told.
fn known_host(url: &str) -> Option<(String, Vec<String>)> {
    let (_, host, port) = super::cli::ssh_destination(url)?;
    let name = match port.as_deref() {
        Some(p) if p != "22" => format!("[{host}]:{p}"),
        _ => host,
    };
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let files = [
        home.map(|h| h.join(".ssh/known_hosts")),
        Some("/etc/ssh/ssh_known_hosts".into()),
    ];
    let mut types = Vec::new();
    for file in files.into_iter().flatten().filter(|f| f.is_file()) {
        let found = std::process::Command::new("ssh-keygen")
            .args(["-F", &name, "-f"])
            .arg(&file)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        if found.status.success() {
            types.extend(key_types(&String::from_utf8_lossy(&found.stdout)));
        }
    }
    types.sort();
    types.dedup();
    Some((name, types))
}

/// The key types of `ssh-keygen -F`'s known_hosts lines (`[@marker] NAMES TYPE KEY …`),
/// revoked keys and CA lines left out.
fn key_types(found: &str) -> impl Iterator<Item = String> + '_ {
    found
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('@'))
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(str::to_string)
}

/// `-p PORT HOST` (or `HOST`) for ssh-keyscan, from a known_hosts name.
fn keyscan_args(name: &str) -> String {
    match name
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("]:"))
    {
        Some((host, port)) => format!("-p {port} {host}"),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untrusted_certificate_names_the_ca_settings() {
        let e = git2::Error::from_str("the SSL certificate is invalid");
        let said = explain(&e, "https://127.0.0.1:8443/h.git");
        assert!(
            said.contains("GIT_SSL_CAINFO") && said.contains("http.sslCAInfo"),
            "{said}"
        );
    }

    #[test]
    fn an_http_remote_wanting_credentials_says_how_to_give_them() {
        let e = git2::Error::from_str("all authentication attempts failed");
        let said = explain(&e, "https://host/h.git");
        assert!(
            said.contains(TOKEN_ENV) && said.contains("credential helper"),
            "{said}"
        );
        let refused =
            git2::Error::from_str("authentication failed: the remote refused the credentials");
        assert!(!explain(&refused, "https://host/h.git").contains(TOKEN_ENV));
    }

    #[test]
    fn known_hosts_lines_give_their_key_types() {
        let found = "# Host [h]:2222 found: line 1\n[h]:2222 ssh-rsa AAAA\n\
                     |1|c2FsdA==|aGFzaA== ssh-ed25519 AAAA\n@revoked [h]:2222 ssh-dss AAAA\n";
        let types: Vec<String> = key_types(found).collect();
        assert_eq!(types, ["ssh-rsa", "ssh-ed25519"]);
    }
}
