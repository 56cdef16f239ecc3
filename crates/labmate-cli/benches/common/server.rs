//! `labmate serve` for the benchmarks: started on a free port in a lab,
//! its URL and token read from the line it prints, killed when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct Server {
    pub child: Child,
    /// `HOST:PORT`.
    pub addr: String,
    pub token: String,
    /// The URL it printed, with its token.
    pub url: String,
}

impl Server {
    /// `bin serve --port 0 ARGS...` in the lab at `dir`.
    pub fn start(bin: &str, dir: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(bin)
            .args(["serve", "--port", "0"])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().to_string();
        let (addr, token) = url.trim_start_matches("http://").split_once("/?token=").unwrap();
        Server { addr: addr.into(), token: token.into(), url: url.clone(), child }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
