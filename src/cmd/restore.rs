//! `sqlgit restore`: rebuild a database file from a snapshot, safely.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::restore::{build_database, db_tree, for_each_file, short};
use crate::store::Store;
use crate::when;

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Which snapshot (as for `sqlgit cat`). Default: the latest.
    pub when: Option<String>,
    /// The sqlgit repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
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

pub fn run(args: RestoreArgs) -> Result<ExitCode> {
    let target = &args.to;
    if target.exists() && !args.force {
        bail!("{} exists; use --force to replace it", target.display());
    }
    let store = Store::open_read(&args.repo)?;
    let commit = when::resolve(&store.repo, args.when.as_deref())?;
    let tree = db_tree(&store.repo, &commit, args.db.as_deref())?;
    let tmp = temp_path(target)?;
    remove_with_sidecars(&tmp)?;
    let built = build_database(&tmp, |exec| {
        for_each_file(&store.repo, &tree, |_, sql| exec(sql))
    })
    .with_context(|| {
        format!(
            "restore snapshot {} to {}",
            short(&commit),
            target.display()
        )
    });
    if let Err(e) = built {
        let _ = remove_with_sidecars(&tmp);
        return Err(e);
    }
    for suffix in ["-wal", "-shm", "-journal"] {
        remove_if_exists(&sidecar(target, suffix))?;
    }
    std::fs::rename(&tmp, target)
        .with_context(|| format!("move restored database into {}", target.display()))?;
    eprintln!(
        "restored snapshot {} to {}",
        short(&commit),
        target.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn temp_path(target: &Path) -> Result<PathBuf> {
    let name = target
        .file_name()
        .with_context(|| format!("{}: not a file name", target.display()))?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".sqlgit-restore-{}", std::process::id()));
    Ok(target.with_file_name(tmp))
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
