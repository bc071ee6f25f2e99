//! Which row chunks of a table differ between two snapshots, found from object ids alone.
//!
//! This is what makes a diff cost follow the change: a chunk file holds whole rows, and a chunk
//! with the same blob id on both sides holds the same rows, so it can be skipped without being
//! read — and a whole group folder with the same tree id can be skipped without being listed.
//! Both are cancelled as multisets (rows, not paths, are what matter: WITHOUT ROWID chunk names
//! are ordinals that shift when rows are inserted before them). What is left, in path order
//! (which is key order), is all that the row matching reads.

use std::collections::HashMap;

use anyhow::{Context, Result};
use git2::{ObjectType, Oid, Repository};

/// Where a table's rows live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowsAt {
    /// A `1-rows` folder of chunk files (or of group folders of chunk files).
    Tree(Oid),
    /// One file holding them all (sqlite_sequence, sqlite_stat1).
    File(Oid),
}

/// One chunk file.
#[derive(Clone, Debug)]
pub struct ChunkRef {
    pub oid: Oid,
    /// Path inside the `1-rows` folder, for messages.
    pub path: String,
}

struct Entry {
    oid: Oid,
    name: String,
    folder: bool,
}

fn entries(repo: &Repository, tree: Oid, under: &str) -> Result<Vec<Entry>> {
    let tree = repo
        .find_tree(tree)
        .with_context(|| format!("read folder {under}"))?;
    Ok(tree
        .iter()
        .map(|e| Entry {
            oid: e.id(),
            name: format!("{under}{}", String::from_utf8_lossy(e.name_bytes())),
            folder: e.kind() == Some(ObjectType::Tree),
        })
        .collect())
}

fn listing(repo: &Repository, rows: Option<RowsAt>) -> Result<Vec<Entry>> {
    match rows {
        None => Ok(Vec::new()),
        Some(RowsAt::Tree(oid)) => entries(repo, oid, ""),
        Some(RowsAt::File(oid)) => Ok(vec![Entry {
            oid,
            name: String::new(),
            folder: false,
        }]),
    }
}

/// Remove from both lists the entries they have in common (by object id, as multisets).
fn cancel(a: &mut Vec<Entry>, b: &mut Vec<Entry>) {
    let mut in_a: HashMap<Oid, usize> = HashMap::new();
    for e in a.iter() {
        *in_a.entry(e.oid).or_default() += 1;
    }
    let mut common: HashMap<Oid, usize> = HashMap::new();
    for e in b.iter() {
        if let Some(n) = in_a.get_mut(&e.oid).filter(|n| **n > 0) {
            *n -= 1;
            *common.entry(e.oid).or_default() += 1;
        }
    }
    if common.is_empty() {
        return;
    }
    for list in [a, b] {
        let mut left = common.clone();
        list.retain(|e| match left.get_mut(&e.oid) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        });
    }
}

/// Replace group folders by what they hold (one level), keeping path order.
fn expand_once(repo: &Repository, list: Vec<Entry>) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for e in list {
        if e.folder {
            out.extend(entries(repo, e.oid, &format!("{}/", e.name))?);
        } else {
            out.push(e);
        }
    }
    Ok(out)
}

/// Replace group folders, at any depth, by the chunk files in them, keeping path order.
fn expand(repo: &Repository, mut list: Vec<Entry>) -> Result<Vec<ChunkRef>> {
    while list.iter().any(|e| e.folder) {
        list = expand_once(repo, list)?;
    }
    Ok(list
        .into_iter()
        .map(|e| ChunkRef {
            oid: e.oid,
            path: e.name,
        })
        .collect())
}

/// The chunks only the older side has and those only the newer side has, each in path order.
pub fn changed(
    repo: &Repository,
    from: Option<RowsAt>,
    to: Option<RowsAt>,
) -> Result<(Vec<ChunkRef>, Vec<ChunkRef>)> {
    if from.is_some() && from == to {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut a = listing(repo, from)?;
    let mut b = listing(repo, to)?;
    cancel(&mut a, &mut b);
    // Open only the folders that differ, one level at a time (format 2 nests groups).
    while a.iter().chain(&b).any(|e| e.folder) {
        a = expand_once(repo, a)?;
        b = expand_once(repo, b)?;
        cancel(&mut a, &mut b);
    }
    let back = |l: Vec<Entry>| {
        l.into_iter()
            .map(|e| ChunkRef {
                oid: e.oid,
                path: e.name,
            })
            .collect()
    };
    Ok((back(a), back(b)))
}

/// Every chunk of one side, in path order.
pub fn all(repo: &Repository, rows: Option<RowsAt>) -> Result<Vec<ChunkRef>> {
    expand(repo, listing(repo, rows)?)
}

/// The contents of a chunk file.
pub fn read(repo: &Repository, chunk: &ChunkRef) -> Result<Vec<u8>> {
    let blob = repo
        .find_blob(chunk.oid)
        .with_context(|| format!("read row chunk {}", chunk.path))?;
    Ok(blob.content().to_vec())
}

/// The chunk file that holds `stem` (a rowid chunk name without `.sql`) if any row does: at
/// each level, the last entry whose name (the first chunk name it holds) is not after it.
pub fn chunk_for(repo: &Repository, rows: Oid, stem: &str) -> Result<Option<Oid>> {
    let mut tree = repo.find_tree(rows)?;
    loop {
        let mut pick: Option<(Vec<u8>, Oid, bool)> = None;
        for e in tree.iter() {
            let name = e.name_bytes();
            let name = &name[..name.len().min(16)];
            if name <= stem.as_bytes() && pick.as_ref().is_none_or(|p| name >= p.0.as_slice()) {
                pick = Some((name.to_vec(), e.id(), e.kind() == Some(ObjectType::Tree)));
            }
        }
        match pick {
            None => return Ok(None),
            Some((_, id, true)) => tree = repo.find_tree(id)?,
            Some((_, id, false)) => return Ok(Some(id)),
        }
    }
}
