//! Which database folder of a snapshot a command reads. A database is known by its folder's
//! name, never by being the only one: two snapshots that each hold one database of a different
//! name (the configured list changed) hold two databases, not two versions of one
//! ([`same_db_folder`]), and a database file on disk is the folder of the configured database it
//! is (the same path, or device and inode: a symlink), not whichever folder its file name
//! happens to spell ([`live_folder`]).

use std::path::Path;

use anyhow::{Context, Result, bail};
use git2::{Commit, ObjectType, Repository, Tree};

use super::short;

/// The folder of the database in a snapshot: the only one, or the one named `db`.
pub fn db_tree<'r>(
    repo: &'r Repository,
    commit: &Commit<'r>,
    db: Option<&str>,
) -> Result<Tree<'r>> {
    let name = db_folder(commit, db)?;
    let id = commit
        .tree()?
        .get_name(&name)
        .expect("listed by db_folder")
        .id();
    Ok(repo.find_tree(id)?)
}

/// The database folders of a snapshot, in tree order.
pub fn folders(commit: &Commit) -> Result<Vec<String>> {
    Ok(commit
        .tree()?
        .iter()
        .filter(|e| e.kind() == Some(ObjectType::Tree))
        .filter_map(|e| e.name().ok().map(str::to_string))
        .collect())
}

/// The name of the database folder [`db_tree`] picks in `commit`.
pub fn db_folder(commit: &Commit, db: Option<&str>) -> Result<String> {
    let folders = folders(commit)?;
    let name = match (db, folders.as_slice()) {
        (Some(db), _) => {
            // A folder name as the tree has it, or a database file name (escaped like one).
            let dir = if folders.iter().any(|f| f == db) {
                db.to_string()
            } else {
                crate::dump::path::table_dir(db)
            };
            if !folders.contains(&dir) {
                bail!(
                    "no database {db:?} in snapshot {} (it has: {})",
                    short(commit),
                    folders.join(", ")
                );
            }
            dir
        }
        (None, [only]) => only.clone(),
        (None, []) => bail!("snapshot {} holds no database", short(commit)),
        (None, _) => bail!(
            "snapshot {} holds several databases ({}); choose one with --db",
            short(commit),
            folders.join(", ")
        ),
    };
    Ok(name)
}

/// The folder of one database in every snapshot of `commits` (`diff FROM TO`, `query --at`
/// points): [`db_folder`] of each, which must be the same folder in all. Each snapshot's only
/// database is not enough: after the configured list changed from a.db to b.db, one holds a.db
/// and the next b.db — different databases, refused with both names.
pub fn same_db_folder(commits: &[&Commit], db: Option<&str>) -> Result<String> {
    let mut chosen: Option<(String, &Commit)> = None;
    for &commit in commits {
        let name = db_folder(commit, db)?;
        match &chosen {
            None => chosen = Some((name, commit)),
            Some((first, at)) if *first != name => bail!(
                "snapshot {} holds database {first:?} and snapshot {} database {name:?}: \
                 different databases (the configured list changed between them), not two \
                 versions of one; give --db NAME to read one database (each snapshot must hold \
                 it)",
                short(at),
                short(commit)
            ),
            Some(_) => {}
        }
    }
    chosen.map(|(name, _)| name).context("no snapshot to read")
}

/// The folder of the database file `path` in `commit` (`diff --live`, `restore --into`): the
/// one `db` names when given; else, when `path` is one of the `configured` databases (the same
/// path, or the same device and inode: reached through a symlink, or the file a configured
/// symlink points to), that database's folder, and only it (a snapshot without it is an error
/// naming the databases it has). Otherwise None: the caller's own rule applies to a file that
/// is no configured database (a copy elsewhere).
pub fn live_folder(
    commit: &Commit,
    configured: &[String],
    path: &Path,
    db: Option<&str>,
) -> Result<Option<String>> {
    if let Some(db) = db {
        return db_folder(commit, Some(db)).map(Some);
    }
    let Some(own) = configured_as(configured, path) else {
        return Ok(None);
    };
    let folder = crate::snapshot::db_folder(Path::new(own));
    db_folder(commit, Some(&folder)).with_context(|| {
        format!(
            "{} is the configured database {own}: only its own folder {folder:?} is read, never \
             another database's",
            path.display()
        )
    })?;
    Ok(Some(folder))
}

/// The configured database that is the file `path` (the same path, or device and inode).
fn configured_as<'c>(configured: &'c [String], path: &Path) -> Option<&'c str> {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let own = id(path);
    configured
        .iter()
        .find(|c| Path::new(c) == path || own.is_some_and(|o| id(Path::new(c)) == Some(o)))
        .map(String::as_str)
}

/// The snapshot `when` of `repo` by its commit id, and the folder [`live_folder`] picks in it
/// for the database file `target` (`restore --into`, and `--to` over an existing file).
pub(super) fn pin(
    repo: &Path,
    when: Option<&str>,
    db: Option<&str>,
    target: &Path,
) -> Result<(String, Option<String>)> {
    let mut timeline = crate::timeline::Timeline::open(repo)?;
    let at = timeline.resolve(when)?;
    let settings = crate::settings::Settings::load(&timeline.store);
    let commit = timeline.repo().find_commit(at)?;
    let folder = live_folder(&commit, &settings.dbs, target, db)?;
    Ok((at.to_string(), folder))
}
