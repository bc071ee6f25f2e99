//! Row history: every snapshot in which one row (by rowid or primary key) was inserted, updated
//! or deleted, newest first, with the changed columns old → new.
//!
//! The cost follows snapshots × tree depth, not the database's size. Consecutive snapshots are
//! compared top-down by object id: a database or table folder with the same tree id holds the
//! same row, and is not opened. For tables keyed by rowid, chunk files and the group folders
//! above them are named by the first rowid they hold (`dump::path::rowid_chunk_name`), so the
//! one chunk that can hold the key is found by name at each level; it is read only when its blob
//! id differs from the neighbour's (and each blob once). WITHOUT ROWID tables name chunks by
//! position, so there the chunks whose ids differ between the two snapshots are read
//! ([`super::chunks::changed`]): a row found in none of them did not change. Rows are parsed by
//! the diff's own parser (formats 1 and 2) and compared column by column, as `diff` does.
//! sqlite_sequence and sqlite_stat1, one file each in the database folder, are keyed by rowid
//! as `diff` shows them.
//!
//! Points older than local history come from the history remote (see [`crate::timeline`]).

use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use anyhow::{Context, Result, bail};
use git2::{ObjectType, Oid, Repository};

use super::chunks::{self, ChunkRef, RowsAt};
use super::matching::changed_columns;
use super::plan::{SEQUENCE, STAT1};
use super::rows::{self, RowRef, Rows, decode_text};
use super::shape::{self, KeyKind, Shape};
use super::show;
use crate::dump::path::{rowid_chunk_name, table_dir};
use crate::restore::db_tree;
use crate::timeline::Timeline;

/// One `sqlgit history`.
pub struct Request<'a> {
    pub repo: &'a Path,
    pub db: Option<&'a str>,
    pub table: &'a str,
    /// The rowid, or the primary key's values in order.
    pub key: &'a [String],
    /// WHEN: only changes after this snapshot (as `diff SINCE` counts them).
    pub since: Option<&'a str>,
    /// WHEN: only changes up to this snapshot (default: the latest).
    pub until: Option<&'a str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Inserted,
    Updated,
    Deleted,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Inserted => "inserted",
            Kind::Updated => "updated",
            Kind::Deleted => "deleted",
        }
    }
}

/// Column names with their values as the dump spells them (SQL literals).
pub type Values = Vec<(String, Vec<u8>)>;

/// One change of the row, in one snapshot.
pub struct Event {
    pub commit: Oid,
    /// The snapshot's time (Unix seconds).
    pub time: i64,
    pub kind: Kind,
    /// Deleted: the whole row; updated: the changed columns' old values.
    pub old: Option<Values>,
    /// Inserted: the whole row; updated: the changed columns' new values.
    pub new: Option<Values>,
}

pub struct Found {
    /// Newest first.
    pub events: Vec<Event>,
    /// Snapshots looked at (pairs compared).
    pub searched: usize,
    pub warnings: Vec<String>,
}

/// A table's files in one snapshot.
#[derive(Clone, Copy, PartialEq, Eq)]
struct TableAt {
    folder: Oid,
    create: Oid,
    /// `1-schema-fixup.sql`, when the table has one (see [`Shape::with_fixup`]).
    fixup: Option<Oid>,
    rows: Option<Oid>,
    /// sqlite_sequence or sqlite_stat1: all of it in one file of the database folder.
    system: Option<&'static str>,
}

/// What the walk remembers between snapshots, so each object is read once.
struct Reader<'a> {
    repo: &'a Repository,
    key: &'a [String],
    /// The key's column names in the order KEY gives their values: the newest snapshot's key
    /// order, so a migration that reorders a composite key does not pair values with the
    /// wrong columns in older snapshots.
    key_names: Option<Vec<String>>,
    shapes: HashMap<(Oid, Option<Oid>), Rc<Shape>>,
    /// (chunk blob id, CREATE blob id) → the key's row in it (0 or 1 rows).
    rows: HashMap<(Oid, Oid), Rc<Rows>>,
}

/// Find the row's history.
pub fn history(req: &Request) -> Result<Found> {
    let mut timeline = Timeline::open(req.repo)?;
    let until = timeline.resolve(req.until)?;
    let since = match req.since {
        Some(s) => Some(timeline.resolve(Some(s))?),
        None => None,
    };
    let mut warnings = Vec::new();
    let reaches_back = since.is_none_or(|s| !timeline.local_ids().contains(&s));
    if reaches_back {
        if timeline.can_reach_older() {
            timeline.load_cache()?;
        } else if let Some(b) = timeline.boundary() {
            warnings.push(format!(
                "snapshots before {b} were pruned and no history remote is set: changes before \
                 it are not shown"
            ));
        }
    }
    let chain = timeline.chain(until, since)?;
    let repo = timeline.repo();
    let db_name = db_folder(repo, until, req.db)?;
    let dir = match SYSTEM
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(req.table))
    {
        Some((_, file)) => file.to_string(),
        None => table_dir(req.table),
    };
    let mut reader = Reader {
        repo,
        key: req.key,
        key_names: None,
        shapes: HashMap::new(),
        rows: HashMap::new(),
    };
    let tables: Vec<Option<TableAt>> = chain
        .commits
        .iter()
        .map(|&c| table_at(repo, c, &db_name, &dir))
        .collect::<Result<_>>()?;
    if tables.iter().all(Option::is_none) {
        bail!("no table {:?} in the snapshots searched", req.table);
    }
    // KEY is in the order of the newest snapshot's key.
    if let Some(newest) = tables.iter().flatten().next()
        && let KeyKind::Columns(positions) = &reader.shape(*newest)?.key
    {
        let shape = reader.shape(*newest)?;
        reader.key_names = Some(
            positions
                .iter()
                .map(|&p| shape.columns[p].clone())
                .collect(),
        );
    }
    let mut events = Vec::new();
    let pairs = if chain.rooted {
        chain.commits.len()
    } else {
        chain.commits.len() - 1
    };
    for i in 0..pairs {
        let newer = tables[i];
        let older = tables.get(i + 1).copied().flatten();
        if newer == older {
            continue;
        }
        let commit = repo.find_commit(chain.commits[i])?;
        let event = reader
            .compare(older, newer)
            .with_context(|| format!("snapshot {}", &commit.id().to_string()[..12]))?;
        if let Some((kind, old, new)) = event {
            events.push(Event {
                commit: commit.id(),
                time: commit.time().seconds(),
                kind,
                old,
                new,
            });
        }
    }
    Ok(Found {
        events,
        searched: pairs,
        warnings,
    })
}

/// The database folder's name, chosen in the newest snapshot (as `cat` chooses it).
fn db_folder(repo: &Repository, commit: Oid, db: Option<&str>) -> Result<String> {
    let commit = repo.find_commit(commit)?;
    let tree = db_tree(repo, &commit, db)?;
    let root = commit.tree()?;
    let entry = root.iter().find(|e| e.id() == tree.id());
    Ok(entry
        .map(|e| String::from_utf8_lossy(e.name_bytes()).into_owned())
        .unwrap_or_default())
}

/// The system tables `diff` shows, and their files in the database folder.
const SYSTEM: [(&str, &str); 2] = [
    (SEQUENCE, "2-sqlite_sequence.sql"),
    (STAT1, "3-sqlite_stat1.sql"),
];

fn table_at(repo: &Repository, commit: Oid, db: &str, dir: &str) -> Result<Option<TableAt>> {
    let root = repo.find_commit(commit)?.tree()?;
    let Some(db) = root.get_name(db) else {
        return Ok(None);
    };
    let db = repo.find_tree(db.id())?;
    if let Some(&(table, _)) = SYSTEM.iter().find(|(_, file)| *file == dir) {
        return Ok(db.get_name(dir).map(|e| TableAt {
            folder: e.id(),
            create: e.id(),
            fixup: None,
            rows: Some(e.id()),
            system: Some(table),
        }));
    }
    let Some(tables) = db.get_name("1-tables") else {
        return Ok(None);
    };
    let tables = repo.find_tree(tables.id())?;
    // SQLite's names are case-insensitive (as `diff --table` matches them).
    let folder = tables.get_name(dir).or_else(|| {
        tables
            .iter()
            .find(|e| String::from_utf8_lossy(e.name_bytes()).to_lowercase() == dir.to_lowercase())
    });
    let Some(folder) = folder else {
        return Ok(None);
    };
    let tree = repo.find_tree(folder.id())?;
    let create = tree
        .get_name("0-create.sql")
        .context("table folder without 0-create.sql")?
        .id();
    Ok(Some(TableAt {
        folder: folder.id(),
        create,
        fixup: tree.get_name("1-schema-fixup.sql").map(|e| e.id()),
        rows: tree.get_name("1-rows").map(|e| e.id()),
        system: None,
    }))
}

type Change = (Kind, Option<Values>, Option<Values>);

impl Reader<'_> {
    fn shape(&mut self, table: TableAt) -> Result<Rc<Shape>> {
        let at = (table.create, table.fixup);
        if let Some(s) = self.shapes.get(&at) {
            return Ok(s.clone());
        }
        let shape = Rc::new(match table.system {
            Some(name) => shape::system(name),
            None => shape::of_table(self.repo, table.create, table.fixup)?,
        });
        self.shapes.insert(at, shape.clone());
        Ok(shape)
    }

    /// The row's change between two versions of its table (None: no change).
    fn compare(
        &mut self,
        older: Option<TableAt>,
        newer: Option<TableAt>,
    ) -> Result<Option<Change>> {
        let old_shape = older.map(|t| self.shape(t)).transpose()?;
        let new_shape = newer.map(|t| self.shape(t)).transpose()?;
        // Sides keyed by columns are searched in the chunks that differ between them.
        let by_columns = |t: Option<TableAt>, s: &Option<Rc<Shape>>| match (t, s) {
            (Some(t), Some(s)) if matches!(s.key, KeyKind::Columns(_)) => t.rows.map(RowsAt::Tree),
            _ => None,
        };
        let (old_chunks, new_chunks) =
            match (by_columns(older, &old_shape), by_columns(newer, &new_shape)) {
                (None, None) => (Vec::new(), Vec::new()),
                (a, b) => chunks::changed(self.repo, a, b)?,
            };
        let old = self.find(older, old_shape.as_deref(), &old_chunks)?;
        let new = self.find(newer, new_shape.as_deref(), &new_chunks)?;
        Ok(match (first(&old), first(&new)) {
            (None, None) => None,
            (None, Some(b)) => Some((Kind::Inserted, None, Some(whole(new_shape.as_deref(), b)))),
            (Some(a), None) => Some((Kind::Deleted, Some(whole(old_shape.as_deref(), a)), None)),
            (Some(a), Some(b)) => {
                let align = shape::align(old_shape.as_deref(), new_shape.as_deref());
                let changed: Vec<(usize, &[u8], &[u8])> = changed_columns(&align, a, b).collect();
                if changed.is_empty() {
                    return Ok(None);
                }
                let side = |new: bool| -> Values {
                    changed
                        .iter()
                        .map(|&(u, a, b)| {
                            (align.names[u].clone(), if new { b } else { a }.to_vec())
                        })
                        .collect()
                };
                Some((Kind::Updated, Some(side(false)), Some(side(true))))
            }
        })
    }

    /// The key's row in one version of the table (an empty `Rows` when it has none).
    fn find(
        &mut self,
        table: Option<TableAt>,
        shape: Option<&Shape>,
        changed: &[ChunkRef],
    ) -> Result<Option<Rc<Rows>>> {
        let (Some(table), Some(shape)) = (table, shape) else {
            return Ok(None);
        };
        let Some(rows_tree) = table.rows else {
            return Ok(None);
        };
        match &shape.key {
            KeyKind::Multiset => bail!(
                "table {:?} has no key a row can be named by (rowid, _rowid_ and oid are all \
                 column names)",
                shape.name
            ),
            KeyKind::Rowid { pos, column } => {
                let rowid = match self.key {
                    [k] => k.trim().parse::<i64>().ok(),
                    _ => None,
                };
                let Some(rowid) = rowid else {
                    bail!(
                        "table {:?} is keyed by its rowid ({column}): give one integer",
                        shape.name
                    );
                };
                let stem = rowid_chunk_name(rowid);
                let stem = stem.trim_end_matches(".sql");
                let chunk = match table.system {
                    Some(_) => rows_tree,
                    None => match chunk_for(self.repo, rows_tree, stem)? {
                        Some(chunk) => chunk,
                        None => return Ok(None),
                    },
                };
                let literal = rowid.to_string().into_bytes();
                let pos = *pos;
                self.rows_of((chunk, table.create), shape, |r| {
                    r.value(pos) == literal.as_slice()
                })
                .map(Some)
            }
            KeyKind::Columns(positions) => {
                if positions.len() != self.key.len() {
                    let names: Vec<&str> = positions
                        .iter()
                        .map(|&p| shape.columns[p].as_str())
                        .collect();
                    bail!(
                        "table {:?} has a primary key of {} column(s) ({}): give {} value(s)",
                        shape.name,
                        positions.len(),
                        names.join(", "),
                        positions.len()
                    );
                }
                let names: Vec<&str> = positions
                    .iter()
                    .map(|&p| shape.columns[p].as_str())
                    .collect();
                let first = self
                    .key_names
                    .get_or_insert_with(|| names.iter().map(|n| n.to_string()).collect());
                // For each key column here, the index of its value in KEY (by name; by position
                // when the names differ, as after a column rename).
                let by_name: Option<Vec<usize>> = names
                    .iter()
                    .map(|n| first.iter().position(|f| f.eq_ignore_ascii_case(n)))
                    .collect();
                let order = by_name.unwrap_or_else(|| (0..names.len()).collect());
                let key = self.key;
                for chunk in changed {
                    let found = self.rows_of((chunk.oid, table.create), shape, |r| {
                        positions
                            .iter()
                            .zip(&order)
                            .all(|(&p, &i)| matches(r.value(p), &key[i]))
                    })?;
                    if !found.is_empty() {
                        return Ok(Some(found));
                    }
                }
                Ok(None)
            }
        }
    }

    /// The rows of a chunk (`at`: its blob, and the table's CREATE blob that `shape` comes from)
    /// that `keep` accepts, parsed once per blob.
    fn rows_of(
        &mut self,
        at: (Oid, Oid),
        shape: &Shape,
        keep: impl FnMut(RowRef) -> bool,
    ) -> Result<Rc<Rows>> {
        if let Some(r) = self.rows.get(&at) {
            return Ok(r.clone());
        }
        let chunk = at.0;
        let data = self.repo.find_blob(chunk)?.content().to_vec();
        let parsed = rows::parse(data, &shape.prefix, shape.lenient)
            .with_context(|| format!("table {:?}: row chunk {chunk}", shape.name))?;
        let found = Rc::new(parsed.filtered(keep));
        self.rows.insert(at, found.clone());
        Ok(found)
    }
}

/// The chunk file that holds `stem` (a rowid chunk name without `.sql`) if any row does: at
/// each level, the last entry whose name (the first chunk name it holds) is not after it.
fn chunk_for(repo: &Repository, rows: Oid, stem: &str) -> Result<Option<Oid>> {
    let mut tree = repo.find_tree(rows)?;
    loop {
        let mut pick: Option<(Vec<u8>, Oid, bool)> = None;
        for e in tree.iter() {
            let name = e.name_bytes();
            let name = &name[..name.len().min(16)];
            if name <= stem.as_bytes() && pick.as_ref().is_none_or(|p| name >= p.0.as_slice()) {
                pick = Some((name.to_vec(), e.id(), e.kind() == Some(ObjectType::Tree)));
            }
        }
        match pick {
            None => return Ok(None),
            Some((_, id, true)) => tree = repo.find_tree(id)?,
            Some((_, id, false)) => return Ok(Some(id)),
        }
    }
}

fn first(rows: &Option<Rc<Rows>>) -> Option<RowRef<'_>> {
    rows.as_deref().filter(|r| !r.is_empty()).map(|r| r.get(0))
}

/// Whether a key literal is the value given on the command line: the same spelling, the
/// literal `diff` and `query` show for it (`'p'||char(10)||'q'`), a text literal holding
/// exactly those bytes, or the same number (`1` finds a REAL key `1.0`, as `WHERE k = 1` does).
fn matches(literal: &[u8], given: &str) -> bool {
    // The shown literal differs from the dump's only where it spells text with char() or CAST.
    let shown = || given.contains("char(") || given.contains("CAST(");
    literal == given.as_bytes()
        || (shown() && show::literal(literal) == given)
        || decode_text(literal).is_some_and(|t| t == given.as_bytes())
        || std::str::from_utf8(literal).is_ok_and(|l| same_number(l, given.trim()))
}

/// Two decimal numerals (integer or real) with the same value.
fn same_number(a: &str, b: &str) -> bool {
    let numeral = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c))
            && s.bytes().any(|c| c.is_ascii_digit())
    };
    if !numeral(a) || !numeral(b) {
        return false;
    }
    match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        },
    }
}

/// Every column of a row, named by its table's shape.
fn whole(shape: Option<&Shape>, row: RowRef) -> Values {
    let columns = shape.map(|s| s.shown.as_slice()).unwrap_or_default();
    (0..row.len())
        .map(|i| {
            let name = columns.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
            (name, row.value(i).to_vec())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_match_literals_and_the_text_they_hold() {
        assert!(matches(b"42", "42"));
        assert!(matches(b"'k 7'", "k 7"));
        assert!(matches(b"'it''s'", "it's"));
        assert!(matches(b"X'00ab'", "X'00ab'"));
        // As diff shows it: control characters as char(N).
        assert!(matches(b"'\n'", "char(10)"));
        assert!(matches(b"'p\nq'", "'p'||char(10)||'q'"));
        assert!(!matches(b"'p\nq'", "'p\\nq'"));
        assert!(!matches(b"'42'", "4"));
        assert!(!matches(b"NULL", "null"));
        // Numbers by value, as SQL compares them; text stays text.
        assert!(matches(b"1.0", "1"));
        assert!(matches(b"10", "10.0"));
        assert!(matches(b"-2.5e3", "-2500"));
        assert!(!matches(b"'1.0'", "1"));
        assert!(!matches(b"9007199254740993", "9007199254740992"));
        assert!(!matches(b"1.5", "1"));
    }
}
