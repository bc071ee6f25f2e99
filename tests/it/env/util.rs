//! Small helpers every test file needs alike: times as RFC 3339, directory sizes and copies,
//! killing a process group, the one-line error check, reading CSV output, and a hook that logs
//! its run's result.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::Run;

/// `2023-11-14T22:13:20Z` for Unix seconds.
pub fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// Bytes used by the files under `dir` (recursively).
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            total += dir_size(&entry.path());
        } else {
            total += meta.len();
        }
    }
    total
}

/// `cp -a`-like copy of a directory tree (files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// SIGKILL a whole process group; whether the signal was sent.
pub fn kill_group(pgid: u32) -> bool {
    // SAFETY: kill(2) with a negative pid signals the group; no memory is involved.
    unsafe { libc::kill(-(pgid as libc::pid_t), libc::SIGKILL) == 0 }
}

/// A failed run: exit `code` and exactly one line on stderr (returned, without its end).
#[track_caller]
pub fn one_error_line(run: Run, code: i32) -> String {
    let run = run.code_is(code);
    let err = run.stderr_str();
    if err.lines().count() != 1 || !err.ends_with('\n') || err.trim().is_empty() {
        run.fail("expected exactly one line on stderr");
    }
    err.trim_end().to_string()
}

/// RFC 4180 CSV: records of fields (bytes), quotes undone. Every record must end in CRLF; a
/// quoted field may hold `,`, `"` (doubled), CR and LF.
#[track_caller]
pub fn parse_csv(text: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let mut field = Vec::new();
        if text[i] == b'"' {
            i += 1;
            loop {
                match (text.get(i), text.get(i + 1)) {
                    (Some(b'"'), Some(b'"')) => (field.push(b'"'), i += 2),
                    (Some(b'"'), _) => break i += 1,
                    (Some(&b), _) => (field.push(b), i += 1),
                    (None, _) => panic!("CSV ends inside a quoted field"),
                };
            }
        } else {
            while i < text.len() && !b",\r\"".contains(&text[i]) {
                field.push(text[i]);
                i += 1;
            }
        }
        record.push(field);
        match &text[i..] {
            [b',', ..] => i += 1,
            [b'\r', b'\n', ..] => {
                records.push(std::mem::take(&mut record));
                i += 2;
            }
            rest => panic!(
                "CSV: unexpected {:?}",
                String::from_utf8_lossy(&rest[..rest.len().min(20)])
            ),
        }
    }
    assert!(
        record.is_empty(),
        "CSV: the last record does not end in CRLF"
    );
    records
}

/// A hook that appends `RESULT|ERROR` (its `SQLGIT_RESULT` and `SQLGIT_ERROR`) to `file`.
pub fn logging_hook(file: &Path) -> String {
    format!(
        "printf '%s|%s\\n' \"$SQLGIT_RESULT\" \"$SQLGIT_ERROR\" >> '{}'",
        file.display()
    )
}

/// The lines a [`logging_hook`] wrote to `file` (none when it never ran).
pub fn hook_lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}
