//! The protocol's requests, as a writer sends them (docs/FORMAT.md, "Runs
//! over HTTP"), over a blocking HTTP client: plain http, keep-alive, each
//! request bounded in time so that a server that went away never holds a
//! writer for long.

use std::time::Duration;

use serde_json::Value;

use super::accept::Appended;
use super::{Remote, Sizes, check_run_id, encode_path};
use crate::error::{Error, Result};

/// A connection to an accepting lab.
pub struct Client {
    agent: ureq::Agent,
    remote: Remote,
}

impl Client {
    /// `timeout` bounds each request whole, from connecting to the last byte.
    pub fn new(remote: Remote, timeout: Duration) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(5))))
            .build();
        Client { agent: config.into(), remote }
    }

    pub fn url(&self) -> &str {
        &self.remote.url
    }

    /// The files the lab has of run `id`, and their sizes.
    pub fn sizes(&self, id: &str) -> Result<Sizes> {
        check_run_id(id)?;
        let url = format!("{}/api/remote/runs/{id}", self.remote.url);
        let answer = self.answer(self.agent.get(&url).header("Authorization", self.bearer()).call())?;
        let files = answer.get("files").and_then(Value::as_object).ok_or_else(|| self.odd("no files"))?;
        files
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.as_u64().ok_or_else(|| self.odd("a size that is no number"))?)))
            .collect::<Result<Sizes>>()
    }

    /// Pushes `bytes` as the bytes of `path` of run `id` from `offset` on.
    pub fn append(&self, id: &str, path: &str, offset: u64, bytes: &[u8]) -> Result<Appended> {
        let url = format!("{}/api/remote/runs/{id}/files/{}?offset={offset}", self.remote.url, encode_path(path));
        let sent = self
            .agent
            .post(&url)
            .header("Authorization", self.bearer())
            .header("Content-Type", "application/octet-stream")
            .send(bytes);
        match self.answer(sent) {
            Ok(v) => Ok(Appended::Size(v.get("size").and_then(Value::as_u64).ok_or_else(|| self.odd("no size"))?)),
            Err(Refused::Behind(size)) => Ok(Appended::Behind(size)),
            Err(Refused::Error(e)) => Err(e),
        }
    }

    /// Tells the lab the writer of run `id` is still there.
    pub fn heartbeat(&self, id: &str) -> Result<()> {
        let url = format!("{}/api/remote/runs/{id}/heartbeat", self.remote.url);
        self.answer(self.agent.post(&url).header("Authorization", self.bearer()).send_empty())?;
        Ok(())
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.remote.token)
    }

    fn answer(
        &self,
        sent: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, Refused> {
        let url = &self.remote.url;
        let mut response = sent
            .map_err(|e| Refused::Error(Error::environment("remote", format!("cannot reach the lab at {url}: {e}"))))?;
        let status = response.status().as_u16();
        let text = response.body_mut().with_config().limit(1 << 20).read_to_string().unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let said = body.get("error").and_then(Value::as_str).unwrap_or(text.trim()).to_string();
        if status == 409 {
            if let Some(size) = body.get("size").and_then(Value::as_u64) {
                return Err(Refused::Behind(size));
            }
        }
        let why = format!("the lab at {url} refused ({status}): {said}");
        Err(Refused::Error(match status {
            401 => Error::forbidden(
                "token",
                format!(
                    "the lab at {url} refused the token (401): check --token-file, LABMATE_TOKEN or [remote] token_file"
                ),
            ),
            400 => Error::invalid("remote", why),
            403 => Error::forbidden("remote", why),
            404 => Error::not_found("remote", why),
            409 => Error::conflict("remote", why),
            _ => Error::environment("remote", why),
        }))
    }

    fn odd(&self, what: &str) -> Refused {
        Refused::Error(Error::environment(
            "remote",
            format!("the lab at {} answered what is not labmate's protocol ({what})", self.remote.url),
        ))
    }
}

enum Refused {
    /// A push past the end of the lab's file, which has this many bytes.
    Behind(u64),
    Error(Error),
}

impl From<Refused> for Error {
    fn from(r: Refused) -> Error {
        match r {
            Refused::Behind(size) => Error::conflict("remote", format!("the lab has {size} bytes of the file")),
            Refused::Error(e) => e,
        }
    }
}
