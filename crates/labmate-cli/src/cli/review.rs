//! `labmate review`: what waits for a human (launches to approve, items to
//! review) and what the human disputed; `review request` asks for a look,
//! `review resolve` settles a dispute.

use std::fmt::Write as _;
use std::process::ExitCode;

use labmate::review::{self, Decided, ItemState, RequestState, ReviewState, Reviews, Verdict};
use labmate::text::escape_controls as esc;
use labmate::{Lab, clock};
use serde::Serialize;

use super::{AuthorArg, Context, print_json};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// Print {"requests": [...], "items": [...]}.
    #[arg(long)]
    json: bool,
    /// Everything, decided included (default: what waits for a human, and disputed items).
    #[arg(long)]
    all: bool,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Ask a human to look at a run's conclusion, or a design.
    Request {
        /// The run it concerns.
        #[arg(long)]
        run: Option<String>,
        /// The notebook entry it concerns.
        #[arg(long, value_name = "ENTRY")]
        entry: Option<String>,
        /// What to look at, and why.
        #[arg(long, value_name = "TEXT")]
        note: String,
        #[command(flatten)]
        author: AuthorArg,
    },
    /// Settle a disputed review item once its pushback has been dealt with (a human does).
    Resolve {
        /// The item: its id, a unique prefix, or its last 4 characters.
        id: String,
        /// How it was settled.
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
        #[command(flatten)]
        author: AuthorArg,
    },
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        None => list(&ctx.lab()?, args.json, args.all),
        Some(Action::Request { run, entry, note, author }) => {
            let lab = ctx.lab()?;
            let run = match run {
                Some(r) => Some(ctx.index()?.resolve(&r)?),
                None => None,
            };
            if note.trim().is_empty() {
                return Err(labmate::Error::invalid("note", "--note must say what to look at").into());
            }
            let author = ctx.author(&author)?;
            let item = labmate::facade::ask_review(&lab, run, entry, note, &author)?;
            say!(
                "labmate: review item {id} opened; a human answers with labmate approve {id} (accept) or labmate reject {id} --reason TEXT (dispute)",
                id = item.id
            );
            println!("{}", item.id);
            Ok(ExitCode::SUCCESS)
        }
        Some(Action::Resolve { id, note, author }) => {
            let lab = ctx.lab()?;
            let by = ctx.author(&author)?;
            let decided = labmate::facade::decide(&lab, &id, Verdict::Resolve, &by, note, &std::env::current_exe()?)?;
            report(&decided);
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(Serialize)]
struct Listing<'a> {
    requests: Vec<&'a RequestState>,
    items: Vec<&'a ItemState>,
}

fn list(lab: &Lab, json: bool, all: bool) -> anyhow::Result<ExitCode> {
    let reviews = review::load(lab)?;
    for p in &reviews.problems {
        say!("labmate: warning: {p}");
    }
    if json {
        let listing = Listing {
            requests: reviews.requests.iter().filter(|r| all || r.state == ReviewState::Pending).collect(),
            items: reviews.items.iter().filter(|i| all || i.state.is_open()).collect(),
        };
        print_json(&listing)?;
    } else {
        super::print_text(&render(&reviews, all, lab.now()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn render(reviews: &Reviews, all: bool, now: f64) -> String {
    let mut s = String::new();
    let ago = |t: f64| format!("{} ago", clock::human_duration((now - t).max(0.0)));
    let pending: Vec<&RequestState> = reviews.pending_requests().collect();
    if !pending.is_empty() {
        let _ = writeln!(s, "launches waiting for approval ({}):", pending.len());
        for r in pending {
            let q = &r.request;
            let _ = writeln!(s, "  {}  by {}, {}: {}", q.id, esc(&q.author), ago(q.time), esc(&q.reason.join("; ")));
            let mut what = format!("    {}", esc(&q.launch.command.join(" ")));
            if let Some(n) = &q.launch.name {
                let _ = write!(what, "  (name {})", esc(n));
            }
            if !q.launch.tags.is_empty() {
                let _ = write!(what, "  (tags {})", esc(&q.launch.tags.join(", ")));
            }
            let _ = writeln!(s, "{what}");
        }
    }
    for (title, state) in [("waiting for review", ReviewState::Pending), ("disputed", ReviewState::Disputed)] {
        let items: Vec<&ItemState> = reviews.items.iter().filter(|i| i.state == state).collect();
        if items.is_empty() {
            continue;
        }
        let _ = writeln!(s, "{title} ({}):", items.len());
        for i in items {
            let it = &i.item;
            let on = it.run.as_ref().map_or(String::new(), |r| format!(" on {}", esc(r)));
            let _ = writeln!(s, "  {}  by {}{on}, {}: {}", it.id, esc(&it.author), ago(it.time), esc(&it.note));
            if let Some(d) = i.last_decision().filter(|_| state == ReviewState::Disputed) {
                let _ = writeln!(
                    s,
                    "    disputed by {}: {}  (labmate review resolve {} once settled)",
                    esc(&d.by),
                    esc(d.note.as_deref().unwrap_or("")),
                    it.id
                );
            }
        }
    }
    if all {
        let decided: Vec<String> = reviews
            .requests
            .iter()
            .filter(|r| r.state != ReviewState::Pending)
            .map(|r| {
                let d = r.decision.as_ref();
                let run = d.and_then(|d| d.launched.as_ref()).map_or(String::new(), |r| format!(", run {r}"));
                format!(
                    "  {}  {} by {}{run}: {}",
                    r.request.id,
                    r.state,
                    esc(d.map_or("", |d| &d.by)),
                    esc(&r.request.launch.command.join(" "))
                )
            })
            .chain(
                reviews.items.iter().filter(|i| matches!(i.state, ReviewState::Accepted | ReviewState::Resolved)).map(
                    |i| {
                        let by = i.last_decision().map_or("", |d| &d.by);
                        format!("  {}  {} by {}: {}", i.item.id, i.state, esc(by), esc(&i.item.note))
                    },
                ),
            )
            .collect();
        if !decided.is_empty() {
            let _ = writeln!(s, "decided ({}):", decided.len());
            for line in decided {
                let _ = writeln!(s, "{line}");
            }
        }
    }
    if s.is_empty() {
        s.push_str("nothing waits for a human: no pending approvals, review items or disputes\n");
    }
    s
}

/// What `approve`, `reject` and `review resolve` say.
pub fn report(d: &Decided) {
    let what = if d.request.is_some() { "request" } else { "review item" };
    say!("labmate: {what} {} {} by {}", d.decision.id, d.decision.decision, d.decision.by);
    for notice in &d.notices {
        say!("labmate: {notice}");
    }
    if let Some(run) = &d.decision.launched {
        say!("labmate: run {run} started; `labmate wait {run}` follows it");
        println!("{run}");
    }
    if let Err(e) = &d.notebook {
        say!("labmate: warning: the decision is recorded, but not in the notebook: {e}");
    }
}
