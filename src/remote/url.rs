//! Remote URLs: what sqlgit accepts, remembers and shows of them. Credentials never leave
//! this module in the clear: a password (or a token given as the user name) is not remembered,
//! and messages show URLs with their userinfo as `***`. Also which URLs name the same
//! repository, so a configuration that would erase the history is refused.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};

use super::{TOKEN_ENV, urlquery};

/// Check a remote URL before it is remembered: a scheme URL must parse and use a transport
/// sqlgit speaks; `user@host:path` and local paths are taken as they are.
pub fn validate_url(url: &str) -> Result<()> {
    if url.starts_with('-') {
        bail!("bad remote URL {}: it must not start with '-'", redact(url));
    }
    refuse_scp_password(url)?;
    refuse_hidden_password(url)?;
    refuse_unusable_userinfo(url)?;
    if url.is_empty() || !url.contains("://") {
        return Ok(());
    }
    if url.contains(char::is_whitespace) {
        bail!(
            "bad remote URL {}: it contains a space (write a space in a URL as %20)",
            redact(url)
        );
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
/// A credential in the query string (`?access_token=…`) is masked too.
pub fn redact(url: &str) -> String {
    let url = match Userinfo::of(url) {
        Some(u) => format!("{}***@{}", u.prefix, u.rest),
        None => url.to_string(),
    };
    urlquery::without_secrets(&url, true).0
}

/// The URL without the password of its userinfo (the user stays), and whether there was one.
/// An HTTP(S) user name that is a token (`https://TOKEN@host/…`, as forges document it) counts
/// as a password: it goes too.
/// A credential in the query string (`?access_token=…`) goes too.
pub fn without_password(url: &str) -> (String, bool) {
    let (url, dropped) = match Userinfo::of(url) {
        Some(u) if u.password.is_some() => (u.without_password(true), true),
        Some(u) if u.prefix.starts_with("http") && looks_like_token(u.user) => {
            (u.without_password(false), true)
        }
        _ => (url.to_string(), false),
    };
    let (url, in_query) = urlquery::without_secrets(&url, false);
    (url, dropped || in_query)
}

/// Whether an HTTP user name is an access token: a known token prefix, or a long run of
/// letters, digits, `_` and `-` (user names are short; tokens are 32+ random characters).
pub(super) fn looks_like_token(user: &str) -> bool {
    const PREFIXES: [&str; 8] = [
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "ghr_",
        "github_pat_",
        "glpat-",
        "gldt-",
    ];
    PREFIXES.iter().any(|p| user.starts_with(p))
        || user.len() >= 32
            && user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `recorded` (a URL as push records keep it: [`redact`]ed) is `url`'s record: equal
/// without their user and password.
pub fn is_recorded_as(url: &str, recorded: &str) -> bool {
    let bare = |u: &str| {
        let u = Userinfo::of(u).map_or_else(|| u.to_string(), |i| i.without_password(false));
        urlquery::without_secrets(&u, true).0
    };
    bare(url) == bare(recorded)
}

/// Whether two remote settings name the same remote (passwords aside).
pub fn same_remote(a: Option<&str>, b: Option<&str>) -> bool {
    a.map(|u| without_password(u).0) == b.map(|u| without_password(u).0)
}

/// The repository a remote URL names, as comparable text: a local path (plain, or `file://`)
/// made absolute and resolved (symlinks too; one that does not exist, without its `.`, `..`,
/// doubled and trailing `/`); any other URL without its credentials, trailing `/` and `.git`.
/// `ssh_config`: an ssh remote's host alias is resolved as ssh resolves it (see `alias.rs`), ssh
/// run as git runs it for the repository there.
fn repository_named(url: &str, ssh_config: Option<&Path>) -> String {
    if let Some(p) = local_dir(url) {
        let p = p.as_path();
        let reached = repository_at(p);
        let p = reached.as_deref().unwrap_or(p);
        return match p.canonicalize() {
            Ok(real) => real.display().to_string(),
            Err(_) => {
                let absolute = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
                without_dot_segments(&absolute.display().to_string())
            }
        };
    }
    resolved_parts(url, ssh_config).text()
}

/// A network remote's [`RemoteParts`], an ssh host alias resolved when `ssh_config` says ssh
/// reads `~/.ssh/config` (see [`repository_named`]).
fn resolved_parts(url: &str, ssh_config: Option<&Path>) -> RemoteParts {
    let mut parts = RemoteParts::of(url);
    if let Some(repo_dir) = ssh_config.filter(|_| parts.scheme == "ssh") {
        alias::resolve(&mut parts, repo_dir);
    }
    parts
}

/// A network remote's URL in the parts that say which repository it reaches, compared as the
/// text `SCHEME://HOST[:PORT]/PATH` ([`RemoteParts::text`]) with the scheme and host in lower
/// case (an IP address in its one spelling); without userinfo, a default port, repeated `/`, a
/// trailing `/` or `.git`; an scp-like `[user@]host:path` as the `ssh://` URL it stands for (a
/// relative path is in the user's home: `ssh://user@host/~/path`, the only case where the user
/// counts).
struct RemoteParts {
    /// In lower case; `git+ssh` and `ssh+git` are `ssh`.
    scheme: String,
    user: Option<String>,
    /// In lower case, as written (an IPv6 address in brackets).
    host: String,
    /// As the URL gives it (None: none given); the scheme's default is left out of the text, but
    /// for ssh, a port given overrides `~/.ssh/config`'s.
    port: Option<String>,
    /// Decoded, without dot segments, a trailing `/` or `.git`.
    path: String,
}

impl RemoteParts {
    fn of(url: &str) -> RemoteParts {
        let bare = Userinfo::of(url).map_or_else(|| url.to_string(), |u| u.without_password(true));
        // A URL's path reaches the server `%XX`-decoded (git, curl, git daemon); an scp-like
        // path is taken as written.
        let (scheme, rest, decoded) = match bare.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest.to_string(), true),
            None => ("ssh".to_string(), scp_as_url(&bare), false),
        };
        let scheme = match scheme.as_str() {
            "git+ssh" | "ssh+git" => "ssh".to_string(),
            _ => scheme,
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        // A URL's user is sent decoded too (`alice%40x` is `alice@x`).
        let (user, host) = match authority.rsplit_once('@') {
            Some((user, host)) if decoded => (Some(percent_decode(user)), host),
            Some((user, host)) => (Some(user.to_string()), host),
            None => (None, authority),
        };
        let host = host.to_ascii_lowercase();
        let (host, port) = match host.rsplit_once(':') {
            Some((name, port))
                if port.bytes().all(|b| b.is_ascii_digit())
                    && (!name.starts_with('[') || name.ends_with(']')) =>
            {
                (
                    name.to_string(),
                    Some(port.trim_start_matches('0').to_string()),
                )
            }
            _ => (host, None),
        };
        let path = match decoded {
            true => String::from_utf8_lossy(&percent_decode_bytes(path)).into_owned(),
            false => path.to_string(),
        };
        let path = without_dot_segments(&path);
        let path = path.trim_end_matches('/');
        let path = path
            .strip_suffix(".git")
            .unwrap_or(path)
            .trim_end_matches('/');
        RemoteParts {
            scheme,
            user,
            host,
            port: port.filter(|p| !p.is_empty()),
            path: path.to_string(),
        }
    }

    /// The port it reaches: the one given, else the scheme's default ("" for none).
    fn port_reached(&self) -> &str {
        self.port
            .as_deref()
            .unwrap_or_else(|| default_port(&self.scheme))
    }

    /// `SCHEME://HOST[:PORT]`, the scheme's default port left out.
    fn server(&self) -> String {
        let port = Some(self.port_reached()).filter(|p| *p != default_port(&self.scheme));
        let port = port.map(|p| format!(":{p}"));
        let (scheme, host) = (&self.scheme, normal_host(&self.host));
        format!("{scheme}://{host}{}", port.unwrap_or_default())
    }

    fn text(&self) -> String {
        let server = self.server();
        match self.home_user() {
            Some(user) => {
                let (scheme, host) = server.split_at(self.scheme.len() + 3);
                format!("{scheme}{user}@{host}{}", self.path)
            }
            None => format!("{server}{}", self.path),
        }
    }

    /// The user whose home the path is in (`/~/…`): the only case where the user counts.
    fn home_user(&self) -> Option<&str> {
        let in_home = self.path == "/~" || self.path.starts_with("/~/");
        self.user.as_deref().filter(|_| in_home)
    }

    /// Where on its server it is: the path, and the user when the path is in their home.
    fn place(&self) -> (Option<&str>, &str) {
        (self.home_user(), &self.path)
    }
}

/// A scheme's default port ("" for none).
fn default_port(scheme: &str) -> &'static str {
    match scheme {
        "http" => "80",
        "https" => "443",
        "ssh" => "22",
        "git" => "9418",
        _ => "",
    }
}

/// A host in the one spelling that names it: an IP address as the `SQLGIT_HTTPS_TOKEN` host
/// check (an http URL's host, as the url crate parses it) and `inet_aton` read it
/// (`2130706433` and `127.000.000.001` are `127.0.0.1`; `[0:0::1]` is `[::1]`), a name in lower
/// case.
pub(crate) fn normal_host(host: &str) -> String {
    match url::Host::parse(host) {
        Ok(url::Host::Ipv4(ip)) => ip.to_string(),
        Ok(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        _ => host.to_ascii_lowercase(),
    }
}

/// A URL path without empty, `.` and `..` segments (as curl and a remote shell resolve them);
/// starts with `/` unless empty.
fn without_dot_segments(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            // `~/..` is the home's parent, not `/`: kept as written.
            ".." if kept.last().is_some_and(|s| *s != "~" && *s != "..") => {
                kept.pop();
            }
            ".." if kept.is_empty() => {}
            s => kept.push(s),
        }
    }
    kept.iter().map(|s| format!("/{s}")).collect()
}

/// `%XX` escapes decoded, as bytes (`+` stays `+`; a `%` not followed by two hex digits stays).
pub(crate) fn percent_decode_bytes(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The directory of a local remote: a plain path, or a `file://` URL's as git finds it
/// (`parse_connect_url`): the URL percent-decoded, then its path from the first `/` after
/// `file://`, so a host (`file://localhost/srv/h.git`, or any other, which git ignores) is no
/// part of it. None for a `file://` URL without a path (git refuses it).
pub(crate) fn local_dir(url: &str) -> Option<PathBuf> {
    if let Some(path) = local_path(url) {
        return Some(PathBuf::from(path));
    }
    let rest = percent_decode_bytes(url.strip_prefix("file://")?);
    let path = rest.iter().position(|&b| b == b'/')?;
    use std::os::unix::ffi::OsStringExt as _;
    Some(PathBuf::from(std::ffi::OsString::from_vec(
        rest[path..].to_vec(),
    )))
}

/// An scp-like `[user@]host:path` as the rest of an `ssh://` URL: `[user@]host/path`, a
/// relative path under `/~/` (git takes it from the home folder).
fn scp_as_url(scp: &str) -> String {
    let split = match scp.find("]:") {
        Some(end) => Some((&scp[..=end], &scp[end + 2..])),
        None => scp.split_once(':'),
    };
    let Some((host, path)) = split else {
        return scp.to_string();
    };
    if path.starts_with('/') {
        format!("{host}{path}")
    } else if path.starts_with('~') {
        format!("{host}/{path}")
    } else {
        format!("{host}/~/{path}")
    }
}

/// The repository git reaches at a local path, found as git finds it (`enter_repo`): the first of
/// `PATH/.git`, `PATH`, `PATH.git/.git` and `PATH.git` that is a repository, a `.git` file
/// followed to the folder it names. So `/srv/app` is `/srv/app.git` when only that exists (or
/// `/srv/app` is an empty folder), and a work tree is its `.git`.
fn repository_at(path: &Path) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let end = bytes.iter().rposition(|&b| b != b'/').map_or(1, |i| i + 1);
    let base = &bytes[..end.min(bytes.len())];
    ["/.git", "", ".git/.git", ".git"]
        .iter()
        .find_map(|suffix| {
            let candidate = PathBuf::from(std::ffi::OsStr::from_bytes(
                &[base, suffix.as_bytes()].concat(),
            ));
            if candidate.is_file() {
                let text = std::fs::read_to_string(&candidate).unwrap_or_default();
                return Some(match text.strip_prefix("gitdir:") {
                    Some(dir) => candidate
                        .parent()
                        .map_or_else(PathBuf::new, Path::to_path_buf)
                        .join(dir.trim()),
                    None => candidate,
                });
            }
            let is_repository =
                candidate.join("HEAD").is_file() && candidate.join("objects").is_dir();
            is_repository.then_some(candidate)
        })
}

/// A remote given as a plain local path (not a URL, not scp-like `host:path`).
pub fn local_path(url: &str) -> Option<&str> {
    let scp_like = url
        .find(':')
        .is_some_and(|c| url.find('/').is_none_or(|s| c < s));
    (!url.is_empty() && !url.contains("://") && !scp_like).then_some(url)
}

/// The relative path a remote URL names on this machine, if it names one: a plain path that is
/// not absolute (`hist.git`, `../backup/h.git`), or a `file://` URL whose "host" is `.` or `..`
/// (`file://./h.git`, which git reads as `/h.git`) or that has no path (`file://h.git`, which
/// git cannot use): a run would look for it from the folder it starts in.
pub fn relative_local(url: &str) -> Option<&str> {
    if let Some(path) = local_path(url) {
        return (!Path::new(path).is_absolute()).then_some(path);
    }
    let rest = url.strip_prefix("file://")?;
    match rest.split_once('/') {
        Some(("." | "..", _)) => Some(rest),
        None if !rest.is_empty() => Some(rest),
        _ => None,
    }
}

/// Refuse remotes that would destroy what they are for: the latest remote force-pushes one
/// parentless commit, so on the history remote's repository it would erase the history (which
/// pruning relies on); the repository itself as a remote confirms nothing.
/// `names`: how the history and latest remotes' settings are named to the user (the flag, or
/// the config key when the value came from there).
/// `ssh_config`: the remotes are reached with OpenSSH (the git transport), which reads
/// `~/.ssh/config`: a host alias there is resolved to the server it names.
pub fn check_roles(
    repo_dir: &Path,
    history: Option<&str>,
    latest: Option<&str>,
    names: [&str; 2],
    ssh_config: bool,
) -> Result<()> {
    fn set(u: Option<&str>) -> Option<&str> {
        u.filter(|u| !u.is_empty())
    }
    let ssh = |u: Option<&str>| {
        set(u).is_some_and(|u| local_dir(u).is_none() && RemoteParts::of(u).scheme == "ssh")
    };
    // Resolved only when both are ssh remotes: another scheme is another repository anyway.
    let resolve = (ssh_config && ssh(history) && ssh(latest)).then_some(repo_dir);
    let named = |u: Option<&str>| set(u).map(|u| repository_named(u, resolve));
    let (h, l) = (named(history), named(latest));
    let same = match (set(history), set(latest)) {
        (Some(history), Some(latest)) => same_repository(history, latest, resolve),
        _ => false,
    };
    if same {
        bail!(
            "{} and {} name the same repository: the latest remote is force-pushed one commit, \
             which would erase the history; give them different repositories (run: sqlgit init \
             --repo {} --latest-remote URL, or --latest-remote '' for none)",
            names[0],
            names[1],
            crate::shellword::path(repo_dir)
        );
    }
    let own = repo_dir
        .canonicalize()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    for (flag, remote) in [(names[0], &h), (names[1], &l)] {
        if remote.as_deref() == Some(own.as_str()) {
            bail!("{flag} is this repository itself: give another repository");
        }
    }
    Ok(())
}

/// Remove anything secret (the URL's userinfo, the token) from a message.
pub(crate) fn scrub(message: &str, url: &str) -> String {
    let mut out = message.replace(url, &redact(url));
    if let Ok(token) = std::env::var(TOKEN_ENV)
        && !token.is_empty()
    {
        out = out.replace(&token, "***");
    }
    for secret in urlquery::secret_values(url)
        .into_iter()
        .filter(|v| v.len() >= 4)
    {
        out = out.replace(secret, "***");
    }
    if let Some(info) = Userinfo::of(url) {
        // As written and as sent (`%XX` decoded), either of which a message may quote.
        if let Some(password) = info.password.filter(|p| !p.is_empty()) {
            out = out.replace(password, "***");
        }
        if let Some(password) = info.decoded_password().filter(|p| !p.is_empty()) {
            out = out.replace(&password, "***");
        }
        // A token given as the user (git quotes the URL without its path: "could not read
        // Password for 'https://TOKEN@host'").
        if without_password(url).1 && info.password.is_none() && !info.user.is_empty() {
            out = out.replace(info.user, "***");
        }
    }
    out
}

/// The URL's user as git sends it (`%XX` decoded).
pub(crate) fn url_user(url: &str) -> Option<String> {
    Userinfo::of(url).map(|u| u.decoded_user())
}

mod alias;
mod server;
#[cfg(test)]
mod tests;
mod userinfo;

use server::same_repository;
pub(crate) use server::{Server, server_of};

pub(crate) use userinfo::{Userinfo, percent_decode};
pub use userinfo::{refuse_hidden_password, refuse_scp_password, refuse_unusable_userinfo};
