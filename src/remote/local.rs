//! A remote that is a folder on this machine (a path, `file://`). A push into one leaves files
//! readable by whom its folder is readable by; root's push into one another user owns (`sudo
//! sqlgit snapshot` on the job user's repository, whose remote is theirs too) leaves what it
//! writes there to that user; and a ref there that cannot be read is said so, never taken for a
//! missing or rewound main.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use git2::Oid;

use super::{local_dir, redact};

/// The umask a push into the local remote at `url` runs git with: the one the remote folder's
/// own mode shows (`0755`: 022; `0750`: 027; a group-shared `2775`: 002; a private `0700`: 077;
/// never writable by others), so that git there writes refs, objects and folders readable by
/// whom the folder is (a remote served by git daemon or http-backend, read by another account),
/// not private to this user (sqlgit's umask is 077). git applies the remote's
/// `core.sharedRepository` on top. None: not a local remote (keep sqlgit's).
pub(super) fn push_umask(url: &str) -> Option<libc::mode_t> {
    use std::os::unix::fs::MetadataExt;
    let dir = local_dir(url)?;
    let mode = std::fs::metadata(&dir).ok()?.mode();
    Some(folder_umask(mode))
}

/// The umask of files made in a folder of mode `mode`: the bits it withholds from group and
/// others, and others' write.
fn folder_umask(mode: u32) -> libc::mode_t {
    (!mode & 0o077) | 0o002
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

#[cfg(test)]
mod tests {
    use super::folder_umask;

    #[test]
    fn a_push_keeps_the_read_bits_its_folder_grants() {
        for (mode, mask) in [
            (0o40755, 0o022),
            (0o40750, 0o027),
            (0o40700, 0o077),
            (0o42775, 0o002),
            (0o40777, 0o002),
        ] {
            assert_eq!(folder_umask(mode), mask, "{mode:o}");
        }
    }
}
