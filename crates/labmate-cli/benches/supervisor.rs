//! Supervisor benchmarks (targets in BENCHMARKS.md):
//! - the supervisor's own CPU while babysitting a run that logs 1,000 steps/s
//!   with 10 metrics each, all default rules on, through metric lines and
//!   through the Python client;
//! - the same at 1,000 scalars/s written to TensorBoard event files and
//!   followed by `run --tensorboard` (needs a Python with tensorboardX,
//!   named by `LABMATE_IMPORT_PYTHON`; the row says so when it is absent);
//! - how soon `labmate wait` returns after an alert-worthy event.
//!
//! Run with `cargo bench --bench supervisor`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_labmate");
const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../python");
const SECONDS: f64 = 12.0;

/// Logs 1,000 steps/s of 10 metrics for SECONDS, paced in batches of 10 steps.
const LINES: &str = r#"
import sys, time
start = time.time()
step = 0
while time.time() - start < SECONDS:
    for _ in range(10):
        vals = ", ".join('"m%d": %r' % (k, 1.0 / (step + k + 1)) for k in range(10))
        sys.stdout.write('##labmate {"step": %d, %s}\n' % (step, vals))
        step += 1
    sys.stdout.flush()
    time.sleep(max(0.0, start + step / 1000.0 - time.time()))
"#;

const CLIENT: &str = r#"
import time, labmate
labmate.init()
start = time.time()
step = 0
while time.time() - start < SECONDS:
    for _ in range(10):
        labmate.log({"m%d" % k: 1.0 / (step + k + 1) for k in range(10)}, step=step)
        step += 1
    time.sleep(max(0.0, start + step / 1000.0 - time.time()))
labmate.finish()
"#;

/// 100 steps/s of 10 scalars (1,000 scalars/s) to TensorBoard, flushed every second.
const TENSORBOARD: &str = r#"
import time
from tensorboardX import SummaryWriter
w = SummaryWriter("tb", flush_secs=1)
start = time.time()
step = 0
while time.time() - start < SECONDS:
    for k in range(10):
        w.add_scalar("m%d" % k, 1.0 / (step + k + 1), step)
    step += 1
    time.sleep(max(0.0, start + step / 100.0 - time.time()))
w.close()
"#;

fn main() {
    println!("| benchmark | result | target |\n|---|---|---|");
    let python3 = "python3".to_string();
    let mut cases = vec![
        ("1,000 steps/s x 10 metrics via metric lines on stdout", LINES, python3.clone(), vec![]),
        ("1,000 steps/s x 10 metrics via the Python client", CLIENT, python3, vec![]),
    ];
    match std::env::var("LABMATE_IMPORT_PYTHON") {
        Ok(py) => cases.push((
            "100 steps/s x 10 scalars via TensorBoard event files",
            TENSORBOARD,
            py,
            vec!["--tensorboard", "tb"],
        )),
        Err(_) => println!(
            "| supervisor CPU via TensorBoard event files | not run: set LABMATE_IMPORT_PYTHON to a Python with tensorboardX | < 2% |"
        ),
    }
    for (how, script, python, extra) in cases {
        let (sup, child, steps, (rss0, rss1)) = supervisor_cpu(script, &python, &extra);
        println!(
            "| supervisor CPU, {how} | {sup:.2}% of one core (the training script itself: {child:.0}%; {steps} steps) | < 2% |"
        );
        println!(
            "| supervisor memory, {how} | RSS {rss0:.1} MiB after 2 s, {rss1:.1} MiB after {:.0} s | flat |",
            SECONDS - 2.0
        );
    }
    let mut lat: Vec<f64> = (0..5).map(|_| wait_latency()).collect();
    lat.sort_by(f64::total_cmp);
    println!(
        "| `wait` returns after an alert (NaN on stdout) | median {:.0} ms, worst {:.0} ms of 5 | < 1 s |",
        lat[2] * 1e3,
        lat[4] * 1e3
    );
}

fn lab() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(BIN).arg("init").current_dir(tmp.path()).output().unwrap();
    assert!(out.status.success());
    tmp
}

fn labmate(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).current_dir(dir).env("PYTHONPATH", PYTHON).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// CPU of the supervisor and of the command, in % of one core, over the
/// steady middle of the run; and the supervisor's RSS at its start and end.
fn supervisor_cpu(script: &str, python: &str, extra: &[&str]) -> (f64, f64, i64, (f64, f64)) {
    let tmp = lab();
    std::fs::write(tmp.path().join("gen.py"), script.replace("SECONDS", &SECONDS.to_string())).unwrap();
    let mut args = vec!["run", "--detach"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", python, "gen.py"]);
    let id = labmate(tmp.path(), &args).trim().to_string();
    let stream = tmp.path().join(".labmate/runs").join(&id).join("supervisor.jsonl");
    let start: serde_json::Value = loop {
        if let Some(line) = std::fs::read_to_string(&stream).ok().and_then(|s| s.lines().next().map(String::from)) {
            break serde_json::from_str(&line).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (sup, child) = (start["pid"].as_i64().unwrap(), start["child_pid"].as_i64().unwrap());
    std::thread::sleep(Duration::from_secs(2));
    let (t0, s0, c0, r0) = (Instant::now(), ticks(sup), ticks(child), rss_mib(sup));
    std::thread::sleep(Duration::from_secs_f64(SECONDS - 4.0));
    let (s1, c1, dt, r1) = (ticks(sup), ticks(child), t0.elapsed().as_secs_f64(), rss_mib(sup));
    let hz = labmate::sys::host::clock_ticks_per_sec();
    labmate(tmp.path(), &["wait", &id]);
    let run: serde_json::Value = serde_json::from_str(&labmate(tmp.path(), &["show", &id, "--json"])).unwrap();
    assert_eq!(run["status"], "finished", "{run:#}");
    let steps = run["metrics"]["m0"]["count"].as_i64().unwrap();
    ((s1 - s0) / hz / dt * 100.0, (c1 - c0) / hz / dt * 100.0, steps, (r0, r1))
}

/// The resident set of a process, in MiB.
fn rss_mib(pid: i64) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kib.unwrap_or(0.0) / 1024.0
}

/// utime + stime of a process, in clock ticks.
fn ticks(pid: i64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0)
}

/// Seconds from a NaN on stdout to `labmate wait` returning.
fn wait_latency() -> f64 {
    let tmp = lab();
    std::fs::write(
        tmp.path().join("nan.py"),
        "import time\ntime.sleep(1.5)\nopen('t', 'w').write(repr(time.time()))\nprint('##labmate {\"loss\": NaN}', flush=True)\ntime.sleep(30)\n",
    )
    .unwrap();
    let id = labmate(tmp.path(), &["run", "--detach", "--", "python3", "nan.py"]).trim().to_string();
    let status = Command::new(BIN).args(["wait", &id]).current_dir(tmp.path()).stdout(Stdio::null()).status().unwrap();
    let returned = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!(matches!(status.code(), Some(3) | Some(4)));
    let t: f64 = std::fs::read_to_string(tmp.path().join("t")).unwrap().parse().unwrap();
    returned - t
}
