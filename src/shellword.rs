//! Words for the commands sqlgit prints to be copied and run (`run: sqlgit snapshot --repo DIR`):
//! a path with a space or a quote must come out as one word for `sh`, or the printed fix fails.

use std::path::Path;

/// A word for sh: as it is when it is plain, else single-quoted.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b));
    if plain { s.to_string() } else { single(s) }
}

/// A word for sh, single-quoted even when it is plain (a pattern shown as `'users.*'`).
pub fn single(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A path as one word for sh.
pub fn path(p: &Path) -> String {
    quote(&p.display().to_string())
}

/// A repository path for a printed command: absolute (it runs from any directory, as cron
/// does), one shell word.
pub fn repo(p: &Path) -> String {
    path(&std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_blanks_and_quotes_are_one_word() {
        assert_eq!(quote("/srv/app.sqlgit"), "/srv/app.sqlgit");
        assert_eq!(quote("/srv/my app"), "'/srv/my app'");
        assert_eq!(quote("it's"), "'it'\\''s'");
    }
}
