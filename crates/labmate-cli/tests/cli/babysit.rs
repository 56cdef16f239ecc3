//! Babysitting through the real binary: rules stop and flag runs, `wait`
//! returns with a code per reason, `stop` ends stubborn processes, the queue
//! keeps order, alerts reach notifiers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::common::{TestLab, stderr, stdout};
use labmate::sys::proc::signal;
use serde_json::Value;

fn alerts(run: &Value) -> Vec<Value> {
    run["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "alert").cloned().collect()
}

/// A shell loop that returns once the file `go` exists (a minute at most).
const UNTIL_GO: &str = "for i in $(seq 1200); do [ -e go ] && break; sleep 0.05; done";

#[test]
fn a_nan_stops_the_run_with_evidence() {
    let lab = TestLab::new();
    lab.write(
        "nan.py",
        "import time\nfor i in range(501):\n    v = float('nan') if i == 500 else 1.0 / (i + 1)\n    print('##labmate {\"step\": %d, \"loss\": %r}' % (i, v))\n    time.sleep(0.002)\ntime.sleep(600)\n",
    );
    let id = lab.detach(&["--", "python3", "nan.py"]);
    let out = lab.run(&["wait", &id, "--timeout", "60s"]);
    let run = lab.wait_for(&id, 10, |r| r["status"] != "running");
    assert_eq!(run["status"], "stopped", "{run:#}");
    assert!(run["reason"].as_str().unwrap().starts_with("nonfinite: loss is NaN at step 500"), "{run:#}");
    // The script would sleep for ten minutes after the NaN: the rule stopped it.
    assert_eq!(run["metrics"]["loss"]["last_step"], 500);
    assert_eq!(run["signal"], 15, "{run:#}");
    let a = &alerts(&run)[0];
    assert_eq!(a["data"]["rule"], "nonfinite");
    assert_eq!(a["data"]["action"], "stop");
    assert_eq!(a["data"]["value"], "NaN");
    assert_eq!(a["data"]["step"], 500);
    assert!(a["data"]["recent"].as_array().unwrap().len() > 1);
    assert!(matches!(out.status.code(), Some(3) | Some(4)), "{:?} {}", out.status, stdout(&out));
}

#[test]
fn a_nan_the_client_logs_stops_the_run() {
    // The client writes its points in batches; the rules see each of them.
    let lab = TestLab::new();
    lab.write(
        "nan.py",
        "import time, labmate\nlabmate.init()\nfor i in range(501):\n    labmate.log({'loss': float('nan') if i == 500 else 1.0 / (i + 1)})\nlabmate.run.flush()\ntime.sleep(600)\n",
    );
    let out = lab
        .cmd(&["run", "--detach", "--", "python3", "nan.py"])
        .env("PYTHONPATH", crate::common::PYTHON)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    lab.run(&["wait", &id, "--timeout", "60s"]);
    let run = lab.wait_for(&id, 10, |r| r["status"] != "running");
    assert_eq!(run["status"], "stopped", "{run:#}");
    assert!(run["reason"].as_str().unwrap().starts_with("nonfinite: loss is NaN at step 500"), "{run:#}");
    assert_eq!(alerts(&run)[0]["data"]["step"], 500);
}

#[test]
fn a_healthy_noisy_run_fires_no_rule() {
    let lab = TestLab::new();
    lab.write(
        "healthy.py",
        "import math, random\nrandom.seed(7)\nfor i in range(10000):\n    level = 2 * math.exp(-i / 2000) + 0.1\n    loss = level * (1 + 0.15 * random.gauss(0, 1))\n    if random.random() < 0.01: loss *= 3\n    print('##labmate {\"step\": %d, \"loss\": %r, \"val_loss\": %r}' % (i, loss, level))\n",
    );
    let out = lab.run(&["run", "--", "python3", "healthy.py"]);
    assert!(out.status.success());
    let run = lab.show(&TestLab::started_id(&out));
    assert_eq!(run["status"], "finished");
    assert_eq!(run["metrics"]["loss"]["count"], 10000);
    assert!(alerts(&run).is_empty(), "{:#?}", alerts(&run));
}

#[test]
fn a_stalled_script_is_flagged_and_wait_says_so() {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[rules.stall]\nfloor = \"1s\"\nceiling = \"2s\"\n[supervisor]\nstop_grace = \"1s\"\n");
    lab.write(
        "stall.py",
        "import time\nfor i in range(50):\n    print('##labmate {\"step\": %d, \"loss\": 1.0}' % i)\n    time.sleep(0.01)\ntime.sleep(600)\n",
    );
    let id = lab.detach(&["--", "python3", "stall.py"]);
    let out = lab.run(&["wait", &id, "--timeout", "30s"]);
    assert_eq!(out.status.code(), Some(4), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("alert on") && text.contains("no metric and no output for"), "{text}");
    let run = lab.show(&id);
    assert_eq!(run["status"], "running", "a stall alerts; it does not stop");
    assert_eq!(alerts(&run)[0]["data"]["rule"], "stall");
    assert!(lab.run(&["stop", &id]).status.success());
    assert_eq!(lab.show(&id)["status"], "stopped");
}

#[test]
fn a_crash_event_holds_the_traceback() {
    let lab = TestLab::new();
    lab.write("crash.py", "def main():\n    raise ValueError('bad batch shape')\nprint('working')\nmain()\n");
    let out = lab.run(&["run", "--", "python3", "crash.py"]);
    assert_eq!(out.status.code(), Some(1));
    let run = lab.show(&TestLab::started_id(&out));
    let a = &alerts(&run)[0];
    assert_eq!(a["data"]["rule"], "crash");
    assert_eq!(a["message"], "crashed (exit code 1): ValueError: bad batch shape");
    let lines: Vec<&str> = a["data"]["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert_eq!(lines[0], "Traceback (most recent call last):");
    assert_eq!(*lines.last().unwrap(), "ValueError: bad batch shape");
    let status = stdout(&lab.run(&["status", &run["id"].as_str().unwrap()[..8]]));
    assert!(status.contains("last error: ValueError: bad batch shape"), "{status}");
}

#[test]
fn wait_on_a_run_whose_supervisor_was_killed_returns() {
    let lab = TestLab::new();
    let id = lab.detach(&["--", "sleep", "30"]);
    let stream = std::fs::read_to_string(lab.run_dir(&id).join("supervisor.jsonl")).unwrap();
    let start: Value = serde_json::from_str(stream.lines().next().unwrap()).unwrap();
    signal(start["pid"].as_i64().unwrap() as i32, libc::SIGKILL);
    let out = lab.run(&["wait", &id, "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(stdout(&out).contains("ended lost"), "{}", stdout(&out));
}

#[test]
fn stop_ends_a_process_that_ignores_sigterm_and_its_children() {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[supervisor]\nstop_grace = \"1s\"\n");
    lab.write(
        "stubborn.sh",
        "trap '' TERM\nsh -c \"trap '' TERM; sleep 300\" &\necho $! > child.pid\nwhile true; do sleep 1; done\n",
    );
    let id = lab.detach(&["--", "sh", "stubborn.sh"]);
    let pid_file = lab.path().join("child.pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pid_file.exists() || std::fs::read_to_string(&pid_file).unwrap().trim().is_empty() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let child: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let out = lab.run(&["stop", &id, "--reason", "enough"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = lab.show(&id);
    assert_eq!(run["status"], "stopped");
    assert_eq!(run["signal"], 9, "it needed SIGKILL");
    assert_eq!(run["reason"], "stopped by tester: enough");
    // Killed, it may linger a moment as a zombie until its new parent reaps it.
    let alive = || {
        std::fs::read_to_string(format!("/proc/{child}/stat"))
            .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(), "the child outlived the stop");
}

#[test]
fn wait_until_a_condition_and_timeouts() {
    let lab = TestLab::new();
    lab.write(
        "slow.py",
        "import time\nfor i in range(100000):\n    print('##labmate {\"step\": %d, \"val_loss\": %r}' % (i, 10.0 / (i + 1)))\n    time.sleep(0.005)\n",
    );
    let id = lab.detach(&["--name", "slow", "--", "python3", "slow.py"]);
    let out = lab.run(&["wait", "slow", "--until", "step >= 100 and val_loss < 0.5", "--timeout", "60s"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("labmate: wait: the condition holds\n"), "{}", stdout(&out));
    let out = lab.run(&["wait", &id, "--timeout", "300ms"]);
    assert_eq!(out.status.code(), Some(5));
    let out = lab.run(&["wait", &id, "--until", "val_loss <"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad condition at column 11"), "{}", stderr(&out));

    let status = lab.json(&["status", &id, "--json"]);
    assert!(status[0]["step"].as_i64().unwrap() >= 100);
    assert!(status[0]["steps_per_s"].as_f64().unwrap() > 10.0);
    let text = stdout(&lab.run(&["status"]));
    assert!(text.starts_with(&format!("{id} slow: running")), "{text}");
    assert!(text.chars().count() < 600, "{text}");
    assert!(lab.run(&["stop", &id]).status.success());
}

#[test]
fn user_rules_act_and_bad_rules_are_refused_at_launch() {
    let lab = TestLab::new();
    let out = lab.run(&["run", "--rule", "val_loss > x => stop", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad rule at column 12: expected a number, found 'x'"), "{}", stderr(&out));
    assert_eq!(lab.json(&["runs", "--json"]), serde_json::json!([]));

    lab.write(
        "grad.py",
        "for i in range(100):\n    g = 500.0 if i >= 40 else 1.0\n    print('##labmate {\"step\": %d, \"grad_norm\": %r}' % (i, g))\n",
    );
    let out = lab.run(&["run", "--rule", "grad_norm > 100 for 3 => alert", "--", "python3", "grad.py"]);
    assert!(out.status.success());
    let run = lab.show(&TestLab::started_id(&out));
    let a = alerts(&run);
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0]["data"]["step"], 42);
    assert_eq!(run["status"], "finished");
    let events = lab.json(&["events", "--since", "1h", "--json"]);
    assert!(events.as_array().unwrap().iter().any(|e| e["kind"] == "alert" && e["run"] == run["id"]));
}

#[test]
fn alerts_reach_a_webhook_and_a_command() {
    let lab = TestLab::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    lab.write(
        "labmate.toml",
        &format!("[notify]\nwebhook = \"http://127.0.0.1:{port}/alerts\"\ncommand = [\"sh\", \"-c\", \"cat > notified.json\"]\n"),
    );
    let receiver = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(b"}") {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
        String::from_utf8(got).unwrap()
    });
    let out = lab.run(&["run", "--", "sh", "-c", "echo '##labmate {\"loss\": NaN}'; sleep 5"]);
    let id = TestLab::started_id(&out);
    let request = receiver.join().unwrap();
    assert!(request.starts_with("POST /alerts HTTP/1.1"), "{request}");
    let body: Value = serde_json::from_str(request.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["run"], id);
    assert_eq!(body["kind"], "alert");
    assert_eq!(body["data"]["rule"], "nonfinite");
    let notified: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.path().join("notified.json")).unwrap()).unwrap();
    assert_eq!(notified["message"], "loss is NaN at step 0");
}

#[test]
fn queued_runs_start_in_order_and_can_be_cancelled() {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[queue]\nmax_concurrent = 1\n");
    // a holds the slot until the test says `go`; each notes its turn in `order`.
    let a = lab.detach(&["--queue", "--name", "a", "--", "sh", "-c", &format!("{UNTIL_GO}; echo a-ended >> order")]);
    let b = lab.detach(&["--queue", "--name", "b", "--", "sh", "-c", "echo b-started >> order"]);
    let c = lab.detach(&["--queue", "--name", "c", "--", "true"]);
    lab.wait_for(&a, 10, |r| r["status"] == "running");
    let queue = lab.json(&["queue", "--json"]);
    let names: Vec<&str> = queue.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["b", "c"]);
    assert!(lab.run(&["queue", "cancel", "c"]).status.success());
    lab.write("go", "");
    let out = lab.run(&["wait", &a, &b, "--timeout", "30s"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let order = std::fs::read_to_string(lab.path().join("order")).unwrap();
    assert_eq!(order, "a-ended\nb-started\n", "b started before a ended");
    let c = lab.show(&c);
    assert_eq!(c["status"], "stopped");
    assert!(c["reason"].as_str().unwrap().starts_with("cancelled from the queue"));
    let out = lab.run(&["queue", "cancel", &a]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn system_metrics_are_sampled_under_sys() {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[supervisor]\nsys_interval = \"200ms\"\n");
    let out = lab.run(&[
        "run",
        "--",
        "python3",
        "-c",
        "import time\nx = [0] * 10_000_000\nt = time.time()\nwhile time.time() - t < 1.2: pass",
    ]);
    assert!(out.status.success());
    let run = lab.show(&TestLab::started_id(&out));
    let m = &run["metrics"];
    assert!(m["sys/cpu_percent"]["count"].as_u64().unwrap() >= 3, "{m:#}");
    assert!(m["sys/cpu_percent"]["max"].as_f64().unwrap() > 30.0, "{m:#}");
    assert!(m["sys/rss_mb"]["max"].as_f64().unwrap() > 50.0, "{m:#}");
    assert!(m["sys/host_mem_used_pct"]["last"].as_f64().unwrap() > 0.0);
}
