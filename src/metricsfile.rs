//! The Prometheus textfile that several repositories may share.
//!
//! node_exporter's textfile collector reads every `*.prom` file of one directory, and the
//! natural setup gives all repositories of a machine the same `--metrics-file`. Each run
//! therefore rewrites only its own repository's samples (those labelled `repo="…"` with its
//! path) and keeps the others', under a lock (on the file's directory) so two repositories
//! finishing at once do not lose each other's lines. The text format wants every sample of a
//! metric right after its `# HELP`/`# TYPE` lines, so the file is merged by metric, not
//! appended to.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};

use crate::state::{self, write_atomically};

/// Write `ours` (one repository's metrics, labelled `repo="<label>"`) into the file at `path`
/// (through symlinks: the collector reads the file a link points to), keeping the samples
/// other repositories and programs wrote there. A file that is there but cannot be read is
/// left as it is (an error): rewriting it would lose what it holds. The metrics named in `keep`
/// (this run could not tell them) keep this repository's samples from the file.
pub fn write(path: &Path, ours: &str, label: &str, keep: &[&str]) -> Result<()> {
    let path = &crate::output::follow_symlinks(path)?;
    // The directory is the lock: no file of ours beside the collector's `*.prom` files.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let lock = File::open(dir).with_context(|| format!("lock {}", dir.display()))?;
    // Held for a moment by each writer: one that waits longer waits for a stopped process.
    crate::store::lock::flock_briefly(&lock, dir, dir, std::time::Duration::from_secs(10))?;
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let fix = owner_fix(path);
            return Err(e)
                .with_context(|| format!("read {} (left as it was{fix})", path.display()));
        }
        Err(e) => {
            return Err(e).with_context(|| format!("read {} (left as it was)", path.display()));
        }
    };
    // Also samples an older sqlgit labelled with another spelling of this repository's path.
    let here = labelled_repository(label);
    let is_ours =
        |other: &str| other == label || here.is_some() && labelled_repository(other) == here;
    // Samples of `keep` are never taken for this repository's own: they stay.
    let is_own = |name: &str, repo: &str| !keep.contains(&name) && is_ours(repo);
    write_atomically(path, merge(&existing, ours, &is_own).as_bytes())
}

/// For a metrics file this user may not read: who owns it and the command that gives it back
/// (another user's run, an admin's `sudo sqlgit`, wrote it last).
fn owner_fix(path: &Path) -> String {
    let Some(owner) = crate::output::other_owner(path) else {
        return String::new();
    };
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    format!(
        "; it belongs to uid {owner}: give it back to this user, run as root: chown {me} {}",
        crate::shellword::path(path)
    )
}

/// The repository (its canonical path) a `repo` label names, when it is there: read as this
/// version writes it ([`state::path_label`]: `%XX` for `%` and for bytes that are not UTF-8),
/// else as an older sqlgit did (`%` left as it was). Read the old way only when the new way
/// names nothing that is there, so an older label of a path holding `%` is taken back by its
/// repository (no stale series of it lingers), never one naming another repository.
fn labelled_repository(label: &str) -> Option<std::path::PathBuf> {
    let text = unescape(label);
    state::label_path(&text)
        .and_then(|p| p.canonicalize().ok())
        .or_else(|| Path::new(&text).canonicalize().ok())
}

/// A label value as written (`\\`, `\"`, `\n` escaped) back to its text.
fn unescape(label: &str) -> String {
    let mut out = String::new();
    let mut chars = label.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The value of the `repo` label of a sample line.
fn repo_label(line: &str) -> Option<&str> {
    let start = line.find("repo=\"")? + 6;
    let bytes = line.as_bytes();
    let mut at = start;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return Some(&line[start..at]),
            _ => at += 1,
        }
    }
    None
}

/// One metric family: its `# HELP`/`# TYPE` lines and its samples (`name{labels}`, line).
#[derive(Default)]
struct Family {
    name: String,
    help: Option<String>,
    kind: Option<String>,
    samples: Vec<(String, String)>,
}

impl Family {
    /// The TYPE this family was given (`untyped` when none).
    fn kind(&self) -> &str {
        self.kind
            .as_deref()
            .and_then(|l| l.split_whitespace().nth(3))
            .unwrap_or("untyped")
    }

    /// Whether a sample named `name` belongs here (a histogram's `_bucket`, a counter's
    /// `_total`, …).
    fn holds(&self, name: &str) -> bool {
        let Some(suffix) = name.strip_prefix(self.name.as_str()) else {
            return false;
        };
        let suffixes: &[&str] = match self.kind() {
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            "gaugehistogram" => &["_bucket", "_gsum", "_gcount"],
            "summary" => &["_sum", "_count", "_created"],
            "counter" => &["_total", "_created"],
            "info" => &["_info"],
            _ => &[],
        };
        suffix.is_empty() || suffixes.contains(&suffix)
    }
}

/// `existing`'s metrics without this repository's sqlgit samples (`is_ours` of their metric's
/// name and `repo` label), plus `ours`, family by family: one `# HELP` and one `# TYPE` each (`ours`' text
/// wins: an upgrade may change it), every sample of a family together, one sample per series.
/// Other programs' metrics in the file are kept; what is not metrics text (other comments,
/// lines no parser reads) is not.
pub fn merge(existing: &str, ours: &str, is_ours: &dyn Fn(&str, &str) -> bool) -> String {
    let mut families: Vec<Family> = Vec::new();
    let mut add = |text: &str, current: bool| {
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some((name, kind)) = comment(line) {
                let at = family_at(&mut families, name, |f| f.name == name);
                let slot = match kind {
                    "HELP" => &mut families[at].help,
                    _ => &mut families[at].kind,
                };
                if current || slot.is_none() {
                    *slot = Some(line.to_string());
                }
                continue;
            }
            let Some(series) = series(line) else {
                continue; // not a sample: an other comment, or text no parser reads
            };
            let name = metric_name(line);
            if !current
                && name.starts_with("sqlgit_")
                && repo_label(line).is_some_and(|repo| is_ours(name, repo))
            {
                continue;
            }
            let at = family_at(&mut families, name, |f| f.holds(name));
            let samples = &mut families[at].samples;
            samples.retain(|(s, _)| s != series);
            samples.push((series.to_string(), line.to_string()));
        }
    };
    add(existing, false);
    add(ours, true);
    let mut out = String::new();
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        let comments = family.help.iter().chain(&family.kind);
        for line in comments.chain(family.samples.iter().map(|(_, l)| l)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The index of the family `holds` picks (the last one: a sample follows its TYPE line), or
/// of a new one named `name`.
fn family_at(families: &mut Vec<Family>, name: &str, holds: impl Fn(&Family) -> bool) -> usize {
    if let Some(at) = families.iter().rposition(holds) {
        return at;
    }
    families.push(Family {
        name: name.to_string(),
        ..Family::default()
    });
    families.len() - 1
}

/// `(name, "HELP" or "TYPE")` of a `# HELP name …` / `# TYPE name kind` line.
fn comment(line: &str) -> Option<(&str, &str)> {
    let mut words = line.strip_prefix('#')?.split_whitespace();
    let kind = words.next().filter(|k| *k == "HELP" || *k == "TYPE")?;
    let name = words.next().filter(|n| valid_name(n))?;
    Some((name, kind))
}

/// A sample line's series (`name{labels}`), when the line is a valid sample:
/// `name[{labels}] value [timestamp]`.
fn series(line: &str) -> Option<&str> {
    let name = metric_name(line);
    if !valid_name(name) {
        return None;
    }
    let mut end = name.len();
    if line[end..].starts_with('{') {
        let bytes = line.as_bytes();
        let mut quoted = false;
        loop {
            end += 1;
            match bytes.get(end)? {
                b'\\' if quoted => end += 1,
                b'"' => quoted = !quoted,
                b'}' if !quoted => break,
                _ => {}
            }
        }
        end += 1;
    }
    let mut fields = line[end..].split_whitespace();
    let value = fields.next()?;
    let number = value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value);
    let stamp = fields.next().is_none_or(|t| t.parse::<i64>().is_ok());
    (number && stamp && fields.next().is_none()).then_some(&line[..end])
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The metric a line belongs to: `# HELP name …`, `# TYPE name …`, or `name{…} value`.
fn metric_name(line: &str) -> &str {
    let rest = line
        .strip_prefix("# HELP ")
        .or_else(|| line.strip_prefix("# TYPE "))
        .unwrap_or(line);
    let end = rest
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(rest.len());
    &rest[..end]
}

#[cfg(test)]
mod tests {
    use super::merge;

    /// Another user's metrics file is named with its owner and the chown that gives it back
    /// (run as root, which may give a file away).
    #[test]
    fn another_users_metrics_file_names_its_owner_and_the_fix() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sqlgit.prom");
        std::fs::write(&file, "x 1\n").unwrap();
        assert_eq!(super::owner_fix(&file), "");
        std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
        let fix = super::owner_fix(&file);
        assert!(fix.contains("uid 65534"), "{fix}");
        assert!(
            fix.contains(&format!("chown 0 {}", file.display())),
            "{fix}"
        );
    }

    #[test]
    fn each_repository_keeps_its_own_samples_grouped_by_metric() {
        let a = "# HELP sqlgit_m x\n# TYPE sqlgit_m gauge\nsqlgit_m{repo=\"/a\"} 1\n\
                 # HELP sqlgit_n y\n# TYPE sqlgit_n gauge\nsqlgit_n{repo=\"/a\"} 5\nstale\n";
        let b = "# HELP sqlgit_m x\n# TYPE sqlgit_m gauge\nsqlgit_m{repo=\"/b\"} 0\n";
        let both = merge(a, b, &|_, l| l == "/b");
        assert_eq!(
            both,
            "# HELP sqlgit_m x\n# TYPE sqlgit_m gauge\nsqlgit_m{repo=\"/a\"} 1\n\
             sqlgit_m{repo=\"/b\"} 0\n# HELP sqlgit_n y\n# TYPE sqlgit_n gauge\n\
             sqlgit_n{repo=\"/a\"} 5\n"
        );
        // b again, now healthy: its old sample is replaced, a's kept.
        let b2 = "# HELP sqlgit_m x\n# TYPE sqlgit_m gauge\nsqlgit_m{repo=\"/b\"} 1\n";
        let again = merge(&both, b2, &|_, l| l == "/b");
        assert!(again.contains("_m{repo=\"/b\"} 1\n") && !again.contains("_m{repo=\"/b\"} 0"));
        assert!(again.contains("_m{repo=\"/a\"} 1\n") && again.contains("_n{repo=\"/a\"} 5\n"));
        // A repository whose label is a prefix of another's is not confused with it.
        let c = merge("sqlgit_m{repo=\"/b2\"} 7\n", b2, &|_, l| l == "/b");
        assert!(c.contains("sqlgit_m{repo=\"/b2\"} 7"), "{c}");
    }

    #[test]
    fn one_help_and_type_per_family_and_ours_win() {
        // An older sqlgit's HELP text, a repeated TYPE, a split family, a repeated series.
        let old = "# HELP sqlgit_m old text.\n# TYPE sqlgit_m gauge\nsqlgit_m{repo=\"/a\"} 1\n\
                   # HELP sqlgit_m older text.\n# TYPE sqlgit_m gauge\n# a comment\n\
                   sqlgit_m{repo=\"/c\"} 3\nsqlgit_m{repo=\"/a\"} 2\n";
        let ours = "# HELP sqlgit_m new text.\n# TYPE sqlgit_m gauge\nsqlgit_m{repo=\"/b\"} 0\n";
        assert_eq!(
            merge(old, ours, &|_, l| l == "/b"),
            "# HELP sqlgit_m new text.\n# TYPE sqlgit_m gauge\nsqlgit_m{repo=\"/c\"} 3\n\
             sqlgit_m{repo=\"/a\"} 2\nsqlgit_m{repo=\"/b\"} 0\n"
        );
    }

    #[test]
    fn other_programs_metrics_are_kept_whole() {
        let old = "# HELP restic_t Last backup.\n# TYPE restic_t gauge\nrestic_t{host=\"db1\"} 17\n\
                   # TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 3\n\
                   h_sum 4.5\nh_count 3\nup 1 1700000000000\nnot a metric\n";
        let ours = "# HELP sqlgit_m x\n# TYPE sqlgit_m gauge\nsqlgit_m{repo=\"/b\"} 0\n";
        let merged = merge(old, ours, &|_, l| l == "/b");
        assert_eq!(
            merged,
            format!("{}{ours}", old.replace("not a metric\n", ""))
        );
    }
}
