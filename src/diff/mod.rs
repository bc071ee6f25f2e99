//! Data diffs between two snapshots: what changed in rows and schema, read from the repository.
//!
//! A snapshot stores a database as files whose blob ids stay the same while their content does
//! (see [`crate::dump`]), so comparing two snapshots is mostly comparing ids: [`plan`] finds the
//! table folders, index, view, trigger and header files that differ, [`chunks`] narrows a
//! changed table to the row chunks only one side has, and only those are read ([`rows`]) and
//! matched by key ([`shape`], [`matching`]). The cost follows the size of the change, not of
//! the database. The outputs: [`render`] for people, [`report`] for `--summary` and `--json`,
//! [`patch`] for `--sql`. With `--live` ([`live`]), the newer side is a database as it is now,
//! dumped into a temporary repository that shares the snapshots' objects.

pub mod chunks;
pub mod followed;
pub mod header;
pub mod history;
pub mod keymatch;
pub mod keyvalue;
pub mod live;
pub mod matching;
pub mod pairing;
pub mod patch;
pub mod plan;
pub mod render;
pub mod report;
pub mod rows;
pub mod shadows;
pub mod shape;
pub mod show;
pub mod sqltext;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use git2::Repository;

use crate::job::filtercheck::{FilterCheck, Purpose};
use crate::restore::db_tree;
use crate::settings::Settings;
use crate::store::Store;
use crate::timeline::Timeline;
use crate::when;
use plan::Point;

/// What to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Rows and schema diffs, for people.
    Rows {
        color: bool,
    },
    Summary,
    Json,
    Sql,
}

/// One `sqlgit diff`.
pub struct Request<'a> {
    pub repo: &'a Path,
    pub db: Option<&'a str>,
    /// WHEN expressions (see [`crate::when`]); `to` None is the latest snapshot (with `live`:
    /// always None).
    pub from: &'a str,
    pub to: Option<&'a str>,
    /// `--live`: compare `from` with this database as it is now, instead of a snapshot.
    pub live: Option<LiveDb<'a>>,
    /// `--table` names; empty for all.
    pub tables: &'a [String],
    pub format: Format,
}

/// The database `diff --live` reads.
pub struct LiveDb<'a> {
    pub path: &'a Path,
    /// How long to wait for its writers' locks.
    pub busy_timeout: Duration,
}

/// Write the diff to `out`; returns whether the two sides differ (nothing is written when they
/// do not), and warnings for the caller to show.
pub fn diff(req: &Request, out: &mut dyn Write) -> Result<(bool, Vec<String>)> {
    crate::failpoint::panic_at("diff");
    if let Some(live) = &req.live {
        return diff_live(req, live, out);
    }
    // Points pruned locally come from the history remote (see `crate::timeline`).
    let mut timeline = Timeline::open(req.repo)?;
    let from = timeline.resolve(Some(req.from))?;
    let to = timeline.resolve(req.to)?;
    let repo = timeline.repo();
    let (from, to) = (repo.find_commit(from)?, repo.find_commit(to)?);
    // One database at both points, by its folder's name: never each snapshot's only one.
    let folder = crate::restore::same_db_folder(&[&to, &from], req.db)?;
    let from_db = db_tree(repo, &from, Some(&folder))?;
    let to_db = db_tree(repo, &to, Some(&folder))?;
    let from = plan::Side {
        point: Point::Snapshot(from),
        db: from_db,
    };
    let to = plan::Side {
        point: Point::Snapshot(to),
        db: to_db,
    };
    compare(repo, from, to, req, out)
}

/// `--live`: a local snapshot against the database as it is now.
fn diff_live(req: &Request, live: &LiveDb, out: &mut dyn Write) -> Result<(bool, Vec<String>)> {
    let store = Store::open_read(req.repo)?;
    let repo = &store.repo;
    // A latest snapshot that cannot be read: said with the command that repairs it.
    store.head()?;
    let from = when::resolve_local(repo, Some(req.from)).context("diff --live")?;
    let settings = Settings::load(&store);
    let head = store.head()?;
    // Without --db, a repository of several databases compares the one named like the file,
    // and only that one: a snapshot without it is an error, not another database's data.
    // A configured database (also through a symlink) is compared with its own folder only.
    let own = crate::restore::live_folder(&from, &settings.dbs, live.path, req.db)
        .context("diff --live")?;
    let named = live.path.file_name().map(|n| n.to_string_lossy());
    let several = settings.dbs.len() > 1 || head.as_ref().is_some_and(|h| folders(h) > 1);
    let db = match (own.as_deref(), &named) {
        (Some(db), _) => Some(db),
        (None, Some(name)) if several || db_tree(repo, &from, Some(name)).is_ok() => {
            Some(name.as_ref())
        }
        (None, _) => None,
    };
    let from_db = db_tree(repo, &from, db).with_context(|| match (own.is_some(), several) {
        (false, true) => "diff --live: the repository holds several databases, so the file \
                         is compared with the one of its name (choose another with --db)"
            .to_string(),
        _ => "diff --live".to_string(),
    })?;
    let filters = settings.filters();
    let folder = crate::restore::db_folder(&from, db)?;
    let previous = crate::store::previous::load(&store, &folder, head.as_ref());
    // The repository's filters judged as a snapshot's run judges them: the other databases
    // first, this one inside the dump's read transaction.
    let check = FilterCheck::new(&filters, Purpose::Live);
    for other in settings.dbs.iter().map(Path::new) {
        let other_folder = crate::snapshot::db_folder(other);
        if other_folder != folder {
            check.add(other, other_folder, true);
        }
    }
    let index = check.add(live.path, folder.clone(), false);
    let judge = |conn: &rusqlite::Connection| check.in_transaction(&store, index, conn);
    let dumped = live::dump(
        &store.objects_dir(),
        &from_db,
        repo,
        live.path,
        &filters,
        live.busy_timeout,
        previous
            .as_ref()
            .map(|p| p as &dyn crate::dump::incremental::Previous),
        &judge,
    )?;
    let repo = &dumped.repo;
    let from = plan::Side {
        point: Point::Snapshot(repo.find_commit(from.id())?),
        db: repo.find_tree(from_db.id())?,
    };
    let to = plan::Side {
        point: Point::Live(live.path.display().to_string()),
        db: repo.find_tree(dumped.db)?,
    };
    compare(repo, from, to, req, out)
}

/// The number of database folders in a snapshot.
fn folders(commit: &git2::Commit) -> usize {
    commit.tree().map_or(0, |t| {
        t.iter()
            .filter(|e| e.kind() == Some(git2::ObjectType::Tree))
            .count()
    })
}

/// Diff two sides read from `repo`.
fn compare<'r>(
    repo: &'r Repository,
    from: plan::Side<'r>,
    to: plan::Side<'r>,
    req: &Request,
    out: &mut dyn Write,
) -> Result<(bool, Vec<String>)> {
    let plan = plan::build(repo, from, to, req.tables)?;
    if req.format == Format::Sql {
        if plan.tables.is_empty() && !report::other_changes(&plan) {
            return Ok((false, Vec::new()));
        }
        let (warnings, changes) = patch::write(&plan, out)?;
        return Ok((changes, warnings));
    }
    let reports = report::count(&plan)?;
    let differ = !reports.is_empty() || report::other_changes(&plan);
    if req.format == Format::Json {
        // Scripts parse the object whatever the answer: no differences is `"tables": []`.
        report::json(&plan, &reports, out)?;
        return Ok((differ, Vec::new()));
    }
    if !differ {
        return Ok((false, Vec::new()));
    }
    match req.format {
        Format::Rows { color } => render::render(&plan, &reports, color, out)?,
        Format::Summary => report::summary(&plan, &reports, out)?,
        Format::Json | Format::Sql => unreachable!("handled above"),
    }
    Ok((true, Vec::new()))
}
