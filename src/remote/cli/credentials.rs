//! What the `git` transport gives git for credentials: the URL without the password, and a
//! credential helper (scoped to the remote's scheme, host and port) that answers with what
//! sqlgit was given, read from the helper's environment.

use super::super::{TOKEN_ENV, TOKEN_USER_ENV, url_user};

/// Private variables through which the credential helper gets what sqlgit was given.
pub(super) const CRED_USER_ENV: &str = "SQLGIT_GIT_CREDENTIAL_USER";
pub(super) const CRED_PASSWORD_ENV: &str = "SQLGIT_GIT_CREDENTIAL_PASSWORD";
/// The helper: answers `get` with the user and password from its environment, ignores
/// `store` and `erase`.
pub(super) const HELPER: &str = "!f() { test \"$1\" = get || return 0; \
     printf 'username=%s\\npassword=%s\\n' \"$SQLGIT_GIT_CREDENTIAL_USER\" \"$SQLGIT_GIT_CREDENTIAL_PASSWORD\"; }; f";

/// The URL as git gets it: without a password (that goes through the credential helper), and
/// without the user too when sqlgit gives the credentials (`keep_user` false): the helper answers
/// with that user, while a user in the URL makes curl first send it with an empty password (one
/// failed login per git run, which lockouts such as fail2ban count).
pub(super) fn git_url(url: &str, keep_user: bool) -> String {
    match super::super::Userinfo::of(url) {
        Some(u) => u.without_password(keep_user),
        None => url.to_string(),
    }
}

/// `git_url` for a remote: the user stays unless sqlgit supplies the credentials.
pub(super) fn remote_url(url: &str) -> String {
    git_url(url, http_credentials(url).is_none())
}
/// For an http(s) URL with credentials given to sqlgit (a password in the URL, or the token):
/// (`scheme://host[:port]`, user, password).
pub(super) fn http_credentials(url: &str) -> Option<(String, String, String)> {
    // The credentials as `Userinfo` finds them (as they are redacted and kept out of the
    // config); the host from the URL without them.
    let info = crate::remote::Userinfo::of(url);
    let bare = info.as_ref().map(|u| u.without_password(false));
    let parsed = url::Url::parse(bare.as_deref().unwrap_or(url)).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let host = parsed.host_str()?;
    let base = match parsed.port() {
        Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    };
    let decode = |s: &str| percent_decode(s);
    if let Some(info) = &info
        && let Some(password) = info.password.filter(|p| !p.is_empty())
    {
        return Some((base, decode(info.user), decode(password)));
    }
    let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty())?;
    let user = std::env::var(TOKEN_USER_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| url_user(url).filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "sqlgit".into());
    Some((base, user, token))
}

/// `%XX` escapes of a URL's userinfo decoded (`+` stays `+`).
pub(super) fn percent_decode(s: &str) -> String {
    String::from_utf8_lossy(&crate::remote::percent_decode_bytes(s)).into_owned()
}
