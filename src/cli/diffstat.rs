//! (being written)

use std::process::ExitCode;

use super::Context;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_ctx: &Context, _args: Args) -> anyhow::Result<ExitCode> {
    Err(labmate::Error::Invalid("not written yet".into()).into())
}
