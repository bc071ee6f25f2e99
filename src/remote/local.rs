//! A remote that is a folder on this machine (a path, `file://`). Root's push into one another
//! user owns (`sudo sqlgit snapshot` on the job user's repository, whose remote is theirs too)
//! leaves what it writes there to that user, with the modes git gives files there; and a ref
//! there that cannot be read is said so, never taken for a missing or rewound main.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use git2::Oid;

use super::{local_dir, redact};

/// The umask a push into the local remote at `url` runs git with, when the remote's folder is
/// another user's: the one its own mode shows (`0755`: 022; a group-shared `2775`: 002; a
/// private `0700`: 077), so that git there writes refs, objects and folders as the owner's own
/// pushes do, not private to this user (sqlgit's umask is 077). None: keep sqlgit's.
pub(super) fn push_umask(url: &str) -> Option<libc::mode_t> {
    use std::os::unix::fs::MetadataExt;
    let dir = local_dir(url)?;
    crate::output::other_owner(&dir)?;
    let mode = std::fs::metadata(&dir).ok()?.mode();
    Some(!mode & 0o077)
}

/// After a push into the local remote at `url` (whatever its outcome): root gives every file
/// and folder it left there (refs, objects, packs, `packed-refs`) to the remote folder's owner,
/// whose own runs must read and replace them ([`crate::output::give_back_tree`]).
pub(super) fn give_back(url: &str) {
    if let Some(dir) = local_dir(url) {
        crate::output::give_back_tree(&dir);
    }
}

/// The remote's main as listed, checked: git lists a ref file it cannot read as
/// `0000000000000000000000000000000000000000` (and a `refs/heads` folder it cannot read as no
/// ref at all), and neither is a remote without snapshots or one that was rewound. For a local
/// remote the file this user cannot read is named with the command that gives it back.
pub(super) fn checked_main(url: &str, listed: Option<Oid>) -> Result<Option<Oid>> {
    if listed.is_some_and(|id| !id.is_zero()) {
        return Ok(listed);
    }
    if let Some(line) = unreadable(url) {
        return Err(anyhow!("{line}"));
    }
    match listed {
        Some(_) => Err(anyhow!(
            "the remote {} lists its main as {}: git there could not read that ref (its \
             refs/heads/main or packed-refs file is not readable by the user git runs as \
             there, or is damaged), which says nothing of the snapshots it holds: give the \
             remote repository's files back to that user (chown -R), then run again",
            redact(url),
            Oid::ZERO_SHA1
        )),
        None => Ok(None),
    }
}

/// A failed ask of a local remote: the unreadable file when that is the cause, else `e`.
pub(super) fn explained(url: &str, e: anyhow::Error) -> anyhow::Error {
    match unreadable(url) {
        Some(line) => anyhow!("{line}"),
        None => e,
    }
}

/// For a local remote, the line naming the first of the files git reads to list its main that
/// this user may not read, with its owner and the fix (None: all readable, or not local).
fn unreadable(url: &str) -> Option<String> {
    let dir = local_dir(url)?;
    let git_dir = match dir.join(".git") {
        dot if dot.is_dir() => dot,
        _ => dir.clone(),
    };
    let candidates: Vec<PathBuf> = ["", "refs", "refs/heads", "refs/heads/main", "packed-refs"]
        .iter()
        .map(|p| {
            if p.is_empty() {
                git_dir.clone()
            } else {
                git_dir.join(p)
            }
        })
        .collect();
    candidates.iter().find_map(|path| {
        refused(path)?;
        Some(format!(
            "the main of the remote {} cannot be known, which is no sign that it lacks \
             snapshots or was rewound: cannot read {}: permission denied{}",
            redact(url),
            path.display(),
            crate::cause::owner_fix(path, &dir)
        ))
    })
}

/// The permission error reading `path` (a folder: listing it), if there is one.
fn refused(path: &Path) -> Option<std::io::Error> {
    let meta = std::fs::metadata(path).ok()?;
    let read = if meta.is_dir() {
        std::fs::read_dir(path).map(drop)
    } else {
        std::fs::File::open(path).map(drop)
    };
    read.err().filter(crate::cause::is_permission)
}
