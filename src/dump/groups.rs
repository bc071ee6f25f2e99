//! Group folders: where a table's chunk files go in the snapshot tree, so that no tree grows
//! with the table (see [`Groups`]).

use std::sync::Arc;

use anyhow::{Result, bail};

use super::Format;
use super::path::hash_bytes;

/// Average number of chunks in a group folder (and of groups in a group of the next level): a
/// changed chunk rewrites the small trees above it, so this is a run's tree bytes per change.
const GROUP_SPAN: u64 = 32;
/// Levels of group folders in format 2: 32^5 chunks (about 128 GiB of SQL) under each entry of
/// a table's `1-rows` folder.
pub const GROUP_LEVELS: usize = 5;

/// The group folders the next chunk goes into, and in WITHOUT ROWID tables (format 2) the
/// chunk's name.
///
/// A rowid table's chunks and folders are named after the first rowid they hold. A WITHOUT
/// ROWID table's keys cannot be spelled as names that sort in the key's order, so its chunks and
/// folders are named by their position in the folder that holds them (`<8 hex digits>`), and
/// its groups start at chunks whose first key hashes to a multiple of the span: a chunk that
/// appears or goes away renames only the entries after it in its own folder, never a whole
/// table. (Format 1 numbers such chunks through the table, and groups them by that name.)
pub struct Groups {
    /// Innermost first (shared with the chunks placed in them: no copy a chunk).
    open: Vec<Option<Arc<str>>>,
    /// Names by position: the next position in each open folder, the innermost (its chunks)
    /// first, then each level's folders in the folder around them. None: names by rowid.
    next: Option<Vec<u64>>,
}

impl Groups {
    /// Groups for a table whose chunks are named by rowid (`keyed` false) or by key.
    pub fn new(format: Format, keyed: bool) -> Groups {
        let levels = match format {
            Format::V1 => 1,
            Format::V2 => GROUP_LEVELS,
        };
        Groups {
            open: vec![None; levels],
            next: (keyed && format == Format::V2).then(|| vec![0; levels + 1]),
        }
    }

    /// Whether no chunk was placed yet (a leaf folder that starts its group only by being the
    /// table's first must stay first to be reused whole).
    pub fn is_empty(&self) -> bool {
        self.open.iter().all(Option::is_none)
    }

    /// Whether a chunk named `stem` starts a group at level `level` (1: the innermost) by its
    /// name alone; the table's first chunk starts every level besides.
    pub fn starts_by_name(stem: &str, level: u32) -> bool {
        levels_of(hash_bytes(stem.as_bytes()) >> 32) >= level as usize
    }

    /// Place a chunk named `stem`: a chunk whose name hashes to 0 mod GROUP_SPAN^k starts a new
    /// group at levels 1..=k (so groups nest), the first chunk starts every level. Returns the
    /// folders, outermost first.
    pub fn place(&mut self, stem: &str) -> Vec<Arc<str>> {
        let h = hash_bytes(stem.as_bytes()) >> 32;
        let opened = self.opened(h);
        if opened > 0 {
            let name: Arc<str> = Arc::from(stem);
            self.open[..opened].fill(Some(name));
        }
        self.folders()
    }

    /// Place a chunk given its provisional `name` (a rowid name, or in format 1 a WITHOUT
    /// ROWID table's ordinal) and, in WITHOUT ROWID tables, its first key (the key columns' SQL
    /// literals, each ended by a NUL). Returns its folders, outermost first, and its name.
    pub fn place_chunk(&mut self, name: String, first_key: &[u8]) -> (Vec<Arc<str>>, String) {
        if self.next.is_none() {
            let folders = self.place(name.trim_end_matches(".sql"));
            return (folders, name);
        }
        self.open_by_position(first_key, 1);
        let next = self.next.as_mut().expect("names by position");
        let name = format!("{}.sql", position_name(next[0]));
        next[0] += 1;
        (self.folders(), name)
    }

    /// WITHOUT ROWID tables (format 2): place a whole group folder of level `level` (1: it
    /// holds chunk files) whose first chunk's first key is `first_key` — the chunk after it
    /// must start a group of that level or above. Returns the folders, outermost first, the last
    /// the group's own.
    pub fn place_group(&mut self, level: usize, first_key: &[u8]) -> Result<Vec<Arc<str>>> {
        if self.next.is_none() || level == 0 || level > self.open.len() {
            bail!("internal error: no group folder of level {level} here");
        }
        if self.open_by_position(first_key, level) < level {
            bail!("internal error: a reused group folder does not start a group");
        }
        self.open[..level - 1].fill(None);
        Ok(self.open[level - 1..]
            .iter()
            .rev()
            .flatten()
            .cloned()
            .collect())
    }

    /// Open (name by position) the groups from the outermost one a chunk whose first key is
    /// `first_key` starts down to level `down_to`. Returns how many levels it starts.
    fn open_by_position(&mut self, first_key: &[u8], down_to: usize) -> usize {
        let opened = self.opened(hash_bytes(first_key) >> 32);
        let next = self.next.as_mut().expect("names by position");
        for level in (down_to..=opened).rev() {
            self.open[level - 1] = Some(Arc::from(position_name(next[level]).as_str()));
            next[level] += 1;
            next[level - 1] = 0;
        }
        opened
    }

    /// How many levels of groups a chunk whose first key is `first_key` starts by its key
    /// alone (WITHOUT ROWID tables, format 2; the table's first chunk starts them all).
    pub fn levels_by_key(first_key: &[u8]) -> usize {
        levels_of(hash_bytes(first_key) >> 32)
    }

    /// How many levels a chunk whose hash is `h` opens a new group at (1..=k, and every level
    /// not open yet: all at the table's start).
    fn opened(&self, h: u64) -> usize {
        let unopened = self
            .open
            .iter()
            .rposition(Option::is_none)
            .map_or(0, |i| i + 1);
        levels_of(h).min(self.open.len()).max(unopened)
    }

    fn folders(&self) -> Vec<Arc<str>> {
        let mut out = Vec::with_capacity(self.open.len());
        out.extend(self.open.iter().rev().flatten().cloned());
        out
    }
}

/// How many levels of groups a hash `h` starts: k when it is a multiple of GROUP_SPAN^k (so
/// groups nest).
fn levels_of(h: u64) -> usize {
    (1..=GROUP_LEVELS)
        .take_while(|&level| h.is_multiple_of(GROUP_SPAN.pow(level as u32)))
        .count()
}

/// The name of the entry at `position` in its folder (WITHOUT ROWID tables, format 2): sorts
/// in position order (a folder never holds 2^32 entries).
fn position_name(position: u64) -> String {
    format!("{position:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::path::{mix64, ordinal_chunk_name, rowid_chunk_name};
    use std::collections::HashMap;

    /// Format 2's nested groups keep every folder small whatever the table size: after the
    /// single-child folders are collapsed (as the tree writer does), no folder of a
    /// 2-million-chunk table (~8 GiB of SQL) holds more than a few hundred entries.
    #[test]
    fn nested_groups_bound_every_folder() {
        let mut groups = Groups::new(Format::V2, false);
        // Entries per folder path (outermost first), and the distinct groups at each level.
        let mut children: HashMap<Vec<String>, std::collections::BTreeSet<String>> = HashMap::new();
        for i in 0..2_000_000i64 {
            let name = rowid_chunk_name(i * 40);
            let stem = name.trim_end_matches(".sql").to_string();
            let path: Vec<String> = groups.place(&stem).iter().map(|g| g.to_string()).collect();
            assert_eq!(path.len(), GROUP_LEVELS);
            for depth in 0..=path.len() {
                let child = path.get(depth).cloned().unwrap_or_else(|| stem.clone());
                children
                    .entry(path[..depth].to_vec())
                    .or_default()
                    .insert(child);
            }
        }
        // Collapsing folders with one child folder: a folder's real fan-out is its own count
        // unless that count is 1 (then it is its child's).
        let widest = children.values().map(|c| c.len()).max().unwrap();
        let top = children[&Vec::new()].len();
        assert!(widest <= 400, "a folder of {widest} entries");
        assert!(top <= 400, "the 1-rows folder has {top} entries");
        let mean_leaf = 2_000_000 / children.keys().filter(|k| k.len() == GROUP_LEVELS).count();
        assert!(
            (GROUP_SPAN as usize / 2..=GROUP_SPAN as usize * 2).contains(&mean_leaf),
            "{mean_leaf} chunks per group"
        );
    }

    /// WITHOUT ROWID chunks named by position: paths sort in chunk order, folders stay small,
    /// and a chunk that goes away renames only entries of its own folders (format 1's table-wide
    /// ordinals renamed every later chunk).
    #[test]
    fn keyed_names_sort_and_stay_local() {
        let keys: Vec<Vec<u8>> = (0..300_000u64)
            .map(|i| format!("'k{:012}'\0", mix64(i) % 1_000_000_000_000).into_bytes())
            .collect();
        let paths = |keys: &[Vec<u8>]| -> Vec<Vec<String>> {
            let mut groups = Groups::new(Format::V2, true);
            keys.iter()
                .enumerate()
                .map(|(i, k)| {
                    let (folders, name) = groups.place_chunk(ordinal_chunk_name(i as u64), k);
                    let mut path: Vec<String> = folders.iter().map(|f| f.to_string()).collect();
                    path.push(name);
                    path
                })
                .collect()
        };
        let before = paths(&keys);
        assert!(before.windows(2).all(|w| w[0] < w[1]), "paths out of order");
        let mut children: HashMap<Vec<String>, std::collections::BTreeSet<String>> = HashMap::new();
        for p in &before {
            for depth in 0..p.len() {
                children
                    .entry(p[..depth].to_vec())
                    .or_default()
                    .insert(p[depth].clone());
            }
        }
        let widest = children.values().map(|c| c.len()).max().unwrap();
        assert!(widest <= 400, "a folder of {widest} entries");
        for gone in [0usize, 1, 150_000, 299_999] {
            let mut fewer = keys.clone();
            fewer.remove(gone);
            let after = paths(&fewer);
            let kept: Vec<&Vec<String>> = before
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != gone)
                .map(|(_, p)| p)
                .collect();
            let renamed = kept.iter().zip(&after).filter(|(a, b)| **a != *b).count();
            assert!(
                renamed <= 400,
                "removing chunk {gone} renamed {renamed} chunks"
            );
        }
    }
}
