//! The notebook file: where it is, what labmate reads in it (entries, results
//! blocks, the regions it never scans), and the one way it is written: under
//! an exclusive lock, to a temporary file renamed over the old one.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::bugs::shell_words;
use crate::clock;
use crate::error::{Error, Result};
use crate::lab::Lab;

pub const NOTEBOOK_FILE: &str = "LABNOTEBOOK.md";
pub const ENTRY_MARK: &str = "<!-- labmate:entry ";
pub const RESULTS_OPEN: &str = "<!-- labmate:results -->";
pub const RESULTS_CLOSE: &str = "<!-- /labmate:results -->";
const LOCK_FILE: &str = "notebook.lock";

/// What a new notebook starts with.
pub const NEW_FILE: &str = "# Lab notebook\n\n## Results\n\n<!-- labmate:results -->\n\
_`labmate notebook render` fills this table from the registry._\n<!-- /labmate:results -->\n\n## Entries\n\n";

/// The `[notebook]` settings of `labmate.toml`, read loosely (other keys are
/// the policy's business), and the seed key of `[runs]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The notebook file: `path`, relative to the repository root.
    pub path: PathBuf,
    /// `group_by`: one results row per group of runs sharing these paths' values.
    pub group_by: Vec<String>,
    /// `columns`: the results table's columns (paths), instead of the defaults.
    pub columns: Vec<String>,
    /// `where`: only runs for which this expression holds.
    pub filter: Option<String>,
    pub seed_key: String,
}

impl Settings {
    pub fn load(lab: &Lab) -> Result<Settings> {
        let policy = lab.repo_root().join("labmate.toml");
        let mut s = Settings {
            path: lab.repo_root().join(NOTEBOOK_FILE),
            group_by: Vec::new(),
            columns: Vec::new(),
            filter: None,
            seed_key: "seed".into(),
        };
        let text = match fs::read_to_string(&policy) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(s),
            Err(e) => return Err(Error::io(&policy, e)),
        };
        let bad = |why: String| Error::BadPolicy { path: policy.clone(), why };
        let value: toml::Value = toml::from_str(&text).map_err(|e| bad(crate::policy::toml_error(&e)))?;
        if let Some(key) = value.get("runs").and_then(|r| r.get("seed_key")).and_then(|k| k.as_str()) {
            s.seed_key = key.to_string();
        }
        let Some(nb) = value.get("notebook") else { return Ok(s) };
        let list = |key: &str| -> Result<Vec<String>> {
            match nb.get(key) {
                None => Ok(Vec::new()),
                Some(toml::Value::String(v)) => {
                    Ok(v.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect())
                }
                Some(toml::Value::Array(items)) => items
                    .iter()
                    .map(|i| {
                        i.as_str().map(String::from).ok_or_else(|| bad(format!("[notebook] {key}: expected strings")))
                    })
                    .collect(),
                Some(_) => Err(bad(format!("[notebook] {key}: expected a string or a list of strings"))),
            }
        };
        s.group_by = list("group_by")?;
        s.columns = list("columns")?;
        match nb.get("path") {
            None => {}
            Some(toml::Value::String(p)) if !p.trim().is_empty() => s.path = lab.repo_root().join(p),
            Some(_) => return Err(bad("[notebook] path: expected a file name".into())),
        }
        match nb.get("where") {
            None => {}
            Some(toml::Value::String(w)) => s.filter = Some(w.clone()),
            Some(_) => return Err(bad("[notebook] where: expected an expression in a string".into())),
        }
        Ok(s)
    }
}

/// One entry of the notebook, as read back from the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: String,
    /// Seconds since the Unix epoch.
    pub time: f64,
    pub kind: String,
    pub author: String,
    /// Ids of the runs it concerns.
    pub runs: Vec<String>,
    pub amends: Option<String>,
    /// A bug's reproducer (argv).
    pub repro: Option<Vec<String>>,
    /// The text, as it stands in the file (rendered references included).
    pub text: String,
    /// The line of its metadata, from 1.
    pub line: usize,
    /// The whole entry, metadata line to the next entry.
    pub(crate) span: Range<usize>,
}

/// The hidden metadata line's fields, in this order.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    id: String,
    time: f64,
    kind: String,
    author: String,
    #[serde(default)]
    runs: Vec<String>,
    #[serde(default)]
    amends: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    repro: Option<Vec<String>>,
}

/// A results block: the markers and what lies between them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Block {
    pub inner: Range<usize>,
}

/// The notebook as read: its text, entries and results blocks.
#[derive(Debug, Clone)]
pub struct Notebook {
    pub path: PathBuf,
    pub text: String,
    pub entries: Vec<Entry>,
    /// Lines labmate could not read (malformed metadata, an unclosed block).
    pub problems: Vec<String>,
    pub(crate) blocks: Vec<Block>,
    /// Byte ranges never scanned for references or claims: metadata and
    /// heading lines, results blocks, fenced code.
    hidden: Vec<Range<usize>>,
}

impl Notebook {
    /// Reads the lab's notebook; a missing file is an empty notebook.
    pub fn load(lab: &Lab) -> Result<Notebook> {
        let path = Settings::load(lab)?.path;
        let text = read(&path)?.unwrap_or_default();
        Ok(Notebook::parse(path, text))
    }

    pub fn parse(path: PathBuf, text: String) -> Notebook {
        let mut lines = Vec::new();
        let mut at = 0;
        for l in text.split_inclusive('\n') {
            lines.push((at, l.trim_end_matches(['\n', '\r']), at + l.len()));
            at += l.len();
        }
        let mut nb = Notebook {
            path,
            entries: Vec::new(),
            problems: Vec::new(),
            blocks: Vec::new(),
            hidden: Vec::new(),
            text: String::new(),
        };
        // Found once: a search per opening marker would take time squared in the markers.
        let closes: Vec<usize> = (0..lines.len()).filter(|&j| lines[j].1.trim() == RESULTS_CLOSE).collect();
        let mut open: Option<(Meta, usize, usize, usize)> = None; // meta, start, line, body start
        let mut fence: Option<(char, usize, usize)> = None; // char, length, start
        let mut i = 0;
        while i < lines.len() {
            let (off, line, end) = lines[i];
            let t = line.trim();
            // Markers end any open fence: an unclosed fence in one entry must not swallow the rest.
            let marker = t.starts_with(ENTRY_MARK) || t == RESULTS_OPEN;
            if let Some((c, n, start)) = fence {
                if marker {
                    nb.hidden.push(start..off);
                    fence = None;
                } else {
                    if fence_close(line, c, n) {
                        nb.hidden.push(start..end);
                        fence = None;
                    }
                    i += 1;
                    continue;
                }
            }
            if let Some((c, n)) = fence_open(line) {
                fence = Some((c, n, off));
                i += 1;
                continue;
            }
            if let Some(meta) = t.strip_prefix(ENTRY_MARK) {
                nb.close(&text, open.take(), off);
                nb.hidden.push(off..end);
                let json = meta.trim_end_matches("-->").trim();
                match serde_json::from_str::<Meta>(json) {
                    Ok(meta) => open = Some((meta, off, i + 1, end)),
                    Err(e) => nb.problems.push(format!("line {}: unreadable entry metadata ({e})", i + 1)),
                }
            } else if t == RESULTS_OPEN {
                nb.close(&text, open.take(), off);
                match closes.get(closes.partition_point(|&j| j <= i)).copied() {
                    Some(j) => {
                        nb.blocks.push(Block { inner: end..lines[j].0 });
                        nb.hidden.push(off..lines[j].2);
                        i = j;
                    }
                    None => {
                        nb.problems.push(format!("line {}: results block without its closing marker", i + 1));
                        nb.hidden.push(off..end);
                    }
                }
            }
            i += 1;
        }
        if let Some((_, _, start)) = fence {
            nb.hidden.push(start..text.len());
        }
        nb.close(&text, open.take(), text.len());
        nb.hidden.sort_by_key(|r| r.start);
        nb.text = text;
        nb
    }

    /// Ends the open entry at `end`: its heading block (up to the first
    /// blank line) is generated, the rest is its text.
    fn close(&mut self, text: &str, open: Option<(Meta, usize, usize, usize)>, end: usize) {
        let Some((meta, start, line, body)) = open else { return };
        let mut at = body;
        while at < end {
            let line_end = text[at..end].find('\n').map_or(end, |n| at + n + 1);
            if text[at..line_end].trim().is_empty() {
                break;
            }
            at = line_end;
        }
        self.hidden.push(body..at);
        let rest = &text[at..end];
        // Leading blank lines go; the first line's indentation stays (it may be code).
        let first = rest.find(|c: char| !c.is_whitespace()).unwrap_or(rest.len());
        let body_text = rest[rest[..first].rfind('\n').map_or(0, |n| n + 1)..].trim_end();
        self.entries.push(Entry {
            id: meta.id,
            time: meta.time,
            kind: meta.kind,
            author: meta.author,
            runs: meta.runs,
            amends: meta.amends,
            repro: meta.repro,
            text: body_text.to_string(),
            line,
            span: start..end,
        });
    }

    /// The text with everything labmate must not scan blanked out (metadata,
    /// headings, results blocks, fenced and inline code), same byte offsets.
    pub(crate) fn scannable(&self) -> String {
        let mut bytes = self.text.as_bytes().to_vec();
        for r in &self.hidden {
            blank(&mut bytes, r.clone());
        }
        // Inline code spans: a run of N backticks up to the next run of exactly N.
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'`' {
                i += 1;
                continue;
            }
            let n = bytes[i..].iter().take_while(|b| **b == b'`').count();
            let mut j = i + n;
            let mut close = None;
            while j < bytes.len() {
                if bytes[j] == b'`' {
                    let m = bytes[j..].iter().take_while(|b| **b == b'`').count();
                    if m == n {
                        close = Some(j + m);
                        break;
                    }
                    j += m;
                } else {
                    j += 1;
                }
            }
            match close {
                Some(c) => {
                    blank(&mut bytes, i..c);
                    i = c;
                }
                None => i += n,
            }
        }
        String::from_utf8(bytes).expect("whole characters are blanked")
    }

    /// The entry holding byte `offset`, if any.
    pub(crate) fn entry_at(&self, offset: usize) -> Option<&Entry> {
        self.entries.iter().find(|e| e.span.contains(&offset))
    }

    /// The line (from 1) of byte `offset`.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].matches('\n').count() + 1
    }
}

fn blank(bytes: &mut [u8], r: Range<usize>) {
    for b in &mut bytes[r] {
        if *b != b'\n' {
            *b = b' ';
        }
    }
}

fn fence_open(line: &str) -> Option<(char, usize)> {
    let t = line.trim_start_matches(' ');
    if line.len() - t.len() > 3 {
        return None;
    }
    let c = t.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let n = t.chars().take_while(|x| *x == c).count();
    // A backtick fence's info string holds no backtick.
    (n >= 3 && !(c == '`' && t[n..].contains('`'))).then_some((c, n))
}

fn fence_close(line: &str, c: char, n: usize) -> bool {
    let t = line.trim();
    t.chars().take_while(|x| *x == c).count() >= n && t.chars().all(|x| x == c)
}

/// Every entry of the lab's notebook, oldest first.
pub fn entries(lab: &Lab) -> Result<Vec<Entry>> {
    Ok(Notebook::load(lab)?.entries)
}

/// The entry a user means: its id, or a unique prefix of it (`n-` optional).
pub fn find_entry<'a>(entries: &'a [Entry], query: &str) -> Result<&'a Entry> {
    let q = query.trim();
    if let Some(e) = entries.iter().find(|e| e.id == q) {
        return Ok(e);
    }
    let full = if q.starts_with("n-") { q.to_string() } else { format!("n-{q}") };
    let found: Vec<&Entry> =
        if q.len() >= 2 { entries.iter().filter(|e| e.id.starts_with(&full)).collect() } else { Vec::new() };
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::not_found("notebook entry", format!("no notebook entry '{q}'"))),
        many => Err(Error::invalid(
            "notebook entry",
            format!(
                "notebook entry '{q}' is ambiguous; it matches {}",
                many.iter().map(|e| e.id.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// A new entry, resolved and ready to write.
pub(crate) struct Draft {
    pub kind: String,
    pub author: String,
    /// Ids and names.
    pub runs: Vec<(String, Option<String>)>,
    /// As the user gave it; resolved against the file under the lock.
    pub amends: Option<String>,
    pub repro: Option<Vec<String>>,
    pub text: String,
}

/// Appends a draft under the notebook lock; returns the new entry's id.
pub(crate) fn append(lab: &Lab, draft: Draft) -> Result<String> {
    let path = Settings::load(lab)?.path;
    let _lock = lock(lab)?;
    let mut content = read(&path)?.unwrap_or_else(|| NEW_FILE.to_string());
    let nb = Notebook::parse(path.clone(), content.clone());
    let amends = draft.amends.as_deref().map(|q| find_entry(&nb.entries, q).map(|e| e.id.clone())).transpose()?;
    let time = (lab.now() * 1000.0).round() / 1000.0;
    let id = loop {
        let id = lab.new_id("n-", time);
        if !nb.entries.iter().any(|e| e.id == id) {
            break id;
        }
    };
    let meta = Meta {
        id: id.clone(),
        time,
        kind: draft.kind,
        author: draft.author,
        runs: draft.runs.iter().map(|(id, _)| id.clone()).collect(),
        amends,
        repro: draft.repro,
    };
    if !content.is_empty() && !content.ends_with('\n') {
        content.push('\n');
    }
    if !content.is_empty() && !content.ends_with("\n\n") {
        content.push('\n');
    }
    content.push_str(&format_entry(&meta, &draft.runs, &draft.text));
    write_atomic(&path, &content)?;
    Ok(id)
}

fn format_entry(meta: &Meta, runs: &[(String, Option<String>)], text: &str) -> String {
    let stamp = clock::rfc3339(meta.time);
    let mut out = format!("{ENTRY_MARK}{} -->\n", serde_json::to_string(meta).expect("metadata serialises"));
    out.push_str(&format!(
        "### {} {} UTC · {} · {} · {}\n",
        &stamp[..10],
        &stamp[11..16],
        meta.kind,
        meta.author,
        meta.id
    ));
    let mut parts = Vec::new();
    if !runs.is_empty() {
        let links: Vec<String> = runs
            .iter()
            .map(|(id, name)| match name {
                Some(n) => format!("{} ({n})", code(id)),
                None => code(id),
            })
            .collect();
        parts.push(format!("Runs: {}", links.join(", ")));
    }
    if let Some(a) = &meta.amends {
        parts.push(format!("Amends {}", code(a)));
    }
    if let Some(argv) = &meta.repro {
        parts.push(format!("Reproducer: {}", code(&shell_words(argv))));
    }
    if !parts.is_empty() {
        out.push_str(&parts.join(" · "));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(text.trim_end());
    out.push('\n');
    out
}

/// Markdown inline code that survives backticks in its content.
fn code(s: &str) -> String {
    if s.contains('`') { format!("`` {s} ``") } else { format!("`{s}`") }
}

/// Held while the notebook is read and rewritten; dropping it unlocks.
pub(crate) struct Lock(#[allow(dead_code)] File);

pub(crate) fn lock(lab: &Lab) -> Result<Lock> {
    let p = lab.root().join(LOCK_FILE);
    let f = OpenOptions::new().create(true).truncate(false).write(true).open(&p).map_err(|e| Error::io(&p, e))?;
    flock(&f, &p)?;
    Ok(Lock(f))
}

/// Takes an exclusive flock on `f`, waiting for it.
pub(crate) fn flock(f: &File, p: &Path) -> Result<()> {
    crate::sys::flock::lock(f, crate::sys::flock::Mode::Exclusive).map_err(|e| Error::io(p, e))
}

/// The file's text, or None when there is no file.
pub(crate) fn read(path: &Path) -> Result<Option<String>> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Error::BadFile { path: path.to_path_buf(), why: "not UTF-8 text".into() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Replaces `path` with `text` atomically: a temporary file in the same
/// folder, synced, renamed over it. A reader sees the old or the new file.
pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::write(path, e))?;
    let name = path.file_name().map_or("notebook".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        if let Ok(old) = fs::metadata(path) {
            let _ = fs::set_permissions(&tmp, old.permissions());
        }
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::write(path, e));
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# Lab notebook\n\n<!-- labmate:results -->\n| a |\n<!-- /labmate:results -->\n\n\
<!-- labmate:entry {\"id\":\"n-1\",\"time\":1.5,\"kind\":\"result\",\"author\":\"me\",\"runs\":[\"r-x\"],\"amends\":null} -->\n\
### 1970-01-01 00:00 UTC · result · me · n-1\nRuns: `r-x`\n\nFirst line `code {{x}}`.\n\n```\nfenced {{y}}\n```\nLast {{z}}.\n\n\
<!-- labmate:entry {\"id\":\"n-2\",\"time\":2.0,\"kind\":\"bug\",\"author\":\"me\",\"runs\":[],\"amends\":\"n-1\",\"repro\":[\"sh\",\"t.sh\"]} -->\n\
### 1970-01-01 00:00 UTC · bug · me · n-2\n\nSecond.\n";

    #[test]
    fn a_notebook_that_cannot_be_written_says_so() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("data.txt"), "a file\n").unwrap();
        for path in [dir.path().join("data.txt/NOTES.md"), dir.path().join("data.txt/sub/NOTES.md")] {
            let e = write_atomic(&path, "# notes\n").unwrap_err();
            assert!(matches!(e, Error::Write { .. }), "{e:?}");
            assert!(e.to_string().starts_with(&format!("cannot write {}: ", path.display())), "{e}");
        }
    }

    #[test]
    fn entries_and_blocks_are_read_back() {
        let nb = Notebook::parse(PathBuf::from("x"), SAMPLE.to_string());
        assert!(nb.problems.is_empty(), "{:?}", nb.problems);
        assert_eq!(nb.entries.len(), 2);
        assert_eq!(nb.entries[0].text, "First line `code {{x}}`.\n\n```\nfenced {{y}}\n```\nLast {{z}}.");
        assert_eq!(nb.entries[0].line, 7);
        assert_eq!(nb.entries[1].amends.as_deref(), Some("n-1"));
        assert_eq!(nb.entries[1].repro.as_deref(), Some(&["sh".to_string(), "t.sh".into()][..]));
        assert_eq!(&nb.text[nb.blocks[0].inner.clone()], "| a |\n");
        let s = nb.scannable();
        assert!(!s.contains("{{x}}") && !s.contains("{{y}}") && s.contains("{{z}}"), "{s}");
        assert!(!s.contains("n-1") && s.contains("Second."));
        assert_eq!(s.len(), SAMPLE.len());
    }

    #[test]
    fn an_unclosed_fence_does_not_swallow_later_entries() {
        let text = SAMPLE.replace("```\nLast", "Last");
        let nb = Notebook::parse(PathBuf::from("x"), text);
        assert_eq!(nb.entries.len(), 2);
    }

    #[test]
    fn entries_are_found_by_prefix() {
        let nb = Notebook::parse(PathBuf::from("x"), SAMPLE.to_string());
        assert_eq!(find_entry(&nb.entries, "n-2").unwrap().id, "n-2");
        assert!(find_entry(&nb.entries, "n-").is_err());
        assert!(find_entry(&nb.entries, "n-9").is_err());
    }
}
