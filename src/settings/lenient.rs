//! The saved settings read from `DIR/config` as plain text, for a run whose repository cannot
//! be opened (a typo in the config, `HEAD` gone): its failure hook and metrics file are still
//! known, so the failure is still told. Lines that do not parse are skipped.

use std::path::Path;

/// Every `sqlgit.KEY` value in the git config text at `DIR/config`, in order (keys compared
/// case-insensitively, as git does).
pub fn values(dir: &Path, key: &str) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(dir.join("config")) else {
        return Vec::new();
    };
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix('[') {
            section = match rest.find(']') {
                Some(end) => rest[..end].trim().to_ascii_lowercase(),
                None => String::new(),
            };
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if section == "sqlgit" && name.trim().eq_ignore_ascii_case(key) {
            out.push(unquote(value));
        }
    }
    out
}

/// A git config value: quotes removed, escapes resolved, a comment outside quotes dropped.
fn unquote(raw: &str) -> String {
    let (mut out, mut quoted, mut chars) = (String::new(), false, raw.trim().chars());
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('b') => {
                    out.pop();
                }
                Some(other) => out.push(other),
                None => {}
            },
            '#' | ';' if !quoted => break,
            c => out.push(c),
        }
    }
    if !quoted {
        out.trim_end().to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_from_a_config_git_cannot_parse() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config"),
            "[core]\n\tbare = true\n[sqlgit]\n\tonFailure = \"echo \\\"failed: $X\\\" >> /tmp/h\" # note\n\
             \tmetricsFile = /m.prom ; comment\n\tdb = a\n\tdb = b\n[sqlgit\n",
        )
        .unwrap();
        assert_eq!(
            values(dir.path(), "onfailure"),
            ["echo \"failed: $X\" >> /tmp/h"]
        );
        assert_eq!(values(dir.path(), "metricsFile"), ["/m.prom"]);
        assert_eq!(values(dir.path(), "db"), ["a", "b"]);
        assert!(values(dir.path(), "onSuccess").is_empty());
    }
}
