//! `labmate init`: create a lab in the current folder.

use std::process::ExitCode;

use labmate::Lab;

use super::Context;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(ctx: &Context, _args: Args) -> anyhow::Result<ExitCode> {
    let root = match &ctx.lab_dir {
        Some(dir) if dir.is_absolute() => dir.clone(),
        Some(dir) => ctx.cwd.join(dir),
        None => ctx.cwd.join(".labmate"),
    };
    let existed = root.join("lab.json").is_file();
    let lab = Lab::create(&root)?;
    let verb = if existed { "a lab already exists at" } else { "created a lab at" };
    say!("labmate: {verb} {}", lab.root().display());
    Ok(ExitCode::SUCCESS)
}
