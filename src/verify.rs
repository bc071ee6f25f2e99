//! The restore drill behind `sqlgit verify`: a snapshot passes only when the restores users run
//! work and give back exactly the snapshot.
//!
//! For each database of the snapshot: every object is read and its hash checked; the SQL is
//! restored twice — by the `sqlite3` CLI on PATH (`sqlgit cat | sqlite3`, run with `-bail`; any
//! output at all is a failure) and in-process (the path `sqlgit restore --to` takes); each copy
//! must pass `PRAGMA integrity_check` and dump back byte for byte to the snapshot, and both
//! copies must hold the same schema text. Each copy is integrity-checked by the SQLite that built
//! it and cross-checked by the other ([`cross`]): an index the two compute differently is a
//! warning. Objects whose value SQL cannot make exact (STORED generated columns, indexes whose
//! keys or rows SQLite computes: recomputed by whichever SQLite restores them) are warnings, not
//! a pass. Nothing here prints.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use git2::{Commit, ObjectType, Repository, TreeWalkMode, TreeWalkResult};
use rusqlite::Connection;

use crate::dump::{self, Filters, Sink, source};
use crate::progress::Progress;
use crate::restore::{Check, build_database, db_tree, for_each_file, short, unrestorable};
use crate::store::pack::{Kind, object_id};

mod converted;
mod cross;
mod inexact;
mod realtext;
mod rowtext;
pub mod shape;
mod triggers;

use rowtext::RowText;

/// What a drill found (failures are errors).
#[derive(Debug, Default)]
pub struct Report {
    pub objects: usize,
    pub databases: usize,
    /// The sqlite3 CLI that restored each database, when one was found.
    pub sqlite3: Option<PathBuf>,
    /// One line each: what is not exact by SQL, or what could not be checked.
    pub warnings: Vec<String>,
}

/// The sqlite3 CLI to check with: `SQLGIT_SQLITE3`, else `sqlite3` on PATH.
pub fn find_sqlite3() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SQLGIT_SQLITE3").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("sqlite3"))
        .find(|p| p.is_file())
}

/// Check the snapshot `commit` (the databases named in `folders`).
pub fn verify(repo: &Repository, commit: &Commit, folders: &[String]) -> Result<Report> {
    let id = short(commit);
    let (objects, mut strays) =
        check_objects(repo, commit).map_err(|e| anyhow!("snapshot {id} is damaged: {e}"))?;
    // What plain git would read otherwise than sqlgit fails before any restore.
    strays.splice(0..0, shape::root_problems(repo, &commit.tree()?));
    if !strays.is_empty() {
        bail!("{}", strays_message(&id, &strays, &shape::fix(repo)));
    }
    let mut report = Report {
        objects,
        databases: folders.len(),
        sqlite3: find_sqlite3(),
        ..Report::default()
    };
    match &report.sqlite3 {
        None => report.warnings.push(
            "no sqlite3 CLI found on PATH (or SQLGIT_SQLITE3): the `sqlgit cat | sqlite3` \
             restore was not checked"
                .into(),
        ),
        Some(cli) => {
            if let Some(w) = version_warning(cli) {
                report.warnings.push(w);
            }
        }
    }
    let cli_name = report.sqlite3.as_deref().map(|cli| match cli_version(cli) {
        Some(v) => format!("{} (SQLite {v})", cli.display()),
        None => cli.display().to_string(),
    });
    // Both restores are built here: a full $TMPDIR fails the drill, not the snapshot.
    let (scratch, _remove) = crate::output::private_tempdir("verify").with_context(|| {
        format!(
            "create a scratch directory in {} (set TMPDIR to a disk with room for two \
             restored copies)",
            std::env::temp_dir().display()
        )
    })?;
    for (n, folder) in folders.iter().enumerate() {
        let what = format!("snapshot {id}, database {folder}");
        let tree = db_tree(repo, commit, Some(folder)).with_context(|| what.clone())?;
        // Each snapshot is checked against a dump in its own format (format 1 stays readable).
        let format = snapshot_format(repo, &tree);
        let dump_hash = |db: &Path| dump_hash(db, format);
        // The snapshot's hash is taken while the first restore reads its files (read once more
        // by the second restore, never a third time): of its rows, not of where its chunks end
        // (a snapshot taken by a sqlgit that cut them elsewhere holds the same rows).
        let mut hash = RowText::new(format);
        let mut read = 0u64;
        let inproc = scratch.path().join(format!("{n}.db"));
        let cli_copy = scratch.path().join(format!("{n}.cli.db"));
        let mut expected: Option<Vec<u8>> = None;
        // Bytes of SQL the restores ran beyond the snapshot's (an older sqlgit's header: see
        // `for_each_file`); the copies dump them back, the commit did not record them.
        let mut added = 0;
        // First the restore users run: the sqlite3 CLI.
        if let Some(cli) = &report.sqlite3 {
            let shown = cli.display();
            let meter = Progress::bytes(&format!("restoring with {shown}"));
            cli_restore(cli, &cli_copy, |w| {
                added = for_each_file(repo, &tree, |path, sql| {
                    meter.inc(sql.len() as u64);
                    read += sql.len() as u64;
                    hash.file_at(path, sql);
                    Ok(w.write_all(sql)?)
                })?;
                Ok(())
            })
            .map_err(unrestorable)
            .with_context(|| format!("{what}: restore with {shown} failed"))
            .map_err(|e| scratch_full(e, scratch.path()))?;
            meter.finish();
            let want = std::mem::replace(&mut hash, RowText::new(format)).finish();
            let cli_name = cli_name.as_deref().unwrap_or_default();
            let found = cross::check_cli_copy(cli, cli_name, &cli_copy)
                .with_context(|| format!("{what}: {shown} restore"))?;
            (report.warnings).extend(found.into_iter().map(|w| format!("{what}: {w}")));
            let (got, summary) =
                dump_hash(&cli_copy).with_context(|| format!("{what}: dump {shown}'s restore"))?;
            if got != want {
                let found = converted::explain(repo, &tree, &cli_copy, format).with_context(|| {
                    format!("{what}: the database {shown} restored does not dump back to the snapshot")
                })?;
                add_new(&mut report.warnings, &what, found);
            }
            check_recorded(&what, commit, folder, &summary, read, added)?;
            expected = Some(want);
        }
        // Then `sqlgit restore --to`.
        build_database(&inproc, Check::Full, |exec| {
            added = for_each_file(repo, &tree, |path, sql| {
                if expected.is_none() {
                    read += sql.len() as u64;
                    hash.file_at(path, sql);
                }
                exec(sql)
            })?;
            Ok(())
        })
        .map_err(unrestorable)
        .with_context(|| format!("{what}: restore failed"))
        .map_err(|e| scratch_full(e, scratch.path()))?;
        if let (Some(cli), Some(cli_name)) = (&report.sqlite3, &cli_name) {
            let found = cross::check_inproc_copy(cli_name, cli, &inproc)
                .with_context(|| format!("{what}: in-process restore"))?;
            (report.warnings).extend(found.into_iter().map(|w| format!("{what}: {w}")));
        }
        let expected = expected.unwrap_or_else(|| hash.finish());
        let (got, summary) =
            dump_hash(&inproc).with_context(|| format!("{what}: dump the in-process restore"))?;
        if got != expected {
            let found = converted::explain(repo, &tree, &inproc, format).with_context(|| {
                format!("{what}: the restored database does not dump back to the snapshot")
            })?;
            add_new(&mut report.warnings, &what, found);
        }
        if !check_recorded(&what, commit, folder, &summary, read, added)? {
            report.warnings.push(format!(
                "{what}: its commit records no tables, rows or bytes for it (an older commit, or \
                 a run on another database that kept it without recording it): whether files \
                 are missing from its tree was not checked"
            ));
        }
        let schemas = || -> Result<bool> { Ok(schema(&cli_copy)? != schema(&inproc)?) };
        let differ = report.sqlite3.is_some()
            && schemas().with_context(|| format!("{what}: read the restored schemas"))?;
        if differ {
            bail!(
                "{what}: the schema the sqlite3 CLI restored differs from the in-process restore's"
            );
        }
        let inexact = inexact::inexact(&inproc)
            .with_context(|| format!("{what}: look for what SQL cannot restore exactly"))?;
        (report.warnings).extend(inexact.into_iter().map(|w| format!("{what}: {w}")));
        let unfireable = triggers::unfireable(&Connection::open(&inproc)?)
            .with_context(|| format!("{what}: look for triggers a restore cannot fire"))?;
        (report.warnings).extend(unfireable.into_iter().map(|w| format!("{what}: {w}")));
    }
    Ok(report)
}

/// Add the `found` lines about `what` that `warnings` does not hold yet (both copies find the
/// same converted values).
fn add_new(warnings: &mut Vec<String>, what: &str, found: Vec<String>) {
    for w in found {
        let line = format!("{what}: {w}");
        if !warnings.contains(&line) {
            warnings.push(line);
        }
    }
}

/// A restore that ran out of space ran out in the scratch directory: say which, and what to set.
fn scratch_full(e: anyhow::Error, scratch: &Path) -> anyhow::Error {
    let text = format!("{e:#}");
    if text.contains(crate::error::DISK_FULL) || text.contains("database or disk is full") {
        let dir = scratch.parent().unwrap_or(scratch);
        crate::room::writes_in(dir);
        return e.context(format!(
            "the scratch directory in {} is full (set TMPDIR to a disk with room for two \
             restored copies)",
            dir.display()
        ));
    }
    e
}

/// Read every object of the snapshot and check its hash. Returns the number of objects and
/// the entries below the database folders that sqlgit never writes ([`shape::entry_problem`]).
fn check_objects(repo: &Repository, commit: &Commit) -> Result<(usize, Vec<String>)> {
    let mut objects = 0usize;
    let mut strays = Vec::new();
    let mut problem: Option<String> = None;
    let odb = repo.odb()?;
    commit
        .tree()?
        .walk(TreeWalkMode::PreOrder, |dir, entry| {
            let name = format!("{dir}{}", entry.name().unwrap_or_default());
            // The top is [`shape::root_problems`]'s.
            if !dir.is_empty() {
                strays.extend(shape::entry_problem(dir, entry));
            }
            // A submodule's commit is none of this repository's objects.
            if entry.kind() == Some(ObjectType::Commit) {
                return TreeWalkResult::Skip;
            }
            let checked = odb
                .read(entry.id())
                .map_err(|e| e.message().to_string())
                .and_then(|obj| {
                    let kind = match obj.kind() {
                        ObjectType::Blob => Kind::Blob,
                        ObjectType::Tree => Kind::Tree,
                        _ => return Err("unexpected object type".to_string()),
                    };
                    if Some(obj.kind()) != entry.kind() {
                        let named = entry.kind().map_or("?", |k| k.str());
                        return Err(format!(
                            "its entry names a {named}, not a {}",
                            obj.kind().str()
                        ));
                    }
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
    match problem {
        Some(p) => Err(anyhow!(p)),
        None => Ok((objects, strays)),
    }
}

/// The failure for the `strays` of snapshot `id` (the first ten named), with its `fix`.
fn strays_message(id: &str, strays: &[String], fix: &str) -> String {
    const SHOWN: usize = 10;
    let mut named = strays[..strays.len().min(SHOWN)].join("; ");
    if strays.len() > SHOWN {
        named.push_str(&format!("; and {} more", strays.len() - SHOWN));
    }
    format!(
        "snapshot {id}'s tree holds what sqlgit never writes (a commit made by plain git?), so \
         plain git reads other content than sqlgit: {named}; {fix}"
    )
}

impl Sink for RowText {
    fn file(&mut self, path: &[&str], data: Vec<u8>) -> Result<()> {
        RowText::file(self, path, &data);
        Ok(())
    }
}

fn dump_hash(db: &Path, format: dump::Format) -> Result<(Vec<u8>, dump::Summary)> {
    let conn = source::open(db, std::time::Duration::from_secs(5))?;
    let mut h = RowText::new(format);
    let summary = dump::dump_as(&conn, &mut h, &Filters::default(), format)?;
    Ok((h.finish(), summary))
}

/// Fail when the restored database holds other than what the commit recorded
/// ([`dump::recorded::check`]); false when it recorded nothing for `folder`. The tables and
/// rows are the restore's dump's; the bytes are the snapshot's files' as read (`read`), less
/// the `added` bytes the restore ran beyond them: a dump made today may cut the same rows into
/// other statements.
fn check_recorded(
    what: &str,
    commit: &Commit,
    folder: &str,
    got: &dump::Summary,
    read: u64,
    added: u64,
) -> Result<bool> {
    let message = String::from_utf8_lossy(commit.message_bytes());
    let got = dump::Summary {
        bytes: read.saturating_sub(added),
        ..*got
    };
    dump::recorded::check(what, &message, folder, &got)
}

/// The format of a database folder of a snapshot, from its `0-header.sql`.
fn snapshot_format(repo: &Repository, tree: &git2::Tree) -> dump::Format {
    tree.get_name("0-header.sql")
        .and_then(|e| repo.find_blob(e.id()).ok())
        .map_or(dump::Format::V1, |b| dump::Format::of_header(b.content()))
}

type SchemaRow = (String, String, String, Option<Vec<u8>>);

/// The schema as stored: (type, name, tbl_name, sql bytes), sorted.
fn schema(db: &Path) -> Result<Vec<SchemaRow>> {
    let conn = Connection::open(db)?;
    let mut stmt = conn.prepare(
        "SELECT type, name, tbl_name, CAST(sql AS BLOB) FROM sqlite_schema ORDER BY 1, 2",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Run `cli -bail target` with the SQL `feed` writes on its stdin; fail unless it exits 0
/// having printed nothing at all.
pub fn cli_restore(
    cli: &Path,
    target: &Path,
    feed: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let mut child = Command::new(cli)
        .arg("-bail")
        .arg("-batch")
        .arg(target)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run {}", cli.display()))?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let mut stdin = child.stdin.take().expect("piped");
    let fed = feed(&mut stdin);
    drop(stdin);
    let status = child.wait()?;
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    let said = |b: &[u8]| {
        let text = String::from_utf8_lossy(b);
        text.lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .to_string()
    };
    if !err.is_empty() {
        bail!("it said: {}", said(&err));
    }
    if !status.success() {
        bail!("it exited with {status}");
    }
    // The lines a dump makes it print: the settings its `.dbconfig` commands gave.
    let text = String::from_utf8_lossy(&out);
    if let Some(line) = text.lines().find(|l| !dump::shell::is_dbconfig_echo(l)) {
        bail!("it printed: {}", said(line.as_bytes()));
    }
    // A write error (it stopped reading) shows in its exit or stderr first; else here.
    fed.map_err(|e| match e.downcast_ref::<std::io::Error>() {
        Some(io) if io.kind() == std::io::ErrorKind::BrokenPipe => {
            anyhow!("it stopped reading the SQL")
        }
        _ => e,
    })
}

/// The CLI's SQLite version (`3.40.1`).
fn cli_version(cli: &Path) -> Option<String> {
    let out = Command::new(cli).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.split_whitespace().next()?.to_string())
}

/// A warning when the CLI is older than the oldest one dumps are made for.
fn version_warning(cli: &Path) -> Option<String> {
    let version = cli_version(cli)?;
    let parts: Vec<u32> = version.split('.').filter_map(|p| p.parse().ok()).collect();
    if parts.len() >= 2 && (parts[0], parts[1]) < (3, 40) {
        return Some(format!(
            "{} is sqlite3 {version}, older than 3.40, the oldest that dumps are made for",
            cli.display()
        ));
    }
    None
}
