//! The human's word as data: approval requests for launches that need a
//! human's yes, review items (a conclusion or a change an agent wants a
//! human to look at), and the decisions on both.
//!
//! Everything lives in one append-only file, `.labmate/reviews.jsonl`: one
//! JSON object per line, appended under an exclusive `flock`, never
//! rewritten. The state of a request or an item is the fold of its lines. A
//! last line without its newline is a write in progress (or a torn one) and
//! is skipped, like in run files.
//!
//! Rules a decision keeps: nobody decides on a request they made (an agent
//! cannot approve its own request), and no agent decides on a request or an
//! item: that is the human's word.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::notebook::{self, NewEntry, Written};
use crate::policy::Policy;
use crate::spec::{Author, GateResult, LaunchRequest, NO_AUTHOR};
use crate::sys::flock::{self, Mode};
use crate::text::clip;

pub const REVIEWS_FILE: &str = "reviews.jsonl";
pub const REQUEST_PREFIX: &str = "a-";
pub const ITEM_PREFIX: &str = "v-";

/// One line of `reviews.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
enum Line {
    Request(Box<Request>),
    Item(Item),
    Decision(Decision),
}

/// A launch waiting for a human's yes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: String,
    pub time: f64,
    /// Who asked to launch.
    pub author: String,
    /// Why it needs approval: `tag big`, `over budget: ...`.
    pub reason: Vec<String>,
    /// The launch as asked; an approval launches exactly this.
    pub launch: LaunchRequest,
    /// The gates it passed when it was asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateResult>,
    /// The sweep an approval launches whole (`launch` is its command, unfilled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<String>,
}

/// Something an agent (or a rule) wants a human to look at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub time: f64,
    pub author: String,
    pub run: Option<String>,
    /// A notebook entry id.
    pub entry: Option<String>,
    pub note: String,
    /// What opened it on its own (`diffstat ...`, `notebook ...`): the same
    /// key never opens a second item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Where a request or an item stands; a decision names the state it leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewState {
    /// Waiting for a human (requests and items).
    Pending,
    /// A request a human said yes to: it launched.
    Approved,
    /// A request a human said no to.
    Rejected,
    /// An item a human agreed with.
    Accepted,
    /// An item a human pushed back on, until resolved.
    Disputed,
    /// A disputed item settled.
    Resolved,
}

impl ReviewState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Pending => "pending",
            ReviewState::Approved => "approved",
            ReviewState::Rejected => "rejected",
            ReviewState::Accepted => "accepted",
            ReviewState::Disputed => "disputed",
            ReviewState::Resolved => "resolved",
        }
    }

    /// An item still asks for a human: pending or disputed.
    pub fn is_open(self) -> bool {
        matches!(self, ReviewState::Pending | ReviewState::Disputed)
    }
}

impl std::fmt::Display for ReviewState {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decision on a request or an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The request's or item's id.
    pub id: String,
    pub time: f64,
    pub by: String,
    /// `approved`, `rejected` (requests); `accepted`, `disputed`, `resolved` (items).
    pub decision: ReviewState,
    pub note: Option<String>,
    /// The run an approval launched.
    pub launched: Option<String>,
}

/// A new review item, before it has an id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewItem {
    pub author: String,
    pub run: Option<String>,
    pub entry: Option<String>,
    pub note: String,
    pub key: Option<String>,
}

/// A request and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestState {
    #[serde(flatten)]
    pub request: Request,
    /// `pending`, `approved` or `rejected`.
    pub state: ReviewState,
    pub decision: Option<Decision>,
}

/// An item and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemState {
    #[serde(flatten)]
    pub item: Item,
    /// `pending`, `accepted`, `disputed` or `resolved`.
    pub state: ReviewState,
    /// Every decision on it, oldest first.
    pub decisions: Vec<Decision>,
}

impl ItemState {
    /// The latest decision: the comment a dispute was made with.
    pub fn last_decision(&self) -> Option<&Decision> {
        self.decisions.last()
    }
}

/// Everything in the store, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reviews {
    pub requests: Vec<RequestState>,
    pub items: Vec<ItemState>,
    /// Lines that could not be read (skipped).
    #[serde(skip)]
    pub problems: Vec<String>,
}

/// A request or an item, found by id.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Request(&'a RequestState),
    Item(&'a ItemState),
}

impl Reviews {
    /// Requests still waiting for a human.
    pub fn pending_requests(&self) -> impl Iterator<Item = &RequestState> {
        self.requests.iter().filter(|r| r.state == ReviewState::Pending)
    }

    /// Items a human has not answered, or disputed and not resolved.
    pub fn open_items(&self) -> impl Iterator<Item = &ItemState> {
        self.items.iter().filter(|i| i.state.is_open())
    }

    /// A request or item by full id, unique id prefix, or the last 4 characters of its id.
    pub fn find(&self, query: &str) -> Result<Target<'_>> {
        let all: Vec<(&str, Target)> = self
            .requests
            .iter()
            .map(|r| (r.request.id.as_str(), Target::Request(r)))
            .chain(self.items.iter().map(|i| (i.item.id.as_str(), Target::Item(i))))
            .collect();
        fn pick<'a>(query: &str, m: Vec<&(&str, Target<'a>)>) -> Option<Result<Target<'a>>> {
            match m.len() {
                0 => None,
                1 => Some(Ok(m[0].1)),
                _ => Some(Err(Error::invalid(
                    "approval request or review item",
                    format!(
                        "'{query}' is ambiguous; it matches {}",
                        m.iter().map(|(id, _)| *id).collect::<Vec<_>>().join(", ")
                    ),
                ))),
            }
        }
        let found = pick(query, all.iter().filter(|(id, _)| *id == query).collect())
            .or_else(|| {
                (query.len() >= 3).then(|| pick(query, all.iter().filter(|(id, _)| id.starts_with(query)).collect()))?
            })
            .or_else(|| {
                (query.len() == 4).then(|| pick(query, all.iter().filter(|(id, _)| id.ends_with(query)).collect()))?
            });
        found.unwrap_or_else(|| {
            Err(Error::not_found(
                "approval request or review item",
                format!("no approval request or review item '{query}'"),
            ))
        })
    }
}

/// Reads the store (no lock: appends are whole lines).
pub fn load(lab: &Lab) -> Result<Reviews> {
    let path = store_path(lab);
    match fs::read(&path) {
        Ok(bytes) => Ok(fold(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Reviews::default()),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Review items disputed and not resolved: the pushback an agent must see.
pub fn disputed(lab: &Lab) -> Result<Vec<ItemState>> {
    Ok(load(lab)?.items.into_iter().filter(|i| i.state == ReviewState::Disputed).collect())
}

/// Records a launch that needs approval.
pub fn request_approval(
    lab: &Lab,
    launch: LaunchRequest,
    reason: Vec<String>,
    gates: Vec<GateResult>,
) -> Result<Request> {
    request_launch(lab, launch, reason, gates, None)
}

/// Records a pending request to launch the sweep `sweep` as a whole.
pub fn request_sweep_approval(
    lab: &Lab,
    launch: LaunchRequest,
    reason: Vec<String>,
    gates: Vec<GateResult>,
    sweep: &str,
) -> Result<Request> {
    request_launch(lab, launch, reason, gates, Some(sweep.to_string()))
}

fn request_launch(
    lab: &Lab,
    launch: LaunchRequest,
    reason: Vec<String>,
    gates: Vec<GateResult>,
    sweep: Option<String>,
) -> Result<Request> {
    let mut store = Store::open(lab)?;
    let existing = store.read()?;
    let author = launch.author.clone().ok_or_else(|| Error::invalid("author", NO_AUTHOR))?;
    let now = lab.now();
    let id = new_id(lab, REQUEST_PREFIX, now, &existing);
    let request = Request { id, time: now, author, reason, launch, gates, sweep };
    store.append(&Line::Request(Box::new(request.clone())))?;
    Ok(request)
}

/// Opens a review item; None when an item with the same key exists already.
pub fn open_item(lab: &Lab, new: NewItem) -> Result<Option<Item>> {
    let mut store = Store::open(lab)?;
    store.open_item(new)
}

/// What a notebook entry asks of review: an entry of kind `result` or
/// `decision` by an agent is pending review on its own. Returns the item
/// opened, if any.
pub fn on_notebook_entry(lab: &Lab, entry: &Written, author: &Author) -> Result<Option<Item>> {
    if !matches!(entry.kind.as_str(), "result" | "decision") || !Policy::load(lab)?.acts_as_agent(author) {
        return Ok(None);
    }
    let first_line = entry.text.lines().next().unwrap_or("");
    open_item(
        lab,
        NewItem {
            author: entry.author.clone(),
            run: entry.runs.first().cloned(),
            entry: Some(entry.id.clone()),
            note: format!("{} by {}: {}", entry.kind, entry.author, clip(first_line, 200)),
            key: Some(format!("notebook {}", entry.id)),
        },
    )
}

/// What a human says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `approve`: a request launches; an item is accepted.
    Yes,
    /// `reject`: a request is rejected; an item is disputed.
    No,
    /// `review resolve`: a disputed item is settled.
    Resolve,
}

/// What a decision did.
#[derive(Debug)]
pub struct Decided {
    pub decision: Decision,
    /// The request or item decided on.
    pub request: Option<Request>,
    pub item: Option<Item>,
    /// The id of the notebook's `decision` entry, or why there is none.
    pub notebook: Result<String>,
    /// What the launch said (a review item opened, a check not made).
    pub notices: Vec<String>,
}

/// What an approved request's launch did, as [`decide`]'s `launch` reports it.
#[derive(Debug)]
pub struct Launch {
    pub run: String,
    pub notices: Vec<String>,
    /// A review item the launch asks for (the code changed a lot).
    pub item: Option<NewItem>,
}

/// Decides on a request or an item, as `by`. Approving a request calls
/// `launch` with it before the decision is recorded, all under the store's
/// lock, so that it launches once ([`crate::launch::decide`] launches it
/// detached). The decision also goes into the notebook as a `decision` entry.
pub fn decide(
    lab: &Lab,
    query: &str,
    verdict: Verdict,
    by: &Author,
    note: Option<String>,
    launch: impl FnOnce(&Request) -> Result<Launch>,
) -> Result<Decided> {
    let who = by.name.as_str();
    let note = note.filter(|n| !n.trim().is_empty());
    if verdict == Verdict::No && note.is_none() {
        return Err(Error::invalid("reason", "a rejection or dispute needs a reason"));
    }
    let policy = Policy::load(lab)?;
    let mut store = Store::open(lab)?;
    let reviews = store.read()?;
    let target = reviews.find(query)?;
    let (id, requester, what) = match target {
        Target::Request(r) => (r.request.id.clone(), r.request.author.clone(), "request"),
        Target::Item(i) => (i.item.id.clone(), i.item.author.clone(), "review item"),
    };
    if let Target::Request(r) = target {
        if r.state != ReviewState::Pending {
            let d = r.decision.as_ref().map_or(String::new(), |d| format!(" by {}", d.by));
            return Err(Error::conflict("request", format!("request {id} was already {}{d}", r.state)));
        }
        if requester == who && verdict != Verdict::Resolve {
            return Err(Error::forbidden(
                "approver",
                format!(
                    "{who} asked for request {id}: the approver must differ from the requester (an agent cannot approve its own request)"
                ),
            ));
        }
    }
    if policy.acts_as_agent(by) {
        return Err(Error::forbidden(
            "approver",
            format!(
                "{who} is an agent: only a human decides on {what} {id} (an agent cannot approve launches or reviews)"
            ),
        ));
    }
    let mut notices = Vec::new();
    let mut launched = None;
    let decision = match (target, verdict) {
        (Target::Request(r), Verdict::Yes | Verdict::No) => {
            if verdict == Verdict::Yes {
                let l = launch(&r.request)?;
                notices.extend(l.notices);
                launched = Some(l.run);
                if let Some(item) = l.item {
                    match store.open_item(item) {
                        Ok(Some(item)) => notices.push(format!("review item {} opened: {}", item.id, item.note)),
                        Ok(None) => {}
                        Err(e) => notices.push(format!("warning: the review item could not be recorded: {e}")),
                    }
                }
                ReviewState::Approved
            } else {
                ReviewState::Rejected
            }
        }
        (Target::Request(_), Verdict::Resolve) => {
            return Err(Error::invalid(
                "verdict",
                format!("{id} is an approval request: approve or reject it (resolve settles a disputed review item)"),
            ));
        }
        (Target::Item(i), _) => match (i.state, verdict) {
            (ReviewState::Pending | ReviewState::Disputed, Verdict::Yes) => ReviewState::Accepted,
            (ReviewState::Pending, Verdict::No) => ReviewState::Disputed,
            (ReviewState::Disputed, Verdict::Resolve) => ReviewState::Resolved,
            (state, Verdict::Resolve) => {
                return Err(Error::conflict(
                    "review item",
                    format!("review item {id} is {state}; only a disputed item is resolved"),
                ));
            }
            (state, _) => return Err(Error::conflict("review item", format!("review item {id} was already {state}"))),
        },
    };
    let decision = Decision {
        id: id.clone(),
        time: lab.now(),
        by: who.to_string(),
        decision,
        note: note.clone(),
        launched: launched.clone(),
    };
    store.append(&Line::Decision(decision.clone()))?;
    drop(store);

    let (request, item) = match target {
        Target::Request(r) => (Some(r.request.clone()), None),
        Target::Item(i) => (None, Some(i.item.clone())),
    };
    let text = notebook_text(&decision, request.as_ref(), item.as_ref());
    let runs: Vec<String> = launched.iter().chain(item.as_ref().and_then(|i| i.run.as_ref())).cloned().collect();
    let entry = NewEntry { kind: "decision".into(), text, author: who.to_string(), runs, amends: None };
    let notebook = notebook::append(lab, entry).map(|w| w.id);
    Ok(Decided { decision, request, item, notebook, notices })
}

/// The notebook's account of a decision.
fn notebook_text(d: &Decision, request: Option<&Request>, item: Option<&Item>) -> String {
    let mut text = match (request, item) {
        (Some(r), _) => format!(
            "{} the launch {} asked for by {} ({}): `{}`",
            capitalized(d.decision.as_str()),
            r.id,
            r.author,
            r.reason.join("; "),
            r.launch.command.join(" ")
        ),
        (_, Some(i)) => format!(
            "{} review item {} by {}{}: {}",
            capitalized(d.decision.as_str()),
            i.id,
            i.author,
            i.run.as_ref().map_or(String::new(), |r| format!(" on run {r}")),
            i.note
        ),
        _ => capitalized(d.decision.as_str()),
    };
    if let Some(run) = &d.launched {
        text.push_str(&format!("; it runs as {run}"));
    }
    text.push('.');
    if let Some(n) = &d.note {
        text.push_str(&format!(" {}: {n}", if d.decision == ReviewState::Approved { "Note" } else { "Why" }));
    }
    text
}

fn store_path(lab: &Lab) -> PathBuf {
    lab.root().join(REVIEWS_FILE)
}

/// The store, opened for appending with its exclusive lock held until dropped.
struct Store {
    file: File,
    path: PathBuf,
    lab: Lab,
}

impl Store {
    fn open(lab: &Lab) -> Result<Store> {
        let path = store_path(lab);
        let file =
            OpenOptions::new().read(true).append(true).create(true).open(&path).map_err(|e| Error::io(&path, e))?;
        flock::lock(&file, Mode::Exclusive).map_err(|e| Error::io(&path, e))?;
        Ok(Store { file, path, lab: lab.clone() })
    }

    fn read(&mut self) -> Result<Reviews> {
        let mut bytes = Vec::new();
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.read_to_end(&mut bytes))
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(fold(&bytes))
    }

    /// Appends one line in one write. A torn last line (a writer that died
    /// mid-write) is closed first, so it stays one bad line.
    fn append(&mut self, line: &Line) -> Result<()> {
        let len = self.file.metadata().map_err(|e| Error::io(&self.path, e))?.len();
        let mut text = serde_json::to_string(line).expect("review lines serialise");
        text.push('\n');
        if len > 0 {
            let mut last = [0u8; 1];
            self.file
                .seek(SeekFrom::Start(len - 1))
                .and_then(|_| self.file.read_exact(&mut last))
                .map_err(|e| Error::io(&self.path, e))?;
            if last[0] != b'\n' {
                text.insert(0, '\n');
            }
        }
        self.file.write_all(text.as_bytes()).map_err(|e| Error::io(&self.path, e))
    }

    fn open_item(&mut self, new: NewItem) -> Result<Option<Item>> {
        let existing = self.read()?;
        if new.key.is_some() && existing.items.iter().any(|i| i.item.key == new.key) {
            return Ok(None);
        }
        let now = self.lab.now();
        let item = Item {
            id: new_id(&self.lab, ITEM_PREFIX, now, &existing),
            time: now,
            author: new.author,
            run: new.run,
            entry: new.entry,
            note: new.note,
            key: new.key,
        };
        self.append(&Line::Item(item.clone()))?;
        Ok(Some(item))
    }
}

/// A fresh id like a run id, with the given prefix, not yet in the store.
fn new_id(lab: &Lab, prefix: &str, now: f64, existing: &Reviews) -> String {
    loop {
        let id = lab.new_id(prefix, now);
        if existing.find(&id).is_err() {
            return id;
        }
    }
}

/// The state of the store: its complete lines, folded in order.
fn fold(bytes: &[u8]) -> Reviews {
    let mut reviews = Reviews::default();
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(&bytes[..0], |end| &bytes[..end]);
    for (n, raw) in complete.split(|b| *b == b'\n').enumerate() {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line = match std::str::from_utf8(raw)
            .map_err(|e| e.to_string())
            .and_then(|l| serde_json::from_str::<Line>(l).map_err(|e| e.to_string()))
        {
            Ok(l) => l,
            Err(e) => {
                reviews.problems.push(format!("{REVIEWS_FILE} line {}: skipped ({e})", n + 1));
                continue;
            }
        };
        match line {
            Line::Request(request) => {
                reviews.requests.push(RequestState { request: *request, state: ReviewState::Pending, decision: None })
            }
            Line::Item(item) => {
                reviews.items.push(ItemState { item, state: ReviewState::Pending, decisions: Vec::new() })
            }
            Line::Decision(d) => {
                if let Some(r) = reviews.requests.iter_mut().find(|r| r.request.id == d.id) {
                    // The first decision on a request is the one that counts.
                    if r.decision.is_none() {
                        r.state = d.decision;
                        r.decision = Some(d);
                    }
                } else if let Some(i) = reviews.items.iter_mut().find(|i| i.item.id == d.id) {
                    i.state = d.decision;
                    i.decisions.push(d);
                } else {
                    reviews.problems.push(format!("{REVIEWS_FILE} line {}: a decision on unknown '{}'", n + 1, d.id));
                }
            }
        }
    }
    reviews
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> (tempfile::TempDir, Lab) {
        let tmp = tempfile::tempdir().unwrap();
        let lab = Lab::create(&tmp.path().join(".labmate")).unwrap();
        (tmp, lab)
    }

    fn who(name: &str) -> Author {
        Author::new(name).unwrap()
    }

    fn not_launched(_: &Request) -> Result<Launch> {
        Err(Error::internal("launch", "nothing launches in these tests"))
    }

    fn launch(author: &str) -> LaunchRequest {
        LaunchRequest { command: vec!["true".into()], author: Some(author.into()), ..Default::default() }
    }

    #[test]
    fn requests_and_items_fold_into_their_state() {
        let (_tmp, lab) = lab();
        let r = request_approval(&lab, launch("agent:a"), vec!["tag big".into()], vec![]).unwrap();
        assert!(r.id.starts_with("a-") && r.id.len() == 12, "{}", r.id);
        let new =
            NewItem { author: "agent:a".into(), note: "look".into(), key: Some("k".into()), ..Default::default() };
        let item = open_item(&lab, new.clone()).unwrap().unwrap();
        assert!(item.id.starts_with("v-"));
        assert_eq!(open_item(&lab, new).unwrap(), None, "the same key opens one item");
        let d = decide(&lab, &r.id, Verdict::No, &who("me"), Some("too big".into()), not_launched).unwrap();
        assert_eq!(d.decision.decision, ReviewState::Rejected);
        decide(&lab, &item.id[..5], Verdict::No, &who("me"), Some("wrong baseline".into()), not_launched).unwrap();
        let reviews = load(&lab).unwrap();
        assert_eq!(reviews.requests[0].state, ReviewState::Rejected);
        assert_eq!(reviews.items[0].state, ReviewState::Disputed);
        assert_eq!(disputed(&lab).unwrap().len(), 1);
        decide(&lab, &item.id, Verdict::Resolve, &who("me"), None, not_launched).unwrap();
        assert!(disputed(&lab).unwrap().is_empty());
        assert_eq!(load(&lab).unwrap().items[0].decisions.len(), 2);
    }

    #[test]
    fn nobody_decides_on_their_own_request_and_agents_decide_nothing() {
        let (_tmp, lab) = lab();
        let r = request_approval(&lab, launch("agent:a"), vec!["tag big".into()], vec![]).unwrap();
        let e = decide(&lab, &r.id, Verdict::Yes, &who("agent:a"), None, not_launched).unwrap_err().to_string();
        assert!(e.contains("an agent cannot"), "{e}");
        let r2 = request_approval(&lab, launch("alice"), vec!["tag big".into()], vec![]).unwrap();
        let e =
            decide(&lab, &r2.id, Verdict::No, &who("alice"), Some("x".into()), not_launched).unwrap_err().to_string();
        assert!(e.contains("the approver must differ from the requester"), "{e}");
        let e = decide(&lab, &r2.id, Verdict::No, &who("bob"), None, not_launched).unwrap_err().to_string();
        assert!(e.contains("needs a reason"), "{e}");
        // An agent the face marks as one, whatever its name.
        let marked = Author { is_agent: true, ..who("helper") };
        let e = decide(&lab, &r2.id, Verdict::Yes, &marked, None, not_launched).unwrap_err().to_string();
        assert!(e.contains("helper is an agent"), "{e}");
        assert!(load(&lab).unwrap().requests.iter().all(|r| r.state == ReviewState::Pending));
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_closed_by_the_next_append() {
        let (_tmp, lab) = lab();
        request_approval(&lab, launch("a"), vec!["x".into()], vec![]).unwrap();
        let path = store_path(&lab);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"t\":\"request\",\"id\":\"a-0").unwrap();
        assert_eq!(load(&lab).unwrap().requests.len(), 1);
        assert!(load(&lab).unwrap().problems.is_empty(), "a line in progress is no problem yet");
        request_approval(&lab, launch("b"), vec!["x".into()], vec![]).unwrap();
        let reviews = load(&lab).unwrap();
        assert_eq!(reviews.requests.len(), 2);
        assert_eq!(reviews.problems.len(), 1, "{:?}", reviews.problems);
    }
}
