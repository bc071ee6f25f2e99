//! Creating the repository on a first run, so that a run killed half-way never leaves a
//! half-made repository that later runs refuse ("not a git repository"):
//!
//! - a missing `DIR` is built beside its place (`.DIR.sqlgit-new-PID`) and renamed into it;
//! - an existing empty `DIR` (made by an administrator for the backup user, often in a folder
//!   that user cannot write) is filled in place: built in `DIR/.sqlgit-new-PID`, under the
//!   repository's lock (`DIR/sqlgit.lock`, so first runs at the same moment wait for each other),
//!   and moved up entry by entry, the config (which marks a sqlgit repository) last. A run killed
//!   before the config is there leaves only what such a run creates, which the next run removes
//!   and builds again;
//! - a `DIR` holding only a sqlgit config (a rebuilt machine whose settings were put back by
//!   configuration management or from a backup) is built the same way around that config, which
//!   is kept as it is (it names the database and the remotes; the run then continues the history
//!   remote as any rebuilt machine does). `HEAD` moves in last: until it is there, the next run
//!   builds again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use git2::{Repository, RepositoryInitOptions};

use super::{FORMAT_KEY, Store, left_by_dead_process, lock};

/// The folder an in-place creation builds in, inside `DIR` (its name ends in the process id).
pub(super) const STAGING: &str = ".sqlgit-new-";

/// What a bare repository's creation puts in `DIR` before its config.
const SKELETON: [&str; 7] = [
    "HEAD",
    "description",
    "hooks",
    "info",
    "objects",
    "refs",
    "sqlgit.lock",
];

impl Store {
    /// Open the repository, creating it (bare, private) when `dir` is missing or empty.
    pub fn open_or_create(dir: &Path) -> Result<Store> {
        crate::room::writes_in(dir);
        let shown = dir.display();
        match std::fs::metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match made_at(dir) {
                // A symlink to a folder not made yet: the repository is made there, and opened
                // through the link, which stays.
                at if at != dir => create_beside(&at).and_then(|_| Store::open(dir)),
                _ => create_beside(dir),
            },
            Err(e) => Err(super::unreadable(dir, dir, e)),
            Ok(m) if !m.is_dir() => bail!("repository {shown}: not a directory"),
            Ok(_) if unfinished(dir)? => create_in_place(dir),
            Ok(_) => Store::open(dir),
        }
    }
}

/// Where [`Store::open_or_create`] makes the repository `dir` when nothing is there (None:
/// something is, or cannot be looked at): `dir` itself, or, for a symlink to a folder not made
/// yet (a repository on a backup disk, linked from the application's folder), the path it
/// points to, through further links, as `mkdir -p` through the link would make it. A refused
/// first run removes that folder again, never the user's link.
pub fn to_create(dir: &Path) -> Option<PathBuf> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(made_at(dir)),
        _ => None,
    }
}

/// `dir`, or the path the symlink `dir` points to (through at most 40 links, as the system
/// follows them).
fn made_at(dir: &Path) -> PathBuf {
    let mut path = dir.to_path_buf();
    for _ in 0..40 {
        match std::fs::read_link(&path) {
            Ok(target) => path = path.parent().unwrap_or(Path::new("")).join(target),
            Err(_) => break,
        }
    }
    path
}

/// Whether [`Store::open_or_create`] would open `dir` as it is, not create a repository there
/// (nor fail for want of one): then the error opening it is the cause to say (another user's,
/// unreadable, damaged), never that it has no settings yet.
pub fn exists_as_repository(dir: &Path) -> bool {
    match std::fs::metadata(dir) {
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        Ok(m) => !m.is_dir() || !unfinished(dir).unwrap_or(false),
    }
}

/// Whether `dir` is empty, or holds only what an in-place creation killed before its config
/// was in place leaves (its staging folder must be there: a bare git repository needs no
/// config, and someone else's is never touched), or only a sqlgit config ([`config_only`]).
fn unfinished(dir: &Path) -> Result<bool> {
    let names = entries(dir)?;
    let staged = names.iter().any(|n| n.starts_with(STAGING));
    let ours = |n: &String| n.starts_with(STAGING) || SKELETON.contains(&n.as_str());
    Ok(names.iter().all(|n| n == "sqlgit.lock")
        || (staged && names.iter().all(ours))
        || config_only(dir, &names))
}

/// The names in `dir`.
fn entries(dir: &Path) -> Result<Vec<String>> {
    Ok(std::fs::read_dir(dir)
        .map_err(|e| super::unreadable(dir, dir, e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

/// Whether `dir` (its entries: `names`) holds a sqlgit config (one with `sqlgit.format`) and
/// nothing else but the lock, or also what a creation around it killed before `HEAD` was in
/// place leaves (its staging folder there: a repository that lost only its `HEAD` is never
/// touched): a rebuilt machine's settings.
pub(super) fn config_only(dir: &Path, names: &[String]) -> bool {
    let staged = names.iter().any(|n| n.starts_with(STAGING));
    let ours = |n: &String| {
        n == "config"
            || n == "sqlgit.lock"
            || staged && (n.starts_with(STAGING) || n != "HEAD" && SKELETON.contains(&n.as_str()))
    };
    names.iter().any(|n| n == "config")
        && names.iter().all(ours)
        && git2::Config::open(&dir.join("config"))
            .and_then(|c| c.get_i64(FORMAT_KEY))
            .is_ok()
}

/// Fill the existing folder `dir` with a new repository (see the module's comment).
fn create_in_place(dir: &Path) -> Result<Store> {
    let shown = dir.display();
    let lock = lock::lock(dir, Duration::from_secs(60))?;
    // Another first run may have created it while this one waited.
    if !unfinished(dir)? {
        drop(lock);
        return Store::open(dir);
    }
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name();
        let staged = name
            .to_string_lossy()
            .strip_prefix(STAGING)
            .map(str::to_owned);
        if staged.is_some_and(|pid| left_by_dead_process(&pid))
            || (name != "sqlgit.lock" && SKELETON.iter().any(|s| name == *s))
        {
            remove(&e.path()).with_context(|| format!("create repository {shown}"))?;
        }
    }
    // Private, as a folder sqlgit makes: one made beforehand keeps its maker's mode (0777 under
    // umask 000), and whoever can write in it could swap the config and its hooks. Not the
    // owner (an administrator's folder): left as its owner made it.
    let _ = std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
    let tmp = dir.join(format!("{STAGING}{}", std::process::id()));
    init_bare(&tmp).with_context(|| format!("create repository {shown}"))?;
    // A kept config (a rebuilt machine's settings) stays; HEAD, without which the folder is no
    // repository, then goes last.
    let last = if dir.join("config").exists() {
        "HEAD"
    } else {
        "config"
    };
    let mut entries: Vec<_> = std::fs::read_dir(&tmp)?
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "config" && n != "HEAD")
        .collect();
    if last == "config" {
        entries.push("HEAD".into());
    }
    entries.push(last.into());
    for name in entries {
        std::fs::rename(tmp.join(&name), dir.join(&name))
            .with_context(|| format!("create repository {shown}"))?;
    }
    std::fs::File::open(dir)?.sync_all()?;
    let _ = std::fs::remove_dir_all(&tmp);
    drop(lock);
    Store::open(dir)
}

fn remove(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

/// Build the repository beside `dir` and rename it into place.
fn create_beside(dir: &Path) -> Result<Store> {
    let shown = dir.display();
    // Built beside its place and renamed into it: a run killed half-way through creating
    // it leaves no half-made repository behind.
    let name = dir
        .file_name()
        .with_context(|| format!("repository {shown}: not a directory name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".sqlgit-new-{}", std::process::id()));
    let tmp = dir.with_file_name(&tmp_name);
    let parent = tmp.parent().map(Path::to_path_buf).unwrap_or_default();
    if !parent.as_os_str().is_empty() {
        std::fs::create_dir_all(&parent).with_context(|| format!("create repository {shown}"))?;
    }
    // Leftovers of runs killed while creating it (not those of a run creating it now).
    let stem = format!(".{}.sqlgit-new-", name.to_string_lossy());
    let listing = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &parent
    };
    if let Ok(entries) = std::fs::read_dir(listing) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.strip_prefix(&stem).is_some_and(left_by_dead_process) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    init_bare(&tmp).with_context(|| format!("create repository {shown}"))?;
    if let Err(e) = std::fs::rename(&tmp, dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another run created it first (the directory is no longer empty): use theirs.
        let taken = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
        if !taken {
            return Err(e).with_context(|| format!("create repository {shown}"));
        }
    }
    Store::open(dir)
}

/// A new bare, private sqlgit repository at `path`, on disk.
fn init_bare(path: &Path) -> Result<()> {
    let mut opts = RepositoryInitOptions::new();
    opts.bare(true).mkpath(true).initial_head("main");
    let repo = Repository::init_opts(path, &opts)?;
    let mut config = repo.config()?;
    config.set_str("core.logAllRefUpdates", "false")?;
    config.set_i64("gc.auto", 0)?;
    config.set_i64(FORMAT_KEY, crate::dump::Format::CURRENT.number())?;
    drop(config);
    drop(repo);
    std::fs::File::open(path)?.sync_all()?;
    Ok(())
}
