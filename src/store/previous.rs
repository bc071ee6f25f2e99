//! The previous snapshot of one database, as an incremental dump needs it: its page map and
//! its row folders.
//!
//! The map lives beside the repository (`sqlgit-pages/<folder>.map`, 0600 in a 0700 folder)
//! and names the commit whose tree it describes. It is trusted only when that commit is the
//! current head: a run killed before its commit, or after its commit but before the map was
//! written, leaves a map of another commit, and the next run reads the whole database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use git2::{ObjectType, Oid, Repository, Tree};

use super::Store;
use super::packread::PackReader;
use crate::dump::incremental::{NotAsMapped, Previous};
use crate::dump::pages::PageMap;

const MAP_DIR: &str = "sqlgit-pages";

/// The context of every failure to read the previous snapshot's objects (see
/// [`is_unreadable`]).
const READ_PREVIOUS: &str = "read previous snapshot";

/// Whether `err` is a failure to read the previous snapshot's objects (damaged, or missing):
/// a run that reads everything does not need them.
pub fn is_unreadable(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| cause.to_string() == READ_PREVIOUS || cause.is::<NotAsMapped>())
}

/// Fails, as [`is_unreadable`] knows, when the root tree `root` of the latest snapshot cannot
/// be read (damaged, missing, or in a pack git cannot open): a run that reads everything then
/// writes the snapshot's tree anew.
pub fn read_root(store: &Store, root: Oid) -> Result<()> {
    match store.repo.find_tree(root) {
        Ok(_) => Ok(()),
        Err(e) => {
            let why = match e.code() {
                git2::ErrorCode::NotFound => "missing, or in a pack git cannot open",
                _ => e.message(),
            };
            Err(anyhow::anyhow!(
                "the latest snapshot's root tree {} cannot be read ({why})",
                super::short_id(root)
            )
            .context(READ_PREVIOUS))
        }
    }
}

fn map_path(repo_dir: &Path, folder: &str) -> PathBuf {
    repo_dir.join(MAP_DIR).join(format!("{folder}.map"))
}

/// The previous snapshot of the database in `folder`.
pub struct PreviousSnapshot<'r> {
    repo: &'r Repository,
    folder: Tree<'r>,
    /// Its `1-tables` folder, read once: a database of thousands of tables makes it a tree
    /// too big for libgit2's object cache, read and hashed again at every lookup otherwise.
    tables: std::cell::OnceCell<Option<Tree<'r>>>,
    map: PageMap,
    /// The packs, read with `pread` (shared with the run's object writer).
    packs: Arc<PackReader>,
}

/// The previous snapshot of `folder` when its map belongs to `head` (None: read everything).
/// A damaged map is a reason to read everything, not to fail.
pub fn load<'r>(
    store: &'r Store,
    folder: &str,
    head: Option<&git2::Commit<'r>>,
) -> Option<PreviousSnapshot<'r>> {
    let head = head?;
    let map = PageMap::load(&map_path(&store.path, folder)).ok()??;
    if map.commit != *head.id().as_bytes() || map.owner != owner(folder) {
        return None;
    }
    let entry = head.tree().ok()?.get_name(folder)?.id();
    let folder = store.repo.find_tree(entry).ok()?;
    Some(PreviousSnapshot {
        repo: &store.repo,
        folder,
        tables: std::cell::OnceCell::new(),
        map,
        packs: Arc::new(PackReader::open(&store.repo.path().join("objects"))),
    })
}

/// Keep `map` as the map of `folder` in `commit`.
pub fn save(store: &Store, folder: &str, map: &mut PageMap, commit: Oid) -> Result<()> {
    super::create_private_dir(&store.path.join(MAP_DIR))?;
    map.commit.copy_from_slice(commit.as_bytes());
    map.owner = owner(folder);
    map.save(&map_path(&store.path, folder))
}

/// The tag that ties a map to the database folder it was kept for (two databases of one schema
/// have the same fingerprint; a map copied over the other's, or one file for `App.db` and
/// `app.db` on a case-insensitive disk, must not pass for it).
fn owner(folder: &str) -> u64 {
    crate::dump::path::hash_bytes(folder.as_bytes())
}

/// Forget the map of `folder` (the next snapshot reads everything).
pub fn forget(store: &Store, folder: &str) {
    let _ = std::fs::remove_file(map_path(&store.path, folder));
}

/// Delete every page map (the next snapshot reads each database whole): what pruning deletes
/// first on a full disk, to make room for its graft. Whether there was one.
pub(super) fn forget_all(repo_dir: &Path) -> bool {
    std::fs::remove_dir_all(repo_dir.join(MAP_DIR)).is_ok()
}

/// The entries of a git tree object: (name, id, whether it is a folder).
pub(super) fn parse_tree(mut data: &[u8]) -> Result<Vec<(String, Oid, bool)>> {
    let mut entries = Vec::new();
    while !data.is_empty() {
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .context("bad tree entry")?;
        let nul = data
            .iter()
            .position(|&b| b == 0)
            .context("bad tree entry")?;
        let (mode, name) = (&data[..space], &data[space + 1..nul]);
        let id = data.get(nul + 1..nul + 21).context("bad tree entry")?;
        let name = std::str::from_utf8(name).context("a chunk name is not UTF-8")?;
        entries.push((name.to_string(), Oid::from_bytes(id)?, mode == b"40000"));
        data = &data[nul + 21..];
    }
    Ok(entries)
}

impl PreviousSnapshot<'_> {
    /// The packs as this run found them (its object writer looks up what is stored there).
    pub fn packs(&self) -> &Arc<PackReader> {
        &self.packs
    }

    fn rows_entry(&self, dir: &str) -> Result<Option<Oid>> {
        let tables = match self.tables.get() {
            Some(tables) => tables,
            None => {
                let tables = match self.folder.get_name("1-tables") {
                    Some(e) if e.kind() == Some(ObjectType::Tree) => {
                        Some(self.repo.find_tree(e.id()).context(READ_PREVIOUS)?)
                    }
                    _ => None,
                };
                self.tables.get_or_init(|| tables)
            }
        };
        let Some(table) = tables.as_ref().and_then(|t| t.get_name(dir)) else {
            return Ok(None);
        };
        if table.kind() != Some(ObjectType::Tree) {
            return Ok(None);
        }
        // Read from the packs, not through libgit2: its object cache counts a tree by its
        // bytes in git (~40 here), not by what it takes parsed (~750), and kept every table's
        // tree: 15 MiB for 20,000 tables.
        let entries = self.tree_entries(table.id())?;
        Ok(entries
            .into_iter()
            .find(|(name, _, dir)| *dir && name == "1-rows")
            .map(|(_, oid, _)| oid))
    }
}

impl Previous for PreviousSnapshot<'_> {
    fn map(&self) -> &PageMap {
        &self.map
    }

    fn rows_tree(&self, dir: &str) -> Result<Option<Oid>> {
        self.rows_entry(dir)
    }

    fn tree_entries(&self, oid: Oid) -> Result<Vec<(String, Oid, bool)>> {
        if let Some(data) = self.packs().whole_tree(oid).context(READ_PREVIOUS)? {
            return parse_tree(&data).with_context(|| format!("read tree {oid}"));
        }
        let tree = self.repo.find_tree(oid).context(READ_PREVIOUS)?;
        tree.iter()
            .map(|e| {
                let name = e.name().context("a chunk name is not UTF-8")?.to_string();
                Ok((name, e.id(), e.kind() == Some(ObjectType::Tree)))
            })
            .collect()
    }

    fn blob_sizes(&self, oids: &[Oid]) -> Result<u64> {
        let sizes = self.packs().sizes(oids).context(READ_PREVIOUS)?;
        let mut total = 0u64;
        for (&oid, size) in oids.iter().zip(sizes) {
            total += match size {
                Some(size) => size,
                None => {
                    let odb = self.repo.odb().context(READ_PREVIOUS)?;
                    odb.read_header(oid).context(READ_PREVIOUS)?.0 as u64
                }
            };
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A previous snapshot its map does not describe is read around, like a damaged one (the
    /// run reads everything and warns), whatever context the error gathered on the way up.
    #[test]
    fn a_previous_snapshot_unlike_its_map_counts_as_unreadable() {
        let err = anyhow::Error::from(NotAsMapped("rows do not match its map".into()))
            .context("table t")
            .context("database app.db into repository r");
        assert!(is_unreadable(&err));
        assert!(!is_unreadable(&anyhow::anyhow!(
            "the previous snapshot's rows do not match its map"
        )));
        assert!(is_unreadable(&anyhow::anyhow!("x").context(READ_PREVIOUS)));
    }
}
