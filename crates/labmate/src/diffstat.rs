//! Architecture checkpoints: how much the code changed between two code
//! states (the working tree, a run's recorded state, a commit): files and
//! lines added and removed, new files, and dependencies added to the common
//! manifests (`requirements*.txt`, `pyproject.toml`, `Cargo.toml`).
//!
//! A run's code state is its commit with its `patch.diff` applied (its
//! untracked files were not recorded). States are compared as git trees: a
//! run's tree is written through a temporary index, so the repository's own
//! index and working tree are never touched.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::git::Repo;
use crate::index::Index;
use crate::lab::Lab;
use crate::rundir::{PATCH_FILE, RunDir};

/// Untracked files larger than this are counted as binary (no lines).
const MAX_COUNTED_BYTES: u64 = 8 << 20;

/// A code state to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeState {
    /// The repository's working tree now, untracked files included.
    WorkingTree,
    /// A run's commit and uncommitted patch, as recorded at launch.
    Run(String),
    /// A commit (or anything `git rev-parse` names).
    Commit(String),
}

impl CodeState {
    pub fn label(&self) -> String {
        match self {
            CodeState::WorkingTree => "the working tree".into(),
            CodeState::Run(id) => format!("run {id}"),
            CodeState::Commit(c) => format!("commit {c}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffStat {
    pub from: String,
    pub to: String,
    pub files_changed: usize,
    pub lines_added: u64,
    pub lines_removed: u64,
    pub files: Vec<FileStat>,
    pub new_files: Vec<String>,
    pub new_dependencies: Vec<Dependency>,
    pub removed_dependencies: Vec<Dependency>,
}

impl DiffStat {
    /// Lines added plus lines removed: what `[review] lines_changed` measures.
    pub fn lines_changed(&self) -> u64 {
        self.lines_added + self.lines_removed
    }

    /// One line: `+120 -8 lines in 4 files (1 new); new dependencies: torch`.
    pub fn brief(&self) -> String {
        let files = if self.files_changed == 1 { "file" } else { "files" };
        let mut s = format!("+{} -{} lines in {} {files}", self.lines_added, self.lines_removed, self.files_changed);
        if !self.new_files.is_empty() {
            s.push_str(&format!(" ({} new)", self.new_files.len()));
        }
        if !self.new_dependencies.is_empty() {
            let names: Vec<&str> = self.new_dependencies.iter().map(|d| d.name.as_str()).collect();
            s.push_str(&format!("; new dependencies: {}", names.join(", ")));
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileStat {
    pub path: String,
    /// `added`, `modified` or `deleted`.
    pub status: String,
    /// None for a binary file.
    pub added: Option<u64>,
    pub removed: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dependency {
    /// The manifest, relative to the repository's root.
    pub file: String,
    pub name: String,
    /// As the manifest writes it: `torch>=2.1`, `serde = "1"`.
    pub spec: String,
}

/// The code state a diffstat compares with when none is named: the
/// baseline's run (the newest of a baseline group), else the newest run
/// created before `before` (or before now) that recorded a git state.
pub fn default_base(lab: &Lab, index: &Index, before: Option<&str>) -> Result<Option<(CodeState, String)>> {
    let newest = |runs: Vec<crate::model::Run>, cutoff: f64| {
        runs.into_iter()
            .filter(|r| r.git.is_some() && r.created_ts < cutoff)
            .max_by(|a, b| a.created_ts.total_cmp(&b.created_ts))
    };
    let cutoff = match before {
        Some(id) => index.run(id)?.created_ts,
        None => f64::INFINITY,
    };
    if let Some(side) = crate::registry::baseline(lab) {
        if let Some(run) = crate::registry::side(index, &side).ok().and_then(|s| newest(s.runs, f64::INFINITY)) {
            return Ok(Some((CodeState::Run(run.id.clone()), format!("run {} (the baseline)", run.id))));
        }
    }
    let which = if before.is_some() { "the run before" } else { "the newest run" };
    Ok(newest(index.runs(None)?, cutoff)
        .map(|r| (CodeState::Run(r.id.clone()), format!("run {} ({which}; no baseline is set)", r.id))))
}

/// Compares two code states of the lab's repository.
pub fn diffstat(lab: &Lab, from: &CodeState, to: &CodeState) -> Result<DiffStat> {
    let repo = repo(lab)?;
    let from_tree = tree(&repo, lab, from)?;
    let to_tree = match to {
        CodeState::WorkingTree => None,
        other => Some(tree(&repo, lab, other)?),
    };
    let mut files: Vec<FileStat> = repo
        .changes(&from_tree, to_tree.as_deref())?
        .into_iter()
        .map(|c| {
            let status = match c.status.as_str() {
                "A" => "added",
                "D" => "deleted",
                _ => "modified",
            };
            let (added, removed) = (c.lines.map(|l| l.0), c.lines.map(|l| l.1));
            FileStat { path: c.path, status: status.into(), added, removed }
        })
        .collect();
    if to_tree.is_none() {
        for path in repo.untracked()? {
            let lines = count_lines(&repo.top().join(&path));
            files.push(FileStat { path, status: "added".into(), added: lines, removed: lines.map(|_| 0) });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));

    let (mut new_deps, mut removed_deps) = (Vec::new(), Vec::new());
    for f in files.iter().filter(|f| is_manifest(&f.path)) {
        let old = repo.show(&from_tree, &f.path);
        let new = match &to_tree {
            Some(t) => repo.show(t, &f.path),
            None => std::fs::read_to_string(repo.top().join(&f.path)).unwrap_or_default(),
        };
        let (before, after) = (dependencies(&f.path, &old), dependencies(&f.path, &new));
        let dep = |(name, spec): (&String, &String)| Dependency {
            file: f.path.clone(),
            name: name.clone(),
            spec: spec.clone(),
        };
        new_deps.extend(after.iter().filter(|(n, _)| !before.contains_key(*n)).map(dep));
        removed_deps.extend(before.iter().filter(|(n, _)| !after.contains_key(*n)).map(dep));
    }
    Ok(DiffStat {
        from: from.label(),
        to: to.label(),
        files_changed: files.len(),
        lines_added: files.iter().filter_map(|f| f.added).sum(),
        lines_removed: files.iter().filter_map(|f| f.removed).sum(),
        new_files: files.iter().filter(|f| f.status == "added").map(|f| f.path.clone()).collect(),
        files,
        new_dependencies: new_deps,
        removed_dependencies: removed_deps,
    })
}

/// The check `[review] lines_changed` makes at launch: the working tree
/// against the baseline (or the newest run before `run`). Returns the note
/// of the review item to open, and its key (one item per change), when the
/// change is larger than `limit`.
pub fn large_change(lab: &Lab, run: &str, limit: u64) -> Result<Option<(String, String)>> {
    let index = Index::open_synced(lab)?.0;
    let Some((base, label)) = default_base(lab, &index, Some(run))? else {
        return Ok(None);
    };
    let stat = diffstat(lab, &base, &CodeState::WorkingTree)?;
    if stat.lines_changed() <= limit {
        return Ok(None);
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for f in &stat.files {
        (&f.path, f.added, f.removed).hash(&mut hasher);
    }
    let base_id = match &base {
        CodeState::Run(id) => id.as_str(),
        _ => "",
    };
    let note = format!(
        "{} lines changed since {label}: {}; over [review] lines_changed = {limit} (`labmate diffstat {run}`)",
        stat.lines_changed(),
        stat.brief()
    );
    Ok(Some((note, format!("diffstat {base_id} {:016x}", hasher.finish()))))
}

/// The names a manifest depends on (normalised), each with its spec as written.
pub fn dependencies(path: &str, text: &str) -> BTreeMap<String, String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let mut deps = BTreeMap::new();
    if name == "Cargo.toml" || name == "pyproject.toml" {
        let Ok(doc) = toml::from_str::<toml::Table>(text) else {
            return deps;
        };
        let at = |path: &[&str]| -> Option<&toml::Value> {
            let mut v = doc.get(path[0])?;
            for k in &path[1..] {
                v = v.get(*k)?;
            }
            Some(v)
        };
        if name == "Cargo.toml" {
            for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
                keyed(&mut deps, at(&[section]));
                keyed(&mut deps, at(&["workspace", section]));
                for target in tables(at(&["target"])) {
                    keyed(&mut deps, target.get(section));
                }
            }
        } else {
            keyed(&mut deps, at(&["tool", "poetry", "dependencies"]));
            keyed(&mut deps, at(&["tool", "poetry", "dev-dependencies"]));
            for group in tables(at(&["tool", "poetry", "group"])) {
                keyed(&mut deps, group.get("dependencies"));
            }
            listed(&mut deps, at(&["project", "dependencies"]));
            for list in tables(at(&["project", "optional-dependencies"])).chain(tables(at(&["dependency-groups"]))) {
                listed(&mut deps, Some(list));
            }
        }
    } else {
        for line in text.lines() {
            let line = line.split(" #").next().unwrap_or("").trim();
            if line.starts_with(['#', '-']) {
                continue;
            }
            if let Some(n) = requirement_name(line) {
                deps.insert(n, line.to_string());
            }
        }
    }
    deps
}

/// Dependencies as the keys of a TOML table (`serde = "1"`).
fn keyed(deps: &mut BTreeMap<String, String>, table: Option<&toml::Value>) {
    for (k, v) in table.and_then(|t| t.as_table()).into_iter().flatten() {
        if k != "python" {
            let spec = match v {
                toml::Value::String(version) => format!("{k} = {version:?}"),
                toml::Value::Table(t) => match t.get("version").and_then(|v| v.as_str()) {
                    Some(version) => format!("{k} = {{ version = {version:?}, ... }}"),
                    None => format!("{k} = {{ {} }}", t.keys().cloned().collect::<Vec<_>>().join(", ")),
                },
                _ => k.clone(),
            };
            deps.insert(normalise(k), spec);
        }
    }
}

/// The values of a table of tables (`[target.*]`, `[tool.poetry.group.*]`).
fn tables(v: Option<&toml::Value>) -> impl Iterator<Item = &toml::Value> {
    v.and_then(|t| t.as_table()).into_iter().flat_map(|t| t.values())
}

/// Dependencies as a list of requirement strings (`"torch>=2.1"`).
fn listed(deps: &mut BTreeMap<String, String>, list: Option<&toml::Value>) {
    for spec in list.and_then(|l| l.as_array()).into_iter().flatten().filter_map(|s| s.as_str()) {
        if let Some(n) = requirement_name(spec) {
            deps.insert(n, spec.to_string());
        }
    }
}

/// The project name at the start of a requirement (`torch>=2; python_version>"3"`), normalised.
fn requirement_name(spec: &str) -> Option<String> {
    let spec = spec.trim();
    let end = spec.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))).unwrap_or(spec.len());
    let name = &spec[..end];
    // A URL or a path is not a name.
    let rest = spec[end..].trim_start();
    (!name.is_empty() && !rest.starts_with(':') && !rest.starts_with('/')).then(|| normalise(name))
}

/// Names compare as packaging does: case-insensitive, `_` and `.` as `-`.
fn normalise(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

fn is_manifest(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "pyproject.toml" || name == "Cargo.toml" || (name.starts_with("requirements") && name.ends_with(".txt"))
}

fn count_lines(path: &Path) -> Option<u64> {
    if std::fs::metadata(path).ok()?.len() > MAX_COUNTED_BYTES {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    if bytes[..bytes.len().min(8000)].contains(&0) {
        return None;
    }
    let newlines = bytes.iter().filter(|b| **b == b'\n').count() as u64;
    Some(newlines + u64::from(!bytes.is_empty() && !bytes.ends_with(b"\n")))
}

/// The git work tree holding the lab.
fn repo(lab: &Lab) -> Result<Repo> {
    Repo::discover(lab.repo_root()).ok_or_else(|| {
        Error::invalid(
            "repository",
            format!("{} is not in a git work tree: there is no code state to compare", lab.repo_root().display()),
        )
    })
}

/// The tree of a code state (its id).
fn tree(repo: &Repo, lab: &Lab, state: &CodeState) -> Result<String> {
    match state {
        CodeState::WorkingTree => Err(Error::invalid("code state", "the working tree has no tree of its own")),
        CodeState::Commit(c) => repo
            .tree(c)
            .map_err(|_| Error::not_found("commit", format!("'{c}' is neither a run nor a commit of this repository"))),
        CodeState::Run(id) => {
            let dir = RunDir::at(lab.run_dir(id));
            let spec = dir.read_spec()?;
            let git = spec.git.ok_or_else(|| {
                let why = format!("run {id} has no code state: it was launched outside a git work tree");
                Error::not_found("code state", why)
            })?;
            let base = match &git.commit {
                Some(c) => repo.tree(c).map_err(|_| {
                    Error::not_found("commit", format!("run {id}'s commit {c} is not in this repository (any more)"))
                })?,
                None => repo.empty_tree()?,
            };
            let patch = dir.file(PATCH_FILE);
            if std::fs::metadata(&patch).map_or(0, |m| m.len()) == 0 {
                return Ok(base);
            }
            let index = lab.root().join(format!("diffstat-{}-{id}.index", std::process::id()));
            repo.tree_with_patch(&base, &patch, &index)
                .map_err(|e| Error::conflict("patch", format!("run {id}'s patch does not apply to its commit: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_come_from_each_manifest_kind() {
        let req = dependencies(
            "requirements-dev.txt",
            "# tools\nnumpy==1.26\n-r base.txt\nTorch_Vision>=0.16 # vision\n\nhttps://x/y.whl\n",
        );
        assert_eq!(req.keys().collect::<Vec<_>>(), ["numpy", "torch-vision"]);
        assert_eq!(req["torch-vision"], "Torch_Vision>=0.16");
        let py = dependencies(
            "pyproject.toml",
            "[project]\ndependencies = [\"torch>=2.1\", \"einops\"]\n[project.optional-dependencies]\ndev = [\"pytest\"]\n[tool.poetry.dependencies]\npython = \"^3.10\"\nrich = \"*\"\n",
        );
        assert_eq!(py.keys().collect::<Vec<_>>(), ["einops", "pytest", "rich", "torch"]);
        let cargo = dependencies(
            "sub/Cargo.toml",
            "[package]\nname = \"x\"\n[dependencies]\nserde = \"1\"\n[dev-dependencies]\ntempfile = \"3\"\n[target.'cfg(unix)'.dependencies]\nlibc = \"0.2\"\n",
        );
        assert_eq!(cargo.keys().collect::<Vec<_>>(), ["libc", "serde", "tempfile"]);
        assert_eq!(cargo["serde"], "serde = \"1\"");
        assert!(dependencies("pyproject.toml", "not [ toml").is_empty());
    }

    #[test]
    fn manifests_are_recognised_by_name() {
        let paths =
            ["requirements.txt", "a/requirements-gpu.txt", "Cargo.toml", "x/pyproject.toml", "req.txt", "Cargo.lock"];
        assert_eq!(paths.iter().filter(|p| is_manifest(p)).count(), 4);
    }
}
