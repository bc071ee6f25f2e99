//! Errors as users see them, and the one place that turns a command's result into an exit code.
//!
//! Every error reaches the user as one line on stderr (`sqlgit: …`). Errors that decide an exit
//! code or that code branches on are typed ([`Failure`]); everything else is an `anyhow` chain
//! with short lowercase context, flattened by [`error_line`].

use std::process::ExitCode;

/// Error kinds that change what happens next.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The command was used wrongly, or (for `diff`) could not compare: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Another run holds the repository's lock past the timeout; `detail` names it when it can
    /// (see `store::lock`) and says what frees the lock.
    #[error("repository {repo} is busy: {detail}")]
    Busy { repo: String, detail: String },
}

/// How a command that returned normally ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success,
    /// Exit 1 with the problems already said: a partial failure (a push failed after the
    /// commit), an unhealthy `status`, differences found by `diff`.
    Failure,
}

/// Exit code of a command's result: 0 success, 1 failure, 2 usage.
pub fn exit_code(result: &anyhow::Result<Exit>) -> ExitCode {
    match result {
        Ok(Exit::Success) => ExitCode::SUCCESS,
        Ok(Exit::Failure) => ExitCode::from(1),
        Err(e) if matches!(e.downcast_ref::<Failure>(), Some(Failure::Usage(_))) => {
            ExitCode::from(2)
        }
        Err(_) => ExitCode::from(1),
    }
}

/// A usage error (exit 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Failure::Usage(message.into()).into()
}

/// Whether the error is a closed stdout (`sqlgit cat | head`): not worth a message.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let io = cause.downcast_ref::<std::io::Error>().map(|e| e.kind());
        // serde_json keeps the io::Error to itself (`query --json | head`).
        let json = || cause.downcast_ref::<serde_json::Error>()?.io_error_kind();
        io.or_else(json) == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// clap's usage error (several lines: the error, tips, usage) as one line: the error, its tips,
/// and where to read more.
pub fn usage_line(rendered: &str) -> String {
    let mut line = String::new();
    for l in rendered.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if l.starts_with("Usage:") || l.starts_with("For more information") {
            break;
        }
        match l.strip_prefix("error: ") {
            Some(first) if line.is_empty() => line.push_str(first),
            _ if l.starts_with("tip: ") => line.push_str(&format!("; {l}")),
            _ => line.push_str(&format!(" {l}")),
        }
    }
    line.push_str(" (see --help)");
    line
}

/// How the OS (and libgit2, which passes its text on) says ENOSPC.
pub const DISK_FULL: &str = "No space left on device";

/// Whether `err` is a write refused for a full disk (ENOSPC, or SQLite's SQLITE_FULL).
pub fn is_disk_full(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let io = cause.downcast_ref::<std::io::Error>();
        io.is_some_and(|e| e.kind() == std::io::ErrorKind::StorageFull) || {
            let text = cause.to_string();
            text.contains(DISK_FULL) || text.contains("database or disk is full")
        }
    })
}

/// What to do about a full disk, for a command that cron does not run again (`restore`, `cat
/// -o`): given as an error's context, it replaces the snapshot's hint in [`error_line`] and adds
/// no text of its own.
#[derive(Debug)]
pub struct FullDiskHint(pub String);

impl std::fmt::Display for FullDiskHint {
    fn fmt(&self, _: &mut std::fmt::Formatter) -> std::fmt::Result {
        Ok(())
    }
}

/// The full-disk hint of a command run by hand that writes its output to `file` (stdout when
/// `None`): no cron job runs it again, and a file is only renamed into place when complete.
pub fn full_disk_by_hand(file: Option<&std::path::Path>) -> String {
    let hint = "the disk is full: free space, then run it again";
    match file {
        Some(file) => format!(
            "{hint}; no partial {} is kept (an existing one is as it was)",
            file.display()
        ),
        None => hint.into(),
    }
}

/// `result` with `hint` for a full disk (see [`FullDiskHint`]).
pub fn on_full_disk<T>(
    result: anyhow::Result<T>,
    hint: impl FnOnce() -> String,
) -> anyhow::Result<T> {
    result.map_err(|e| e.context(FullDiskHint(hint())))
}

/// An error and its causes as one line, without the repetitions that layered libraries add
/// ("database is locked: Error code 5: database is locked").
pub fn error_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let mut text = cause.to_string();
        if let Some(rest) = text.strip_prefix("Error code ") {
            text = rest
                .split_once(": ")
                .map(|(_, m)| m.to_string())
                .unwrap_or(text);
        }
        // libgit2's errors end in "; class=Os (2)": its internal error class, no help to users.
        if let Some(at) = text.rfind("; class=")
            && text.ends_with(')')
        {
            text.truncate(at);
        }
        let text = one_line(&text);
        if text.is_empty() || parts.iter().any(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    let mut line = parts.join(": ");
    // A line already made by this function (a finding reported again as the run's error) has
    // its hints: each is added once.
    let missing_object = line.contains("object not found - no match for id");
    // libgit2 takes a pack it could not open (too many open files) for a missing object.
    let descriptors = line.contains(crate::cause::TOO_MANY_OPEN_FILES)
        || (missing_object && crate::cause::descriptors_short());
    let descriptor_hint = crate::cause::descriptor_hint();
    let git_lock = git_lock_hint(&line);
    // SQLite's SQLITE_FULL says it its own way (a restore's build, a snapshot's page map).
    let disk_full = (line.contains(DISK_FULL) || line.contains("database or disk is full"))
        && !line.starts_with(crate::say::STDOUT_LOST);
    let full_disk = full_disk_hint(err, disk_full);
    let hints = [
        (disk_full, full_disk.as_str()),
        (descriptors, descriptor_hint.as_str()),
        (
            missing_object && !descriptors,
            "the repository is missing an object it needs: it is damaged; `sqlgit verify` \
             says which snapshot",
        ),
        (
            line.contains("database is locked"),
            "another connection held its lock past --busy-timeout; raise it to wait longer; an \
             application that opened it with PRAGMA locking_mode=EXCLUSIVE never lets go: it \
             must use the default NORMAL mode for backups to read it",
        ),
        (!git_lock.is_empty(), git_lock.as_str()),
    ];
    for (when, hint) in hints {
        if when && !line.contains(hint) {
            line.push_str(&format!(" ({hint})"));
        }
    }
    line
}

/// What to do about a full disk: the command's own hint ([`FullDiskHint`]) or the snapshot's;
/// when the inodes of a filesystem the command writes in ran out, not the bytes, it says so
/// (freeing bytes would not help), keeping the hint's "then run it again…".
fn full_disk_hint(err: &anyhow::Error, disk_full: bool) -> String {
    let hint = err.downcast_ref::<FullDiskHint>().map_or(
        "the disk is full: free space, then run it again; a cron job picks up where it stopped",
        |h| h.0.as_str(),
    );
    match disk_full.then(crate::room::inode_shortage).flatten() {
        Some((short, fix)) => format!("{short}: {fix}{}", then_again(hint)),
        None => hint.to_string(),
    }
}

/// The end of a full-disk hint from ", then run it again" (empty without one).
fn then_again(hint: &str) -> &str {
    hint.find(", then run it again")
        .map_or("", |at| &hint[at..])
}

/// What to do about a git lock file libgit2 found taken (`failed to lock file 'X.lock' for
/// writing`): another git command holds it, or a killed one left it. Empty for other errors.
fn git_lock_hint(line: &str) -> String {
    let Some((_, rest)) = line.split_once("failed to lock file '") else {
        return String::new();
    };
    let Some((path, _)) = rest.split_once('\'') else {
        return String::new();
    };
    let rm = format!("rm {}", crate::shellword::path(std::path::Path::new(path)));
    // A line that already names the fix (a remote's lock file: see `remote::leftlock`).
    if line.contains(&rm) {
        return String::new();
    }
    format!(
        "another git command is working on the repository and holds {path}: run again once it \
         has finished; if no git command is running, one was killed and left it: remove it ({rm})"
    )
}

/// Error messages are one line, whatever the causes contained, and control bytes (a remote's
/// `ESC[2K`, which would erase the line on a terminal) are shown escaped (`\x1b`).
pub fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for word in message.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        for c in word.chars() {
            // Every control character (Unicode Cc) is below U+0100.
            if c.is_control() {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_in_a_message_are_escaped() {
        let e = anyhow::anyhow!("remote: \x1b[2Kdenied\x1b[8m hidden\r\nnext\x07");
        assert_eq!(
            error_line(&e),
            "remote: \\x1b[2Kdenied\\x1b[8m hidden next\\x07"
        );
    }

    #[test]
    fn libgit2_classes_are_dropped_and_a_full_disk_says_what_to_do() {
        let e = anyhow::anyhow!(
            "object not found - no match for id (abc); class=Odb (9); code=NotFound (-3)"
        )
        .context("read snapshot");
        let line = error_line(&e);
        assert!(
            line.starts_with("read snapshot: object not found - no match for id (abc) (the"),
            "{line}"
        );
        assert!(!line.contains("class="), "{line}");
        let e = anyhow::Error::from(std::io::Error::from_raw_os_error(28)).context("write x");
        let line = error_line(&e);
        assert!(
            line.starts_with("write x: No space left on device"),
            "{line}"
        );
        assert!(line.contains("the disk is full"), "{line}");
        let e = anyhow::Error::from(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        ))
        .context("restore snapshot 0123 into app.db");
        assert!(
            error_line(&e).contains("free space, then run it again"),
            "{e:#}"
        );
    }

    #[test]
    fn a_full_disk_is_known_by_its_error_or_its_text() {
        let e = anyhow::Error::from(std::io::Error::from_raw_os_error(28)).context("write x");
        assert!(is_disk_full(&e));
        let e = anyhow::anyhow!("config: No space left on device (os error 28)").context("save");
        assert!(is_disk_full(&e));
        assert!(!is_disk_full(&anyhow::anyhow!("Permission denied")));
    }

    #[test]
    fn a_git_lock_file_found_taken_is_named_with_what_to_do() {
        let e = anyhow::anyhow!(
            "failed to lock file '/r/refs/heads/main.lock' for writing; class=Reference (3)"
        )
        .context("move refs/heads/main");
        let line = error_line(&e);
        assert!(
            line.contains("another git command is working on the repository")
                && line.contains("(rm /r/refs/heads/main.lock)"),
            "{line}"
        );
    }

    #[test]
    fn a_full_disk_hint_given_as_context_replaces_the_snapshots() {
        let e = anyhow::Error::from(std::io::Error::from_raw_os_error(28)).context("write x");
        let e = on_full_disk::<()>(Err(e), || "the disk is full: free space".into())
            .unwrap_err()
            .context("restore snapshot 0123 to new.db");
        assert_eq!(
            error_line(&e),
            "restore snapshot 0123 to new.db: write x: No space left on device (os error 28) (the \
             disk is full: free space)"
        );
        // Other errors are as ever.
        let e = on_full_disk::<()>(Err(anyhow::anyhow!("other")), || "x".into()).unwrap_err();
        assert_eq!(error_line(&e), "other");
    }

    #[test]
    fn a_line_made_before_keeps_its_hint_once() {
        // `repair damaged packs: …` is a finding's line, reported again as the run's error.
        let e = anyhow::Error::from(std::io::Error::from_raw_os_error(28)).context("write pack");
        let again = anyhow::anyhow!("repair damaged packs: {}", error_line(&e));
        let line = error_line(&again);
        assert_eq!(line.matches("the disk is full").count(), 1, "{line}");
    }

    #[test]
    fn a_read_only_error_gets_no_wal_hint_of_its_own() {
        // The hot-journal case says what it needs; the WAL hint is given where the database
        // is known to be in WAL mode (`dump::source`).
        let e = anyhow::anyhow!("attempt to write a readonly database")
            .context("a writer crashed mid-transaction and left a hot rollback journal");
        let line = error_line(&e);
        assert!(!line.contains("WAL") && !line.contains("-shm"), "{line}");
    }
}
