//! What `-o FILE` must never replace: `dump -o` and `cat -o` write SQL text by renaming a new
//! file over the old one, so a typo naming a database (the one being dumped, or any other), a
//! database's `-wal`, `-shm` or `-journal` file, or a file of the sqlgit repository would
//! destroy it, and leave an application that has it open writing to a deleted file.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";
use super::{SIDE_FILES, side_file};

/// Refuse `target` as an output file when it is, or belongs to, one of `protected` (a database
/// read, a repository folder), or is a SQLite database or one's side file.
pub fn refuse_target(target: &Path, protected: &[&Path]) -> Result<()> {
    let meta = std::fs::metadata(target).ok();
    if meta.as_ref().is_some_and(|m| !m.is_file()) {
        return Ok(()); // written in place (/dev/null, a FIFO), or refused when created
    }
    let shown = target.display();
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let named = canonical_name(target);
    for p in protected {
        if p.is_dir() {
            let (Some(dir), Ok(repo)) = (named.as_ref(), p.canonicalize()) else {
                continue;
            };
            if dir.starts_with(&repo) {
                bail!(
                    "-o {shown}: inside the repository {}: give a file outside it",
                    p.display()
                );
            }
            continue;
        }
        let is_source = meta.is_some() && id(target) == id(p);
        let sidecar = SIDE_FILES.iter().any(|s| {
            let side = side_file(p, s);
            named.is_some() && canonical_name(&side) == named
        });
        if is_source || sidecar {
            bail!(
                "-o {shown}: that is the database {} being read (or its side file): give \
                 another file",
                p.display()
            );
        }
    }
    if meta.is_some() && starts_with_sqlite_header(target) {
        bail!(
            "-o {shown}: a SQLite database, which SQL text would replace: give another file \
             (to restore a database, use sqlgit restore --to)"
        );
    }
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned());
    for s in SIDE_FILES {
        if let Some(base) = name.as_deref().and_then(|n| n.strip_suffix(s))
            && starts_with_sqlite_header(&target.with_file_name(base))
        {
            bail!("-o {shown}: the {s} file of the SQLite database {base}: give another file");
        }
    }
    Ok(())
}

/// `path` with its folder resolved (symlinks, `..`), the file name as given; None when the
/// folder does not exist.
fn canonical_name(path: &Path) -> Option<PathBuf> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new(".")).canonicalize().ok()?;
    Some(dir.join(path.file_name()?))
}

fn starts_with_sqlite_header(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == SQLITE_HEADER)
}
