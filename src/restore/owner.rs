//! A database `restore --to --force` replaces belongs to the application that uses it: the new
//! file takes the old one's owner, group and permission bits, or the application's user may be
//! unable to open it after a restore that reported success. sqlgit's own files stay private
//! (0600); a new database file too.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result};

/// Give `new` (the restored file) the owner, group and mode of `old` (the metadata of the file
/// it replaces). Returns a warning when the owner or group could not be given (not permitted:
/// only root may give a file away), naming the command that does.
pub fn keep_owner_and_mode(
    new: &Path,
    old: &std::fs::Metadata,
    shown: &Path,
) -> Result<Option<String>> {
    let mode = old.permissions().mode() & 0o7777;
    std::fs::set_permissions(new, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("give {} the mode of {}", new.display(), shown.display()))?;
    let mine = std::fs::metadata(new).with_context(|| format!("read {}", new.display()))?;
    if (mine.uid(), mine.gid()) == (old.uid(), old.gid()) {
        return Ok(None);
    }
    match std::os::unix::fs::chown(new, Some(old.uid()), Some(old.gid())) {
        Ok(()) => {
            // chown clears set-user/group-id bits: give them back.
            let _ = std::fs::set_permissions(new, std::fs::Permissions::from_mode(mode));
            Ok(None)
        }
        // Not permitted: at least the group, when this user is one of its members.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            let group = std::os::unix::fs::chown(new, None, Some(old.gid())).is_ok();
            let lost = match (mine.uid() == old.uid(), group) {
                (true, true) => return Ok(None),
                (true, false) => format!("group {}", old.gid()),
                (false, true) => format!("owner {}", old.uid()),
                (false, false) => format!("owner {} and group {}", old.uid(), old.gid()),
            };
            Ok(Some(format!(
                "{} could not keep its {lost} (only root may give a file away): an application \
                 running as another user may be unable to open it; run: chown {}:{} {}",
                shown.display(),
                old.uid(),
                old.gid(),
                crate::shellword::path(shown)
            )))
        }
        Err(e) => Err(e)
            .with_context(|| format!("give {} the owner of {}", new.display(), shown.display())),
    }
}
