//! The previous snapshot's rows of one rowid table, walked in order as a reader of changed
//! ranges needs them: whole group folders where nothing around them changed, single chunk
//! files near a change.
//!
//! A rowid table's chunks are grouped into folders named after their first chunk (see
//! [`Groups`]); the innermost folders (leaves) hold ~32 chunk files each. A leaf that lies wholly
//! between changes, and whose following entry is not touched either, is the same folder in the
//! new snapshot: same chunks, same group boundaries (they depend only on chunk names). It is
//! reused by its tree id, so a run costs what changed plus one entry per unchanged leaf —
//! neither its chunks nor its tree are read. Only the folders that may hold other folders (names
//! that start a group at level 2, and the table's first) and the leaves next to a change are
//! opened.

use std::collections::VecDeque;

use anyhow::Result;
use git2::Oid;

use super::{NotAsMapped, Previous};
use crate::dump::rows::Groups;

/// What an entry of the previous rows folder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OldKind {
    /// A chunk file.
    Chunk,
    /// A folder known to hold only chunk files.
    Leaf,
    /// A folder not opened yet.
    Folder,
}

/// An entry of the previous rows folder, named after the rowid of its (first) row.
pub(super) struct Old {
    pub first: i64,
    pub name: String,
    pub oid: Oid,
    pub kind: OldKind,
}

/// The rowid a chunk file (`<16 hex>.sql`) or group folder (`<16 hex>`) name stands for
/// (`path::rowid_chunk_name` backwards).
pub(super) fn name_rowid(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".sql").unwrap_or(name);
    if stem.len() != 16 {
        return None;
    }
    let v = u64::from_str_radix(stem, 16).ok()?;
    Some((v ^ (1 << 63)) as i64)
}

/// The entries still to come, in order (memory follows the depth of the tree: the rest of each
/// open folder).
pub(super) struct OldRows<'p> {
    previous: &'p dyn Previous,
    items: VecDeque<Old>,
    /// No entry was taken yet (the first folder may be a group because it is the first).
    at_start: bool,
    last: Option<i64>,
}

impl<'p> OldRows<'p> {
    pub fn new(previous: &'p dyn Previous, rows_tree: Option<Oid>) -> Result<OldRows<'p>> {
        let mut old = OldRows {
            previous,
            items: VecDeque::new(),
            at_start: true,
            last: None,
        };
        if let Some(oid) = rows_tree {
            let entries = old.entries(oid)?;
            old.items.extend(entries);
        }
        Ok(old)
    }

    fn entries(&self, oid: Oid) -> Result<Vec<Old>> {
        let mut out = Vec::new();
        for (name, oid, dir) in self.previous.tree_entries(oid)? {
            let Some(first) = name_rowid(&name) else {
                let what = format!("chunk {name} is not a rowid chunk");
                return Err(NotAsMapped(what).into());
            };
            let kind = if dir { OldKind::Folder } else { OldKind::Chunk };
            out.push(Old {
                first,
                name,
                oid,
                kind,
            });
        }
        Ok(out)
    }

    /// The next entry, a chunk or a leaf (folders that may hold folders are opened).
    pub fn next(&mut self) -> Result<Option<&Old>> {
        while let Some(front) = self.items.front_mut() {
            if front.kind != OldKind::Folder {
                break;
            }
            let may_hold_groups = self.at_start || Groups::starts_by_name(&front.name, 2);
            if !may_hold_groups {
                front.kind = OldKind::Leaf;
                break;
            }
            let oid = front.oid;
            let inner = self.entries(oid)?;
            if inner.iter().all(|e| e.kind == OldKind::Chunk) {
                self.items.front_mut().expect("front").kind = OldKind::Leaf;
                break;
            }
            self.items.pop_front();
            for e in inner.into_iter().rev() {
                self.items.push_front(e);
            }
        }
        Ok(self.items.front())
    }

    /// The first rowid of the entry after the next one.
    pub fn following_first(&self) -> Option<i64> {
        self.items.get(1).map(|e| e.first)
    }

    /// Replace the next entry, a leaf, by its chunk files.
    pub fn open_leaf(&mut self) -> Result<()> {
        if let Some(front) = self.items.front()
            && front.kind == OldKind::Leaf
        {
            let inner = self.entries(front.oid)?;
            self.items.pop_front();
            for e in inner.into_iter().rev() {
                self.items.push_front(e);
            }
        }
        Ok(())
    }

    /// Take the next entry and move on.
    pub fn take(&mut self) -> Result<Option<Old>> {
        self.next()?;
        let Some(taken) = self.items.pop_front() else {
            return Ok(None);
        };
        if self.last.is_some_and(|l| l >= taken.first) {
            let what = format!("chunk {} is out of order", taken.name);
            return Err(NotAsMapped(what).into());
        }
        self.last = Some(taken.first);
        self.at_start = false;
        Ok(Some(taken))
    }
}
