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
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use git2::{ObjectType, Oid, Repository};

use super::chunks::{self, ChunkRef, RowsAt};
use super::followed::{Filter, Followed};
use super::keymatch::{KeyColumns, Probe};
use super::keyvalue::Encoding;
use super::matching::changed_columns;
use super::plan::{SEQUENCE, STAT1};
use super::rows::{self, RowRef, Rows};
use super::shadows;
use super::shape::{self, Shape};
use crate::dump::path::{folder_key, rowid_chunk_name, table_dir};
use crate::timeline::Timeline;
use crate::when::{self, BeforeOldest};

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
    /// The database's text encoding, from its `0-header.sql`.
    encoding: Encoding,
}

/// What the walk remembers between snapshots, so each object is read once.
struct Reader<'a> {
    repo: &'a Repository,
    /// Which columns hold KEY's values, followed from the newest snapshot back.
    cols: KeyColumns<'a>,
    shapes: HashMap<(Oid, Option<Oid>, Encoding), Rc<Shape>>,
    /// The row followed, as known in the version looked at last.
    followed: Followed,
    /// (chunk blob id, CREATE blob id, probe, filter) → the key's row in it (0 or 1 rows).
    rows: HashMap<(Oid, Oid, Probe, Option<Filter>), Rc<Rows>>,
}

/// Find the row's history.
pub fn history(req: &Request) -> Result<Found> {
    crate::failpoint::panic_at("history");
    let mut timeline = Timeline::open(req.repo)?;
    let until = timeline.resolve(req.until)?;
    let mut warnings = Vec::new();
    // A time before the first snapshot (`--since 7days` on a younger repository): every change.
    let since = match req.since.map(|s| (s, timeline.resolve(Some(s)))) {
        Some((_, Ok(id))) => Some(id),
        Some((s, Err(e))) => match e.downcast_ref::<BeforeOldest>() {
            Some(b) => {
                let oldest = when::show(UNIX_EPOCH + Duration::from_secs(b.oldest.max(0) as u64));
                warnings.push(format!(
                    "--since {s}: no snapshot is that old (the oldest is from {oldest}): \
                     showing every change from the first snapshot on"
                ));
                None
            }
            None => return Err(e),
        },
        None => None,
    };
    let reaches_back = match since {
        Some(s) => !timeline.local_ids()?.contains(&s),
        None => true,
    };
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
    let db_name = db_folder(repo, &chain.commits, req.db)?;
    let dir = match SYSTEM
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(req.table))
    {
        Some((_, file)) => file.to_string(),
        None => table_dir(req.table),
    };
    let mut reader = Reader {
        repo,
        cols: KeyColumns::new(req.key),
        followed: Followed::Typed(None),
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
    // A virtual table's rows are in its shadow tables, which are tables of their own here.
    if let Some((&commit, &Some(table))) = chain.commits.iter().zip(&tables).find(|t| t.1.is_some())
        && let Ok(shape) = reader.shape(table)
        && shape.virtual_table
    {
        let tables = folders_at(repo, commit, &db_name)?;
        let named: Vec<String> = tables
            .iter()
            .filter_map(|d| shadows::folder_name(d))
            .collect();
        let found = shadows::of(&shape.name, &shape.sql, named.iter().map(String::as_str));
        bail!(
            "{}",
            shadows::history_refused(&shape.name, &found, &req.key.join(" "))
        );
    }
    let mut events = Vec::new();
    let pairs = if chain.rooted {
        chain.commits.len()
    } else {
        chain.commits.len() - 1
    };
    // A snapshot without the database's folder (it was out of the configured list) did not
    // back it up: nothing was deleted there; each snapshot that holds it is compared with the
    // next older one that does, across the gap.
    let present: Vec<bool> = chain
        .commits
        .iter()
        .map(|&c| holds(repo, c, &db_name))
        .collect::<Result<_>>()?;
    if let Some(gap) = gap_warning(&chain.commits, &present, &db_name) {
        warnings.push(gap);
    }
    for i in (0..pairs).filter(|&i| present[i]) {
        let newer = tables[i];
        let next = (i + 1..chain.commits.len()).find(|&j| present[j]);
        let older = next.and_then(|j| tables[j]);
        if newer == older {
            continue;
        }
        let commit = repo.find_commit(chain.commits[i])?;
        let older_id = next.map(|j| chain.commits[j]);
        let event = reader.compare((older, older_id), (newer, commit.id()))?;
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

/// The database folder's name, chosen in the newest snapshot (as `cat` chooses it); with `db`,
/// also a database the newest snapshot no longer holds (left out of the configured list), from
/// the newest snapshot searched that holds it.
fn db_folder(repo: &Repository, commits: &[Oid], db: Option<&str>) -> Result<String> {
    let pick =
        |id: Oid| -> Result<String> { crate::restore::db_folder(&repo.find_commit(id)?, db) };
    let newest = pick(commits[0]);
    match (newest, db) {
        (Err(e), Some(_)) => commits[1..].iter().find_map(|&c| pick(c).ok()).ok_or(e),
        (newest, _) => newest,
    }
}

/// Whether snapshot `commit` holds the database folder `db`.
fn holds(repo: &Repository, commit: Oid, db: &str) -> Result<bool> {
    let root = repo.find_commit(commit)?.tree()?;
    Ok(root
        .get_name(db)
        .is_some_and(|e| e.kind() == Some(ObjectType::Tree)))
}

/// The warning for snapshots (newest first, `present`: which hold database `db`) that leave the
/// database out between two that hold it: compared across, not read as a deletion.
fn gap_warning(commits: &[Oid], present: &[bool], db: &str) -> Option<String> {
    let first = present.iter().position(|&p| p)?;
    let last = present.iter().rposition(|&p| p)?;
    let gaps: Vec<String> = (first..last)
        .filter(|&i| !present[i])
        .map(|i| crate::store::short_id(commits[i]))
        .collect();
    let (n, s, it) = match gaps.len() {
        0 => return None,
        1 => (1, "", "it"),
        n => (n, "s", "them"),
    };
    Some(format!(
        "database {db:?} is absent from {n} snapshot{s} ({}), which did not back it up (it was \
         out of the configured list): its rows are compared across {it}, not read as deleted",
        gaps.join(", ")
    ))
}

/// The system tables `diff` shows, and their files in the database folder.
const SYSTEM: [(&str, &str); 2] = [
    (SEQUENCE, "2-sqlite_sequence.sql"),
    (STAT1, "3-sqlite_stat1.sql"),
];

/// The table folders of the database folder `db` of a snapshot.
fn folders_at(repo: &Repository, commit: Oid, db: &str) -> Result<Vec<String>> {
    let root = repo.find_commit(commit)?.tree()?;
    let Some(tables) = root.get_path(&Path::new(db).join("1-tables")).ok() else {
        return Ok(Vec::new());
    };
    let tree = repo.find_tree(tables.id())?;
    Ok(tree
        .iter()
        .map(|e| String::from_utf8_lossy(e.name_bytes()).into_owned())
        .collect())
}

fn table_at(repo: &Repository, commit: Oid, db: &str, dir: &str) -> Result<Option<TableAt>> {
    let root = repo.find_commit(commit)?.tree()?;
    let Some(db) = root.get_name(db) else {
        return Ok(None);
    };
    let db = repo.find_tree(db.id())?;
    let encoding = match db.get_name("0-header.sql") {
        Some(h) => super::header::encoding(repo.find_blob(h.id())?.content()),
        None => Encoding::Utf8,
    };
    if let Some(&(table, _)) = SYSTEM.iter().find(|(_, file)| *file == dir) {
        return Ok(db.get_name(dir).map(|e| TableAt {
            folder: e.id(),
            create: e.id(),
            fixup: None,
            rows: Some(e.id()),
            system: Some(table),
            encoding,
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
            .find(|e| folder_key(&String::from_utf8_lossy(e.name_bytes())) == folder_key(dir))
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
        encoding,
    }))
}

type Change = (Kind, Option<Values>, Option<Values>);

/// One side of a step: the table's files, shape and how KEY is found there.
type Side<'s> = (Option<TableAt>, Option<&'s Shape>, Option<&'s Probe>);

/// A side's shape and KEY's positions there, when KEY is found by column values.
fn values_at<'s>((_, shape, probe): Side<'s>) -> Option<(&'s Shape, &'s [(usize, usize)])> {
    match shape.zip(probe) {
        Some((shape, Probe::Values(pairs))) => Some((shape, pairs.as_slice())),
        _ => None,
    }
}

impl Reader<'_> {
    fn shape(&mut self, table: TableAt) -> Result<Rc<Shape>> {
        let at = (table.create, table.fixup, table.encoding);
        if let Some(s) = self.shapes.get(&at) {
            return Ok(s.clone());
        }
        let shape = Rc::new(match table.system {
            Some(name) => shape::system(name),
            None => shape::of_table(self.repo, table.create, table.fixup, table.encoding)?,
        });
        self.shapes.insert(at, shape.clone());
        Ok(shape)
    }

    /// The row's change between two versions of its table (None: no change). Errors name the
    /// snapshot whose version of the table they are about.
    fn compare(
        &mut self,
        (older, older_id): (Option<TableAt>, Option<Oid>),
        (newer, newer_id): (Option<TableAt>, Oid),
    ) -> Result<Option<Change>> {
        let at = |id: Oid| format!("snapshot {}", &id.to_string()[..12]);
        let new_shape = newer
            .map(|t| self.shape(t))
            .transpose()
            .with_context(|| at(newer_id))?;
        let new_probe = new_shape.as_deref().map(|s| self.cols.probe(s)).transpose();
        let new_probe = new_probe.with_context(|| at(newer_id))?;
        let old_shape = older.map(|t| self.shape(t)).transpose();
        let old_at = older_id.map(at).unwrap_or_default();
        let old_shape = old_shape.with_context(|| old_at.clone())?;
        let old_probe = old_shape.as_deref().map(|s| self.cols.probe(s)).transpose();
        let old_probe = old_probe.with_context(|| {
            format!(
                "{old_at}; the changes after {} are shown with --since {}",
                at(newer_id),
                &newer_id.to_string()[..12]
            )
        })?;
        // Rows named by column values are searched in the chunks that differ between the sides.
        let by_values = self.cols.by_values();
        let tree = |t: Option<TableAt>| t.filter(|_| by_values).and_then(|t| t.rows);
        let (old_chunks, new_chunks) = match (tree(older), tree(newer)) {
            (None, None) => (Vec::new(), Vec::new()),
            (a, b) => chunks::changed(self.repo, a.map(RowsAt::Tree), b.map(RowsAt::Tree))?,
        };
        // The newer side in the followed row's terms; the older side as `diff` pairs it.
        let renamed = self.cols.renamed().to_vec();
        let newer = (newer, new_shape.as_deref(), new_probe.as_ref());
        let older = (older, old_shape.as_deref(), old_probe.as_ref());
        let unseen = self.followed.present();
        let new = self.side(newer, &new_chunks, &[], unseen);
        let new = new.with_context(|| at(newer_id))?;
        let mut unseen = first(&new).is_none() && self.followed.present();
        if first(&new).is_none()
            && self
                .followed
                .narrows(values_at(newer), values_at(older), &renamed)
        {
            // KEY as typed names the row the newest version has, also one no step changed.
            let rows = newer.0.and_then(|t| t.rows).map(RowsAt::Tree);
            let all = chunks::all(self.repo, rows).with_context(|| at(newer_id))?;
            self.side(newer, &all, &[], false)
                .with_context(|| at(newer_id))?;
            unseen = self.followed.present();
        }
        let old = self.side(older, &old_chunks, &renamed, unseen);
        let old = old.with_context(|| old_at.clone())?;
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

    /// The followed row in one side of a step (`renamed`: KEY's columns renamed since the newer
    /// side), and what that tells of it. `unseen`: a row not found is there all the same,
    /// unchanged (see [`Followed::missed`]).
    fn side(
        &mut self,
        side: Side,
        changed: &[ChunkRef],
        renamed: &[bool],
        unseen: bool,
    ) -> Result<Option<Rc<Rows>>> {
        let (table, shape, probe) = side;
        let here = values_at(side);
        let filter = here.map(|(s, p)| self.followed.filter(s, p, renamed));
        let rows = self.find(table, shape, probe, filter.as_ref(), changed)?;
        if self.cols.by_values() {
            match (first(&rows), here) {
                (Some(row), Some((shape, pairs))) => self.followed.found(shape, pairs, row),
                (_, here) => self.followed.missed(filter.as_ref(), here, unseen),
            }
        }
        Ok(rows)
    }

    /// The key's row in one version of the table (an empty `Rows` when it has none).
    fn find(
        &mut self,
        table: Option<TableAt>,
        shape: Option<&Shape>,
        probe: Option<&Probe>,
        filter: Option<&Filter>,
        changed: &[ChunkRef],
    ) -> Result<Option<Rc<Rows>>> {
        let (Some(table), Some(shape), Some(probe)) = (table, shape, probe) else {
            return Ok(None);
        };
        let Some(rows_tree) = table.rows else {
            return Ok(None);
        };
        match probe {
            &Probe::Rowid { pos, rowid } => {
                let stem = rowid_chunk_name(rowid);
                let stem = stem.trim_end_matches(".sql");
                let chunk = match table.system {
                    Some(_) => rows_tree,
                    None => match chunks::chunk_for(self.repo, rows_tree, stem)? {
                        Some(chunk) => chunk,
                        None => return Ok(None),
                    },
                };
                let literal = rowid.to_string().into_bytes();
                self.rows_of((chunk, table.create), shape, (probe, None), |r| {
                    r.value(pos) == literal.as_slice()
                })
                .map(Some)
            }
            Probe::Values(pairs) => {
                let filter = filter.expect("a filter for rows found by values");
                let key = self.cols.key();
                let mut found: Option<Rc<Rows>> = None;
                for chunk in changed {
                    let at = (chunk.oid, table.create);
                    let rows = self.rows_of(at, shape, (probe, Some(filter)), |r| {
                        filter.accepts(shape, pairs, key, r)
                    })?;
                    let before = found.as_ref().map_or(0, |f| f.len());
                    if before + rows.len() > 1 {
                        bail!(
                            "several rows of table {:?} have the values KEY gives (its key here \
                             is not those columns): cannot tell which row KEY names",
                            shape.name
                        );
                    }
                    if !rows.is_empty() {
                        found = Some(rows);
                    }
                }
                Ok(found)
            }
        }
    }

    /// The rows of a chunk (`at`: its blob, and the table's CREATE blob that `shape` comes from)
    /// that `keep` accepts, parsed once per blob.
    fn rows_of(
        &mut self,
        (chunk, create): (Oid, Oid),
        shape: &Shape,
        (probe, filter): (&Probe, Option<&Filter>),
        keep: impl FnMut(RowRef) -> bool,
    ) -> Result<Rc<Rows>> {
        let at = (chunk, create, probe.clone(), filter.cloned());
        if let Some(r) = self.rows.get(&at) {
            return Ok(r.clone());
        }
        let data = self.repo.find_blob(chunk)?.content().to_vec();
        let parsed = rows::parse(data, &shape.prefix, shape.lenient)
            .with_context(|| format!("table {:?}: row chunk {chunk}", shape.name))?;
        let found = Rc::new(parsed.filtered(keep));
        self.rows.insert(at, found.clone());
        Ok(found)
    }
}

fn first(rows: &Option<Rc<Rows>>) -> Option<RowRef<'_>> {
    rows.as_deref().filter(|r| !r.is_empty()).map(|r| r.get(0))
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
