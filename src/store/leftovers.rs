//! Removes what killed runs left in `objects/pack` — sqlgit's and git's temporary files, a
//! killed fetch's `.keep` — and never what a command running now (another sqlgit, `git gc`,
//! `git maintenance`, a fetch) is writing: a file is only removed once the process its name or
//! text carries is gone, or, for git's unnamed ones, once an hour old.
//!
//! A pack without its index (an hour old) is indexed again with `git index-pack`: it is removed
//! only when every object in it is also stored elsewhere (a merge killed between its renames
//! leaves such a copy); one whose index was lost (a crash, damage) keeps its objects, which
//! older snapshots need. One that git cannot index (cut short, damaged) is set aside in
//! `sqlgit-damaged/` and the run fails saying so: snapshots may have lost objects with it.

use std::path::Path;

use anyhow::{Context, Result};

use super::pack::TMP_PREFIX;

/// What [`remove_leftovers`] did with packs that had lost their index.
#[derive(Debug, Default)]
pub struct Unindexed {
    /// Packs indexed again (their objects are stored nowhere else).
    pub warnings: Vec<String>,
    /// Packs that could not be indexed, or not set aside: a failure of the run.
    pub failures: Vec<String>,
}

/// A pack without its index this old is left over (see [`remove_leftovers`]); younger
/// ones may be a git command's that is about to write the index.
const UNINDEXED_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Remove what a killed run left in `objects/pack` (call with the lock held): sqlgit's temporary
/// files once the process whose id they carry is gone; git's (`tmp_pack_*`, `tmp_idx_*`, … of an
/// index-pack killed mid-fetch by the push timeout, which git itself only removes after two
/// weeks) and packs without an index (a pack is renamed into place before its index, and its
/// index removed before it), which git no longer sees, once they are an hour old — younger ones
/// may be a git command's that is running now (`git gc`, `git maintenance`) — when all their
/// objects are stored elsewhere, else they are indexed again (see [`lost_index`]); and the
/// `.keep` marks a fetch writes (`fetch-pack PID on HOST`; marks with other text are the user's
/// and stay) once that process is gone.
pub fn remove_leftovers(objects_dir: &Path) -> Unindexed {
    let mut unindexed_packs = Vec::new();
    if let Ok(dir) = std::fs::read_dir(objects_dir.join("pack")) {
        for entry in dir.flatten() {
            if left_over(&entry) {
                unindexed_packs.push(entry.path());
            }
        }
    }
    let mut found = Unindexed::default();
    for pack in unindexed_packs {
        lost_index(objects_dir, &pack, &mut found);
    }
    found
}

/// Remove `entry` when it is a temporary file left over; true for a pack without its index,
/// which is left to [`lost_index`].
fn left_over(entry: &std::fs::DirEntry) -> bool {
    let name = entry.file_name().to_string_lossy().into_owned();
    let path = entry.path();
    let old = || {
        entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > UNINDEXED_AGE))
    };
    let unindexed = || {
        name.starts_with("pack-")
            && name.ends_with(".pack")
            && !path.with_extension("idx").exists()
            && old()
    };
    let git_tmp = || {
        ["tmp_pack_", "tmp_idx_", "tmp_rev_", "tmp_mtimes_"]
            .iter()
            .any(|p| name.starts_with(p))
            && old()
    };
    // `tmp_sqlgit_PID_…`
    let own_tmp = || {
        name.strip_prefix(TMP_PREFIX).is_some_and(|rest| {
            super::left_by_dead_process(rest.split(['_', '.']).next().unwrap_or_default())
        })
    };
    // `index-pack --keep` marks a fetched pack until the fetch has updated its refs; one
    // killed in between leaves the mark, and a kept pack is never merged again.
    let fetch_keep = || {
        name.ends_with(".keep")
            && std::fs::read(&path).is_ok_and(|text| {
                let text = String::from_utf8_lossy(&text);
                let mut words = text.split_whitespace();
                matches!(words.next(), Some("fetch-pack" | "receive-pack"))
                    && super::left_by_dead_process(words.next().unwrap_or_default())
            })
    };
    if unindexed() {
        return true;
    }
    if own_tmp() || git_tmp() || fetch_keep() {
        let _ = std::fs::remove_file(&path);
    }
    false
}

/// A pack whose index is gone: indexed again by `git index-pack` (which reads and checks every
/// object) and kept when it holds an object stored nowhere else, removed when it does not (a
/// merge's copy); set aside in `sqlgit-damaged/`, failing the run, when git cannot index it.
/// One that cannot be read at all (a permission) is left as it is, failing the run.
fn lost_index(objects_dir: &Path, pack: &Path, found: &mut Unindexed) {
    let idx = pack.with_extension("idx");
    let shown = pack.display();
    if let Err(e) = std::fs::File::open(pack) {
        found.failures.push(format!(
            "{shown} has no index and cannot be read ({e}): its objects are not seen"
        ));
        return;
    }
    match super::reindex::index_pack(&idx) {
        Ok(tmp) => match only_copies(objects_dir, &tmp) {
            Ok(true) => {
                let _ = std::fs::remove_file(&tmp);
                let _ = std::fs::remove_file(pack);
            }
            _ => match std::fs::rename(&tmp, &idx) {
                Ok(()) => found.warnings.push(format!(
                    "{shown} had lost its index (a crash?): indexed it again (git index-pack); \
                     its objects are kept"
                )),
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    found.failures.push(format!(
                        "{shown} has no index: write {}: {e}",
                        idx.display()
                    ));
                }
            },
        },
        // git could not be started: nothing was learned about the pack.
        Err(e) if e.root_cause().is::<std::io::Error>() => found
            .failures
            .push(format!("{shown} has no index: {:#}", e)),
        Err(e) => found.failures.push(set_aside(objects_dir, pack, &e)),
    }
}

/// Whether every object the index `idx` lists is also stored elsewhere in `objects_dir`.
fn only_copies(objects_dir: &Path, idx: &Path) -> Result<bool> {
    let odb = git2::Odb::new()?;
    odb.add_disk_alternate(&objects_dir.to_string_lossy())?;
    for id in super::pack::index_ids(idx)? {
        if !odb.exists(id?) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Move `pack`, which git cannot index, to `sqlgit-damaged/`; the failure line saying so.
fn set_aside(objects_dir: &Path, pack: &Path, why: &anyhow::Error) -> String {
    let repo = objects_dir.parent().unwrap_or(objects_dir);
    let name = pack.file_name().unwrap_or_default().to_string_lossy();
    let moved = super::headrepair::damaged_dir(repo).and_then(|dir| {
        let aside = dir.join(format!("{name}-{}", std::process::id()));
        std::fs::rename(pack, &aside)
            .with_context(|| format!("move it to {}", aside.display()))
            .map(|()| aside)
    });
    let repair = format!(
        "a run that reads everything (`sqlgit snapshot --repo {} --full`) stores again what the \
         databases still hold; `sqlgit verify --repo {} WHEN` tells whether an older snapshot \
         still restores",
        crate::shellword::repo(repo),
        crate::shellword::repo(repo)
    );
    match moved {
        Ok(aside) => format!(
            "{} had no index and git cannot index it ({why:#}): set aside as {}; snapshots \
             that used objects stored only in it can no longer be restored from this \
             repository; {repair}",
            pack.display(),
            aside.display()
        ),
        Err(e) => format!(
            "{} has no index and git cannot index it ({why:#}); {e:#}",
            pack.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;
    use crate::store::pack::tests::names;

    /// A fetch killed by the push timeout leaves index-pack's temporary files (git removes
    /// them only after two weeks): the next run removes them once an hour old, and nothing else.
    #[test]
    fn a_killed_fetchs_temporary_pack_is_removed() {
        let objects = tempfile::tempdir().unwrap();
        let pack = objects.path().join("pack");
        std::fs::create_dir(&pack).unwrap();
        let hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        for name in [
            "tmp_pack_AbC123",
            "tmp_idx_AbC123",
            "pack-1.pack",
            "pack-1.idx",
            "pack-2.pack",
            "pack-2.idx",
            "pack-3.pack",
            "pack-3.idx",
        ] {
            let file = File::create(pack.join(name)).unwrap();
            file.set_modified(hours_ago).unwrap();
        }
        // Beyond any pid_max: no such process.
        std::fs::write(pack.join("pack-2.keep"), b"fetch-pack 999999999 on host\n").unwrap();
        std::fs::write(pack.join("pack-3.keep"), b"kept by hand\n").unwrap();
        remove_leftovers(objects.path());
        assert_eq!(
            names(&pack),
            [
                "pack-1.idx",
                "pack-1.pack",
                "pack-2.idx",
                "pack-2.pack",
                "pack-3.idx",
                "pack-3.keep",
                "pack-3.pack"
            ]
        );
    }

    /// A git command running now (`git gc`, `git maintenance`, a fetch) writes its pack as
    /// `tmp_pack_*` and marks it with a `.keep`: a run must leave them alone, and another
    /// running sqlgit's temporary files too; a dead sqlgit's go.
    #[test]
    fn a_running_commands_temporary_files_stay() {
        let objects = tempfile::tempdir().unwrap();
        let pack = objects.path().join("pack");
        std::fs::create_dir(&pack).unwrap();
        let me = std::process::id();
        for name in [
            "tmp_pack_Young1".to_string(),
            "tmp_idx_Young1".to_string(),
            format!("{TMP_PREFIX}{me}_0_pack"),
            format!("{TMP_PREFIX}999999999_0_pack"),
            format!("{TMP_PREFIX}999999999_rebuilt.idx"),
            "pack-4.pack".to_string(),
            "pack-4.idx".to_string(),
        ] {
            std::fs::write(pack.join(name), b"x").unwrap();
        }
        std::fs::write(
            pack.join("pack-4.keep"),
            format!("fetch-pack {me} on host\n"),
        )
        .unwrap();
        remove_leftovers(objects.path());
        let mut want = vec![
            "pack-4.idx".to_string(),
            "pack-4.keep".to_string(),
            "pack-4.pack".to_string(),
            "tmp_idx_Young1".to_string(),
            "tmp_pack_Young1".to_string(),
            format!("{TMP_PREFIX}{me}_0_pack"),
        ];
        want.sort();
        assert_eq!(names(&pack), want);
    }
}
