//! A sqlgit repository whose `config` is gone (deleted by hand, lost to a crash or a partial
//! restore of the folder). The config marks the repository as sqlgit's and holds its settings
//! (databases, remotes, retention), so without it every run would refuse the repository as one
//! sqlgit did not create. It is still known by its other marks — the state file, the page maps,
//! snapshot commits on `main` — and then every command says the config is missing and prints
//! the `sqlgit init` that writes it again (which accepts such a repository), with the remotes
//! the state file recorded.

use std::path::Path;

use anyhow::{Context, Result};

use super::FORMAT_KEY;

/// Whether `dir` is a sqlgit repository that lost its `config` (see the module documentation).
pub fn config_lost(dir: &Path) -> bool {
    let missing = matches!(
        std::fs::symlink_metadata(dir.join("config")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound
    );
    missing
        && dir.join("HEAD").is_file()
        && dir.join("objects").is_dir()
        && (dir.join(crate::state::STATE_FILE).is_file()
            || dir.join("sqlgit-pages").is_dir()
            || snapshots_on_main(dir))
}

/// Whether `main` of the repository at `dir` is a sqlgit snapshot.
fn snapshots_on_main(dir: &Path) -> bool {
    git2::Repository::open_bare(dir).is_ok_and(|repo| super::holds_snapshots(&repo))
}

/// The line for a repository that lost its config: what is missing and the command that
/// writes it again.
pub fn missing_line(dir: &Path) -> String {
    format!(
        "{} is missing: it marks the repository as sqlgit's and holds its settings (databases, \
         remotes, retention); write it again with the settings it had, run: {}",
        dir.join("config").display(),
        init_command(dir)
    )
}

/// `sqlgit init --repo DIR --db DB …` with what the repository still tells: the remotes its
/// state file recorded (passwords left out), the databases its newest snapshot holds.
fn init_command(dir: &Path) -> String {
    let mut words = vec![format!(
        "sqlgit init --repo {}",
        crate::shellword::repo(dir)
    )];
    let dbs = database_folders(dir);
    match dbs.is_empty() {
        true => words.push("--db DB".to_string()),
        false => words.extend(dbs.iter().map(|f| format!("--db PATH/{f}"))),
    }
    let state = crate::state::load(dir);
    for role in ["history", "latest"] {
        if let Some(r) = state.remotes.get(role) {
            words.push(format!(
                "--{role}-remote {}",
                crate::shellword::quote(&r.url)
            ));
        }
    }
    words.join(" ")
}

/// The database folders of the newest snapshot.
fn database_folders(dir: &Path) -> Vec<String> {
    let Ok(repo) = git2::Repository::open_bare(dir) else {
        return Vec::new();
    };
    let Ok(tree) = repo
        .find_reference(super::BRANCH)
        .and_then(|r| r.peel_to_tree())
    else {
        return Vec::new();
    };
    tree.iter()
        .filter_map(|e| e.name().ok().map(str::to_string))
        .collect()
}

/// Write a new config for the sqlgit repository at `dir` that lost it, as a new repository's
/// (call with the lock held); the settings are then saved into it as for any repository.
pub fn write_new_config(dir: &Path) -> Result<()> {
    let tmp = dir.join(format!("config.sqlgit-new-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| -> Result<()> {
        let mut config = git2::Config::open(&tmp)?;
        config.set_i64("core.repositoryformatversion", 0)?;
        config.set_bool("core.filemode", true)?;
        config.set_bool("core.bare", true)?;
        config.set_str("core.logAllRefUpdates", "false")?;
        config.set_i64("gc.auto", 0)?;
        config.set_i64(FORMAT_KEY, crate::dump::Format::CURRENT.number())?;
        drop(config);
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, dir.join("config"))?;
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("write {}", dir.join("config").display()))
}
