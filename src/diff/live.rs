//! `sqlgit diff WHEN --live DB`: the database as it is now, as the newer side of a diff, without
//! touching the sqlgit repository. The database is dumped (inside one read transaction, with the
//! repository's filters, in the format of the snapshot it is compared with, so unchanged chunks
//! have the same blob ids) into a private temporary bare repository that borrows the sqlgit
//! repository's objects through git's alternates: only the objects the repository lacks — the
//! changed chunks and the trees above them — are written, there. The diff then reads both sides
//! from that repository. Nothing in the sqlgit repository changes: no object, ref, lock, state or
//! metrics file; the temporary repository is deleted when the diff is done (also on error, or
//! when a signal stops it).
//! When the latest snapshot's page map is there, only the tables and key ranges whose pages
//! changed since that snapshot are read (see `crate::dump::incremental`).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use git2::{Oid, Repository, Tree};
use tempfile::TempDir;

use crate::dump::incremental::Previous;
use crate::dump::{self, Filters, Format, source};
use crate::progress::{Counted, Progress};
use crate::stop::Scratch;
use crate::store::writer::SnapshotWriter;

/// The live database's dump, in a temporary repository that also sees the sqlgit repository's
/// objects.
pub struct Live {
    /// Both sides' objects (the live dump's own, the snapshots' through alternates).
    pub repo: Repository,
    /// The live database's folder tree.
    pub db: Oid,
    /// Deleted when dropped (after `repo`, which is declared first).
    _dir: TempDir,
    /// Deleted also when the process is stopped by a signal.
    _remove: Scratch,
}

/// Dump the database at `path` as a snapshot would, for comparison with the snapshot folder
/// `against` of the repository whose objects are in `objects`; `guard` judges the filters
/// inside the dump's read transaction, as a snapshot's does.
#[allow(clippy::too_many_arguments)]
pub fn dump(
    objects: &Path,
    against: &Tree,
    against_repo: &Repository,
    path: &Path,
    filters: &Filters,
    busy_timeout: Duration,
    previous: Option<&dyn Previous>,
    guard: dump::Guard,
) -> Result<Live> {
    let format = match against.get_name("0-header.sql") {
        Some(e) => Format::of_header(against_repo.find_blob(e.id())?.content()),
        None => Format::CURRENT,
    };
    // Interrupted (Ctrl-C, a time limit), the temporary repository goes too.
    let (dir, remove) = crate::output::private_tempdir("live")
        .context("create a temporary directory (TMPDIR) for the live database's dump")?;
    let git_dir = dir.path().join("live.git");
    Repository::init_bare(&git_dir).with_context(|| {
        format!(
            "create a temporary repository in {} (TMPDIR: set it to a disk with room for the \
             database's dump)",
            dir.path().display()
        )
    })?;
    let info = git_dir.join("objects").join("info");
    std::fs::create_dir_all(&info)?;
    let objects = std::path::absolute(objects)?;
    // The path's bytes as they are (display() would turn non-UTF-8 bytes into U+FFFD).
    let line = [
        std::os::unix::ffi::OsStrExt::as_bytes(objects.as_os_str()),
        b"\n",
    ]
    .concat();
    std::fs::write(info.join("alternates"), line)
        .context("link the temporary repository to the snapshots")?;

    let shown = path.display();
    let conn = source::open(path, busy_timeout).with_context(|| format!("database {shown}"))?;
    let mut writer = SnapshotWriter::start(&git_dir, None);
    let meter = Progress::bytes(&format!("reading {shown}"));
    let mut counted = Counted {
        inner: &mut writer,
        progress: &meter,
    };
    // With the latest snapshot's page map, only what changed since it is read (the map itself
    // is left as it is: nothing in the repository changes).
    dump::dump_snapshot(
        &conn,
        &mut counted,
        filters,
        format,
        previous,
        None,
        Some(guard),
    )
    .with_context(|| format!("database {shown}"))?;
    drop(conn);
    meter.finish();
    let written = writer.finish("live", None).with_context(|| {
        format!(
            "write the live database's dump in {} (TMPDIR: set it to a disk with room for \
                 the database's dump)",
            dir.path().display()
        )
    })?;
    // Opened now, so that it sees the pack just written and the alternates.
    let repo = Repository::open_bare(&git_dir).context("open the temporary repository")?;
    let db = repo
        .find_tree(written.root_tree)?
        .get_name("live")
        .context("the live dump has no folder")?
        .id();
    Ok(Live {
        repo,
        db,
        _dir: dir,
        _remove: remove,
    })
}
