//! `labmate mcp`: the lab as MCP tools for a coding agent, over stdio.

use std::process::ExitCode;

use labmate::Error;

use super::Context;

#[derive(clap::Args)]
#[command(after_help = "\
An MCP host runs it as {\"command\": \"labmate\", \"args\": [\"mcp\"]} in the experiment's folder (LABMATE_DIR
names another lab). Every call is an agent's, `agent:<client name>` from the client's initialize unless
--author says: launches go through the lab's gates and approvals, a result or decision waits for review,
and no tool approves or rejects. Logs go to stderr; stdout carries the protocol alone.")]
pub struct Args {
    /// Act as this agent (`agent:NAME`) instead of the client's name.
    #[arg(long, value_name = "agent:NAME")]
    author: Option<String>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let lab = ctx.lab()?;
    let author = match args.author {
        Some(a) if !a.starts_with("agent:") || a.len() <= "agent:".len() => {
            return Err(Error::invalid(
                "--author",
                format!("--author {a:?}: an MCP client is an agent; name it agent:NAME"),
            )
            .into());
        }
        other => other,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let exe = std::env::current_exe()?;
    let served = runtime.block_on(labmate_mcp::serve_stdio(labmate_mcp::Config { lab, author, exe }));
    // The client is gone: a tool still at work (a long wait) is not waited for.
    runtime.shutdown_background();
    served?;
    Ok(ExitCode::SUCCESS)
}
