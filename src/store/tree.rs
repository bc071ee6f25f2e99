//! Builds git trees from files that arrive one by one in path order, keeping only the folders
//! on the current path open — memory follows the tree's depth and width, not the database.

use std::cmp::Ordering;

use anyhow::{Result, bail};
use git2::Oid;

use super::pack::Kind;

/// Where finished objects go (hashing, de-duplication and storage are the caller's business).
pub trait ObjectStore {
    fn put(&mut self, kind: Kind, data: Vec<u8>) -> Result<Oid>;
}

/// An open folder: its entries so far, already encoded as git writes them (entries arrive in
/// order), so an entry costs no allocation of its own.
struct Dir {
    name: String,
    /// The tree object's content so far: `<mode> <name>\0<20-byte id>` per entry.
    encoded: Vec<u8>,
    /// Where the last entry's name is in `encoded`, and whether it is a folder (to check the
    /// order of the next one).
    last: Option<(std::ops::Range<usize>, bool)>,
    /// The first entry, while it is the only one and a folder (see [`TreeBuilder::close`]).
    only_dir: Option<Oid>,
}

impl Dir {
    fn new(name: String) -> Dir {
        Dir {
            name,
            // Room for a group folder's ~32 entries (only the folders on the current path are
            // open at once).
            encoded: Vec::with_capacity(2048),
            last: None,
            only_dir: None,
        }
    }

    /// Add an entry, after the last one in git's order (an error otherwise).
    fn push(&mut self, name: &str, oid: Oid, is_dir: bool) -> Result<()> {
        let first = self.last.is_none();
        if let Some((range, last_is_dir)) = &self.last {
            let last = &self.encoded[range.clone()];
            if git_cmp((last, *last_is_dir), (name.as_bytes(), is_dir)) != Ordering::Less {
                bail!(
                    "internal error: tree entries out of order ({name:?} after {:?})",
                    String::from_utf8_lossy(last)
                );
            }
        }
        self.encoded
            .extend_from_slice(if is_dir { b"40000 " } else { b"100644 " });
        let at = self.encoded.len();
        self.encoded.extend_from_slice(name.as_bytes());
        self.last = Some((at..self.encoded.len(), is_dir));
        self.encoded.push(0);
        self.encoded.extend_from_slice(oid.as_bytes());
        self.only_dir = (first && is_dir).then_some(oid);
        Ok(())
    }
}

/// Streaming tree builder; see the module doc.
pub struct TreeBuilder {
    /// `stack[0]` is the root; each further element is an open sub-folder.
    stack: Vec<Dir>,
}

impl Default for TreeBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TreeBuilder {
    pub fn new() -> TreeBuilder {
        TreeBuilder {
            stack: vec![Dir::new(String::new())],
        }
    }

    /// Add a file (blob `oid`) at `path`. Paths must come in git's tree order.
    pub fn add_file(&mut self, store: &mut dyn ObjectStore, path: &[&str], oid: Oid) -> Result<()> {
        self.add_entry(store, path, oid, false)
    }

    /// Add an existing tree `oid` as the folder at `path`, in git's tree order like files.
    pub fn add_dir(&mut self, store: &mut dyn ObjectStore, path: &[&str], oid: Oid) -> Result<()> {
        self.add_entry(store, path, oid, true)
    }

    fn add_entry(
        &mut self,
        store: &mut dyn ObjectStore,
        path: &[&str],
        oid: Oid,
        is_dir: bool,
    ) -> Result<()> {
        let (file, dirs) = path.split_last().expect("non-empty path");
        let common = dirs
            .iter()
            .zip(self.stack.iter().skip(1))
            .take_while(|(a, b)| **a == b.name)
            .count();
        while self.stack.len() > common + 1 {
            self.close(store)?;
        }
        for dir in &dirs[common..] {
            self.stack.push(Dir::new(dir.to_string()));
        }
        self.stack.last_mut().expect("root").push(file, oid, is_dir)
    }

    /// Add a whole existing tree at the top level (another database's folder).
    pub fn add_root_tree(
        &mut self,
        store: &mut dyn ObjectStore,
        name: &str,
        oid: Oid,
    ) -> Result<()> {
        while self.stack.len() > 1 {
            self.close(store)?;
        }
        self.stack[0].push(name, oid, true)
    }

    /// Close every open folder and write the root tree.
    pub fn finish(mut self, store: &mut dyn ObjectStore) -> Result<Oid> {
        while self.stack.len() > 1 {
            self.close(store)?;
        }
        let root = self.stack.pop().expect("root");
        store.put(Kind::Tree, root.encoded)
    }

    fn close(&mut self, store: &mut dyn ObjectStore) -> Result<()> {
        let in_rows = self.in_rows_folder();
        let dir = self.stack.pop().expect("open folder");
        // A row folder (`1-rows` or a group in it) holding a single group folder is that
        // folder: small tables keep flat trees, and each level holds ~32 entries. (The group
        // has the same name: both are named after their first chunk.)
        let oid = match dir.only_dir {
            Some(only) if in_rows => only,
            _ => store.put(Kind::Tree, dir.encoded)?,
        };
        let parent = self.stack.last_mut().expect("root");
        parent.push(&dir.name, oid, true)
    }
}

impl TreeBuilder {
    /// Whether the innermost open folder is a table's `1-rows` folder or a group inside it
    /// (`1-tables/<table>/1-rows/…`, relative to the database's folder).
    fn in_rows_folder(&self) -> bool {
        self.stack.len() >= 4 && self.stack[1].name == "1-tables" && self.stack[3].name == "1-rows"
    }
}

/// Git compares a folder's name (with whether it is one) as if it ended in `/`.
fn git_cmp((a, a_dir): (&[u8], bool), (b, b_dir): (&[u8], bool)) -> Ordering {
    let suffix = |dir: bool| -> &[u8] { if dir { b"/" } else { b"" } };
    a.iter()
        .chain(suffix(a_dir))
        .cmp(b.iter().chain(suffix(b_dir)))
}
