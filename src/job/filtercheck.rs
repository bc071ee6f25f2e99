//! The saved filters checked against the databases' schemas, so that a `redact` pattern a
//! migration (or a typo) left behind fails the run instead of letting the values in under the
//! new name. Each database is judged twice: first, on a connection of its own, before anything
//! is read (the warnings, and a failure before any work), then again inside the read
//! transaction its dump reads, on exactly the schema that is dumped, before anything is
//! written: a migration between the two, or one that held the database locked while the first
//! check gave up on it, is caught there. A database the first check cannot read counts as one
//! where the patterns match nothing until its dump reads it.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use rusqlite::Connection;

use super::renamed;
use crate::dump::Filters;
use crate::dump::schema::{RedactionGap, kept_tables, redaction_gaps, unmatched_exclusions};
use crate::store::Store;

/// What the read that follows the check is for: said in the failure.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Purpose {
    /// A snapshot: the values would be committed.
    Snapshot,
    /// `diff --live`: the values would be shown.
    Live,
}

/// What the checks need of one database's schema, read in one read transaction.
struct Seen {
    gaps: Vec<(String, RedactionGap)>,
    unmatched: Vec<String>,
    /// The tables the dump keeps, with their columns.
    kept: Vec<(String, Vec<String>)>,
}

impl Seen {
    fn read(conn: &Connection, filters: &Filters) -> Result<Seen> {
        Ok(Seen {
            gaps: redaction_gaps(conn, filters)?,
            unmatched: unmatched_exclusions(conn, filters)?,
            kept: kept_tables(conn, filters)?,
        })
    }
}

struct Entry {
    db: PathBuf,
    /// Its folder in the snapshots (whose last snapshot tells a rename).
    folder: String,
    /// None: not read yet.
    seen: Option<Seen>,
}

/// The filters against the databases of a run (see the module's doc).
pub struct FilterCheck<'a> {
    filters: &'a Filters,
    purpose: Purpose,
    entries: RefCell<Vec<Entry>>,
}

impl<'a> FilterCheck<'a> {
    pub fn new(filters: &'a Filters, purpose: Purpose) -> Self {
        FilterCheck {
            filters,
            purpose,
            entries: RefCell::new(Vec::new()),
        }
    }

    /// Add a database, whose snapshots are in `folder`; `read`: read its schema now, on a
    /// connection of its own (one that cannot be read is judged by its dump). Returns its index.
    pub fn add(&self, db: &Path, folder: String, read: bool) -> usize {
        let filtered = !self.filters.redact.is_empty() || !self.filters.exclude_tables.is_empty();
        let seen = (read && filtered)
            .then(|| read_alone(db, self.filters))
            .flatten();
        let mut entries = self.entries.borrow_mut();
        entries.push(Entry {
            db: db.to_path_buf(),
            folder,
            seen,
        });
        entries.len() - 1
    }

    /// Judge every database read so far: fails for a `redact` pattern that lets values in;
    /// returns warnings for the patterns that match nothing but let nothing in (a redaction of
    /// a table left out, an `excludeTable` pattern).
    pub fn check_all(&self, store: &Store) -> Result<Vec<String>> {
        let entries = self.entries.borrow();
        let all: Vec<usize> = (0..entries.len()).collect();
        let mut warnings = Vec::new();
        self.judge(store, &entries, &all, Some(&mut warnings))?;
        let exclude = entries
            .iter()
            .filter_map(|e| e.seen.as_ref().map(|s| s.unmatched.clone()))
            .reduce(|a, b| a.into_iter().filter(|p| b.contains(p)).collect())
            .unwrap_or_default();
        warnings.extend(exclude.into_iter().map(|pattern| {
            format!(
                "--exclude-table {pattern} matches no table: it leaves nothing out (`*` and `?` \
                 allowed; see `sqlgit init --exclude-table`)"
            )
        }));
        Ok(warnings)
    }

    /// Judge database `index` again on `conn`, inside the read transaction its dump reads, before
    /// anything is written: the schema judged is the schema dumped.
    pub fn in_transaction(&self, store: &Store, index: usize, conn: &Connection) -> Result<()> {
        if self.filters.redact.is_empty() {
            return Ok(());
        }
        let seen = Seen::read(conn, self.filters)?;
        let mut entries = self.entries.borrow_mut();
        entries[index].seen = Some(seen);
        self.judge(store, &entries, &[index], None)
    }

    /// Judge the `redact` patterns where they miss in the databases `focus` (a pattern that
    /// misses everywhere fails wherever it misses). A pattern that redacts a column in one
    /// database may miss in another (a `users` table without that column), unless that
    /// database's last snapshot tells a migration there ([`renamed`]).
    fn judge(
        &self,
        store: &Store,
        entries: &[Entry],
        focus: &[usize],
        mut warnings: Option<&mut Vec<String>>,
    ) -> Result<()> {
        let repo = store.path.as_path();
        let known = entries.iter().filter(|e| e.seen.is_some()).count();
        for spec in &self.filters.redact {
            let gaps: Vec<(usize, &RedactionGap)> = entries
                .iter()
                .enumerate()
                .filter_map(|(i, e)| {
                    let gaps = &e.seen.as_ref()?.gaps;
                    Some((i, gaps.iter().find(|(s, _)| s == spec).map(|(_, g)| g)?))
                })
                .collect();
            let stale = |what: &str, new: &str, column: bool, elsewhere: bool| {
                let fix = (repo, self.filters, self.purpose);
                anyhow!(stale_redaction(fix, spec, what, new, column, elsewhere))
            };
            if known == 0 || gaps.len() < known {
                // It redacts a column in another database: a miss here fails only as a rename.
                for &(i, gap) in gaps.iter().filter(|(i, _)| focus.contains(i)) {
                    if let Some((what, new)) = self.renamed(store, &entries[i], spec, gap) {
                        return Err(stale(&what, &new, true, true));
                    }
                }
                continue;
            }
            if let Some((i, RedactionGap::NoColumn(tables))) = gaps
                .iter()
                .find(|(_, g)| matches!(g, RedactionGap::NoColumn(_)))
            {
                let db = entries[*i].db.display();
                let what = format!("no column of {} in {db}", tables.join(", "));
                return Err(stale(&what, "NEWNAME", true, false));
            }
            if gaps
                .iter()
                .all(|(_, g)| matches!(g, RedactionGap::NoTable(_)))
            {
                let (i, RedactionGap::NoTable(shadow)) = gaps[0] else {
                    unreachable!("all are NoTable")
                };
                let what = match shadow {
                    Some((table, owner)) => format!(
                        "no table in {} ({table} is taken for a shadow table of the virtual \
                         table {owner}, whose module this SQLite lacks: exclude {owner} instead)",
                        entries[i].db.display()
                    ),
                    None => format!("no table in {}", names(entries)),
                };
                return Err(stale(&what, "NEWNAME", false, false));
            }
            if let Some(w) = warnings.as_deref_mut() {
                w.push(format!(
                    "redact pattern {spec} names only tables left out (excludeTable): it \
                     redacts nothing"
                ));
            }
        }
        Ok(())
    }

    /// What `spec` misses in `entry` when a migration there renamed what it redacted (see
    /// [`renamed`]), and the new pattern to print.
    fn renamed(
        &self,
        store: &Store,
        entry: &Entry,
        spec: &str,
        gap: &RedactionGap,
    ) -> Option<(String, String)> {
        let redact = &self.filters.redact;
        let seen = entry.seen.as_ref()?;
        let db = entry.db.display();
        match gap {
            RedactionGap::NoColumn(tables) => {
                let renamed = renamed::renamed_columns(
                    store,
                    &entry.folder,
                    spec,
                    tables,
                    &seen.kept,
                    redact,
                );
                let first = renamed.first()?;
                let what = format!(
                    "no column of {} in {db} any more (its last snapshot had one, and a new \
                     column came)",
                    renamed.join(", ")
                );
                // The table it renamed in, named (the pattern's table part may be a glob).
                Some((what, format!("{first}.NEWNAME")))
            }
            RedactionGap::NoTable(_) => {
                let new = renamed::renamed_tables(store, &entry.folder, spec, &seen.kept, redact);
                let (_, column) = spec.rsplit_once('.')?;
                if new.is_empty() {
                    return None;
                }
                let what = format!(
                    "no table in {db} any more (its last snapshot had one, and the new table \
                     {} came with a column it names)",
                    new.join(", ")
                );
                Some((what, format!("NEWNAME.{column}")))
            }
            RedactionGap::LeftOut => None,
        }
    }
}

/// A database's schema read on a connection of its own, in one read transaction; None when it
/// cannot be read (busy past SQLite's default wait, missing: its dump says why).
fn read_alone(db: &Path, filters: &Filters) -> Option<Seen> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let conn = Connection::open_with_flags(db, flags).ok()?;
    conn.execute_batch("BEGIN DEFERRED").ok()?;
    let seen = Seen::read(&conn, filters).ok();
    let _ = conn.execute_batch("COMMIT");
    seen
}

fn names(entries: &[Entry]) -> String {
    let names: Vec<String> = entries.iter().map(|e| e.db.display().to_string()).collect();
    names.join(", ")
}

/// The one line that fails a run for a `redact` pattern that misses: what it misses, and the
/// `sqlgit init` commands that give it the new name or drop it (both keep the other patterns,
/// as a given list replaces the saved one). `elsewhere`: the pattern still redacts a column in
/// another database, so the new name (`new`, then the whole `TABLE.NEWNAME`) is added beside
/// it and dropping it is not offered (either would stop redacting what it redacts there).
/// Dropping is offered only for a column dropped (a renamed one keeps its values under the new
/// name).
fn stale_redaction(
    (repo, filters, purpose): (&Path, &Filters, Purpose),
    spec: &str,
    what: &str,
    new: &str,
    column: bool,
    elsewhere: bool,
) -> String {
    let (t, c) = spec.rsplit_once('.').unwrap_or((spec, ""));
    let renamed = match (elsewhere, column) {
        (true, _) => new.to_string(),
        (false, true) => format!("{t}.{new}"),
        (false, false) => format!("{new}.{c}"),
    };
    let others: Vec<&String> = filters.redact.iter().filter(|s| *s != spec).collect();
    let list = |first: Option<&str>| {
        let all: Vec<String> = first
            .into_iter()
            .map(str::to_string)
            .chain(others.iter().map(|s| s.to_string()))
            .map(|s| format!(" --redact {}", crate::shellword::single(&s)))
            .collect();
        match all.is_empty() {
            true => " --redact ''".to_string(),
            false => all.concat(),
        }
    };
    let nothing = match purpose {
        Purpose::Snapshot => "nothing was snapshotted, as its values would be committed unredacted",
        Purpose::Live => "nothing was compared, as its values would be shown unredacted",
    };
    let init = format!("sqlgit init --repo {}", crate::shellword::path(repo));
    if elsewhere {
        let both = format!(
            " --redact {}{}",
            crate::shellword::single(spec),
            list(Some(&renamed))
        );
        return format!(
            "redact pattern {spec} matches {what}: renamed? {nothing}; add the new name with \
             `{init}{both}` (the list replaces the saved one; {spec} stays, as it redacts \
             another database's)"
        );
    }
    // Dropping the last pattern must not read as a harmless fix: it is spelled out.
    let drop = match list(None).as_str() {
        " --redact ''" => format!("`{init} --redact ''` (no redaction left)"),
        rest => format!("`{init}{rest}`"),
    };
    format!(
        "redact pattern {spec} matches {what}: renamed or dropped? {nothing}; give the new name \
         with `{init}{}` (the list replaces the saved one), or, only if the column was dropped \
         (no values left to hide), drop the pattern with {drop}",
        list(Some(&renamed)),
    )
}
