//! Which objects a merge of packs stores as deltas: every run writes the chunks and folders it
//! changed whole (so that a snapshot is written fast and the newest one reads fast), and the
//! versions they replace stay whole in older packs. Once a version and the one that replaced
//! it are in packs merged together, the old one becomes a delta of the new one — a few dozen
//! bytes for a folder with one changed entry, about a row for a chunk with one changed row —
//! and the repository grows by what changed rather than by the files that hold it.
//!
//! Old versions are deltas of newer ones (as git's own repacking prefers): the newest snapshot
//! stays whole, and history pruned away takes only deltas with it. Pairs come from comparing
//! each snapshot with the one before, path by path, for the snapshots whose folders the merged
//! packs hold.
//!
//! No cycle can form: a new delta's object and base are both stored whole in the packs merged,
//! an object is a delta of what replaced it the last time it was replaced, and it is left whole
//! when it came back (at any path compared) at or after that time; so along a chain of new
//! deltas the times strictly grow. Chains stay at most [`MAX_DEPTH`] long, counting the deltas
//! the packs held already.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::PathBuf;

use anyhow::{Context, Result};
use git2::{ObjectType, Oid, Repository};

use super::delta::ofs_distance;
use super::pack::OFS_DELTA;
use super::packread::{PackReader, entry_header, read_some_at};
use super::previous::parse_tree;

/// The longest chain of deltas a merge makes (git's `pack.depth` default).
const MAX_DEPTH: u32 = 50;

/// The packs being merged: their `.idx` paths and (sorted) objects with offsets.
pub(super) type Packs = [(PathBuf, Vec<(Oid, u64)>)];

/// (object, base) pairs to store as deltas, each base before the objects that are deltas of it.
pub(super) fn plan(repo: &Repository, packs: &Packs) -> Result<Vec<(Oid, Oid)>> {
    let chains = Chains::read(packs)?;
    let mut pairs = Pairs {
        repo,
        reader: PackReader::open(&repo.path().join("objects")),
        merged: Merged::of(packs),
        chains: &chains,
        last_replaced: HashMap::new(),
        last_added: HashMap::new(),
    };
    pairs.compare_snapshots()?;
    let Pairs {
        last_replaced,
        last_added,
        ..
    } = pairs;
    let mut chosen: Vec<(Oid, Oid, u32)> = last_replaced
        .into_iter()
        .filter(|(id, (time, _))| last_added.get(id).is_none_or(|added| added < time))
        .map(|(id, (time, base))| (id, base, time))
        .collect();
    drop(last_added);
    // Bases first (along a chain the times grow), to know each one's depth.
    chosen.sort_unstable_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    let mut depth: HashMap<Oid, u32> = HashMap::new();
    let mut accepted: Vec<(Oid, Oid)> = Vec::new(); // (base, object)
    for (id, base, _) in chosen {
        let new_depth = depth.get(&base).copied().unwrap_or(0) + 1;
        if new_depth + chains.height(&id) <= MAX_DEPTH {
            depth.insert(id, new_depth);
            accepted.push((base, id));
        }
    }
    // Each chain in turn, from its whole base down: the object written before a delta is
    // most often its base, whose content the copy then has at hand.
    accepted.sort_unstable();
    let mut stack: Vec<Oid> = accepted
        .iter()
        .map(|&(base, _)| base)
        .filter(|base| !depth.contains_key(base))
        .collect();
    drop(depth);
    stack.dedup();
    let mut plan = Vec::with_capacity(accepted.len());
    while let Some(base) = stack.pop() {
        let from = accepted.partition_point(|&(b, _)| b < base);
        for &(_, id) in accepted[from..].iter().take_while(|&&(b, _)| b == base) {
            plan.push((id, base));
            stack.push(id);
        }
    }
    Ok(plan)
}

/// Which objects the packs merged hold, by the first 8 bytes of their ids (8 bytes an object;
/// a chance match only costs a pair that the copy then finds no entry for).
struct Merged {
    prefixes: Vec<u64>,
}

impl Merged {
    fn of(packs: &Packs) -> Merged {
        let mut prefixes: Vec<u64> = packs
            .iter()
            .flat_map(|(_, index)| index.iter().map(|(id, _)| prefix(id)))
            .collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        Merged { prefixes }
    }

    fn holds(&self, id: &Oid) -> bool {
        self.prefixes.binary_search(&prefix(id)).is_ok()
    }
}

fn prefix(id: &Oid) -> u64 {
    u64::from_be_bytes(id.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// git's order of tree entries: by name, a folder's name as if it ended in `/`.
fn git_order(a: &(String, Oid, bool), b: &(String, Oid, bool)) -> Ordering {
    let (x, y) = (a.0.as_bytes(), b.0.as_bytes());
    let n = x.len().min(y.len());
    x[..n].cmp(&y[..n]).then_with(|| {
        let end = |name: &[u8], folder: bool| {
            name.get(n)
                .copied()
                .unwrap_or(if folder { b'/' } else { 0 })
        };
        end(x, a.2).cmp(&end(y, b.2))
    })
}

/// The deltas the packs hold already.
struct Chains {
    /// Objects stored as deltas.
    deltas: HashSet<Oid>,
    /// For objects some delta is based on: the longest chain of deltas above them.
    heights: HashMap<Oid, u32>,
}

impl Chains {
    fn read(packs: &Packs) -> Result<Chains> {
        let mut chains = Chains {
            deltas: HashSet::new(),
            heights: HashMap::new(),
        };
        let mut head = [0u8; 32];
        for (idx, index) in packs {
            let path = idx.with_extension("pack");
            let file = File::open(&path).with_context(|| format!("open {}", path.display()))?;
            let mut by_offset: Vec<(u64, Oid)> = index.iter().map(|&(id, at)| (at, id)).collect();
            by_offset.sort();
            let mut edges = Vec::new(); // (delta's offset, base's offset)
            for &(at, id) in &by_offset {
                let got = read_some_at(&file, &mut head, at)?;
                let (code, _, used) = entry_header(&head[..got])?;
                if code < 5 {
                    continue;
                }
                chains.deltas.insert(id);
                if code == OFS_DELTA
                    && let Some(base) =
                        ofs_distance(&head[used..got]).and_then(|d| at.checked_sub(d))
                {
                    edges.push((at, base));
                }
            }
            // A base comes before its deltas: from the last entry back, each delta's height is
            // final when it is reached.
            let mut above: HashMap<u64, u32> = HashMap::new();
            for &(at, base) in edges.iter().rev() {
                let h = above.get(&at).copied().unwrap_or(0) + 1;
                let slot = above.entry(base).or_insert(0);
                *slot = (*slot).max(h);
            }
            for (at, h) in above {
                if let Ok(i) = by_offset.binary_search_by_key(&at, |e| e.0) {
                    let slot = chains.heights.entry(by_offset[i].1).or_insert(0);
                    *slot = (*slot).max(h);
                }
            }
        }
        Ok(chains)
    }

    fn height(&self, id: &Oid) -> u32 {
        self.heights.get(id).copied().unwrap_or(0)
    }
}

/// What comparing the snapshots found.
struct Pairs<'a> {
    repo: &'a Repository,
    reader: PackReader,
    merged: Merged,
    chains: &'a Chains,
    /// Object stored whole → (when it was last replaced by an object stored whole, by what).
    last_replaced: HashMap<Oid, (u32, Oid)>,
    /// Object stored whole → when it last replaced another.
    last_added: HashMap<Oid, u32>,
}

impl Pairs<'_> {
    /// Compare each snapshot whose root folder the packs hold with the one before, oldest
    /// first (times are positions in the history).
    fn compare_snapshots(&mut self) -> Result<()> {
        let Ok(head) = self.repo.head().and_then(|h| h.peel_to_commit()) else {
            return Ok(());
        };
        let mut trees = vec![head.tree_id()];
        let mut commit = head;
        // A shallow history ends where the parent is missing.
        while let Ok(parent) = commit.parent(0) {
            trees.push(parent.tree_id());
            commit = parent;
        }
        trees.reverse();
        for (time, pair) in trees.windows(2).enumerate() {
            let (old, new) = (pair[0], pair[1]);
            if self.merged.holds(&old) && self.merged.holds(&new) {
                self.compare(old, new, time as u32 + 1)?;
            }
        }
        if !self.last_replaced.is_empty()
            && let Some(&newest) = trees.last()
        {
            self.keep_whole(newest)?;
        }
        Ok(())
    }

    /// Leave every object of folder `id` whole: the newest snapshot stays fast to read even
    /// where an old version came back in a snapshot the packs merged do not hold.
    fn keep_whole(&mut self, id: Oid) -> Result<()> {
        self.last_replaced.remove(&id);
        for (_, entry, folder) in self.entries(id)? {
            if folder {
                self.keep_whole(entry)?;
            } else {
                self.last_replaced.remove(&entry);
            }
        }
        Ok(())
    }

    /// Compare folder `old` with folder `new`, which replaced it at `time`.
    fn compare(&mut self, old: Oid, new: Oid, time: u32) -> Result<()> {
        if old == new || !self.merged.holds(&old) || !self.merged.holds(&new) {
            return Ok(());
        }
        self.replaced(old, new, time);
        let (before, after) = (self.entries(old)?, self.entries(new)?);
        let mut subfolders = Vec::new();
        // Both lists are in git's order: walk them side by side.
        let (mut i, mut j) = (0, 0);
        while i < before.len() && j < after.len() {
            let ((_, was, folder), (_, id, _)) = (&before[i], &after[j]);
            match git_order(&before[i], &after[j]) {
                Ordering::Less => i += 1,
                Ordering::Greater => j += 1,
                Ordering::Equal => {
                    if was != id {
                        if *folder {
                            subfolders.push((*was, *id));
                        } else if self.merged.holds(was) && self.merged.holds(id) {
                            self.replaced(*was, *id, time);
                        }
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        for (old, new) in subfolders {
            self.compare(old, new, time)?;
        }
        Ok(())
    }

    /// The entries of folder `id`: (name, id, whether it is a folder).
    fn entries(&self, id: Oid) -> Result<Vec<(String, Oid, bool)>> {
        if let Some(data) = self.reader.whole_tree(id)?
            && let Ok(entries) = parse_tree(&data)
        {
            return Ok(entries);
        }
        let tree = self.repo.find_tree(id)?;
        Ok(tree
            .iter()
            .map(|e| {
                let name = String::from_utf8_lossy(e.name_bytes()).into_owned();
                (name, e.id(), e.kind() == Some(ObjectType::Tree))
            })
            .collect())
    }

    /// `old` was replaced by `new` at `time` (both in the packs merged).
    fn replaced(&mut self, old: Oid, new: Oid, time: u32) {
        let deltas = &self.chains.deltas;
        if deltas.contains(&old) || deltas.contains(&new) {
            return;
        }
        self.last_replaced.insert(old, (time, new));
        self.last_added.insert(new, time);
    }
}
