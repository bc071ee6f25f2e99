//! git's lock files in the repository (`refs/**/X.lock`, `packed-refs.lock`, `HEAD.lock`,
//! `shallow.lock`, `config.lock`): a run removes only those a killed run left — made while that
//! run held the repository's lock, as its heartbeat tells ([`super::lock::Span`]) — and never a
//! lock another git command holds now (`git tag`, `git gc`'s `pack-refs`, a `git fetch`, which
//! never take sqlgit's lock). One such lock on a file the run writes is waited for, up to the
//! run's `--lock-timeout`; past it, the run fails naming the file and what to do.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, bail};

use super::lock::Span;

/// Lock files of git's at the top of the repository (those under `refs/` are found by walking).
const TOP: [&str; 4] = [
    "packed-refs.lock",
    "HEAD.lock",
    "config.lock",
    "shallow.lock",
];

/// Lock files a run may need to take itself (the refs it writes; `config.lock` is not one: it
/// saves the config by renaming a copy into place).
fn in_the_way(git_dir: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(git_dir) else {
        return false;
    };
    let rel = rel.to_string_lossy();
    rel.starts_with("refs/sqlgit/")
        || [
            "refs/heads/main.lock",
            "refs/remotes/history/main.lock",
            "refs/remotes/latest/main.lock",
            "packed-refs.lock",
            "HEAD.lock",
            "shallow.lock",
        ]
        .contains(&rel.as_ref())
}

/// Every git lock file in `git_dir`.
fn lock_files(git_dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "lock") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&git_dir.join("refs"), &mut out);
    out.extend(TOP.iter().map(|n| git_dir.join(n)).filter(|p| p.exists()));
    out
}

/// Whether a lock file made at `made` was made while the run before (`previous`) held the
/// repository's lock: it, or a git command it ran, left it when it was killed (a git command
/// another program ran at that moment and that still holds it is the rare case this cannot tell).
fn left_by(previous: Option<Span>, made: SystemTime) -> bool {
    previous.is_some_and(|run| run.start <= made && made <= run.end)
}

fn made(path: &Path) -> Option<SystemTime> {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
}

/// Wait up to `wait` for the git lock files in the run's way (those a killed run left are gone:
/// [`remove_left`], when the repository's lock was taken); an error names one still there and
/// what to do.
pub fn wait_for_others(git_dir: &Path, wait: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let Some(path) = lock_files(git_dir)
            .into_iter()
            .find(|p| in_the_way(git_dir, p))
        else {
            return Ok(());
        };
        if start.elapsed() >= wait {
            bail!("{}", busy(&path, start.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(50).min(wait));
    }
}

/// Remove the git lock files the run before (`previous`) left.
pub fn remove_left(git_dir: &Path, previous: Option<Span>) {
    for path in lock_files(git_dir) {
        if made(&path).is_some_and(|t| left_by(previous, t)) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Why the run cannot go on while git's lock file `path` exists, and what to do.
fn busy(path: &Path, waited: Duration) -> String {
    let age = made(path)
        .and_then(|t| t.elapsed().ok())
        .map_or(String::new(), |a| {
            format!(
                ", made {} ago",
                humantime::format_duration(Duration::from_secs(a.as_secs()))
            )
        });
    format!(
        "another git command is working on the repository: it holds {}{age} (waited {}): run \
         again once it has finished; if no git command is running, one was killed and left \
         it: remove it (rm {})",
        path.display(),
        humantime::format_duration(Duration::from_secs(waited.as_secs())),
        crate::shellword::path(path)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_locks_made_while_the_killed_run_held_the_repository_are_its() {
        let t = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let run = Some(Span {
            start: t(1000),
            end: t(1100),
        });
        assert!(left_by(run, t(1000)) && left_by(run, t(1100)));
        assert!(!left_by(run, t(999)), "made before the run");
        assert!(!left_by(run, t(1101)), "made after it ended");
        assert!(!left_by(None, t(1000)), "no run known");
    }

    #[test]
    fn a_foreign_lock_in_the_way_fails_naming_it_and_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path();
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        std::fs::create_dir_all(git.join("refs/tags")).unwrap();
        std::fs::write(git.join("refs/tags/keep.lock"), "x").unwrap();
        wait_for_others(git, Duration::ZERO).unwrap();
        assert!(git.join("refs/tags/keep.lock").exists());
        std::fs::write(git.join("refs/heads/main.lock"), "x").unwrap();
        let e = wait_for_others(git, Duration::from_millis(100)).unwrap_err();
        let e = format!("{e:#}");
        assert!(
            e.contains("another git command") && e.contains("main.lock"),
            "{e}"
        );
        assert!(e.contains("rm "), "{e}");
        assert!(git.join("refs/heads/main.lock").exists());
    }
}
