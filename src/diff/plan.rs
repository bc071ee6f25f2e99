//! The two snapshots side by side: which tables, indexes, views, triggers and pragmas differ.
//!
//! Everything here is decided from tree and blob ids plus a few small files (CREATE texts, index,
//! view and trigger statements): a table whose folder has the same tree id on both sides is not
//! looked at again. The result, a [`Plan`], is what every output mode (summary, JSON, rows,
//! SQL patch) walks; `--table` narrows it here, once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use git2::{Commit, ObjectType, Oid, Repository, Tree};

use super::chunks::{self, ChunkRef, RowsAt};
use super::header::{Layout, PRAGMAS, encoding, layout};
use super::keyvalue::Encoding;
use super::matching::TableRows;
use super::shadows;
use super::shape::{self, Alignment, Shape};
use super::sqltext::{Stmt, by_table, objects, reordered, stored};
use crate::dump::path::{folder_key, table_dir};

pub const SEQUENCE: &str = "sqlite_sequence";
pub const STAT1: &str = "sqlite_stat1";
const SEQUENCE_FILE: &str = "2-sqlite_sequence.sql";
const STAT1_FILE: &str = "3-sqlite_stat1.sql";

/// One side of the diff: what it is and its database's folder.
pub struct Side<'r> {
    pub point: Point<'r>,
    pub db: Tree<'r>,
}

/// What a side of the diff is.
pub enum Point<'r> {
    /// A snapshot.
    Snapshot(Commit<'r>),
    /// A database as it is now (`diff --live`): its path as given.
    Live(String),
}

impl Point<'_> {
    /// The commit id, or `live` (JSON, the patch's first line).
    pub fn id(&self) -> String {
        match self {
            Point::Snapshot(c) => c.id().to_string(),
            Point::Live(_) => "live".to_string(),
        }
    }

    /// The short commit id and its time, or `live PATH`, for people.
    pub fn describe(&self) -> String {
        match self {
            Point::Snapshot(c) => {
                let secs = Duration::from_secs(c.time().seconds().max(0) as u64);
                format!(
                    "{}  {}",
                    &c.id().to_string()[..12],
                    humantime::format_rfc3339_seconds(UNIX_EPOCH + secs)
                )
            }
            Point::Live(path) => format!("live {path}"),
        }
    }

    /// The live database's path, if this side is one.
    pub fn live(&self) -> Option<&str> {
        match self {
            Point::Live(path) => Some(path),
            Point::Snapshot(_) => None,
        }
    }
}

/// A table's files on one side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Folder {
    /// `0-create.sql` (for a system table: its whole file).
    pub create: Oid,
    pub rows: Option<RowsAt>,
    /// `1-schema-fixup.sql`: the table's exact text, put back after its rows (a table whose
    /// rowid aliases are all columns is filled under a temporary column name).
    pub fixup: Option<Oid>,
    pub indexes: Option<Oid>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Added,
    Removed,
    /// Both sides, different CREATE text.
    Rebuilt,
    /// Both sides, same CREATE text.
    Same,
}

/// A table that differs between the snapshots (in rows, definition or indexes).
pub struct TablePlan {
    /// sqlite_sequence or sqlite_stat1.
    pub system: bool,
    pub from: Option<Folder>,
    pub to: Option<Folder>,
    pub from_shape: Option<Rc<Shape>>,
    pub to_shape: Option<Rc<Shape>>,
    pub align: Alignment,
    pub from_indexes: Vec<Stmt>,
    pub to_indexes: Vec<Stmt>,
}

impl TablePlan {
    pub fn name(&self) -> &str {
        let shape = self.to_shape.as_ref().or(self.from_shape.as_ref());
        &shape.expect("a table has a side").name
    }

    pub fn change(&self) -> Change {
        match (&self.from, &self.to) {
            (None, _) => Change::Added,
            (_, None) => Change::Removed,
            (Some(_), Some(_)) if !self.system && !self.same_definition() => Change::Rebuilt,
            _ => Change::Same,
        }
    }

    /// Both sides define the table by the same text as sqlite_schema holds it: the steps a
    /// dump writes around that text to restore it (`.dbconfig defensive off`, a column
    /// restored as `sqlgit_rowid`, a stand-in and its exact-text fix-up), which sqlgit has
    /// changed over time, are no part of the schema.
    fn same_definition(&self) -> bool {
        match (&self.from_shape, &self.to_shape) {
            (Some(a), Some(b)) => (&a.stored, a.virtual_table) == (&b.stored, b.virtual_table),
            _ => false,
        }
    }

    /// What a patch does with the table: a table filled under a temporary column name (see
    /// [`Folder::fixup`]) cannot take row statements once restored, so it is rebuilt whole.
    pub fn patch_change(&self) -> Change {
        match self.change() {
            Change::Same if self.to.is_some_and(|f| f.fixup.is_some()) && !self.system => {
                Change::Rebuilt
            }
            c => c,
        }
    }

    /// The indexes' text as sqlite_schema holds it differs (not only their restore steps).
    pub fn indexes_changed(&self) -> bool {
        stored(&self.from_indexes) != stored(&self.to_indexes)
    }

    /// Only the order of the table's indexes changed (see [`crate::dump::schema`]).
    pub fn indexes_reordered(&self) -> bool {
        self.change() == Change::Same && reordered(&self.from_indexes, &self.to_indexes)
    }

    /// The table's definition or its indexes changed (or it was added or removed).
    pub fn schema_changed(&self) -> bool {
        self.change() != Change::Same || self.indexes_changed()
    }

    /// The chunks of each side that the other lacks.
    pub fn changed_chunks(&self, repo: &Repository) -> Result<(Vec<ChunkRef>, Vec<ChunkRef>)> {
        chunks::changed(
            repo,
            self.from.and_then(|f| f.rows),
            self.to.and_then(|f| f.rows),
        )
    }

    /// What the row matching needs, given the chunks to compare.
    pub fn rows<'a>(
        &'a self,
        repo: &'a Repository,
        from_chunks: &'a [ChunkRef],
        to_chunks: &'a [ChunkRef],
    ) -> TableRows<'a> {
        TableRows {
            repo,
            table: self.name(),
            from: self.from_shape.as_deref(),
            to: self.to_shape.as_deref(),
            from_chunks,
            to_chunks,
            align: &self.align,
        }
    }
}

pub struct Plan<'r> {
    pub repo: &'r Repository,
    pub from: Side<'r>,
    pub to: Side<'r>,
    /// Differing tables in dump order, system tables last.
    pub tables: Vec<TablePlan>,
    /// `0-header.sql` of each side as they compare ([`super::header`]), when they differ (not
    /// with `--table`).
    pub header: Option<(Vec<u8>, Vec<u8>)>,
    /// What a restore of each side has that only a new file changes (not with `--table`): for
    /// an SQL patch, which applies to a restore of the older side.
    pub layouts: Option<(Layout, Layout)>,
    /// All views of each side, when their text as sqlite_schema holds it differs (not with
    /// `--table`).
    pub views: Option<(Vec<Stmt>, Vec<Stmt>)>,
    /// The selected triggers of each side (all of them without `--table`), in the order of
    /// their files.
    pub triggers: (Vec<Stmt>, Vec<Stmt>),
    pub filtered: bool,
}

impl Plan<'_> {
    /// Whether the triggers differ, in their text as sqlite_schema holds it (not only their
    /// restore steps) or in the order a table's fire in (the order of different tables'
    /// triggers changes nothing).
    pub fn triggers_changed(&self) -> bool {
        stored(&by_table(&self.triggers.0)) != stored(&by_table(&self.triggers.1))
    }

    /// Only the order some table's triggers fire in changed.
    pub fn triggers_reordered(&self) -> bool {
        reordered(&by_table(&self.triggers.0), &by_table(&self.triggers.1))
    }

    /// The pragmas whose values differ between the two sides.
    pub fn pragmas_changed(&self) -> Vec<&'static str> {
        let Some((a, b)) = &self.header else {
            return Vec::new();
        };
        PRAGMAS
            .into_iter()
            .filter(|p| pragma_line(a, p) != pragma_line(b, p))
            .collect()
    }
}

/// `PRAGMA name=…;` from a `0-header.sql`.
pub fn pragma_line<'a>(header: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let start = format!("PRAGMA {name}=");
    header
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(start.as_bytes()))
}

fn blob(repo: &Repository, oid: Oid) -> Result<Vec<u8>> {
    Ok(repo.find_blob(oid)?.content().to_vec())
}

fn file(repo: &Repository, tree: &Tree, name: &str) -> Result<Option<(Oid, Vec<u8>)>> {
    match tree.get_name(name) {
        Some(e) => Ok(Some((e.id(), blob(repo, e.id())?))),
        None => Ok(None),
    }
}

/// The table folders of a snapshot: folder name → tree id.
fn table_folders(repo: &Repository, db: &Tree) -> Result<BTreeMap<String, Oid>> {
    let mut out = BTreeMap::new();
    if let Some(e) = db.get_name("1-tables") {
        for t in repo.find_tree(e.id())?.iter() {
            if t.kind() == Some(ObjectType::Tree) {
                out.insert(String::from_utf8_lossy(t.name_bytes()).into_owned(), t.id());
            }
        }
    }
    Ok(out)
}

fn folder(repo: &Repository, tree: Oid) -> Result<Folder> {
    let tree = repo.find_tree(tree)?;
    let create = tree
        .get_name("0-create.sql")
        .context("table folder without 0-create.sql")?
        .id();
    Ok(Folder {
        create,
        rows: tree.get_name("1-rows").map(|e| RowsAt::Tree(e.id())),
        fixup: tree.get_name("1-schema-fixup.sql").map(|e| e.id()),
        indexes: tree.get_name("2-indexes.sql").map(|e| e.id()),
    })
}

/// Compare two snapshots' database folders; `only` lists the `--table` names (empty: all).
/// Tables renamed only in letter case (`Users` to `users`, which SQLite takes as one name, as
/// migrations that rename tables do), and folders an older sqlgit named otherwise (a name it
/// kept that is escaped now: [`folder_key`]): new folder → old folder, when exactly one folder
/// on each side matches, so their rows are compared rather than all deleted and inserted.
fn case_renames(
    from: &BTreeMap<String, Oid>,
    to: &BTreeMap<String, Oid>,
) -> HashMap<String, String> {
    let only = |a: &BTreeMap<String, Oid>, b: &BTreeMap<String, Oid>| {
        let mut by_lower: HashMap<String, Vec<String>> = HashMap::new();
        for dir in a.keys().filter(|d| !b.contains_key(*d)) {
            by_lower
                .entry(folder_key(dir))
                .or_default()
                .push(dir.clone());
        }
        by_lower
    };
    let (old, new) = (only(from, to), only(to, from));
    new.into_iter()
        .filter_map(
            |(lower, news)| match (news.as_slice(), old.get(&lower).map(Vec::as_slice)) {
                ([n], Some([o])) => Some((n.clone(), o.clone())),
                _ => None,
            },
        )
        .collect()
}

pub fn build<'r>(
    repo: &'r Repository,
    from: Side<'r>,
    to: Side<'r>,
    only: &[String],
) -> Result<Plan<'r>> {
    let from_tables = table_folders(repo, &from.db)?;
    let to_tables = table_folders(repo, &to.db)?;
    let has_file = |name: &str| from.db.get_name(name).is_some() || to.db.get_name(name).is_some();

    // --table: folders (and system files) selected, and names for matching triggers.
    let filtered = !only.is_empty();
    let mut dirs: HashSet<String> = HashSet::new();
    let mut names: HashSet<String> = HashSet::new();
    for name in only {
        names.insert(name.to_ascii_lowercase());
        let system = [(SEQUENCE, SEQUENCE_FILE), (STAT1, STAT1_FILE)]
            .into_iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(name));
        if let Some((table, file)) = system
            && has_file(file)
        {
            dirs.insert(table.to_string());
            continue;
        }
        let dir = table_dir(name);
        let found: Vec<&String> = from_tables
            .keys()
            .chain(to_tables.keys())
            .filter(|d| **d == dir || folder_key(d) == folder_key(&dir))
            .collect();
        if found.is_empty() {
            bail!("no table {name:?} in either snapshot");
        }
        for dir in &found {
            // A virtual table's rows are in its shadow tables: they go with it.
            for (shadow, dir) in shadow_folders(repo, [&from_tables, &to_tables], dir)? {
                names.insert(shadow.to_ascii_lowercase());
                dirs.insert(dir);
            }
        }
        dirs.extend(found.into_iter().cloned());
    }
    let selected = |dir: &str| !filtered || dirs.contains(dir);

    let mut all: Vec<&String> = from_tables.keys().chain(to_tables.keys()).collect();
    all.sort_by(|a, b| format!("{a}/").cmp(&format!("{b}/")));
    all.dedup();
    let renamed = case_renames(&from_tables, &to_tables);
    let text = |x: Option<(Oid, Vec<u8>)>| x.map(|x| x.1).unwrap_or_default();
    let heads = (
        text(file(repo, &from.db, "0-header.sql")?),
        text(file(repo, &to.db, "0-header.sql")?),
    );
    let encodings = (encoding(&heads.0), encoding(&heads.1));
    let mut tables = Vec::new();
    for dir in all {
        if renamed.values().any(|old| old == dir) {
            continue; // compared under its new name
        }
        let f = match renamed.get(dir) {
            Some(old) => from_tables.get(old),
            None => from_tables.get(dir),
        };
        let t = to_tables.get(dir);
        if f == t || !(selected(dir) || renamed.get(dir).is_some_and(|old| selected(old))) {
            continue;
        }
        let f = f.map(|&oid| folder(repo, oid)).transpose()?;
        let t = t.map(|&oid| folder(repo, oid)).transpose()?;
        let plan = table_plan(repo, (f, t), encodings);
        tables.push(plan.with_context(|| format!("table folder {dir}"))?);
    }
    for (table, name) in [(SEQUENCE, SEQUENCE_FILE), (STAT1, STAT1_FILE)] {
        let f = from.db.get_name(name).map(|e| e.id());
        let t = to.db.get_name(name).map(|e| e.id());
        if f == t || !selected(table) {
            continue;
        }
        let side = |oid: Option<Oid>| {
            oid.map(|oid| Folder {
                create: oid,
                rows: Some(RowsAt::File(oid)),
                fixup: None,
                indexes: None,
            })
        };
        let shape = Rc::new(shape::system(table));
        let (fs, ts) = (f.map(|_| shape.clone()), t.map(|_| shape.clone()));
        tables.push(TablePlan {
            system: true,
            from: side(f),
            to: side(t),
            align: shape::align(fs.as_deref(), ts.as_deref()),
            from_shape: fs,
            to_shape: ts,
            from_indexes: Vec::new(),
            to_indexes: Vec::new(),
        });
    }

    let (header, layouts) = if filtered {
        (None, None)
    } else {
        let (a, b) = heads;
        (
            super::header::compared(&a, &b),
            Some((layout(&a), layout(&b))),
        )
    };
    let stmts = |tree: &Tree, name: &str| -> Result<Vec<Stmt>> {
        Ok(file(repo, tree, name)?
            .map(|(_, text)| objects(&text))
            .unwrap_or_default())
    };
    let views = if filtered {
        None
    } else {
        let (a, b) = (
            stmts(&from.db, "4-views.sql")?,
            stmts(&to.db, "4-views.sql")?,
        );
        (stored(&a) != stored(&b)).then_some((a, b))
    };
    let on_selected = |s: &Stmt| {
        !filtered
            || s.on
                .as_ref()
                .is_some_and(|t| names.contains(&t.to_ascii_lowercase()))
    };
    let mut triggers = (
        stmts(&from.db, "5-triggers.sql")?,
        stmts(&to.db, "5-triggers.sql")?,
    );
    triggers.0.retain(on_selected);
    triggers.1.retain(on_selected);
    Ok(Plan {
        repo,
        from,
        to,
        tables,
        header,
        layouts,
        views,
        triggers,
        filtered,
    })
}

/// When the folder `dir` holds a virtual table on a side, its shadow tables there (see
/// [`shadows`]): (table name, folder) of each.
fn shadow_folders(
    repo: &Repository,
    sides: [&BTreeMap<String, Oid>; 2],
    dir: &str,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for tables in sides {
        let Some(&oid) = tables.get(dir) else {
            continue;
        };
        let create = blob(repo, folder(repo, oid)?.create)?;
        let Ok(shape) = shape::analyze(&create) else {
            continue; // no virtual table: the diff itself says what is wrong with it
        };
        if !shape.virtual_table {
            continue;
        }
        let named: Vec<(String, &String)> = (tables.keys())
            .filter_map(|d| shadows::folder_name(d).map(|n| (n, d)))
            .collect();
        let found = shadows::of(&shape.name, &shape.sql, named.iter().map(|n| n.0.as_str()));
        for (name, dir) in &named {
            if found.contains(&name.as_str()) {
                out.push((name.clone(), (*dir).clone()));
            }
        }
    }
    Ok(out)
}

/// A table's plan from its folders on each side, in databases of `encodings`.
fn table_plan(
    repo: &Repository,
    (from, to): (Option<Folder>, Option<Folder>),
    encodings: (Encoding, Encoding),
) -> Result<TablePlan> {
    let from_shape = match from {
        Some(f) => Some(Rc::new(shape::of_table(
            repo,
            f.create,
            f.fixup,
            encodings.0,
        )?)),
        None => None,
    };
    let same = |t: &Folder, f: &Folder| (t.create, t.fixup) == (f.create, f.fixup);
    let to_shape = match (to, &from, &from_shape) {
        (Some(t), Some(f), Some(s)) if same(&t, f) && encodings.0 == encodings.1 => Some(s.clone()),
        (Some(t), _, _) => Some(Rc::new(shape::of_table(
            repo,
            t.create,
            t.fixup,
            encodings.1,
        )?)),
        (None, _, _) => None,
    };
    let indexes = |f: Option<Folder>| -> Result<Vec<Stmt>> {
        match f.and_then(|f| f.indexes) {
            Some(oid) => Ok(objects(&blob(repo, oid)?)),
            None => Ok(Vec::new()),
        }
    };
    Ok(TablePlan {
        system: false,
        from,
        to,
        align: shape::align(from_shape.as_deref(), to_shape.as_deref()),
        from_shape,
        to_shape,
        from_indexes: indexes(from)?,
        to_indexes: indexes(to)?,
    })
}
