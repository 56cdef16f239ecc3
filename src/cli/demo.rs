//! `labmate demo`: placeholder replaced below.
use super::Context;
use std::process::ExitCode;
#[derive(clap::Args)]
pub struct Args {}
pub fn run(_ctx: &Context, _args: Args) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
