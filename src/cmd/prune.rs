//! `sqlgit prune`: apply the retention policy now.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::cli::{KeepArgs, parse_duration};
use crate::error::{Exit, usage};
use crate::job::{Heard, Pruned};
use crate::settings::{Flags, Settings};
use crate::store::{Store, dir_size, lock, pack};

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The sqlgit repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    #[command(flatten)]
    pub keep: KeepArgs,
    /// How long to wait for another sqlgit run on the same repository to finish.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

pub fn run(args: PruneArgs) -> Result<Exit> {
    let path = Store::open(&args.repo)?.path;
    let held = lock::lock(&path, args.lock_timeout)?;
    let mut store = Store::open(&path)?;
    store.remove_stale_locks(&held, args.lock_timeout)?;
    let unindexed = pack::remove_leftovers(&store.objects_dir());
    for line in unindexed.warnings {
        tell!("sqlgit: warning: {line}");
    }
    if let Some(line) = unindexed.failures.first() {
        anyhow::bail!("{line}");
    }
    if crate::store::reindex::upgrade_old_indexes(&store.objects_dir())? > 0 {
        say!("note: rewrote version 1 pack indexes as version 2 (git index-pack)");
    }
    let old = Settings::load(&store);
    let settings = old.merged(&Flags {
        keep: args.keep.keep.clone(),
        ..Flags::default()
    });
    // Saved first (a prune killed midway leaves it for the next run), but on a full disk
    // after pruning, which is what frees the room saving needs.
    let deferred = match crate::job::save_settings(&store, &old, &settings) {
        Ok(notes) => {
            for note in notes {
                say!("note: {note}");
            }
            false
        }
        Err(e) if crate::error::is_disk_full(&e) => true,
        Err(e) => return Err(e),
    };
    // The remote is asked first: it may have been recreated since it last confirmed.
    let heard = match (&settings.history_remote, settings.retention()?) {
        (Some(url), Some(_)) => {
            let options = settings.remote_options()?;
            match crate::remote::refresh_confirmed(&store, url, &options) {
                Ok(()) => Heard::Yes,
                Err(e) => Heard::Unreachable(crate::error::error_line(&e)),
            }
        }
        _ => Heard::Yes,
    };
    let pruned = crate::job::prune_now(&mut store, &settings, heard);
    let saved = match deferred {
        true => crate::job::save_settings(&store, &old, &settings),
        false => Ok(Vec::new()),
    };
    let pruned = match (pruned, saved) {
        (Ok(pruned), Ok(notes)) => {
            for note in notes {
                say!("note: {note}");
            }
            pruned
        }
        (Ok(pruned), Err(e)) => {
            let e = not_saved(e, matches!(pruned, Pruned::Done(_)));
            if let Err(held) = report(&store, pruned, &args) {
                tell!("sqlgit: warning: {}", crate::error::error_line(&e));
                return Err(held);
            }
            return Err(e);
        }
        (Err(e), saved) => {
            if let Err(s) = saved {
                tell!("sqlgit: warning: {}", crate::error::error_line(&s));
            }
            return Err(e);
        }
    };
    report(&store, pruned, &args)?;
    Ok(Exit::Success)
}

/// Say what pruning did (or why it did not).
fn report(store: &Store, pruned: Pruned, args: &PruneArgs) -> Result<()> {
    match pruned {
        Pruned::Done(report) => {
            if let Some(w) = crate::job::clock_ahead_line(&report) {
                tell!("sqlgit: warning: {w}");
            }
            for w in &report.damaged {
                tell!("sqlgit: warning: {w}");
            }
            super::prune_lines(&report, dir_size(&store.path))
        }
        Pruned::Held(line) => return Err(anyhow::anyhow!(line)),
        Pruned::Off if args.keep.keep.as_deref() == Some("") => {
            say!("pruning is off for {}", store.path.display());
        }
        Pruned::Off => return Err(usage("no retention set: give --keep N or --keep DURATION")),
    }
    Ok(())
}

/// The error of a setting not saved after pruning (`done`): what was pruned stays pruned.
fn not_saved(e: anyhow::Error, done: bool) -> anyhow::Error {
    let hint = || "the disk is full: free space, then run it again to save the setting".into();
    let said = match done {
        true => "pruning is done, but --keep was not saved",
        false => "--keep was not saved",
    };
    crate::error::on_full_disk(Err::<(), _>(e), hint)
        .unwrap_err()
        .context(said)
}
