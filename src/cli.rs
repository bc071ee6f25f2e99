//! Flag groups that several commands share, and the parsers of flag values. (Each command's
//! own flags live with it in `cmd/<name>.rs`; the command enum in `cmd/mod.rs`.) Doc comments
//! here are the help text users read.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use clap::builder::TypedValueParser as _;

use crate::settings::{Flags, absolute};

// Flag groups shared by several commands. Given values are remembered in the repository's
// config (see `settings`), so later runs need not repeat them.

/// Remote settings.
#[derive(Debug, Args, Clone, Default)]
pub struct RemoteArgs {
    /// Remote that holds only the newest snapshot, as one parentless commit (force-pushed).
    /// ssh://, https://, git://, user@host:path or a local path. "" forgets it.
    #[arg(long, value_name = "URL")]
    pub latest_remote: Option<String>,
    /// Remote that receives every snapshot commit (fast-forward pushes). "" forgets it.
    #[arg(long, value_name = "URL")]
    pub history_remote: Option<String>,
    /// SSH private key for ssh:// remotes (ssh-agent and ~/.ssh keys are tried too).
    /// HTTPS: a token in the environment variable SQLGIT_HTTPS_TOKEN is used as the password
    /// (user from the URL, SQLGIT_HTTPS_USER, or "sqlgit"); git credential helpers work too.
    /// "" forgets it.
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Option<String>,
    /// How to talk to the remotes: `git` runs the installed git program (so ~/.ssh/config,
    /// GIT_SSH_COMMAND, ssh-agent, credential helpers and proxies behave as with `git push`);
    /// `libgit2` uses the built-in client. Default: git when it is on PATH, else libgit2.
    /// "" forgets it.
    #[arg(long, value_name = "git|libgit2", value_parser = parse_transport)]
    pub transport: Option<String>,
    /// Give up on a server whose calls (asking, then pushing) have not finished within this
    /// time in all (the git transport kills what it started), so a hung remote cannot block
    /// later runs. Each server has its own. Default 5m.
    #[arg(long, value_name = "DURATION", value_parser = parse_push_timeout)]
    pub push_timeout: Option<String>,
}

/// Local retention.
#[derive(Debug, Args, Clone, Default)]
pub struct KeepArgs {
    /// Keep only the newest N snapshots locally (e.g. 288), or those younger than a duration
    /// (e.g. 1day, 12h); remembered in the repository's config. Older ones are cut off with a
    /// shallow graft and their data deleted — but never before the history remote confirmed
    /// them; without a history remote, pruning is free. "" turns pruning off.
    #[arg(long, value_name = "N|DURATION", value_parser = parse_keep)]
    pub keep: Option<String>,
}

/// What to leave out (for remotes less trusted than the database).
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// Leave out tables whose name matches PATTERN (`*`, `?`; case-insensitive), with their
    /// indexes and triggers. Repeatable. "" forgets the saved patterns.
    #[arg(long, value_name = "PATTERN")]
    pub exclude_table: Vec<String>,
    /// Replace the values of TABLE.COLUMN (`*` allowed) with NULL, or a placeholder in NOT NULL
    /// columns (one per row under a UNIQUE index). Repeatable. Primary-key columns, virtual
    /// tables' columns and columns the dump could not restore redacted are refused. "" forgets
    /// the saved patterns.
    #[arg(long, value_name = "TABLE.COLUMN", value_parser = parse_redact)]
    pub redact: Vec<String>,
}

/// Monitoring of the job, and how often it reads everything.
#[derive(Debug, Args, Clone, Default)]
pub struct JobArgs {
    /// After each run, write a Prometheus textfile here (atomically), e.g. for node_exporter's
    /// textfile collector: last success time, duration, dump size, push results.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<String>,
    /// Run this with `sh -c` after a successful run (e.g. a dead-man's-switch ping). Variables:
    /// SQLGIT_RESULT, SQLGIT_REPO, SQLGIT_COMMIT, SQLGIT_CHANGED, SQLGIT_ROWS, SQLGIT_BYTES,
    /// SQLGIT_TABLES, SQLGIT_DURATION, SQLGIT_ERROR. A failing hook is reported, not fatal.
    #[arg(long, value_name = "CMD")]
    pub on_success: Option<String>,
    /// Run this with `sh -c` after a failed run (same variables), also when the run fails
    /// before the repository exists or cannot get its lock.
    #[arg(long, value_name = "CMD")]
    pub on_failure: Option<String>,
    /// How often a run also reads everything and checks that the incremental snapshot is the
    /// same tree (it commits the full read; a difference fails the run loudly). `0s`: every run.
    /// Default 1day; remembered. "" forgets it (back to the default).
    #[arg(long, value_name = "DURATION", value_parser = parse_full_every)]
    pub full_every: Option<String>,
}

/// Parses a database path given on the command line. SQLite takes a name that starts with
/// `file:` as a URI (`file:app.db` opens `app.db`), so a relative path of that spelling is
/// given to it as `./file:…`, which names the file itself, for this database and every file
/// named after it (the saved copy of `restore --into`, temporary files).
pub fn db_path() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    clap::builder::OsStringValueParser::new().map(|raw| literal_db_path(PathBuf::from(raw)))
}

fn literal_db_path(path: PathBuf) -> PathBuf {
    if path.is_relative() && path.as_os_str().as_encoded_bytes().starts_with(b"file:") {
        std::path::Path::new(".").join(path)
    } else {
        path
    }
}

/// Databases are remembered in the repository's config and reached by their path as text, so a
/// path that is not UTF-8 (a Latin-1 file name) is refused with what to do instead, before
/// anything runs (a lossy copy of it would name no file); so is one with a line break.
pub fn check_db_paths(dbs: &[PathBuf]) -> anyhow::Result<()> {
    match dbs.iter().find(|p| p.to_str().is_none()) {
        Some(db) => Err(crate::error::usage(format!(
            "database {}: its path is not valid UTF-8, and sqlgit names databases by their \
             path as text (in DIR/config, in its runs): rename it, or give a symlink to it with \
             a UTF-8 name (ln -s)",
            db.display()
        ))),
        None => match dbs
            .iter()
            .find(|p| p.to_str().is_some_and(|t| t.contains(['\n', '\r'])))
        {
            // git's config cannot hold a line break: the run would commit, then fail to
            // remember the database, and every later run would have none.
            Some(db) => Err(crate::error::usage(format!(
                "database {:?}: its path holds a line break, which the repository's config \
                 (DIR/config) cannot hold: rename it, or give a symlink to it without one (ln -s)",
                db
            ))),
            None => distinct_folders(dbs),
        },
    }
}

/// Each database's snapshots live in a folder named after its file name: two databases of one
/// name (in different folders) would share it, and every run would fail saying so.
fn distinct_folders(dbs: &[PathBuf]) -> anyhow::Result<()> {
    for (i, a) in dbs.iter().enumerate() {
        let folder = crate::snapshot::db_folder(a);
        let Some(b) = dbs[i + 1..]
            .iter()
            .find(|b| crate::snapshot::db_folder(b) == folder)
        else {
            continue;
        };
        let same = std::path::absolute(a).ok() == std::path::absolute(b).ok();
        return Err(crate::error::usage(if same {
            format!("database {} is given twice: give it once", a.display())
        } else {
            format!(
                "databases {} and {} have one file name, and a repository keeps each database \
                 in a folder of its file's name: give one of them under another name, e.g. a \
                 symlink (ln -s {} OTHER.db, then --db OTHER.db), or a repository of its own",
                a.display(),
                b.display(),
                crate::shellword::path(b)
            )
        }));
    }
    Ok(())
}

/// The settings given as flags, paths made absolute (cron runs elsewhere).
pub fn flags(
    dbs: &[PathBuf],
    remotes: &RemoteArgs,
    keep: &KeepArgs,
    filters: &FilterArgs,
    job: &JobArgs,
) -> Flags {
    Flags {
        dbs: dbs.iter().fold(Vec::new(), |mut seen, p| {
            // The same file named twice is one database.
            let p = absolute(p);
            if !seen.contains(&p) {
                seen.push(p);
            }
            seen
        }),
        history_remote: remotes.history_remote.as_deref().map(remote_url),
        latest_remote: remotes.latest_remote.as_deref().map(remote_url),
        ssh_key: remotes.ssh_key.as_deref().map(absolute_or_forget),
        transport: remotes.transport.clone(),
        push_timeout: remotes.push_timeout.clone(),
        keep: keep.keep.clone(),
        full_every: job.full_every.clone(),
        exclude_tables: filters.exclude_table.clone(),
        redact: filters.redact.clone(),
        metrics_file: job.metrics_file.as_deref().map(absolute_or_forget),
        on_success: job.on_success.clone(),
        on_failure: job.on_failure.clone(),
    }
}

/// A path as remembered (absolute: cron runs elsewhere), or "" (forget the setting).
fn absolute_or_forget(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        absolute(path.as_ref())
    }
}

/// A remote URL as remembered: a relative local path made absolute (cron runs elsewhere).
fn remote_url(url: &str) -> String {
    // A space pasted around a URL is never part of it.
    let url = url.trim();
    if let Some(path) = crate::remote::local_path(url) {
        return absolute(path.as_ref());
    }
    // `HTTPS://…` is https to every URL parser, but git looks for a helper named HTTPS.
    let url = match url.split_once("://") {
        Some((scheme, rest)) => format!("{}://{rest}", scheme.to_ascii_lowercase()),
        None => url.to_string(),
    };
    // `file://./h.git`, which git would read as `/h.git`.
    crate::settings::absolute_remote(&url).unwrap_or(url)
}

/// humantime durations for clap, up to 100 years (past that, adding one to a clock overflows).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const MAX_YEARS: u64 = 100;
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30s, 5m, 1h 30m)"))?;
    if d > Duration::from_secs(MAX_YEARS * 365 * 86_400) {
        return Err(format!("too long: at most {MAX_YEARS} years"));
    }
    Ok(d)
}

/// `--full-every DURATION`, kept as given (it is remembered); "" forgets it.
fn parse_full_every(s: &str) -> Result<String, String> {
    if !s.is_empty() {
        parse_duration(s)?;
    }
    Ok(s.to_string())
}

/// `--busy-timeout DURATION`: SQLite counts it in milliseconds in a C int, up to 24 days.
pub fn parse_busy_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.as_millis() > i32::MAX as u128 {
        return Err("too long: SQLite waits at most 24 days (2^31 - 1 milliseconds)".into());
    }
    Ok(d)
}

/// `--keep N|DURATION`, or "" (forget the setting).
pub fn parse_keep(s: &str) -> Result<String, String> {
    if !s.is_empty() {
        s.parse::<crate::store::prune::Keep>()?;
    }
    Ok(s.to_string())
}

/// `--transport git|libgit2`, or "" (forget the setting).
pub fn parse_transport(s: &str) -> Result<String, String> {
    crate::remote::Transport::parse(Some(s)).map_err(|e| e.to_string())?;
    Ok(s.to_string())
}

/// `--push-timeout DURATION` (more than zero), or "" (forget the setting).
pub fn parse_push_timeout(s: &str) -> Result<String, String> {
    if !s.is_empty() {
        crate::settings::push_timeout(s).map_err(|e| e.to_string())?;
    }
    Ok(s.to_string())
}

/// `--redact TABLE.COLUMN`: both parts present (`*` and `?` allowed in each).
pub fn parse_redact(s: &str) -> Result<String, String> {
    // "" forgets every saved pattern.
    if !s.is_empty() {
        crate::settings::redact_pattern(s)?;
    }
    Ok(s.to_string())
}

/// The repository of a `snapshot` or `push` command line that did not parse (`--repo DIR` or
/// `--repo=DIR`), so its failure can be recorded like a failed run.
pub fn job_repo(args: impl Iterator<Item = std::ffi::OsString>) -> Option<std::path::PathBuf> {
    let args: Vec<std::ffi::OsString> = args.collect();
    let command = args
        .iter()
        .find(|a| !a.to_string_lossy().starts_with('-'))?;
    if command != "snapshot" && command != "push" {
        return None;
    }
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--repo" {
            return rest.next().map(std::path::PathBuf::from);
        }
        if let Some(value) = arg.to_str().and_then(|a| a.strip_prefix("--repo=")) {
            return Some(value.into());
        }
    }
    None
}
