//! `labmate serve`: the dashboard and the JSON API, on this machine.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use labmate::Error;
use labmate::index::Index;
use labmate::policy::Policy;
use labmate::remote::accept::Inbox;
use labmate_server::{Config, token};

use super::Context;

#[derive(clap::Args)]
#[command(after_help = "\
Prints one line, http://HOST:PORT/?token=TOKEN, once it listens: open it in a browser. Every request
needs the token (the URL sets a cookie; scripts send Authorization: Bearer TOKEN). The token is made
once per lab and kept in .labmate/serve-token (mode 0600), so a restarted server keeps its URL.
Approvals, rejections and stops from the dashboard are the --user's (or [serve] user's in labmate.toml);
without one the dashboard only shows. Ctrl-C stops the server.")]
pub struct Args {
    /// The address to listen on: loopback unless you mean it.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    host: IpAddr,
    /// The port; 0 takes a free one.
    #[arg(long, default_value_t = 8765)]
    port: u16,
    /// Open the URL in a browser once the server listens.
    #[arg(long)]
    open: bool,
    /// Keep the token in this file instead of .labmate/serve-token.
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Accept this name in the Host header too (the bound address and localhost always are).
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_host: Vec<String>,
    /// The person at the dashboard, who approves, rejects and stops there.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Accept runs pushed by other labs (`labmate sync --to`, runs with [remote] url), with this
    /// server's token.
    #[arg(long)]
    accept_runs: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let lab = ctx.lab()?;
    // Caught up once here, so the first page shows the lab as it is.
    Index::open_synced(&lab)?;
    let policy = Policy::load(&lab)?;
    let user = args.user.or_else(|| policy.serve.user.clone()).filter(|u| !u.trim().is_empty());
    if let Some(u) = &user {
        if policy.is_agent(u) {
            return Err(Error::invalid(
                "--user",
                format!("{u} is an agent's name; the dashboard's decisions are a person's"),
            )
            .into());
        }
    }
    let token_path = args.token_file.unwrap_or_else(|| token::default_path(&lab));
    let token = token::load_or_create(&token_path)?;
    let listener = std::net::TcpListener::bind(SocketAddr::new(args.host, args.port))
        .map_err(|e| Error::environment("address", format!("cannot listen on {}:{}: {e}", args.host, args.port)))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let url = match addr.ip() {
        IpAddr::V6(ip) => format!("http://[{ip}]:{}/?token={token}", addr.port()),
        IpAddr::V4(ip) => format!("http://{ip}:{}/?token={token}", addr.port()),
    };
    let accept_runs = args.accept_runs.then(|| Inbox::new(lab.clone(), policy.remote.silence));
    let config = Config {
        lab,
        token,
        user,
        allowed_hosts: args.allow_host,
        exe: std::env::current_exe()?,
        poll: Duration::from_millis(250),
        accept_runs,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{url}")?;
        out.flush()?;
        drop(out);
        if args.open {
            open_browser(&url);
        }
        labmate_server::serve(listener, config, shutdown()).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
    eprintln!("labmate: serve: stopping");
}

fn open_browser(url: &str) {
    for opener in ["xdg-open", "open"] {
        let spawned = std::process::Command::new(opener)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if spawned.is_ok() {
            return;
        }
    }
    eprintln!("labmate: serve: no browser opener found (xdg-open); open the URL above yourself");
}
