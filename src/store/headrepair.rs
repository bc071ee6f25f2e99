//! Damaged history, repaired by the run that meets it instead of failing every later run:
//! - a latest snapshot whose commit cannot be read (bit rot in its object, a file lost): every
//!   command reads `main` first, so each cron run failed on it, forever, with libgit2's "cannot
//!   be peeled". A run sets the damaged object aside (a loose file is moved to
//!   `sqlgit-damaged/`; a damaged pack entry is left out of its rewritten pack) and takes `main`
//!   off it, so that it can be fetched again: the run then continues the history remote's `main`
//!   (see `remote::adopt`), which brings the commit back whole when the remote has it. Without a
//!   history remote, `main` goes back to the newest snapshot still readable here; only the
//!   damaged commit is lost (its trees stay, unreferenced);
//! - an older snapshot whose commit cannot be read: the local history is cut above it, as pruning
//!   cuts it ([`cut_at_damaged_commit`]);
//! - `refs/heads/main` itself unreadable (a file cut short by a crash): it names the newest
//!   snapshot again ([`repair_main_ref`]);
//! - a `shallow` file that names no commit, which keeps libgit2 from opening the repository:
//!   set aside ([`set_aside_shallow`]), and the cut found again by the walk of the history.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use git2::{ErrorCode, Oid};

use super::{BRANCH, Store, create_private_dir, is_snapshot_tree, loose_path, scrub, short_id};

/// Folder of the git dir where damaged loose objects are moved (0700, files 0600).
pub const DAMAGED_DIR: &str = "sqlgit-damaged";

/// What [`set_aside_damaged_head`] did.
#[derive(Debug, PartialEq, Eq)]
pub struct SetAside {
    /// The latest snapshot's commit, which could not be read.
    pub damaged: Oid,
    /// Where `main` points now (None: nowhere; the history remote's is fetched next, or the
    /// next snapshot starts a new history).
    pub main: Option<Oid>,
    /// Where the damaged loose object was moved.
    pub kept: Option<PathBuf>,
    /// Damaged pack entries left out of their packs (the commit's, and any other the scrub
    /// found): read every database whole in this run.
    pub packs_rewritten: bool,
}

/// The commit `main` names when it cannot be read (None: no `main`, or it reads).
pub fn unreadable_head(store: &Store) -> Option<Oid> {
    let id = store.repo.refname_to_id(BRANCH).ok()?;
    match store.repo.find_commit(id) {
        Ok(_) => None,
        Err(_) => Some(id),
    }
}

/// Repair a `main` whose commit cannot be read (see the module documentation). `keep_local`:
/// no history remote to fetch it from, so `main` goes back to the newest readable snapshot
/// here. Call with the repository lock held, before anything reads `main`.
pub fn set_aside_damaged_head(store: &mut Store, keep_local: bool) -> Result<Option<SetAside>> {
    let Some(damaged) = unreadable_head(store) else {
        return Ok(None);
    };
    objects_readable(store, damaged)?;
    let mut packs_rewritten = false;
    let kept = set_aside_loose(store, damaged)?;
    if kept.is_some() {
        *store = Store::open(&store.path)?;
    }
    if store.repo.odb()?.exists(damaged) {
        if store.repo.find_commit(damaged).is_ok() {
            // A pack holds an intact copy: `main` reads again as it is.
            return Ok(Some(SetAside {
                damaged,
                main: Some(damaged),
                kept,
                packs_rewritten,
            }));
        }
        // A whole object that is not a commit (a ref written by hand with a wrong id): no pack
        // to repair; `main` goes back to the newest snapshot like a damaged one.
        let not_a_commit = store
            .repo
            .find_object(damaged, None)
            .is_ok_and(|o| o.kind() != Some(git2::ObjectType::Commit));
        // The scrub finds the damaged entries and the packs are rewritten without them.
        let left_out = match not_a_commit {
            true => vec![damaged],
            false => scrub::leave_out_damaged(store)?,
        };
        packs_rewritten = !not_a_commit;
        if !left_out.contains(&damaged) {
            bail!(
                "the latest snapshot {} cannot be read, but its pack entry is intact: run \
                 `git -C {} fsck` to see what is wrong",
                short_id(damaged),
                crate::shellword::repo(&store.path)
            );
        }
    }
    match store.repo.find_reference(BRANCH) {
        Ok(mut r) => r.delete()?,
        Err(e) if e.code() == ErrorCode::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    *store = Store::open(&store.path)?;
    let main = match keep_local {
        true => newest_snapshot(store, damaged)?,
        false => None,
    };
    if let Some(main) = main {
        store.repo.reference(
            BRANCH,
            main,
            true,
            "sqlgit: the latest snapshot was damaged",
        )?;
    }
    Ok(Some(SetAside {
        damaged,
        main,
        kept,
        packs_rewritten,
    }))
}

/// Move the loose file of `damaged`, if there is one, to [`DAMAGED_DIR`]; returns where. Fails
/// when the file cannot be read (an I/O error is not damage: nothing is moved) or reads whole.
fn set_aside_loose(store: &Store, damaged: Oid) -> Result<Option<PathBuf>> {
    let loose = loose_path(&store.objects_dir(), damaged);
    if !(loose.try_exists()).with_context(|| format!("cannot read {}", loose.display()))? {
        return Ok(None);
    }
    let bytes = std::fs::read(&loose).with_context(|| format!("read {}", loose.display()))?;
    if loose_object_is_whole(&bytes, damaged) {
        bail!(
            "object {damaged} cannot be read through libgit2, but its file {} is whole: run `git \
             -C {} fsck` to see what is wrong",
            loose.display(),
            crate::shellword::repo(&store.path)
        );
    }
    let aside = damaged_dir(&store.path)?.join(damaged.to_string());
    std::fs::rename(&loose, &aside)
        .with_context(|| format!("move {} to {}", loose.display(), aside.display()))?;
    Ok(Some(aside))
}

/// Fails when a place where object `id` could be stored cannot be read: libgit2 skips a pack
/// or a folder it cannot open, and takes the object for missing, but a permission or an I/O
/// error is no damage, and nothing may be set aside or cut because of it.
fn objects_readable(store: &Store, id: Oid) -> Result<()> {
    let objects = store.objects_dir();
    let loose_dir = loose_path(&objects, id).parent().map(Path::to_path_buf);
    let pack_dir = objects.join("pack");
    let not_damage = |path: &Path, e: &std::io::Error| {
        crate::cause::not_damage(path, &store.path, e).map(|line| anyhow::anyhow!("{line}"))
    };
    for dir in [Some(objects), loose_dir, Some(pack_dir.clone())]
        .into_iter()
        .flatten()
    {
        match std::fs::read_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if let Some(line) = not_damage(&dir, &e) => return Err(line),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
            Ok(entries) if dir == pack_dir => {
                for entry in entries {
                    let path = entry
                        .with_context(|| format!("cannot read {}", dir.display()))?
                        .path();
                    let is_pack = path
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("pack-"));
                    if is_pack && let Err(e) = std::fs::File::open(&path) {
                        return Err(not_damage(&path, &e).unwrap_or_else(|| {
                            anyhow::Error::new(e).context(format!("cannot open {}", path.display()))
                        }));
                    }
                }
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

/// The places object `id` may be stored: its loose folder and file, and the pack folder.
pub(crate) fn object_places(objects: &Path, id: Oid) -> Vec<PathBuf> {
    let loose = loose_path(objects, id);
    let mut places: Vec<PathBuf> = loose.parent().map(Path::to_path_buf).into_iter().collect();
    places.push(loose);
    places.push(objects.join("pack"));
    places.retain(|p| p.exists() || p.parent().is_some_and(|d| std::fs::read_dir(d).is_err()));
    places
}

/// [`DAMAGED_DIR`] of the repository at `repo`, made (0700) if needed.
pub fn damaged_dir(repo: &Path) -> Result<PathBuf> {
    let dir = repo.join(DAMAGED_DIR);
    create_private_dir(&dir)?;
    Ok(dir)
}

/// Whether `bytes`, a loose object file, inflates to an object whose id is `id`.
fn loose_object_is_whole(bytes: &[u8], id: Oid) -> bool {
    use sha1::{Digest, Sha1};
    use std::io::Read;
    let mut data = Vec::new();
    if flate2::read::ZlibDecoder::new(bytes)
        .read_to_end(&mut data)
        .is_err()
    {
        return false;
    }
    Sha1::digest(&data)[..] == *id.as_bytes()
}

/// The newest readable snapshot commit here other than `damaged`: among the loose objects
/// (each run's commit is written loose, and packed only hundreds of runs later), the tips the
/// refs name (other branches too: `main` renamed), the commit the state file recorded last and
/// those of the reflogs, or else among every commit of the packs (see
/// [`newest_of`]; after a `git gc` every object is packed).
pub(crate) fn newest_snapshot(store: &Store, damaged: Oid) -> Result<Option<Oid>> {
    let repo = &store.repo;
    let mut candidates: Vec<Oid> = loose_ids(&store.objects_dir());
    for r in repo.references()?.flatten() {
        if let Some(id) = r.target() {
            candidates.push(id);
        }
    }
    candidates.extend(super::lostmain::recorded_commit(&store.path));
    candidates.extend(super::lostmain::reflog_ids(repo.path()));
    let best = newest_of(store, damaged, candidates)?;
    if best.is_some_and(|(with_parent, _)| with_parent) {
        return Ok(best.map(|(_, id)| id));
    }
    // Every snapshot with a parent is packed: look at each object's type (slow in a big
    // repository, and done only here).
    let odb = repo.odb()?;
    let mut commits = Vec::new();
    odb.foreach(|&id| {
        if odb
            .read_header(id)
            .is_ok_and(|(_, kind)| kind == git2::ObjectType::Commit)
        {
            commits.push(id);
        }
        true
    })?;
    Ok(newest_of(store, damaged, commits)?
        .or(best)
        .map(|(_, id)| id))
}

/// The newest readable snapshot commit of `candidates` but `damaged`, and whether it has a
/// parent: a commit with a parent first (a parentless one is the first snapshot, or the copy
/// of a snapshot the latest remote receives, as new as its snapshot), then by commit time,
/// then the one that descends from the other.
fn newest_of(store: &Store, damaged: Oid, mut candidates: Vec<Oid>) -> Result<Option<(bool, Oid)>> {
    let repo = &store.repo;
    candidates.sort();
    candidates.dedup();
    let mut best: Option<((bool, i64), Oid)> = None;
    for id in candidates {
        if id == damaged {
            continue;
        }
        let Ok(commit) = repo.find_commit(id) else {
            continue; // not a commit, or damaged too
        };
        if !commit.tree().is_ok_and(|t| is_snapshot_tree(repo, &t)) {
            continue;
        }
        let key = (
            commit.parent_count() > 0,
            commit.committer().when().seconds(),
        );
        let better = match best {
            None => true,
            Some((k, b)) => key > k || key == k && repo.graph_descendant_of(id, b).unwrap_or(false),
        };
        if better {
            best = Some((key, id));
        }
    }
    Ok(best.map(|((with_parent, _), id)| (with_parent, id)))
}

/// The ids of the loose objects under `objects`.
fn loose_ids(objects: &Path) -> Vec<Oid> {
    let mut ids = Vec::new();
    let Ok(dirs) = std::fs::read_dir(objects) else {
        return ids;
    };
    for dir in dirs.flatten() {
        let name = dir.file_name();
        let Some(prefix) = name.to_str().filter(|n| n.len() == 2) else {
            continue;
        };
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for file in files.flatten() {
            let rest = file.file_name();
            if let Some(id) = rest
                .to_str()
                .and_then(|r| Oid::from_str(&format!("{prefix}{r}")).ok())
                .filter(|_| rest.len() == 38)
            {
                ids.push(id);
            }
        }
    }
    ids
}

/// Where [`cut_at_damaged_commit`] cut the local history.
#[derive(Debug, PartialEq, Eq)]
pub struct Cut {
    /// The older snapshot whose commit cannot be read.
    pub damaged: Oid,
    /// Its child, the oldest snapshot kept now.
    pub oldest: Oid,
    /// The history remote has the damaged snapshot (it confirmed a newer one): None without a
    /// history remote.
    pub remote_has_it: Option<bool>,
    /// The object is not here at all (not damaged: gone), as below where pruning cut.
    pub missing: bool,
}

/// Cut the local history above an older snapshot whose commit cannot be read, as pruning
/// cuts it (a shallow graft at its child), so that what reads the history — pushes, pruning,
/// `log` — stops before it instead of failing or, worse, taking it for the end of the history.
/// `confirmed`: the history remote's confirmed snapshot (Some(None) when a history remote is
/// set but has confirmed nothing; None without one). Call with the lock held.
pub fn cut_at_damaged_commit(
    store: &mut Store,
    confirmed: Option<Option<Oid>>,
) -> Result<Option<Cut>> {
    loop {
        let Some(cut) = damaged_parent(store, confirmed)? else {
            return Ok(None);
        };
        objects_readable(store, cut.damaged)?;
        if set_aside_loose(store, cut.damaged)?.is_some() {
            *store = Store::open(&store.path)?;
            if store.repo.find_commit(cut.damaged).is_ok() {
                continue; // a pack holds an intact copy
            }
        }
        if store.repo.odb()?.exists(cut.damaged) {
            // Packed: cut only above an entry the scrub's check finds damaged.
            let damage = scrub::damaged(&store.objects_dir())?;
            if !damage.packs.iter().any(|p| p.ids.contains(&cut.damaged)) {
                bail!(
                    "snapshot {} cannot be read, but its pack entry is intact: run `git -C {} \
                     fsck` to see what is wrong",
                    short_id(cut.damaged),
                    crate::shellword::repo(&store.path)
                );
            }
        }
        super::prune::write_shallow(store.repo.path(), cut.oldest)?;
        *store = Store::open(&store.path)?;
        return Ok(Some(cut));
    }
}

/// The first snapshot on `main`'s chain whose parent cannot be read, as a [`Cut`].
fn damaged_parent(store: &Store, confirmed: Option<Option<Oid>>) -> Result<Option<Cut>> {
    let Some(mut commit) = store.head()? else {
        return Ok(None);
    };
    let mut confirmed_seen = false;
    loop {
        confirmed_seen |= confirmed.flatten() == Some(commit.id());
        if commit.parent_count() == 0 {
            return Ok(None);
        }
        match commit.parent(0) {
            Ok(parent) => commit = parent,
            Err(_) => {
                let damaged = commit.parent_id(0)?;
                return Ok(Some(Cut {
                    damaged,
                    oldest: commit.id(),
                    remote_has_it: confirmed.map(|_| confirmed_seen),
                    missing: !store.repo.odb()?.exists(damaged),
                }));
            }
        }
    }
}

/// Repair a `refs/heads/main` that cannot be read (a file cut short by a crash): the file is
/// moved to [`DAMAGED_DIR`] and `main` set to the newest snapshot here (the objects are intact:
/// nothing is lost). Returns where `main` points now; None when it read fine. Call with the
/// lock held.
pub fn repair_main_ref(store: &mut Store) -> Result<Option<Option<Oid>>> {
    match store.repo.find_reference(BRANCH) {
        Ok(_) => return Ok(None),
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
        Err(_) => {}
    }
    let file = store.repo.path().join(BRANCH);
    if file.exists() {
        let text = std::fs::read(&file).map_err(|e| {
            match crate::cause::not_damage(&file, &store.path, &e) {
                Some(line) => anyhow::anyhow!("{line}"),
                None => anyhow::Error::new(e).context(format!("read {}", file.display())),
            }
        })?;
        let text = text.trim_ascii();
        let names_a_ref = text.starts_with(b"ref: ")
            || text.len() == 40 && text.iter().all(u8::is_ascii_hexdigit);
        if names_a_ref {
            bail!(
                "refs/heads/main cannot be read, but its file is whole: run `git -C {} fsck` to \
                 see what is wrong",
                crate::shellword::repo(&store.path)
            );
        }
        let dir = damaged_dir(&store.path)?;
        let aside = dir.join(format!("refs-heads-main-{}", std::process::id()));
        std::fs::rename(&file, &aside)
            .with_context(|| format!("move {} to {}", file.display(), aside.display()))?;
    }
    *store = Store::open(&store.path)?;
    if store
        .repo
        .find_reference(BRANCH)
        .is_err_and(|e| e.code() != ErrorCode::NotFound)
    {
        bail!(
            "refs/heads/main cannot be read, and not from a file of its own: run `git -C {} \
             fsck` to see what is wrong",
            crate::shellword::repo(&store.path)
        );
    }
    let main = newest_snapshot(store, Oid::ZERO_SHA1)?;
    if let Some(main) = main {
        store
            .repo
            .reference(BRANCH, main, true, "sqlgit: refs/heads/main was damaged")?;
    }
    Ok(Some(main))
}

/// Whether `dir` is a sqlgit repository whose `shallow` file (where pruning cut the local
/// history) names something other than commit ids: libgit2 then cannot open it at all.
pub fn shallow_damaged(dir: &Path) -> bool {
    let Ok(text) = std::fs::read(dir.join("shallow")) else {
        return false;
    };
    let ids_only = text
        .split(|&b| b == b'\n')
        .all(|line| line.is_empty() || line.len() == 40 && line.iter().all(u8::is_ascii_hexdigit));
    !ids_only
        && git2::Config::open(&dir.join("config"))
            .and_then(|c| c.get_i64("sqlgit.format"))
            .is_ok()
}

/// Move a damaged `shallow` file of the repository at `dir` to [`DAMAGED_DIR`] (see
/// [`shallow_damaged`]); returns whether it did. The next walk of the history finds where it
/// ends again ([`cut_at_damaged_commit`]). Call with the lock held.
pub fn set_aside_shallow(dir: &Path) -> Result<bool> {
    if !shallow_damaged(dir) {
        return Ok(false);
    }
    let aside = damaged_dir(dir)?.join(format!("shallow-{}", std::process::id()));
    std::fs::rename(dir.join("shallow"), &aside)
        .with_context(|| format!("move {} aside", dir.join("shallow").display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_loose_object_is_whole_only_when_it_inflates_to_its_id() {
        let data = b"blob 5\0hello";
        let id = Oid::hash_object(git2::ObjectType::Blob, b"hello").unwrap();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(data).unwrap();
        let file = z.finish().unwrap();
        assert!(loose_object_is_whole(&file, id));
        let mut flipped = file.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x5a;
        assert!(!loose_object_is_whole(&flipped, id));
        assert!(!loose_object_is_whole(b"", id));
        let other = Oid::hash_object(git2::ObjectType::Blob, b"hellO").unwrap();
        assert!(!loose_object_is_whole(&file, other));
    }
}
