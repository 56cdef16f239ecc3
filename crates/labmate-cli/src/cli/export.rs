//! `labmate export`: run summaries or metric series to CSV, JSON lines or Parquet.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use labmate::export::{self, Format};
use labmate::query::Expr;
use labmate::registry;

use super::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Only runs for which EXPR holds.
    #[arg(long = "where", value_name = "EXPR")]
    filter: Option<String>,
    /// csv, jsonl or parquet.
    #[arg(long, value_name = "FORMAT")]
    format: String,
    /// Export metric series (one row per point) instead of run summaries.
    #[arg(long)]
    series: bool,
    /// With --series: only these metrics (comma-separated).
    #[arg(long = "metric", value_name = "KEYS")]
    metrics: Vec<String>,
    /// The file to write; `-` writes to standard output.
    #[arg(short, long, value_name = "PATH", allow_hyphen_values = true)]
    output: PathBuf,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let format = Format::parse(&args.format)?;
    let index = ctx.index()?;
    let filter = args.filter.as_deref().map(Expr::parse).transpose()?;
    let runs = registry::select(&index, filter.as_ref(), &[], None)?;
    if let (true, Some(f)) = (runs.is_empty(), &args.filter) {
        say!("labmate: warning: no run matches --where '{f}'");
    }
    let table = if args.series {
        let keys: Vec<String> = args.metrics.iter().flat_map(|m| m.split(',')).map(String::from).collect();
        export::series_table(&index, &runs, &keys)?
    } else {
        export::runs_table(&runs)
    };
    let to = if args.output.as_os_str() == "-" {
        let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
        export::write_to(&table, format, &mut stdout).and_then(|()| stdout.flush())?;
        "standard output".to_string()
    } else {
        let out = ctx.cwd.join(&args.output);
        export::write(&table, format, &out)?;
        out.display().to_string()
    };
    let rows = table.columns.first().map_or(0, |(_, c)| c.len());
    say!("labmate: wrote {rows} rows x {} columns to {to}", table.columns.len());
    Ok(ExitCode::SUCCESS)
}
