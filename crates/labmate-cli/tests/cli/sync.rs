//! Runs that reach a lab over HTTP, between two labs over loopback: a live
//! run streamed by its supervisor to a server killed and restarted in the
//! middle, `labmate sync` killed and run again, and at the end the same run
//! folders byte for byte and the same `runs --json`; wrong tokens and paths
//! outside the lab refused.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::http::Server;
use crate::common::{TestLab, stderr};

/// Generous: these wait on conditions, never on a machine's speed.
const DEADLINE: Duration = Duration::from_secs(90);

fn lab() -> TestLab {
    let lab = TestLab::new();
    let out = lab.run(&["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    lab
}

/// The server's token, in a private file of the pushing lab.
fn token_file(lab: &TestLab, token: &str) -> PathBuf {
    let path = lab.write("server-token", &format!("{token}\n"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How many points of `key` the lab's index has of the run, if it has the run.
fn points(lab: &TestLab, id: &str, key: &str) -> Option<(u64, String)> {
    let out = lab.run(&["show", id, "--json"]);
    if !out.status.success() {
        return None;
    }
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let count = run["metrics"][key]["count"].as_u64().unwrap_or(0);
    Some((count, run["status"].as_str().unwrap().to_string()))
}

/// Every file of a run folder, by path, with its bytes.
fn folder(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

fn same_runs(here: &TestLab, there: &TestLab) {
    let ours = std::fs::read_dir(here.path().join(".labmate/runs")).unwrap().count();
    assert!(ours > 0);
    for entry in std::fs::read_dir(here.path().join(".labmate/runs")).unwrap() {
        let id = entry.unwrap().file_name().into_string().unwrap();
        let (a, b) = (folder(&here.run_dir(&id)), folder(&there.run_dir(&id)));
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "the files of {id}");
        for (name, bytes) in &a {
            assert!(bytes == &b[name], "{id}/{name} differs: {} bytes here, {} there", bytes.len(), b[name].len());
        }
    }
    assert_eq!(here.json(&["runs", "--json"]), there.json(&["runs", "--json"]));
}

/// A script that logs `loss` in three phases of 100 steps, starting each
/// one after the file `go1`, then `go2`, appears.
const PHASES: &str = "import os, time\n\
def wait(f):\n    while not os.path.exists(f):\n        time.sleep(0.02)\n\
def phase(a, b):\n    for i in range(a, b):\n        print('##labmate {\"step\": %d, \"loss\": %r}' % (i, 1.0 / (i + 1)))\n\
phase(0, 100)\nwait('go1')\nphase(100, 200)\nwait('go2')\nphase(200, 300)\n";

#[test]
fn a_live_run_streams_through_a_server_restart_and_arrives_whole() {
    let there = lab();
    let mut server = Server::start(&there, &["--accept-runs"]);
    let port = server.port().to_string();
    let here = lab();
    let token = token_file(&here, &server.token);
    let script = here.write("phases.py", PHASES);
    let mut run = here
        .cmd(&["run", "--remote", &server.url, "--token-file", token.to_str().unwrap(), "--", "python3"])
        .arg(&script)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = until("the run's folder", || {
        std::fs::read_dir(here.path().join(".labmate/runs"))
            .ok()?
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .find(|n| !n.starts_with('.'))
    });

    // Live over there: running, not lost, though nobody there holds its lock.
    let (_, status) = until("the first phase over there", || points(&there, &id, "loss").filter(|(n, _)| *n == 100));
    assert_eq!(status, "running");
    // Its output is followed there until it ends over here.
    let follower = there.cmd(&["logs", &id, "--follow"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Its processes are the other lab's: it is stopped there, not here.
    let out = there.run(&["stop", &id]);
    assert!(!out.status.success() && stderr(&out).contains("stop it there"), "{}", stderr(&out));

    // The server goes; the run goes on and keeps its points here.
    server.terminate(30);
    here.write("go1", "");
    until("the second phase here", || points(&here, &id, "loss").filter(|(n, _)| *n == 200));
    until("the supervisor to notice", || {
        here.json(&["events", &id, "--json"]).to_string().contains("could not be pushed").then_some(())
    });

    // Back on the same port, it catches up.
    let server = Server::start_on(&there, &port, &["--accept-runs"]);
    let (_, status) = until("the catch-up", || points(&there, &id, "loss").filter(|(n, _)| *n == 200));
    assert_eq!(status, "running");
    here.write("go2", "");
    let ended = run.wait().unwrap();
    assert!(ended.success());
    until("the end over there", || points(&there, &id, "loss").filter(|(n, s)| *n == 300 && s == "finished"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(follower.wait_with_output().unwrap()));
    let followed = rx.recv_timeout(DEADLINE).expect("logs --follow ends with the run");
    assert!(followed.status.success(), "{}", stderr(&followed));
    assert_eq!(followed.stdout, std::fs::read(here.run_dir(&id).join("output.log")).unwrap());
    // What the supervisor said while the server was gone came along.
    let events = there.json(&["events", &id, "--json"]).to_string();
    assert!(events.contains("could not be pushed") && events.contains("answers again"), "{events}");
    same_runs(&here, &there);
    drop(server);
}

#[test]
fn sync_killed_in_the_middle_and_run_again_sends_every_byte_once() {
    let here = lab();
    let script = here.write(
        "many.py",
        "for i in range(60000):\n    print('##labmate {\"step\": %d, \"loss\": %r, \"acc\": %r}' % (i, 1.0 / (i + 1), i / 6e4))\n",
    );
    for name in ["a", "b"] {
        let out = here.run(&["run", "--name", name, "--", "python3", script.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let ids: Vec<String> = here
        .json(&["runs", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let there = lab();
    let server = Server::start(&there, &["--accept-runs"]);
    let token = token_file(&here, &server.token);
    let token = token.to_str().unwrap();

    // As if a push had died after the spec and a piece of a file cut mid-line.
    let auth = format!("Bearer {}", server.token);
    let spec = std::fs::read_to_string(here.run_dir(&ids[0]).join("run.json")).unwrap();
    let r = server.raw(
        "POST",
        &format!("/api/remote/runs/{}/files/run.json?offset=0", ids[0]),
        &[("Authorization", &auth)],
        Some(&spec),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let output = std::fs::read_to_string(here.run_dir(&ids[0]).join("output.log")).unwrap();
    let piece = &output[..output.len() / 3 + 7];
    let r = server.raw(
        "POST",
        &format!("/api/remote/runs/{}/files/output.log?offset=0", ids[0]),
        &[("Authorization", &auth)],
        Some(piece),
    );
    assert_eq!(r.json()["size"], piece.len());
    // A push past the end says where to resume; one that disagrees with what is there is refused.
    let r = server.raw(
        "POST",
        &format!("/api/remote/runs/{}/files/output.log?offset={}", ids[0], piece.len() + 5),
        &[("Authorization", &auth)],
        Some("xx"),
    );
    assert_eq!((r.status, r.json()["size"].as_u64()), (409, Some(piece.len() as u64)), "{}", r.body);
    let r = server.raw(
        "POST",
        &format!("/api/remote/runs/{}/files/output.log?offset=0", ids[0]),
        &[("Authorization", &auth)],
        Some("not what is there"),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("other bytes"), "{}", r.body);

    // A sync killed once it has sent something, wherever it was.
    let mut sync = here
        .cmd(&["sync", "--to", &server.url, "--token-file", token, "--watch"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    until("a first push", || there.run_dir(&ids[1]).join("run.json").exists().then_some(()));
    sync.kill().unwrap();
    sync.wait().unwrap();

    let out = here.run(&["sync", "--to", &server.url, "--token-file", token, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["runs"].as_array().unwrap().len(), 2, "{report:#}");
    same_runs(&here, &there);
    for id in &ids {
        assert_eq!(points(&there, id, "loss"), Some((60000, "finished".to_string())));
    }
    // Again: nothing left to send.
    let again: Value = here.json(&["sync", "--to", &server.url, "--token-file", token, "--json"]);
    assert_eq!(again["bytes"], 0, "{again:#}");
}

#[test]
fn wrong_tokens_paths_outside_the_lab_and_its_own_runs_are_refused() {
    let there = lab();
    let out = there.run(&["run", "--name", "own", "--", "true"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let own = TestLab::started_id(&out);
    let server = Server::start(&there, &["--accept-runs"]);
    let here = lab();
    let out = here.run(&["run", "--", "true"]);
    let id = TestLab::started_id(&out);

    // Nowhere to push, or no token to push with, is said before anything goes.
    let out = here.run(&["sync"]);
    assert!(!out.status.success() && stderr(&out).contains("no server to push to"), "{}", stderr(&out));
    let out = here.run(&["sync", "--to", &server.url]);
    assert!(!out.status.success() && stderr(&out).contains("no token for"), "{}", stderr(&out));
    let out = here.run(&["run", "--remote", &server.url, "--", "true"]);
    assert!(!out.status.success() && stderr(&out).contains("LABMATE_TOKEN"), "{}", stderr(&out));

    let wrong = token_file(&here, "0123456789abcdef0123456789abcdef");
    let out = here.run(&["sync", "--to", &server.url, "--token-file", wrong.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("refused the token (401)"), "{}", stderr(&out));
    assert!(!there.run_dir(&id).exists());
    let r = server.raw("POST", &format!("/api/remote/runs/{id}/heartbeat"), &[("Authorization", "Bearer nope")], None);
    assert_eq!(r.status, 401);

    let auth = format!("Bearer {}", server.token);
    let spec = std::fs::read_to_string(here.run_dir(&id).join("run.json")).unwrap();
    let r = server.raw(
        "POST",
        &format!("/api/remote/runs/{id}/files/run.json?offset=0"),
        &[("Authorization", &auth)],
        Some(&spec),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for target in [
        format!("/api/remote/runs/{id}/files/../../../outside?offset=0"),
        format!("/api/remote/runs/{id}/files/..%2F..%2Foutside?offset=0"),
        format!("/api/remote/runs/{id}/files/media/../../outside?offset=0"),
        format!("/api/remote/runs/{id}/files/%2Fetc%2Foutside?offset=0"),
        "/api/remote/runs/..%2F..%2Foutside/files/x?offset=0".to_string(),
    ] {
        let r = server.raw("POST", &target, &[("Authorization", &auth)], Some("x"));
        assert!(r.status == 400 || r.status == 404, "{target}: {} {}", r.status, r.body);
        if r.status == 400 {
            assert_eq!(r.json()["kind"], "invalid", "{target}: {}", r.body);
        }
    }
    // A symbolic link inside the run folder leads nowhere either.
    std::os::unix::fs::symlink(here.path(), there.run_dir(&id).join("media")).unwrap();
    let r = server.raw(
        "POST",
        &format!("/api/remote/runs/{id}/files/media/outside?offset=0"),
        &[("Authorization", &auth)],
        Some("x"),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!here.path().join("outside").exists() && !there.path().join("outside").exists());

    // The lab's own runs take no writes from elsewhere.
    let r = server.raw(
        "POST",
        &format!("/api/remote/runs/{own}/files/output.log?offset=0"),
        &[("Authorization", &auth)],
        Some("x"),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("this lab's own"), "{}", r.body);

    // A server started without --accept-runs takes none.
    drop(server);
    let plain = Server::start(&there, &[]);
    let r = plain.raw(
        "GET",
        &format!("/api/remote/runs/{id}"),
        &[("Authorization", &format!("Bearer {}", plain.token))],
        None,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("--accept-runs"), "{}", r.body);
}

#[test]
fn a_run_whose_lab_cannot_be_reached_ends_all_the_same_and_sync_catches_it_up() {
    let there = lab();
    let server = Server::start(&there, &["--accept-runs"]);
    let (url, token) = (server.url.clone(), server.token.clone());
    drop(server);
    let here = lab();
    let token = token_file(&here, &token);
    let out = here.run(&[
        "run",
        "--remote",
        &url,
        "--token-file",
        token.to_str().unwrap(),
        "--",
        "python3",
        "-c",
        "for i in range(10): print('##labmate {\"step\": %d, \"loss\": %d}' % (i, i))",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = TestLab::started_id(&out);
    assert!(!there.run_dir(&id).exists());

    // The run folder was the spool: a sync to the lab, back, sends it all.
    let server = Server::start(&there, &["--accept-runs"]);
    let out = here.run(&["sync", "--to", &server.url, "--token-file", token.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("1 run pushed"), "{}", stderr(&out));
    same_runs(&here, &there);
}
