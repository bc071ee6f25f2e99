//! Each restore of the drill integrity-checked by the SQLite that built it, and cross-checked
//! by the other one. The key of an index on an expression, the membership of a partial index
//! and an index on a VIRTUAL generated column are computed by the SQLite that builds the index,
//! and versions differ (3.54 turns `0.1+0.2` into the text `0.30000000000000004`, 3.40 into
//! `0.3`): the sqlite3 CLI's restore can fail the bundled SQLite's check, and `restore --to`'s
//! the CLI's, while each is exact for the SQLite that built it. Such findings are warnings
//! naming the indexes; anything else either check finds is a failure.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OpenFlags};

use crate::restore::{
    check_around_modules, check_virtual_tables, finding_table, is_about_values, is_stale_fts_index,
};

/// What an integrity check said, sorted.
#[derive(Debug, Default)]
pub struct Findings {
    /// Values breaking their column's rules, virtual tables' own findings (what the snapshot
    /// holds).
    pub values: Vec<String>,
    /// Indexes whose entries do not match their table's rows, with the first line about them.
    pub indexes: Vec<(String, String)>,
    /// Anything else: damage.
    pub structure: Vec<String>,
}

impl Findings {
    fn of(lines: Vec<String>) -> Findings {
        let mut f = Findings::default();
        let mut seen = BTreeSet::new();
        for line in lines.into_iter().filter(|l| l != "ok") {
            if is_about_values(&line) {
                f.values.push(line);
            } else if let Some(name) = index_named(&line) {
                if seen.insert(name.to_string()) {
                    f.indexes.push((name.to_string(), line));
                }
            } else {
                f.structure.push(line);
            }
        }
        f
    }

    /// The findings of the builder's own check: an error unless only values are found.
    fn own(self) -> Result<Vec<String>> {
        let mut bad = self.structure;
        bad.extend(self.indexes.into_iter().map(|(_, line)| line));
        if let Some(first) = bad.first() {
            let more = match bad.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            bail!("{first}{more}");
        }
        Ok(self.values)
    }

    /// The findings of the other SQLite's check: an error for damage, else the indexes whose
    /// entries it computes otherwise, and the values (a newer SQLite finds more: a stale
    /// full-text index only from 3.44).
    fn cross(self) -> Result<Findings> {
        if let Some(first) = self.structure.first() {
            bail!("{first}");
        }
        Ok(self)
    }
}

/// The index an integrity-check line is about (`row 1 missing from index ti`, `wrong # of
/// entries in index ti`, `non-unique entry in index ti`, `row 1 values differ from index ti`,
/// `rowid not at end-of-record for row 1 of index ti`, `index ti stores an imprecise
/// floating-point value for row 1`).
fn index_named(line: &str) -> Option<&str> {
    if let Some(rest) = line.strip_prefix("index ") {
        return rest.split(" stores an imprecise").next();
    }
    [
        "missing from index ",
        "entries in index ",
        "entry in index ",
        "differ from index ",
        " of index ",
    ]
    .iter()
    .find_map(|m| line.find(m).map(|at| &line[at + m.len()..]))
    .filter(|name| !name.is_empty())
}

/// The bundled SQLite, as warnings name it.
fn bundled_name() -> String {
    format!("SQLite {} (bundled)", rusqlite::version())
}

/// Check the copy the sqlite3 CLI `cli` (`cli_name`) restored at `db`: by the CLI (anything but
/// values is a failure), then by the bundled SQLite (damage is a failure, indexes it computes
/// otherwise a warning). Returns the warnings.
pub fn check_cli_copy(cli: &Path, cli_name: &str, db: &Path) -> Result<Vec<String>> {
    let mut values = by_cli(cli, db)
        .map(Findings::of)
        .and_then(Findings::own)
        .context("integrity check failed")?;
    let bundled = bundled_name();
    let others = checked_by_bundled(db)
        .and_then(Findings::cross)
        .with_context(|| format!("checked by {bundled}"))?;
    // A newer SQLite finds more about values (a stale full-text index only from 3.44).
    for n in others.values {
        if !values.contains(&n) {
            values.push(n);
        }
    }
    let mut out: Vec<String> = values.iter().map(|n| value_note(n)).collect();
    if !others.indexes.is_empty() {
        let built = format!("`sqlgit cat | sqlite3` with {cli_name}");
        out.push(warning(&built, &bundled, &others.indexes));
    }
    Ok(out)
}

/// Cross-check the copy `restore --to`'s code built at `db` (and checked with the bundled
/// SQLite) by the sqlite3 CLI `cli` (`cli_name`). Returns the warnings.
pub fn check_inproc_copy(cli_name: &str, cli: &Path, db: &Path) -> Result<Vec<String>> {
    let others = by_cli(cli, db)
        .map(Findings::of)
        .and_then(Findings::cross)
        .with_context(|| format!("checked by {cli_name}"))?;
    if others.indexes.is_empty() {
        return Ok(Vec::new());
    }
    let built = format!("`sqlgit restore --to` with {}", bundled_name());
    Ok(vec![warning(&built, cli_name, &others.indexes)])
}

/// `PRAGMA integrity_check` of `db` by the bundled SQLite, CHECK constraints evaluated (rows
/// that break them are a warning, as the README's `sqlite3` recipe finds them); without them
/// when they cannot be (a function this SQLite lacks).
fn checked_by_bundled(db: &Path) -> Result<Findings> {
    let conn = Connection::open(db)?;
    let lines = match check_around_modules(&conn, "integrity_check") {
        Ok(lines) => lines,
        Err(_) => {
            conn.execute_batch("PRAGMA ignore_check_constraints=ON")?;
            check_around_modules(&conn, "integrity_check").context("integrity check failed")?
        }
    };
    Ok(Findings::of(lines))
}

/// The findings of `PRAGMA integrity_check` of `db` by the sqlite3 CLI `cli`, CHECK constraints
/// evaluated when they can be (see [`checked_by_bundled`]). A CLI from 3.44 on asks each virtual
/// table's module to check it too, and one that cannot (an FTS5 table whose tokenizer the
/// application registers) fails the whole pragma: then, as [`check_around_modules`] does
/// in-process, the lines are those of each ordinary table's own check, each virtual table's, and
/// for a table whose module fails, a line naming it (the bundled SQLite checks the whole file).
fn by_cli(cli: &Path, db: &Path) -> Result<Vec<String>> {
    let whole = match by_cli_of(cli, db, &[None]) {
        Ok(lines) => return Ok(lines),
        Err(e) => e,
    };
    around_modules(cli, db).unwrap_or(Err(whole))
}

/// [`by_cli`]'s check around virtual tables: None when every module could check its tables.
fn around_modules(cli: &Path, db: &Path) -> Option<Result<Vec<String>>> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    let own = check_virtual_tables(&conn, |name| by_cli_of(cli, db, &[Some(name)])).ok()??;
    let tables = conn
        .prepare("SELECT name FROM main.sqlite_schema WHERE type = 'table' AND rootpage > 0")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(anyhow::Error::from);
    Some(tables.and_then(|tables: Vec<String>| {
        let names: Vec<Option<&str>> = tables.iter().map(|t| Some(t.as_str())).collect();
        let mut lines = by_cli_of(cli, db, &names)?;
        lines.extend(own);
        Ok(lines)
    }))
}

/// The CLI's integrity check of each of `tables` (None: the whole database), CHECK
/// constraints ignored when evaluating them fails.
fn by_cli_of(cli: &Path, db: &Path, tables: &[Option<&str>]) -> Result<Vec<String>> {
    by_cli_with(cli, db, "", tables)
        .or_else(|_| by_cli_with(cli, db, "PRAGMA ignore_check_constraints=ON;\n", tables))
}

/// The CLI asked for each finding as the hex of its bytes (in the database's encoding, which it
/// prints first): a finding is one row, whatever a name in it holds (a line break, a CR, `|`),
/// and no version of the CLI escapes or wraps hex digits.
fn check_as_hex(tables: &[Option<&str>]) -> String {
    let mut sql = String::from("PRAGMA encoding;\n");
    for table in tables {
        let arg = table.map_or(String::new(), |t| format!("'{}'", t.replace('\'', "''")));
        sql.push_str(&format!(
            "SELECT hex(CAST(integrity_check AS BLOB)) FROM pragma_integrity_check({arg});\n"
        ));
    }
    sql
}

fn by_cli_with(cli: &Path, db: &Path, setup: &str, tables: &[Option<&str>]) -> Result<Vec<String>> {
    let mut child = Command::new(cli)
        .args(["-bail", "-batch", "-list"])
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run {}", cli.display()))?;
    let sql = format!("{setup}{}", check_as_hex(tables));
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(sql.as_bytes())?;
    let out = child.wait_with_output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !err.trim().is_empty() {
        let said = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        bail!("it exited with {} ({said})", out.status);
    }
    hex_rows(&String::from_utf8_lossy(&out.stdout))
}

/// [`check_as_hex`]'s output read back: the encoding's line, then a finding per line.
fn hex_rows(out: &str) -> Result<Vec<String>> {
    let mut lines = out.lines().map(str::trim);
    let encoding = lines.next().unwrap_or_default().to_ascii_lowercase();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let bytes = (0..l.len())
                .step_by(2)
                .map(|i| l.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect::<Option<Vec<u8>>>()
                .with_context(|| format!("read the integrity check's output: {l:?}"))?;
            Ok(decode(&bytes, &encoding))
        })
        .collect()
}

/// Text of a database in `encoding` (`utf-8`, `utf-16le`, `utf-16be`), invalid bytes replaced.
fn decode(bytes: &[u8], encoding: &str) -> String {
    let unit: fn([u8; 2]) -> u16 = match encoding {
        "utf-16le" => u16::from_le_bytes,
        "utf-16be" => u16::from_be_bytes,
        _ => return String::from_utf8_lossy(bytes).into_owned(),
    };
    let units: Vec<u16> = bytes.chunks_exact(2).map(|c| unit([c[0], c[1]])).collect();
    String::from_utf16_lossy(&units)
}

/// The warning for a value finding of an integrity check (see [`crate::restore::check_integrity`]).
fn value_note(n: &str) -> String {
    if is_stale_fts_index(n) {
        format!(
            "a full-text index does not match the rows it indexes ({n}), in the \
             snapshot as in the database it was taken of (an external-content table changed \
             without its index); restored as it is: INSERT INTO t(t) VALUES('rebuild') \
             rebuilds it"
        )
    } else if let Some(table) = finding_table(n) {
        vtab_note(table, n)
    } else {
        format!("the database holds values its own schema rejects ({n}); restored as they are")
    }
}

/// The warning for a virtual table's own finding other than a stale full-text index: what the
/// module reads in its shadow tables, or the content table it names, is restored exactly.
fn vtab_note(table: &str, n: &str) -> String {
    let why = if n.contains("unable to check virtual table") {
        "its module cannot check it here (an FTS5 tokenizer the application registers at run \
         time, for one); its shadow tables are checked and restored exactly"
    } else if n.starts_with("unable to validate the inverted index") {
        "the content table or column its `content=` option names is gone (renamed or dropped \
         after the index was made), in the snapshot as in the database it was taken of"
    } else {
        "in the snapshot as in the database it was taken of: its shadow tables are restored \
         exactly"
    };
    format!("virtual table {table} fails its module's own check ({n}): {why}; restored as it is")
}

/// The warning for indexes that `built` (a restore, as its SQLite builds them) holds and
/// `checker` (the other SQLite) computes otherwise.
fn warning(built: &str, checker: &str, indexes: &[(String, String)]) -> String {
    let names: Vec<&str> = indexes.iter().map(|(n, _)| n.as_str()).collect();
    // A name holding a line break or another control character is shown escaped.
    let shown: Vec<String> = names
        .iter()
        .map(|n| match n.contains(char::is_control) {
            true => format!("{n:?}"),
            false => n.to_string(),
        })
        .collect();
    let first = indexes.first().map_or("", |(_, l)| l.as_str());
    let reindex: Vec<String> = names
        .iter()
        .map(|n| format!("REINDEX {}", crate::dump::literal::quote_name(n)))
        .collect();
    format!(
        "{} {} as {built} builds {} fail{} the integrity check of {checker} ({first}): \
         SQLite computes its keys or rows (an expression, a partial index's WHERE, a virtual \
         generated column), and versions differ (e.g. in turning floats into text); the restore \
         is exact for the SQLite that built it: if your application uses another, run `{}` with \
         that one",
        if names.len() == 1 { "index" } else { "indexes" },
        shown.join(", "),
        if names.len() == 1 { "it" } else { "them" },
        if names.len() == 1 { "s" } else { "" },
        reindex.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_about_indexes_name_them() {
        let f = Findings::of(vec![
            "row 1 missing from index ti".into(),
            "wrong # of entries in index ti".into(),
            "non-unique entry in index u x".into(),
            "index tp stores an imprecise floating-point value for row 3".into(),
            "rowid not at end-of-record for row 2 of index q".into(),
            "non-INTEGER value in t.a".into(),
            "*** in database main ***".into(),
            "ok".into(),
        ]);
        let names: Vec<&str> = f.indexes.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["ti", "u x", "tp", "q"]);
        assert_eq!(f.values, ["non-INTEGER value in t.a"]);
        assert_eq!(f.structure, ["*** in database main ***"]);
    }
}
