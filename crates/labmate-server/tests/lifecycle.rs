//! The server as a library: started on a listener the caller owns, stopped
//! by the shutdown future the caller holds.

use std::io::{Read, Write};
use std::time::Duration;

use labmate::lab::Lab;
use labmate_server::{Config, serve};

fn get(addr: std::net::SocketAddr, target: &str, token: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let head =
        format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn a_server_on_a_given_listener_answers_until_its_shutdown_future_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = Lab::create(&tmp.path().join(".labmate")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let token = "a-test-token-0123456789".to_string();
    let config = Config {
        lab,
        token: token.clone(),
        user: None,
        allowed_hosts: vec![],
        exe: std::env::current_exe().unwrap(),
        poll: Duration::from_millis(50),
        accept_runs: None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(serve(listener, config, async move {
        let _ = stopped.await;
    }));
    let answer = std::thread::spawn(move || get(addr, "/api/runs", &token)).join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"total\":0"), "{answer}");
    stop.send(()).unwrap();
    let result = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(30), server).await });
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    assert!(std::net::TcpStream::connect(addr).is_err(), "the listener is closed");
}
