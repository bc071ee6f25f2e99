//! `sqlgit verify`: the restore drill (see [`crate::verify`]).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use git2::ObjectType;

use crate::error::Exit;
use crate::restore::short;
use crate::timeline::Timeline;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Which snapshot (as for `sqlgit cat`). Default: the latest.
    pub when: Option<String>,
    /// The sqlgit repository.
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// The database (its file name, or its folder in the snapshot), when the repository holds
    /// several (default: all).
    #[arg(long, value_name = "NAME")]
    pub db: Option<String>,
}

pub fn run(args: VerifyArgs) -> Result<Exit> {
    // A pass means plain git restores what sqlgit restores: its ref files must read, and say
    // the same (no replace ref, no grafts).
    let git_dir = match args.repo.join(".git") {
        dot if dot.is_dir() => dot,
        _ => args.repo.clone(),
    };
    crate::store::refcheck::fail_if_any(&args.repo, &git_dir)?;
    // Points pruned locally come from the history remote (see `crate::timeline`).
    let mut timeline = Timeline::open(&args.repo)?;
    let id = timeline.resolve(args.when.as_deref())?;
    // A history that ends early here (a damaged snapshot) fails the drill.
    timeline.check_local()?;
    // Pruning must have left plain git working: a worktree's or a tag's objects too.
    timeline.check_roots()?;
    if !timeline.local_ids()?.contains(&id) {
        // Read from the cache: the drill counts only if the history remote still keeps it.
        timeline.confirm_remote_holds(id)?;
    }
    let repo = timeline.repo();
    let commit = repo
        .find_commit(id)
        .with_context(|| format!("read snapshot {id}"))?;
    let folders: Vec<String> = match &args.db {
        Some(db) => vec![db.clone()],
        None => commit
            .tree()
            .with_context(|| format!("read snapshot {}'s tree", short(&commit)))?
            .iter()
            .filter(|e| e.kind() == Some(ObjectType::Tree))
            .filter_map(|e| e.name().ok().map(str::to_string))
            .collect(),
    };
    if folders.is_empty() {
        anyhow::bail!(
            "snapshot {} holds no database: not a sqlgit snapshot",
            short(&commit)
        );
    }
    let report = crate::verify::verify(repo, &commit, &folders)?;
    // Warnings mean the check is not a full pass: said on stderr even with --quiet.
    for w in &report.warnings {
        tell!("sqlgit: warning: {w}");
    }
    let restores = match &report.sqlite3 {
        Some(cli) => format!("restored with {} and in-process", cli.display()),
        None => "restored in-process only".to_string(),
    };
    say!(
        "snapshot {} verified{}: {} objects intact, {} database{} {restores} and checked",
        short(&commit),
        match report.warnings.len() {
            0 => String::new(),
            1 => " with 1 warning".to_string(),
            n => format!(" with {n} warnings"),
        },
        report.objects,
        report.databases,
        if report.databases == 1 { "" } else { "s" }
    );
    Ok(Exit::Success)
}
