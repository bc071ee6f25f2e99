//! The hash `verify` compares a snapshot and a dump of its restore by: the SQL text as if each
//! table's rows were one statement.
//!
//! In format 2 every chunk file is its own `INSERT … VALUES` statement, so where chunks end is in
//! the text: a snapshot taken by a sqlgit that cut chunks by another rule holds the same rows as
//! a dump made today in other statements. Hashing each chunk's rows without the statement around
//! them (the `INSERT` line once per run of chunks, `,\n` between chunks) makes the hash depend on
//! the rows and their order only. Format 1 writes one `INSERT` per row: its text is hashed as it
//! is. In both, REAL values are hashed as the bits they stand for, and texts in today's spelling
//! ([`super::realtext`]).

use std::borrow::Cow;

use sha1::{Digest, Sha1};

use super::realtext::canonical_values;
use crate::dump::Format;
use crate::dump::literal::quoted_end;

/// A SHA-1 of a database folder's files, fed in path order.
pub struct RowText {
    hash: Sha1,
    format: Format,
    /// The `INSERT … VALUES` line of the statement the last chunk belonged to.
    open: Option<Vec<u8>>,
}

impl RowText {
    pub fn new(format: Format) -> RowText {
        RowText {
            hash: Sha1::new(),
            format,
            open: None,
        }
    }

    /// Add the file at `path` (`/`-separated, under the database's folder), as a snapshot's
    /// tree walk names it.
    pub fn file_at(&mut self, path: &str, data: &[u8]) {
        self.file(&path.split('/').collect::<Vec<_>>(), data);
    }

    /// Add the file at `path` (its components under the database's folder).
    pub fn file(&mut self, path: &[&str], data: &[u8]) {
        let parts = match self.format {
            Format::V1 => None,
            Format::V2 => chunk_parts(path, data),
        };
        match parts {
            Some((head, rows)) => {
                if self.open.as_deref() == Some(head) {
                    self.hash.update(b",\n");
                } else {
                    self.close();
                    self.hash.update(head);
                    self.open = Some(head.to_vec());
                }
                self.hash.update(canonical_values(rows));
            }
            None if is_rows_file(path) => {
                self.close();
                self.hash.update(canonical_values(data));
            }
            None => {
                self.close();
                self.hash.update(without_restore_steps(path, data));
            }
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.close();
        self.hash.finalize().to_vec()
    }

    fn close(&mut self) {
        if self.open.take().is_some() {
            self.hash.update(b";\n");
        }
    }
}

/// `data`, the file at `path` (not rows), without the restore steps an older sqlgit wrote only
/// sometimes or not at all, which change no byte of the restore: lines that are sqlite3 shell
/// commands (`.dbconfig …`), and in `2-sqlite_sequence.sql` the AUTOINCREMENT table made and
/// dropped to create sqlite_sequence (written only when no other table would make it).
pub(super) fn without_restore_steps<'d>(path: &[&str], data: &'d [u8]) -> Cow<'d, [u8]> {
    let sequence = path == ["2-sqlite_sequence.sql"];
    let shell = data.starts_with(b".dbconfig ") || data.windows(11).any(|w| w == b"\n.dbconfig ");
    if !shell && !sequence {
        return Cow::Borrowed(data);
    }
    let maker = |line: &[u8]| {
        let line = String::from_utf8_lossy(line);
        let name = |rest: &str| {
            rest.strip_prefix("sqlgit_make_sequence")
                .is_some_and(|n| n.is_empty() || n.strip_prefix('_').is_some_and(all_digits))
        };
        (line.strip_prefix("CREATE TABLE "))
            .and_then(|l| l.strip_suffix("(i INTEGER PRIMARY KEY AUTOINCREMENT);\n"))
            .or_else(|| line.strip_prefix("DROP TABLE ")?.strip_suffix(";\n"))
            .is_some_and(name)
    };
    let kept: Vec<u8> = data
        .split_inclusive(|&b| b == b'\n')
        .filter(|line| !(line.starts_with(b".dbconfig ") || (sequence && maker(line))))
        .flatten()
        .copied()
        .collect();
    Cow::Owned(kept)
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `path` is a file of a table's rows (any format).
fn is_rows_file(path: &[&str]) -> bool {
    path.len() >= 4 && path[0] == "1-tables" && path[2] == "1-rows"
}

/// A format-2 chunk file's `INSERT INTO "t"(…) VALUES\n` and its rows (without the `;\n` that
/// ends them); None for every other file.
fn chunk_parts<'d>(path: &[&str], data: &'d [u8]) -> Option<(&'d [u8], &'d [u8])> {
    if !is_rows_file(path) {
        return None;
    }
    let (head, rest) = data.split_at(head_end(data)?);
    let rows = rest.strip_suffix(b";\n")?;
    (rows.first() == Some(&b'(')).then_some((head, rows))
}

/// Where a chunk's `INSERT … VALUES\n` ends: names are quoted, and may hold line breaks.
fn head_end(data: &[u8]) -> Option<usize> {
    const END: &[u8] = b" VALUES\n";
    let mut p = b"INSERT INTO ".len();
    if !data.starts_with(b"INSERT INTO ") {
        return None;
    }
    loop {
        match *data.get(p)? {
            b'"' => p = quoted_end(data, p + 1, b'"')?,
            b' ' if data[p..].starts_with(END) => return Some(p + END.len()),
            b'\n' => return None,
            _ => p += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(files: &[(&str, &str)]) -> Vec<u8> {
        hash_as(Format::V2, files)
    }

    fn hash_as(format: Format, files: &[(&str, &str)]) -> Vec<u8> {
        let mut h = RowText::new(format);
        for (path, data) in files {
            h.file_at(path, data.as_bytes());
        }
        h.finish()
    }

    /// The same rows cut into chunks at other rows hash the same; other rows, another order or
    /// another table's statement do not.
    #[test]
    fn rows_hash_the_same_however_they_are_cut_into_chunks() {
        let head = "0-header.sql";
        let ins = "INSERT INTO \"t\" VALUES\n";
        let one = [
            (head, "BEGIN;\n"),
            ("1-tables/t/0-create.sql", "CREATE TABLE t(a);\n"),
            ("1-tables/t/1-rows/a.sql", &format!("{ins}(1),\n(2);\n")),
            ("1-tables/t/1-rows/g/b.sql", &format!("{ins}(3);\n")),
            ("9-commit.sql", "COMMIT;\n"),
        ];
        let all = format!("{ins}(1),\n(2),\n(3);\n");
        let other_cut = [
            one[0],
            one[1],
            ("1-tables/t/1-rows/a.sql", all.as_str()),
            one[4],
        ];
        assert_eq!(hash(&one), hash(&other_cut));
        let swapped = format!("{ins}(2),\n(1),\n(3);\n");
        let reordered = [
            one[0],
            one[1],
            ("1-tables/t/1-rows/a.sql", swapped.as_str()),
            one[4],
        ];
        assert_ne!(hash(&one), hash(&reordered));
        let other_table = "INSERT INTO \"u\" VALUES\n(3);\n".to_string();
        let moved = [
            one[0],
            one[1],
            one[2],
            ("1-tables/t/1-rows/g/b.sql", other_table.as_str()),
            one[4],
        ];
        assert_ne!(hash(&one), hash(&moved));
        // Format 1: a row per statement, hashed as written.
        let v1 = "INSERT INTO \"t\" VALUES(1);\nINSERT INTO \"t\" VALUES(2);\n";
        let f1 = [(head, "BEGIN;\n"), ("1-tables/t/1-rows/a.sql", v1)];
        let mut plain = Sha1::new();
        plain.update(b"BEGIN;\n");
        plain.update(v1.as_bytes());
        assert_eq!(hash_as(Format::V1, &f1), plain.finalize().to_vec());
    }

    /// A snapshot of an older sqlgit, which asked the CLI for nothing (`.dbconfig`) and made
    /// sqlite_sequence only when it had to, hashes as today's does.
    #[test]
    fn shell_commands_are_not_compared() {
        let vt = "PRAGMA writable_schema=ON;\nINSERT INTO sqlite_schema VALUES('x');\n";
        let old = [
            ("0-header.sql", "BEGIN;\n"),
            ("1-tables/f/0-create.sql", vt),
        ];
        let new_vt = format!(".dbconfig defensive off\n{vt}");
        let new = [
            ("0-header.sql", ".dbconfig dqs_ddl on\nBEGIN;\n"),
            ("1-tables/f/0-create.sql", new_vt.as_str()),
        ];
        assert_eq!(hash(&old), hash(&new));
        // It made sqlite_sequence with an AUTOINCREMENT table only when no other table would.
        let rows =
            "DELETE FROM sqlite_sequence;\nINSERT INTO \"sqlite_sequence\" VALUES(1,'t',2);\n";
        let maker = "CREATE TABLE sqlgit_make_sequence_2(i INTEGER PRIMARY KEY AUTOINCREMENT);\n\
                     DROP TABLE sqlgit_make_sequence_2;\n";
        let made = format!("{maker}{rows}");
        let seq = "2-sqlite_sequence.sql";
        assert_eq!(hash(&[(seq, rows)]), hash(&[(seq, made.as_str())]));
        let other = format!(
            "CREATE TABLE sqlgit_make_sequence_x(i INTEGER PRIMARY KEY AUTOINCREMENT);\n{rows}"
        );
        assert_ne!(hash(&[(seq, rows)]), hash(&[(seq, other.as_str())]));
        assert_ne!(
            hash(&[("4-views.sql", rows)]),
            hash(&[("4-views.sql", made.as_str())])
        );
    }

    /// A table name with a line break and quotes in it, and a column list: the statement's first
    /// line is not its `INSERT … VALUES`.
    #[test]
    fn quoted_names_with_line_breaks_are_part_of_the_insert() {
        let ins = "INSERT INTO \"a \"\" VALUES\nb\"(\"x\",\"y\") VALUES\n";
        let cut = [
            ("1-tables/a/1-rows/1.sql", format!("{ins}(1,2);\n")),
            ("1-tables/a/1-rows/2.sql", format!("{ins}(3,4);\n")),
        ];
        let whole = [("1-tables/a/1-rows/1.sql", format!("{ins}(1,2),\n(3,4);\n"))];
        let refs = |f: &[(&'static str, String)]| -> Vec<u8> {
            let v: Vec<(&str, &str)> = f.iter().map(|(p, d)| (*p, d.as_str())).collect();
            hash(&v)
        };
        assert_eq!(refs(&cut), refs(&whole));
        assert_eq!(head_end(ins.as_bytes()), Some(ins.len()));
    }
}
