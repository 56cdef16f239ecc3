//! Delivering an alert beyond the run's record: a configured command gets
//! it as JSON on stdin, a configured webhook gets it POSTed. A notifier that
//! fails says why; it never takes the supervisor down.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::settings::NotifyConfig;
use crate::sys::proc;

/// Sends `alert` to every configured target; returns one message per failure.
pub fn send(cfg: &NotifyConfig, alert: &Value) -> Vec<String> {
    let body = alert.to_string();
    let timeout = proc::timeout(cfg.timeout.max(0.1));
    let mut failures = Vec::new();
    if let Some(argv) = cfg.command.as_ref().filter(|a| !a.is_empty()) {
        if let Err(e) = run_command(argv, &body, timeout) {
            failures.push(format!("notify command `{}` failed: {e}", argv.join(" ")));
        }
    }
    if let Some(url) = &cfg.webhook {
        if let Err(e) = post(url, &body, timeout) {
            failures.push(format!("webhook {url} failed: {e}"));
        }
    }
    failures
}

/// The end of a notifier's output kept, for the line that says why it failed.
const KEPT_BYTES: usize = 16 * 1024;

fn run_command(argv: &[String], body: &str, timeout: Duration) -> Result<(), String> {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    let options = proc::Options {
        stdin: Some(body.as_bytes()),
        output: proc::Output::Keep(KEPT_BYTES),
        timeout,
        pass_signals: false,
    };
    let done = proc::run(&mut cmd, options).map_err(|e| e.to_string())?;
    if done.timed_out {
        return Err(format!("no answer within {}s", timeout.as_secs_f64()));
    }
    if done.status.success() {
        return Ok(());
    }
    let output = String::from_utf8_lossy(&done.output);
    let last = output.trim().lines().last().unwrap_or("").to_string();
    Err(format!("{}{}", done.status, if last.is_empty() { String::new() } else { format!(": {last}") }))
}

/// Whether `url` is a webhook labmate can POST to: `http://` or `https://`
/// and a host; says what is wrong otherwise.
pub fn check_webhook(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("the URL must start with http:// or https://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.starts_with(':') {
        return Err("the URL names no host".into());
    }
    if url.contains(char::is_whitespace) {
        return Err("the URL holds a blank".into());
    }
    Ok(())
}

/// POSTs JSON over plain HTTP/1.1. `https://` goes through `curl`, so that
/// no TLS stack is built into labmate for this one use.
fn post(url: &str, body: &str, timeout: Duration) -> Result<(), String> {
    check_webhook(url)?;
    if url.starts_with("https://") {
        return post_with_curl(url, body, timeout);
    }
    let rest = url.strip_prefix("http://").ok_or("the URL must start with http:// or https://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr_text = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
    let addr = addr_text.to_socket_addrs().map_err(|e| e.to_string())?.next().ok_or("no address")?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: labmate\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| e.to_string())?;
    let status_line = String::from_utf8_lossy(&head[..n]);
    let code = status_line.split_whitespace().nth(1).unwrap_or("");
    if code.starts_with('2') {
        Ok(())
    } else {
        Err(format!("answered {}", status_line.lines().next().unwrap_or("nothing")))
    }
}

fn post_with_curl(url: &str, body: &str, timeout: Duration) -> Result<(), String> {
    let secs = format!("{}", timeout.as_secs_f64());
    let argv: Vec<String> = [
        "curl",
        "-sS",
        "--fail",
        "--max-time",
        &secs,
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        "@-",
        url,
    ]
    .map(String::from)
    .to_vec();
    run_command(&argv, body, timeout.saturating_add(Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Instant;

    #[test]
    fn webhooks_get_the_alert_as_json() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while !String::from_utf8_lossy(&got).contains("\"rule\"") {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
            String::from_utf8(got).unwrap()
        });
        let cfg = NotifyConfig { webhook: Some(url), ..NotifyConfig::default() };
        assert!(send(&cfg, &serde_json::json!({"rule": "nonfinite"})).is_empty());
        let request = server.join().unwrap();
        assert!(request.starts_with("POST /hook HTTP/1.1\r\n"), "{request}");
        assert!(request.ends_with("{\"rule\":\"nonfinite\"}"), "{request}");
    }

    #[test]
    fn failures_are_reported_not_raised() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener); // nothing listens there now
        let cfg = NotifyConfig {
            command: Some(vec!["sh".into(), "-c".into(), "cat >/dev/null; echo nope >&2; exit 3".into()]),
            webhook: Some(format!("http://127.0.0.1:{port}/")),
            timeout: 2.0,
        };
        let failures = send(&cfg, &serde_json::json!({}));
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(failures[0].contains("exit status: 3: nope"), "{failures:?}");
        assert!(failures[1].starts_with("webhook http://127.0.0.1"), "{failures:?}");
    }

    #[test]
    fn only_http_webhooks_are_taken() {
        assert!(check_webhook("http://127.0.0.1:9/hook").is_ok());
        assert!(check_webhook("https://hooks.example.com/x?y=1").is_ok());
        for (url, why) in [
            ("file:///etc/passwd", "http:// or https://"),
            ("ftp://example.com/hook", "http:// or https://"),
            ("HTTP//x", "http:// or https://"),
            ("http://", "no host"),
            ("https:///path", "no host"),
            ("http://:80/", "no host"),
            ("http://a b/", "blank"),
        ] {
            let e = check_webhook(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
    }

    fn sh(script: &str) -> Option<Vec<String>> {
        Some(vec!["sh".into(), "-c".into(), script.into()])
    }

    #[test]
    fn a_chatty_notifier_is_delivered() {
        let cfg = NotifyConfig {
            command: sh("cat >/dev/null; head -c 1048576 /dev/zero >&2; head -c 1048576 /dev/zero; exit 0"),
            timeout: 60.0,
            ..NotifyConfig::default()
        };
        let failures = send(&cfg, &serde_json::json!({"rule": "stall"}));
        assert!(failures.is_empty(), "{failures:?}");
    }

    #[test]
    fn a_notifier_past_its_timeout_is_ended_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("background.pid");
        let cfg = NotifyConfig {
            command: sh(&format!("sleep 300 & echo $! > {}; sleep 300", pid_file.display())),
            timeout: 5.0,
            ..NotifyConfig::default()
        };
        let failures = send(&cfg, &serde_json::json!({}));
        assert!(failures.len() == 1 && failures[0].contains("no answer within 5s"), "{failures:?}");
        let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
        // Killed at once; gone once its new parent has reaped it.
        let running = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while running(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let survived = running(pid);
        if survived {
            proc::signal(pid, libc::SIGKILL);
        }
        assert!(!survived, "the notifier's background process {pid} outlived it");
    }

    #[test]
    fn commands_get_the_alert_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got.json");
        let cfg = NotifyConfig {
            command: Some(vec!["sh".into(), "-c".into(), format!("cat > {}", out.display())]),
            ..NotifyConfig::default()
        };
        assert!(send(&cfg, &serde_json::json!({"rule": "stall"})).is_empty());
        assert_eq!(std::fs::read_to_string(out).unwrap(), "{\"rule\":\"stall\"}");
    }
}
