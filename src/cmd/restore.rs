//! `sqlgit restore`: rebuild a database file from a snapshot, safely.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::error::Exit;

use crate::restore::{build_database, db_tree, for_each_file, short};
use crate::store::Store;
use crate::when;

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Which snapshot (as for `sqlgit cat`). Default: the latest.
    pub when: Option<String>,
    /// The sqlgit repository.
    #[arg(long, value_name = "DIR", required_unless_present = "from_file")]
    pub repo: Option<PathBuf>,
    /// Restore from an SQL file instead (`sqlgit dump`/`cat -o` output, plain or .gz).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["repo", "when", "db"])]
    pub from_file: Option<PathBuf>,
    /// The database file to create.
    #[arg(long, value_name = "NEW_DB")]
    pub to: PathBuf,
    /// Replace NEW_DB if it exists (its -wal/-shm files are removed too).
    #[arg(long)]
    pub force: bool,
    /// The database's folder, when the repository holds several.
    #[arg(long, value_name = "NAME")]
    pub db: Option<String>,
}

pub fn run(args: RestoreArgs) -> Result<Exit> {
    let target = &args.to;
    if target.exists() && !args.force {
        bail!("{} exists; use --force to replace it", target.display());
    }
    let tmp = temp_path(target)?;
    remove_with_sidecars(&tmp)?;
    let (built, what) = match (&args.from_file, &args.repo) {
        (Some(file), _) => (
            build_database(&tmp, |exec| feed_file(file, exec)),
            file.display().to_string(),
        ),
        (None, Some(repo)) => {
            let store = Store::open_read(repo)?;
            let commit = when::resolve(&store.repo, args.when.as_deref())?;
            let tree = db_tree(&store.repo, &commit, args.db.as_deref())?;
            let built = build_database(&tmp, |exec| {
                for_each_file(&store.repo, &tree, |_, sql| exec(sql))
            });
            (built, format!("snapshot {}", short(&commit)))
        }
        (None, None) => bail!("give --repo DIR or --from-file FILE"),
    };
    if let Err(e) = built {
        let _ = remove_with_sidecars(&tmp);
        return Err(e.context(format!("restore {what} to {}", target.display())));
    }
    for suffix in ["-wal", "-shm", "-journal"] {
        remove_if_exists(&sidecar(target, suffix))?;
    }
    std::fs::rename(&tmp, target)
        .with_context(|| format!("move restored database into {}", target.display()))?;
    say!("restored {what} to {}", target.display());
    Ok(Exit::Success)
}

fn temp_path(target: &Path) -> Result<PathBuf> {
    crate::output::temp_beside(target, "sqlgit-restore-")
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

fn remove_with_sidecars(path: &Path) -> Result<()> {
    remove_if_exists(path)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        remove_if_exists(&sidecar(path, suffix))?;
    }
    Ok(())
}

/// Feed an SQL file (plain or gzip) statement by statement: memory stays bounded.
fn feed_file(path: &Path, exec: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
    use std::io::{BufRead, BufReader};
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    // Peek at the magic bytes without consuming them: the file may be a pipe.
    let mut buffered = BufReader::with_capacity(1 << 16, file);
    let gz = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn BufRead> = if gz {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(buffered)))
    } else {
        Box::new(buffered)
    };
    let mut statement = Vec::new();
    for line in reader.split(b'\n') {
        statement.extend_from_slice(&line.with_context(|| format!("read {}", path.display()))?);
        statement.push(b'\n');
        if complete(&statement) {
            exec(&statement)?;
            statement.clear();
        }
    }
    if statement.iter().any(|b| !b.is_ascii_whitespace()) {
        bail!(
            "{} ends inside an SQL statement (truncated?)",
            path.display()
        );
    }
    Ok(())
}

/// Whether `sql` ends with a complete statement (sqlite3_complete).
fn complete(sql: &[u8]) -> bool {
    let Ok(c) = std::ffi::CString::new(sql.to_vec()) else {
        return false; // a NUL byte inside: keep reading
    };
    unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) != 0 }
}
