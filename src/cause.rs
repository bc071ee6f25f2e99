//! The OS conditions that look like damage or a bug but are a limit or a permission of the
//! machine sqlgit runs on: a file another user owns, the open-file limit, a memory limit.
//! libgit2 hides them behind "object not found"; what is here finds the real cause, so a
//! message names it and the fix instead of a repair that cannot work.

use std::io;
use std::path::Path;

/// Whether an OS error is a permission refused (EACCES, EPERM).
pub fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM))
        || e.kind() == io::ErrorKind::PermissionDenied
}

/// Whether an OS error is the open-file limit (EMFILE: this process's; ENFILE: the system's).
pub fn is_descriptor_limit(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// How the OS says EMFILE and ENFILE ("Too many open files in system" contains it).
pub const TOO_MANY_OPEN_FILES: &str = "Too many open files";

/// For an error opening `path` (part of the repository at `repo`): the line naming the real
/// cause and its fix when it is a permission or the open-file limit, which are no damage.
pub fn not_damage(path: &Path, repo: &Path, e: &io::Error) -> Option<String> {
    if is_descriptor_limit(e) {
        return Some(format!(
            "cannot open {}: {}",
            path.display(),
            descriptor_hint()
        ));
    }
    if !is_permission(e) {
        return None;
    }
    Some(format!(
        "cannot read {}: permission denied, which is no damage{}",
        path.display(),
        owner_fix(path, repo)
    ))
}

/// Whose `path` is and the command that gives `repo` back to this user (an admin's `sudo
/// sqlgit snapshot` or `sudo git gc` leaves root-owned files behind).
pub fn owner_fix(path: &Path, repo: &Path) -> String {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let chown = format!("chown -R {me} {}", crate::shellword::path(repo));
    // The file, or the folder of the repository on the way to it that keeps it from this user.
    let mut on_the_way = path.ancestors().take_while(|p| p.starts_with(repo));
    match on_the_way.find_map(crate::output::other_owner) {
        Some(owner) => format!(
            " (it belongs to uid {owner}, a run as another user left it): give it back to this \
             user, run as root: {chown}"
        ),
        None => format!(" (its mode lets no one read it): run `chmod -R u+rwX` on it, or: {chown}"),
    }
}

/// The open-file limit named, with its fix.
pub fn descriptor_hint() -> String {
    let now = soft_limit(libc::RLIMIT_NOFILE).map_or(String::new(), |n| format!(" {n}"));
    format!(
        "the limit on open files is reached (ulimit -n{now}, systemd LimitNOFILE): this is no \
         damage; raise it (sqlgit needs about {DESCRIPTORS_NEEDED}), then run it again"
    )
}

/// This process's soft limit on `resource` (None: unlimited, or unknown).
fn soft_limit(resource: libc::__rlimit_resource_t) -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    let known = unsafe { libc::getrlimit(resource, &mut limit) } == 0;
    (known && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Open files a run needs at most: the database and its -wal and -shm, SQLite's temporary
/// files, the repository's packs (libgit2 keeps them open), the lock, and git's pipes.
pub const DESCRIPTORS_NEEDED: u64 = 64;

/// Whether this process is short of file descriptors now: the limit is below what a run needs,
/// or no file can be opened. libgit2 takes a pack it could not open for missing, and the object
/// in it for "not found".
pub fn descriptors_short() -> bool {
    soft_limit(libc::RLIMIT_NOFILE).is_some_and(|n| n < DESCRIPTORS_NEEDED)
        || std::fs::File::open("/dev/null").is_err_and(|e| is_descriptor_limit(&e))
}

/// The address-space limit (`ulimit -v`, systemd LimitAS) in bytes, when one is set.
pub fn address_space_limit() -> Option<u64> {
    soft_limit(libc::RLIMIT_AS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_and_the_descriptor_limit_are_no_damage() {
        let repo = Path::new("/r");
        let denied = io::Error::from_raw_os_error(libc::EACCES);
        let line = not_damage(Path::new("/r/objects/ab"), repo, &denied).unwrap();
        assert!(
            line.contains("permission denied") && line.contains("chown -R"),
            "{line}"
        );
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        assert!(is_descriptor_limit(&emfile));
        let line = not_damage(Path::new("/r/config"), repo, &emfile).unwrap();
        assert!(line.contains("ulimit -n"), "{line}");
        let eio = io::Error::from_raw_os_error(libc::EIO);
        assert!(not_damage(Path::new("/r/config"), repo, &eio).is_none());
    }
}
