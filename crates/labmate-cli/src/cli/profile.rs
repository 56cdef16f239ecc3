//! `labmate profile RUN`: where the step time goes, per span.

use std::fmt::Write as _;
use std::process::ExitCode;

use labmate::profile::profile;
use labmate::text::{escape_controls as esc, num};

use super::table::Table;
use super::{Context, print_json};

#[derive(clap::Args)]
pub struct Args {
    /// The run to profile.
    run: String,
    /// A run to compare span times with: which span got slower or faster.
    #[arg(long, value_name = "RUN")]
    baseline: Option<String>,
    /// Print the profile as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let index = ctx.index()?;
    let id = index.resolve(&args.run)?;
    let base = args.baseline.as_deref().map(|b| index.resolve(b)).transpose()?;
    let p = profile(&index, &id, base.as_deref())?;
    if args.json {
        print_json(&p)?;
        return Ok(ExitCode::SUCCESS);
    }
    let ms = |s: f64| format!("{}ms", num(s * 1000.0));
    let mut out = String::new();
    if p.spans.is_empty() {
        out.push_str("no spans recorded: wrap code in `with labmate.span(\"name\"):` in the training script\n");
    } else {
        let mut t = Table::new(["SPAN", "TOTAL", "SHARE", "MEAN/STEP", "P50", "P95", "STEPS"]);
        for s in &p.spans {
            t.row(vec![
                s.name.clone(),
                format!("{}s", num(s.total_s)),
                format!("{:.1}%", s.share * 100.0),
                ms(s.mean_s),
                ms(s.p50_s),
                ms(s.p95_s),
                s.steps.to_string(),
            ]);
        }
        out.push_str(&t.render());
    }
    if let Some(st) = &p.step_time {
        let _ = writeln!(
            out,
            "\nstep time: mean {}, p50 {}, p95 {} over {} steps",
            ms(st.mean_s),
            ms(st.p50_s),
            ms(st.p95_s),
            st.steps
        );
    }
    if !p.steps_per_s.is_empty() {
        let rates: Vec<String> = p.steps_per_s.iter().map(|(t, r)| format!("{}s: {}", num(*t), num(*r))).collect();
        let _ = writeln!(out, "steps/s over time: {}", rates.join(", "));
    }
    if !p.vs_baseline.is_empty() {
        let _ = writeln!(out, "\nagainst {}:", base.as_deref().unwrap_or(""));
        for c in &p.vs_baseline {
            let how = if c.change < 0.0 { "faster" } else { "slower" };
            let _ = writeln!(
                out,
                "  {}: {} -> {} per step ({:+.0}%, {how})",
                esc(&c.name),
                ms(c.baseline_mean_s),
                ms(c.mean_s),
                c.change * 100.0
            );
        }
    }
    super::print_text(&out)?;
    Ok(ExitCode::SUCCESS)
}
