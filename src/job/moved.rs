//! A configured database that is no longer where the settings say (moved to another folder or
//! disk): the run fails naming the `sqlgit init` that points the repository at its new place.
//! A database's history is kept in the folder named after its file name, not its path, so
//! that `init` continues the same history. Given the moved file by its new path, a run is
//! refused the same way: as a one-off run it would leave the settings pointing at nothing.

use std::path::Path;

use anyhow::{Result, anyhow};

/// Whether the configured database `db` is gone (not a file that cannot be read now).
fn gone(db: &str) -> bool {
    matches!(std::fs::metadata(db), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// `sqlgit init --repo DIR --db …`: the configured databases, each one in `new` (configured
/// path, new path) replaced by its new path (`init --db` replaces the whole list).
fn init_command(repo: &Path, configured: &[String], new: &[(&str, String)]) -> String {
    let mut words = vec![format!(
        "sqlgit init --repo {}",
        crate::shellword::repo(repo)
    )];
    for db in configured {
        let word = match new.iter().find(|(old, _)| old == db) {
            Some((_, word)) => word.clone(),
            None => crate::shellword::quote(db),
        };
        words.push(format!("--db {word}"));
    }
    words.join(" ")
}

/// Fail a run of the configured list when some of its databases are gone, naming them and the
/// `init` that points the repository at their new places (`PATH` their new folder).
pub(super) fn refuse_gone(repo: &Path, configured: &[String]) -> Result<()> {
    let gone: Vec<&str> = configured
        .iter()
        .map(String::as_str)
        .filter(|d| gone(d))
        .collect();
    if gone.is_empty() {
        return Ok(());
    }
    let new: Vec<(&str, String)> = gone
        .iter()
        .map(|d| {
            let name = Path::new(d).file_name().unwrap_or_default();
            let word = format!("PATH/{}", name.to_string_lossy());
            (*d, crate::shellword::quote(&word))
        })
        .collect();
    let (what, it) = match gone.len() {
        1 => (format!("database {}: no such file", gone[0]), "it"),
        _ => (
            format!("databases {}: no such files", gone.join(", ")),
            "they",
        ),
    };
    Err(anyhow!(
        "{what}; if {it} moved, point the repository at the new place (PATH: the folder it is \
         in now; the same file name continues its history), run: {}",
        init_command(repo, configured, &new)
    ))
}

/// The refusal of a one-off database `db` whose file name is that of the configured database
/// `owner`, when `owner` is gone: it is the configured one, moved, as far as the folder goes.
pub(super) fn moved_here(
    repo: &Path,
    db: &str,
    owner: &str,
    configured: &[String],
) -> Option<String> {
    if !gone(owner) {
        return None;
    }
    let new = [(owner, crate::shellword::quote(db))];
    Some(format!(
        "the configured database {owner} is gone, and {db} has its file name: if it moved there, \
         point the repository at it (its history continues in the folder of that name), run: {}",
        init_command(repo, configured, &new)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_replaces_only_the_moved_database() {
        let configured = ["/srv/a.db".to_string(), "/gone/my app.db".to_string()];
        let new = [("/gone/my app.db", "'PATH/my app.db'".to_string())];
        assert_eq!(
            init_command(Path::new("/r"), &configured, &new),
            "sqlgit init --repo /r --db /srv/a.db --db 'PATH/my app.db'"
        );
    }
}
