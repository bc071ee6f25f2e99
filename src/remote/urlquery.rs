//! Credentials in a remote URL's query string (`https://host/x.git?access_token=…`, as some
//! forges and signed URLs carry them): a secret there must be masked wherever the URL is shown
//! and never remembered, like a password in the userinfo.

/// Query parameters whose name says they carry a credential (compared in lower case, as parts
/// of the name: `access_token`, `private_token`, `X-Amz-Signature`, `api_key`, `password`).
const SECRET_NAMES: [&str; 9] = [
    "token",
    "key",
    "secret",
    "pass",
    "pwd",
    "auth",
    "sig",
    "credential",
    "session",
];

/// Whether a query parameter (`name=value`) carries a credential: its name says so, or its value
/// looks like a token.
fn is_secret(param: &str) -> bool {
    let (name, value) = param.split_once('=').unwrap_or((param, ""));
    let name = name.to_ascii_lowercase();
    !value.is_empty()
        && (SECRET_NAMES.iter().any(|s| name.contains(s)) || super::url::looks_like_token(value))
}

/// `url` with the value of each secret query parameter replaced by `***` (`mask`), or with those
/// parameters left out (`!mask`); and whether it had any. A fragment (`#…`) is kept as it is.
pub fn without_secrets(url: &str, mask: bool) -> (String, bool) {
    let (head, fragment) = match url.find('#') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    let Some((base, query)) = head.split_once('?') else {
        return (url.to_string(), false);
    };
    let mut found = false;
    let kept: Vec<String> = query
        .split('&')
        .filter_map(|param| {
            if !is_secret(param) {
                return Some(param.to_string());
            }
            found = true;
            mask.then(|| format!("{}=***", param.split_once('=').map_or(param, |p| p.0)))
        })
        .collect();
    if !found {
        return (url.to_string(), false);
    }
    let query = kept.join("&");
    let sep = if query.is_empty() { "" } else { "?" };
    (format!("{base}{sep}{query}{fragment}"), true)
}

/// The secret values in `url`'s query string (to be removed from messages that quote them).
pub fn secret_values(url: &str) -> Vec<&str> {
    let head = url.split('#').next().unwrap_or(url);
    let Some((_, query)) = head.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|p| is_secret(p))
        .filter_map(|p| p.split_once('=').map(|(_, v)| v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_in_the_query_is_masked_or_left_out() {
        let url = "https://host/x.git?ref=main&access_token=QueryTok3nSecret#top";
        assert_eq!(
            without_secrets(url, true),
            (
                "https://host/x.git?ref=main&access_token=***#top".into(),
                true
            )
        );
        assert_eq!(
            without_secrets(url, false),
            ("https://host/x.git?ref=main#top".into(), true)
        );
        assert_eq!(
            without_secrets("https://h/x?X-Amz-Signature=abc", false),
            ("https://h/x".into(), true)
        );
        assert_eq!(secret_values(url), vec!["QueryTok3nSecret"]);
        let plain = "https://host/x.git?ref=main";
        assert_eq!(without_secrets(plain, true), (plain.into(), false));
        assert!(secret_values(plain).is_empty());
    }
}
