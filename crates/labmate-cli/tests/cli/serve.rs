//! `labmate serve`: the JSON API through real HTTP on a free port, its
//! security rules (token, Host, Origin, paths), the live stream, and the
//! human's decisions.

use std::time::Duration;

use crate::common::TestLab;
use crate::common::http::Server;

/// A lab with two finished runs: `good` (loss falling, 300 steps) and
/// `spiky` (one spike at step 150 among 5,000 steps).
fn lab_with_runs() -> TestLab {
    let lab = TestLab::new();
    let good = lab.write(
        "good.py",
        "for i in range(300):\n    print('##labmate {\"step\": %d, \"loss\": %r}' % (i, 1.0 / (i + 1)))\n",
    );
    let spiky = lab.write(
        "spiky.py",
        "for i in range(5000):\n    print('##labmate {\"step\": %d, \"x\": %r}' % (i, 1000.0 if i == 1500 else 1.0))\n",
    );
    for (name, script) in [("good", &good), ("spiky", &spiky)] {
        let out = lab.run(&["run", "--name", name, "--config", "lr=0.1", "--", "python3", script.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    lab
}

#[test]
fn serve_prints_its_url_and_every_request_needs_the_token() {
    let lab = lab_with_runs();
    let server = Server::start(&lab, &[]);
    assert!(server.url.starts_with("http://127.0.0.1:"), "{}", server.url);
    assert!(server.token.len() >= 32);

    // Reads too, the pages and their files included.
    for target in ["/api/runs", "/", "/assets/index.html", "/run/good"] {
        let r = server.raw("GET", target, &[], None);
        assert_eq!(r.status, 401, "{target}: {}", r.body);
        assert_eq!(r.json()["kind"], "forbidden");
        assert!(r.body.contains("Authorization: Bearer"), "{}", r.body);
    }
    let wrong = server.raw("GET", "/api/runs", &[("Authorization", "Bearer 0123456789abcdef0123456789abcdef")], None);
    assert_eq!(wrong.status, 401);

    // The printed URL trades its token for a cookie and leaves the address.
    let first = server.raw("GET", &format!("/?token={}", server.token), &[], None);
    assert_eq!(first.status, 303);
    assert_eq!(first.header("location"), Some("/"));
    let cookie = first.header("set-cookie").unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    let page = server.raw("GET", "/", &[("Cookie", &pair)], None);
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));

    // A run's page has the browser ask for its series at once; what the
    // address holds goes into the page encoded, never as markup.
    let run_page = server.raw("GET", "/run/a%22b%3Cc", &[("Cookie", &pair)], None);
    assert_eq!(run_page.status, 200);
    assert!(
        run_page.body.contains("href=\"/api/runs/a%22b%3Cc/metrics?keys=&amp;points=2000&amp;x=step\""),
        "{}",
        run_page.body
    );
    assert!(!run_page.body.contains("a\"b<c"));

    // Scripts send the Bearer header; the API answers the CLI's objects.
    let runs = server.json("/api/runs");
    assert_eq!(runs["total"], 2);
    let names: Vec<&str> = runs["runs"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"good") && names.contains(&"spiky"));
    let cli = lab.json(&["show", "good", "--json"]);
    let api = server.json("/api/runs/good");
    for key in ["id", "name", "status", "config", "metrics", "command", "git", "tags"] {
        assert_eq!(api[key], cli[key], "{key}");
    }
}

#[test]
fn the_token_is_kept_with_mode_0600_and_a_restarted_server_keeps_it() {
    use std::os::unix::fs::PermissionsExt;
    let lab = lab_with_runs();
    let first = Server::start(&lab, &[]);
    let path = lab.path().join(".labmate/serve-token");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let token = first.token.clone();
    drop(first);
    let again = Server::start(&lab, &[]);
    assert_eq!(again.token, token);

    // --token-file names another file; one readable by others is refused.
    let other = lab.path().join("my-token");
    std::fs::write(&other, "a-token-of-my-own-0123456789\n").unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = lab.run(&["serve", "--port", "0", "--token-file", other.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("can be read by other users") && err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mine = Server::start(&lab, &["--token-file", other.to_str().unwrap()]);
    assert_eq!(mine.token, "a-token-of-my-own-0123456789");
}

#[test]
fn only_this_servers_host_names_are_answered() {
    let lab = lab_with_runs();
    let server = Server::start(&lab, &["--allow-host", "box.example"]);
    let auth = format!("Bearer {}", server.token);
    let port = server.port().to_string();
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("box.example:{port}")] {
        let r = server.raw("GET", "/api/runs", &[("Host", &host), ("Authorization", &auth)], None);
        assert_eq!(r.status, 200, "{host}: {}", r.body);
    }
    // A rebound name, another port, no port, an empty Host.
    for host in [format!("evil.example:{port}"), "localhost:1".into(), "localhost".into(), String::new()] {
        let r = server.raw("GET", "/api/runs", &[("Host", &host), ("Authorization", &auth)], None);
        assert_eq!(r.status, 403, "{host}: {}", r.body);
        assert!(r.body.contains("Host header"), "{}", r.body);
    }
}

#[test]
fn a_change_needs_this_servers_origin() {
    let lab = lab_with_runs();
    let server = Server::start(&lab, &["--user", "ana"]);
    let auth = format!("Bearer {}", server.token);
    let none = server.raw("POST", "/api/runs/good/stop", &[("Authorization", &auth)], Some("{}"));
    assert_eq!(none.status, 403);
    assert!(none.body.contains("Origin"), "{}", none.body);
    let other = server.raw(
        "POST",
        "/api/runs/good/stop",
        &[("Authorization", &auth), ("Origin", "http://evil.example")],
        Some("{}"),
    );
    assert_eq!(other.status, 403);
    assert!(other.body.contains("evil.example"), "{}", other.body);
    let own = server.post("/api/runs/good/stop", "{\"why\": \"enough\"}");
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.json()["stopped"]["already_ended"], "finished");
}

#[test]
fn no_path_outside_the_lab_is_served() {
    let lab = lab_with_runs();
    let server = Server::start(&lab, &[]);
    for target in [
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/Cargo.toml",
        "/assets/..%2fCargo.toml",
        "/assets//etc/passwd",
        "/assets/%2fetc%2fpasswd",
        "/../../etc/passwd",
        "/api/runs/..%2f..%2f..%2fetc/logs",
        "/api/runs/%2e%2e/patch",
        "//etc/passwd",
    ] {
        let r = server.get(target);
        assert!(r.status == 404 || r.status == 400, "{target}: {} {}", r.status, r.body);
        assert!(!r.body.contains("root:") && !r.body.contains("[package]"), "{target}: {}", r.body);
    }
    // A run folder's file that is a link to elsewhere is refused.
    let id = lab.json(&["show", "good", "--json"])["id"].as_str().unwrap().to_string();
    let log = lab.run_dir(&id).join("output.log");
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &log).unwrap();
    let r = server.get(&format!("/api/runs/{id}/logs?tail=5"));
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("symbolic link") && !r.body.contains("root:"), "{}", r.body);
}

#[test]
fn errors_are_json_with_the_cores_kind() {
    let lab = lab_with_runs();
    let server = Server::start(&lab, &[]);
    let missing = server.get("/api/runs/r-nosuchrun");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["kind"], "not_found");
    let bad = server.get("/api/runs?where=config.lr%20%3E");
    assert_eq!(bad.status, 400);
    let message = bad.json()["error"].as_str().unwrap().to_string();
    assert!(message.contains("config.lr >") && message.contains('^'), "{message}");
    let axis = server.get("/api/runs/good/metrics?x=nope");
    assert_eq!(axis.status, 400);
    assert!(axis.json()["error"].as_str().unwrap().contains("step, time, relative"));
    let key = server.get("/api/runs/good/metrics?keys=nope");
    assert_eq!(key.status, 404);
    let route = server.get("/api/nope");
    assert_eq!(route.status, 404);
    assert_eq!(route.json()["kind"], "not_found");
    // What the framework refuses itself is answered the same way.
    let limit = server.get("/api/runs?limit=many");
    assert_eq!(limit.status, 400);
    assert_eq!(limit.json()["kind"], "invalid");
    assert!(limit.json()["error"].as_str().unwrap().contains("limit"), "{}", limit.body);
    let body = server.post("/api/runs/good/stop", "{not json");
    assert!(body.status == 400 || body.status == 422, "{} {}", body.status, body.body);
    let method = server.raw(
        "DELETE",
        "/api/runs",
        &[("Authorization", &format!("Bearer {}", server.token)), ("Origin", &server.origin())],
        None,
    );
    assert_eq!(method.status, 405);
    assert_eq!(method.json()["kind"], "invalid");
    for r in [missing, bad, axis, key, route, limit, body, method] {
        assert!(r.header("content-type").unwrap().starts_with("application/json"));
        assert!(!r.body.to_lowercase().contains("sql"), "{}", r.body);
    }
}

#[test]
fn runs_page_filters_sorts_and_pages_as_the_cli_does() {
    let lab = lab_with_runs();
    let server = Server::start(&lab, &[]);
    let page = server.json("/api/runs?sort=name&limit=1");
    assert_eq!(page["total"], 2);
    assert_eq!(page["runs"].as_array().unwrap().len(), 1);
    assert_eq!(page["runs"][0]["name"], "good");
    let next = server.json("/api/runs?sort=name&limit=1&offset=1");
    assert_eq!(next["runs"][0]["name"], "spiky");
    let only = server.json("/api/runs?where=name%20%3D%3D%20%22spiky%22");
    assert_eq!(only["total"], 1);
    let groups = server.json("/api/runs?group_by=config.lr&columns=metrics.loss.last");
    assert_eq!(groups["groups"].as_array().unwrap().len(), 1);
    assert_eq!(groups["by"][0], "config.lr");
    let rows = server.json("/api/runs?columns=name,config.lr&sort=name");
    assert_eq!(rows["rows"][0]["name"], "good");
    assert_eq!(rows["rows"][0]["config.lr"], 0.1);
}

#[test]
fn metrics_are_downsampled_keeping_spikes_and_full_in_a_small_range() {
    let lab = lab_with_runs();
    let server = Server::start(&lab, &[]);
    let all = server.json("/api/runs/spiky/metrics?keys=x&points=100");
    let x = &all["series"]["x"];
    assert_eq!(x["count"], 5000);
    assert!(x["shown"].as_u64().unwrap() <= 102, "{}", x["shown"]);
    assert_eq!(x["full"], false);
    assert!(x["y"].as_array().unwrap().contains(&serde_json::json!(1000.0)), "the spike stays");
    let near = server.json("/api/runs/spiky/metrics?keys=x&points=100&from=1490&to=1510");
    let x = &near["series"]["x"];
    assert_eq!(x["full"], true);
    assert_eq!(x["shown"], 21);
    assert_eq!(x["step"][0], 1490);
    // Relative time starts at 0; a metric as the x axis pairs steps.
    let relative = server.json("/api/runs/good/metrics?keys=loss&x=relative&points=10");
    assert_eq!(relative["series"]["loss"]["x"][0], 0.0);
    let against = server.json("/api/runs/good/metrics?keys=loss&x=loss&points=10");
    assert_eq!(against["x"], "loss");
}

#[test]
fn a_point_written_to_a_live_run_reaches_an_open_stream() {
    let lab = TestLab::new();
    let script = lab.write(
        "live.py",
        "import os, time\nt_end = time.time() + 600\nfor i in range(2):\n    print('##labmate {\"step\": %d, \"loss\": 1.0}' % i, flush=True)\n\
         while not os.path.exists('go') and time.time() < t_end:\n    time.sleep(0.02)\nprint('##labmate {\"step\": 2, \"loss\": 0.25}', flush=True)\n\
         while not os.path.exists('end') and time.time() < t_end:\n    time.sleep(0.02)\n",
    );
    let out = lab.run(&["run", "--detach", "--name", "live", "--", "python3", script.to_str().unwrap()]);
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    lab.wait_for(&id, 30, |r| r["metrics"]["loss"]["count"] == 2);
    let server = Server::start(&lab, &[]);
    let history = server.json(&format!("/api/runs/{id}/metrics?keys=loss"));
    assert_eq!(history["series"]["loss"]["count"], 2);
    let cursor = history["cursor"].as_u64().unwrap();
    lab.write("go", "");
    let events = server.stream_until(cursor, 30, |kind, data| kind == "points" && data["run"] == id.as_str());
    let (_, points) = events.iter().find(|(k, _)| k == "points").unwrap();
    assert_eq!(points["key"], "loss");
    assert_eq!(points["points"], serde_json::json!([{"step": 2, "time": points["points"][0]["time"], "value": 0.25}]));
    // The run's end comes as a status change.
    let now = server.json(&format!("/api/runs/{id}"))["cursor"].as_u64().unwrap();
    lab.write("end", "");
    let events = server.stream_until(now, 30, |kind, data| kind == "status" && data["status"] == "finished");
    assert!(events.iter().any(|(k, d)| k == "status" && d["run"] == id.as_str()));
    // An id this server never gave (an earlier server's) asks the page to refetch.
    let reset = server.stream_until(1, 10, |kind, _| kind == "reset");
    assert_eq!(reset[0].0, "reset");
}

#[test]
fn the_human_at_the_dashboard_approves_a_held_launch() {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[approval]\ntags = [\"big\"]\n");
    let out = lab.run(&["run", "--tag", "big", "--author", "agent:claude", "--", "python3", "-c", "print(1)"]);
    let held = String::from_utf8_lossy(&out.stderr).to_string();
    let reviews = lab.json(&["review", "--json"]);
    let request = reviews["requests"][0]["id"].as_str().unwrap_or_else(|| panic!("held: {held}")).to_string();

    // Without a configured user the server shows, and refuses to decide.
    let anonymous = Server::start(&lab, &[]);
    let pending = anonymous.json("/api/reviews");
    assert_eq!(pending["requests"][0]["id"], request.as_str());
    // What the decider weighs: the code an approval launches from, the budgets.
    assert!(pending["requests"][0]["budget"]["lab_used_hours"].is_number(), "{pending}");
    assert!(pending["requests"][0]["budget"]["lab_daily_run_hours"].is_null());
    assert_eq!(pending["requests"][0]["code"], "not in a git repository");
    let refused = anonymous.post(&format!("/api/reviews/{request}/approve"), "{}");
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("--user"), "{}", refused.body);
    drop(anonymous);

    let server = Server::start(&lab, &["--user", "ana"]);
    let approved = server.post(&format!("/api/reviews/{request}/approve"), "{\"note\": \"go ahead\"}");
    assert_eq!(approved.status, 200, "{}", approved.body);
    let decision = &approved.json()["decision"];
    assert_eq!(decision["by"], "ana");
    assert_eq!(decision["decision"], "approved");
    let run = decision["launched"].as_str().unwrap().to_string();
    lab.wait_for(&run, 30, |r| r["status"] == "finished");
    assert_eq!(server.json("/api/reviews")["requests"].as_array().unwrap().len(), 0);
    // The same decision twice is a conflict, not a second launch.
    let again = server.post(&format!("/api/reviews/{request}/approve"), "{}");
    assert!(again.status == 409 || again.status == 400, "{} {}", again.status, again.body);
}

#[test]
fn sigterm_stops_the_server_with_a_stream_open() {
    let lab = lab_with_runs();
    let mut server = Server::start(&lab, &[]);
    let addr = server.addr.clone();
    let token = server.token.clone();
    let (open_tx, open_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        let head = format!("GET /api/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        let mut told = false;
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
            if !told && all.windows(4).any(|w| w == b"\r\n\r\n") {
                told = true;
                open_tx.send(()).unwrap();
            }
        }
        all
    });
    // The stream is open once its headers came back.
    open_rx.recv_timeout(Duration::from_secs(30)).expect("the stream opens");
    let status = server.terminate(20).expect("the server stops");
    assert!(status.success(), "{status:?}");
    let seen = reader.join().unwrap();
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
}

#[test]
fn the_notebook_is_served_inert_with_live_values_and_mismatches_marked() {
    let lab = lab_with_runs();
    let out = lab.run(&[
        "note",
        "--kind",
        "result",
        "--author",
        "agent:claude",
        "good ends at {{good.metrics.loss.last}} <img src=x onerror=alert(1)> [x](javascript:alert(1))",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The file is edited by hand: the rendered value no longer holds.
    let path = lab.path().join("LABNOTEBOOK.md");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("-->**0.003333**<!--/-->"), "{text}");
    std::fs::write(&path, text.replace("-->**0.003333**<!--/-->", "-->**0.0001**<!--/-->")).unwrap();
    std::fs::create_dir_all(lab.path().join("plots")).unwrap();
    std::fs::write(lab.path().join("plots/a.png"), b"\x89PNG").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", lab.path().join("plots/b.png")).unwrap();

    let server = Server::start(&lab, &["--user", "ana"]);
    let notebook = server.json("/api/notebook");
    let entry = &notebook["entries"][0];
    let html = entry["html"].as_str().unwrap();
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;") && !html.contains("<img src=x"), "{html}");
    assert!(!html.contains("javascript:"), "{html}");
    assert!(html.contains("class=\"ref mismatch\"") && html.contains("0.0001"), "{html}");
    assert_eq!(entry["mismatches"][0]["claimed"], "0.0001");
    assert_eq!(notebook["check"]["mismatches"].as_array().unwrap().len(), 1);
    // An agent's result waits for a human's look.
    assert_eq!(notebook["open_items"].as_array().unwrap().len(), 1);
    let only = server.json("/api/notebook?kind=hypothesis");
    assert_eq!(only["entries"].as_array().unwrap().len(), 0);

    let image = server.get("/api/notebook/file?path=plots/a.png");
    assert_eq!(image.status, 200);
    assert_eq!(image.header("content-type"), Some("image/png"));
    for refused in ["plots/b.png", "../etc/passwd", "/etc/passwd", "plots/../../x.png", "labmate.toml"] {
        let r = server.get(&format!("/api/notebook/file?path={refused}"));
        assert_eq!(r.status, 404, "{refused}: {}", r.body);
        assert!(!r.body.contains("root:"));
    }

    // The person at the dashboard writes an entry too.
    let noted = server.post("/api/notes", "{\"text\": \"looks right to me\", \"kind\": \"observation\"}");
    assert_eq!(noted.status, 200, "{}", noted.body);
    assert_eq!(noted.json()["author"], "ana");
    let bad = server.post("/api/notes", "{\"words\": 1}");
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().contains("text"), "{}", bad.body);
    let shown = lab.json(&["notebook", "show", "--json"]);
    assert!(shown.as_array().unwrap().iter().any(|e| e["author"] == "ana" && e["text"] == "looks right to me"));
}

#[test]
fn a_run_that_ended_is_not_news_again() {
    let lab = TestLab::new();
    let script = |name: &str| {
        lab.write(
            &format!("{name}.py"),
            &format!(
                "import os, time\nt_end = time.time() + 600\nprint('##labmate {{\"step\": 0, \"loss\": 1.0}}', flush=True)\n\
                 while not os.path.exists('{name}-go') and time.time() < t_end:\n    time.sleep(0.02)\nprint('##labmate {{\"step\": 1, \"loss\": 0.5}}', flush=True)\n\
                 while not os.path.exists('{name}-end') and time.time() < t_end:\n    time.sleep(0.02)\n"
            ),
        )
    };
    let (one, two) = (script("one"), script("two"));
    let mut ids = Vec::new();
    for s in [&one, &two] {
        let out = lab.run(&["run", "--detach", "--", "python3", s.to_str().unwrap()]);
        ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    for id in &ids {
        lab.wait_for(id, 30, |r| r["metrics"]["loss"]["count"] == 1);
    }
    let server = Server::start(&lab, &[]);
    let cursor = server.json("/api/runs")["cursor"].as_u64().unwrap();
    lab.write("one-go", "");
    lab.write("one-end", "");
    server.stream_until(cursor, 30, |kind, data| kind == "status" && data["status"] == "finished");
    // From just after its end on, nothing about the first run comes again,
    // while the second one's news does.
    let after = server.json(&format!("/api/runs/{}", ids[0]))["cursor"].as_u64().unwrap();
    lab.write("two-go", "");
    let events = server.stream_until(after, 30, |kind, data| kind == "points" && data["run"] == ids[1].as_str());
    let again: Vec<_> = events.iter().filter(|(_, d)| d["run"] == ids[0].as_str()).collect();
    assert!(again.is_empty(), "the ended run came again: {again:?}");
    lab.write("two-end", "");
    lab.wait_for(&ids[1], 30, |r| r["status"] != "running");
}

#[test]
fn the_server_answers_from_the_new_index_after_the_old_one_is_deleted() {
    let lab = lab_with_runs();
    let server = Server::start(&lab, &[]);
    // Several requests, so that connections are kept between them.
    for _ in 0..3 {
        assert_eq!(server.json("/api/runs")["total"], 2);
    }
    // The index is derived: deleting it is allowed at any time.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(lab.path().join(format!(".labmate/index.sqlite{suffix}")));
    }
    let out = lab.run(&["run", "--name", "third", "--", "python3", "-c", "print('##labmate {\"loss\": 1}')"]);
    assert!(out.status.success());
    // The CLI caught the new index up; the server reads that one.
    let lab_total = lab.json(&["runs", "--json"]).as_array().unwrap().len();
    assert_eq!(lab_total, 3);
    for _ in 0..3 {
        assert_eq!(server.json("/api/runs")["total"], 3);
    }
}

#[test]
fn the_mcp_tools_at_mcp_need_the_token_and_refuse_other_origins() {
    // The tools themselves over HTTP: tests/cli/mcp.rs, with the Python SDK.
    let lab = lab_with_runs();
    let server = Server::start(&lab, &[]);
    let bare = server.raw("POST", "/mcp", &[("Content-Type", "application/json")], Some("{}"));
    assert_eq!(bare.status, 401, "{}", bare.body);
    // A page of another site cannot post to it, token or not.
    let auth = format!("Bearer {}", server.token);
    let foreign =
        server.raw("POST", "/mcp", &[("Authorization", &auth), ("Origin", "http://evil.example")], Some("{}"));
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    let rebound = server.raw("POST", "/mcp", &[("Authorization", &auth), ("Host", "evil.example")], Some("{}"));
    assert_eq!(rebound.status, 403, "{}", rebound.body);
}
