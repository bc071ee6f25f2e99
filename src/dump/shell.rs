//! How the `sqlite3` shell reads a script, and writing schema text that it cannot misread.
//!
//! A dump is restored by `sqlite3 new.db < dump.sql`, and the shell does not hand its input to
//! SQLite unchanged (`process_input` and `local_getline` in `shell.c`, 3.40 and newer):
//!
//! 1. Input is read line by line; the `\n` and one `\r` before it are removed and lines are
//!    joined again with `\n`: a CR before a line end is lost.
//! 2. A line is cut at its first NUL byte.
//! 3. A line that starts in plain text (not inside a quote or comment), holds only `go` or `/`
//!    (any case, then only blanks or comments), and ends a complete statement if `;` were
//!    added, is replaced by `;` (compatibility with SQL Server and Oracle scripts).
//! 4. At the start of a statement, a line that is blank or only comments is dropped, and a line
//!    starting with `.` or `#` is a shell command, not SQL.
//! 5. Accumulated lines run as soon as a line ends after a `;` in plain text and
//!    `sqlite3_complete` says the text is complete — possibly before the statement the dump
//!    meant (a `;` inside a `-- comment` never ends one; text after an unterminated `/*` is all
//!    comment).
//!
//! Values never meet these rules: literals are single-line except inside quotes, and NUL/CR are
//! written as `char()` ([`super::literal`]). Schema text is stored as typed, so it can hold all
//! of them. [`write_object`] writes it as is when the shell reads it back unchanged *and*
//! SQLite would store exactly that text again; otherwise as an equivalent one-line statement
//! (no comments, no line ends outside quotes) followed by an update of `sqlite_schema.sql` to
//! the exact text and a schema reload — so the restored schema is byte-identical either way.

use std::ffi::CString;

use super::literal::write_text;

/// The kinds of schema object whose text the dump writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    Table,
    Index,
    View,
    Trigger,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Table => "table",
            ObjectKind::Index => "index",
            ObjectKind::View => "view",
            ObjectKind::Trigger => "trigger",
        }
    }
}

/// What turns writable_schema on in a dump: the sqlite3 CLI turns SQLite's defensive mode on
/// from 3.44 (`--unsafe-testing` turns it off), which makes it ignore writable_schema, so a dump
/// asks for it off first, by the shell command every CLI since 3.26 knows (and answers with a
/// line of output, [`is_dbconfig_echo`]).
pub const WRITABLE_ON: &[u8] = b".dbconfig defensive off\nPRAGMA writable_schema=ON;\n";

/// Whether `line` (without its line end) is what the sqlite3 CLI prints when it runs one of a
/// dump's `.dbconfig` commands: the setting's name right-aligned in 19 columns, then on or off.
pub fn is_dbconfig_echo(line: &str) -> bool {
    let Some((name, value)) = line.trim_start().split_once(' ') else {
        return false;
    };
    line.len() == 19 + 1 + value.len()
        && matches!(name, "defensive" | "dqs_ddl")
        && matches!(value, "on" | "off")
}

/// Write the statement that recreates a schema object with exactly `sql` as its stored text.
pub fn write_object(out: &mut Vec<u8>, kind: ObjectKind, name: &str, sql: &[u8]) {
    // A name SQLite reserves for itself (`sqlite_…`) is only accepted with writable_schema on:
    // the database was made that way, and its restore is too.
    let reserved = name
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("sqlite_"));
    if reserved {
        out.extend_from_slice(WRITABLE_ON);
    }
    if reads_back_exactly(kind, sql) {
        out.extend_from_slice(sql);
        out.extend_from_slice(b";\n");
        if reserved {
            out.extend_from_slice(b"PRAGMA writable_schema=RESET;\n");
        }
        return;
    }
    // SQLite reads stored text only up to its first `;` (the rest is never parsed); a trigger's
    // body holds `;` of its own.
    let statement = match code_semicolon(sql) {
        Some(at) if kind != ObjectKind::Trigger => &sql[..at],
        _ => sql,
    };
    out.extend_from_slice(&one_line(statement));
    out.extend_from_slice(b";\n");
    write_fixup(out, kind, name, sql);
}

/// Set the stored text of an object to exactly `sql` and reload the schema, so that everything
/// after (rows, indexes) works from the exact definition.
pub fn write_fixup(out: &mut Vec<u8>, kind: ObjectKind, name: &str, sql: &[u8]) {
    out.extend_from_slice(WRITABLE_ON);
    out.extend_from_slice(b"UPDATE sqlite_schema SET sql=");
    write_text(out, sql);
    out.extend_from_slice(b" WHERE type='");
    out.extend_from_slice(kind.as_str().as_bytes());
    out.extend_from_slice(b"' AND name=");
    write_text(out, name.as_bytes());
    out.extend_from_slice(b";\nPRAGMA writable_schema=RESET;\n");
}

/// Whether `sql;\n` fed to the sqlite3 shell runs as one statement of exactly that text, and
/// SQLite stores exactly `sql` for the object it creates.
pub fn reads_back_exactly(kind: ObjectKind, sql: &[u8]) -> bool {
    if sql.iter().any(|&b| b == b'\r' || b == 0) {
        return false;
    }
    let mut text = sql.to_vec();
    text.push(b';');
    shell_runs_as_one(&text) && stored_as_typed(kind, sql)
}

/// Where the first `;` outside quotes and comments is: SQLite ends a statement there, and stores
/// a table's, index's or view's text without it (`sqlite3CreateIndex` drops a last `;`).
fn code_semicolon(sql: &[u8]) -> Option<usize> {
    let mut at = 0;
    for (kind, bytes) in pieces(sql) {
        if kind == Piece::Code
            && let Some(p) = bytes.iter().position(|&b| b == b';')
        {
            return Some(at + p);
        }
        at += bytes.len();
    }
    None
}

/// Lexical pieces of SQL text, enough to tell code from quotes, comments and blanks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Piece {
    Blank,
    Comment,
    Quoted,
    Code,
}

/// Split `sql` into pieces with SQLite's tokenizer rules for quotes (`'` `"` `` ` `` doubled
/// inside, `[...]`), comments (`--` to the line end, `/*` to `*/` or the end) and blanks.
fn pieces(sql: &[u8]) -> Vec<(Piece, &[u8])> {
    let mut out: Vec<(Piece, &[u8])> = Vec::new();
    let mut i = 0;
    while i < sql.len() {
        let c = sql[i];
        let next = sql.get(i + 1).copied();
        let (kind, end) = if is_space(c) {
            let n = sql[i..].iter().take_while(|&&b| is_space(b)).count();
            (Piece::Blank, i + n)
        } else if c == b'-' && next == Some(b'-') {
            let n = sql[i..]
                .iter()
                .position(|&b| b == b'\n')
                .unwrap_or(sql.len() - i);
            (Piece::Comment, i + n)
        } else if c == b'/' && next == Some(b'*') {
            let end = sql[i + 2..]
                .windows(2)
                .position(|w| w == b"*/")
                .map_or(sql.len(), |p| i + 2 + p + 2);
            (Piece::Comment, end)
        } else if matches!(c, b'\'' | b'"' | b'`' | b'[') {
            (Piece::Quoted, quoted_end(sql, i))
        } else {
            (Piece::Code, i + 1)
        };
        match out.last_mut() {
            Some((Piece::Code, s)) if kind == Piece::Code => {
                let from = i - s.len();
                *s = &sql[from..end];
            }
            _ => out.push((kind, &sql[i..end])),
        }
        i = end;
    }
    out
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0c | b'\r')
}

/// End of the quoted token starting at `start` (the input's end when unterminated).
fn quoted_end(sql: &[u8], start: usize) -> usize {
    let close = if sql[start] == b'[' { b']' } else { sql[start] };
    let mut i = start + 1;
    while i < sql.len() {
        if sql[i] == close {
            if close != b']' && sql.get(i + 1) == Some(&close) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    sql.len()
}

/// The same statement on one line: comments dropped, blanks outside quotes made one space.
/// Quoted names and strings are kept byte for byte (a CR LF inside them may lose its CR in the
/// shell, which is why the exact text is always written back after it).
pub fn one_line(sql: &[u8]) -> Vec<u8> {
    // SQLite reads stored text only up to a NUL byte (the shell too: it cuts lines there).
    let sql = &sql[..sql.iter().position(|&b| b == 0).unwrap_or(sql.len())];
    let mut out = Vec::with_capacity(sql.len());
    let mut gap = false;
    for (kind, bytes) in pieces(sql) {
        match kind {
            Piece::Blank | Piece::Comment => gap = true,
            Piece::Quoted | Piece::Code => {
                if gap && !out.is_empty() {
                    out.push(b' ');
                }
                gap = false;
                out.extend_from_slice(&double_cr_before_lf(bytes));
            }
        }
    }
    out
}

/// Every CR before a LF doubled: the sqlite3 shell drops one, so the text it hands SQLite keeps
/// the CR (our own restore drops one the same way, [`shell_line_ends`]).
fn double_cr_before_lf(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !bytes.windows(2).any(|w| w == b"\r\n") {
        return bytes.into();
    }
    let mut out = Vec::with_capacity(bytes.len() + 8);
    for (i, &b) in bytes.iter().enumerate() {
        out.push(b);
        if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            out.push(b'\r');
        }
    }
    out.into()
}

/// What the sqlite3 shell hands SQLite for script text: one CR before each line end dropped.
/// Restores without the shell read dumps through this, so both restore the same.
pub fn shell_line_ends(sql: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    // Dumps almost never hold a raw CR (values spell it char(13)): one fast scan decides.
    if !sql.contains(&b'\r') || !sql.windows(2).any(|w| w == b"\r\n") {
        return sql.into();
    }
    let mut out = Vec::with_capacity(sql.len());
    for (i, &b) in sql.iter().enumerate() {
        if !(b == b'\r' && sql.get(i + 1) == Some(&b'\n')) {
            out.push(b);
        }
    }
    out.into()
}

/// The words (code and quoted tokens, without blanks and comments) of `sql`, split at
/// punctuation, for checking how SQLite stores a statement's text.
fn words(sql: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    for (kind, bytes) in pieces(sql) {
        match kind {
            Piece::Blank | Piece::Comment => {}
            Piece::Quoted => out.push(bytes),
            Piece::Code => {
                let mut rest = bytes;
                while !rest.is_empty() {
                    let n = rest.iter().take_while(|&&b| is_id_char(b)).count().max(1);
                    out.push(&rest[..n]);
                    rest = &rest[n..];
                }
            }
        }
    }
    out
}

/// How many identifier words of `sql` are `name` (ASCII case-insensitive; bare or quoted with
/// `"`, `` ` `` or `[]`): whether an expression may read a column.
pub fn mentions(sql: &[u8], name: &str) -> usize {
    words(sql)
        .into_iter()
        .filter(|w| unquoted(w).eq_ignore_ascii_case(name.as_bytes()))
        .count()
}

/// How many identifier words of a `CREATE INDEX` statement are `name` in its key list and in
/// its WHERE (a partial index's); None when the key list cannot be found.
pub fn index_mentions(sql: &[u8], name: &str) -> Option<(usize, usize)> {
    let words = words(sql);
    let is = |w: &[u8], s: &[u8]| w.eq_ignore_ascii_case(s);
    let on = words.iter().position(|w| is(w, b"on"))?;
    let open = on + words[on..].iter().position(|w| is(w, b"("))?;
    let mut depth = 0usize;
    let close = open
        + words[open..].iter().position(|w| {
            match *w {
                b"(" => depth += 1,
                b")" => depth -= 1,
                _ => {}
            }
            depth == 0
        })?;
    let count = |ws: &[&[u8]]| {
        ws.iter()
            .filter(|w| unquoted(w).eq_ignore_ascii_case(name.as_bytes()))
            .count()
    };
    Some((count(&words[open..close]), count(&words[close..])))
}

/// A quoted identifier's name (doubled quotes made one); other words as they are.
fn unquoted(word: &[u8]) -> Vec<u8> {
    match word.first() {
        Some(&q @ (b'"' | b'`' | b'\'' | b'[')) if word.len() >= 2 => {
            let inner = &word[1..word.len() - 1];
            if q == b'[' {
                return inner.to_vec();
            }
            let mut out = Vec::with_capacity(inner.len());
            let mut i = 0;
            while i < inner.len() {
                out.push(inner[i]);
                i += if inner[i] == q && inner.get(i + 1) == Some(&q) {
                    2
                } else {
                    1
                };
            }
            out
        }
        _ => word.to_vec(),
    }
}

/// The table named by a `content=T` option of `CREATE VIRTUAL TABLE … USING fts…(…)` (an
/// external-content full-text index of T), when not empty.
pub fn content_option(sql: &[u8]) -> Option<String> {
    table_option(sql, "content")
}

/// The value of a virtual table's `key=value` argument (e.g. `content_rowid`), unquoted.
pub fn table_option(sql: &[u8], key: &str) -> Option<String> {
    let w = words(sql);
    let at = w
        .windows(3)
        .position(|s| s[0].eq_ignore_ascii_case(key.as_bytes()) && s[1] == b"=")?;
    let name = String::from_utf8(unquoted(w[at + 2])).ok()?;
    (!name.is_empty()).then_some(name)
}

fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Whether SQLite stores exactly `sql` when it runs `sql;` (see `sqlite3EndTable`,
/// `sqlite3CreateIndex`, `sqlite3CreateView`, `sqlite3FinishTrigger`): tables, indexes and
/// triggers and views are stored as a fixed `CREATE ... ` prefix plus the text from the
/// object's name on (so no `IF NOT EXISTS`, no schema name, one space after the keywords,
/// upper case); a table without options ends at its `)`, a trigger at its `END`; a view is
/// stored up to the `;` without trailing blanks; an index up to the `;`.
fn stored_as_typed(kind: ObjectKind, sql: &[u8]) -> bool {
    let w = words(sql);
    let prefix: &[&[u8]] = match kind {
        ObjectKind::Table => &[b"CREATE TABLE "],
        ObjectKind::Index => &[b"CREATE INDEX ", b"CREATE UNIQUE INDEX "],
        ObjectKind::Trigger => &[b"CREATE TRIGGER "],
        ObjectKind::View => &[b"CREATE VIEW "],
    };
    let Some(p) = prefix.iter().find(|p| sql.starts_with(p)) else {
        return false;
    };
    // Text with a `;` is stored only up to it (and the dump's own `;` would then be extra).
    if kind != ObjectKind::Trigger && code_semicolon(sql).is_some() {
        return false;
    }
    let keywords = if p.len() > 15 { 3 } else { 2 }; // CREATE [UNIQUE] INDEX / TABLE / TRIGGER
    // The next byte starts the name: no blank or comment, no IF NOT EXISTS, no schema name.
    let name_at = p.len();
    if sql
        .get(name_at)
        .is_none_or(|&b| is_space(b) || b == b'-' || b == b'/')
    {
        return false;
    }
    let name = w.get(keywords);
    if name.is_none_or(|n| n.eq_ignore_ascii_case(b"IF")) || w.get(keywords + 1) == Some(&&b"."[..])
    {
        return false;
    }
    match kind {
        ObjectKind::Table => {
            // Without options the text ends at the column list's `)`; with options (WITHOUT
            // ROWID, STRICT) SQLite keeps everything up to the `;`.
            w.last() != Some(&&b")"[..]) || sql.ends_with(b")")
        }
        ObjectKind::Trigger => {
            w.last().is_some_and(|l| l.eq_ignore_ascii_case(b"END")) && {
                let last = w.last().expect("checked");
                sql.ends_with(last)
            }
        }
        ObjectKind::View => sql.last().is_some_and(|&b| !is_space(b)),
        ObjectKind::Index => true,
    }
}

// The shell's quick scan of a line (`quickscan` in shell.c): whether the line ends in plain
// text, inside a quote or comment, after a `;`.
const QSS_HAS_DARK: u32 = 1 << 8;
const QSS_ENDING_SEMI: u32 = 2 << 8;
const QSS_CHAR_MASK: u32 = 0xff;
const QSS_SCAN_MASK: u32 = 3 << 8;

fn quickscan(line: &[u8], mut qss: u32) -> u32 {
    let mut wait = (qss & QSS_CHAR_MASK) as u8;
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        i += 1;
        if wait == 0 {
            if is_space(c) {
                continue;
            }
            match c {
                b'-' if line.get(i) == Some(&b'-') => {
                    return qss; // rest of the line is a comment
                }
                b';' => {
                    qss |= QSS_ENDING_SEMI;
                    continue;
                }
                b'/' if line.get(i) == Some(&b'*') => {
                    i += 1;
                    wait = b'*';
                    qss = u32::from(wait) | (qss & QSS_SCAN_MASK);
                    continue;
                }
                b'[' | b'`' | b'\'' | b'"' => {
                    wait = if c == b'[' { b']' } else { c };
                    qss = QSS_HAS_DARK | u32::from(wait);
                    continue;
                }
                _ => {}
            }
            qss = (qss & !QSS_ENDING_SEMI) | QSS_HAS_DARK;
        } else if c == wait {
            match wait {
                b'*' => {
                    if line.get(i) != Some(&b'/') {
                        continue;
                    }
                    i += 1;
                }
                b'`' | b'\'' | b'"' if line.get(i) == Some(&c) => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            wait = 0;
            qss &= QSS_SCAN_MASK;
        }
    }
    qss
}

fn in_plain(qss: u32) -> bool {
    qss & QSS_CHAR_MASK == 0
}

fn plain_white(qss: u32) -> bool {
    qss & !QSS_ENDING_SEMI == 0
}

fn semi_term(qss: u32) -> bool {
    qss & !QSS_HAS_DARK == QSS_ENDING_SEMI
}

/// `go` or `/` alone on a line, as `line_is_command_terminator` sees it.
fn is_terminator_line(line: &[u8]) -> bool {
    let t = &line[line.iter().take_while(|&&b| is_space(b)).count()..];
    let rest = if t.first() == Some(&b'/') {
        &t[1..]
    } else if t.len() >= 2 && t[..2].eq_ignore_ascii_case(b"go") {
        &t[2..]
    } else {
        return false;
    };
    quickscan(rest, 0) == 0
}

fn complete(sql: &[u8]) -> bool {
    match CString::new(sql) {
        // SAFETY: a valid NUL-terminated string that SQLite only reads.
        Ok(c) => unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) != 0 },
        Err(_) => false,
    }
}

/// Whether the shell, reading `text` (one statement ending in `;`, no CR, no NUL) from the start
/// of a statement, runs exactly `text` as one piece at its last line.
fn shell_runs_as_one(text: &[u8]) -> bool {
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    let mut qss = 0u32;
    let mut acc: Vec<u8> = Vec::with_capacity(text.len() + 1);
    for (n, line) in lines.iter().enumerate() {
        if in_plain(qss) && is_terminator_line(line) && {
            let mut probe = acc.clone();
            probe.push(b';');
            complete(&probe)
        } {
            return false;
        }
        qss = quickscan(line, qss);
        if acc.is_empty() && (plain_white(qss) || matches!(line.first(), Some(b'.' | b'#'))) {
            return false;
        }
        if n > 0 {
            acc.push(b'\n');
        }
        acc.extend_from_slice(line);
        if semi_term(qss) && complete(&acc) {
            return n + 1 == lines.len();
        }
    }
    false
}

/// `sql` with every identifier token `rowid` (any case, bare or quoted with `"`, `` ` `` or
/// `[]`) after the table's name (the first `(`) renamed to `temp`. In a table whose columns
/// shadow every rowid alias, each such token in the column list names the column, so the
/// renamed table is the same table with `rowid` free for the restore to set real rowids
/// through. The table's own name (which may be `rowid` too) and string literals stay as they are.
pub fn rename_rowid_tokens(sql: &[u8], temp: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(sql.len() + 16);
    let mut in_columns = false;
    for (kind, bytes) in pieces(sql) {
        if !in_columns {
            if kind == Piece::Code
                && let Some(at) = bytes.iter().position(|&b| b == b'(')
            {
                out.extend_from_slice(&bytes[..at]);
                out.extend_from_slice(&rename_rowid_tokens_in_code(&bytes[at..], temp));
                in_columns = true;
            } else {
                out.extend_from_slice(bytes);
            }
            continue;
        }
        match kind {
            Piece::Code => out.extend_from_slice(&rename_rowid_tokens_in_code(bytes, temp)),
            Piece::Quoted
                if bytes.len() == 7
                    && bytes[0] != b'\''
                    && bytes[1..6].eq_ignore_ascii_case(b"rowid") =>
            {
                out.push(bytes[0]);
                out.extend_from_slice(temp.as_bytes());
                out.push(bytes[6]);
            }
            _ => out.extend_from_slice(bytes),
        }
    }
    out
}

/// Code (no quotes, strings or comments) with every bare word `rowid` renamed to `temp`.
fn rename_rowid_tokens_in_code(code: &[u8], temp: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(code.len() + 16);
    let mut rest = code;
    while !rest.is_empty() {
        let n = rest.iter().take_while(|&&b| is_id_char(b)).count().max(1);
        let word = &rest[..n];
        if word.eq_ignore_ascii_case(b"rowid") {
            out.extend_from_slice(temp.as_bytes());
        } else {
            out.extend_from_slice(word);
        }
        rest = &rest[n..];
    }
    out
}

#[cfg(test)]
mod tests;
