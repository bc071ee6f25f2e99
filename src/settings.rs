//! The repository's settings: one file, `DIR/config` (git's config format, section `[sqlgit]`),
//! written by `sqlgit init` and by flags, which always override it and are remembered. This is
//! the only module that knows the keys; everything else works with [`Settings`].
//!
//! ```text
//! [sqlgit]
//!     format = 2                       # marks a repository sqlgit created
//!     db = /srv/app.db                 # databases to snapshot (repeatable)
//!     historyRemote = ssh://…          # every snapshot, fast-forward
//!     latestRemote = https://…         # newest snapshot only, force-pushed
//!     sshKey = /home/backup/.ssh/id_ed25519
//!     transport = git                  # git (default when installed) or libgit2
//!     pushTimeout = 5m                 # bound on one remote's push
//!     keep = 1day                      # local retention: N snapshots or a duration
//!     fullEvery = 1day                 # how often a run also reads everything and compares
//!     excludeTable = sessions          # repeatable glob
//!     redact = users.password_hash     # repeatable TABLE.COLUMN
//!     metricsFile = /var/lib/node_exporter/sqlgit.prom
//!     onSuccess = curl -fsS https://hc-ping.com/…
//!     onFailure = …
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use crate::dump::Filters;
use crate::remote::{self, Transport};
use crate::store::Store;
use crate::store::prune::Keep;

/// Everything a run is configured with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Absolute paths of the databases to snapshot.
    pub dbs: Vec<String>,
    pub history_remote: Option<String>,
    pub latest_remote: Option<String>,
    pub ssh_key: Option<String>,
    /// `--transport`: `git` or `libgit2` (absent: git when installed).
    pub transport: Option<String>,
    /// `--push-timeout` as given (`5m`).
    pub push_timeout: Option<String>,
    /// `--keep` as given (`288`, `1day`).
    pub keep: Option<String>,
    /// `--full-every` as given (`0s`, `6h`; absent: [`DEFAULT_FULL_EVERY`]).
    pub full_every: Option<String>,
    pub exclude_tables: Vec<String>,
    pub redact: Vec<String>,
    pub metrics_file: Option<String>,
    pub on_success: Option<String>,
    pub on_failure: Option<String>,
}

/// Settings given as flags: `None` (or an empty list) is "not given"; `Some("")` forgets a
/// single value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub dbs: Vec<String>,
    pub history_remote: Option<String>,
    pub latest_remote: Option<String>,
    pub ssh_key: Option<String>,
    /// `--transport`: `git` or `libgit2` (absent: git when installed).
    pub transport: Option<String>,
    /// `--push-timeout` as given (`5m`).
    pub push_timeout: Option<String>,
    pub keep: Option<String>,
    pub full_every: Option<String>,
    pub exclude_tables: Vec<String>,
    pub redact: Vec<String>,
    pub metrics_file: Option<String>,
    pub on_success: Option<String>,
    pub on_failure: Option<String>,
}

/// How often a run reads everything when `--full-every` was never given.
pub const DEFAULT_FULL_EVERY: &str = "1day";

const DB: &str = "db";
const HISTORY_REMOTE: &str = "historyRemote";
const LATEST_REMOTE: &str = "latestRemote";
const SSH_KEY: &str = "sshKey";
const TRANSPORT: &str = "transport";
const PUSH_TIMEOUT: &str = "pushTimeout";
const KEEP: &str = "keep";
const FULL_EVERY: &str = "fullEvery";
const EXCLUDE_TABLE: &str = "excludeTable";
const REDACT: &str = "redact";
const METRICS_FILE: &str = "metricsFile";
const ON_SUCCESS: &str = "onSuccess";
const ON_FAILURE: &str = "onFailure";

mod check;
mod lenient;
pub use check::{absolute_remote, check_config};

impl Settings {
    /// The settings saved in the repository.
    pub fn load(store: &Store) -> Settings {
        let one = |key: &str| store.setting(key).filter(|v| !v.is_empty());
        Settings {
            dbs: values(store, DB),
            history_remote: one(HISTORY_REMOTE),
            latest_remote: one(LATEST_REMOTE),
            ssh_key: one(SSH_KEY),
            transport: one(TRANSPORT),
            push_timeout: one(PUSH_TIMEOUT),
            keep: one(KEEP),
            full_every: one(FULL_EVERY),
            exclude_tables: values(store, EXCLUDE_TABLE),
            redact: values(store, REDACT),
            metrics_file: one(METRICS_FILE),
            on_success: one(ON_SUCCESS),
            on_failure: one(ON_FAILURE),
        }
    }

    /// The settings saved in `DIR/config`, read as plain text: what a run knows when the
    /// repository cannot be opened (see [`lenient`]).
    pub fn load_lenient(dir: &Path) -> Settings {
        let all = |key: &str| -> Vec<String> {
            let mut v = lenient::values(dir, key);
            v.retain(|v| !v.is_empty());
            v
        };
        let one = |key: &str| lenient::values(dir, key).pop().filter(|v| !v.is_empty());
        Settings {
            dbs: all(DB),
            history_remote: one(HISTORY_REMOTE),
            latest_remote: one(LATEST_REMOTE),
            ssh_key: one(SSH_KEY),
            transport: one(TRANSPORT),
            push_timeout: one(PUSH_TIMEOUT),
            keep: one(KEEP),
            full_every: one(FULL_EVERY),
            exclude_tables: all(EXCLUDE_TABLE),
            redact: all(REDACT),
            metrics_file: one(METRICS_FILE),
            on_success: one(ON_SUCCESS),
            on_failure: one(ON_FAILURE),
        }
    }

    /// Only the flags (what a run knows when there is no repository to read).
    pub fn from_flags(flags: &Flags) -> Settings {
        Settings::default().merged(flags)
    }

    /// These settings with the flags applied (given values win; `""` forgets).
    pub fn merged(&self, flags: &Flags) -> Settings {
        let one = |flag: &Option<String>, old: &Option<String>| match flag {
            Some(v) if v.is_empty() => None,
            Some(v) => Some(v.clone()),
            None => old.clone(),
        };
        // A list given replaces the saved one; `""` alone forgets it.
        let list = |flag: &Vec<String>, old: &Vec<String>| match flag.as_slice() {
            [] => old.clone(),
            [only] if only.is_empty() => Vec::new(),
            _ => flag.iter().filter(|v| !v.is_empty()).cloned().collect(),
        };
        Settings {
            dbs: list(&flags.dbs, &self.dbs),
            history_remote: one(&flags.history_remote, &self.history_remote),
            latest_remote: one(&flags.latest_remote, &self.latest_remote),
            ssh_key: one(&flags.ssh_key, &self.ssh_key),
            transport: one(&flags.transport, &self.transport),
            push_timeout: one(&flags.push_timeout, &self.push_timeout),
            keep: one(&flags.keep, &self.keep),
            full_every: one(&flags.full_every, &self.full_every),
            exclude_tables: list(&flags.exclude_tables, &self.exclude_tables),
            redact: list(&flags.redact, &self.redact),
            metrics_file: one(&flags.metrics_file, &self.metrics_file),
            on_success: one(&flags.on_success, &self.on_success),
            on_failure: one(&flags.on_failure, &self.on_failure),
        }
    }

    /// Check what can be checked before anything is saved (a malformed remote URL is saved on
    /// purpose: every run then fails loudly on it until it is fixed).
    /// `saved`: what the repository's config holds. A bad value that came from there (the
    /// flags did not change it) is named as the config's key, not as a flag nobody typed.
    pub fn validate(&self, store: &Store, saved: &Settings) -> Result<()> {
        let config = store.path.join("config");
        let named = |flag: &str, key: &str, from_config: bool| {
            if from_config {
                format!("sqlgit.{key} in {}", config.display())
            } else {
                flag.to_string()
            }
        };
        check::refuse_relative(self, &config, &store.path)?;
        if let Some(spec) = &self.keep {
            let name = named("--keep", KEEP, saved.keep == self.keep);
            spec.parse::<Keep>()
                .map_err(|e| anyhow!("{name} {spec:?}: {e}"))?;
        }
        if let Some(spec) = &self.full_every {
            let name = named(
                "--full-every",
                FULL_EVERY,
                saved.full_every == self.full_every,
            );
            crate::cli::parse_duration(spec).map_err(|e| anyhow!("{name} {spec:?}: {e}"))?;
        }
        if let Some(value) = &self.transport {
            let name = named("--transport", TRANSPORT, saved.transport == self.transport);
            Transport::parse(Some(value)).map_err(|e| anyhow!("{name}: {e}"))?;
        }
        if let Some(spec) = &self.push_timeout {
            let from_config = saved.push_timeout == self.push_timeout;
            let name = named("--push-timeout", PUSH_TIMEOUT, from_config);
            push_timeout(spec).map_err(|e| anyhow!("{name} {spec:?}: {e}"))?;
        }
        // A filter pattern the command line would refuse (`redact = password_hash`, `*`)
        // would redact nothing: the secret would be committed in clear.
        for spec in &self.redact {
            let name = named("--redact", REDACT, saved.redact.contains(spec));
            redact_pattern(spec).map_err(|e| anyhow!("{name}: {e}"))?;
        }
        // A URL newly given is checked whole by job::save_settings; anything wrong with a saved
        // one fails its push (the snapshot is still taken). A password that must not be saved
        // fails the run before anything is.
        for (role, url) in [
            ("history", &self.history_remote),
            ("latest", &self.latest_remote),
        ] {
            if let Some(url) = url {
                remote::refuse_scp_password(url)
                    .and_then(|()| remote::refuse_hidden_password(url))
                    .map_err(|e| anyhow!("{role} remote: {e}"))?;
            }
        }
        Ok(())
    }

    /// Refuse a remote that is a relative local path, written into the config by hand (flags
    /// are made absolute): each run would reach it from the folder it starts in.
    pub fn refuse_relative_remotes(&self, store: &Store) -> Result<()> {
        check::refuse_relative_remotes(self, &store.path.join("config"), &store.path)
    }

    /// Save every setting that differs from `old` (what the repository holds), all but the
    /// database list and the filters, which a run saves only once it has snapshotted them
    /// ([`save_dbs`], [`Settings::save_filters`]).
    ///
    /// [`save_dbs`]: Settings::save_dbs
    ///
    /// A password in a remote URL is never written: the URL is saved without it (the run that
    /// was given it still uses it). Returns what the user should hear about that.
    pub fn save(&self, store: &Store, old: &Settings) -> Result<Vec<String>> {
        let mut notes = Vec::new();
        for (key, role, new, old) in [
            (
                HISTORY_REMOTE,
                "history",
                &self.history_remote,
                &old.history_remote,
            ),
            (
                LATEST_REMOTE,
                "latest",
                &self.latest_remote,
                &old.latest_remote,
            ),
        ] {
            let kept = new.as_deref().map(remote::without_password);
            let stored = kept.as_ref().map(|(url, _)| url.clone());
            if stored != *old {
                store.set_setting(key, stored.as_deref().unwrap_or(""))?;
                if kept.is_some_and(|(_, dropped)| dropped) {
                    let over_ssh = new
                        .as_deref()
                        .is_some_and(|u| u.to_ascii_lowercase().starts_with("ssh"));
                    notes.push(if over_ssh {
                        format!(
                            "the password in the {role} remote's URL was not saved (sqlgit \
                             never stores credentials), and ssh never asks for one in a cron \
                             run: use a key (--ssh-key FILE, or one in ssh-agent)"
                        )
                    } else {
                        format!(
                            "the password or token in the {role} remote's URL was not saved \
                             (sqlgit never stores credentials): later runs need it again — set \
                             {} (user: the URL's or {}), or configure a git credential helper \
                             for that host",
                            remote::TOKEN_ENV,
                            remote::TOKEN_USER_ENV
                        )
                    });
                }
            }
            if let Some(old) = old
                && remote::without_password(old).1
            {
                // This run has just saved the URL without it (above): nothing to run.
                notes.push(format!(
                    "the repository's config held a password in the {role} remote's URL (saved \
                     by an older sqlgit): it is removed from the config now; later runs need it \
                     from {} or a git credential helper",
                    remote::TOKEN_ENV,
                ));
            }
        }
        let pairs = [
            (SSH_KEY, &self.ssh_key, &old.ssh_key),
            (TRANSPORT, &self.transport, &old.transport),
            (PUSH_TIMEOUT, &self.push_timeout, &old.push_timeout),
            (KEEP, &self.keep, &old.keep),
            (FULL_EVERY, &self.full_every, &old.full_every),
            (METRICS_FILE, &self.metrics_file, &old.metrics_file),
            (ON_SUCCESS, &self.on_success, &old.on_success),
            (ON_FAILURE, &self.on_failure, &old.on_failure),
        ];
        for (key, new, old) in pairs {
            if new != old {
                store.set_setting(key, new.as_deref().unwrap_or(""))?;
            }
        }
        Ok(notes)
    }

    /// Save the table filters that differ from `old`: by a run once its snapshot succeeded (a
    /// filter the database rejects, e.g. a redacted key column, is then never remembered).
    /// Returns a warning for each saved pattern a given list dropped (a given list replaces
    /// the saved one: one redaction added that way would un-redact the others); none for `""`,
    /// which forgets them on purpose.
    pub fn save_filters(&self, store: &Store, old: &Settings) -> Result<Vec<String>> {
        let mut dropped = Vec::new();
        for (key, flag, new, old) in [
            (
                EXCLUDE_TABLE,
                "--exclude-table",
                &self.exclude_tables,
                &old.exclude_tables,
            ),
            (REDACT, "--redact", &self.redact, &old.redact),
        ] {
            if new != old {
                store.set_settings(key, new)?;
                let gone: Vec<&str> = old
                    .iter()
                    .filter(|p| !new.contains(p))
                    .map(String::as_str)
                    .collect();
                if !new.is_empty() && !gone.is_empty() {
                    dropped.push(format!(
                        "the given {flag} list replaces the saved one: {} no longer applied \
                         (sqlgit.{key}); give {} again with the others to keep {}",
                        gone.join(", "),
                        if gone.len() == 1 { "it" } else { "them" },
                        if gone.len() == 1 { "it" } else { "them" },
                    ));
                }
            }
        }
        Ok(dropped)
    }

    /// Save the database list.
    pub fn save_dbs(&self, store: &Store) -> Result<()> {
        store.set_settings(DB, &self.dbs)
    }

    /// Whether a remote of this role (`history`, `latest`) is configured.
    pub fn has_remote(&self, role: &str) -> bool {
        self.remote_url(role).is_some()
    }

    /// The URL configured for remote `role` ("history", "latest").
    pub fn remote_url(&self, role: &str) -> Option<&str> {
        match role {
            "history" => self.history_remote.as_deref(),
            "latest" => self.latest_remote.as_deref(),
            _ => None,
        }
    }

    /// Whether `recorded` (a push record's URL, as the state file keeps it) is the remote
    /// configured now for `role`: a record of a remote since replaced says nothing about the
    /// new one.
    pub fn is_current_remote(&self, role: &str, recorded: &str) -> bool {
        self.remote_url(role)
            .is_some_and(|url| remote::is_recorded_as(url, recorded))
    }

    /// What to leave out of dumps.
    pub fn filters(&self) -> Filters {
        Filters {
            exclude_tables: self.exclude_tables.clone(),
            redact: self.redact.clone(),
        }
    }

    /// How to reach the remotes: transport, SSH key, push timeout.
    pub fn remote_options(&self) -> Result<remote::Options> {
        let transport = Transport::parse(self.transport.as_deref())
            .with_context(|| format!("setting sqlgit.{TRANSPORT}"))?;
        let timeout = match &self.push_timeout {
            Some(spec) => push_timeout(spec)
                .with_context(|| format!("setting sqlgit.{PUSH_TIMEOUT}={spec:?}"))?,
            None => remote::DEFAULT_PUSH_TIMEOUT,
        };
        let over_ssh = |url: &Option<String>| {
            url.as_deref().is_some_and(|u| {
                u.starts_with("ssh://") || (!u.contains("://") && remote::local_path(u).is_none())
            })
        };
        if let Some(key) = &self.ssh_key
            && (over_ssh(&self.history_remote) || over_ssh(&self.latest_remote))
        {
            check::check_ssh_key(Path::new(key))?;
        }
        Ok(remote::Options {
            transport,
            ssh_key: self.ssh_key.as_ref().map(PathBuf::from),
            timeout,
            token_scope: remote::token_scope(
                self.history_remote.as_deref(),
                self.latest_remote.as_deref(),
            ),
        })
    }

    /// How often a run also reads everything and compares (`--full-every`, remembered).
    pub fn full_every(&self) -> Result<Duration> {
        let spec = self.full_every.as_deref().unwrap_or(DEFAULT_FULL_EVERY);
        crate::cli::parse_duration(spec)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("setting sqlgit.{FULL_EVERY}={spec:?}"))
    }

    /// The retention policy, if one is set.
    pub fn retention(&self) -> Result<Option<Keep>> {
        self.keep
            .as_deref()
            .map(|spec| {
                spec.parse::<Keep>()
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("setting sqlgit.keep={spec:?}"))
            })
            .transpose()
    }
}

/// A `redact` pattern: `TABLE.COLUMN`, both parts present (`*` and `?` allowed in each).
pub fn redact_pattern(s: &str) -> Result<(), String> {
    match s.rsplit_once('.') {
        Some((table, column)) if !table.is_empty() && !column.is_empty() => Ok(()),
        _ => Err(format!(
            "{s:?} is not TABLE.COLUMN (e.g. users.password_hash, *.email)"
        )),
    }
}

/// A push timeout: a humantime duration, not zero.
pub fn push_timeout(spec: &str) -> Result<Duration> {
    let d = humantime::parse_duration(spec.trim()).map_err(|e| anyhow!("{e} (e.g. 30s, 5m)"))?;
    if d.is_zero() {
        return Err(anyhow!("must be more than zero"));
    }
    Ok(d)
}

/// Paths are remembered absolute: cron runs elsewhere. A `..` is resolved as the system
/// resolves it (the folder it leaves, symlinks and all, is looked up now), so the remembered path
/// does not depend on the folder the command ran from; the rest stays as given (a symlink such
/// as `current/app.db` keeps following where it points).
pub fn absolute(path: &Path) -> String {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    without_parent_steps(&path).display().to_string()
}

/// `path` (absolute) with everything up to its last `..` resolved, when that folder exists.
fn without_parent_steps(path: &Path) -> std::path::PathBuf {
    use std::path::Component;
    let parts: Vec<Component> = path.components().collect();
    let Some(last) = parts
        .iter()
        .rposition(|c| matches!(c, Component::ParentDir))
    else {
        return path.to_path_buf();
    };
    let head: std::path::PathBuf = parts[..=last].iter().collect();
    match head.canonicalize() {
        Ok(resolved) => parts[last + 1..]
            .iter()
            .fold(resolved, |p, c| p.join(c.as_os_str())),
        Err(_) => path.to_path_buf(),
    }
}

/// All values of a multi-valued setting.
fn values(store: &Store, key: &str) -> Vec<String> {
    let Ok(config) = store.repo.config() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Ok(mut entries) = config.multivar(&format!("sqlgit.{key}"), None) {
        while let Some(Ok(entry)) = entries.next() {
            if let Ok(v) = entry.value()
                && !v.is_empty()
            {
                out.push(v.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
