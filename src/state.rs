//! What the last runs did, for monitoring: a small JSON file in the repository
//! (`DIR/sqlgit-state.json`, written atomically), the Prometheus textfile (`--metrics-file`), and
//! the `--on-success`/`--on-failure` hooks — the only place sqlgit runs a shell.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

pub const STATE_FILE: &str = "sqlgit-state.json";

pub use crate::remote::PushRecord;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// A run that started and has not finished (it is running, or it was killed).
    #[serde(default)]
    pub running: Option<Started>,
    pub last_run: Option<Run>,
    /// Unix time of the last run that succeeded completely.
    pub last_success: Option<i64>,
    /// Unix time of the last snapshot that read every database whole (see `--full-every`).
    #[serde(default)]
    pub last_full_read: Option<i64>,
    /// Per remote role ("history", "latest"): the last push attempt.
    #[serde(default)]
    pub remotes: BTreeMap<String, PushRecord>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(from = "RunRecord")]
pub struct Run {
    pub unix: i64,
    pub ok: bool,
    pub error: Option<String>,
    pub duration_seconds: f64,
    /// The new commit, when the run made one.
    pub commit: Option<String>,
    pub changed: bool,
    pub tables: u64,
    pub rows: u64,
    pub bytes: u64,
    /// The run failed only in its pushes (so a later successful `sqlgit push` completes it).
    #[serde(default)]
    pub push_only: bool,
    /// When `push_only`: the time of the snapshot run that read the database (failed pushes
    /// since keep it), which a `sqlgit push` that completes the run records as its success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_unix: Option<i64>,
}

/// A [`Run`] as a state file holds it. One written by an older sqlgit (snapshot format 1) has
/// no `push_only`: its run failed only in its pushes when its error is the failed pushes' line
/// ("push failed: …", which nothing else starts with), so a `sqlgit push` after the upgrade
/// still completes it — at the time of that run, which read the database (an older `sqlgit
/// push` never recorded itself as a run).
#[derive(Deserialize)]
struct RunRecord {
    unix: i64,
    ok: bool,
    error: Option<String>,
    duration_seconds: f64,
    commit: Option<String>,
    changed: bool,
    tables: u64,
    rows: u64,
    bytes: u64,
    #[serde(default)]
    push_only: Option<bool>,
    #[serde(default)]
    read_unix: Option<i64>,
}

impl From<RunRecord> for Run {
    fn from(r: RunRecord) -> Run {
        let failed_pushing = !r.ok
            && r.error
                .as_deref()
                .is_some_and(|e| e.starts_with(PUSH_FAILED));
        let (push_only, read_unix) = match r.push_only {
            Some(push_only) => (push_only, r.read_unix),
            None => (
                failed_pushing,
                r.read_unix.or(failed_pushing.then_some(r.unix)),
            ),
        };
        Run {
            unix: r.unix,
            ok: r.ok,
            error: r.error,
            duration_seconds: r.duration_seconds,
            commit: r.commit,
            changed: r.changed,
            tables: r.tables,
            rows: r.rows,
            bytes: r.bytes,
            push_only,
            read_unix,
        }
    }
}

/// How the error of a run that failed only in its pushes starts.
pub const PUSH_FAILED: &str = "push failed: ";

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Started {
    pub unix: i64,
    pub pid: u32,
    /// Started by `sqlgit push` (a later push may replace its mark; only a snapshot run
    /// replaces a snapshot run's).
    #[serde(default)]
    pub push: bool,
}

/// Record that a run (`push`: a `sqlgit push`) started; the caller holds the repository lock.
pub fn mark_started(repo_dir: &Path, unix: i64, push: bool) -> Result<()> {
    let started = Started {
        unix,
        pid: std::process::id(),
        push,
    };
    update(repo_dir, |st| st.running = Some(started)).2
}

/// Load the state, `change` it and save it, under the state file's own lock (an `flock` on
/// the repository's folder, held just for this): a run that does not hold the repository's
/// lock (one that gave up waiting for it, or was stopped while waiting) records itself on top
/// of what the live run saved, never over it. Returns the changed state (also when it could
/// not be saved: the metrics still tell it), what `change` returned, and the save's result.
pub fn update<T>(repo_dir: &Path, change: impl FnOnce(&mut State) -> T) -> (State, T, Result<()>) {
    let locked = lock_dir(repo_dir);
    let mut st = load(repo_dir);
    let out = change(&mut st);
    let saved = locked.and_then(|_lock| save(repo_dir, &st));
    (st, out, saved)
}

/// An exclusive `flock` on the folder `dir`, released when the file is dropped.
fn lock_dir(dir: &Path) -> Result<std::fs::File> {
    let file = std::fs::File::open(dir).with_context(|| format!("lock {}", dir.display()))?;
    // Held for a moment by each writer: one that waits longer waits for a stopped process.
    crate::store::lock::flock_briefly(&file, dir, dir, std::time::Duration::from_secs(10))?;
    Ok(file)
}

/// The state (empty when there is none or it cannot be read: a run then starts afresh).
pub fn load(repo_dir: &Path) -> State {
    load_checked(repo_dir).0
}

/// [`load`], and why the state file could not be read when it is there and could not.
pub fn load_checked(repo_dir: &Path) -> (State, Option<String>) {
    let path = repo_dir.join(STATE_FILE);
    let why = |e: &dyn std::fmt::Display| Some(format!("{}: {e}", path.display()));
    match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (State::default(), None),
        Err(e) => (State::default(), why(&e)),
        Ok(data) => match serde_json::from_slice(&data) {
            Ok(st) => (st, None),
            Err(e) => (State::default(), why(&e)),
        },
    }
}

pub fn save(repo_dir: &Path, state: &State) -> Result<()> {
    let data = serde_json::to_vec_pretty(state)?;
    write_atomically(&repo_dir.join(STATE_FILE), &data)
}

/// Write beside `path`, then rename over it: readers never see half a file.
pub fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = crate::output::temp_beside(path, "tmp")?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("write {}", tmp.display()))?;
    let written = file
        .write_all(data)
        .and_then(|()| file.sync_all())
        .and_then(|()| crate::output::keep_folder_owner(&tmp))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        // A full disk must not also leave a temporary file behind.
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("write {}", path.display()));
    }
    Ok(())
}

/// A repository's path as metrics and messages name it: its text, with each byte that is not
/// UTF-8 and each `%` as `%XX` (not U+FFFD: two repositories would share one name and one
/// series; and `%` too, or a path holding the text `%E9` would share the name of one holding
/// the byte 0xE9). [`label_path`] reads it back.
pub fn path_label(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for chunk in path.as_os_str().as_bytes().utf8_chunks() {
        out.push_str(&chunk.valid().replace('%', "%25"));
        for b in chunk.invalid() {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path a [`path_label`] names; None when the label is not one (a `%` without two hex
/// digits: an older sqlgit left `%` as it was).
pub fn label_path(label: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let bytes = label.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] != b'%' {
            out.push(bytes[at]);
            at += 1;
            continue;
        }
        let hex = std::str::from_utf8(bytes.get(at + 1..at + 3)?).ok()?;
        out.push(u8::from_str_radix(hex, 16).ok()?);
        at += 3;
    }
    Some(OsString::from_vec(out).into())
}

/// The `repo` label value of a repository's metrics (escaped as the text format wants).
pub fn metrics_label(repo: &str) -> String {
    repo.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics of a repository that are not in its state: local snapshots and its size (none
/// when the repository could not be opened).
pub const REPOSITORY_METRICS: [&str; 2] = ["sqlgit_local_snapshots", "sqlgit_repository_bytes"];

/// Prometheus text format, for node_exporter's textfile collector. `repository`: the local
/// snapshots and the repository's size ([`REPOSITORY_METRICS`]), when known.
pub fn metrics(state: &State, repo: &str, repository: Option<(usize, u64)>) -> String {
    let label = metrics_label(repo);
    let mut out = String::new();
    let mut metric = |name: &str, help: &str, value: String, extra: &str| {
        if !out.contains(&format!("# TYPE sqlgit_{name} ")) {
            out.push_str(&format!(
                "# HELP sqlgit_{name} {help}\n# TYPE sqlgit_{name} gauge\n"
            ));
        }
        out.push_str(&format!(
            "sqlgit_{name}{{repo=\"{label}\"{extra}}} {value}\n"
        ));
    };
    // 0 until a run succeeds: an alert on this time growing old then fires for a repository
    // that never succeeded, where an absent series would keep it silent.
    metric(
        "last_success_timestamp_seconds",
        "Unix time of the last fully successful run (0: none yet).",
        state.last_success.unwrap_or(0).to_string(),
        "",
    );
    if let Some(run) = &state.last_run {
        metric(
            "last_run_timestamp_seconds",
            "Unix time of the last run.",
            run.unix.to_string(),
            "",
        );
        metric(
            "last_run_success",
            "1 if the last run succeeded, else 0.",
            (run.ok as u8).to_string(),
            "",
        );
        metric(
            "last_run_duration_seconds",
            "Wall time of the last run.",
            format!("{:.3}", run.duration_seconds),
            "",
        );
        metric(
            "dump_bytes",
            "Bytes of SQL in the last snapshot taken.",
            run.bytes.to_string(),
            "",
        );
        metric(
            "dump_rows",
            "Rows in the last snapshot taken.",
            run.rows.to_string(),
            "",
        );
        metric(
            "dump_tables",
            "Tables in the last snapshot taken.",
            run.tables.to_string(),
            "",
        );
    }
    for (role, push) in &state.remotes {
        metric(
            "push_success",
            "1 if the last push to the remote succeeded, else 0.",
            (push.ok as u8).to_string(),
            &format!(",remote=\"{role}\""),
        );
        metric(
            "push_timestamp_seconds",
            "Unix time of the last push attempt.",
            push.unix.to_string(),
            &format!(",remote=\"{role}\""),
        );
    }
    if let Some((local_snapshots, repo_bytes)) = repository {
        metric(
            "local_snapshots",
            "Snapshots in local history.",
            local_snapshots.to_string(),
            "",
        );
        metric(
            "repository_bytes",
            "Size of the local repository.",
            repo_bytes.to_string(),
            "",
        );
    }
    out
}

/// The environment a hook runs with.
pub fn hook_vars(repo: &Path, run: &Run, error: Option<&str>) -> Vec<(&'static str, OsString)> {
    let result = if error.is_none() {
        "success"
    } else {
        "failure"
    };
    vec![
        ("SQLGIT_RESULT", result.to_string().into()),
        ("SQLGIT_REPO", repo.as_os_str().to_owned()),
        (
            "SQLGIT_COMMIT",
            run.commit.clone().unwrap_or_default().into(),
        ),
        ("SQLGIT_CHANGED", (run.changed as u8).to_string().into()),
        ("SQLGIT_ROWS", run.rows.to_string().into()),
        ("SQLGIT_BYTES", run.bytes.to_string().into()),
        ("SQLGIT_TABLES", run.tables.to_string().into()),
        (
            "SQLGIT_DURATION",
            format!("{:.3}", run.duration_seconds).into(),
        ),
        ("SQLGIT_ERROR", error.unwrap_or_default().to_string().into()),
    ]
}

/// Run a hook with `sh -c`, the run's result in the environment. Credentials are removed from
/// its environment; no database content is ever on its command line.
pub fn run_hook(command: &str, vars: &[(&str, OsString)]) -> Result<()> {
    use std::os::unix::process::CommandExt;
    // /bin/sh, not `sh` looked up on PATH: a crontab's or unit's PATH may hold no sh.
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(command);
    cmd.env_remove(crate::remote::TOKEN_ENV);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    // Its own process group, so a hook that overruns is stopped with everything it started.
    cmd.process_group(0);
    // Its output is not sqlgit's (`--json` stays parseable, `--quiet` quiet): stdout is
    // dropped, stderr (where a hook says what went wrong) is sqlgit's stderr.
    cmd.stdout(std::process::Stdio::null());
    let Some(mut hook) = crate::stop::spawn_hook(&mut cmd)
        .with_context(|| format!("run hook {command:?} with /bin/sh"))?
    else {
        bail!("hook {command:?} not run: the run is being stopped");
    };
    let child = &mut hook.child;
    let started = std::time::Instant::now();
    let limit = hook_timeout()?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() >= limit {
            // SAFETY: kill(2) of the hook's own process group (its id is the child's pid).
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.wait();
            bail!(
                "hook {command:?} was stopped after {}s (a hook runs while the repository is \
                 locked: a hung one would block every later run)",
                limit.as_secs()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    crate::stop::wait_if_stopped_elsewhere();
    if !status.success() {
        bail!("hook {command:?} failed ({status})");
    }
    Ok(())
}

/// `SQLGIT_HOOK_TIMEOUT` (a duration like `30s`, or seconds), else [`HOOK_TIMEOUT`].
fn hook_timeout() -> Result<std::time::Duration> {
    let Ok(value) = std::env::var("SQLGIT_HOOK_TIMEOUT") else {
        return Ok(HOOK_TIMEOUT);
    };
    match value.trim().parse::<u64>() {
        Ok(secs) => Ok(std::time::Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(value.trim())
            .with_context(|| format!("SQLGIT_HOOK_TIMEOUT={value:?} (give e.g. 30s or 2m)")),
    }
}

/// How long a hook may run (it runs with the repository locked); `SQLGIT_HOOK_TIMEOUT`
/// overrides it.
const HOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    use super::{label_path, path_label};

    /// Distinct paths get distinct labels: the byte 0xE9 and the text `%E9` too.
    #[test]
    fn path_labels_name_one_path_each() {
        let byte = Path::new(OsStr::from_bytes(b"/r/lat\xe9n"));
        let text = Path::new("/r/lat%E9n");
        assert_eq!(path_label(byte), "/r/lat%E9n");
        assert_eq!(path_label(text), "/r/lat%25E9n");
        for path in [byte, text, Path::new("/r/50%"), Path::new("/r/é%%\u{fffd}")] {
            assert_eq!(label_path(&path_label(path)).as_deref(), Some(path));
        }
        // An older sqlgit's label of a path holding `%` is no label of this version's.
        assert_eq!(label_path("/r/50%off"), None);
    }
}
