//! The git repository that holds the snapshots: a bare repository that sqlgit created (marked
//! with `sqlgit.format` in its config, so sqlgit never commits onto someone else's branch), with
//! the snapshots on `refs/heads/main`.

pub mod lock;
pub mod pack;
pub mod prune;
pub mod tree;
pub mod writer;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use git2::{Commit, Repository, RepositoryInitOptions, RepositoryOpenFlags};

/// The branch snapshots are committed to.
pub const BRANCH: &str = "refs/heads/main";
const FORMAT_KEY: &str = "sqlgit.format";

pub struct Store {
    pub repo: Repository,
    pub path: PathBuf,
}

impl Store {
    /// Open an existing sqlgit repository, for any command.
    pub fn open(dir: &Path) -> Result<Store> {
        Store::open_checked(dir, true)
    }

    /// Open a repository to read snapshots from: also a plain clone of a history remote.
    pub fn open_read(dir: &Path) -> Result<Store> {
        Store::open_checked(dir, false)
    }

    fn open_checked(dir: &Path, need_marker: bool) -> Result<Store> {
        let shown = dir.display();
        match std::fs::metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("repository {shown}: does not exist (sqlgit snapshot creates it)")
            }
            Err(e) => return Err(e).with_context(|| format!("repository {shown}")),
            Ok(m) if !m.is_dir() => bail!("repository {shown}: not a directory"),
            Ok(_) => {}
        }
        let repo = Repository::open_ext(dir, RepositoryOpenFlags::NO_SEARCH, &[] as &[&str])
            .map_err(|e| {
                anyhow::anyhow!("repository {shown}: not a git repository ({})", e.message())
            })?;
        let format = repo.config()?.get_i64(FORMAT_KEY).ok();
        if format.is_none() && need_marker {
            bail!(
                "repository {shown}: a git repository that sqlgit did not create; refusing to use it"
            );
        }
        Ok(Store {
            repo,
            path: dir.to_path_buf(),
        })
    }

    /// Open the repository, creating it (bare, private) when `dir` is missing or empty.
    pub fn open_or_create(dir: &Path) -> Result<Store> {
        let shown = dir.display();
        let empty_dir = match std::fs::metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(e).with_context(|| format!("repository {shown}")),
            Ok(m) if !m.is_dir() => bail!("repository {shown}: not a directory"),
            Ok(_) => std::fs::read_dir(dir)?.next().is_none(),
        };
        if !empty_dir {
            return Store::open(dir);
        }
        let mut opts = RepositoryInitOptions::new();
        opts.bare(true).mkpath(true).initial_head("main");
        let repo = Repository::init_opts(dir, &opts)
            .with_context(|| format!("create repository {shown}"))?;
        let mut config = repo.config()?;
        config.set_str("core.logAllRefUpdates", "false")?;
        config.set_i64("gc.auto", 0)?;
        // Written last: a repository is sqlgit's once this is there.
        config.set_i64(FORMAT_KEY, 1)?;
        Ok(Store {
            repo,
            path: dir.to_path_buf(),
        })
    }

    /// The newest snapshot, if any.
    pub fn head(&self) -> Result<Option<Commit<'_>>> {
        match self.repo.find_reference(BRANCH) {
            Ok(r) => Ok(Some(r.peel_to_commit()?)),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A `sqlgit.*` setting from the repository's config.
    pub fn setting(&self, key: &str) -> Option<String> {
        self.repo
            .config()
            .ok()?
            .get_string(&format!("sqlgit.{key}"))
            .ok()
    }

    /// Remember a `sqlgit.*` setting in the repository's config.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.repo
            .config()?
            .set_str(&format!("sqlgit.{key}"), value)
            .with_context(|| format!("save setting {key}"))
    }

    /// The objects directory (bare repository layout).
    pub fn objects_dir(&self) -> PathBuf {
        self.repo.path().join("objects")
    }
}
