//! A remote URL's userinfo (`user[:password]@`): where it ends, its user and password as git
//! sends them (`%XX` decoded), and the userinfo no push could use, refused before anything is
//! saved: a password hiding where the userinfo ends, a password in an scp-like address, an
//! unencoded `@` in an http(s) user name (git ends the user at the first `@`, so the saved URL
//! would fail every later run), and any userinfo in a `git://` or `file://` URL, which take none.

use anyhow::{Result, bail};

use super::{percent_decode_bytes, redact};

/// Refuse an scp-like address with a password (`user:password@host:path`): ssh never takes
/// it, and it must be neither saved nor shown.
pub fn refuse_scp_password(url: &str) -> Result<()> {
    if !url.contains("://")
        && let Some(info) = Userinfo::of(url)
        && info.password.is_some()
    {
        bail!(
            "bad remote URL {}:…@…: a password in an scp-like address \
             (user:password@host:path) is not something ssh takes, and sqlgit never stores one; \
             give user@host:path and a key (--ssh-key FILE, or ssh-agent)",
            info.user
        );
    }
    Ok(())
}

/// Refuse userinfo that no push could use: any in a `git://` or `file://` URL (git's daemon
/// protocol has no authentication, and git would look up `user@host` as the host name; a local
/// path has no login), and an unencoded `@` in an http(s) user name (git takes the user to end at
/// the first `@`, so `http://alice@example.com@host/x.git` reaches the host
/// `example.com@host`: the saved URL would fail every later run).
pub fn refuse_unusable_userinfo(url: &str) -> Result<()> {
    let Some(info) = Userinfo::of(url) else {
        return Ok(());
    };
    let scheme = info.prefix.trim_end_matches("://").to_ascii_lowercase();
    match scheme.as_str() {
        "git" => bail!(
            "bad remote URL {}: a git:// URL takes no user name or password (the git protocol              has no authentication): give git://HOST/PATH, or an https:// or ssh:// URL for a              server that needs a login",
            redact(url)
        ),
        "file" => bail!(
            "bad remote URL {}: a file:// URL takes no user name or password: give              file:///PATH or the plain path",
            redact(url)
        ),
        "http" | "https" if info.user.contains('@') => bail!(
            "bad remote URL {}: its user name has an unencoded '@', which git takes as the end              of the user name: write '@' as %40 ({}), in the password too",
            redact(url),
            info.user.replace('@', "%40")
        ),
        _ => Ok(()),
    }
}

/// Refuse a URL whose userinfo cannot be told from its host and path: a password with an
/// unencoded `/`, `?` or `#` (`https://alice:pa/ss@host/x`), which git would take for the host
/// `alice` (or drop), so that the password would be shown, saved or silently not sent.
pub fn refuse_hidden_password(url: &str) -> Result<()> {
    if Userinfo::of(url).is_some_and(|u| u.ambiguous) {
        bail!(
            "bad remote URL {}: the text before its '@' looks like a password with an unencoded \
             '/', '?' or '#' in it: percent-encode those in the user name and password ('/' as \
             %2F, '?' as %3F, '#' as %23, '@' as %40); an '@' in the path, as %40",
            redact(url)
        );
    }
    Ok(())
}

/// A URL split around its userinfo: `SCHEME://USER[:PASSWORD]@REST`, or an scp-like
/// `USER:PASSWORD@HOST:PATH` (one with a password only). None for URLs without userinfo.
/// The one place sqlgit finds credentials in a URL: what it redacts, drops and sends agree.
pub(crate) struct Userinfo<'a> {
    /// `SCHEME://`, or empty for an scp-like address.
    pub(super) prefix: &'a str,
    pub user: &'a str,
    pub password: Option<&'a str>,
    /// Host, port and path.
    pub(super) rest: &'a str,
    /// The userinfo's end is a guess: a password with an unencoded `/`, `?` or `#` (see
    /// [`userinfo_end`]); such a URL is refused ([`refuse_hidden_password`]).
    ambiguous: bool,
}

impl<'a> Userinfo<'a> {
    pub fn of(url: &'a str) -> Option<Userinfo<'a>> {
        let (prefix_end, at, ambiguous) = match url.find("://") {
            Some(scheme_end) => {
                let (at, ambiguous) = userinfo_end(&url[scheme_end + 3..])?;
                (scheme_end + 3, scheme_end + 3 + at, ambiguous)
            }
            None => (0, scp_userinfo_end(url)?, false),
        };
        let info = &url[prefix_end..at];
        let (user, password) = match info.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (info, None),
        };
        Some(Userinfo {
            prefix: &url[..prefix_end],
            user,
            password,
            rest: &url[at + 1..],
            ambiguous,
        })
    }

    /// The user as git sends it: `%XX` escapes decoded (`alice%40example.com` is
    /// `alice@example.com`; `+` stays `+`).
    pub fn decoded_user(&self) -> String {
        percent_decode(self.user)
    }

    /// The password as git sends it, `%XX` escapes decoded.
    pub fn decoded_password(&self) -> Option<String> {
        self.password.map(percent_decode)
    }

    /// The URL again, with its user (when `keep_user` and there is one) and no password.
    pub fn without_password(&self, keep_user: bool) -> String {
        match self.user {
            user if keep_user && !user.is_empty() => format!("{}{user}@{}", self.prefix, self.rest),
            _ => format!("{}{}", self.prefix, self.rest),
        }
    }
}

/// Where the userinfo of a scheme URL ends (its `@`, in `rest`: the URL after `://`), and
/// whether that is a guess. The authority ends at the first `/`, `?` or `#` (RFC 3986), the
/// userinfo at its last `@`. A password with one of those unencoded (`alice:pa/ss@host`) puts
/// its `@` past that end: when a `:` (not an IPv6 host's) comes before a later `@`, all up to
/// the URL's last `@` is taken as userinfo, so no part of such a password is ever shown.
fn userinfo_end(rest: &str) -> Option<(usize, bool)> {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if let Some(at) = rest[..authority_end].rfind('@') {
        return Some((at, false));
    }
    let authority = &rest[..authority_end];
    let after_brackets = match authority.strip_prefix('[') {
        Some(ipv6) => ipv6.split_once(']').map_or("", |(_, after)| after),
        None => authority,
    };
    let at = rest.rfind('@')?;
    after_brackets.contains(':').then_some((at, true))
}

/// The `@` ending an scp-like address's userinfo when it holds a password
/// (`user:password@host:path`, the password perhaps with `@`, `/` or `:` in it): the last `@`
/// before the `:` that starts the path. None for `user@host:path`, local paths and URLs.
fn scp_userinfo_end(url: &str) -> Option<usize> {
    let first_colon = url.find(':')?;
    if url.find('/').is_some_and(|slash| slash < first_colon) {
        return None;
    }
    let path_colon = url.rfind(':')?;
    let at = url[..path_colon].rfind('@')?;
    url[..at].contains(':').then_some(at)
}

/// `%XX` escapes decoded (`+` stays `+`), as text.
pub(crate) fn percent_decode(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode_bytes(s)).into_owned()
}
