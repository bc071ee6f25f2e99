//! A sqlgit repository whose `config` is gone (deleted by hand, lost to a crash or a partial
//! restore of the folder). The config marks the repository as sqlgit's and holds its settings
//! (databases, remotes, retention), so without it every run would refuse the repository as one
//! sqlgit did not create. It is still known by its other marks — the state file, the page maps,
//! snapshot commits on `main` — and then every command says the config is missing and prints
//! the `sqlgit init` that writes it again (which accepts such a repository), with the remotes
//! the state file recorded.
//!
//! A copy made with plain git (`git clone --bare` or `--mirror`, to move the repository) has a
//! config, git's, without sqlgit's marks or settings: it is known by the snapshots on its `main`
//! (a bare repository sqlgit did not mark, whose `main` holds sqlgit snapshots), every command
//! that would write to it names the `sqlgit init` that adopts it, and that `init` adds sqlgit's
//! marks to its config. Any other git repository stays refused.

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

/// Whether `dir` is a bare git copy of a sqlgit repository that sqlgit has not adopted yet: a
/// config without sqlgit's mark, and sqlgit snapshots on `main` (see the module documentation).
pub fn unadopted_copy(dir: &Path) -> bool {
    let unmarked =
        git2::Config::open(&dir.join("config")).is_ok_and(|c| c.get_entry(FORMAT_KEY).is_err());
    unmarked
        && dir.join("config").is_file()
        && git2::Repository::open_bare(dir).is_ok_and(|r| r.is_bare() && super::holds_snapshots(&r))
}

/// The line for a git copy of a sqlgit repository: what it is and the command that adopts it.
pub fn copy_line(dir: &Path) -> String {
    format!(
        "a git copy of a sqlgit repository (git clone --bare or --mirror: its main holds sqlgit \
         snapshots, but git copies neither sqlgit's mark nor its settings); to continue its \
         history here, adopt it with its settings, run: {}",
        init_command(dir)
    )
}

/// Add sqlgit's marks to the config of the git copy at `dir` (call with the lock held): git's
/// settings in it stay, the file is replaced whole. sqlgit's settings are saved into it next.
pub fn adopt_copy(dir: &Path) -> Result<()> {
    let config = dir.join("config");
    let tmp = dir.join(format!("config.sqlgit-new-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| -> Result<()> {
        std::fs::copy(&config, &tmp)?;
        mark(&tmp)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &config)?;
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("write {}", config.display()))
}

/// sqlgit's settings of a repository it made, written into the config file `file`.
fn mark(file: &Path) -> Result<()> {
    let mut config = git2::Config::open(file)?;
    config.set_bool("core.bare", true)?;
    config.set_str("core.logAllRefUpdates", "false")?;
    config.set_i64("gc.auto", 0)?;
    config.set_i64(FORMAT_KEY, crate::dump::Format::CURRENT.number())?;
    Ok(())
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
        false => words.extend(dbs.iter().map(|f| format!("--db {}", db_word(f)))),
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

/// `PATH/FILE` for the database kept in `folder`, one shell word: the file name the folder
/// was named after (its `%XX` escapes decoded), or `PATH/DB` for a name cut short to fit.
pub fn db_word(folder: &str) -> String {
    let name = crate::dump::path::decode_folder(folder)
        .filter(|n| crate::snapshot::db_folder(Path::new(n)) == folder)
        .unwrap_or_else(|| "DB".to_string());
    crate::shellword::quote(&format!("PATH/{name}"))
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
        drop(config);
        mark(&tmp)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, dir.join("config"))?;
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("write {}", dir.join("config").display()))
}

/// For `sqlgit init`: a repository that lost its config gets a new one, a git copy of a
/// sqlgit repository is adopted (each under the repository lock, checked again there); the
/// notes to print. Either needs its databases named (`dbs_named`, else a usage error), as a new
/// repository does.
pub fn reclaim(dir: &Path, dbs_named: bool) -> Result<Vec<String>> {
    type Applies = fn(&Path) -> bool;
    type Mend = fn(&Path) -> Result<()>;
    let cases: [(Applies, Mend, &str, String); 2] = [
        (
            config_lost,
            write_new_config,
            "its config is missing, and with it the list of databases: name them with --db DB",
            format!(
                "note: wrote a new {} (it was missing)",
                dir.join("config").display()
            ),
        ),
        (
            unadopted_copy,
            adopt_copy,
            "a git copy of a sqlgit repository, without sqlgit's settings: name its databases \
             with --db DB",
            format!(
                "note: adopted {}, a git copy of a sqlgit repository: its history continues",
                dir.display()
            ),
        ),
    ];
    let mut notes = Vec::new();
    for (applies, mend, unnamed, done) in cases {
        if !applies(dir) {
            continue;
        }
        if !dbs_named {
            return Err(crate::error::usage(format!("{}: {unnamed}", dir.display())));
        }
        let _lock = super::lock::lock(dir, std::time::Duration::from_secs(60))?;
        if applies(dir) {
            mend(dir)?;
            notes.push(done);
        }
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::db_word;

    #[test]
    fn database_words_are_the_file_names_quoted() {
        assert_eq!(db_word("app.db"), "PATH/app.db");
        assert_eq!(db_word("my app %282%29.db"), "'PATH/my app (2).db'");
        assert_eq!(db_word("it%27s.db"), "'PATH/it'\\''s.db'");
        let cut = format!("{}~0123456789abcdef", "a".repeat(163));
        assert_eq!(db_word(&cut), "PATH/DB");
    }
}
