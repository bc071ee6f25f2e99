//! Pack indexes sqlgit does not read are rewritten by `git index-pack`: sqlgit reads version 2
//! indexes only (its own pack reader, the scrub's CRC check and pruning look into them
//! directly), while git also writes version 1 ones (`pack.indexVersion=1`, then `git repack` or
//! `git gc`). Left as they are, every later run would fail in the same place, forever.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::pack::{IDX_V2_MAGIC, TMP_PREFIX};

/// Write a version 2 index of the pack beside `idx` with `git index-pack` (which reads the
/// whole pack and checks every object) to a temporary file in its folder, and return that file.
pub(crate) fn index_pack(idx: &Path) -> Result<PathBuf> {
    let dir = idx.parent().context("no pack folder")?;
    let tmp = dir.join(format!("{TMP_PREFIX}{}_rebuilt.idx", std::process::id()));
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "pack.writeReverseIndex=false",
            "-c",
            "pack.indexVersion=2",
        ])
        .arg("index-pack")
        .arg("-o")
        .arg(&tmp)
        .arg(idx.with_extension("pack"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .context("run git index-pack")?;
    let _ = std::fs::remove_file(tmp.with_extension("rev")); // from a git that writes one anyway
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        let said = String::from_utf8_lossy(&out.stderr);
        bail!(
            "git index-pack: {}",
            said.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("failed")
        );
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    Ok(tmp)
}

/// Whether `idx` is an index of another version than 2 (a version 1 index has no magic).
fn is_old(idx: &Path) -> bool {
    let mut head = [0u8; 8];
    std::fs::File::open(idx)
        .and_then(|f| std::io::Read::read_exact(&mut &f, &mut head))
        .is_ok_and(|()| head != *IDX_V2_MAGIC)
}

/// Rewrite every pack index under `objects_dir` that is not version 2 (call with the lock
/// held); returns how many were. Each is replaced in one rename: a pack never lacks an index.
pub fn upgrade_old_indexes(objects_dir: &Path) -> Result<usize> {
    let Ok(listing) = std::fs::read_dir(objects_dir.join("pack")) else {
        return Ok(0);
    };
    let mut upgraded = 0;
    for entry in listing.flatten() {
        let idx = entry.path();
        if idx.extension().is_none_or(|e| e != "idx") || !is_old(&idx) {
            continue;
        }
        index_pack(&idx)
            .and_then(|tmp| {
                std::fs::rename(&tmp, &idx).with_context(|| format!("replace {}", idx.display()))
            })
            .map_err(|e| old_index(&idx).context(format!("{e:#}")))?;
        upgraded += 1;
    }
    Ok(upgraded)
}

/// The error for an index sqlgit does not read, with the command that rewrites it.
pub(crate) fn old_index(idx: &Path) -> anyhow::Error {
    // objects/pack/pack-….idx
    let repo = idx.ancestors().nth(3).unwrap_or(Path::new("."));
    anyhow::anyhow!(
        "{}: not a version 2 pack index (sqlgit reads only those): rewrite it with `git -C {} \
         -c pack.indexVersion=2 repack -a -d -f`",
        idx.display(),
        crate::shellword::path(repo)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `git -c pack.indexVersion=1 repack` writes indexes sqlgit cannot read: each is rewritten
    /// as version 2, once.
    #[test]
    fn a_version_1_index_is_rewritten_as_version_2() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(args)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        };
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let tree = repo.treebuilder(None).unwrap().write().unwrap();
        let tree = repo.find_tree(tree).unwrap();
        repo.commit(Some("refs/heads/main"), &sig, &sig, "m", &tree, &[])
            .unwrap();
        git(&["-c", "pack.indexVersion=1", "repack", "-a", "-d", "-q"]);
        let objects = dir.path().join("objects");
        let idx = std::fs::read_dir(objects.join("pack"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "idx"))
            .unwrap();
        assert!(is_old(&idx));
        assert!(super::super::pack::read_index(&idx).is_err());
        assert_eq!(upgrade_old_indexes(&objects).unwrap(), 1);
        assert!(!is_old(&idx));
        assert!(!super::super::pack::read_index(&idx).unwrap().is_empty());
        assert_eq!(upgrade_old_indexes(&objects).unwrap(), 0);
    }
}
