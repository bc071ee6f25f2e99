//! The default output, for people: per table, its schema change as a unified diff of its SQL,
//! then its rows — `+` inserted, `-` deleted, `~` updated with each changed column as
//! `old → new` — each labelled by its key. Values are shown as SQL literals on one line, cut
//! short when long (see [`super::show`]); keys whole. Colour only on a terminal.

use std::io::Write;

use anyhow::Result;
use similar::TextDiff;

use super::matching::{Event, changed_columns, for_each_change};
use super::plan::{Change, Plan, TablePlan};
use super::report::{ORDER_ONLY, TableReport};
use super::rows::RowRef;
use super::shape::{KeyKind, Shape};
use super::show::{self, MAX_VALUE};
use super::sqltext::{Stmt, by_table, stored};

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

pub fn render(
    plan: &Plan,
    reports: &[TableReport],
    color: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let st = Style { color };
    writeln!(
        out,
        "{}",
        st.paint("1", &format!("from {}", plan.from.point.describe()))
    )?;
    writeln!(
        out,
        "{}",
        st.paint("1", &format!("to   {}", plan.to.point.describe()))
    )?;
    for r in reports {
        table(plan, r, &st, out)?;
    }
    if let Some((a, b)) = &plan.header {
        writeln!(out, "\n{}", st.paint("1", "pragmas"))?;
        text_diff(
            &String::from_utf8_lossy(a),
            &String::from_utf8_lossy(b),
            &st,
            out,
        )?;
    }
    if let Some((a, b)) = &plan.views {
        writeln!(out, "\n{}", st.paint("1", "views"))?;
        text_diff(&joined(a), &joined(b), &st, out)?;
    }
    if plan.triggers_changed() {
        let head = match plan.triggers_reordered() {
            true => format!("triggers {ORDER_ONLY}"),
            false => "triggers".to_string(),
        };
        writeln!(out, "\n{}", st.paint("1", &head))?;
        let (a, b) = (by_table(&plan.triggers.0), by_table(&plan.triggers.1));
        text_diff(&joined(&a), &joined(&b), &st, out)?;
    }
    Ok(())
}

/// Schema objects' text as sqlite_schema holds it, one `sql;` each.
fn joined(stmts: &[Stmt]) -> String {
    stored(stmts).iter().map(|s| format!("{s};\n")).collect()
}

/// A table's definition and indexes, as SQL.
fn schema_text(shape: Option<&Shape>, indexes: &[Stmt]) -> String {
    match shape {
        Some(s) if !s.stored.is_empty() => format!("{};\n{}", s.stored, joined(indexes)),
        _ => String::new(),
    }
}

fn table(plan: &Plan, r: &TableReport, st: &Style, out: &mut dyn Write) -> Result<()> {
    let t = r.table;
    let c = r.counts;
    let mut head = format!(
        "table {}: {} inserted, {} updated, {} deleted",
        show::name(t.name()),
        c.inserted,
        c.updated,
        c.deleted
    );
    match t.change() {
        Change::Added => head.push_str("; table added"),
        Change::Removed => head.push_str("; table removed"),
        _ if t.indexes_reordered() => head.push_str(&format!("; schema changed {ORDER_ONLY}")),
        _ if t.schema_changed() => head.push_str("; schema changed"),
        _ => {}
    }
    head.push_str(&columns_changed(t));
    writeln!(out, "\n{}", st.paint("1", &head))?;
    if t.schema_changed() {
        let a = schema_text(t.from_shape.as_deref(), &t.from_indexes);
        let b = schema_text(t.to_shape.as_deref(), &t.to_indexes);
        text_diff(&a, &b, st, out)?;
    }
    if !c.any() {
        return Ok(());
    }
    let (from_chunks, to_chunks) = t.changed_chunks(plan.repo)?;
    for_each_change(&t.rows(plan.repo, &from_chunks, &to_chunks), &mut |e| {
        let line = match e {
            Event::Insert(b) => {
                let shape = t.to_shape.as_deref().expect("newer side");
                st.paint("32", &format!("  + {}", whole(shape, b)))
            }
            Event::Delete(a) => {
                let shape = t.from_shape.as_deref().expect("older side");
                st.paint("31", &format!("  - {}", whole(shape, a)))
            }
            Event::Update(a, b) => st.paint("33", &format!("  ~ {}", update(t, a, b))),
        };
        writeln!(out, "{line}")?;
        Ok(())
    })
}

/// `; columns added: c; removed: a, b` for a table on both sides, or nothing.
pub fn columns_changed(t: &TablePlan) -> String {
    let (added, removed) = t.align.one_sided();
    let list = |names: &[&str]| -> String {
        let shown: Vec<String> = names.iter().map(|n| show::name(n)).collect();
        shown.join(", ")
    };
    let mut out = String::new();
    for (what, names) in [("added", added), ("removed", removed)] {
        if !names.is_empty() {
            let s = if names.len() == 1 { "" } else { "s" };
            out.push_str(&format!("; column{s} {what}: {}", list(&names)));
        }
    }
    out
}

/// `key  col=value, …` (a multiset row: just its values).
fn whole(shape: &Shape, row: RowRef) -> String {
    let keys = shape.key_positions();
    let values: Vec<String> = (0..row.len().min(shape.columns.len()))
        .filter(|p| !keys.contains(p) && shape.rowid_value != Some(*p))
        .map(|p| {
            format!(
                "{}={}",
                show::name(&shape.shown[p]),
                show::value(row.value(p), MAX_VALUE)
            )
        })
        .collect();
    match key_label(shape, row) {
        Some(k) => format!("{k}  {}", values.join(", ")),
        None => values.join(", "),
    }
}

/// The row's key, its values whole (as `history` takes them back).
fn key_label(shape: &Shape, row: RowRef) -> Option<String> {
    if shape.key == KeyKind::Multiset {
        return None;
    }
    let parts: Vec<String> = shape
        .key_positions()
        .into_iter()
        .map(|p| {
            format!(
                "{}={}",
                show::name(&shape.shown[p]),
                show::literal(row.value(p))
            )
        })
        .collect();
    Some(if parts.len() == 1 {
        parts.into_iter().next().unwrap_or_default()
    } else {
        format!("({})", parts.join(", "))
    })
}

/// `key  col: old → new, …`.
fn update(t: &TablePlan, a: RowRef, b: RowRef) -> String {
    let shape = t.to_shape.as_deref().expect("newer side");
    let changes: Vec<String> = changed_columns(&t.align, a, b)
        .map(|(u, old, new)| {
            let (old, new) = show::pair(old, new, MAX_VALUE);
            format!("{}: {old} → {new}", show::name(&t.align.names[u]))
        })
        .collect();
    match key_label(shape, b) {
        Some(k) => format!("{k}  {}", changes.join(", ")),
        None => changes.join(", "),
    }
}

/// A unified diff of two SQL texts, indented under its heading.
fn text_diff(a: &str, b: &str, st: &Style, out: &mut dyn Write) -> Result<()> {
    // Lines end at `\n` only: a CR (which the diff would also take for a line end) and other
    // control characters are part of the SQL, and shown escaped (`\x0d`).
    let (a, b) = (escaped_lines(a), escaped_lines(b));
    let diff = TextDiff::from_lines(&a, &b);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .missing_newline_hint(false)
        .to_string();
    for line in text.lines() {
        let code = match line.as_bytes().first() {
            Some(b'+') => "32",
            Some(b'-') => "31",
            Some(b'@') => "36",
            _ => "",
        };
        let shown = format!("  {line}");
        if code.is_empty() {
            writeln!(out, "{shown}")?;
        } else {
            writeln!(out, "{}", st.paint(code, &shown))?;
        }
    }
    Ok(())
}

/// `text` with what [`show::escape_controls`] escapes escaped in each line, except the
/// tabs (indented SQL) and the `\n` line ends.
fn escaped_lines(text: &str) -> String {
    let escape = |part: &str| -> String {
        let pieces: Vec<String> = part.split('\t').map(show::escape_controls).collect();
        pieces.join("\t")
    };
    let lines: Vec<String> = text.split('\n').map(escape).collect();
    lines.join("\n")
}
