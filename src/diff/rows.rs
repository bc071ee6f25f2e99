//! Row statements of a dump chunk, parsed without SQLite.
//!
//! A diff must read changed chunks quickly and exactly, so it does not execute them: each row is
//! one `INSERT INTO … VALUES(v1,v2,…);\n` statement written by [`crate::dump::rows`], and all
//! that is needed is where each value's literal starts and ends. A value is any text up to the
//! next `,` or `)` outside quotes and parentheses, which covers every spelling the dump uses
//! (`NULL`, integers, reals, `ieee754(M,E)`, `'it''s'`, `'a'||char(0,0)`, `replace('…','\r',
//! char(13))`, `X'00ab'`) and keeps the literal bytes themselves: equal values always have equal
//! spellings, so rows and keys are compared as bytes, and a row's statement text can be copied
//! verbatim into an SQL patch. REALs and texts that an older sqlgit spelled otherwise are read in
//! today's spelling.

use anyhow::{Result, bail};

use crate::dump::literal::value_end;
use crate::dump::{real, textlit};

/// The parsed rows of one chunk (or of a system table's file).
pub struct Rows {
    data: Vec<u8>,
    rows: Vec<Span>,
    /// Value literals, as offsets from the start of their row (compact: rows can be many).
    values: Vec<(u32, u32)>,
}

struct Span {
    start: u32,
    end: u32,
    first_value: u32,
    end_value: u32,
}

/// One row: its whole statement and its value literals.
#[derive(Clone, Copy)]
pub struct RowRef<'a> {
    /// The statement, from `INSERT` to the `;\n` that ends it.
    pub text: &'a [u8],
    values: &'a [(u32, u32)],
}

impl<'a> RowRef<'a> {
    /// The literal of the `i`-th value.
    pub fn value(&self, i: usize) -> &'a [u8] {
        let (s, e) = self.values[i];
        &self.text[s as usize..e as usize]
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl Rows {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Only the rows `keep` accepts (their statements copied, the rest freed).
    pub fn filtered(self, mut keep: impl FnMut(RowRef) -> bool) -> Rows {
        let mut out = Rows {
            data: Vec::new(),
            rows: Vec::new(),
            values: Vec::new(),
        };
        for i in 0..self.len() {
            let row = self.get(i);
            if keep(row) {
                out.push(row.text, row.values);
            }
        }
        out
    }

    fn push(&mut self, text: &[u8], values: &[(u32, u32)]) {
        let start = self.data.len() as u32;
        let first_value = self.values.len() as u32;
        self.data.extend_from_slice(text);
        self.values.extend_from_slice(values);
        self.rows.push(Span {
            start,
            end: self.data.len() as u32,
            first_value,
            end_value: self.values.len() as u32,
        });
    }

    pub fn get(&self, i: usize) -> RowRef<'_> {
        let s = &self.rows[i];
        RowRef {
            text: &self.data[s.start as usize..s.end as usize],
            values: &self.values[s.first_value as usize..s.end_value as usize],
        }
    }
}

/// Parse the statements of `data`, each of which must start with `prefix` (up to and including
/// `VALUES(`). With `lenient`, other one-line statements (the `DELETE FROM sqlite_sequence;` of
/// a system table's file) are skipped.
///
/// Format-2 statements (`prefix` without its `(`, a line end, then one `(…)` per line ended by
/// `,` or `;`) are read too: each of their rows becomes the format-1 statement with the same
/// values, so rows of both formats compare as bytes and copy into SQL patches the same way.
pub fn parse(data: Vec<u8>, prefix: &[u8], lenient: bool) -> Result<Rows> {
    if data.len() > u32::MAX as usize / 2 {
        bail!("row chunk of {} bytes is too large", data.len());
    }
    let head = prefix.strip_suffix(b"(").unwrap_or(prefix);
    let mut out = Rows {
        data: Vec::with_capacity(data.len() + data.len() / 4),
        rows: Vec::new(),
        values: Vec::new(),
    };
    let mut row_values: Vec<(u32, u32)> = Vec::new();
    let mut p = 0;
    while p < data.len() {
        let multi = data[p..].starts_with(head) && data.get(p + head.len()) == Some(&b'\n');
        if !multi && !data[p..].starts_with(prefix) {
            let line_end = data[p..].iter().position(|&b| b == b'\n');
            match line_end {
                Some(n) if lenient => {
                    p += n + 1;
                    continue;
                }
                _ => bail!(
                    "unexpected statement at byte {p}: {:?} (expected {:?})",
                    excerpt(&data[p..]),
                    String::from_utf8_lossy(prefix)
                ),
            }
        }
        let start = p;
        // Where the first row's `(` is; every row of a format-2 statement starts with one.
        p += if multi {
            head.len() + 1
        } else {
            prefix.len() - 1
        };
        loop {
            if data.get(p) != Some(&b'(') {
                return Err(malformed(&data, start));
            }
            p += 1;
            row_values.clear();
            let mut text = prefix.to_vec();
            loop {
                let v = p;
                p = value_end(&data, p).ok_or_else(|| malformed(&data, start))?;
                // A REAL or a text as today's dump spells it, so that a snapshot from before
                // the rule changed shows no update where the value is the same.
                let at = text.len() as u32;
                let lit = &data[v..p];
                match real::respelled(lit).or_else(|| textlit::respelled(lit)) {
                    Some(now) => text.extend_from_slice(&now),
                    None => text.extend_from_slice(lit),
                }
                row_values.push((at, text.len() as u32));
                let sep = data[p];
                text.push(sep);
                p += 1;
                if sep == b')' {
                    break;
                }
            }
            text.extend_from_slice(b";\n");
            out.push(&text, &row_values);
            match data.get(p..p + 2) {
                Some(b",\n") if multi => p += 2,
                Some(b";\n") => {
                    p += 2;
                    break;
                }
                _ => return Err(malformed(&data, start)),
            }
        }
    }
    Ok(out)
}

fn malformed(data: &[u8], start: usize) -> anyhow::Error {
    anyhow::anyhow!(
        "malformed row statement at byte {start}: {:?}",
        excerpt(&data[start..])
    )
}

fn excerpt(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(60)]).into_owned()
}

/// The bytes of a text literal as the dump writes it (`'…'` pieces and `char(0,…)` joined by
/// `||`, or `replace(…)`), or None if `lit` is not one.
pub use crate::dump::textlit::decode as decode_text;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_of_every_spelling() {
        let data = b"INSERT INTO \"t\" VALUES(1,-2.5e-7,'a,b)'';\n',X'00ab',NULL,'x'||char(0,0)||'y',ieee754(1,-1074));\n\
                     INSERT INTO \"t\" VALUES(2,1e999,'',X'',NULL,char(0),-0.0);\n"
            .to_vec();
        let rows = parse(data, b"INSERT INTO \"t\" VALUES(", false).unwrap();
        assert_eq!(rows.len(), 2);
        let r = rows.get(0);
        let vals: Vec<&[u8]> = (0..r.len()).map(|i| r.value(i)).collect();
        assert_eq!(
            vals,
            vec![
                &b"1"[..],
                b"-2.5e-7",
                b"'a,b)'';\n'",
                b"X'00ab'",
                b"NULL",
                b"'x'||char(0,0)||'y'",
                b"ieee754(1,-1074)"
            ]
        );
        assert_eq!(rows.get(1).value(6), b"-0.0");
        assert!(rows.get(1).text.ends_with(b");\n"));
    }

    #[test]
    fn rejects_and_skips() {
        let p = b"INSERT INTO \"t\" VALUES(";
        assert!(parse(b"INSERT INTO \"t\" VALUES(1);".to_vec(), p, false).is_err());
        assert!(parse(b"INSERT INTO \"t\" VALUES('1);\n".to_vec(), p, false).is_err());
        assert!(parse(b"DELETE FROM t;\n".to_vec(), p, false).is_err());
        let rows = parse(
            b"DELETE FROM t;\nINSERT INTO \"t\" VALUES(1);\n".to_vec(),
            p,
            true,
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn decodes_text_literals() {
        assert_eq!(decode_text(b"'it''s'").unwrap(), b"it's");
        assert_eq!(decode_text(b"''").unwrap(), b"");
        assert_eq!(decode_text(b"'a'||char(0,0)||'b'").unwrap(), b"a\0\0b");
        assert_eq!(decode_text(b"char(0)").unwrap(), b"\0");
        assert_eq!(decode_text(b"''''").unwrap(), b"'");
        assert!(decode_text(b"X'00'").is_none());
        assert!(decode_text(b"12").is_none());
        assert_eq!(decode_text(b"'a'||char(13,0)||'b'").unwrap(), b"a\r\0b");
        assert_eq!(
            decode_text(b"('a'||char(13))||('b'||'('')')").unwrap(),
            b"a\rb(')"
        );
        assert_eq!(
            decode_text(b"replace(replace('a\\0\\r','\\0',char(0)),'\\r',char(13))").unwrap(),
            b"a\0\r"
        );
    }

    /// A row a snapshot of an older sqlgit holds (a text joined from many `char()` pieces)
    /// reads as the row today's dump writes, so `diff` sees no change.
    #[test]
    fn old_text_spellings_parse_as_today_s() {
        let text = "line\r\n".repeat(10);
        let row = |v: &[u8]| {
            let mut sql = b"INSERT INTO \"t\" VALUES(1,".to_vec();
            sql.extend_from_slice(v);
            sql.extend_from_slice(b");\n");
            sql
        };
        let (mut old, mut now) = (Vec::new(), Vec::new());
        crate::dump::literal::write_text(&mut old, text.as_bytes());
        crate::dump::textlit::write_value_text(&mut now, text.as_bytes());
        assert_ne!(old, now);
        let p = b"INSERT INTO \"t\" VALUES(";
        let (a, b) = (
            parse(row(&old), p, false).unwrap(),
            parse(row(&now), p, false).unwrap(),
        );
        assert_eq!(a.get(0).text, b.get(0).text);
        assert_eq!(a.get(0).value(1), &now[..]);
    }
}
