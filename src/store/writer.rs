//! Turns a dump into git objects on a second thread: the dumping thread reads SQLite and
//! formats SQL while this one hashes, compresses and packs — both cores busy. Only objects the
//! repository does not already have are compressed and written.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use anyhow::{Context, Result, anyhow};
use git2::{Odb, Oid, Repository};

use super::pack::{Kind, PackWriter, object_id};
use super::tree::{ObjectStore, TreeBuilder};
use crate::dump::Sink;

enum Msg {
    File(Vec<String>, Vec<u8>),
    Finish {
        folder: String,
        parent_tree: Option<Oid>,
    },
}

/// What the writer produced.
pub struct Written {
    /// The new root tree: the parent's other folders plus this database's folder.
    pub root_tree: Oid,
    /// Size of the pack added to the repository (0: nothing new).
    pub pack_bytes: u64,
    pub new_objects: usize,
}

/// A [`Sink`] that feeds the writer thread.
pub struct SnapshotWriter {
    tx: Option<SyncSender<Msg>>,
    handle: Option<JoinHandle<Result<Written>>>,
}

impl SnapshotWriter {
    /// Start the writer thread on the repository at `git_dir`.
    pub fn start(git_dir: &Path) -> SnapshotWriter {
        let (tx, rx) = sync_channel(256);
        let dir = git_dir.to_path_buf();
        let handle = std::thread::spawn(move || write_objects(dir, rx));
        SnapshotWriter {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    /// Write the remaining trees and seal the pack.
    pub fn finish(mut self, folder: &str, parent_tree: Option<Oid>) -> Result<Written> {
        let msg = Msg::Finish {
            folder: folder.to_string(),
            parent_tree,
        };
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(msg);
        }
        self.join()
    }

    fn join(&mut self) -> Result<Written> {
        self.tx = None;
        match self.handle.take() {
            Some(h) => h
                .join()
                .map_err(|_| anyhow!("internal error: object writer panicked"))?,
            None => Err(anyhow!("object writer already finished")),
        }
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        // Without a Finish message the writer discards its pack.
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Sink for SnapshotWriter {
    fn file(&mut self, path: &[&str], data: Vec<u8>) -> Result<()> {
        let msg = Msg::File(path.iter().map(|s| s.to_string()).collect(), data);
        let sent = self.tx.as_ref().map(|tx| tx.send(msg).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        // The writer stopped early: its error is the one to report.
        match self.join() {
            Err(e) => Err(e),
            Ok(_) => Err(anyhow!("internal error: object writer stopped")),
        }
    }
}

struct Objects<'a> {
    odb: Odb<'a>,
    pack: PackWriter,
}

impl ObjectStore for Objects<'_> {
    fn put(&mut self, kind: Kind, data: &[u8]) -> Result<Oid> {
        let oid = object_id(kind, data);
        if !self.pack.contains(oid) && !self.odb.exists(oid) {
            self.pack.add(kind, oid, data)?;
        }
        Ok(oid)
    }
}

fn write_objects(git_dir: PathBuf, rx: Receiver<Msg>) -> Result<Written> {
    let repo = Repository::open_bare(&git_dir).context("open repository")?;
    let mut objects = Objects {
        odb: repo.odb()?,
        pack: PackWriter::new(&git_dir.join("objects"))?,
    };
    let mut tree = TreeBuilder::new();
    for msg in rx {
        let result = match msg {
            Msg::File(path, data) => {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                objects
                    .put(Kind::Blob, &data)
                    .and_then(|oid| tree.add_file(&mut objects, &path, oid))
            }
            Msg::Finish {
                folder,
                parent_tree,
            } => {
                let result = finish(&repo, &mut objects, tree, &folder, parent_tree);
                let Objects { pack, .. } = objects;
                let new_objects = pack.len();
                return match result {
                    Ok(root_tree) => Ok(Written {
                        root_tree,
                        pack_bytes: pack.finish().context("write pack")?,
                        new_objects,
                    }),
                    Err(e) => {
                        pack.discard();
                        Err(e)
                    }
                };
            }
        };
        if let Err(e) = result {
            objects.pack.discard();
            return Err(e.context("write snapshot objects"));
        }
    }
    objects.pack.discard();
    Err(anyhow!("snapshot abandoned"))
}

/// Close the database's folder and build the root: the parent's other entries plus it.
fn finish(
    repo: &Repository,
    objects: &mut Objects,
    tree: TreeBuilder,
    folder: &str,
    parent_tree: Option<Oid>,
) -> Result<Oid> {
    let db_tree = tree.finish(objects)?;
    let mut entries: Vec<(String, Oid)> = vec![(folder.to_string(), db_tree)];
    if let Some(parent) = parent_tree {
        for e in repo.find_tree(parent)?.iter() {
            let name = e.name().unwrap_or_default().to_string();
            if name != folder && e.kind() == Some(git2::ObjectType::Tree) {
                entries.push((name, e.id()));
            }
        }
    }
    entries.sort_by(|a, b| format!("{}/", a.0).cmp(&format!("{}/", b.0)));
    let mut root = TreeBuilder::new();
    for (name, oid) in entries {
        root.add_root_tree(objects, &name, oid)?;
    }
    root.finish(objects)
}
