//! `sqlgit history`: every snapshot in which one row was inserted, updated or deleted, newest
//! first. Exit status as grep(1): 0 changes found, 1 none, 2 error — errors are turned into 2
//! here, as `diff` does.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Result;
use clap::Args;
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Value, json};

use crate::diff::history::{Event, Kind, Request, Values, history};
use crate::diff::keymatch::{Number, number};
use crate::diff::rows::decode_text;
use crate::diff::show::{self, MAX_VALUE};
use crate::error::{Exit, is_broken_pipe, one_line, usage};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The table.
    pub table: String,
    /// The row's rowid (or INTEGER PRIMARY KEY), or its primary key's values in order
    /// (WITHOUT ROWID tables; several values for a composite key). A negative number is a
    /// value (`-3`, as `diff` shows it); other values that begin with `-` go after `--`.
    #[arg(
        required = true,
        num_args = 1..,
        value_name = "KEY",
        allow_negative_numbers = true
    )]
    pub key: Vec<String>,
    /// The sqlgit repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// The database's folder, when the repository holds several.
    #[arg(long, value_name = "NAME")]
    pub db: Option<String>,
    /// Only changes after this snapshot (WHEN, as for `sqlgit diff`). Default: since the first
    /// snapshot, also those pruned locally (fetched from the history remote).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only changes up to this snapshot (WHEN). Default: the latest.
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// One JSON array, newest first, of {"commit", "time", "kind", "old", "new"}; "old"/"new"
    /// hold the whole row (inserted/deleted) or only the changed columns (updated).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: HistoryArgs) -> Result<Exit> {
    let req = Request {
        repo: &args.repo,
        db: args.db.as_deref(),
        table: &args.table,
        key: &args.key,
        since: args.since.as_deref(),
        until: args.until.as_deref(),
    };
    let stdout = std::io::stdout();
    let color = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut out = BufWriter::new(stdout.lock());
    // A panic is an error too, which `history` says with exit 2 (not 1, "no change found").
    let result = crate::panics::caught(|| {
        history(&req).and_then(|found| {
            for w in &found.warnings {
                tell!("sqlgit: warning: {w}");
            }
            if args.json {
                let list: Vec<JsonEvent> = found.events.iter().map(event_json).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                human(&args, &found.events, found.searched, color, &mut out)?;
            }
            out.flush()?;
            Ok(!found.events.is_empty())
        })
    });
    match result {
        Ok(true) => Ok(Exit::Success),
        Ok(false) => Ok(Exit::Failure),
        Err(e) if is_broken_pipe(&e) => Ok(Exit::Failure),
        Err(e) => {
            let _ = out.flush();
            Err(usage(one_line(&format!("{e:#}"))))
        }
    }
}

fn rfc3339(unix: i64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64))
        .to_string()
}

/// One event in `--json`, its fields and columns in order.
#[derive(Serialize)]
struct JsonEvent {
    commit: String,
    time: String,
    kind: &'static str,
    old: Option<Columns>,
    new: Option<Columns>,
}

/// Columns as a JSON object, in the table's order.
struct Columns(Vec<(String, Value)>);

impl Serialize for Columns {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

fn event_json(e: &Event) -> JsonEvent {
    let values = |v: &Option<Values>| {
        v.as_ref().map(|v| {
            Columns(
                v.iter()
                    .map(|(k, lit)| (k.clone(), value_json(lit)))
                    .collect(),
            )
        })
    };
    JsonEvent {
        commit: e.commit.to_string(),
        time: rfc3339(e.time),
        kind: e.kind.name(),
        old: values(&e.old),
        new: values(&e.new),
    }
}

/// A value as JSON: NULL → null, integers and finite reals (also those the dump writes as
/// `ieee754(M,E)`) → numbers, text → a string; anything else (blobs, infinities, text that is
/// not UTF-8) → {"sql": literal}, the exact literal `diff` shows (`CAST(X'ff' AS TEXT)`).
fn value_json(lit: &[u8]) -> Value {
    if lit == b"NULL" {
        return Value::Null;
    }
    let text = std::str::from_utf8(lit).ok();
    if let Some(i) = text.and_then(|t| t.parse::<i64>().ok()) {
        return json!(i);
    }
    let numeric = |t: &str| t.bytes().all(|b| b"0123456789+-.eE".contains(&b));
    if let Some(f) = text
        .filter(|t| numeric(t))
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|f| f.is_finite())
    {
        return json!(f);
    }
    if let Some(Number::Real(f)) = text.and_then(number)
        && f.is_finite()
    {
        return json!(f);
    }
    if let Some(s) = decode_text(lit).and_then(|b| String::from_utf8(b).ok()) {
        return Value::String(s);
    }
    json!({ "sql": show::literal(lit) })
}

fn human(
    args: &HistoryArgs,
    events: &[Event],
    searched: usize,
    color: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let paint = |code: &str, text: String| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text
        }
    };
    let what = format!("{} {}", show::name(&args.table), args.key.join(" "));
    let snapshots = format!("{searched} snapshot{}", plural(searched));
    if events.is_empty() {
        writeln!(out, "no insert, update or delete of {what} in {snapshots}")?;
        return Ok(());
    }
    let n = events.len();
    let head = format!("{what}: {n} change{} in {snapshots}", plural(n));
    writeln!(out, "{}", paint("1", head))?;
    for e in events {
        let (code, mark, detail) = match e.kind {
            Kind::Inserted => ("32", "+", join_eq(e.new.as_ref())),
            Kind::Deleted => ("31", "-", join_eq(e.old.as_ref())),
            Kind::Updated => {
                let (old, new) = (e.old.iter().flatten(), e.new.iter().flatten());
                let parts: Vec<String> = old
                    .zip(new)
                    .map(|((k, a), (_, b))| {
                        let (a, b) = show::pair(a, b, MAX_VALUE);
                        format!("{}: {a} → {b}", show::name(k))
                    })
                    .collect();
                ("33", "~", parts.join(", "))
            }
        };
        let line = format!(
            "{}  {}  {mark} {:<8}  {detail}",
            &e.commit.to_string()[..12],
            rfc3339(e.time),
            e.kind.name()
        );
        writeln!(out, "{}", paint(code, line))?;
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `col=value, …` of a whole row.
fn join_eq(values: Option<&Values>) -> String {
    values
        .into_iter()
        .flatten()
        .map(|(k, lit)| format!("{}={}", show::name(k), show::value(lit, MAX_VALUE)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_json() {
        assert_eq!(value_json(b"NULL"), Value::Null);
        assert_eq!(value_json(b"-7"), json!(-7));
        assert_eq!(value_json(b"1.5e-3"), json!(0.0015));
        assert_eq!(value_json(b"'a''b'"), json!("a'b"));
        assert_eq!(value_json(b"1e999"), json!({"sql": "1e999"}));
        assert_eq!(value_json(b"X'00'"), json!({"sql": "X'00'"}));
        assert_eq!(value_json(b"ieee754(1,-1074)"), json!(5e-324));
        assert_eq!(
            value_json(b"ieee754(1968564498370125,-46)"),
            json!(27.974984083842358)
        );
        // Text that is not UTF-8: the exact literal, not a lossy one.
        assert_eq!(
            value_json(b"'\xffA\xfe'"),
            json!({"sql": "CAST(X'ff41fe' AS TEXT)"})
        );
    }
}
