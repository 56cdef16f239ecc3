//! `labmate serve` benchmarks (targets in BENCHMARKS.md):
//! - `GET /api/runs/ID/metrics?keys=loss&points=2000` on a 1,000,000-point series;
//! - `GET /api/runs` (a page of 100) over 10,000 runs;
//! - a point written to a live run's folder reaching an open `/api/stream`;
//! - with `LABMATE_PLAYWRIGHT` (the folder of the playwright-core package)
//!   and Chromium at /usr/bin/chromium: the browser's numbers, from
//!   `crates/labmate-server/tests/browser/bench.mjs`.
//!
//! Run with `cargo bench --bench serve`. The release binary serves; requests
//! come over plain TCP, one connection each, as a script's would.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use labmate::record::{Batch, Record};
use labmate::rundir::RunDir;
use labmate::spec::RunSpec;
use labmate::{Index, Lab, id};

#[path = "common/lab.rs"]
mod lab;
#[path = "common/server.rs"]
mod server;
use lab::{make_batched_run, make_configured_run};
use server::Server;

const BIN: &str = env!("CARGO_BIN_EXE_labmate");

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = Lab::create(&tmp.path().join(".labmate")).unwrap();
    let long = make_batched_run(&lab, "long", 1_000_000, &["loss".to_string()], 4096);
    let keys: Vec<String> = (0..10).map(|k| format!("metric_{k}")).collect();
    for i in 0..10_000 {
        make_configured_run(&lab, i, &keys);
    }
    let live = live_run(&lab);
    Index::open_synced(&lab).unwrap();
    let server = Server::start(BIN, tmp.path(), &[]);

    println!("| benchmark | result | target |\n|---|---|---|");
    let ms = median_ms(20, || {
        let body = server.get(&format!("/api/runs/{long}/metrics?keys=loss&points=2000"));
        assert!(body.contains("\"count\":1000000"), "{}", &body[..body.len().min(300)]);
    });
    println!("| `GET /api/runs/ID/metrics?keys=loss&points=2000`, 1M points | {ms:.1} ms (median of 20) | < 50 ms |");
    let ms = median_ms(10, || {
        let body = server.get("/api/runs?limit=100");
        assert!(body.contains("\"total\":10002"), "{}", &body[..body.len().min(300)]);
    });
    println!(
        "| `GET /api/runs?limit=100` over 10,002 runs | {ms:.1} ms (median of 10) | (the page's first paint < 500 ms) |"
    );

    let idle = server.cpu_percent(Duration::from_secs(20));
    println!(
        "| the server's CPU while it follows a lab of 10,002 runs (1 live), nobody asking | {idle:.1}% of one core | (low) |"
    );
    if std::env::var_os("LABMATE_BENCH_HOLD").is_some() {
        eprintln!("holding: server pid {} at {}", server.child.id(), server.url);
        std::thread::sleep(Duration::from_secs(60));
    }

    let mut latencies: Vec<f64> = (0..5).map(|i| stream_latency(&server, &lab, &live, i)).collect();
    latencies.sort_by(f64::total_cmp);
    println!(
        "| a point appended to a live run's file, until `/api/stream` carries it | median {:.0} ms, worst {:.0} ms of 5 | < 1 s |",
        latencies[2] * 1e3,
        latencies[4] * 1e3
    );

    match std::env::var("LABMATE_PLAYWRIGHT") {
        Ok(playwright) => browser(&server, &playwright, &long),
        Err(_) => println!("(browser numbers: set LABMATE_PLAYWRIGHT to the playwright-core folder)"),
    }
}

/// A run that is live (a lock held by nobody, no end) to append points to.
fn live_run(lab: &Lab) -> String {
    let now = labmate::clock::now();
    let mut spec = RunSpec::new(id::new_run_id(now), now, lab.repo_root());
    spec.name = Some("live".into());
    let (dir, lock) = RunDir::create(lab, &mut spec, b"").unwrap();
    let start = Record::Start {
        time: now,
        pid: Some(std::process::id()),
        child_pid: None,
        pgid: None,
        leader: None,
        job: None,
    };
    dir.append("client-1.jsonl").unwrap().write_bytes(start.to_line().as_bytes()).unwrap();
    // The run stays live while this process holds its lock.
    std::mem::forget(lock);
    spec.id
}

/// Seconds from appending a point to the live run's file until an open
/// stream carries it.
fn stream_latency(server: &Server, lab: &Lab, live: &str, i: usize) -> f64 {
    let cursor: u64 = {
        let answer = server.get(&format!("/api/runs/{live}"));
        let body = answer.split_once("\r\n\r\n").unwrap().1;
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        v["cursor"].as_u64().unwrap()
    };
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    let head = format!(
        "GET /api/stream?after={cursor} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
        server.addr, server.token
    );
    stream.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let value = 1000.0 + i as f64;
    let now = labmate::clock::now();
    let point = [(String::from("bench"), value)];
    let batch = Batch::of_logs([(i as i64, now, &point[..])]);
    let t = Instant::now();
    RunDir::at(lab.run_dir(live))
        .append("client-1.jsonl")
        .unwrap()
        .write_bytes(Record::Batch(batch).to_line().as_bytes())
        .unwrap();
    let want = format!("\"value\":{value:?}");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while !String::from_utf8_lossy(&seen).contains(&want) {
        let n = stream.read(&mut buf).expect("the stream carries the point");
        assert!(n > 0, "the stream ended");
        seen.extend_from_slice(&buf[..n]);
    }
    t.elapsed().as_secs_f64()
}

fn browser(server: &Server, playwright: &str, long: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../labmate-server/tests/browser/bench.mjs");
    let out = Command::new("node")
        .args([script, &server.url, long])
        .env("LABMATE_PLAYWRIGHT", playwright)
        .output()
        .expect("node runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[reps / 2]
}

impl Server {
    /// The server's CPU over `over`, in % of one core.
    fn cpu_percent(&self, over: Duration) -> f64 {
        let ticks = || -> f64 {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
            let f: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().collect();
            f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()
        };
        let (t0, c0) = (Instant::now(), ticks());
        std::thread::sleep(over);
        let (c1, dt) = (ticks(), t0.elapsed().as_secs_f64());
        (c1 - c0) / labmate::sys::host::clock_ticks_per_sec() / dt * 100.0
    }

    fn get(&self, target: &str) -> String {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        let head = format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            self.addr, self.token
        );
        s.write_all(head.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{}", &out[..out.len().min(300)]);
        out
    }
}
