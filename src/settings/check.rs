//! The repository's config is the settings file people edit by hand: a key sqlgit does not read
//! (a typo), a key without a value or a setting given twice must fail the run, not be ignored;
//! so must a relative path in it, or an `--ssh-key` ssh would refuse.

use std::path::Path;

use anyhow::{Context, Result};

use super::{
    DB, EXCLUDE_TABLE, FULL_EVERY, HISTORY_REMOTE, KEEP, LATEST_REMOTE, METRICS_FILE, ON_FAILURE,
    ON_SUCCESS, PUSH_TIMEOUT, REDACT, SSH_KEY, Settings, TRANSPORT,
};
use crate::store::Store;

/// Every `sqlgit.*` key of a repository's config (as git spells them: case does not matter).
const KNOWN: [&str; 14] = [
    DB,
    HISTORY_REMOTE,
    LATEST_REMOTE,
    SSH_KEY,
    TRANSPORT,
    PUSH_TIMEOUT,
    KEEP,
    FULL_EVERY,
    EXCLUDE_TABLE,
    REDACT,
    METRICS_FILE,
    ON_SUCCESS,
    ON_FAILURE,
    "format",
];

/// Keys that may be given several times.
const LISTS: [&str; 3] = [DB, EXCLUDE_TABLE, REDACT];

/// Refuse a repository config whose `sqlgit.*` settings cannot mean what they say: a key
/// sqlgit does not know (a typo such as `histroyRemote` would silently leave the backup
/// without its remote), a key without a value, a single setting given twice.
pub fn check_config(store: &Store) -> anyhow::Result<()> {
    let file = store.path.join("config");
    let Ok(config) = store
        .repo
        .config()
        .and_then(|c| c.open_level(git2::ConfigLevel::Local))
    else {
        return Ok(());
    };
    let mut seen: Vec<String> = Vec::new();
    let mut problems = Vec::new();
    if let Ok(mut entries) = config.entries(Some("^sqlgit\\.")) {
        while let Some(Ok(entry)) = entries.next() {
            let Ok(name) = entry.name() else { continue };
            let key = name
                .strip_prefix("sqlgit.")
                .unwrap_or(name)
                .to_ascii_lowercase();
            let Some(known) = KNOWN.iter().find(|k| k.to_ascii_lowercase() == key) else {
                let hint = KNOWN
                    .iter()
                    .find(|k| edit_distance(&k.to_ascii_lowercase(), &key) <= 2)
                    .map(|k| format!(" (did you mean sqlgit.{k}?)"))
                    .unwrap_or_default();
                problems.push(format!("unknown setting {name}{hint}"));
                continue;
            };
            if !entry.has_value() {
                problems.push(format!(
                    "sqlgit.{known} has no value (write: {known} = VALUE)"
                ));
            } else if seen.contains(&key) && !LISTS.contains(known) {
                problems.push(format!("sqlgit.{known} is set more than once (keep one)"));
            }
            seen.push(key);
        }
    }
    match problems.as_slice() {
        [] => Ok(()),
        _ => Err(anyhow::anyhow!(
            "{}: {}; edit the file (sqlgit init sets the known ones)",
            file.display(),
            problems.join("; ")
        )),
    }
}

/// Levenshtein distance, for a typo's hint.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// A relative path can only have come from a hand-edited config (flags are made absolute): each
/// run would find it from the folder it starts in (cron's `$HOME`, an admin's app folder), and
/// silently snapshot a different database, so it is refused.
pub(super) fn refuse_relative(settings: &Settings, config: &Path, repo: &Path) -> Result<()> {
    let one = |v: &Option<String>| v.iter().cloned().collect::<Vec<_>>();
    for (key, flag, values) in [
        (DB, "--db", settings.dbs.clone()),
        (SSH_KEY, "--ssh-key", one(&settings.ssh_key)),
        (METRICS_FILE, "--metrics-file", one(&settings.metrics_file)),
    ] {
        if let Some(path) = values.iter().find(|v| !Path::new(v).is_absolute()) {
            anyhow::bail!(
                "sqlgit.{key} {path:?} in {}: a relative path (each run would look for it from \
                 the folder it starts in): write it absolute, or run: sqlgit init --repo {} \
                 {flag} PATH",
                config.display(),
                crate::shellword::path(repo)
            );
        }
    }
    refuse_relative_remotes(settings, config, repo)
}

/// A remote given as a relative local path (by hand: flags are made absolute) would be pushed
/// to (or fetched from) whatever repository of that name is in the folder a run starts in.
pub(super) fn refuse_relative_remotes(
    settings: &Settings,
    config: &Path,
    repo: &Path,
) -> Result<()> {
    for (key, flag, url) in [
        (HISTORY_REMOTE, "--history-remote", &settings.history_remote),
        (LATEST_REMOTE, "--latest-remote", &settings.latest_remote),
    ] {
        if let Some(url) = url
            && let Some(here) = absolute_remote(url)
        {
            anyhow::bail!(
                "sqlgit.{key} {url:?} in {}: a relative path (each run would push to the \
                 repository of that name in the folder it starts in; from here: {here}): write \
                 it absolute, or run: sqlgit init --repo {} {flag} {}",
                config.display(),
                crate::shellword::path(repo),
                crate::shellword::quote(&here)
            );
        }
    }
    Ok(())
}

/// A remote URL that names a relative local path ([`crate::remote::relative_local`]) made absolute
/// from the current folder, in its own form (`hist.git`: `/srv/hist.git`; `file://./h.git`:
/// `file:///srv/h.git`). None: not a relative local path.
pub fn absolute_remote(url: &str) -> Option<String> {
    let relative = crate::remote::relative_local(url)?;
    let path = super::absolute(relative.as_ref());
    Some(match url.starts_with("file://") {
        true => format!("file://{}", path.replace('%', "%25")),
        false => path,
    })
}

/// `--ssh-key` must be a file ssh accepts: there, and not readable by others (ssh ignores such
/// a key, and the server then seems to refuse every key).
pub(super) fn check_ssh_key(key: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(key).with_context(|| format!("--ssh-key {}", key.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "--ssh-key {}: readable by others (mode {mode:o}), so ssh refuses to use it: run \
             chmod 600 {}",
            key.display(),
            crate::shellword::path(key)
        );
    }
    Ok(())
}
