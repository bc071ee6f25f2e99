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
use std::os::unix::io::AsRawFd;
use std::path::Path;

use anyhow::{Context, Result};

use crate::state::write_atomically;

/// Write `ours` (one repository's metrics, labelled `repo="<label>"`) into the file at `path`,
/// keeping the samples other repositories wrote there.
pub fn write(path: &Path, ours: &str, label: &str) -> Result<()> {
    // The directory is the lock: no file of ours beside the collector's `*.prom` files.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let lock = File::open(dir).with_context(|| format!("lock {}", dir.display()))?;
    flock(&lock)?;
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    // Also samples an older sqlgit labelled with another spelling of this repository's path.
    let here = Path::new(&unescape(label)).canonicalize().ok();
    let is_ours = |other: &str| {
        other == label || here.is_some() && Path::new(&unescape(other)).canonicalize().ok() == here
    };
    write_atomically(path, merge(&existing, ours, &is_ours).as_bytes())
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

fn flock(file: &File) -> Result<()> {
    // SAFETY: flock(2) on an open descriptor; released when `file` is closed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error()).context("lock the metrics file");
    }
    Ok(())
}

/// One metric: its `# HELP`/`# TYPE` lines and its samples.
#[derive(Default)]
struct Family {
    comments: Vec<String>,
    samples: Vec<String>,
}

/// `existing`'s sqlgit metrics without the samples of this repository (`is_ours` of their `repo`
/// label), plus `ours`, metric by metric.
pub fn merge(existing: &str, ours: &str, is_ours: &dyn Fn(&str) -> bool) -> String {
    let mut families: Vec<(String, Family)> = Vec::new();
    let mut add = |text: &str, drop_own: bool| {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let name = metric_name(line);
            // Only sqlgit's own metrics are kept from the file (not whatever else was there).
            if !name.starts_with("sqlgit_") && drop_own {
                continue;
            }
            let at = match families.iter().position(|(n, _)| *n == name) {
                Some(at) => at,
                None => {
                    families.push((name.to_string(), Family::default()));
                    families.len() - 1
                }
            };
            let family = &mut families[at].1;
            if line.starts_with('#') {
                if !family.comments.iter().any(|c| c == line) {
                    family.comments.push(line.to_string());
                }
            } else if !(drop_own && repo_label(line).is_some_and(is_ours)) {
                family.samples.push(line.to_string());
            }
        }
    };
    add(existing, true);
    add(ours, false);
    let mut out = String::new();
    for (_, family) in families.iter().filter(|(_, f)| !f.samples.is_empty()) {
        for line in family.comments.iter().chain(&family.samples) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
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

    #[test]
    fn each_repository_keeps_its_own_samples_grouped_by_metric() {
        let a = "# HELP sqlgit_m x\n# TYPE sqlgit_m gauge\nsqlgit_m{repo=\"/a\"} 1\n\
                 # HELP sqlgit_n y\n# TYPE sqlgit_n gauge\nsqlgit_n{repo=\"/a\"} 5\nstale\n";
        let b = "# HELP sqlgit_m x\n# TYPE sqlgit_m gauge\nsqlgit_m{repo=\"/b\"} 0\n";
        let both = merge(a, b, &|l| l == "/b");
        assert_eq!(
            both,
            "# HELP sqlgit_m x\n# TYPE sqlgit_m gauge\nsqlgit_m{repo=\"/a\"} 1\n\
             sqlgit_m{repo=\"/b\"} 0\n# HELP sqlgit_n y\n# TYPE sqlgit_n gauge\n\
             sqlgit_n{repo=\"/a\"} 5\n"
        );
        // b again, now healthy: its old sample is replaced, a's kept.
        let b2 = "# HELP sqlgit_m x\n# TYPE sqlgit_m gauge\nsqlgit_m{repo=\"/b\"} 1\n";
        let again = merge(&both, b2, &|l| l == "/b");
        assert!(again.contains("_m{repo=\"/b\"} 1\n") && !again.contains("_m{repo=\"/b\"} 0"));
        assert!(again.contains("_m{repo=\"/a\"} 1\n") && again.contains("_n{repo=\"/a\"} 5\n"));
        // A repository whose label is a prefix of another's is not confused with it.
        let c = merge("sqlgit_m{repo=\"/b2\"} 7\n", b2, &|l| l == "/b");
        assert!(c.contains("sqlgit_m{repo=\"/b2\"} 7"), "{c}");
    }
}
