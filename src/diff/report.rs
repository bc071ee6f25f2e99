//! `--summary` and `--json`: per table, how many rows were inserted, updated and deleted, and
//! whether its schema changed — counted from the changed chunks only.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use super::matching::{Counts, for_each_change};
use super::plan::{Change, Plan, TablePlan};
use super::render::columns_changed;
use super::show;

/// What changed in one table.
pub struct TableReport<'p> {
    pub table: &'p TablePlan,
    pub counts: Counts,
}

impl TableReport<'_> {
    pub fn any(&self) -> bool {
        self.counts.any() || self.table.schema_changed()
    }
}

/// Count the row changes of every table of the plan; tables with no change are left out.
pub fn count<'p>(plan: &'p Plan) -> Result<Vec<TableReport<'p>>> {
    let mut out = Vec::new();
    for t in &plan.tables {
        let (from_chunks, to_chunks) = t.changed_chunks(plan.repo)?;
        let mut counts = Counts::default();
        for_each_change(&t.rows(plan.repo, &from_chunks, &to_chunks), &mut |e| {
            counts.add(&e);
            Ok(())
        })?;
        let report = TableReport { table: t, counts };
        if report.any() {
            out.push(report);
        }
    }
    Ok(out)
}

/// What a schema change says when only the order of a table's indexes, or of its triggers,
/// changed: the order SQLite fires triggers in and picks between equal indexes by.
pub const ORDER_ONLY: &str = "(order only)";

/// Whether anything outside the tables differs.
pub fn other_changes(plan: &Plan) -> bool {
    plan.header.is_some() || plan.views.is_some() || plan.triggers_changed()
}

pub fn summary(plan: &Plan, reports: &[TableReport], out: &mut dyn Write) -> Result<()> {
    for r in reports {
        let c = r.counts;
        write!(
            out,
            "{}: {} inserted, {} updated, {} deleted",
            show::name(r.table.name()),
            c.inserted,
            c.updated,
            c.deleted
        )?;
        match r.table.change() {
            Change::Added => write!(out, "; table added")?,
            Change::Removed => write!(out, "; table removed")?,
            _ if r.table.indexes_reordered() => write!(out, "; schema changed {ORDER_ONLY}")?,
            _ if r.table.schema_changed() => write!(out, "; schema changed")?,
            _ => {}
        }
        writeln!(out, "{}", columns_changed(r.table))?;
    }
    if plan.views.is_some() {
        writeln!(out, "views changed")?;
    }
    if plan.triggers_reordered() {
        writeln!(out, "triggers changed {ORDER_ONLY}")?;
    } else if plan.triggers_changed() {
        writeln!(out, "triggers changed")?;
    }
    if plan.header.is_some() {
        match plan.pragmas_changed().join(", ") {
            names if names.is_empty() => writeln!(out, "pragmas changed")?,
            names => writeln!(out, "pragmas changed ({names})")?,
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct Json<'a> {
    from: String,
    /// A commit id, or `live` (`diff --live`, whose database is named in `live`).
    to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    live: Option<&'a str>,
    tables: Vec<JsonTable<'a>>,
    views_changed: bool,
    triggers_changed: bool,
    pragmas_changed: bool,
    /// Which pragmas changed (`user_version`, `application_id`, `page_size`, `auto_vacuum`,
    /// `encoding`).
    pragmas: Vec<&'static str>,
}

#[derive(Serialize)]
struct JsonTable<'a> {
    name: &'a str,
    inserted: u64,
    updated: u64,
    deleted: u64,
    schema_changed: bool,
    added: bool,
    removed: bool,
    /// Columns only the newer / older side has (a table on both sides).
    columns_added: Vec<&'a str>,
    columns_removed: Vec<&'a str>,
}

pub fn json(plan: &Plan, reports: &[TableReport], out: &mut dyn Write) -> Result<()> {
    let doc = Json {
        from: plan.from.point.id(),
        to: plan.to.point.id(),
        live: plan.to.point.live().or(plan.from.point.live()),
        tables: reports
            .iter()
            .map(|r| {
                let (columns_added, columns_removed) = r.table.align.one_sided();
                JsonTable {
                    name: r.table.name(),
                    inserted: r.counts.inserted,
                    updated: r.counts.updated,
                    deleted: r.counts.deleted,
                    schema_changed: r.table.schema_changed(),
                    added: r.table.change() == Change::Added,
                    removed: r.table.change() == Change::Removed,
                    columns_added,
                    columns_removed,
                }
            })
            .collect(),
        views_changed: plan.views.is_some(),
        triggers_changed: plan.triggers_changed(),
        pragmas_changed: plan.header.is_some(),
        pragmas: plan.pragmas_changed(),
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)?;
    Ok(())
}
