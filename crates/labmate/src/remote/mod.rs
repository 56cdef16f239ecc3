//! Runs that reach a lab over HTTP (docs/FORMAT.md, "Runs over HTTP"): a
//! lab that accepts run files appended by remote writers, and the writers
//! that push a lab's runs to it, by file and offset, so that any push can be
//! repeated or resumed without losing or doubling a byte.
//!
//! - [`accept`]: the accepting lab's side: which run ids and file paths it
//!   takes, offsets checked against what it has, appends, the marks its
//!   index reads.
//! - [`client`]: the protocol's requests, over a blocking HTTP client.
//! - [`push`]: pushing a run folder's new bytes: `labmate sync`.
//! - [`stream`]: a supervisor's run, pushed while it lives.

pub mod accept;
pub mod client;
pub mod push;
pub mod stream;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::error::{Error, Result};

pub use client::Client;

/// Where runs are pushed: the accepting server's base URL and its token.
#[derive(Clone, PartialEq, Eq)]
pub struct Remote {
    /// `http://HOST:PORT`, without the path or the token.
    pub url: String,
    pub token: String,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token never reaches a log.
        f.debug_struct("Remote").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Remote {
    /// `url` as given (the URL `labmate serve` printed, with its `?token=`
    /// and path dropped) and the token.
    pub fn new(url: &str, token: &str) -> Result<Remote> {
        let base = url.split(['?', '#']).next().unwrap_or("").trim_end_matches('/');
        let Some(rest) = base.strip_prefix("http://") else {
            return Err(Error::invalid(
                "remote URL",
                if base.starts_with("https://") {
                    format!("{url:?}: only plain http:// is spoken (over a tunnel or a trusted network)")
                } else {
                    format!("{url:?} is not an http://HOST:PORT URL")
                },
            ));
        };
        if rest.is_empty() || rest.contains('/') {
            return Err(Error::invalid(
                "remote URL",
                format!("{url:?}: give the server's address only, http://HOST:PORT"),
            ));
        }
        let token = token.trim();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid("token", "the token is empty or holds spaces or control characters"));
        }
        Ok(Remote { url: base.to_string(), token: token.to_string() })
    }
}

/// Refuses a file holding a secret that users other than its owner can read.
pub fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path).map_err(|e| Error::io(path, e))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(Error::invalid(
            "token file",
            format!(
                "{} can be read by other users (mode {:o}); make it private: chmod 600 {}",
                path.display(),
                mode & 0o777,
                path.display()
            ),
        ));
    }
    Ok(())
}

impl Remote {
    /// `url` with the token kept in the file `path`.
    pub fn with_token_file(url: &str, path: &Path) -> Result<Remote> {
        let text = fs::read_to_string(path).map_err(|e| {
            Error::environment("token file", format!("cannot read the token file {}: {e}", path.display()))
        })?;
        check_private(path)?;
        Remote::new(url, &text)
    }
}

/// A run's files as one side has them: path inside the run folder -> size.
pub type Sizes = BTreeMap<String, u64>;

/// Checks a file path inside a run folder as a remote writer gives it:
/// relative, `/`-separated, each part a plain name (no `.`, `..`, empty part
/// or NUL), not too long. Returns its parts.
pub fn run_file_parts(path: &str) -> Result<Vec<&str>> {
    let refuse = |why: &str| Err(Error::invalid("run file path", format!("{:?}: {why}", crate::text::clip(path, 200))));
    if path.is_empty() {
        return refuse("the path is empty");
    }
    if path.len() > 1024 {
        return refuse("the path is longer than 1024 bytes");
    }
    if path.starts_with('/') {
        return refuse("an absolute path; paths are relative to the run folder");
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 16 {
        return refuse("more than 16 folders deep");
    }
    for part in &parts {
        match *part {
            "" => return refuse("an empty part (a doubled or trailing /)"),
            "." | ".." => return refuse("`.` and `..` are not allowed; paths stay inside the run folder"),
            p if p.contains('\0') => return refuse("a NUL byte"),
            _ => {}
        }
    }
    Ok(parts)
}

/// Checks a run id as a remote writer gives it.
pub fn check_run_id(id: &str) -> Result<()> {
    if crate::id::looks_like_run_id(id) {
        Ok(())
    } else {
        Err(Error::invalid(
            "run id",
            format!("{:?} is not a run id (r- then 10 letters and digits)", crate::text::clip(id, 60)),
        ))
    }
}

/// Every plain file of a run folder, by its path inside the folder, with
/// its size. Symbolic links are left out; so are names that are not UTF-8,
/// which no path of the protocol can carry.
pub fn files_of(dir: &Path) -> Result<Sizes> {
    fn walk(dir: &Path, prefix: &str, sizes: &mut Sizes) -> Result<()> {
        let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else { continue };
            let Ok(kind) = entry.file_type() else { continue };
            let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            if kind.is_dir() {
                walk(&entry.path(), &rel, sizes)?;
            } else if kind.is_file() {
                let size = entry.metadata().map_err(|e| Error::io(entry.path(), e))?.len();
                sizes.insert(rel, size);
            }
        }
        Ok(())
    }
    let mut sizes = Sizes::new();
    walk(dir, "", &mut sizes)?;
    Ok(sizes)
}

/// `s` with every byte but unreserved ones and `/` percent-encoded, for a
/// URL's path.
fn encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_file_paths_stay_inside_the_run_folder() {
        assert_eq!(run_file_parts("metrics.jsonl").unwrap(), ["metrics.jsonl"]);
        assert_eq!(run_file_parts("media/img/a b.png").unwrap(), ["media", "img", "a b.png"]);
        for bad in ["", "/etc/passwd", "../x", "media/../../x", "a//b", "a/", "./a", "a\0b"] {
            let e = run_file_parts(bad).unwrap_err();
            assert_eq!(e.kind(), crate::Kind::Invalid, "{bad:?}");
        }
    }

    #[test]
    fn urls_lose_their_token_and_path() {
        let r = Remote::new("http://127.0.0.1:8765/?token=abc", "0123456789abcdef").unwrap();
        assert_eq!(r.url, "http://127.0.0.1:8765");
        assert!(Remote::new("https://host:1", "0123456789abcdef").is_err());
        assert!(Remote::new("http://host:1/api", "0123456789abcdef").is_err());
        assert!(Remote::new("host:1", "0123456789abcdef").is_err());
        assert!(!format!("{r:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn paths_are_percent_encoded() {
        assert_eq!(encode_path("media/a b%.png"), "media/a%20b%25.png");
    }
}
