//! Taking a snapshot: dump the database inside one read transaction straight into git objects
//! (no working tree, no temporary copy), then commit on `main` only if the tree changed.

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use git2::{Oid, Signature};

use crate::dump::{self, Filters, Summary, path::table_dir, source};
use crate::output::human_bytes;
use crate::progress::{Counted, Progress};
use crate::store::writer::SnapshotWriter;
use crate::store::{BRANCH, Store};
use crate::when;

pub struct Outcome {
    /// The new commit, or None when the database had not changed.
    pub commit: Option<Oid>,
    /// The newest snapshot after this run.
    pub head: Oid,
    pub summary: Summary,
    /// Bytes added to the repository.
    pub pack_bytes: u64,
}

/// The folder a database file's snapshots live in: its file name, made path-safe.
pub fn db_folder(db: &Path) -> String {
    let name = db
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "database".into());
    table_dir(&name)
}

/// Snapshot `dbs` into `store` as one commit, each database in its own folder (the caller holds
/// the repository lock). Folders of other databases already in the tree are kept.
pub fn take(
    store: &Store,
    dbs: &[PathBuf],
    busy_timeout: Duration,
    filters: &Filters,
) -> Result<Outcome> {
    let mut folders: Vec<String> = dbs.iter().map(|db| db_folder(db)).collect();
    folders.sort();
    if let Some(pair) = folders.windows(2).find(|w| w[0] == w[1]) {
        bail!(
            "two databases would share the folder {:?}: give them different file names",
            pair[0]
        );
    }
    let moment = when::now();
    let format = dump::Format::for_snapshots();
    let parent = store.head()?;
    let mut tree = parent.as_ref().map(|c| c.tree_id());
    let mut summary = Summary::default();
    let mut pack_bytes = 0;
    let mut lines = Vec::new();
    for db in dbs {
        let shown = db.display();
        let folder = db_folder(db);
        let conn = source::open(db, busy_timeout).with_context(|| format!("database {shown}"))?;
        let mut writer = SnapshotWriter::start(store.repo.path());
        let meter = Progress::bytes(&format!("snapshot of {folder}"));
        let mut counted = Counted {
            inner: &mut writer,
            progress: &meter,
        };
        let s = dump::dump_as(&conn, &mut counted, filters, format).with_context(|| {
            format!("database {shown} into repository {}", store.path.display())
        })?;
        drop(conn);
        meter.finish();
        let written = writer
            .finish(&folder, tree)
            .with_context(|| format!("repository {}", store.path.display()))?;
        tree = Some(written.root_tree);
        pack_bytes += written.pack_bytes;
        summary.tables += s.tables;
        summary.rows += s.rows;
        summary.bytes += s.bytes;
        lines.push((folder, s));
    }
    store.repo.odb()?.refresh()?;
    let root = tree.context("no database to snapshot")?;
    if let Some(parent) = &parent
        && parent.tree_id() == root
    {
        return Ok(Outcome {
            commit: None,
            head: parent.id(),
            summary,
            pack_bytes,
        });
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
    Ok(Outcome {
        commit: Some(commit),
        head: commit,
        summary,
        pack_bytes,
    })
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

/// Make libgit2 fsync what it writes into the repository (refs, loose objects).
pub fn enable_fsync() {
    unsafe {
        libgit2_sys::git_libgit2_opts(libgit2_sys::GIT_OPT_ENABLE_FSYNC_GITDIR as _, 1);
    }
}
