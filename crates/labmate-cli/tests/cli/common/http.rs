//! `labmate serve` in a test: the real binary on a free port (`--port 0`),
//! and a plain HTTP/1.1 client over a TCP socket that sends exactly what a
//! test writes (no path clean-up, any Host or Origin header), so that the
//! server's own rules are what is tested.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::TestLab;

pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub token: String,
    pub url: String,
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Server {
    /// Starts `labmate serve --port 0 ARGS` in the lab and waits for its URL line.
    pub fn start(lab: &TestLab, args: &[&str]) -> Server {
        Server::start_on(lab, "0", args)
    }

    /// Starts `labmate serve --port PORT ARGS` (a port a server printed
    /// before, to start it again there) and waits for its URL line.
    pub fn start_on(lab: &TestLab, port: &str, args: &[&str]) -> Server {
        let mut all = vec!["serve", "--port", port];
        all.extend_from_slice(args);
        let mut child =
            lab.cmd(&all).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("labmate serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("the URL line");
        let url = line.trim().to_string();
        let rest = url.strip_prefix("http://").unwrap_or_else(|| panic!("not a URL: {url:?}"));
        let (addr, token) = rest.split_once("/?token=").unwrap_or_else(|| panic!("no token in {url:?}"));
        Server { addr: addr.to_string(), token: token.to_string(), url: url.clone(), child }
    }

    pub fn port(&self) -> &str {
        self.addr.rsplit_once(':').unwrap().1
    }

    /// The server's own origin.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A request with exactly these headers (plus Host, unless given, and
    /// Connection: close).
    pub fn raw(&self, method: &str, target: &str, headers: &[(&str, &str)], body: Option<&str>) -> Response {
        let mut stream = TcpStream::connect(&self.addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut head = format!("{method} {target} HTTP/1.1\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = body.unwrap_or("");
        if !body.is_empty() {
            head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        head.push_str("Connection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("response");
        parse(&raw)
    }

    /// A GET with the token as a Bearer header.
    pub fn get(&self, target: &str) -> Response {
        let auth = format!("Bearer {}", self.token);
        self.raw("GET", target, &[("Authorization", &auth)], None)
    }

    /// A GET that must answer 200 with JSON.
    pub fn json(&self, target: &str) -> Value {
        let r = self.get(target);
        assert_eq!(r.status, 200, "GET {target}: {}", r.body);
        r.json()
    }

    /// A POST with the token and the server's own Origin.
    pub fn post(&self, target: &str, body: &str) -> Response {
        let auth = format!("Bearer {}", self.token);
        let origin = self.origin();
        self.raw("POST", target, &[("Authorization", &auth), ("Origin", &origin)], Some(body))
    }

    /// Opens `/api/stream?after=CURSOR` and reads events until `want` says
    /// one is the one, or `secs` pass. Returns (event type, data) of each.
    pub fn stream_until(&self, cursor: u64, secs: u64, want: impl Fn(&str, &Value) -> bool) -> Vec<(String, Value)> {
        let mut stream = TcpStream::connect(&self.addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let head = format!(
            "GET /api/stream?after={cursor} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n\r\n",
            self.addr, self.token
        );
        stream.write_all(head.as_bytes()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        while Instant::now() < deadline {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("stream: {e}"),
            }
            let events = sse_events(&raw);
            if events.iter().any(|(kind, data)| want(kind, data)) {
                return events;
            }
        }
        panic!("no wanted event within {secs} s; got {:?}", sse_events(&raw));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// SIGTERM, then the exit status (waiting up to `secs`).
    pub fn terminate(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        labmate::sys::proc::signal(self.child.id() as i32, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

fn parse(raw: &[u8]) -> Response {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a whole response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Response { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

/// The body of a chunked transfer, as far as it has come.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..end]).trim(), 16).unwrap_or(0);
        if size == 0 || raw.len() < end + 2 + size {
            break;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[(end + 4 + size).min(raw.len())..];
    }
    out
}

/// The events in a raw SSE response so far: (event type, data as JSON).
fn sse_events(raw: &[u8]) -> Vec<(String, Value)> {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { return Vec::new() };
    let body = dechunk(&raw[split + 4..]);
    let text = String::from_utf8_lossy(&body);
    let mut events = Vec::new();
    for block in text.split("\n\n") {
        let (mut kind, mut data) = ("message".to_string(), String::new());
        for line in block.lines() {
            if let Some(k) = line.strip_prefix("event:") {
                kind = k.trim().to_string();
            } else if let Some(d) = line.strip_prefix("data:") {
                data.push_str(d.trim_start());
            }
        }
        if let Ok(value) = serde_json::from_str(&data) {
            events.push((kind, value));
        }
    }
    events
}
