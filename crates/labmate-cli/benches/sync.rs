//! Runs pushed over loopback (BENCHMARKS.md, "Sync over loopback"):
//! - `labmate sync --to URL` of a finished run of 1,000,000 points (batch
//!   records, as the client writes them): points/s of the push, and until
//!   the accepting lab's index has every point;
//! - `labmate run --remote URL` of a command printing metric lines as fast
//!   as it can: points/s from the launch until the accepting lab has them
//!   all, against the same run without a remote.
//!
//! Run with `cargo bench --bench sync`; `LABMATE_BENCH_POINTS` sets the
//! size (1,000,000 by default). The release binary serves and pushes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use labmate::Lab;

#[path = "common/lab.rs"]
mod lab;
#[path = "common/server.rs"]
mod server;
use lab::make_batched_run;
use server::Server;

const BIN: &str = env!("CARGO_BIN_EXE_labmate");

fn main() {
    let points: usize = std::env::var("LABMATE_BENCH_POINTS").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let tmp = tempfile::tempdir().unwrap();
    let (here, there) = (tmp.path().join("here"), tmp.path().join("there"));
    let lab = Lab::create(&here.join(".labmate")).unwrap();
    Lab::create(&there.join(".labmate")).unwrap();
    let id = make_batched_run(&lab, "long", points, &["loss".to_string()], 4096);
    let server = Server::start(BIN, &there, &["--accept-runs"]);
    let token = here.join("token");
    std::fs::write(&token, &server.token).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let bytes = std::fs::metadata(here.join(".labmate/runs").join(&id).join("supervisor.jsonl")).unwrap().len();

    println!("| benchmark | result |\n|---|---|");
    let t = Instant::now();
    let out = labmate(&here, &["sync", "--to", &server.url, "--token-file", token.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pushed = t.elapsed().as_secs_f64();
    wait_for_points(&there, &id, points);
    let indexed = t.elapsed().as_secs_f64();
    println!(
        "| `labmate sync --to`, one run of {points} points ({:.1} MB) | {:.0} points/s ({pushed:.2} s; {:.0} MB/s) |",
        bytes as f64 / 1e6,
        points as f64 / pushed,
        bytes as f64 / 1e6 / pushed
    );
    println!(
        "| the same, until the accepting lab's index has every point | {:.0} points/s ({indexed:.2} s) |",
        points as f64 / indexed
    );

    let script = format!(
        "import sys\nw = sys.stdout.write\nfor i in range({points}):\n    w('##labmate {{\"step\": %d, \"loss\": %r}}\\n' % (i, 1.0 / (i + 1)))\n"
    );
    let t = Instant::now();
    let out = labmate(&here, &["run", "--name", "local", "--", "python3", "-c", &script]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let local = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let out = labmate(
        &here,
        &[
            "run",
            "--name",
            "streamed",
            "--remote",
            &server.url,
            "--token-file",
            token.to_str().unwrap(),
            "--",
            "python3",
            "-c",
            &script,
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ended = t.elapsed().as_secs_f64();
    let streamed = String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| l.strip_prefix("labmate: run ").and_then(|r| r.strip_suffix(" started")).map(str::to_string))
        .unwrap();
    wait_for_points(&there, &streamed, points);
    let arrived = t.elapsed().as_secs_f64();
    println!(
        "| a supervised run printing {points} metric lines, no remote: launch to end | {:.0} points/s ({local:.2} s) |",
        points as f64 / local
    );
    println!("| the same with `--remote URL`: launch to end | {:.0} points/s ({ended:.2} s) |", points as f64 / ended);
    println!(
        "| the same, until the accepting lab's index has every point | {:.0} points/s ({arrived:.2} s) |",
        points as f64 / arrived
    );
}

fn labmate(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).current_dir(dir).stdin(Stdio::null()).output().unwrap()
}

/// Polls the accepting lab until its index has `points` points of the run's `loss`.
fn wait_for_points(dir: &Path, id: &str, points: usize) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let out = labmate(dir, &["show", id, "--json"]);
        if out.status.success() {
            let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if run["metrics"]["loss"]["count"].as_u64() == Some(points as u64) && run["status"] == "finished" {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the accepting lab never got every point of {id}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
