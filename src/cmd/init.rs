//! `sqlgit init`: write the repository's configuration once, so cron needs only
//! `sqlgit snapshot --repo DIR`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::cli::{FilterArgs, JobArgs, KeepArgs, RemoteArgs, check_db_paths, db_path, flags};
use crate::error::Exit;
use crate::settings::Settings;
use crate::store::{Store, lock};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The repository to create or configure.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// A database to snapshot; repeat for several (each gets its own folder in the tree). The
    /// list given replaces the saved one; required unless the repository already has one.
    #[arg(long = "db", value_name = "DB", value_parser = db_path())]
    pub dbs: Vec<PathBuf>,
    #[command(flatten)]
    pub remotes: RemoteArgs,
    #[command(flatten)]
    pub keep: KeepArgs,
    #[command(flatten)]
    pub filters: FilterArgs,
    #[command(flatten)]
    pub job: JobArgs,
}

pub fn run(args: InitArgs) -> Result<Exit> {
    check_db_paths(&args.dbs)?;
    // Changing one setting of a configured repository needs no --db (the commands sqlgit
    // suggests, such as `sqlgit init --repo DIR --history-remote URL`, must run as printed).
    // A repository a refused first run created has settings but no database list yet: the
    // fix that run printed (`sqlgit init --repo DIR --redact ''`) must run as printed too.
    // A repository that lost its config, or a git copy of one: made sqlgit's again.
    for note in crate::store::lostconfig::reclaim(&args.repo, !args.dbs.is_empty())? {
        say!("{note}");
    }
    let existing = match Store::open(&args.repo) {
        Ok(store) => Some(store),
        // One that is there but does not open (another user's that git does not trust, a
        // config that cannot be read): that is what to fix, not its list of databases.
        Err(e) if crate::store::exists_as_repository(&args.repo) => return Err(e),
        Err(_) => None,
    };
    let has_list = existing
        .as_ref()
        .is_some_and(|s| !Settings::load(s).dbs.is_empty());
    let given = flags(
        &args.dbs,
        &args.remotes,
        &args.keep,
        &args.filters,
        &args.job,
    );
    let no_dbs_yet = args.dbs.is_empty() && !has_list;
    if no_dbs_yet && (existing.is_none() || given == Default::default()) {
        return Err(crate::error::usage(format!(
            "{} has no databases yet: name them with --db DB",
            args.repo.display()
        )));
    }
    // A usage error (exit 2) naming the flag, as a run refuses a new URL.
    crate::job::refuse_bad_urls(&given.history_remote, &given.latest_remote)?;
    // A refused init creates nothing: a repository it created for settings it then refused
    // (a metrics file's folder missing, a remote's role wrong) is removed again.
    // Where a new repository is made: a symlink to a folder not made yet is kept.
    let created = crate::store::to_create(&args.repo);
    let saved = configure(&args, &given);
    if saved.is_err()
        && let Some(made) = created
        && made.symlink_metadata().is_ok_and(|m| m.is_dir())
    {
        let _ = std::fs::remove_dir_all(&made);
    }
    let (store, notes, dropped) = saved?;
    for line in dropped {
        tell!("sqlgit: warning: {line}");
    }
    for note in notes {
        say!("note: {note}");
    }
    // Absolute, for a crontab line (cron runs in $HOME).
    let shown = std::path::absolute(&store.path).unwrap_or_else(|_| store.path.clone());
    let run = match no_dbs_yet {
        true => "no database is set yet; run: sqlgit snapshot DB --repo",
        false => "run: sqlgit snapshot --repo",
    };
    say!(
        "configured {} (settings in {}); {run} {}",
        store.path.display(),
        store.repo.path().join("config").display(),
        crate::shellword::path(&shown)
    );
    Ok(Exit::Success)
}

type Saved = (Store, Vec<String>, Vec<String>);

/// Create the repository if needed and save the settings: its notes and dropped patterns.
fn configure(args: &InitArgs, given: &crate::settings::Flags) -> Result<Saved> {
    // Settings are written under the repository lock, as runs write them: two writers of the
    // config at once can lose each other's changes, or the whole file.
    let path = Store::open_or_create(&args.repo)?.path;
    let _lock = lock::lock(&path, Duration::from_secs(60))?;
    let store = Store::open(&path)?;
    let old = Settings::load(&store);
    let settings = old.merged(given);
    // All of them at once: a killed init leaves the old settings or the new ones.
    let (notes, dropped) = store.save_settings(|| {
        let notes = crate::job::save_settings(&store, &old, &settings)?;
        let dropped = settings.save_filters(&store, &old)?;
        settings.save_dbs(&store)?;
        Ok((notes, dropped))
    })?;
    Ok((store, notes, dropped))
}
