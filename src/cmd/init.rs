//! `sqlgit init`: write the repository's configuration once, so cron needs only
//! `sqlgit snapshot --repo DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::dump::FilterArgs;
use super::prune::KeepArgs;
use super::push::RemoteArgs;
use super::snapshot::JobArgs;
use crate::config;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The repository to create or configure.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// A database to snapshot; repeat for several (each gets its own folder in the tree).
    #[arg(long = "db", value_name = "DB", required = true)]
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

pub fn run(args: InitArgs) -> Result<ExitCode> {
    let store = Store::open_or_create(&args.repo)?;
    let dbs: Vec<String> = args
        .dbs
        .iter()
        .map(|p| super::snapshot::absolute(p))
        .collect();
    config::set_values(&store, "db", &dbs)?;
    for url in [&args.remotes.latest_remote, &args.remotes.history_remote]
        .into_iter()
        .flatten()
    {
        crate::remote::validate_url(url)?;
    }
    super::push::remember(&store, &args.remotes)?;
    super::prune::remember(&store, &args.keep)?;
    args.filters.remember(&store)?;
    args.job.remember(&store)?;
    say!(
        "configured {} (settings in {}); run: sqlgit snapshot --repo {}",
        store.path.display(),
        store.repo.path().join("config").display(),
        store.path.display()
    );
    Ok(ExitCode::SUCCESS)
}
