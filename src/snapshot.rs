//! Taking a snapshot: dump the database inside one read transaction straight into git objects
//! (no working tree, no temporary copy), then commit on `main` only if the tree changed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use git2::{Oid, Signature};

use crate::dump::incremental::{Previous, Reuse};
use crate::dump::{self, Filters, Summary, path::table_dir, source};
use crate::output::human_bytes;
use crate::progress::{Counted, Progress};
use crate::store::packread::PackReader;
use crate::store::previous::{self, PreviousSnapshot};
use crate::store::scrub::{Damage, Findings, Scrub};
use crate::store::writer::SnapshotWriter;
use crate::store::{BRANCH, Store};
use crate::when;

/// How much of each database a snapshot reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    /// Only what changed since the previous snapshot, where its page map allows.
    Incremental,
    /// Everything (`--full`).
    Full,
    /// Incremental, then everything in the same read transaction: the full read is committed,
    /// and the run fails when the two trees differ.
    Check,
}

pub struct Outcome {
    /// The new commit, or None when the database had not changed.
    pub commit: Option<Oid>,
    /// The newest snapshot after this run.
    pub head: Oid,
    pub summary: Summary,
    /// Bytes added to the repository.
    pub pack_bytes: u64,
    /// What was reused from the previous snapshot, all databases together.
    pub reuse: Reuse,
    /// Every database was read whole (no map, `--full`, or a check).
    pub read_whole: bool,
    /// A check found the incremental tree different from the full one (which was committed).
    pub mismatch: Option<String>,
    /// What the scrub of a run that read everything found and repaired.
    pub scrub: Findings,
    /// Rows of this snapshot that no restore can insert again (the run fails naming them).
    pub unrestorable: Vec<String>,
    /// Warning lines: what the run could not keep for the next one (a page map).
    pub warnings: Vec<String>,
}

/// The folder a database file's snapshots live in: its file name, made path-safe.
pub fn db_folder(db: &Path) -> String {
    let name = db
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "database".into());
    table_dir(&name)
}

/// The folders of the databases named (as settings hold them).
pub fn db_folders(dbs: &[String]) -> Vec<String> {
    dbs.iter().map(|db| db_folder(Path::new(db))).collect()
}

/// What becomes of the folders of databases the run was not given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Others {
    /// Kept as they are: a one-off run on other databases than the configured ones.
    Keep,
    /// Left out: a run of the configured list holds exactly its databases (one that was
    /// removed from the list must not stay, frozen, in every later snapshot).
    Drop,
}

/// [`dump::Guard`] of each database of a [`take`], given its index.
pub type Guards<'a> = &'a dyn Fn(usize, &rusqlite::Connection) -> Result<()>;

/// Snapshot `dbs` into `store` as one commit, each database in its own folder (the caller holds
/// the repository lock). Folders of other databases already in the tree are kept or dropped as
/// `others` says. A run that reads everything scrubs the packs first and repairs them after
/// (see [`crate::store::scrub`]). `guard`, given a database's index in `dbs`, runs inside its
/// dump's read transaction before anything is written (see [`dump::Guard`]).
pub fn take(
    store: &Store,
    dbs: &[PathBuf],
    busy_timeout: Duration,
    filters: &Filters,
    reading: Reading,
    others: Others,
    guard: Option<Guards>,
) -> Result<Outcome> {
    let mut folders: Vec<String> = dbs.iter().map(|db| db_folder(db)).collect();
    folders.sort();
    if let Some(pair) = folders.windows(2).find(|w| w[0] == w[1]) {
        bail!(
            "two databases would share the folder {:?}: give them different file names",
            pair[0]
        );
    }
    let scrub = match reading {
        Reading::Incremental => Scrub::default(),
        _ => Scrub::packs(&store.objects_dir()),
    };
    // An incremental read would read damaged objects: this run reads everything only.
    let reading = match reading {
        Reading::Check if !scrub.damage().packs.is_empty() => Reading::Full,
        reading => reading,
    };
    let moment = when::now();
    let format = dump::Format::for_snapshots()?;
    let parent = store.head()?;
    let mut tree = parent.as_ref().map(|c| c.tree_id());
    // A root tree that cannot be read would fail every run: one that reads everything writes
    // it anew (its damaged entry is left out by the scrub, and the repair removes it). Only a
    // run of the configured list may: a one-off run on other databases would drop the folders
    // of the databases it was not given, which it cannot read from that root to keep.
    let mut root_lost = None;
    if let Some(root) = tree
        && let Err(e) = previous::read_root(store, root)
    {
        if reading != Reading::Full || others == Others::Keep || crate::cause::descriptors_short() {
            return Err(e);
        }
        root_lost = Some(format!(
            "the latest snapshot's root tree {} could not be read: this snapshot's tree was \
             written anew from the databases",
            crate::store::short_id(root)
        ));
        drop(e);
        tree = None;
    }
    let mut summary = Summary::default();
    let mut pack_bytes = 0;
    let mut lines = Vec::new();
    let mut maps = Vec::new();
    let mut changed_maps: Vec<String> = Vec::new();
    let mut reuse = Reuse::default();
    let mut read_whole = true;
    let mut mismatch = None;
    let mut unrestorable = Vec::new();
    let mut converted: Vec<String> = root_lost.into_iter().collect();
    for (index, db) in dbs.iter().enumerate() {
        let folder = db_folder(db);
        let guard = guard.map(|g| move |conn: &rusqlite::Connection| g(index, conn));
        let previous = match reading {
            Reading::Full => None,
            _ => previous::load(store, &folder, parent.as_ref()),
        };
        read_whole &= previous.is_none() || reading == Reading::Check;
        let one = snapshot_one(
            store,
            db,
            &folder,
            busy_timeout,
            filters,
            format,
            tree,
            previous.as_ref(),
            reading,
            scrub.damage(),
            guard.as_ref().map(|g| g as dump::Guard),
        )?;
        if let Some(incremental) = one.mismatch {
            mismatch = Some(format!(
                "the incremental snapshot of {folder} (tree {incremental}) differs from a full read (tree {}, committed); run with --full and report this",
                one.root_tree
            ));
        }
        converted.extend(
            (one.snapshot.converted.iter()).map(|line| format!("database {folder}: {line}")),
        );
        unrestorable.extend(
            one.snapshot
                .unrestorable
                .iter()
                .map(|line| format!("database {folder}: {line}")),
        );
        tree = Some(one.root_tree);
        pack_bytes += one.pack_bytes;
        let s = one.snapshot.summary;
        summary.tables += s.tables;
        summary.rows += s.rows;
        summary.bytes += s.bytes;
        add_reuse(&mut reuse, &one.snapshot.reuse);
        lines.push((folder.clone(), s));
        // An unchanged run need not write a map identical to the one it read.
        if !one.snapshot.same_map || one.snapshot.checked {
            changed_maps.push(folder.clone());
        }
        maps.push((folder, one.snapshot.map));
    }
    store.repo.odb()?.refresh()?;
    let mut root = tree.context("no database to snapshot")?;
    if others == Others::Drop {
        root = only_folders(store, root, &folders)?;
    }
    if let Some(parent) = &parent
        && parent.tree_id() == root
    {
        maps.retain(|(folder, _)| changed_maps.contains(folder));
        let mut warnings = converted;
        warnings.extend(save_maps(store, &mut maps, parent.id()));
        return Ok(Outcome {
            commit: None,
            head: parent.id(),
            summary,
            pack_bytes,
            reuse,
            read_whole,
            mismatch,
            scrub: scrub.repair(store),
            unrestorable,
            warnings,
        });
    }
    // The maps describe the new commit only once it exists.
    for (folder, _) in &maps {
        previous::forget(store, folder);
    }
    let secs = moment
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let sig = Signature::new("sqlgit", "sqlgit@localhost", &git2::Time::new(secs, 0))?;
    let tree = store.repo.find_tree(root)?;
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let message = commit_message(&lines, &summary);
    let commit = store
        .repo
        .commit(Some(BRANCH), &sig, &sig, &message, &tree, &parents)
        .context("commit snapshot")?;
    store.note_format(format)?;
    let mut warnings = converted;
    warnings.extend(save_maps(store, &mut maps, commit));
    Ok(Outcome {
        commit: Some(commit),
        head: commit,
        summary,
        pack_bytes,
        reuse,
        read_whole,
        mismatch,
        scrub: scrub.repair(store),
        unrestorable,
        warnings,
    })
}

/// One database's part of a snapshot.
struct One {
    snapshot: dump::Snapshot,
    root_tree: Oid,
    pack_bytes: u64,
    /// A check's incremental read gave this tree, not the full read's.
    mismatch: Option<Oid>,
}

/// Dump `db` into a new root tree: `tree`'s other folders plus this database's folder. The
/// writers trust no entry `damage` lists: they store those objects again.
#[allow(clippy::too_many_arguments)]
fn snapshot_one(
    store: &Store,
    db: &Path,
    folder: &str,
    busy_timeout: Duration,
    filters: &Filters,
    format: dump::Format,
    tree: Option<Oid>,
    previous: Option<&PreviousSnapshot>,
    reading: Reading,
    damage: &Damage,
    guard: Option<dump::Guard>,
) -> Result<One> {
    let shown = db.display();
    let conn = source::open(db, busy_timeout).with_context(|| format!("database {shown}"))?;
    crate::failpoint::pause("snapshot-opened");
    let packs = match previous {
        Some(p) if damage.packs.is_empty() => p.packs().clone(),
        _ => Arc::new(PackReader::open(&store.objects_dir()).excluding(damage)),
    };
    let mut writer = SnapshotWriter::start(store.repo.path(), Some(packs.clone()));
    let mut check = (reading == Reading::Check && previous.is_some())
        .then(|| SnapshotWriter::start(store.repo.path(), Some(packs)));
    let meter = Progress::bytes(&format!("snapshot of {folder}"));
    let mut counted = Counted {
        inner: &mut writer,
        progress: &meter,
    };
    let snapshot = dump::dump_snapshot(
        &conn,
        &mut counted,
        filters,
        format,
        previous.map(|p| p as &dyn Previous),
        check.as_mut().map(|w| w as &mut dyn dump::Sink),
        guard,
    )
    .with_context(|| format!("database {shown} into repository {}", store.path.display()))?;
    drop(conn);
    // Asked of the moment the snapshot read, not of the file before it: a copy over the
    // database (`cp backup.db app.db`) truncates it between any check and the read.
    if snapshot.empty_file && had_tables(store, tree, folder) {
        bail!(
            "database {shown} is an empty file (0 bytes), but its last snapshot has tables: \
             refusing to record every table as deleted (a truncated or half-copied file?); the \
             next run after the application writes to it goes on"
        );
    }
    meter.finish();
    let in_repo = || format!("repository {}", store.path.display());
    let written = writer.finish(folder, tree).with_context(in_repo)?;
    let mut one = One {
        snapshot,
        root_tree: written.root_tree,
        pack_bytes: written.pack_bytes,
        mismatch: None,
    };
    if let Some(check) = check.filter(|_| one.snapshot.checked) {
        let full = check.finish(folder, tree).with_context(in_repo)?;
        one.mismatch = (full.root_tree != one.root_tree).then_some(one.root_tree);
        one.root_tree = full.root_tree;
        one.pack_bytes += full.pack_bytes;
    }
    Ok(one)
}

/// `root` without the top-level entries that are not one of `folders`.
fn only_folders(store: &Store, root: Oid, folders: &[String]) -> Result<Oid> {
    let tree = store.repo.find_tree(root)?;
    let extra: Vec<String> = tree
        .iter()
        .filter_map(|e| e.name().ok().map(str::to_string))
        .filter(|name| !folders.contains(name))
        .collect();
    if extra.is_empty() {
        return Ok(root);
    }
    let mut builder = store.repo.treebuilder(Some(&tree))?;
    for name in &extra {
        builder.remove(name)?;
        previous::forget(store, name);
    }
    builder.write().context("write the snapshot's tree")
}

/// Whether the snapshot tree `tree` holds tables of database `folder`.
fn had_tables(store: &Store, tree: Option<Oid>, folder: &str) -> bool {
    let repo = &store.repo;
    let tables = || -> Option<usize> {
        let root = repo.find_tree(tree?).ok()?;
        let db = repo.find_tree(root.get_name(folder)?.id()).ok()?;
        Some(repo.find_tree(db.get_name("1-tables")?.id()).ok()?.len())
    };
    tables().is_some_and(|n| n > 0)
}

fn add_reuse(total: &mut Reuse, r: &Reuse) {
    total.tables_reused += r.tables_reused;
    total.tables_partial += r.tables_partial;
    total.tables_read += r.tables_read;
    total.chunks_reused += r.chunks_reused;
    total.folders_reused += r.folders_reused;
    total.chunks_read += r.chunks_read;
    total.databases_unread += r.databases_unread;
}

/// Keep each database's page map for `commit`. A map that cannot be written only costs the
/// next run a full read (it finds no map, or one of another commit).
/// Save each database's page map for `commit`. A map that cannot be saved is removed (the
/// next run reads that database whole) and said in a warning line: the backup is whole, but
/// every run stays slow until the cause (a full disk, a read-only folder) is fixed.
fn save_maps(
    store: &Store,
    maps: &mut [(String, dump::pages::PageMap)],
    commit: Oid,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for (folder, map) in maps.iter_mut() {
        if let Err(e) = previous::save(store, folder, map, commit) {
            previous::forget(store, folder);
            warnings.push(format!(
                "save the page map of {folder}: {e:#}: the next run reads {folder} whole"
            ));
        }
    }
    warnings
}

fn commit_message(dbs: &[(String, Summary)], total: &Summary) -> String {
    let names: Vec<&str> = dbs.iter().map(|(f, _)| f.as_str()).collect();
    let mut msg = format!(
        "{}: {} tables, {} rows, {} of SQL\n\n",
        names.join(", "),
        total.tables,
        total.rows,
        human_bytes(total.bytes)
    );
    for (folder, s) in dbs {
        msg.push_str(&format!("Sqlgit-Database: {folder}\n"));
        if dbs.len() > 1 {
            msg.push_str(&format!(
                "Sqlgit-Database-Summary: {folder} {} tables, {} rows, {} bytes\n",
                s.tables, s.rows, s.bytes
            ));
        }
    }
    msg.push_str(&format!(
        "Sqlgit-Tables: {}\nSqlgit-Rows: {}\nSqlgit-Bytes: {}\n",
        total.tables, total.rows, total.bytes
    ));
    msg
}

pub use crate::dump::recorded::{recorded, trailer};

/// Make libgit2 fsync what it writes into the repository (refs, loose objects).
pub fn enable_fsync() {
    unsafe {
        libgit2_sys::git_libgit2_opts(libgit2_sys::GIT_OPT_ENABLE_FSYNC_GITDIR as _, 1);
    }
}
