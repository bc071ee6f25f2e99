//! `sqlgit snapshot`: the main job, run from cron — snapshot, push, prune, then record the
//! result (state file, metrics file) and run the success/failure hook.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use clap::Args;

use super::dump::{FilterArgs, parse_duration};
use super::prune::KeepArgs;
use super::push::{RemoteArgs, push_all, remember};
use crate::config;
use crate::snapshot::{self, Outcome, human_bytes};
use crate::state::{self, Run};
use crate::store::{Store, lock, pack};
use crate::when;

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The SQLite database file(s), opened read-only and never changed; each gets its own folder
    /// in the tree. Default: the databases set with `sqlgit init` (given ones are remembered).
    pub dbs: Vec<PathBuf>,
    /// The git repository holding the snapshots (created, bare and private, if missing).
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// How long to wait for a writer's lock on the database.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub busy_timeout: Duration,
    /// How long to wait for another sqlgit run on the same repository to finish.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
    #[command(flatten)]
    pub remotes: RemoteArgs,
    #[command(flatten)]
    pub keep: KeepArgs,
    #[command(flatten)]
    pub filters: FilterArgs,
    #[command(flatten)]
    pub job: JobArgs,
}

/// Monitoring of the job; remembered like the other settings.
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
    /// Run this with `sh -c` after a failed run (same variables).
    #[arg(long, value_name = "CMD")]
    pub on_failure: Option<String>,
}

impl JobArgs {
    /// Save the monitoring settings that were given (the metrics path made absolute).
    pub fn remember(&self, store: &Store) -> Result<()> {
        let metrics = self.metrics_file.as_deref().map(|p| absolute(p.as_ref()));
        config::setting(store, "metricsFile", metrics.as_deref())?;
        config::setting(store, "onSuccess", self.on_success.as_deref())?;
        config::setting(store, "onFailure", self.on_failure.as_deref())?;
        Ok(())
    }
}

pub fn run(args: SnapshotArgs) -> Result<ExitCode> {
    snapshot::enable_fsync();
    let started = Instant::now();
    // A database that is not there: do not create a repository for it (an existing one records
    // the failed run below).
    if !args.repo.exists()
        && let Some(missing) = args.dbs.iter().find(|db| !db.exists())
    {
        return Err(anyhow!("database {}: no such file", missing.display()));
    }
    let store = match Store::open_or_create(&args.repo) {
        Ok(s) => s,
        Err(e) => {
            // Nowhere to record it, but the failure hook still hears of it.
            if let Some(hook) = &args.job.on_failure {
                let vars = hook_vars(&args.repo.display().to_string(), &Run::default(), Some(&e));
                if let Err(h) = state::run_hook(hook, &vars) {
                    eprintln!("sqlgit: {}", crate::error_line(&h));
                }
            }
            return Err(e);
        }
    };
    let _lock = lock::lock(&store.path, args.lock_timeout)?;
    store.remove_stale_locks();
    let mut job = Job {
        store,
        pushed_ok: true,
        push_errors: Vec::new(),
    };
    let result = job.run(&args);
    let mut run = Run {
        unix: when::unix_now(),
        ok: result.is_ok() && job.pushed_ok,
        duration_seconds: started.elapsed().as_secs_f64(),
        ..Run::default()
    };
    if let Ok(outcome) = &result {
        run.commit = outcome.commit.map(|c| c.to_string());
        run.changed = outcome.commit.is_some();
        run.tables = outcome.summary.tables;
        run.rows = outcome.summary.rows;
        run.bytes = outcome.summary.bytes;
    }
    let error = match &result {
        Err(e) => Some(anyhow!("{}", crate::error_line(e))),
        Ok(_) if !job.pushed_ok => Some(anyhow!("push failed: {}", job.push_errors.join("; "))),
        Ok(_) => None,
    };
    run.error = error.as_ref().map(|e| e.to_string());
    job.finish(&args.job, run, error.as_ref());
    result?;
    Ok(if job.pushed_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

struct Job {
    store: Store,
    pushed_ok: bool,
    /// "<role> remote <url>: <cause>" for each failed push.
    push_errors: Vec<String>,
}

impl Job {
    fn run(&mut self, args: &SnapshotArgs) -> Result<Outcome> {
        let store = &self.store;
        remember(store, &args.remotes)?;
        super::prune::remember(store, &args.keep)?;
        let flags: Vec<String> = args.dbs.iter().map(|p| absolute(p)).collect();
        let dbs: Vec<PathBuf> = if flags.is_empty() {
            config::values(store, "db")
                .into_iter()
                .map(PathBuf::from)
                .collect()
        } else {
            flags.iter().map(PathBuf::from).collect()
        };
        if dbs.is_empty() {
            return Err(anyhow!(
                "no database given: name one (sqlgit snapshot DB --repo DIR) or set it with sqlgit init"
            ));
        }
        let filters = args.filters.remember(store)?;
        pack::remove_stale_temp_files(&store.objects_dir());
        let outcome = snapshot::take(store, &dbs, args.busy_timeout, &filters)?;
        // Databases given as arguments are remembered once they have been snapshotted (a typo
        // must not replace the configured list).
        if !flags.is_empty() {
            config::set_values(store, "db", &flags)?;
        }
        let s = &outcome.summary;
        match outcome.commit {
            Some(id) => say!(
                "{id} {} tables, {} rows, {} of SQL, {} added to the repository",
                s.tables,
                s.rows,
                human_bytes(s.bytes),
                human_bytes(outcome.pack_bytes)
            ),
            None => say!("unchanged since {}: no new snapshot", outcome.head),
        }
        // A push that fails keeps the commit; the next run catches up. Still a failure.
        let records = push_all(&self.store);
        self.pushed_ok = records.iter().all(|(_, r)| r.ok);
        self.push_errors = records
            .iter()
            .filter_map(|(role, r)| {
                let cause = r.error.as_ref()?;
                Some(format!("{} remote {}: {cause}", role.name(), r.url))
            })
            .collect();
        let mut st = state::load(&self.store.path);
        for (role, record) in records {
            st.remotes.insert(role.name().to_string(), record);
        }
        state::save(&self.store.path, &st)?;
        super::prune::apply(&mut self.store)?;
        Ok(outcome)
    }

    /// Record the run, write metrics, run the hook. Problems here are reported, never fatal.
    fn finish(&self, args: &JobArgs, run: Run, error: Option<&anyhow::Error>) {
        let store = &self.store;
        let report = |e: anyhow::Error| eprintln!("sqlgit: {}", crate::error_line(&e));
        if let Err(e) = args.remember(store) {
            report(e);
        }
        let metrics_file = config::setting(store, "metricsFile", None);
        let on_success = config::setting(store, "onSuccess", None);
        let on_failure = config::setting(store, "onFailure", None);
        let mut st = state::load(&store.path);
        if run.ok {
            st.last_success = Some(run.unix);
        }
        st.last_run = Some(run.clone());
        if let Err(e) = state::save(&store.path, &st) {
            report(e);
        }
        match metrics_file {
            Ok(Some(path)) => {
                let local = local_snapshots(store);
                let text = state::metrics(
                    &st,
                    &store.path.display().to_string(),
                    local,
                    super::prune::dir_size(&store.path),
                );
                if let Err(e) =
                    state::write_atomically(std::path::Path::new(&path), text.as_bytes())
                {
                    report(e.context("metrics file"));
                }
            }
            Ok(None) => {}
            Err(e) => report(e),
        }
        let hook = if run.ok { on_success } else { on_failure };
        match hook {
            Ok(Some(cmd)) => {
                let vars = hook_vars(&store.path.display().to_string(), &run, error);
                if let Err(e) = state::run_hook(&cmd, &vars) {
                    report(e);
                }
            }
            Ok(None) => {}
            Err(e) => report(e),
        }
    }
}

fn hook_vars(repo: &str, run: &Run, error: Option<&anyhow::Error>) -> Vec<(&'static str, String)> {
    vec![
        (
            "SQLGIT_RESULT",
            if error.is_none() {
                "success"
            } else {
                "failure"
            }
            .to_string(),
        ),
        ("SQLGIT_REPO", repo.to_string()),
        ("SQLGIT_COMMIT", run.commit.clone().unwrap_or_default()),
        ("SQLGIT_CHANGED", (run.changed as u8).to_string()),
        ("SQLGIT_ROWS", run.rows.to_string()),
        ("SQLGIT_BYTES", run.bytes.to_string()),
        ("SQLGIT_TABLES", run.tables.to_string()),
        ("SQLGIT_DURATION", format!("{:.3}", run.duration_seconds)),
        (
            "SQLGIT_ERROR",
            error.map(crate::error_line).unwrap_or_default(),
        ),
    ]
}

/// Snapshots in local history.
pub fn local_snapshots(store: &Store) -> usize {
    let mut n = 0;
    let mut next = store.head().ok().flatten();
    while let Some(c) = next {
        n += 1;
        next = c.parent(0).ok();
    }
    n
}

/// Paths are remembered absolute: cron runs elsewhere.
pub fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}
