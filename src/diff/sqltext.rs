//! Schema statements of a snapshot (`2-indexes.sql`, `4-views.sql`, `5-triggers.sql`), split
//! into statements and named.
//!
//! An SQL patch must drop an index, view or trigger by name, and `--table` must know which table
//! a trigger belongs to; the snapshot holds only the statements' text. Statements are split where
//! SQLite itself says one is complete (`sqlite3_complete`, which knows about quotes, comments and
//! trigger bodies), and a few tokens after `CREATE` give the names. [`stored`] gives back each
//! object's text as sqlite_schema holds it, for people: the dump writes text the sqlite3 shell
//! would misread as a one-line stand-in plus an `UPDATE sqlite_schema` to the exact text
//! (`crate::dump::shell`), and that restore plumbing is no part of the schema. [`objects`] keeps
//! that plumbing with the object it belongs to, so a patch drops each object by its own name and
//! writes it back the way the dump does.

use std::ffi::CString;

use super::rows::decode_text;
use crate::dump::literal::quoted_end;

/// One CREATE INDEX / VIEW / TRIGGER statement (from [`objects`]: with the statements the dump
/// writes around it to restore its exact text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stmt {
    /// The statement as stored in sqlite_schema (no `;`); from [`objects`], the object's
    /// statements as the dump writes them, joined by `;\n` (no final `;`).
    pub sql: String,
    /// The object's name.
    pub name: String,
    /// The table (or view) an index or trigger is on.
    pub on: Option<String>,
}

/// The statements of a dump file (each written as `sql;\n`).
pub fn statements(file: &[u8]) -> Vec<Stmt> {
    let text = String::from_utf8_lossy(file);
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        if b != b';' || i < start {
            continue;
        }
        if !complete(&text[start..=i]) {
            continue;
        }
        let sql = text[start..i].to_string();
        let (name, on) = names(&sql);
        out.push(Stmt { sql, name, on });
        start = i + 1;
        if text.as_bytes().get(start) == Some(&b'\n') {
            start += 1;
        }
    }
    out
}

/// The schema objects of a dump file, each one statement with the restore steps the dump writes
/// around it ([`crate::dump::shell::write_object`]): an optional `.dbconfig defensive off` +
/// `PRAGMA writable_schema=ON` before its CREATE (a reserved `sqlite_` name), and after it the
/// `UPDATE sqlite_schema SET sql=…` that puts back its exact text, up to `writable_schema=RESET`.
pub fn objects(file: &[u8]) -> Vec<Stmt> {
    let parts = statements(file);
    let mut out = Vec::new();
    let mut group: Vec<Stmt> = Vec::new();
    // Whether the group holds its CREATE, and whether writable_schema is on within it.
    let (mut created, mut open) = (false, false);
    for (i, s) in parts.iter().enumerate() {
        let step = step(&s.sql);
        // The next object begins at a CREATE, or at the steps that turn writable_schema on for
        // one (a fixup's steps are followed by its UPDATE instead).
        let next_create = parts.get(i + 1).is_some_and(|n| step_of(n) == Step::Create);
        let begins = match step {
            Step::Create => created && !open,
            Step::On => created && !open && next_create,
            _ => false,
        };
        if begins {
            out.push(joined(std::mem::take(&mut group)));
            created = false;
        }
        match step {
            Step::Create => created = true,
            Step::On => open = true,
            Step::Reset => open = false,
            Step::Update => {}
        }
        group.push(s.clone());
        if step == Step::Reset && created {
            out.push(joined(std::mem::take(&mut group)));
            created = false;
        }
    }
    if !group.is_empty() {
        out.push(joined(group));
    }
    out
}

/// What a dump statement does for the object it belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Create,
    /// `.dbconfig defensive off` + `PRAGMA writable_schema=ON`.
    On,
    /// `PRAGMA writable_schema=RESET`.
    Reset,
    /// `UPDATE sqlite_schema SET sql=…`.
    Update,
}

fn step_of(s: &Stmt) -> Step {
    step(&s.sql)
}

fn step(sql: &str) -> Step {
    let (shell, sql) = after_shell_lines(sql);
    let has = |p: &str| {
        sql.get(..p.len())
            .is_some_and(|x| x.eq_ignore_ascii_case(p))
    };
    if has("PRAGMA writable_schema=RESET") {
        Step::Reset
    } else if shell || has("PRAGMA writable_schema") {
        Step::On
    } else if has("UPDATE sqlite_schema SET sql=") {
        Step::Update
    } else {
        Step::Create
    }
}

/// `sql` without the shell command lines (`.dbconfig defensive off`) before it, and whether it
/// had any.
fn after_shell_lines(mut sql: &str) -> (bool, &str) {
    let shell = sql.starts_with('.');
    while sql.starts_with('.') {
        sql = sql.split_once('\n').map_or("", |(_, rest)| rest);
    }
    (shell, sql.trim_start())
}

/// The statements of one object as one, named by its CREATE.
fn joined(group: Vec<Stmt>) -> Stmt {
    let sql = group
        .iter()
        .map(|s| s.sql.as_str())
        .collect::<Vec<_>>()
        .join(";\n");
    let create = group.iter().find(|s| step_of(s) == Step::Create);
    let (name, on) = create.map_or((String::new(), None), |c| (c.name.clone(), c.on.clone()));
    Stmt { sql, name, on }
}

/// Triggers grouped by the table (or view) they are on, each table's in the order they come in:
/// what decides what a database does, as SQLite fires a table's triggers by their order in
/// sqlite_schema. The dump writes them in that order ([`crate::dump::schema`]); snapshots of an
/// older sqlgit list them by name, the order their restores fire them in.
pub fn by_table(stmts: &[Stmt]) -> Vec<Stmt> {
    let mut out = stmts.to_vec();
    out.sort_by_cached_key(|s| s.on.as_deref().unwrap_or_default().to_ascii_lowercase());
    out
}

/// Whether `a` and `b` hold the same statements in another order.
pub fn reordered(a: &[Stmt], b: &[Stmt]) -> bool {
    a != b && sorted_sql(a) == sorted_sql(b)
}

fn sorted_sql(stmts: &[Stmt]) -> Vec<&str> {
    let mut v: Vec<&str> = stmts.iter().map(|s| s.sql.as_str()).collect();
    v.sort_unstable();
    v
}

/// The schema objects of `stmts` (a dump file's statements, or [`objects`]) with their text as sqlite_schema
/// holds it: `.dbconfig` and `PRAGMA writable_schema` lines left out, and an object whose text
/// the dump puts back by `UPDATE sqlite_schema SET sql=…` shown with that text (an update of an
/// object not in `stmts`, as in a table's `1-schema-fixup.sql`, is shown as that object).
pub fn stored(stmts: &[Stmt]) -> Vec<String> {
    let mut out: Vec<(String, String)> = Vec::new();
    // An object's statements one by one.
    let parts = stmts
        .iter()
        .flat_map(|s| statements(format!("{};\n", s.sql).as_bytes()));
    for s in &parts.collect::<Vec<_>>() {
        // A shell command line (`.dbconfig defensive off`) runs before the SQL after it.
        let (_, sql) = after_shell_lines(&s.sql);
        let pragma = sql
            .get(..22)
            .is_some_and(|p| p.eq_ignore_ascii_case("PRAGMA writable_schema"));
        if sql.is_empty() || pragma {
            continue;
        }
        match schema_update(sql) {
            Some((name, text)) => match out.iter_mut().rev().find(|o| o.0 == name) {
                Some(object) => object.1 = text,
                None => out.push((name, text)),
            },
            None => out.push((s.name.clone(), sql.to_string())),
        }
    }
    out.into_iter().map(|(_, sql)| sql).collect()
}

/// `UPDATE sqlite_schema SET sql=LITERAL WHERE type='KIND' AND name=LITERAL` (as
/// `crate::dump::shell::write_fixup` writes it): the name and the text.
fn schema_update(sql: &str) -> Option<(String, String)> {
    let rest = sql
        .strip_prefix("UPDATE sqlite_schema SET sql=")?
        .as_bytes();
    let end = literal_end(rest)?;
    let text = decode_text(&rest[..end])?;
    let after = std::str::from_utf8(&rest[end..]).ok()?;
    let after = after.strip_prefix(" WHERE type='")?;
    let (_, name) = after.split_once("' AND name=")?;
    let name = decode_text(name.as_bytes())?;
    Some((
        String::from_utf8_lossy(&name).into_owned(),
        String::from_utf8_lossy(&text).into_owned(),
    ))
}

/// Where a text literal the dump writes (`'a'||char(13)||'b'`) ends.
fn literal_end(sql: &[u8]) -> Option<usize> {
    let mut p = 0;
    loop {
        if sql.get(p) == Some(&b'\'') {
            p = quoted_end(sql, p + 1, b'\'')?;
        } else if sql[p..].starts_with(b"char(") {
            p += sql[p..].iter().position(|&b| b == b')')? + 1;
        } else {
            return None;
        }
        if !sql[p..].starts_with(b"||") {
            return Some(p);
        }
        p += 2;
    }
}

fn complete(sql: &str) -> bool {
    match CString::new(sql) {
        // SAFETY: a valid NUL-terminated string that SQLite only reads.
        Ok(c) => unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) != 0 },
        Err(_) => false,
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Punct(char),
}

/// Tokens of `sql` (enough of SQLite's tokenizer for names: words, quoted names, punctuation).
fn tokens(sql: &str) -> Vec<Token> {
    let s: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && s.get(i + 1) == Some(&'-') {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && s.get(i + 1) == Some(&'*') {
            i += 2;
            while i < s.len() && !(s[i] == '*' && s.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if matches!(c, '"' | '`' | '\'' | '[') {
            let close = if c == '[' { ']' } else { c };
            let mut name = String::new();
            i += 1;
            while i < s.len() {
                if s[i] == close {
                    if close != ']' && s.get(i + 1) == Some(&close) {
                        name.push(close);
                        i += 2;
                        continue;
                    }
                    break;
                }
                name.push(s[i]);
                i += 1;
            }
            i += 1;
            out.push(Token::Quoted(name));
        } else if c.is_alphanumeric() || c == '_' || c == '$' || !c.is_ascii() {
            let mut w = String::new();
            while i < s.len()
                && (s[i].is_alphanumeric() || s[i] == '_' || s[i] == '$' || !s[i].is_ascii())
            {
                w.push(s[i]);
                i += 1;
            }
            out.push(Token::Word(w));
        } else {
            out.push(Token::Punct(c));
            i += 1;
        }
    }
    out
}

fn is_word(t: Option<&Token>, w: &str) -> bool {
    matches!(t, Some(Token::Word(x)) if x.eq_ignore_ascii_case(w))
}

/// A possibly schema-qualified name at `toks[i..]`: (name, index after it).
fn qualified(toks: &[Token], i: usize) -> Option<(String, usize)> {
    let name = |t: &Token| match t {
        Token::Word(w) | Token::Quoted(w) => Some(w.clone()),
        Token::Punct(_) => None,
    };
    let first = name(toks.get(i)?)?;
    if toks.get(i + 1) == Some(&Token::Punct('.'))
        && let Some(second) = toks.get(i + 2).and_then(name)
    {
        return Some((second, i + 3));
    }
    Some((first, i + 1))
}

/// The object's name and, for an index or trigger, the table it is on.
fn names(sql: &str) -> (String, Option<String>) {
    let toks = tokens(sql);
    let mut i = 1; // CREATE
    while is_word(toks.get(i), "TEMP")
        || is_word(toks.get(i), "TEMPORARY")
        || is_word(toks.get(i), "UNIQUE")
    {
        i += 1;
    }
    i += 1; // INDEX / VIEW / TRIGGER
    if is_word(toks.get(i), "IF") {
        i += 3;
    }
    let Some((name, after)) = qualified(&toks, i) else {
        return (String::new(), None);
    };
    let on = (after..toks.len())
        .find(|&k| is_word(toks.get(k), "ON"))
        .and_then(|k| qualified(&toks, k + 1))
        .map(|(n, _)| n);
    (name, on)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_names() {
        let file = b"CREATE TRIGGER \"t;1\" AFTER UPDATE OF \"on\" ON main.[my t] BEGIN INSERT INTO a VALUES(';'); SELECT 1; END;\n\
                     CREATE UNIQUE INDEX IF NOT EXISTS `i``x` ON t(a) WHERE b = 'x;\ny';\n\
                     CREATE VIEW v -- c;\n AS SELECT 1;\n";
        let s = statements(file);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].name, "t;1");
        assert_eq!(s[0].on.as_deref(), Some("my t"));
        assert!(s[0].sql.ends_with("END"));
        assert_eq!(s[1].name, "i`x");
        assert_eq!(s[1].on.as_deref(), Some("t"));
        assert_eq!(
            s[1].sql,
            "CREATE UNIQUE INDEX IF NOT EXISTS `i``x` ON t(a) WHERE b = 'x;\ny'"
        );
        assert_eq!(s[2].name, "v");
        let joined: String = s.iter().map(|s| format!("{};\n", s.sql)).collect();
        assert_eq!(joined.as_bytes(), file);
    }

    #[test]
    fn stored_text_leaves_out_the_restore_steps() {
        let file = b"CREATE TABLE t( a, b);\n.dbconfig defensive off\nPRAGMA writable_schema=ON;\n\
                     UPDATE sqlite_schema SET sql='CREATE TABLE t('||char(13)||'\n a, b)' WHERE \
                     type='table' AND name='t';\nPRAGMA writable_schema=RESET;\n\
                     CREATE INDEX i ON t(a);\n";
        assert_eq!(
            stored(&statements(file)),
            ["CREATE TABLE t(\r\n a, b)", "CREATE INDEX i ON t(a)"]
        );
        // A table's 1-schema-fixup.sql: the update alone gives the text.
        let fixup =
            b".dbconfig defensive off\nPRAGMA writable_schema=ON;\nUPDATE sqlite_schema SET \
                      sql='CREATE TABLE t(a, rowid)' WHERE type='table' AND name='t';\n\
                      PRAGMA writable_schema=RESET;\n";
        assert_eq!(stored(&statements(fixup)), ["CREATE TABLE t(a, rowid)"]);
    }

    #[test]
    fn objects_keep_their_restore_steps() {
        let on = ".dbconfig defensive off\nPRAGMA writable_schema=ON;\n";
        let reset = "PRAGMA writable_schema=RESET;\n";
        let fix = |name: &str| {
            format!(
                "{on}UPDATE sqlite_schema SET sql='CREATE VIEW {name} AS SELECT'||char(13)||'\n 1' \
                 WHERE type='view' AND name='{name}';\n{reset}"
            )
        };
        let parts = [
            "CREATE VIEW a AS SELECT 1;\n".to_string(),
            format!("CREATE VIEW b AS SELECT 1;\n{}", fix("b")),
            format!("{on}CREATE VIEW sqlite_c AS SELECT 1;\n{reset}"),
            format!("{on}CREATE VIEW sqlite_d AS SELECT 1;\n{}", fix("sqlite_d")),
            "CREATE VIEW e AS SELECT 1;\n".to_string(),
        ];
        let file = parts.concat();
        let objects = objects(file.as_bytes());
        let names: Vec<&str> = objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "sqlite_c", "sqlite_d", "e"]);
        for (o, part) in objects.iter().zip(&parts) {
            assert_eq!(format!("{};\n", o.sql), *part);
        }
        assert_eq!(
            stored(&objects)[1],
            "CREATE VIEW b AS SELECT\r\n 1",
            "the exact text, as for the statements one by one"
        );
    }
}
