//! What git's own `git gc` / `git prune` keeps besides sqlgit's chain of snapshots, so that
//! pruning keeps it too and `git fsck`, `git gc` and a user's `git worktree` go on working: every
//! ref and whatever it names (a tag on a tree or a blob too), HEAD, each linked worktree's HEAD
//! and its own refs (`refs/bisect/…`, `refs/worktree/…`), the objects each index lists (its
//! entries, cache-tree and resolve-undo), and every reflog entry.
//!
//! [`missing`] is the other side: what of these roots is gone (a repository pruned by an older
//! sqlgit, or damaged), for `verify` and `status`.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Result;
use git2::{ObjectType, Oid, Repository};

/// The roots, each with where it was found (a ref's name, `worktrees/NAME/HEAD`, …).
#[derive(Default)]
pub struct Roots {
    /// Refs, HEADs and reflog entries: may name commits, tags, trees or blobs.
    pub refs: Vec<(String, Oid)>,
    /// What indexes list: blobs and trees, never a commit.
    pub indexed: Vec<(String, Oid)>,
}

/// Per-worktree refs live in the worktree's own directory, not in the shared one.
const PER_WORKTREE: [&str; 3] = ["refs/bisect/", "refs/worktree/", "refs/rewritten/"];

/// Collect the roots of `repo` (a repository, not a worktree's view of one).
pub fn roots(repo: &Repository) -> Result<Roots> {
    let mut roots = Roots::default();
    for r in repo.references()?.flatten() {
        let name = r.name().unwrap_or("a ref").to_string();
        if let Some(id) = r.resolve().ok().and_then(|r| r.target()) {
            roots.refs.push((name, id));
        }
    }
    let dir = repo.path();
    add_dir(repo, dir, "", &mut roots);
    if let Ok(entries) = std::fs::read_dir(dir.join("worktrees")) {
        for entry in entries.flatten() {
            let name = format!("worktrees/{}/", entry.file_name().to_string_lossy());
            add_dir(repo, &entry.path(), &name, &mut roots);
            add_loose_refs(
                &entry.path().join("refs"),
                &format!("{name}refs"),
                &mut roots,
            );
        }
    }
    Ok(roots)
}

/// A (main or linked) worktree's HEAD, index and reflogs; `name` prefixes what is found.
fn add_dir(repo: &Repository, dir: &Path, name: &str, roots: &mut Roots) {
    if let Some(id) = read_head(repo, dir) {
        roots.refs.push((format!("{name}HEAD"), id));
    }
    if let Ok(data) = std::fs::read(dir.join("index")) {
        let what = format!("{name}index");
        let mut found = index_objects(&data);
        // A split index (`core.splitIndex`) keeps most entries in `sharedindex.<id>`, beside it
        // or in the common git directory, named by its `link` extension.
        if let Some(shared) = linked_shared_index(&data) {
            let file = format!("sharedindex.{shared}");
            if let Ok(data) =
                std::fs::read(dir.join(&file)).or_else(|_| std::fs::read(repo.path().join(&file)))
            {
                found.extend(index_objects(&data));
            }
        }
        for id in found {
            roots.indexed.push((what.clone(), id));
        }
    }
    add_reflogs(&dir.join("logs"), &format!("{name}logs"), roots);
}

/// What the HEAD file in `dir` names: an id, or a ref (a per-worktree one read beside it).
fn read_head(repo: &Repository, dir: &Path) -> Option<Oid> {
    let text = std::fs::read_to_string(dir.join("HEAD")).ok()?;
    let text = text.trim();
    match text.strip_prefix("ref: ") {
        Some(r) if PER_WORKTREE.iter().any(|p| r.starts_with(p)) => {
            let id = std::fs::read_to_string(dir.join(r)).ok()?;
            Oid::from_str(id.trim()).ok()
        }
        Some(r) => repo.refname_to_id(r).ok(),
        None => Oid::from_str(text).ok(),
    }
}

/// The loose refs under `dir` (a linked worktree's own refs), named `name/…`.
fn add_loose_refs(dir: &Path, name: &str, roots: &mut Roots) {
    each_file(dir, name, &mut |child, text| {
        if let Ok(id) = Oid::from_str(text.trim()) {
            roots.refs.push((child.to_string(), id));
        }
    });
}

/// Every id of every reflog under `dir` (old and new of each entry, as `git prune` keeps).
fn add_reflogs(dir: &Path, name: &str, roots: &mut Roots) {
    each_file(dir, name, &mut |child, text| {
        for line in text.lines() {
            for hex in line.split(' ').take(2) {
                if let Some(id) = Oid::from_str(hex).ok().filter(|id| !id.is_zero()) {
                    roots.refs.push((child.to_string(), id));
                }
            }
        }
    });
}

/// Each readable file under `dir`, at any depth, named `name/…`, with its text.
fn each_file(dir: &Path, name: &str, found: &mut dyn FnMut(&str, &str)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let child = format!("{name}/{}", entry.file_name().to_string_lossy());
        if path.is_dir() {
            each_file(&path, &child, found);
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            found(&child, &text);
        }
    }
}

/// The shared index a split index names (its `link` extension), if any.
fn linked_shared_index(data: &[u8]) -> Option<Oid> {
    let mut link = None;
    let _ = walk_index(data, &mut Vec::new(), &mut link);
    link
}

/// The objects an index file lists: its entries (gitlinks aside), its cache-tree's trees and
/// its resolve-undo blobs. A file that cannot be parsed yields what was read before.
pub fn index_objects(data: &[u8]) -> Vec<Oid> {
    let mut found = Vec::new();
    let _ = walk_index(data, &mut found, &mut None);
    found
}

fn walk_index(data: &[u8], found: &mut Vec<Oid>, link: &mut Option<Oid>) -> Option<()> {
    let u32_at = |at: usize| Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?));
    if data.get(..4)? != b"DIRC" || data.len() < 32 {
        return None;
    }
    let version = u32_at(4)?;
    let count = u32_at(8)?;
    let mut at = 12;
    for _ in 0..count {
        let mode = u32_at(at + 24)?;
        let id = Oid::from_bytes(data.get(at + 40..at + 60)?).ok()?;
        if mode != 0o160000 {
            found.push(id);
        }
        let flags = u16::from_be_bytes(data.get(at + 60..at + 62)?.try_into().ok()?);
        let start = at;
        at += if version >= 3 && flags & 0x4000 != 0 {
            64
        } else {
            62
        };
        if version >= 4 {
            while *data.get(at)? & 0x80 != 0 {
                at += 1; // the varint of how much of the previous path is kept
            }
            at += 1;
        }
        at += data.get(at..)?.iter().position(|&b| b == 0)?;
        at = if version >= 4 {
            at + 1
        } else {
            start + ((at - start + 8) & !7)
        };
    }
    let end = data.len().checked_sub(20)?;
    while at + 8 <= end {
        let size = u32_at(at + 4)? as usize;
        let ext = data.get(at + 8..at + 8 + size)?;
        match data.get(at..at + 4)? {
            b"TREE" => cache_tree(ext, found),
            b"REUC" => resolve_undo(ext, found),
            b"link" => {
                *link = Oid::from_bytes(ext.get(..20)?).ok();
                Some(())
            }
            _ => None,
        };
        at += 8 + size;
    }
    Some(())
}

/// The cache-tree extension: per directory, `path\0entries subtrees\n` then its id when valid.
fn cache_tree(mut ext: &[u8], found: &mut Vec<Oid>) -> Option<()> {
    while !ext.is_empty() {
        let nul = ext.iter().position(|&b| b == 0)?;
        let nl = nul + ext[nul..].iter().position(|&b| b == b'\n')?;
        let counts = std::str::from_utf8(&ext[nul + 1..nl]).ok()?;
        let entries: i64 = counts.split(' ').next()?.parse().ok()?;
        ext = &ext[nl + 1..];
        if entries >= 0 {
            found.push(Oid::from_bytes(ext.get(..20)?).ok()?);
            ext = &ext[20..];
        }
    }
    Some(())
}

/// The resolve-undo extension: per path, `path\0` three octal modes each `\0`-ended, then an
/// id for each mode that is not 0.
fn resolve_undo(mut ext: &[u8], found: &mut Vec<Oid>) -> Option<()> {
    while !ext.is_empty() {
        ext = &ext[ext.iter().position(|&b| b == 0)? + 1..];
        let mut modes = Vec::new();
        for _ in 0..3 {
            let nul = ext.iter().position(|&b| b == 0)?;
            modes.push(std::str::from_utf8(&ext[..nul]).ok()? != "0");
            ext = &ext[nul + 1..];
        }
        for _ in modes.into_iter().filter(|&m| m) {
            found.push(Oid::from_bytes(ext.get(..20)?).ok()?);
            ext = &ext[20..];
        }
    }
    Some(())
}

/// What of the roots is gone, one line each (`NAME: missing OBJECT`): a root whose object is
/// missing, or (`deep`) whose commit's tree or any object under it is. Empty when whole.
pub fn missing(repo: &Repository, deep: bool) -> Result<Vec<String>> {
    let roots = roots(repo)?;
    let odb = repo.odb()?;
    let mut seen = HashSet::new();
    let mut problems = Vec::new();
    for (name, id) in roots.refs.iter().chain(&roots.indexed) {
        let mut id = *id;
        let problem = loop {
            if !seen.insert(id) {
                break None;
            }
            let Ok((_, kind)) = odb.read_header(id) else {
                break Some(format!("{name}: missing object {id}"));
            };
            let next = match kind {
                ObjectType::Tag => repo.find_tag(id).ok().map(|t| t.target_id()),
                ObjectType::Commit if deep => repo.find_commit(id).ok().map(|c| c.tree_id()),
                ObjectType::Tree if deep => {
                    break missing_under(repo, id, &mut seen).map(|m| format!("{name}: {m}"));
                }
                _ => None,
            };
            match next {
                Some(next) => id = next,
                None => break None,
            }
        };
        problems.extend(problem);
    }
    Ok(problems)
}

/// An error naming what is `missing` (see [`missing`]) and what to do, if anything is.
pub fn fail_if_missing(missing: &[String]) -> Result<()> {
    let Some(first) = missing.first() else {
        return Ok(());
    };
    let more = match missing.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    anyhow::bail!(
        "plain git finds this repository broken: {first}{more}; `git fsck` lists what is \
         missing: fetch it back, or delete what names it (`git tag -d`, `git worktree remove \
         --force`, `git reflog expire --expire-unreachable=now --all`)"
    )
}

/// The first object missing under the tree `id` (which exists), as `missing OBJECT (PATH)`.
fn missing_under(repo: &Repository, id: Oid, seen: &mut HashSet<Oid>) -> Option<String> {
    let odb = repo.odb().ok()?;
    let tree = repo.find_tree(id).ok()?;
    for entry in tree.iter() {
        if entry.kind() == Some(ObjectType::Commit) || !seen.insert(entry.id()) {
            continue;
        }
        let name = entry.name().unwrap_or_default();
        if !odb.exists(entry.id()) {
            return Some(format!("missing object {} ({name})", entry.id()));
        }
        if entry.kind() == Some(ObjectType::Tree)
            && let Some(m) = missing_under(repo, entry.id(), seen)
        {
            return Some(m);
        }
    }
    None
}

/// For pruning: keep the object `id` and what it needs; a commit goes to `commits` (its tree is added with
/// the kept ones'). One already gone is left alone: there is nothing to keep (`verify` says so).
pub fn keep(
    repo: &Repository,
    odb: &git2::Odb,
    mut id: Oid,
    live: &mut HashSet<Oid>,
    commits: &mut Vec<Oid>,
) -> Result<()> {
    loop {
        let Ok((_, kind)) = odb.read_header(id) else {
            return Ok(());
        };
        match kind {
            ObjectType::Tag => {
                if !live.insert(id) {
                    return Ok(());
                }
                id = repo.find_tag(id)?.target_id();
            }
            ObjectType::Commit => {
                commits.push(id);
                return Ok(());
            }
            ObjectType::Tree => return add_tree(repo, id, live),
            _ => {
                live.insert(id);
                return Ok(());
            }
        }
    }
}

/// Keep the tree `id` and everything under it.
pub fn add_tree(repo: &Repository, id: Oid, live: &mut HashSet<Oid>) -> Result<()> {
    if !live.insert(id) {
        return Ok(());
    }
    let tree = repo.find_tree(id)?;
    for entry in tree.iter() {
        match entry.kind() {
            Some(ObjectType::Tree) => add_tree(repo, entry.id(), live)?,
            _ => {
                live.insert(entry.id());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_objects_lists_entries_cache_tree_and_resolve_undo() {
        let blob = Oid::from_str("1111111111111111111111111111111111111111").unwrap();
        let tree = Oid::from_str("2222222222222222222222222222222222222222").unwrap();
        let undo = Oid::from_str("3333333333333333333333333333333333333333").unwrap();
        let mut data = b"DIRC\0\0\0\x02\0\0\0\x01".to_vec();
        let mut entry = vec![0u8; 24];
        entry.extend(0o100644u32.to_be_bytes());
        entry.extend([0u8; 12]);
        entry.extend(blob.as_bytes());
        entry.extend(5u16.to_be_bytes());
        entry.extend(b"a.sql\0\0\0\0\0\0\0\0\0");
        entry.truncate((62 + 5 + 8) & !7);
        data.extend(entry);
        let mut ext = b"\x001 0\n".to_vec();
        ext.extend(tree.as_bytes());
        data.extend(b"TREE");
        data.extend((ext.len() as u32).to_be_bytes());
        data.extend(ext);
        let mut ext = b"a.sql\x00100644\x000\x000\x00".to_vec();
        ext.extend(undo.as_bytes());
        data.extend(b"REUC");
        data.extend((ext.len() as u32).to_be_bytes());
        data.extend(ext);
        data.extend([0u8; 20]);
        assert_eq!(index_objects(&data), vec![blob, tree, undo]);
    }
}
