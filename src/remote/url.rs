//! Remote URLs: what sqlgit accepts, remembers and shows of them. Credentials never leave
//! this module in the clear: a password (or a token given as the user name) is not remembered,
//! and messages show URLs with their userinfo as `***`. Also which URLs name the same
//! repository, so a configuration that would erase the history is refused.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};

use super::TOKEN_ENV;

/// Check a remote URL before it is remembered: a scheme URL must parse and use a transport
/// sqlgit speaks; `user@host:path` and local paths are taken as they are.
pub fn validate_url(url: &str) -> Result<()> {
    if url.starts_with('-') {
        bail!("bad remote URL {}: it must not start with '-'", redact(url));
    }
    refuse_scp_password(url)?;
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

/// Refuse an scp-like address with a password (`user:password@host:path`): ssh never takes
/// it, and it must be neither saved nor shown.
pub fn refuse_scp_password(url: &str) -> Result<()> {
    if !url.contains("://")
        && let Some((before, _)) = url.split_once('@')
        && let Some((user, _)) = before.split_once(':')
        && !before.contains('/')
    {
        bail!(
            "bad remote URL {user}:…@…: a password in an scp-like address \
             (user:password@host:path) is not something ssh takes, and sqlgit never stores one; \
             give user@host:path and a key (--ssh-key FILE, or ssh-agent)"
        );
    }
    Ok(())
}

/// A scheme URL split around its userinfo: `SCHEME://USER[:PASSWORD]@REST`. None for URLs
/// without `://` or without userinfo.
pub(crate) struct Userinfo<'a> {
    scheme: &'a str,
    pub user: &'a str,
    pub password: Option<&'a str>,
    /// Host, port and path.
    rest: &'a str,
}

impl<'a> Userinfo<'a> {
    pub fn of(url: &'a str) -> Option<Userinfo<'a>> {
        let scheme_end = url.find("://")?;
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let at = rest[..authority_end].rfind('@')?;
        let (user, password) = match rest[..at].split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (&rest[..at], None),
        };
        Some(Userinfo {
            scheme: &url[..scheme_end],
            user,
            password,
            rest: &rest[at + 1..],
        })
    }

    /// The URL again, with its user (when `keep_user` and there is one) and no password.
    pub fn without_password(&self, keep_user: bool) -> String {
        match self.user {
            user if keep_user && !user.is_empty() => {
                format!("{}://{user}@{}", self.scheme, self.rest)
            }
            _ => format!("{}://{}", self.scheme, self.rest),
        }
    }
}

/// `https://user:secret@host/x` → `https://***@host/x`; other URLs unchanged.
pub fn redact(url: &str) -> String {
    match Userinfo::of(url) {
        Some(u) => format!("{}://***@{}", u.scheme, u.rest),
        None => url.to_string(),
    }
}

/// The URL without the password of its userinfo (the user stays), and whether there was one.
/// An HTTP(S) user name that is a token (`https://TOKEN@host/…`, as forges document it) counts
/// as a password: it goes too.
pub fn without_password(url: &str) -> (String, bool) {
    match Userinfo::of(url) {
        Some(u) if u.password.is_some() => (u.without_password(true), true),
        Some(u) if u.scheme.starts_with("http") && looks_like_token(u.user) => {
            (u.without_password(false), true)
        }
        _ => (url.to_string(), false),
    }
}

/// Whether an HTTP user name is an access token: a known token prefix, or a long run of
/// letters, digits, `_` and `-` (user names are short; tokens are 32+ random characters).
fn looks_like_token(user: &str) -> bool {
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
    let bare =
        |u: &str| Userinfo::of(u).map_or_else(|| u.to_string(), |i| i.without_password(false));
    bare(url) == bare(recorded)
}

/// Whether two remote settings name the same remote (passwords aside).
pub fn same_remote(a: Option<&str>, b: Option<&str>) -> bool {
    a.map(|u| without_password(u).0) == b.map(|u| without_password(u).0)
}

/// The repository a remote URL names, as comparable text: a local path (plain, or `file://`)
/// made absolute and resolved; any other URL without its credentials, trailing `/` and `.git`.
fn repository_named(url: &str) -> String {
    let path = url.strip_prefix("file://").or_else(|| local_path(url));
    if let Some(p) = path {
        let p = Path::new(p);
        let reached = repository_at(p);
        let p = reached.as_deref().unwrap_or(p);
        let named = p.canonicalize().or_else(|_| std::path::absolute(p));
        return named
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string();
    }
    let bare = without_password(url).0;
    let bare = bare.trim_end_matches('/');
    bare.strip_suffix(".git").unwrap_or(bare).to_string()
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

/// Refuse remotes that would destroy what they are for: the latest remote force-pushes one
/// parentless commit, so on the history remote's repository it would erase the history (which
/// pruning relies on); the repository itself as a remote confirms nothing.
pub fn check_roles(repo_dir: &Path, history: Option<&str>, latest: Option<&str>) -> Result<()> {
    let named = |u: Option<&str>| u.filter(|u| !u.is_empty()).map(repository_named);
    let (h, l) = (named(history), named(latest));
    if h.is_some() && h == l {
        bail!(
            "--history-remote and --latest-remote name the same repository: the latest remote is \
             force-pushed one commit, which would erase the history; give them different \
             repositories"
        );
    }
    let own = repo_dir
        .canonicalize()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    for (flag, remote) in [("--history-remote", &h), ("--latest-remote", &l)] {
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
    if let Some(info) = Userinfo::of(url) {
        if let Some(password) = info.password.filter(|p| !p.is_empty()) {
            out = out.replace(password, "***");
        }
        // A token given as the user (git quotes the URL without its path: "could not read
        // Password for 'https://TOKEN@host'").
        if without_password(url).1 && info.password.is_none() && !info.user.is_empty() {
            out = out.replace(info.user, "***");
        }
    }
    out
}

pub(crate) fn url_user(url: &str) -> Option<String> {
    Userinfo::of(url).map(|u| u.user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_given_as_the_user_is_not_kept() {
        for url in [
            "https://ghp_Tok7Secret@github.com/o/r.git",
            "http://glpat-abc@127.0.0.1:1/h.git",
            "https://0123456789abcdef0123456789abcdef01234567@forge/x.git",
        ] {
            let (kept, had) = without_password(url);
            assert!(had && !kept.contains('@'), "{url} -> {kept}");
        }
        for url in ["https://bob@forge/x.git", "ssh://ghp_x@host/x.git"] {
            assert_eq!(without_password(url), (url.to_string(), false));
        }
    }

    #[test]
    fn a_push_record_belongs_to_its_remote_however_the_credentials_were_given() {
        let recorded = redact("https://ghp_Tok7Secret@forge/x.git");
        for configured in [
            "https://ghp_Tok7Secret@forge/x.git",
            "https://forge/x.git",
            "https://alice:pw@forge/x.git",
        ] {
            assert!(is_recorded_as(configured, &recorded), "{configured}");
        }
        assert!(!is_recorded_as("https://forge/y.git", &recorded));
        assert!(is_recorded_as("/srv/h.git", "/srv/h.git"));
        assert!(!is_recorded_as("/srv/new.git", "/srv/h.git"));
    }

    #[test]
    fn an_scp_like_address_with_a_password_is_refused_without_showing_it() {
        let e = validate_url("bob:Secr3t@host:srv/h.git")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bob:…@…") && !e.contains("Secr3t"), "{e}");
        for fine in ["bob@host:srv/h.git", "host:srv/h.git", "/srv/a:b@c", "./x"] {
            validate_url(fine).unwrap();
        }
    }

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
        let msg = scrub(
            "fatal: could not read Password for 'http://ghp_Tok3n@127.0.0.1:9': No such device",
            "http://ghp_Tok3n@127.0.0.1:9/h.git",
        );
        assert_eq!(
            msg,
            "fatal: could not read Password for 'http://***@127.0.0.1:9': No such device"
        );
    }
}
