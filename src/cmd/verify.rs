//! `sqlgit verify`: a restore drill. Every object of the snapshot is read and its hash checked,
//! the snapshot is restored into a temporary database that must pass `PRAGMA integrity_check`,
//! and dumping that database must give back exactly the snapshot's SQL.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::error::Exit;
use git2::{ObjectType, TreeWalkMode, TreeWalkResult};
use sha1::{Digest, Sha1};

use crate::dump::{self, Filters, Sink, source};
use crate::restore::{build_database, db_tree, for_each_file, short};
use crate::store::Store;
use crate::store::pack::{Kind, object_id};
use crate::when;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Which snapshot (as for `sqlgit cat`). Default: the latest.
    pub when: Option<String>,
    /// The sqlgit repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// The database's folder, when the repository holds several (default: all).
    #[arg(long, value_name = "NAME")]
    pub db: Option<String>,
}

struct Hashing(Sha1);

impl Sink for Hashing {
    fn file(&mut self, _path: &[&str], data: Vec<u8>) -> Result<()> {
        self.0.update(&data);
        Ok(())
    }
}

pub fn run(args: VerifyArgs) -> Result<Exit> {
    let store = Store::open_read(&args.repo)?;
    let repo = &store.repo;
    let commit = when::resolve(repo, args.when.as_deref())?;
    let id = short(&commit);
    // 1. Every object present and intact.
    let mut objects = 0usize;
    let mut problem: Option<String> = None;
    let odb = repo.odb()?;
    commit
        .tree()?
        .walk(TreeWalkMode::PreOrder, |dir, entry| {
            let name = format!("{dir}{}", entry.name().unwrap_or_default());
            let checked = odb
                .read(entry.id())
                .map_err(|e| e.message().to_string())
                .and_then(|obj| {
                    let kind = match obj.kind() {
                        ObjectType::Blob => Kind::Blob,
                        ObjectType::Tree => Kind::Tree,
                        _ => return Err("unexpected object type".to_string()),
                    };
                    if object_id(kind, obj.data()) != entry.id() {
                        return Err("content does not match its id (corrupt)".to_string());
                    }
                    Ok(())
                });
            match checked {
                Ok(()) => {
                    objects += 1;
                    TreeWalkResult::Ok
                }
                Err(e) => {
                    problem = Some(format!("{name}: {e}"));
                    TreeWalkResult::Abort
                }
            }
        })
        .or_else(|e| if problem.is_some() { Ok(()) } else { Err(e) })?;
    if let Some(p) = problem {
        bail!("snapshot {id} is damaged: {p}");
    }
    // 2. Restore each database and compare its dump with the snapshot.
    let folders: Vec<String> = match &args.db {
        Some(db) => vec![db.clone()],
        None => commit
            .tree()?
            .iter()
            .filter(|e| e.kind() == Some(ObjectType::Tree))
            .filter_map(|e| e.name().ok().map(str::to_string))
            .collect(),
    };
    let scratch = tempfile::tempdir().context("create a temporary directory")?;
    for folder in &folders {
        let tree = db_tree(repo, &commit, Some(folder))?;
        let restored = scratch.path().join(format!("{}.db", folders.len()));
        let mut expected = Sha1::new();
        build_database(&restored, |exec| {
            for_each_file(repo, &tree, |_, sql| {
                expected.update(sql);
                exec(sql)
            })
        })
        .with_context(|| format!("snapshot {id}, database {folder}: restore failed"))?;
        let conn = source::open(&restored, std::time::Duration::from_secs(5))?;
        let mut actual = Hashing(Sha1::new());
        dump::dump(&conn, &mut actual, &Filters::default())?;
        if actual.0.finalize() != expected.finalize() {
            bail!(
                "snapshot {id}, database {folder}: the restored database does not dump back to the snapshot"
            );
        }
        let _ = std::fs::remove_file(&restored);
    }
    say!(
        "snapshot {id} verified: {objects} objects intact, {} database{} restored and checked",
        folders.len(),
        if folders.len() == 1 { "" } else { "s" }
    );
    Ok(Exit::Success)
}
