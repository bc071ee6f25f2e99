//! Builds git trees from files that arrive one by one in path order, keeping only the folders
//! on the current path open — memory follows the tree's depth and width, not the database.

use anyhow::{Result, bail};
use git2::Oid;

use super::pack::Kind;

/// Where finished objects go (hashing, de-duplication and storage are the caller's business).
pub trait ObjectStore {
    fn put(&mut self, kind: Kind, data: Vec<u8>) -> Result<Oid>;
}

struct Entry {
    name: String,
    oid: Oid,
    is_dir: bool,
}

struct Dir {
    name: String,
    entries: Vec<Entry>,
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
            stack: vec![Dir {
                name: String::new(),
                entries: Vec::new(),
            }],
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
            self.stack.push(Dir {
                name: dir.to_string(),
                entries: Vec::new(),
            });
        }
        push_sorted(
            &mut self.stack.last_mut().expect("root").entries,
            Entry {
                name: file.to_string(),
                oid,
                is_dir,
            },
        )
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
        push_sorted(
            &mut self.stack[0].entries,
            Entry {
                name: name.to_string(),
                oid,
                is_dir: true,
            },
        )
    }

    /// Close every open folder and write the root tree.
    pub fn finish(mut self, store: &mut dyn ObjectStore) -> Result<Oid> {
        while self.stack.len() > 1 {
            self.close(store)?;
        }
        let root = self.stack.pop().expect("root");
        store.put(Kind::Tree, encode(&root.entries))
    }

    fn close(&mut self, store: &mut dyn ObjectStore) -> Result<()> {
        let in_rows = self.in_rows_folder();
        let dir = self.stack.pop().expect("open folder");
        // A row folder (`1-rows` or a group in it) holding a single group folder is that
        // folder: small tables keep flat trees, and each level holds ~32 entries. (The group
        // has the same name: both are named after their first chunk.)
        let oid = match dir.entries.as_slice() {
            [only] if only.is_dir && in_rows => only.oid,
            entries => store.put(Kind::Tree, encode(entries))?,
        };
        let parent = &mut self.stack.last_mut().expect("root").entries;
        push_sorted(
            parent,
            Entry {
                name: dir.name,
                oid,
                is_dir: true,
            },
        )
    }
}

impl TreeBuilder {
    /// Whether the innermost open folder is a table's `1-rows` folder or a group inside it
    /// (`1-tables/<table>/1-rows/…`, relative to the database's folder).
    fn in_rows_folder(&self) -> bool {
        self.stack.len() >= 4 && self.stack[1].name == "1-tables" && self.stack[3].name == "1-rows"
    }
}

/// Git compares a folder's name as if it ended in `/`.
fn sort_key(e: &Entry) -> (&[u8], &[u8]) {
    (e.name.as_bytes(), if e.is_dir { b"/" } else { b"" })
}

fn git_cmp(a: &Entry, b: &Entry) -> std::cmp::Ordering {
    let (an, asuf) = sort_key(a);
    let (bn, bsuf) = sort_key(b);
    an.iter().chain(asuf).cmp(bn.iter().chain(bsuf))
}

fn push_sorted(entries: &mut Vec<Entry>, entry: Entry) -> Result<()> {
    if let Some(last) = entries.last()
        && git_cmp(last, &entry) != std::cmp::Ordering::Less
    {
        bail!(
            "internal error: tree entries out of order ({:?} after {:?})",
            entry.name,
            last.name
        );
    }
    entries.push(entry);
    Ok(())
}

fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 60);
    for e in entries {
        out.extend_from_slice(if e.is_dir { b"40000 " } else { b"100644 " });
        out.extend_from_slice(e.name.as_bytes());
        out.push(0);
        out.extend_from_slice(e.oid.as_bytes());
    }
    out
}
