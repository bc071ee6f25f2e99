//! Data diffs between two snapshots: what changed in rows and schema, read from the repository.
//!
//! A snapshot stores a database as files whose blob ids stay the same while their content does
//! (see [`crate::dump`]), so comparing two snapshots is mostly comparing ids: [`plan`] finds the
//! table folders, index, view, trigger and header files that differ, [`chunks`] narrows a
//! changed table to the row chunks only one side has, and only those are read ([`rows`]) and
//! matched by key ([`shape`], [`matching`]). The cost follows the size of the change, not of
//! the database. The outputs: [`render`] for people, [`report`] for `--summary` and `--json`,
//! [`patch`] for `--sql`.

pub mod chunks;
pub mod history;
pub mod matching;
pub mod patch;
pub mod plan;
pub mod render;
pub mod report;
pub mod rows;
pub mod shape;
pub mod sqltext;

use std::io::Write;
use std::path::Path;

use anyhow::Result;

use crate::restore::db_tree;
use crate::timeline::Timeline;

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
    /// WHEN expressions (see [`crate::when`]); `to` None is the latest snapshot.
    pub from: &'a str,
    pub to: Option<&'a str>,
    /// `--table` names; empty for all.
    pub tables: &'a [String],
    pub format: Format,
}

/// Write the diff to `out`; returns whether the snapshots differ (nothing is written when they
/// do not), and warnings for the caller to show.
pub fn diff(req: &Request, out: &mut dyn Write) -> Result<(bool, Vec<String>)> {
    let mut timeline = Timeline::open(req.repo)?;
    let from = timeline.resolve(Some(req.from))?;
    let to = timeline.resolve(req.to)?;
    let repo = timeline.repo();
    let (from, to) = (repo.find_commit(from)?, repo.find_commit(to)?);
    let from_db = db_tree(repo, &from, req.db)?;
    let to_db = db_tree(repo, &to, req.db)?;
    let plan = plan::build(
        repo,
        plan::Side {
            commit: from,
            db: from_db,
        },
        plan::Side {
            commit: to,
            db: to_db,
        },
        req.tables,
    )?;
    if req.format == Format::Sql {
        let differ = !plan.tables.is_empty() || report::other_changes(&plan);
        let warnings = if differ {
            patch::write(&plan, out)?
        } else {
            Vec::new()
        };
        return Ok((differ, warnings));
    }
    let reports = report::count(&plan)?;
    if reports.is_empty() && !report::other_changes(&plan) {
        return Ok((false, Vec::new()));
    }
    match req.format {
        Format::Rows { color } => render::render(&plan, &reports, color, out)?,
        Format::Summary => report::summary(&plan, &reports, out)?,
        Format::Json => report::json(&plan, &reports, out)?,
        Format::Sql => unreachable!("handled above"),
    }
    Ok((true, Vec::new()))
}
