//! Time and connection limits, on the library with small injected limits.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use debsync::serve::Limits;

use crate::support::{Lib, Resp, Tree, bare, connect, eventually, get, metric};

fn small_limits() -> Limits {
    Limits {
        header_timeout: Duration::from_millis(300),
        send_timeout: Duration::from_millis(300),
        ..Limits::default()
    }
}

/// Reads until EOF or error; returns the bytes and how long it took.
fn drain(s: &mut std::net::TcpStream) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (out, start.elapsed())
}

#[test]
fn slow_request_head_is_dropped() {
    let t = Tree::new();
    t.file("f", b"x");
    let lib = Lib::start(bare(t.dir.path()), small_limits());
    let mut s = connect(lib.addr);
    s.write_all(b"GET /f HTTP/1.1\r\nHost: t\r\n").unwrap(); // never finished
    let (out, took) = drain(&mut s);
    // Closed (hyper may say 408 first) well before the 10 s read timeout.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    if !out.is_empty() {
        assert_eq!(Resp::parse(&out).status, 408);
    }
}

#[test]
fn idle_keep_alive_connection_is_closed() {
    let t = Tree::new();
    t.file("f", b"x");
    let lib = Lib::start(bare(t.dir.path()), small_limits());
    let mut s = connect(lib.addr);
    s.write_all(b"GET /f HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let (rest, took) = drain(&mut s);
    assert!(rest.is_empty() || Resp::parse(&rest).status == 408);
    assert!(
        took < Duration::from_secs(5),
        "idle connection kept {took:?}"
    );
}

#[test]
fn client_that_stops_reading_is_dropped() {
    let t = Tree::new();
    let big = t.path("big.iso");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(64 << 20)
        .unwrap(); // sparse 64 MiB
    let lib = Lib::start(bare(t.dir.path()), small_limits());
    let mut s = connect(lib.addr);
    s.write_all(b"GET /big.iso HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap(); // the response has started, so the connection is counted
    assert_eq!(&head, b"HTTP/1.1 200");
    // Don't read on. The server's writes stall once the socket buffers are full, and after the
    // send timeout it drops the connection: only the /metrics scrape's own connection remains.
    assert!(
        eventually(Duration::from_secs(8), || {
            metric(lib.addr, "debsync_http_connections_open") == Some(1.0)
        }),
        "stalled connection still open"
    );
    let (out, _) = drain(&mut s);
    assert!(
        out.len() < (64 << 20),
        "got the whole body ({} bytes) despite the stall",
        out.len()
    );
}

#[test]
fn connection_limit_answers_503() {
    let t = Tree::new();
    t.file("f", b"x");
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let lib = Lib::start(bare(t.dir.path()), limits);
    // Two keep-alive connections, each proven accepted by a response.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect(lib.addr);
        s.write_all(b"GET /f HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    let r = get(lib.addr, "/f", &[]);
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    // Closing one frees a slot (the server notices the EOF asynchronously).
    drop(held.pop());
    assert!(
        eventually(Duration::from_secs(5), || get(lib.addr, "/f", &[]).status
            == 200),
        "slot not released"
    );
}
