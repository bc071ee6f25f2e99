//! What a run was given, checked and remembered: the settings it saves (a remote whose URL
//! changed forgets what it confirmed), the databases of a first run, one-off databases that
//! would take a configured one's folder, and a metrics file that cannot be written.

use std::path::Path;

use anyhow::{Result, anyhow};

use super::Request;
use crate::remote::{self, Role};
use crate::settings::Settings;
use crate::snapshot;
use crate::store::Store;

/// Remember what this run was given: its filters, and the databases of a first run. Returns
/// a warning for each saved filter list the given one replaced without some of its patterns.
pub(super) fn remember(
    store: &Store,
    req: &Request,
    old: &Settings,
    settings: &Settings,
) -> Result<Vec<String>> {
    // Databases given as arguments are remembered once they have been snapshotted (a typo
    // must not replace the configured list), and only as the first list: a one-off run on
    // another database must not silently stop the backup of the configured ones.
    store.save_settings(|| {
        let dropped = settings.save_filters(store, old)?;
        if !req.flags.dbs.is_empty() && old.dbs.is_empty() {
            settings.save_dbs(store)?;
        }
        Ok(dropped)
    })
}

/// The given databases, each one that is a configured database's file (the same device and
/// inode: reached through a symlinked folder, say) spelled as the configured one, so the run
/// is not taken for a one-off run on another database.
pub(super) fn as_configured(given: &[String], configured: &[String]) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &str| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    given
        .iter()
        .map(|g| {
            let same = |c: &&String| *c == g || id(c).is_some_and(|c| Some(c) == id(g));
            configured.iter().find(same).unwrap_or(g).clone()
        })
        .collect()
}

pub(super) fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|d| b.contains(d))
}

/// A one-off database must not land in the folder of a configured one of the same file name
/// (its snapshot would replace that database's, and be pushed as it). When that one is gone,
/// the given one may be it, moved: the refusal names the `init` that points the repository at
/// it ([`super::moved`]).
pub(super) fn refuse_taken_folders(
    repo: &Path,
    given: &[String],
    configured: &[String],
) -> Result<()> {
    for db in given.iter().filter(|d| !configured.contains(d)) {
        let folder = snapshot::db_folder(std::path::Path::new(db));
        if let Some(owner) = configured
            .iter()
            .find(|c| snapshot::db_folder(std::path::Path::new(c)) == folder)
        {
            if let Some(line) = super::moved::moved_here(repo, db, owner, configured) {
                return Err(anyhow!(line));
            }
            return Err(anyhow!(
                "{db} would be snapshotted into the folder {folder:?} of the configured database \
                 {owner} (same file name): give it a repository of its own"
            ));
        }
    }
    Ok(())
}

/// A metrics file newly given where it cannot be written (its folder does not exist): refused
/// before it is saved, and not written by the failed run. One whose folder goes away later is
/// a warning on each run instead (a backup never waits on its metrics).
/// An existing folder given as the file is refused too.
pub(super) fn refused_metrics_file(old: &Settings, new: &Settings) -> Option<String> {
    let path = new.metrics_file.as_deref().filter(|p| !p.is_empty())?;
    if new.metrics_file == old.metrics_file {
        return None;
    }
    // Written through symlinks (the collector reads the file a link points to).
    let target = match crate::output::follow_symlinks(Path::new(path)) {
        Ok(target) => target,
        Err(e) => return Some(format!("--metrics-file {path}: {e} (give another path)")),
    };
    if target.is_dir() {
        return Some(format!(
            "--metrics-file {path}: a folder, not a file (give a file in it, e.g. \
             {path}/sqlgit.prom)"
        ));
    }
    let dir = target.parent().filter(|d| !d.is_dir())?;
    Some(format!(
        "--metrics-file {path}: the folder {} does not exist (create it first, or give another \
         path)",
        dir.display()
    ))
}

/// Refuse a remote URL given as a flag that no push could use (a space, an unknown scheme), as
/// init does: a usage error naming the flag.
pub fn refuse_bad_urls(history: &Option<String>, latest: &Option<String>) -> Result<()> {
    for (url, flag) in [(history, "--history-remote"), (latest, "--latest-remote")] {
        if let Some(url) = url.as_deref().filter(|u| !u.is_empty()) {
            remote::validate_url(url).map_err(|e| crate::error::usage(format!("{flag}: {e}")))?;
        }
    }
    Ok(())
}

/// Save the settings that changed; a remote whose URL changed forgets what it had confirmed
/// (pruning relies on that). Returns notes for the user (a password that was not saved).
pub fn save_settings(store: &Store, old: &Settings, new: &Settings) -> Result<Vec<String>> {
    crate::settings::check_config(store)?;
    new.validate(store, old)?;
    if let Some(why) = refused_metrics_file(old, new) {
        return Err(crate::error::usage(why));
    }
    // A value the flags did not change is named as the config's key, not as a flag nobody typed.
    let config = store.path.join("config");
    let name = |flag: &str, key: &str, saved: bool| match saved {
        true => format!("sqlgit.{key} in {}", config.display()),
        false => flag.to_string(),
    };
    let saved = [
        old.history_remote == new.history_remote,
        old.latest_remote == new.latest_remote,
    ];
    let names = [
        name("--history-remote", "historyRemote", saved[0]),
        name("--latest-remote", "latestRemote", saved[1]),
    ];
    // A URL newly given is refused before it is saved, as init refuses it: saved, it would
    // fail every later run. One already saved fails its push (the snapshot is still taken).
    let changed =
        |now: &Option<String>, was: &Option<String>| (now != was).then(|| now.clone()).flatten();
    refuse_bad_urls(
        &changed(&new.history_remote, &old.history_remote),
        &changed(&new.latest_remote, &old.latest_remote),
    )?;
    remote::check_roles(
        &store.path,
        new.history_remote.as_deref(),
        new.latest_remote.as_deref(),
        [&names[0], &names[1]],
        remote::reads_ssh_config(new.transport.as_deref()),
    )
    .map_err(|e| match saved {
        [true, true] => e,
        _ => crate::error::usage(e.to_string()),
    })?;
    let mut notes = store.save_settings(|| new.save(store, old))?;
    notes.extend(history_dropped(old, new));
    for (role, was, now) in [
        (Role::History, &old.history_remote, &new.history_remote),
        (Role::Latest, &old.latest_remote, &new.latest_remote),
    ] {
        if !remote::same_remote(was.as_deref(), now.as_deref()) {
            remote::forget_confirmed(store, role)?;
        }
    }
    Ok(notes)
}

/// A note when the history remote is unset while pruning is on: from now on pruning deletes
/// what it cuts for good, snapshots the remote never received among them.
fn history_dropped(old: &Settings, new: &Settings) -> Option<String> {
    let set = |url: &Option<String>| url.as_deref().is_some_and(|u| !u.is_empty());
    let keep = new.keep.as_deref().filter(|k| !k.is_empty())?;
    (set(&old.history_remote) && !set(&new.history_remote)).then(|| {
        format!(
            "no history remote is set any more: pruning (keep {keep}) now deletes older \
             snapshots for good, also those it never received; to keep them, set one again \
             (--history-remote URL) or stop pruning (--keep '')"
        )
    })
}
