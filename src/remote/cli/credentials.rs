//! What the `git` transport gives git for credentials: the URL without the password, and a
//! credential helper (scoped to the remote's scheme, host and port) that answers with what
//! sqlgit was given, read from the helper's environment.

use super::super::url::looks_like_token;

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
pub(super) fn remote_url(url: &str, scope: Option<&str>) -> String {
    git_url(url, http_credentials(url, scope).is_none())
}

/// For an http(s) URL with credentials given to sqlgit (a password in the URL, a token given as
/// the URL's user, or `SQLGIT_HTTPS_TOKEN` when `url` is on the host it is for, `scope`):
/// (`scheme://host[:port]`, user, password). None: git's own credential helpers answer.
pub(super) fn http_credentials(url: &str, scope: Option<&str>) -> Option<(String, String, String)> {
    let base = crate::remote::token::http_base(url)?;
    if let Some(info) = crate::remote::Userinfo::of(url) {
        if let Some(password) = info.decoded_password().filter(|p| !p.is_empty()) {
            return Some((base, info.decoded_user(), password));
        }
        // A token given as the user (`https://TOKEN@host/…`) is a password: it goes through
        // the helper, never on git's command line. Sent as both (forges take either).
        let user = info.decoded_user();
        if looks_like_token(&user) {
            return Some((base, user.clone(), user));
        }
    }
    let (user, token) = crate::remote::token::token_for(url, scope)?;
    Some((base, user, token))
}
