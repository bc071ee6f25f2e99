//! The previous snapshot's rows of one WITHOUT ROWID table (format 2), walked in order as a
//! reader of changed key ranges needs them: whole group folders where nothing in or right after
//! them changed, single chunk files next to a change.
//!
//! Such a table's chunks and folders are named by position (see [`Groups`]), and which chunks
//! start a group of which level follows from their first keys alone, which the page map keeps.
//! So the shape of the previous `1-rows` tree is known without reading it: a folder's chunks,
//! and the level of what it holds once folders holding a single folder are collapsed. A folder
//! whose chunks all come before the next change, as does the chunk after it, is the same folder
//! in the new snapshot (same chunks, same keys, same groups, names by position inside it): it
//! is reused by its tree id without being opened. Only the folders that reach a change are
//! read, so a run costs what changed plus one entry per untouched folder on the way.

use anyhow::{Result, bail};
use git2::Oid;

use super::{NotAsMapped, Previous};
use crate::dump::Format;
use crate::dump::keylist::KeyList;
use crate::dump::rows::{GROUP_LEVELS, Groups};

/// An entry of the previous rows tree: chunks `start..end`; `level` 0 for a chunk file, else
/// the level of the group whose content the folder holds (after collapsing).
struct Node {
    oid: Oid,
    start: usize,
    end: usize,
    level: usize,
}

/// What comes out of the previous tree, in order.
pub(super) enum OldEntry {
    /// Chunk `index` (a file).
    Chunk { index: usize, oid: Oid },
    /// Chunks `start..end`, whole: a group folder of level `level`.
    Folder {
        start: usize,
        end: usize,
        level: usize,
        oid: Oid,
    },
}

pub(super) struct OldKeyed<'p> {
    previous: &'p dyn Previous,
    /// Format 2: the shape is known from the keys. Format 1 (chunks numbered through the
    /// table, one level of folders): folders are opened, chunks counted.
    shaped: bool,
    /// Levels of groups each previous chunk starts by its key (the first starts all besides).
    levels: Vec<u8>,
    /// Entries still to come: the rest of each open folder, innermost last (reversed).
    stack: Vec<Vec<Node>>,
    /// The index of the next chunk.
    taken: usize,
}

impl<'p> OldKeyed<'p> {
    pub fn new(
        previous: &'p dyn Previous,
        rows_tree: Option<Oid>,
        keys: &KeyList,
        format: Format,
    ) -> Result<OldKeyed<'p>> {
        let n = keys.len();
        let shaped = format == Format::V2;
        let levels: Vec<u8> = match shaped {
            true => (0..n)
                .map(|i| Groups::levels_by_key(keys.get(i)) as u8)
                .collect(),
            false => Vec::new(),
        };
        let mut old = OldKeyed {
            previous,
            shaped,
            levels,
            stack: Vec::new(),
            taken: 0,
        };
        match rows_tree {
            Some(oid) if n > 0 => {
                let level = match shaped {
                    true => old.content_level(GROUP_LEVELS + 1, 0, n),
                    false => 1,
                };
                old.stack.push(vec![Node {
                    oid,
                    start: 0,
                    end: n,
                    level,
                }]);
            }
            None if n == 0 => {}
            _ => return Err(NotAsMapped("rows do not match its map".into()).into()),
        }
        Ok(old)
    }

    /// Levels chunk `i` starts (the table's first: all).
    fn starts(&self, i: usize) -> usize {
        if i == 0 {
            GROUP_LEVELS
        } else {
            usize::from(self.levels[i])
        }
    }

    /// The group of `level` over chunks `start..end`: the level of its content once folders
    /// holding a single folder are collapsed (a folder of level 1 holds chunk files).
    fn content_level(&self, level: usize, start: usize, end: usize) -> usize {
        // A group whose inner chunks start groups of at most level k holds groups of level k
        // (or chunk files when k is 0): the levels between collapse.
        let inner = (start + 1..end).map(|i| self.starts(i)).max().unwrap_or(0);
        level.min(inner + 1)
    }

    /// The entries of `node` (a folder), read from its tree and checked against the shape the
    /// keys give.
    fn open(&self, node: &Node) -> Result<Vec<Node>> {
        let entries = self.previous.tree_entries(node.oid)?;
        if !self.shaped {
            let nodes = entries.into_iter().rev().map(|(_, oid, dir)| Node {
                oid,
                start: 0,
                end: 0,
                level: usize::from(dir),
            });
            return Ok(nodes.collect());
        }
        let mut children = Vec::with_capacity(entries.len());
        if node.level == 1 {
            children.extend((node.start..node.end).map(|i| (i, i + 1, 0)));
        } else {
            let child = node.level - 1;
            let mut first = node.start;
            for i in node.start + 1..=node.end {
                if i == node.end || self.starts(i) >= child {
                    children.push((first, i, self.content_level(child, first, i)));
                    first = i;
                }
            }
        }
        if entries.len() != children.len()
            || entries
                .iter()
                .zip(&children)
                .any(|((_, _, dir), &(_, _, level))| *dir != (level > 0))
        {
            return Err(NotAsMapped("rows do not match its map".into()).into());
        }
        Ok(entries
            .into_iter()
            .zip(children)
            .rev()
            .map(|((_, oid, _), (start, end, level))| Node {
                oid,
                start,
                end,
                level,
            })
            .collect())
    }

    /// The next entry if it starts before chunk `limit`, whole when `whole(start, end, level,
    /// by_key)` says its folder may be reused (format 2; `by_key`: the levels of groups its
    /// first chunk starts by its key alone); folders it refuses are opened. None: the next
    /// entry starts at `limit` or later, or there is none.
    pub fn next(
        &mut self,
        limit: usize,
        mut whole: impl FnMut(usize, usize, usize, usize) -> bool,
    ) -> Result<Option<OldEntry>> {
        loop {
            let Some(top) = self.stack.last_mut() else {
                return Ok(None);
            };
            let Some(node) = top.pop() else {
                self.stack.pop();
                continue;
            };
            if self.shaped && node.start != self.taken {
                bail!("internal error: previous chunks out of order");
            }
            if self.taken >= limit {
                self.stack.last_mut().expect("popped from it").push(node);
                return Ok(None);
            }
            if node.level == 0 {
                self.taken += 1;
                return Ok(Some(OldEntry::Chunk {
                    index: self.taken - 1,
                    oid: node.oid,
                }));
            }
            if self.shaped
                && whole(
                    node.start,
                    node.end,
                    node.level,
                    usize::from(self.levels[node.start]),
                )
            {
                self.taken = node.end;
                return Ok(Some(OldEntry::Folder {
                    start: node.start,
                    end: node.end,
                    level: node.level,
                    oid: node.oid,
                }));
            }
            let inner = self.open(&node)?;
            self.stack.push(inner);
        }
    }

    /// The index of the next chunk.
    pub fn taken(&self) -> usize {
        self.taken
    }

    /// Whether every entry was taken.
    pub fn is_done(&self) -> bool {
        self.stack.iter().all(Vec::is_empty)
    }
}
