//! Where `SQLGIT_HTTPS_TOKEN` goes. There is one variable but there may be two remotes on two
//! hosts, and a token must never reach a host it was not made for (possibly over cleartext
//! `http://`), nor override the user's own credential helper for another host. So the token is
//! for one scheme, host and port: the history remote's when it is http(s), else the latest
//! remote's. Any other host gets credentials from the URL or the user's git credential helpers.

use super::{TOKEN_ENV, TOKEN_USER_ENV, url_user};

/// `scheme://host[:port]` of an http(s) URL (without its userinfo; a default port left out), as
/// git's `credential.<url>` settings match it.
pub(crate) fn http_base(url: &str) -> Option<String> {
    let bare = match super::Userinfo::of(url) {
        Some(u) => u.without_password(false),
        None => url.to_string(),
    };
    let parsed = url::Url::parse(&bare).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    // One spelling of an IP address, as the check that the remotes differ compares hosts.
    let host = super::url::normal_host(parsed.host_str()?);
    Some(match parsed.port() {
        Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    })
}

/// The host the token is for (see the module's doc): the history remote's, else the latest's.
pub fn token_scope(history: Option<&str>, latest: Option<&str>) -> Option<String> {
    history
        .and_then(http_base)
        .or_else(|| latest.and_then(http_base))
}

/// The token and its user, when one is set and `url` is on the host it is for (`scope`).
pub(crate) fn token_for(url: &str, scope: Option<&str>) -> Option<(String, String)> {
    let base = http_base(url)?;
    if scope != Some(base.as_str()) {
        return None;
    }
    let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty())?;
    let user = std::env::var(TOKEN_USER_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| url_user(url).filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "sqlgit".into());
    Some((user, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_for_the_history_remotes_host_else_the_latest_remotes() {
        let a = "https://a.example/x.git";
        let b = "http://b.example:8080/y.git";
        assert_eq!(
            token_scope(Some(a), Some(b)).as_deref(),
            Some("https://a.example")
        );
        assert_eq!(
            token_scope(Some("git@a.example:x.git"), Some(b)).as_deref(),
            Some("http://b.example:8080")
        );
        assert_eq!(token_scope(None, Some("ssh://h/x")), None);
        assert_eq!(
            http_base("https://u:p@A.example:443/x").as_deref(),
            Some("https://a.example")
        );
        let scope = token_scope(Some(a), Some(b));
        assert_eq!(
            token_for(b, scope.as_deref()),
            None,
            "never to another host"
        );
        assert_eq!(token_for("https://a.example:444/x", scope.as_deref()), None);
    }
}
