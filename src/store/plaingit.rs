//! What makes plain git read other content than sqlgit reads, outside the snapshot's tree (the
//! tree itself is `crate::verify::shape`'s): a replace ref (`git replace`, which libgit2
//! ignores), an `info/grafts` file, a ref that makes `main` ambiguous (`git archive main`, the
//! documented restore, takes `DIR/main`, `refs/main` and `refs/tags/main` before
//! `refs/heads/main`), and gitattributes or config that change what `git archive` writes
//! (`export-ignore` leaves files out, `export-subst` rewrites `$Format:…$`, `text`, `eol`,
//! `crlf`, `ident`, `filter` and `working-tree-encoding` convert content, as does
//! `core.autocrlf=true`). sqlgit writes none of these: each is named with the command or file
//! that removes it. Only a few small files are read (`status` runs this too).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Attributes that make `git archive` leave a file out or write other bytes than its blob.
const ARCHIVE_ATTRIBUTES: &[&str] = &[
    "export-ignore",
    "export-subst",
    "text",
    "eol",
    "crlf",
    "ident",
    "filter",
    "working-tree-encoding",
];

/// One line each, with its fix (see the module documentation); `dir` is the repository as the
/// user named it, `git_dir` its git directory.
pub fn problems(dir: &Path, git_dir: &Path) -> Vec<String> {
    let shown = crate::shellword::repo(dir);
    let repo = git2::Repository::open_bare(git_dir).ok();
    let mut lines = Vec::new();
    if let Some(repo) = &repo {
        lines.extend(replaced(repo, &shown));
        lines.extend(ambiguous_main(repo, git_dir, &shown));
    }
    let grafts = git_dir.join("info/grafts");
    if std::fs::metadata(&grafts).is_ok_and(|m| m.len() > 0) {
        lines.push(format!(
            "{} gives snapshots other parents for plain git (git log) than sqlgit reads; remove \
             it: run `rm {}`",
            grafts.display(),
            crate::shellword::path(&grafts)
        ));
    }
    lines.extend(archive_attributes(git_dir, repo.as_ref()));
    if repo.as_ref().and_then(|r| config_bool(r, "core.autocrlf")) == Some(true) {
        lines.push(format!(
            "core.autocrlf is true for {}: git archive (the documented restore) writes every \
             line end of the snapshot as CRLF, which changes text values; unset it: run `git -C \
             {shown} config core.autocrlf false` (or remove it where it is set: `git config \
             --show-origin core.autocrlf`)",
            dir.display()
        ));
    }
    lines
}

/// The replace refs (`git replace`), named with the `git replace -d` that removes them.
fn replaced(repo: &git2::Repository, shown: &str) -> Option<String> {
    let names: Vec<String> = repo
        .references_glob("refs/replace/*")
        .ok()?
        .flatten()
        .filter_map(|r| r.name().ok().map(str::to_string))
        .collect();
    if names.is_empty() {
        return None;
    }
    let ids: Vec<&str> = names
        .iter()
        .map(|n| n.trim_start_matches("refs/replace/"))
        .collect();
    Some(format!(
        "{} (git replace): plain git (git archive, the documented restore) reads other content \
         than the snapshot holds; remove {}: run `git -C {shown} replace -d {}`",
        names.join(", "),
        if names.len() == 1 { "it" } else { "them" },
        ids.join(" ")
    ))
}

/// The refs that make `main` ambiguous for plain git, in the order git tries them (the ones
/// before `refs/heads/main` win), each with the command that removes it.
fn ambiguous_main(repo: &git2::Repository, git_dir: &Path, shown: &str) -> Vec<String> {
    let name = super::BRANCH.trim_start_matches("refs/heads/");
    let mut lines = Vec::new();
    let top = git_dir.join(name);
    if top.is_file() {
        lines.push(ambiguous_line(
            &top.display().to_string(),
            true,
            &format!("rm {}", crate::shellword::path(&top)),
        ));
    }
    let refs = [
        (format!("refs/{name}"), true),
        (format!("refs/tags/{name}"), true),
        (format!("refs/remotes/{name}"), false),
        (format!("refs/remotes/{name}/HEAD"), false),
    ];
    for (full, wins) in refs {
        if repo.find_reference(&full).is_err() {
            continue;
        }
        let fix = match full.strip_prefix("refs/tags/") {
            Some(tag) => format!("git -C {shown} tag -d {tag}"),
            None => format!("git -C {shown} update-ref --no-deref -d {full}"),
        };
        lines.push(ambiguous_line(&full, wins, &fix));
    }
    lines
}

fn ambiguous_line(what: &str, wins: bool, fix: &str) -> String {
    let reads = match wins {
        true => format!("reads {what} instead of {}", super::BRANCH),
        false => "warns that `main` is ambiguous".to_string(),
    };
    format!(
        "{what} makes `main` ambiguous for plain git: `git archive main` (the documented \
         restore) {reads}; remove it: run `{fix}`"
    )
}

/// The attribute files `git archive` reads beside the snapshot's own `.gitattributes` (which
/// `crate::verify::shape` finds): `info/attributes`, the user's (`core.attributesFile`, else
/// `~/.config/git/attributes`), the system's; a line for each one that gives a file sqlgit
/// writes (`*.sql`) an attribute that changes what `git archive` writes.
fn archive_attributes(git_dir: &Path, repo: Option<&git2::Repository>) -> Vec<String> {
    let mut files = vec![git_dir.join("info/attributes")];
    files.extend(user_attributes(repo));
    if std::env::var_os("GIT_ATTR_NOSYSTEM").is_none() {
        files.push(PathBuf::from("/etc/gitattributes"));
    }
    let texts: Vec<(PathBuf, String)> = files
        .into_iter()
        .filter_map(|f| Some((f.clone(), std::fs::read_to_string(&f).ok()?)))
        .collect();
    // A macro (`[attr]name …`) may stand for any of them, in any of the files.
    let mut harmful: HashSet<String> = ARCHIVE_ATTRIBUTES.iter().map(|s| s.to_string()).collect();
    for (_, text) in &texts {
        for (pattern, specs) in text.lines().filter_map(split_line) {
            if let Some(name) = pattern.strip_prefix("[attr]")
                && specs.iter().any(|s| sets(s, &harmful))
            {
                harmful.insert(name.to_string());
            }
        }
    }
    let mut lines = Vec::new();
    for (file, text) in &texts {
        let found: Vec<&str> = text
            .lines()
            .filter(|l| {
                split_line(l).is_some_and(|(pattern, specs)| {
                    !pattern.starts_with("[attr]")
                        && may_match_sql(pattern)
                        && specs.iter().any(|s| sets(s, &harmful))
                })
            })
            .map(str::trim)
            .collect();
        if !found.is_empty() {
            lines.push(format!(
                "{} sets attributes that change what git archive (the documented restore) \
                 writes of the snapshot's files ({}): remove {} from it (sqlgit writes no \
                 attributes)",
                file.display(),
                found.join("; "),
                if found.len() == 1 {
                    "that line"
                } else {
                    "those lines"
                }
            ));
        }
    }
    lines
}

/// The user's attribute file as git finds it: `core.attributesFile`, else
/// `$XDG_CONFIG_HOME/git/attributes` (`~/.config/git/attributes`).
fn user_attributes(repo: Option<&git2::Repository>) -> Option<PathBuf> {
    let configured = repo.and_then(|r| {
        r.config()
            .ok()?
            .get_path("core.attributesFile")
            .ok()
            .or_else(|| {
                super::global_git_config()?
                    .get_path("core.attributesFile")
                    .ok()
            })
    });
    configured.or_else(|| {
        let xdg = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from(std::env::var_os("HOME")?).join(".config")))?;
        Some(xdg.join("git/attributes"))
    })
}

/// A boolean setting as git reads it (the repository's, the user's, the system's); None when
/// unset (`core.autocrlf=input` is false: it converts nothing git writes out).
fn config_bool(repo: &git2::Repository, key: &str) -> Option<bool> {
    let from = |c: git2::Config| match c.get_string(key).ok()?.to_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        _ => Some(false),
    };
    repo.config()
        .ok()
        .and_then(from)
        .or_else(|| super::global_git_config().and_then(from))
}

/// A gitattributes line as (pattern, attribute specs); None for a blank line or a comment.
fn split_line(line: &str) -> Option<(&str, Vec<&str>)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (pattern, rest) = match line.strip_prefix('"') {
        // A quoted pattern (C-style escapes are left as they are: only its end matters).
        Some(quoted) => {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
        }
        None => line.split_once(char::is_whitespace).unwrap_or((line, "")),
    };
    Some((pattern, rest.split_whitespace().collect()))
}

/// Whether the spec `-name`, `!name`, `name` or `name=value` sets one of `harmful` (unsetting
/// or unspecifying it is harmless).
fn sets(spec: &str, harmful: &HashSet<String>) -> bool {
    if spec.starts_with('-') || spec.starts_with('!') {
        return false;
    }
    harmful.contains(spec.split('=').next().unwrap_or(spec))
}

/// Whether the attribute pattern may match a file sqlgit writes (its name ends in `.sql`): its
/// last part ends in a wildcard, or in a literal tail that such a name can end with. (Patterns
/// matching a folder do not apply to its files.)
fn may_match_sql(pattern: &str) -> bool {
    let last = pattern.rsplit('/').next().unwrap_or(pattern).to_lowercase();
    if last.is_empty() {
        return false;
    }
    let tail = match last.rfind(['*', '?', ']']) {
        Some(i) if i + 1 == last.len() => return true,
        Some(i) => &last[i + 1..],
        None => last.as_str(),
    };
    tail.ends_with(".sql") || ".sql".ends_with(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_patterns_that_can_name_a_sql_file_count() {
        for p in [
            "*",
            "*.sql",
            "**/1-rows/*.sql",
            "*.SQL",
            "*l",
            "app.db/**",
            "0-header.sql",
        ] {
            assert!(may_match_sql(p), "{p}");
        }
        for p in ["*.txt", "*.png", "docs/", "README"] {
            assert!(!may_match_sql(p), "{p}");
        }
    }

    #[test]
    fn only_set_attributes_and_macros_of_them_count() {
        let harmful: HashSet<String> = ARCHIVE_ATTRIBUTES.iter().map(|s| s.to_string()).collect();
        assert!(sets("export-ignore", &harmful));
        assert!(sets("eol=crlf", &harmful));
        assert!(sets("filter=lfs", &harmful));
        assert!(!sets("-text", &harmful));
        assert!(!sets("!eol", &harmful));
        assert!(!sets("binary", &harmful));
        assert!(!sets("diff=sql", &harmful));
        assert_eq!(
            split_line("\"a b.sql\" export-ignore"),
            Some(("a b.sql", vec!["export-ignore"]))
        );
        assert_eq!(split_line("  # note"), None);
    }
}
