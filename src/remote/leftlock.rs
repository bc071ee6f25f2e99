//! A lock file left in a remote's repository — by a git killed while it pushed there (SIGKILL,
//! the OOM killer, a crash or power cut) — fails every later push to it (git: `cannot lock ref
//! 'refs/heads/main': Unable to create '….lock': File exists`; libgit2 writing into a local
//! remote: `failed to lock file '….lock' for writing`) until someone removes it, which no run
//! of sqlgit does: another push may be running there. The push's error names the file and how
//! to remove it, for both transports.

use anyhow::anyhow;

use super::local_dir;

/// The error of a push to `url` that failed on a lock file taken in the remote's repository
/// (the caller names the push and the remote),
/// when `said` (git's stderr, or libgit2's error and the remote's words) says so; `by` (`git`,
/// `libgit2`) introduces the words that said it, shown last.
pub(super) fn left_lock(url: &str, said: &str, by: &str) -> Option<anyhow::Error> {
    let (lock, line) = lock_named(said)?;
    let local = local_dir(url).is_some();
    let (where_, check, remove) = match local {
        true => (
            "",
            "check that no other git command is working on it (a push, a git gc)",
            format!("remove it: rm {}", crate::shellword::quote(&lock)),
        ),
        false => (
            " on its server",
            "check on the server that no other push to it is running",
            format!(
                "remove it there (rm {} in the server's repository)",
                crate::shellword::quote(&lock)
            ),
        ),
    };
    Some(anyhow!(
        "a lock file in the remote's repository{where_}, {lock}, fails every push to it until it \
         is removed: another push to it is running, or a git killed while it pushed there left \
         it: {check}, then {remove}; the next run pushes what is pending ({by}: {line})"
    ))
}

/// The `….lock` file that `said` says could not be created or taken, `/./` cleaned out of it
/// (git names a local remote's `DIR/./refs/heads/main.lock`), and the line that says so
/// (without git's `remote: error:`).
fn lock_named(said: &str) -> Option<(String, String)> {
    let (line, lock) = said
        .split(['\r', '\n'])
        .filter(|l| l.contains("File exists") || l.contains("failed to lock file"))
        .find_map(|l| {
            let lock = l
                .split('\'')
                .skip(1)
                .step_by(2)
                .find(|quoted| quoted.ends_with(".lock") && quoted.len() > ".lock".len())?;
            Some((l, lock))
        })?;
    let mut lock = lock.to_string();
    while let Some(at) = lock.find("/./") {
        lock.replace_range(at..at + 2, "");
    }
    let line = line.trim();
    let line = line.strip_prefix("remote:").unwrap_or(line).trim();
    let line = line.strip_prefix("error:").unwrap_or(line).trim();
    Some((lock, crate::error::one_line(line)))
}

#[cfg(test)]
mod tests {
    use super::{left_lock, lock_named};

    const GIT_SAID: &str = "To /r/h.git\n\
        remote: error: cannot lock ref 'refs/heads/main': Unable to create \
        '/r/h.git/./refs/heads/main.lock': File exists.        \n\
        remote: \n\
        remote: Another git process seems to be running in this repository, e.g.\n";

    #[test]
    fn the_lock_file_is_named_from_git_and_libgit2() {
        let (lock, line) = lock_named(GIT_SAID).unwrap();
        assert_eq!(lock, "/r/h.git/refs/heads/main.lock");
        assert!(
            line.starts_with("cannot lock ref 'refs/heads/main'"),
            "{line}"
        );
        let libgit2 = "failed to lock file '/r/h.git/refs/heads/main.lock' for writing: ";
        assert_eq!(
            lock_named(libgit2).unwrap().0,
            "/r/h.git/refs/heads/main.lock"
        );
        // A ref that moved meanwhile is no lock file left behind.
        let moved =
            "remote: error: cannot lock ref 'refs/heads/main': is at 1234 but expected 5678";
        assert_eq!(lock_named(moved), None);
    }

    #[test]
    fn a_lock_on_a_server_is_removed_there() {
        let local = left_lock("/r/h.git", GIT_SAID, "git").unwrap().to_string();
        assert!(
            local.contains("rm /r/h.git/refs/heads/main.lock;") && !local.contains("server"),
            "{local}"
        );
        let server = left_lock("ssh://host/srv/h.git", GIT_SAID, "git")
            .unwrap()
            .to_string();
        assert!(
            server.contains("on its server")
                && server.contains("rm /r/h.git/refs/heads/main.lock in the server's repository"),
            "{server}"
        );
    }
}
