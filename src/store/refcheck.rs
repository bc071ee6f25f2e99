//! The ref files of a sqlgit repository, as plain git reads them. A crash can cut short a file
//! git rewrites in place of another (`HEAD`, `packed-refs` after a `git gc`, the refs sqlgit
//! rewrites at every run), and a tool can leave what makes plain git show other content than
//! sqlgit reads ([`super::plaingit`]: a replace ref, grafts, an ambiguous `main`, attributes).
//! [`problems`] names each, with the command that fixes it (`status`, `verify`); [`repair`]
//! fixes what a run can without losing anything, under the lock, before the repository is
//! opened:
//! - `HEAD` is always `ref: refs/heads/main` in sqlgit's bare repository: written again, also
//!   when it reads but names another branch (`git branch -m main master`, `git symbolic-ref`);
//! - sqlgit's own bookkeeping refs (`refs/sqlgit/…`, `refs/remotes/history/main`,
//!   `refs/remotes/latest/main`) are records that a run writes again or asks a remote again, so
//!   a damaged one is set aside and taken as absent (what the history remote confirmed is then
//!   unknown: nothing is pruned until it confirms again);
//! - `packed-refs` keeps the lines that read whole; `main`, when it was among the others, names
//!   the newest snapshot here again.
//!
//! What is set aside goes to `sqlgit-damaged/`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::headrepair::damaged_dir;
use crate::remote::{HISTORY_TRACKING, LATEST_TRACKING};

/// What `HEAD` says in every sqlgit repository (see `create::init_bare`).
const HEAD_TEXT: &str = "ref: refs/heads/main\n";

/// Whether `name` is one of sqlgit's own bookkeeping refs (see the module documentation).
fn is_bookkeeping(name: &str) -> bool {
    name.starts_with("refs/sqlgit/") || name == HISTORY_TRACKING || name == LATEST_TRACKING
}

/// Whether `text`, a loose ref file (or `HEAD`), reads as git reads one.
fn ref_text_valid(text: &[u8]) -> bool {
    let Some(line) = text.strip_suffix(b"\n") else {
        return false;
    };
    if let Some(target) = line.strip_prefix(b"ref: ") {
        return std::str::from_utf8(target)
            .is_ok_and(|t| t.starts_with("refs/") && git2::Reference::is_valid_name(t));
    }
    is_hex_id(line)
}

fn is_hex_id(s: &[u8]) -> bool {
    s.len() == 40 && s.iter().all(u8::is_ascii_hexdigit)
}

/// The lines of `packed-refs` that read whole, and whether any did not (a line cut short, a
/// file without its last newline).
fn packed_lines(text: &[u8]) -> (Vec<&[u8]>, bool) {
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut damaged = !text.is_empty() && !text.ends_with(b"\n");
    let mut last_kept_ref = false;
    for (i, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let whole = line.ends_with(b"\n");
        let ok = whole
            && if i == 0 && body.starts_with(b"# ") {
                true
            } else if let Some(id) = body.strip_prefix(b"^") {
                last_kept_ref && is_hex_id(id)
            } else {
                body.len() > 41
                    && is_hex_id(&body[..40])
                    && body[40] == b' '
                    && std::str::from_utf8(&body[41..])
                        .is_ok_and(|n| n.starts_with("refs/") && git2::Reference::is_valid_name(n))
            };
        if ok {
            kept.push(line);
        } else {
            damaged = true;
        }
        if !body.starts_with(b"^") {
            last_kept_ref = ok && !body.starts_with(b"#");
        }
    }
    (kept, damaged)
}

/// The refs named by `lines` of `packed-refs`.
fn packed_names<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    lines
        .filter(|l| l.len() > 41 && !l.starts_with(b"#") && !l.starts_with(b"^"))
        .map(|l| String::from_utf8_lossy(&l[41..]).trim_end().to_string())
        .collect()
}

/// sqlgit's bookkeeping refs stored as loose files under `git_dir`, by name.
fn bookkeeping_files(git_dir: &Path) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let mut dirs = vec![git_dir.join("refs/sqlgit")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_none_or(|e| e != "lock") {
                let rel = path.strip_prefix(git_dir).unwrap_or(&path);
                found.push((rel.to_string_lossy().into_owned(), path));
            }
        }
    }
    for name in [HISTORY_TRACKING, LATEST_TRACKING] {
        let path = git_dir.join(name);
        if path.is_file() {
            found.push((name.to_string(), path));
        }
    }
    found.sort();
    found
}

/// sqlgit's bookkeeping refs under `git_dir` whose files are damaged, by name.
pub fn damaged_bookkeeping(git_dir: &Path) -> Vec<String> {
    bookkeeping_files(git_dir)
        .into_iter()
        .filter(|(_, path)| damaged_file(path))
        .map(|(name, _)| name)
        .collect()
}

/// Whether the file at `path` exists and cannot be read as a ref (an I/O error is no damage:
/// left to whatever reads it next).
fn damaged_file(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|text| !ref_text_valid(&text))
}

/// What is wrong with the refs of the repository whose git dir is `git_dir` (shown as `dir` in
/// the commands), one line each with its fix: damaged files, and what makes plain git see other
/// content than sqlgit ([`super::plaingit`]).
pub fn problems(dir: &Path, git_dir: &Path) -> Vec<String> {
    let fix = format!(
        "run `sqlgit snapshot --repo {}`, which repairs it",
        crate::shellword::repo(dir)
    );
    let mut lines = Vec::new();
    if let Some(format) = super::ref_format(git_dir) {
        // Its HEAD is `ref: refs/heads/.invalid` by design: no ref file here is git's.
        lines.push(format!(
            "{}: its refs are stored in git's {format} format (`git refs migrate`), which sqlgit \
             cannot read; move them back, run: git -C {} refs migrate --ref-format=files",
            dir.display(),
            crate::shellword::repo(dir)
        ));
        return lines;
    }
    if super::lostconfig::config_lost(git_dir) {
        lines.push(super::lostconfig::missing_line(dir));
    }
    let head = git_dir.join("HEAD");
    if damaged_file(&head) {
        lines.push(format!(
            "{} is damaged (cut short by a crash?): plain git (git log, git archive) cannot \
             read the repository; {fix} (or write `{}` into it)",
            head.display(),
            HEAD_TEXT.trim_end()
        ));
    }
    let main_missing = super::lostmain::missing_line(dir, git_dir);
    if let Some(other) = other_head(git_dir) {
        let fix = match main_missing {
            Some(_) => fix.clone(),
            None => format!(
                "run `git -C {} symbolic-ref HEAD {}`",
                crate::shellword::repo(dir),
                super::BRANCH
            ),
        };
        lines.push(format!(
            "HEAD names {other}, not {} (a plain-git `git branch -m` or `git symbolic-ref`?): \
             plain git (git log, git archive HEAD, git clone) reads other content than sqlgit's \
             newest snapshot; {fix}",
            super::BRANCH
        ));
    }
    lines.extend(main_missing);
    let packed = git_dir.join("packed-refs");
    if std::fs::read(&packed).is_ok_and(|t| packed_lines(&t).1) {
        lines.push(format!(
            "{} is damaged (cut short by a crash?): the refs it holds cannot be read; {fix}",
            packed.display()
        ));
    }
    for (name, path) in bookkeeping_files(git_dir) {
        if damaged_file(&path) {
            lines.push(format!(
                "{name} (sqlgit's own record) cannot be read: {} is damaged; {fix}",
                path.display()
            ));
        }
    }
    lines.extend(super::plaingit::problems(dir, git_dir));
    lines
}

/// Fail with [`problems`] (`verify`: a pass means plain git restores what sqlgit restores).
pub fn fail_if_any(dir: &Path, git_dir: &Path) -> Result<()> {
    let lines = problems(dir, git_dir);
    match lines.is_empty() {
        true => Ok(()),
        false => anyhow::bail!("{}", lines.join("\n")),
    }
}

/// What `HEAD` of the sqlgit repository at `git_dir` names when it reads but is not
/// [`HEAD_TEXT`] (a branch renamed with `git branch -m`, `git symbolic-ref`, a detached `HEAD`):
/// plain git's `git log`, `git archive HEAD` and `git clone` then read another commit than
/// sqlgit's `main`.
fn other_head(git_dir: &Path) -> Option<String> {
    let text = std::fs::read(git_dir.join("HEAD")).ok()?;
    if text == HEAD_TEXT.as_bytes() || !ref_text_valid(&text) || !is_sqlgit(git_dir) {
        return None;
    }
    let line = String::from_utf8_lossy(&text).trim_end().to_string();
    Some(match line.strip_prefix("ref: ") {
        Some(target) => target.to_string(),
        None => format!("commit {line} (a detached HEAD)"),
    })
}

/// Whether `dir` is a sqlgit repository (its config says so), whose files this module repairs.
fn is_sqlgit(dir: &Path) -> bool {
    // Refs in another format than files (reftable) are none of this module's files.
    super::ref_format(dir).is_none()
        && git2::Config::open(&dir.join("config"))
            .and_then(|c| c.get_i64(super::FORMAT_KEY))
            .is_ok()
}

/// Whether the sqlgit repository at `dir` has a damaged `HEAD` (libgit2 may refuse to open it).
pub fn head_damaged(dir: &Path) -> bool {
    damaged_file(&dir.join("HEAD")) && is_sqlgit(dir)
}

/// Move `path` to `sqlgit-damaged/` (as `name`-PID); returns where.
fn set_aside(dir: &Path, path: &Path, name: &str) -> Result<PathBuf> {
    let aside =
        damaged_dir(dir)?.join(format!("{}-{}", name.replace('/', "-"), std::process::id()));
    std::fs::rename(path, &aside)
        .with_context(|| format!("move {} to {}", path.display(), aside.display()))?;
    Ok(aside)
}

/// Write `text` to `path` in one rename (through `path.lock`, as git writes it).
fn write_whole(path: &Path, text: &[u8]) -> Result<()> {
    let lock = path.with_file_name(format!(
        "{}.lock",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    std::fs::write(&lock, text).with_context(|| format!("write {}", lock.display()))?;
    std::fs::File::open(&lock).and_then(|f| f.sync_all())?;
    std::fs::rename(&lock, path).with_context(|| format!("write {}", path.display()))
}

/// Repair the ref files of the sqlgit repository at `dir` (see the module documentation); the
/// warnings say what was done. `main_lost`: `packed-refs` lost lines, so `main` may have to
/// name the newest snapshot again ([`super::headrepair::repoint_lost_main`]). Call with the
/// lock held, before the repository is opened.
pub fn repair(dir: &Path) -> Result<(Vec<String>, bool)> {
    let mut warnings = Vec::new();
    if !is_sqlgit(dir) {
        return Ok((warnings, false));
    }
    let kept_in = |aside: &Path| format!("the file is kept as {}", aside.display());
    let head = dir.join("HEAD");
    if damaged_file(&head) {
        let aside = set_aside(dir, &head, "HEAD")?;
        write_whole(&head, HEAD_TEXT.as_bytes())?;
        warnings.push(format!(
            "HEAD could not be read by git ({}): written again as `{}`",
            kept_in(&aside),
            HEAD_TEXT.trim_end()
        ));
    }
    if let Some(other) = other_head(dir) {
        write_whole(&head, HEAD_TEXT.as_bytes())?;
        warnings.push(format!(
            "HEAD named {other}, not {} (a plain-git `git branch -m` or `git symbolic-ref`?), \
             so plain git (git log, git archive HEAD, git clone) read another snapshot than \
             sqlgit's newest: it is `{}` again",
            super::BRANCH,
            HEAD_TEXT.trim_end()
        ));
    }
    let mut main_lost = false;
    let packed = dir.join("packed-refs");
    if let Ok(text) = std::fs::read(&packed)
        && let (kept, true) = packed_lines(&text)
    {
        let all = packed_names(text.split_inclusive(|&b| b == b'\n'));
        let left = packed_names(kept.iter().copied());
        let aside = damaged_dir(dir)?.join(format!("packed-refs-{}", std::process::id()));
        std::fs::copy(&packed, &aside)
            .with_context(|| format!("copy {} to {}", packed.display(), aside.display()))?;
        write_whole(&packed, &kept.concat())?;
        let lost: Vec<&String> = all.iter().filter(|n| !left.contains(n)).collect();
        let others: Vec<&str> = lost
            .iter()
            .filter(|n| !is_bookkeeping(n) && n.as_str() != super::BRANCH)
            .map(|n| n.as_str())
            .collect();
        main_lost = !left.iter().any(|n| n == super::BRANCH);
        warnings.push(format!(
            "packed-refs was damaged ({}): the refs that read whole are kept{}",
            kept_in(&aside),
            match others.is_empty() {
                true => String::new(),
                false => format!("; lost: {} (see the kept file)", others.join(", ")),
            }
        ));
    }
    for (name, path) in bookkeeping_files(dir) {
        if damaged_file(&path) {
            let aside = set_aside(dir, &path, &name)?;
            warnings.push(format!(
                "{name}, sqlgit's own record, could not be read ({}): taken as unknown{}",
                kept_in(&aside),
                match name == HISTORY_TRACKING {
                    true => " (nothing is pruned until the history remote confirms again)",
                    false => " (written again)",
                }
            ));
        }
    }
    Ok((warnings, main_lost))
}

/// Point `main`, when `packed-refs` lost it ([`repair`]), at the newest snapshot here (the
/// objects are intact: nothing is lost); returns the warning.
pub fn repoint_lost_main(store: &super::Store) -> Result<Option<String>> {
    super::lostmain::recover(store, "lost with the damaged packed-refs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ref_file_reads_only_whole() {
        assert!(ref_text_valid(HEAD_TEXT.as_bytes()));
        assert!(ref_text_valid(format!("{}\n", "a".repeat(40)).as_bytes()));
        assert!(!ref_text_valid(b""));
        assert!(!ref_text_valid(b"ref: refs/heads/main"));
        assert!(!ref_text_valid(format!("{}\n", "a".repeat(39)).as_bytes()));
    }

    #[test]
    fn packed_refs_keep_the_lines_that_read_whole() {
        let id = "b".repeat(40);
        let whole = format!("# pack-refs with: peeled\n{id} refs/heads/main\n^{id}\n{id} refs/x\n");
        assert_eq!(
            packed_lines(whole.as_bytes()),
            (
                whole.as_bytes().split_inclusive(|&b| b == b'\n').collect(),
                false
            )
        );
        let cut = &whole.as_bytes()[..whole.len() - 5];
        let (kept, damaged) = packed_lines(cut);
        assert!(damaged);
        assert_eq!(
            packed_names(kept.into_iter()),
            vec!["refs/heads/main".to_string()]
        );
    }
}
