//! Row statements of a dump decoded into values, without SQLite, for the fast restore path.
//!
//! A row statement is `INSERT INTO "t"(cols) VALUES(v1,v2);` (format 1) or the same with several
//! rows, `VALUES\n(v1,v2),\n(v3,v4);` (format 2). Only the spellings [`crate::dump::literal`]
//! writes are decoded: `NULL`, integers, canonical (shortest round-trip) reals, `±1e999`,
//! `ieee754(M,E)`, `'text'` joined with `char(0,13,…)` by `||` (in parentheses too),
//! `replace('text','\r',char(13))` (nested for NUL) and `X'..'`.
//! A row with any other value (`CAST(X'..' AS TEXT)`, a function, a different spelling) is kept
//! as SQL text, `INSERT … VALUES(that row);`, and so is anything that is not a row statement:
//! what is not recognised exactly is left to SQLite.

use std::collections::HashMap;

use crate::dump::literal::quoted_end;

mod literal;
use literal::{blob, number, value};

/// A decoded value; text and blob bytes live in [`Batch::bytes`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(usize, usize),
    Blob(usize, usize),
}

/// What the connection's thread does, in order.
#[derive(Debug)]
pub enum Op {
    /// Bind the `n` values from `vals[first..]` to statement `id` and step it. `sql` (the row as
    /// one statement) is set when some text is not valid UTF-8: a UTF-16 database must run it
    /// as SQL, since SQLite converts such text piece by piece.
    Row {
        id: u32,
        first: usize,
        sql: Option<(usize, usize)>,
    },
    /// Run SQL text (`bytes[start..end]`) as it is.
    Sql(usize, usize),
}

/// Work for the connection's thread: operations and the values and bytes they refer to.
#[derive(Debug, Default)]
pub struct Batch {
    /// Statements first seen in this batch: id, SQL (`INSERT …(?,…)`) to prepare.
    pub stmts: Vec<(u32, Vec<u8>)>,
    pub ops: Vec<Op>,
    pub vals: Vec<Val>,
    pub bytes: Vec<u8>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.stmts.is_empty()
    }

    /// Emptied, its memory kept for the next batch.
    pub fn clear(&mut self) {
        self.stmts.clear();
        self.ops.clear();
        self.vals.clear();
        self.bytes.clear();
    }

    /// Rough size, for cutting batches.
    pub fn weight(&self) -> usize {
        self.bytes.len() + 24 * self.vals.len() + 32 * self.ops.len()
    }

    pub fn text(&self, (start, end): (usize, usize)) -> &[u8] {
        &self.bytes[start..end]
    }

    fn push_sql(&mut self, sql: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(sql);
        self.ops.push(Op::Sql(start, self.bytes.len()));
    }
}

/// Turns SQL pieces into [`Batch`] operations; remembers the row statements it has seen.
#[derive(Default)]
pub struct Decoder {
    ids: HashMap<(Vec<u8>, usize), u32>,
    next_id: u32,
    /// The last statement used (header, values, id): rows come in runs of one table.
    last: Option<(Vec<u8>, usize, u32)>,
}

/// Where a batch stood before a statement, to undo a statement that turns out not to be rows.
struct Mark {
    stmts: usize,
    ops: usize,
    vals: usize,
    bytes: usize,
    next_id: u32,
}

impl Decoder {
    /// Append the operations of `piece` (complete SQL statements, as `execute` takes them) to
    /// `batch`: rows while the statements are row statements, then the rest as SQL.
    pub fn decode(&mut self, piece: &[u8], batch: &mut Batch) {
        // The shell rule (a CR before a LF is dropped) and NUL bytes (the end of SQL text for
        // SQLite) are left to `execute`: dumps never write them in row statements.
        // (`contains` of a byte is a fast memchr; the pair scan runs only when a CR is there.)
        let cr_lf = piece.contains(&b'\r') && piece.windows(2).any(|w| w == b"\r\n");
        if cr_lf || piece.contains(&0) {
            batch.push_sql(piece);
            return;
        }
        let mut p = 0;
        loop {
            p += piece[p..]
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            if p == piece.len() {
                return;
            }
            let mark = self.mark(batch);
            match self.statement(piece, p, batch) {
                Some(end) => p = end,
                None => {
                    self.undo(mark, batch);
                    batch.push_sql(&piece[p..]);
                    return;
                }
            }
        }
    }

    fn mark(&self, b: &Batch) -> Mark {
        Mark {
            stmts: b.stmts.len(),
            ops: b.ops.len(),
            vals: b.vals.len(),
            bytes: b.bytes.len(),
            next_id: self.next_id,
        }
    }

    fn undo(&mut self, m: Mark, b: &mut Batch) {
        b.stmts.truncate(m.stmts);
        b.ops.truncate(m.ops);
        b.vals.truncate(m.vals);
        b.bytes.truncate(m.bytes);
        // Only ids handed out since the mark go (none, for most statements that are not rows:
        // a schema of thousands of tables made this a scan per CREATE).
        if self.next_id != m.next_id {
            self.ids.retain(|_, id| *id < m.next_id);
        }
        self.next_id = m.next_id;
        self.last = None;
    }

    /// One row statement at `p`: its rows appended to `batch`, the index after its `;`.
    fn statement(&mut self, sql: &[u8], p: usize, batch: &mut Batch) -> Option<usize> {
        // Rows come in runs of one table: the last header seen is checked first.
        let (head_end, cached) = match &self.last {
            Some((h, _, _)) if sql[p..].starts_with(h) => (p + h.len(), true),
            _ => (header(sql, p)?, false),
        };
        let head = &sql[p..head_end];
        let mut q = skip_space(sql, head_end);
        loop {
            if sql.get(q) != Some(&b'(') {
                return None;
            }
            let first = batch.vals.len();
            let (end, values, kind) = row(sql, q, batch)?;
            let row_sql = &sql[q..end];
            let id = match &self.last {
                Some((_, n, id)) if cached && *n == values => *id,
                _ => self.id(head, values, batch),
            };
            let op = match kind {
                Kind::Bind => Op::Row {
                    id,
                    first,
                    sql: None,
                },
                kind => {
                    let start = batch.bytes.len();
                    batch.bytes.extend_from_slice(head);
                    batch.bytes.extend_from_slice(row_sql);
                    batch.bytes.push(b';');
                    let range = (start, batch.bytes.len());
                    if kind == Kind::Sql {
                        batch.vals.truncate(first);
                        Op::Sql(range.0, range.1)
                    } else {
                        Op::Row {
                            id,
                            first,
                            sql: Some(range),
                        }
                    }
                }
            };
            batch.ops.push(op);
            q = skip_space(sql, end);
            match sql.get(q) {
                Some(b',') => q = skip_space(sql, q + 1),
                Some(b';') => return Some(q + 1),
                _ => return None,
            }
        }
    }

    /// The statement id for `head` with `values` values, registering a new one in `batch`.
    fn id(&mut self, head: &[u8], values: usize, batch: &mut Batch) -> u32 {
        if let Some((h, n, id)) = &self.last
            && h == head
            && *n == values
        {
            return *id;
        }
        let id = self.new_id(head, values, batch);
        self.last = Some((head.to_vec(), values, id));
        id
    }

    fn new_id(&mut self, head: &[u8], values: usize, batch: &mut Batch) -> u32 {
        if let Some(&id) = self.ids.get(&(head.to_vec(), values)) {
            return id;
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut sql = head.to_vec();
        sql.push(b'(');
        for i in 0..values {
            sql.extend_from_slice(if i == 0 { b"?" } else { b",?" });
        }
        sql.push(b')');
        batch.stmts.push((id, sql));
        self.ids.insert((head.to_vec(), values), id);
        id
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Every value decoded.
    Bind,
    /// Every value decoded, but some text is not valid UTF-8.
    BindUtf8Only,
    /// Some value is not decoded: the row is SQL.
    Sql,
}

/// The row `(…)` at `p` (which holds `(`): values decoded into `batch.vals` (one that is not
/// decoded is pushed as NULL). Returns the index after its `)`, the number of values, its kind.
fn row(sql: &[u8], p: usize, batch: &mut Batch) -> Option<(usize, usize, Kind)> {
    let mut q = p + 1;
    let mut n = 0;
    let mut kind = Kind::Bind;
    loop {
        let (got, end) = match quick_value(sql, q, batch) {
            Some((v, end)) => (Some((v, true)), end),
            None => {
                let end = value_end(sql, q)?;
                (value(&sql[q..end], batch), end)
            }
        };
        match got {
            Some((v, utf8)) => {
                batch.vals.push(v);
                if !utf8 && kind == Kind::Bind {
                    kind = Kind::BindUtf8Only;
                }
            }
            None => {
                batch.vals.push(Val::Null);
                kind = Kind::Sql;
            }
        }
        n += 1;
        q = end + 1;
        if sql[end] == b')' {
            return Some((q, n, kind));
        }
    }
}

/// The common spellings decoded in one pass: an integer, `NULL`, a `'quoted'` ASCII text, a
/// blob; the value and the index of the `,` or `)` after it. None: take the general path.
fn quick_value(sql: &[u8], p: usize, batch: &mut Batch) -> Option<(Val, usize)> {
    let ends = |e: usize| matches!(sql.get(e), Some(b',' | b')'));
    match *sql.get(p)? {
        b'0'..=b'9' | b'-' => {
            let neg = sql[p] == b'-';
            let mut e = p + usize::from(neg);
            let mut x: i64 = 0;
            while let Some(&d @ b'0'..=b'9') = sql.get(e) {
                let d = i64::from(d - b'0');
                // Negative while reading, so that i64::MIN fits.
                x = x.checked_mul(10)?.checked_sub(d)?;
                e += 1;
            }
            if e == p + usize::from(neg) {
                return None;
            }
            if ends(e) {
                return Some((Val::Int(if neg { x } else { x.checked_neg()? }), e));
            }
            while let Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'-' | b'+') = sql.get(e) {
                e += 1;
            }
            if !ends(e) {
                return None;
            }
            number(&sql[p..e]).map(|v| (v, e))
        }
        b'N' => (sql.get(p..p + 4)? == b"NULL" && ends(p + 4)).then_some((Val::Null, p + 4)),
        b'\'' => {
            let close = p + 1 + sql.get(p + 1..)?.iter().position(|&b| b == b'\'')?;
            let inner = &sql[p + 1..close];
            // Doubled quotes, or text that is not ASCII (whose UTF-8 must be checked): the
            // general path.
            if !ends(close + 1) || !inner.is_ascii() {
                return None;
            }
            let start = batch.bytes.len();
            batch.bytes.extend_from_slice(inner);
            Some((Val::Text(start, batch.bytes.len()), close + 1))
        }
        b'X' if sql.get(p + 1) == Some(&b'\'') => {
            let close = p + 2 + sql.get(p + 2..)?.iter().position(|&b| b == b'\'')?;
            if !ends(close + 1) {
                return None;
            }
            blob(&sql[p..=close], batch).map(|v| (v, close + 1))
        }
        _ => None,
    }
}

fn skip_space(sql: &[u8], p: usize) -> usize {
    p + sql[p.min(sql.len())..]
        .iter()
        .take_while(|b| b.is_ascii_whitespace())
        .count()
}

/// The end of a row statement's header at `p`, just after `VALUES`: `INSERT INTO <name>`, an
/// optional column list, ` VALUES`. Names are `"quoted"` or plain words.
fn header(sql: &[u8], p: usize) -> Option<usize> {
    let mut q = p + b"INSERT INTO ".len();
    if !sql.get(p..q)?.eq(b"INSERT INTO ") {
        return None;
    }
    q = name(sql, q)?;
    if sql.get(q) == Some(&b'(') {
        q += 1;
        loop {
            q = name(sql, q)?;
            match sql.get(q)? {
                b',' => q += 1,
                b')' => break,
                _ => return None,
            }
        }
        q += 1;
    }
    let end = q + b" VALUES".len();
    (sql.get(q..end)? == b" VALUES").then_some(end)
}

/// The index after a `"quoted"` name or a plain word at `p`.
fn name(sql: &[u8], p: usize) -> Option<usize> {
    match *sql.get(p)? {
        b'"' => {
            let mut q = p + 1;
            loop {
                q += sql.get(q..)?.iter().position(|&b| b == b'"')?;
                if sql.get(q + 1) == Some(&b'"') {
                    q += 2;
                } else {
                    return Some(q + 1);
                }
            }
        }
        b if b.is_ascii_alphabetic() || b == b'_' => Some(
            p + sql[p..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count(),
        ),
        _ => None,
    }
}

/// The index of the `,` or `)` that ends the value starting at `p`, following SQL's quotes
/// (`'`, `"`, `` ` ``, `[…]`) and parentheses. None at a comment or the end of the text: the
/// statement is then left to SQLite whole.
fn value_end(sql: &[u8], mut p: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match *sql.get(p)? {
            q @ (b'\'' | b'"' | b'`') => p = quoted_end(sql, p + 1, q)?,
            b'[' => p += 1 + sql.get(p..)?.iter().position(|&b| b == b']')?,
            b'-' if sql.get(p + 1) == Some(&b'-') => return None,
            b'/' if sql.get(p + 1) == Some(&b'*') => return None,
            b'(' => {
                depth += 1;
                p += 1;
            }
            b')' if depth == 0 => return Some(p),
            b')' => {
                depth -= 1;
                p += 1;
            }
            b',' if depth == 0 => return Some(p),
            b';' if depth == 0 => return None,
            _ => p += 1,
        }
    }
}

#[cfg(test)]
mod tests;
