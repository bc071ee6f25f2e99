//! Where a restore that does not dump back to its snapshot differs from it, and whether every
//! difference is one SQL cannot avoid: a value of another storage class than its column's
//! affinity stores (see [`crate::dump::affinity`]), which every INSERT converts. Those are a
//! warning naming the column and the statement that makes the source consistent; any other
//! difference is a failure that names the file, or the table and its first differing row.
//! Runs only when the hashes already differ: it reads the snapshot and dumps the copy again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, bail};
use git2::{Repository, Tree};
use rusqlite::Connection;
use rusqlite::types::Value;
use sha1::{Digest, Sha1};

use super::realtext::canonical_values;
use super::rowtext::without_restore_steps;
use crate::dump::affinity::{Affinity, warning_line};
use crate::dump::literal::{group_end, quoted_end};
use crate::dump::schema::{Key, Table, read_schema};
use crate::dump::{self, Filters, Sink, source};
use crate::restore::for_each_file;

/// The warnings when every difference between the snapshot (`tree`) and the dump of the
/// restored `copy` is a value its column's affinity converted; else the failure, saying where.
pub fn explain(
    repo: &Repository,
    tree: &Tree,
    copy: &Path,
    format: dump::Format,
) -> Result<Vec<String>> {
    let conn = source::open(copy, std::time::Duration::from_secs(5))?;
    let mut restored = Pieces::new(None);
    dump::dump_as(&conn, &mut restored, &Filters::default(), format)?;
    let mut snapshot = Pieces::new(None);
    for_each_file(repo, tree, |path, sql| {
        snapshot.add(&path.split('/').collect::<Vec<_>>(), sql);
        Ok(())
    })?;
    let (restored, snapshot) = (restored.digests(), snapshot.digests());
    let keys: BTreeSet<&String> = restored.keys().chain(snapshot.keys()).collect();
    let differ: Vec<&String> = keys
        .into_iter()
        .filter(|k| restored.get(*k) != snapshot.get(*k))
        .collect();
    if let Some(file) = differ.iter().find(|k| !k.ends_with("/1-rows")) {
        bail!("its file {file} differs from the restored database's dump of it");
    }
    let dirs: BTreeSet<String> = differ
        .iter()
        .filter_map(|k| k.strip_prefix("1-tables/")?.strip_suffix("/1-rows"))
        .map(str::to_string)
        .collect();
    // The rows of the differing tables only, from both sides.
    let mut restored = Pieces::new(Some(&dirs));
    dump::dump_as(&conn, &mut restored, &Filters::default(), format)?;
    let mut snapshot = Pieces::new(Some(&dirs));
    for_each_file(repo, tree, |path, sql| {
        snapshot.add(&path.split('/').collect::<Vec<_>>(), sql);
        Ok(())
    })?;
    let schema = read_schema(&conn, &Filters::default()).context("read the restored schema")?;
    let checker = Checker::new()?;
    let mut warnings = Vec::new();
    for dir in &dirs {
        let table = (schema.tables.iter())
            .find(|t| &t.dir == dir)
            .with_context(|| format!("the rows of folder {dir} differ from the restore's"))?;
        let (want, got) = (&snapshot.rows[dir], &restored.rows[dir]);
        if let Some(warning) = out_of_key_order(table, want, got) {
            warnings.push(warning);
            continue;
        }
        warnings.extend(compare_rows(&checker, table, want, got)?);
    }
    Ok(warnings)
}

/// The warning when a WITHOUT ROWID table's rows are all there, in another order than its key
/// order: a snapshot an older sqlgit wrote, which read such a table with an index that covers
/// it in that index's order (a restore gives back every row; snapshots this sqlgit takes hold
/// them in key order).
fn out_of_key_order(table: &Table, want: &[Vec<u8>], got: &[Vec<u8>]) -> Option<String> {
    if table.key != Key::Columns || want.len() != got.len() || want == got {
        return None;
    }
    fn sorted(rows: &[Vec<u8>]) -> Vec<&[u8]> {
        let mut rows: Vec<&[u8]> = rows.iter().map(Vec::as_slice).collect();
        rows.sort_unstable();
        rows
    }
    (sorted(want) == sorted(got)).then(|| {
        format!(
            "table {}: the snapshot holds its rows out of key order (an older sqlgit read them \
             in the order of an index that covers the table); every row is there, and snapshots \
             taken now hold them in key order",
            table.name
        )
    })
}

/// A dump's files as hashes (rows of a table hashed as one piece, wherever chunks end), and
/// the rows themselves of the tables in `keep`.
struct Pieces<'a> {
    hashes: BTreeMap<String, Sha1>,
    keep: Option<&'a BTreeSet<String>>,
    rows: BTreeMap<String, Vec<Vec<u8>>>,
}

impl<'a> Pieces<'a> {
    fn new(keep: Option<&'a BTreeSet<String>>) -> Pieces<'a> {
        Pieces {
            hashes: BTreeMap::new(),
            keep,
            rows: BTreeMap::new(),
        }
    }

    fn digests(&self) -> BTreeMap<String, Vec<u8>> {
        (self.hashes.iter())
            .map(|(k, h)| (k.clone(), h.clone().finalize().to_vec()))
            .collect()
    }

    fn add(&mut self, path: &[&str], data: &[u8]) {
        if let ["1-tables", dir, "1-rows", ..] = path {
            // Values an older sqlgit spelled otherwise, in today's spelling (as `verify` hashes).
            let data = canonical_values(data);
            let rows = row_texts(&data);
            match self.keep {
                Some(keep) if keep.contains(*dir) => {
                    (self.rows.entry(dir.to_string()).or_default())
                        .extend(rows.iter().map(|r| r.to_vec()))
                }
                Some(_) => {}
                None => {
                    let hash = self
                        .hashes
                        .entry(format!("1-tables/{dir}/1-rows"))
                        .or_default();
                    for row in rows {
                        hash.update(row);
                        hash.update(b"\n");
                    }
                }
            }
        } else if self.keep.is_none() {
            // Restore steps an older sqlgit did not write are no difference (as `verify` hashes).
            let data = without_restore_steps(path, data);
            self.hashes.entry(path.join("/")).or_default().update(&data);
        }
    }
}

impl Sink for Pieces<'_> {
    fn file(&mut self, path: &[&str], data: Vec<u8>) -> Result<()> {
        self.add(path, &data);
        Ok(())
    }
}

/// Every row `(…)` of a file of INSERT statements as the dump writes them (one per row, or one
/// per chunk with a row per line). Text it does not read as rows is one "row" of its own.
fn row_texts(sql: &[u8]) -> Vec<&[u8]> {
    let mut rows = Vec::new();
    let mut p = 0;
    let skip = |p: &mut usize| {
        while sql.get(*p).is_some_and(|b| b" \n\r\t,;".contains(b)) {
            *p += 1;
        }
    };
    loop {
        skip(&mut p);
        if p >= sql.len() {
            return rows;
        }
        if sql[p] == b'(' {
            let Some(end) = group_end(sql, p) else {
                rows.push(&sql[p..]);
                return rows;
            };
            rows.push(&sql[p..=end]);
            p = end + 1;
            continue;
        }
        match after_insert_head(sql, p) {
            Some(next) => p = next,
            None => {
                rows.push(&sql[p..]);
                return rows;
            }
        }
    }
}

/// Past `INSERT INTO "t"("a","b") VALUES` (the column list optional).
fn after_insert_head(sql: &[u8], p: usize) -> Option<usize> {
    let rest = sql.get(p..)?.strip_prefix(b"INSERT INTO \"")?;
    let mut p = quoted_end(sql, sql.len() - rest.len(), b'"')?;
    if sql.get(p) == Some(&b'(') {
        p = group_end(sql, p)? + 1;
    }
    let rest = sql.get(p..)?;
    let trimmed = rest.trim_ascii_start();
    let after = trimmed.strip_prefix(b"VALUES")?;
    Some(sql.len() - after.len())
}

/// The values of a row `(a,b,…)` as their SQL text.
fn values(row: &[u8]) -> Option<Vec<&[u8]>> {
    let inner = row.strip_prefix(b"(")?.strip_suffix(b")")?;
    let mut out = Vec::new();
    let (mut start, mut p) = (0, 0);
    while p < inner.len() {
        match inner[p] {
            b'\'' => p = quoted_end(inner, p + 1, b'\'')?,
            b'(' => p = group_end(inner, p)? + 1,
            b',' => {
                out.push(&inner[start..p]);
                p += 1;
                start = p;
            }
            _ => p += 1,
        }
    }
    out.push(&inner[start..]);
    Some(out)
}

/// Compare a table's rows, in order: the warnings, or the failure naming the first row whose
/// difference is not a converted value.
fn compare_rows(
    checker: &Checker,
    table: &Table,
    want: &[Vec<u8>],
    got: &[Vec<u8>],
) -> Result<Vec<String>> {
    let first_value = usize::from(table.key == Key::Rowid { emit: true });
    // Per stored column: how many values, and the first as `TEXT '12'`.
    let mut found: BTreeMap<usize, (u64, String)> = BTreeMap::new();
    for (n, (w, g)) in want.iter().zip(got).enumerate() {
        if w == g {
            continue;
        }
        let fail = || {
            anyhow::anyhow!(
                "table {}: row {} of the snapshot is {}, the restored database's is {}",
                table.name,
                n + 1,
                shown(w),
                shown(g)
            )
        };
        let (Some(wv), Some(gv)) = (values(w), values(g)) else {
            return Err(fail());
        };
        if wv.len() != gv.len() {
            return Err(fail());
        }
        for (i, (a, b)) in wv.iter().zip(&gv).enumerate() {
            if a == b {
                continue;
            }
            let column = i
                .checked_sub(first_value)
                .filter(|&c| c < table.affinities.len());
            let Some(column) = column else {
                return Err(fail());
            };
            let Some(class) = checker.converts(table.affinities[column], a, b) else {
                return Err(fail());
            };
            let entry = found.entry(column).or_insert_with(|| (0, String::new()));
            if entry.0 == 0 {
                entry.1 = format!("{class} {}", shown(a));
            }
            entry.0 += 1;
        }
    }
    if want.len() != got.len() {
        bail!(
            "table {}: the snapshot has {} rows, the restored database {}",
            table.name,
            want.len(),
            got.len()
        );
    }
    Ok(found
        .into_iter()
        .map(|(column, (count, example))| {
            let affinity = table.affinities[column].name();
            warning_line(
                &table.name,
                &table.stored_names[column],
                affinity,
                count,
                &example,
            )
        })
        .collect())
}

/// At most about 80 bytes of a row or value, for a message.
fn shown(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

/// Asks SQLite (bundled) what a value becomes in a column of each affinity.
struct Checker {
    conn: Connection,
}

impl Checker {
    fn new() -> Result<Checker> {
        let conn = Connection::open_in_memory().context("open a scratch database")?;
        dump::real::register_sql_functions(&conn)?;
        conn.execute_batch(
            "CREATE TABLE a_TEXT(c TEXT); CREATE TABLE a_NUMERIC(c NUMERIC);
             CREATE TABLE a_INTEGER(c INTEGER); CREATE TABLE a_REAL(c REAL);
             CREATE TABLE a_BLOB(c BLOB);",
        )?;
        Ok(Checker { conn })
    }

    /// The storage class of the snapshot's value `want` when a column of `affinity` converts it
    /// into the restored value `got` (both SQL literals); None for any other difference. The
    /// conversion is the bundled SQLite's, or one whose result depends on SQLite's version
    /// ([`version_dependent`]): `verify` restores with the `sqlite3` CLI.
    fn converts(&self, affinity: Affinity, want: &[u8], got: &[u8]) -> Option<String> {
        let (want, got) = (
            std::str::from_utf8(want).ok()?,
            std::str::from_utf8(got).ok()?,
        );
        let table = format!("a_{}", affinity.name());
        self.conn
            .execute(&format!("DELETE FROM {table}"), [])
            .ok()?;
        (self.conn)
            .execute(&format!("INSERT INTO {table} VALUES(({want}))"), [])
            .ok()?;
        let sql = format!("SELECT ({want}), c, ({got}) FROM {table}");
        let (want, stored, got): (Value, Value, Value) = (self.conn)
            .query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .ok()?;
        let converted = !same(&stored, &want)
            && (same(&stored, &got) || version_dependent(&want, &stored, &got));
        converted.then(|| format!("{:?}", want.data_type()).to_uppercase())
    }
}

/// Two values the same, a REAL bit for bit (the sign of zero counts: a REAL column stores
/// -0.0 as 0.0).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Real(x), Value::Real(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// Whether `got` is what another SQLite version makes of `want` where the bundled one stores
/// `stored`: a REAL in a TEXT column is rendered with 15 significant digits by 3.40, with up
/// to 17 (as many as read back to the same REAL) by newer versions; TEXT that reads as a
/// number with more digits than a REAL holds is rounded by 3.40 through `long double`, which
/// can land a unit in the last place away from newer versions' exact rounding.
fn version_dependent(want: &Value, stored: &Value, got: &Value) -> bool {
    match (want, stored, got) {
        (Value::Real(r), Value::Text(_), Value::Text(g)) => g
            .trim()
            .parse::<f64>()
            .is_ok_and(|g| g == *r || ((g - r) / r).abs() <= 1e-14),
        (Value::Text(_), Value::Real(a), Value::Real(b)) => ulps_apart(*a, *b) <= 2,
        (Value::Text(_), Value::Integer(a), Value::Integer(b)) => {
            ulps_apart(*a as f64, *b as f64) <= 2
        }
        _ => false,
    }
}

/// How many representable doubles apart `a` and `b` are (of one sign; else u64::MAX).
fn ulps_apart(a: f64, b: f64) -> u64 {
    if a.is_sign_negative() != b.is_sign_negative() {
        return if a == b { 0 } else { u64::MAX };
    }
    a.to_bits().abs_diff(b.to_bits())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_in_both_formats() {
        let v1 = b"INSERT INTO \"t(x)\"(rowid,\"a\") VALUES(1,'a),(b');\nINSERT INTO \"t(x)\"(rowid,\"a\") VALUES(2,X'00');\n";
        assert_eq!(row_texts(v1), vec![&b"(1,'a),(b')"[..], b"(2,X'00')"]);
        let v2 = b"INSERT INTO \"t\" VALUES\n(1,'x'||char(0)||'y'),\n(2,ieee754(1,2));\n";
        let rows = row_texts(v2);
        assert_eq!(
            rows,
            vec![&b"(1,'x'||char(0)||'y')"[..], b"(2,ieee754(1,2))"]
        );
        assert_eq!(values(rows[1]).unwrap(), vec![&b"2"[..], b"ieee754(1,2)"]);
    }

    #[test]
    fn only_a_conversion_by_the_affinity_passes() {
        let c = Checker::new().unwrap();
        assert_eq!(
            c.converts(Affinity::Integer, b"'12'", b"12").as_deref(),
            Some("TEXT")
        );
        assert_eq!(
            c.converts(Affinity::Text, b"3.0", b"'3.0'").as_deref(),
            Some("REAL")
        );
        assert_eq!(
            c.converts(Affinity::Integer, b"3.0", b"3").as_deref(),
            Some("REAL")
        );
        assert_eq!(c.converts(Affinity::Integer, b"'12'", b"13"), None);
        assert_eq!(c.converts(Affinity::Blob, b"'12'", b"12"), None);
        assert_eq!(c.converts(Affinity::Text, b"'a'", b"'b'"), None);
        // The sign of zero, which a REAL column does not keep.
        assert_eq!(
            c.converts(Affinity::Real, b"-0.0", b"0.0").as_deref(),
            Some("REAL")
        );
        assert_eq!(c.converts(Affinity::Real, b"0.0", b"-0.0"), None);
        // What 3.40 makes where newer versions differ: 15 digits, a long decimal's rounding.
        assert_eq!(
            c.converts(Affinity::Text, b"1.0/3", b"'0.333333333333333'")
                .as_deref(),
            Some("REAL")
        );
        assert_eq!(c.converts(Affinity::Text, b"1.0/3", b"'0.3334'"), None);
        assert_eq!(
            c.converts(
                Affinity::Real,
                b"'4.83087327751693869e+187'",
                b"4.8308732775169382e+187"
            )
            .as_deref(),
            Some("TEXT")
        );
        assert_eq!(c.converts(Affinity::Real, b"'4.8e+187'", b"4.9e+187"), None);
    }
}
