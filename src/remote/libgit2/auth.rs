//! Credentials for the libgit2 transport, answered by one callback libgit2 asks in turn. A
//! password (the token, a git credential helper's) goes only to the remote's own scheme, host
//! and port: a redirect to anywhere else gets none. Helpers are asked through `git credential
//! fill` with the remote's URL, so they answer exactly what they answer `git push` (libgit2's
//! own helper call asks without the host when it is an IP address, and got any host's
//! password); without `git` no helper is asked. The key named with `--ssh-key` is offered
//! before ssh-agent's and `~/.ssh`'s, as a server stops after `MaxAuthTries` keys. Refused
//! credentials are said to be refused, naming where they came from (the URL, the token, a
//! helper), never "none available".

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use git2::{Cred, CredentialType, RemoteCallbacks};

use crate::remote::Userinfo;

/// What the credentials come from, owned (a call may run on a thread of its own).
#[derive(Clone)]
pub(super) struct AuthFrom {
    pub(super) ssh_key: Option<PathBuf>,
    /// The `scheme://host[:port]` that `SQLGIT_HTTPS_TOKEN` is for (see `token.rs`).
    pub(super) token_scope: Option<String>,
    /// The repository, whose config `git credential fill` reads as `git push` would.
    pub(super) git_dir: PathBuf,
}

/// The keys ssh tries from `~/.ssh`, in its order.
const DEFAULT_KEYS: &[&str] = &[
    "id_rsa",
    "id_ecdsa",
    "id_ecdsa_sk",
    "id_ed25519",
    "id_ed25519_sk",
    "id_dsa",
];

/// Credentials for `url`, with a cap on password attempts: refused credentials are not replayed
/// (a server counting failed logins would lock the account).
pub(super) fn callbacks(url: &str, from: &AuthFrom) -> RemoteCallbacks<'static> {
    crate::store::load_ca_certificates();
    let (remote, from) = (url.to_string(), from.clone());
    // A passphrase-protected key is not read from its file: ssh-agent offers it.
    let mut named = from
        .ssh_key
        .clone()
        .filter(|k| !crate::remote::cli::key_is_encrypted(k));
    let mut keys = default_keys(from.ssh_key.as_deref()).into_iter();
    let (mut agent, mut password_tries) = (true, 0);
    // What the one password offered came from, to say which credentials were refused.
    let mut offered = "";
    let mut callbacks = RemoteCallbacks::new();
    callbacks.credentials(move |asked, user, allowed| {
        // An ssh URL without a user logs in as the local user, as OpenSSH does.
        if allowed.contains(CredentialType::USERNAME)
            && let Some(local) = crate::remote::cli::local_user()
        {
            return Cred::username(&local);
        }
        if allowed.contains(CredentialType::SSH_KEY)
            && let Some(user) = user
        {
            if let Some(key) = named.take() {
                return key_file(user, &key);
            }
            if std::mem::take(&mut agent) {
                return Cred::ssh_key_from_agent(user);
            }
            if let Some(key) = keys.next() {
                return key_file(user, &key);
            }
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            password_tries += 1;
            if password_tries > 1 {
                return Err(refused(offered));
            }
            if !same_server(&remote, asked, user) {
                return Err(git2::Error::from_str(&format!(
                    "credentials are not sent to {}, where the remote redirected: only to the \
                     remote's own scheme, host and port",
                    crate::remote::redact(asked)
                )));
            }
            // libgit2 sends a URL's user and password itself before asking: asked now, they
            // were refused (sending something else after them would be a second failed login).
            if has_password(&remote) {
                return Err(refused(URL_PASSWORD));
            }
            if let Some((user, password, source)) = password_for(&remote, &from) {
                offered = source;
                return Cred::userpass_plaintext(&user, &password);
            }
        }
        Err(git2::Error::from_str("all authentication attempts failed"))
    });
    callbacks
}

fn key_file(user: &str, key: &Path) -> Result<Cred, git2::Error> {
    let mut public = key.as_os_str().to_owned();
    public.push(".pub");
    let public = PathBuf::from(public);
    Cred::ssh_key(
        user,
        public.is_file().then_some(public.as_path()),
        key,
        None,
    )
}

/// `~/.ssh`'s default keys that exist, without the one named with `--ssh-key` (offered first).
fn default_keys(named: Option<&Path>) -> Vec<PathBuf> {
    let Some(dir) = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ssh")) else {
        return Vec::new();
    };
    let named = named.and_then(|n| std::fs::canonicalize(n).ok());
    DEFAULT_KEYS
        .iter()
        .map(|k| dir.join(k))
        .filter(|k| k.is_file())
        .filter(|k| named.is_none() || std::fs::canonicalize(k).ok() != named)
        .collect()
}

/// Where the credentials libgit2 sent came from, as the refusal names them.
const URL_PASSWORD: &str = "the user and password in the URL";
const URL_TOKEN: &str = "the token given as the URL's user";
const TOKEN: &str = "SQLGIT_HTTPS_TOKEN";
const HELPER: &str = "from a git credential helper";

/// The error for credentials the remote refused, naming where they came from (`from`), so it is
/// never read as "none were given".
fn refused(from: &str) -> git2::Error {
    let from = match from {
        "" => String::new(),
        from => format!(" ({from})"),
    };
    git2::Error::from_str(&format!(
        "authentication failed: the remote refused the credentials{from}"
    ))
}

/// Whether the URL holds a password (`http://user:PASSWORD@host/…`), which libgit2 sends itself.
fn has_password(remote: &str) -> bool {
    Userinfo::of(remote).is_some_and(|u| u.password.is_some_and(|p| !p.is_empty()))
}

/// The credentials to offer for `remote` and where they come from, as the git transport gives
/// them: a token given as the URL's user (as user and password: forges take either), else the
/// token when `remote` is on its host, else what the user's git credential helpers answer.
fn password_for(remote: &str, from: &AuthFrom) -> Option<(String, String, &'static str)> {
    if let Some(info) = Userinfo::of(remote)
        && remote
            .get(..4)
            .is_some_and(|s| s.eq_ignore_ascii_case("http"))
        && crate::remote::url::looks_like_token(&info.decoded_user())
    {
        let token = info.decoded_user();
        return Some((token.clone(), token, URL_TOKEN));
    }
    if let Some((user, token)) =
        crate::remote::token::token_for(remote, from.token_scope.as_deref())
    {
        return Some((user, token, TOKEN));
    }
    helper_fill(remote, &from.git_dir).map(|(user, password)| (user, password, HELPER))
}

/// Whether libgit2 asks credentials (`asked`, the URL as it writes it: an IPv6 host without
/// brackets, no default port, its decoded user) for the remote's own scheme, user, host and
/// port, and not for where a redirect led.
pub(super) fn same_server(remote: &str, asked: &str, user: Option<&str>) -> bool {
    let Ok(parsed) = url::Url::parse(remote) else {
        return false;
    };
    let Some(host) = parsed.host_str() else {
        return false;
    };
    let remote_user = Userinfo::of(remote).map(|u| u.decoded_user());
    let user = user.filter(|u| !u.is_empty());
    if remote_user.as_deref().filter(|u| !u.is_empty()) != user {
        return false;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
    let host_port = format!("{host}{port}").to_ascii_lowercase();
    let Some((scheme, rest)) = asked.split_once("://") else {
        return false;
    };
    let rest = match user {
        None => rest,
        // The user, then maybe `:password`, then `@host`.
        Some(u) => {
            let Some(after) = rest.strip_prefix(u) else {
                return false;
            };
            let Some(at) = after.to_ascii_lowercase().find(&format!("@{host_port}/")) else {
                return false;
            };
            if at > 0 && !after.starts_with(':') {
                return false;
            }
            &after[at + 1..]
        }
    };
    let authority = rest.split('/').next().unwrap_or_default();
    scheme.eq_ignore_ascii_case(parsed.scheme()) && authority.eq_ignore_ascii_case(&host_port)
}

/// What `git credential fill` answers for `url` (its password left out), as `git push` would
/// ask: the user's helpers for that scheme, host, port (and path with `useHttpPath`), never a
/// prompt.
fn helper_fill(url: &str, git_dir: &Path) -> Option<(String, String)> {
    let git = crate::remote::cli::git_program()?;
    let url = Userinfo::of(url).map_or_else(|| url.to_string(), |u| u.without_password(true));
    if url.contains(['\n', '\0']) {
        return None;
    }
    let mut child = Command::new(git)
        .args(["credential", "fill"])
        .env("GIT_DIR", git_dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "")
        .env_remove("GIT_WORK_TREE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(format!("url={url}\n\n").as_bytes()));
    let out = child.wait_with_output().ok()?;
    if !out.status.success() || !matches!(written, Some(Ok(()))) {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_string)
    };
    Some((field("username")?, field("password")?))
}

#[cfg(test)]
mod tests {
    use super::same_server;

    #[test]
    fn credentials_go_to_the_remotes_own_scheme_host_and_port_only() {
        let remote = "http://[::1]:8080/git/h.git";
        assert!(same_server(remote, "http://::1:8080/git/h.git", None));
        assert!(same_server(remote, "http://::1:8080/git/other", None));
        assert!(!same_server(remote, "http://::1:8081/git/h.git", None));
        assert!(!same_server(remote, "https://::1:8080/git/h.git", None));
        let remote = "https://Alice@Git.Example.com/x.git";
        assert!(same_server(
            remote,
            "https://Alice@git.example.com/x.git",
            Some("Alice")
        ));
        assert!(!same_server(
            remote,
            "https://Alice@evil.example/x.git",
            Some("Alice")
        ));
        assert!(!same_server(
            "https://git.example.com/x.git",
            "https://git.example.com/@evil.example/x.git",
            Some("git.example.com/")
        ));
        assert!(!same_server(
            "http://127.0.0.1:1/x.git",
            "http://127.0.0.1:2/x.git",
            None
        ));
        assert!(same_server("https://h:443/x", "https://h/x", None));
    }
}
