//! `sqlgit push`: push what the remotes lack, without taking a snapshot. Also the remote flags
//! shared with `sqlgit snapshot`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::dump::parse_duration;
use crate::remote::{self, Role, redact};
use crate::state::PushRecord;
use crate::store::{Store, lock};

/// Remote settings; given values are remembered in the repository's config, so later runs
/// need not repeat them.
#[derive(Debug, Args, Clone, Default)]
pub struct RemoteArgs {
    /// Remote that holds only the newest snapshot, as one parentless commit (force-pushed).
    /// ssh://, https://, git://, user@host:path or a local path. "" forgets it.
    #[arg(long, value_name = "URL")]
    pub latest_remote: Option<String>,
    /// Remote that receives every snapshot commit (fast-forward pushes). "" forgets it.
    #[arg(long, value_name = "URL")]
    pub history_remote: Option<String>,
    /// SSH private key for ssh:// remotes (ssh-agent and ~/.ssh keys are tried too).
    /// HTTPS: a token in the environment variable SQLGIT_HTTPS_TOKEN is used as the password
    /// (user from the URL, SQLGIT_HTTPS_USER, or "sqlgit"); git credential helpers work too.
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The sqlgit repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    #[command(flatten)]
    pub remotes: RemoteArgs,
    /// How long to wait for another sqlgit run on the same repository to finish.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

pub fn run(args: PushArgs) -> Result<ExitCode> {
    let store = Store::open(&args.repo)?;
    let _lock = lock::lock(&store.path, args.lock_timeout)?;
    store.remove_stale_locks();
    remember(&store, &args.remotes)?;
    let records = push_all(&store);
    let ok = records.iter().all(|(_, r)| r.ok);
    let mut state = crate::state::load(&store.path);
    for (role, record) in records {
        state.remotes.insert(role.name().to_string(), record);
    }
    crate::state::save(&store.path, &state)?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Save the remote flags that were given.
/// Save the remote flags that were given. A malformed URL is saved too: every run then fails
/// loudly on it until it is fixed, rather than the remote being silently dropped.
pub fn remember(store: &Store, args: &RemoteArgs) -> Result<()> {
    for (url, key, tracking) in [
        (&args.latest_remote, "latestRemote", remote::LATEST_TRACKING),
        (
            &args.history_remote,
            "historyRemote",
            remote::HISTORY_TRACKING,
        ),
    ] {
        let Some(url) = url else { continue };
        if store.setting(key).as_deref() != Some(url.as_str()) {
            // What another remote confirmed says nothing about this one (pruning relies on it).
            if let Ok(mut r) = store.repo.find_reference(tracking) {
                r.delete()?;
            }
            store.set_setting(key, url)?;
        }
    }
    if let Some(key) = &args.ssh_key {
        store.set_setting("sshKey", &super::snapshot::absolute(key))?;
    }
    Ok(())
}

/// Push every configured remote; each failure is reported on stderr as one line. Returns one
/// record per configured remote, by role name.
pub fn push_all(store: &Store) -> Vec<(Role, PushRecord)> {
    let ssh_key = store.setting("sshKey").map(PathBuf::from);
    let mut records = Vec::new();
    for (role, key) in [
        (Role::History, "historyRemote"),
        (Role::Latest, "latestRemote"),
    ] {
        let Some(url) = store.setting(key).filter(|u| !u.is_empty()) else {
            continue;
        };
        let mut record = PushRecord {
            unix: crate::when::unix_now(),
            ok: true,
            error: None,
            url: redact(&url),
        };
        match remote::push(store, role, &url, ssh_key.as_ref()) {
            Ok(p) if p.up_to_date => {}
            Ok(p) => say!(
                "pushed {} commit{} to {} remote {}",
                p.commits,
                if p.commits == 1 { "" } else { "s" },
                role.name(),
                record.url
            ),
            Err(e) => {
                let line = crate::error_line(&e);
                eprintln!(
                    "sqlgit: push to {} remote {}: {line}",
                    role.name(),
                    record.url
                );
                record.ok = false;
                record.error = Some(line);
            }
        }
        records.push((role, record));
    }
    records
}
