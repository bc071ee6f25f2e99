//! `sqlgit completions SHELL` and `sqlgit man`: generated from the clap definition.

use std::io::Write as _;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};

use crate::error::Exit;
use clap_complete::Shell;

use super::Cli;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: Shell,
}

/// Generated into memory first: `clap_complete::generate` panics when its writer fails (a
/// closed pipe, a full disk), where the write here returns the error like any command's.
pub fn completions(args: CompletionsArgs) -> Result<Exit> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "sqlgit", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context(crate::say::STDOUT_LOST)?;
    Ok(Exit::Success)
}

#[derive(Debug, Args)]
pub struct ManArgs {}

pub fn man(_args: ManArgs) -> Result<Exit> {
    let mut out = std::io::stdout();
    let cmd = Cli::command();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    for sub in cmd.get_subcommands() {
        let name = format!("sqlgit-{}", sub.get_name());
        let sub = sub.clone().name(&*Box::leak(name.into_boxed_str()));
        clap_mangen::Man::new(sub).render(&mut out)?;
    }
    Ok(Exit::Success)
}
