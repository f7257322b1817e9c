//! HTTP-level attacks on a running `valet serve`, over raw TCP: oversized heads
//! and bodies, malformed requests, slow clients. Each must be refused without
//! taking the server down, holding it up for others, or leaking internals. And
//! one legitimate edge: a client that half-closes after its request.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::harness::*;

/// Short, so the slow-client tests stay fast; the default is
/// `valet_server::DEFAULT_HEADER_READ_TIMEOUT`.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(2);

fn serve(label: &str) -> Server {
    let dir = temp_dir(label);
    let port = free_port();
    let mut command = valet(&dir);
    command
        .env(
            "VALET_HEADER_READ_TIMEOUT",
            HEADER_READ_TIMEOUT.as_secs().to_string(),
        )
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")]);
    Server::start(command, port, dir.join("serve.log"))
}

struct Exchange {
    /// Everything the server sent.
    raw: Vec<u8>,
    ending: Ending,
}

impl Exchange {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// The status code, if a response (head) came back.
    fn status(&self) -> Option<u16> {
        let text = self.text();
        let line = text.lines().next()?;
        line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
    }
}

/// Sends `request` (from another thread, so a server that answers before
/// reading it all cannot deadlock us) and reads until the server closes the
/// connection or `wait` passes.
fn exchange(port: u16, request: Vec<u8>, wait: Duration) -> Exchange {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    // Write errors are expected: the server may close before reading it all.
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&request);
        let _ = writer.flush();
    });
    let (raw, ending) = read_until_closed(&mut stream, wait);
    let _ = sender.join();
    Exchange { raw, ending }
}

fn assert_still_serving(server: &Server, context: &str) {
    let reply = server.get("/healthz");
    assert_eq!(reply.status, 200, "{context}: /healthz {}", reply.body);
}

#[test]
fn an_oversized_request_head_is_refused_and_the_server_keeps_serving() {
    let server = serve("big-head");
    let port = server.port;
    let big = "a".repeat(100 * 1024);
    let just_over = "a".repeat(valet_server::MAX_HEADER_BYTES);
    let many_headers: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases = [
        (
            "100 KB header value",
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n"),
        ),
        (
            "a head just over the limit",
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {just_over}\r\n\r\n"),
        ),
        (
            "100 KB cookie",
            format!("GET /authorize HTTP/1.1\r\nHost: x\r\nCookie: a={big}\r\n\r\n"),
        ),
        (
            "200 headers",
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n"),
        ),
        (
            "70 KB URI",
            format!(
                "GET /authorize?client_id={} HTTP/1.1\r\nHost: x\r\n\r\n",
                "a".repeat(70 * 1024)
            ),
        ),
        (
            "100 KB head, never finished",
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}"),
        ),
    ];
    for (case, request) in cases {
        let reply = exchange(port, request.into_bytes(), Duration::from_secs(10));
        assert_ne!(
            reply.ending,
            Ending::Open,
            "{case}: the server kept the connection"
        );
        match reply.status() {
            Some(status) => assert!(
                [400, 414, 431].contains(&status),
                "{case}: {status} {}",
                reply.text()
            ),
            // Closed without an answer (a reset may take the answer with it).
            None => assert!(reply.raw.is_empty(), "{case}: {}", reply.text()),
        }
        assert_no_internals(&reply.text(), case);
        assert_still_serving(&server, case);
    }
}

#[test]
fn an_oversized_body_to_the_token_endpoint_is_413() {
    let server = serve("big-body");
    let port = server.port;
    let body = format!(
        "grant_type=client_credentials&pad={}",
        "a".repeat(1024 * 1024)
    );
    let cases = [
        (
            "1 MiB with Content-Length",
            format!(
                "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        ),
        (
            "10 GB declared, a little sent",
            "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000000000\r\nConnection: close\r\n\r\ngrant_type=client_credentials".to_owned(),
        ),
        (
            "1 MiB chunked",
            format!(
                "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            ),
        ),
    ];
    for (case, request) in cases {
        let reply = exchange(port, request.into_bytes(), Duration::from_secs(10));
        assert_eq!(
            reply.status(),
            Some(413),
            "{case}: {:?} {}",
            reply.ending,
            reply.text()
        );
        let text = reply.text();
        assert!(
            text.contains("\"error\":\"invalid_request\""),
            "{case}: {text}"
        );
        assert_no_internals(&text, case);
        assert_still_serving(&server, case);
    }
}

#[test]
fn a_body_that_never_arrives_is_408() {
    let server = serve("slow-body");
    let started = Instant::now();
    let reply = exchange(
        server.port,
        b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type".to_vec(),
        Duration::from_secs(20),
    );
    // The server's body read timeout is 10 s.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        reply.status(),
        Some(408),
        "{:?} {}",
        reply.ending,
        reply.text()
    );
    assert!(
        reply.text().contains("\"error\":\"invalid_request\""),
        "{}",
        reply.text()
    );
    assert_no_internals(&reply.text(), "slow body");
    assert_still_serving(&server, "slow body");
}

#[test]
fn malformed_requests_get_400() {
    let server = serve("malformed");
    let port = server.port;
    let cases: [(&str, &[u8]); 11] = [
        ("garbage line", b"GARBAGE\r\n\r\n"),
        ("binary", b"\x00\x01\x02\x03\xff\xfe\r\n\r\n"),
        ("a TLS ClientHello on the plain port", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n"),
        ("unknown HTTP version", b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"),
        ("space in the path", b"GET /heal thz HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("control character in the path", b"GET /healthz\x7f HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("header without a colon", b"GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n"),
        ("control character in a header name", b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad\x01Name: v\r\n\r\n"),
        (
            "two different Content-Lengths",
            b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
        ),
        ("a bad Content-Length", b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
        (
            "a bad chunk size",
            b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n",
        ),
    ];
    for (case, request) in cases {
        let reply = exchange(port, request.to_vec(), Duration::from_secs(10));
        assert_eq!(
            reply.status(),
            Some(400),
            "{case}: {:?} {}",
            reply.ending,
            reply.text()
        );
        assert_ne!(
            reply.ending,
            Ending::Open,
            "{case}: the server kept the connection"
        );
        assert_no_internals(&reply.text(), case);
        assert_still_serving(&server, case);
    }
}

/// A slow client: sends one byte of a never-ending head every 200 ms, and
/// reports how long the server kept the connection open (`None`: still open
/// after `give_up`).
fn slowloris(port: u16, give_up: Duration) -> (Option<Duration>, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    let head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    let mut received = Vec::new();
    let mut sent = 0usize;
    while started.elapsed() < give_up {
        let byte = head.get(sent).copied().unwrap_or(b'a');
        if stream.write_all(&[byte]).is_err() {
            return (Some(started.elapsed()), received);
        }
        sent += 1;
        let (bytes, ending) = read_until_closed(&mut stream, Duration::from_millis(200));
        received.extend(bytes);
        if ending != Ending::Open {
            return (Some(started.elapsed()), received);
        }
    }
    (None, received)
}

#[test]
fn slow_clients_neither_hold_up_others_nor_keep_their_connection() {
    let server = serve("slowloris");
    let port = server.port;
    let give_up = HEADER_READ_TIMEOUT + Duration::from_secs(8);
    let slow: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || slowloris(port, give_up)))
        .collect();
    // Meanwhile everyone else is served, promptly.
    let started = Instant::now();
    let mut served = 0;
    while started.elapsed() < HEADER_READ_TIMEOUT {
        let before = Instant::now();
        let reply = server.get("/.well-known/openid-configuration");
        assert_eq!(reply.status, 200);
        assert!(
            before.elapsed() < Duration::from_secs(1),
            "a request took {:?} while slow clients were connected",
            before.elapsed()
        );
        served += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(served >= 5, "{served}");
    for handle in slow {
        let (closed_after, received) = handle.join().unwrap();
        let closed_after = closed_after
            .unwrap_or_else(|| panic!("a slow client was still connected after {give_up:?}"));
        assert!(
            closed_after >= HEADER_READ_TIMEOUT - Duration::from_millis(300),
            "closed too early: {closed_after:?}"
        );
        assert!(
            closed_after <= HEADER_READ_TIMEOUT + Duration::from_secs(3),
            "closed late: {closed_after:?}"
        );
        let text = String::from_utf8_lossy(&received);
        assert!(text.is_empty() || text.starts_with("HTTP/1.1 4"), "{text}");
        assert_no_internals(&text, "slow client");
    }
    assert_still_serving(&server, "after the slow clients");
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let server = serve("idle");
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let (first, ending) = read_until_closed(&mut stream, Duration::from_millis(500));
    assert_eq!(ending, Ending::Open, "kept alive after the first response");
    assert!(String::from_utf8_lossy(&first).starts_with("HTTP/1.1 200"));
    let idle = Instant::now();
    let (rest, ending) =
        read_until_closed(&mut stream, HEADER_READ_TIMEOUT + Duration::from_secs(5));
    assert_eq!(ending, Ending::Closed, "{}", String::from_utf8_lossy(&rest));
    assert!(rest.is_empty());
    assert!(
        idle.elapsed() <= HEADER_READ_TIMEOUT + Duration::from_secs(1),
        "{:?}",
        idle.elapsed()
    );
}

/// A client may shut down its sending side once its request is out: that does not
/// say it no longer wants the answer (RFC 9112 §9.6). It gets its token, and then
/// the connection closes.
#[test]
fn a_client_that_half_closes_after_its_request_still_gets_its_token() {
    let (dir, server) = serve_fresh("half-close");
    let (id, secret) = create_service_client(&dir, &[]);
    let body = "grant_type=client_credentials";
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let request = format!(
        "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {credentials}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let (raw, ending) = read_until_closed(&mut stream, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{ending:?}: {text}");
    assert!(text.contains("\"access_token\":\"ey"), "{text}");
    assert_eq!(ending, Ending::Closed, "{text}");
    assert_still_serving(&server, "after a half-closed connection");
}
