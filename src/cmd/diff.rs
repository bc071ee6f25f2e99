//! `sqlgit diff` (being written).

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
pub struct DiffArgs {}

pub fn run(_args: DiffArgs) -> Result<ExitCode> {
    Ok(ExitCode::from(2))
}
