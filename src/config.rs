//! The repository's settings: one file, `DIR/config` (git's config format, section `[sqlgit]`),
//! written by `sqlgit init` and by flags, which always override it and are remembered.
//!
//! ```text
//! [sqlgit]
//!     format = 1                       # marks a repository sqlgit created
//!     db = /srv/app.db                 # databases to snapshot (repeatable)
//!     historyRemote = ssh://…          # every snapshot, fast-forward
//!     latestRemote = https://…         # newest snapshot only, force-pushed
//!     sshKey = /home/backup/.ssh/id_ed25519
//!     keep = 1day                      # local retention: N snapshots or a duration
//!     excludeTable = sessions          # repeatable glob
//!     redact = users.password_hash     # repeatable TABLE.COLUMN
//!     metricsFile = /var/lib/node_exporter/sqlgit.prom
//!     onSuccess = curl -fsS https://hc-ping.com/…
//!     onFailure = …
//! ```

use anyhow::{Context, Result};

use crate::store::Store;

/// Multi-valued settings: all values of `sqlgit.<key>`.
pub fn values(store: &Store, key: &str) -> Vec<String> {
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

/// Replace all values of a multi-valued setting.
pub fn set_values(store: &Store, key: &str, values: &[String]) -> Result<()> {
    let mut config = store.repo.config()?;
    let name = format!("sqlgit.{key}");
    let _ = config.remove_multivar(&name, ".*");
    for v in values {
        config
            .set_multivar(&name, "^$", v)
            .with_context(|| format!("save setting {key}"))?;
    }
    Ok(())
}

/// Flags win and are remembered; without flags, the remembered values.
pub fn list_setting(store: &Store, key: &str, flags: &[String]) -> Result<Vec<String>> {
    if flags.is_empty() {
        return Ok(values(store, key));
    }
    set_values(store, key, flags)?;
    Ok(flags.to_vec())
}

/// A single-valued setting: the flag (remembered) or the remembered value.
pub fn setting(store: &Store, key: &str, flag: Option<&str>) -> Result<Option<String>> {
    if let Some(v) = flag {
        store.set_setting(key, v)?;
    }
    Ok(store.setting(key).filter(|v| !v.is_empty()))
}
