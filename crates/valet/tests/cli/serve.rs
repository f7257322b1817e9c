//! `valet serve` as a process: start, restart, signals, files on disk.

use std::io::Write as _;
use std::net::{Shutdown, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::harness::*;

fn serve(dir: &std::path::Path, port: u16) -> Server {
    let mut command = valet(dir);
    command.args(["serve", "--bind", &format!("127.0.0.1:{port}")]);
    Server::start(command, port, dir.join(format!("serve-{port}.log")))
}

#[test]
fn a_restart_keeps_keys_clients_and_issued_tokens() {
    let dir = temp_dir("restart");
    let port = free_port();
    let mut server = serve(&dir, port);
    let (id, secret) = create_service_client(&dir, &[]);
    let token = server.token(&id, &secret);
    let jwks_before = server.get("/jwks.json").json();
    assert_eq!(
        server
            .terminate(Duration::from_secs(10))
            .map(|s| s.success()),
        Some(true)
    );

    let server = serve(&dir, port);
    assert_eq!(server.get("/jwks.json").json(), jwks_before);
    let after = server.introspect(&id, &secret, &token);
    assert_eq!(after["active"], true, "{after}");
    assert_eq!(after["client_id"], id.as_str());
    // The client and its secret still work.
    server.token(&id, &secret);
}

#[test]
fn the_data_dir_holds_no_secret_and_no_private_key_in_clear() {
    let dir = temp_dir("dump");
    let port = free_port();
    let mut server = serve(&dir, port);
    let (id, secret) = create_service_client(&dir, &[]);
    server.token(&id, &secret);
    server.terminate(Duration::from_secs(10));

    let data = dir.join("valet-data");
    let mut dump = Vec::new();
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is mode {mode:o}", path.display());
        dump.extend(std::fs::read(&path).unwrap());
    }
    let dir_mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    assert!(
        !contains(&dump, secret.as_bytes()),
        "client secret stored in clear"
    );
    let secret_body = secret.trim_start_matches("vcs_");
    assert!(!contains(&dump, secret_body.as_bytes()));
    // PKCS#8 carries the algorithm OIDs; sealed keys show none of them.
    let ec_public_key_oid = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    let rsa_encryption_oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    assert!(
        !contains(&dump, &ec_public_key_oid),
        "EC private key in clear"
    );
    assert!(
        !contains(&dump, &rsa_encryption_oid),
        "RSA private key in clear"
    );
    // The database is really there (so the scan above looked at something).
    assert!(dump.len() > 10_000);
    assert!(contains(&dump, id.as_bytes()));
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn sigterm_and_sigint_shut_down_cleanly() {
    let dir = temp_dir("signals");
    let port = free_port();
    let mut server = serve(&dir, port);
    let status = server
        .terminate(Duration::from_secs(10))
        .expect("no exit after SIGTERM");
    assert!(status.success(), "{status}");
    assert!(
        server.log_text().contains("shutting down"),
        "{}",
        server.log_text()
    );

    let mut server = serve(&dir, port);
    let _ = std::process::Command::new("kill")
        .arg("-INT")
        .arg(server.child.id().to_string())
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no exit after SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn zero_config_start_on_the_default_port() {
    if std::net::TcpListener::bind("127.0.0.1:8080").is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "port 8080 is taken on CI: the zero-config test cannot run"
        );
        skip("127.0.0.1:8080 is in use; zero-config start not tested");
        return;
    }
    let dir = temp_dir("zero");
    let mut command = valet(&dir);
    command.arg("serve");
    let server = Server::start(command, 8080, dir.join("serve.log"));
    let discovery = server.get("/.well-known/openid-configuration").json();
    assert_eq!(discovery["issuer"], "http://127.0.0.1:8080");
    let log = server.log_text();
    assert!(
        log.contains("issuer http://127.0.0.1:8080")
            && log.contains("http://127.0.0.1:8080/.well-known/openid-configuration"),
        "{log}"
    );
    assert!(dir.join("valet-data/valet.db").is_file());
    assert!(dir.join("valet-data/master.key").is_file());
    let keys = server.get("/jwks.json").json();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
}

#[test]
fn sigterm_lets_a_request_in_flight_finish_and_refuses_new_connections() {
    let dir = temp_dir("drain");
    let port = free_port();
    let mut server = serve(&dir, port);
    let (id, secret) = create_service_client(&dir, &[]);
    let body = form_body(&[
        ("grant_type", "client_credentials"),
        ("client_id", &id),
        ("client_secret", &secret),
    ]);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (first, second) = body.split_at(body.len() / 2);
    stream
        .write_all(
            format!(
                "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{first}",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still accepting connections while shutting down"
    );
    stream.write_all(second.as_bytes()).unwrap();
    let (raw, ending) = read_until_closed(&mut stream, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"access_token\""), "{text}");
    assert_eq!(ending, Ending::Closed, "closed once answered");
    let _ = stream.shutdown(Shutdown::Both);
    let status = server
        .terminate(Duration::from_secs(10))
        .expect("no exit after the request finished");
    assert!(status.success(), "{status}");
}

#[test]
fn sigterm_ends_event_streams_instead_of_waiting_for_them() {
    let dir = temp_dir("drain-sse");
    let port = free_port();
    let mut server = serve(&dir, port);
    // What every guard keeps open: the revocation feed.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /statuslists/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let (head, ending) = read_until_closed(&mut stream, Duration::from_millis(500));
    let head = String::from_utf8_lossy(&head).into_owned();
    assert_eq!(ending, Ending::Open, "{head}");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");
    let signalled = Instant::now();
    let status = server
        .terminate(Duration::from_secs(10))
        .expect("no exit with an event stream open");
    assert!(status.success(), "{status}");
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "waited {:?} for the event stream",
        signalled.elapsed()
    );
    // Ended cleanly (the last chunk), not cut off: the guard sees an end and reconnects.
    let (rest, ending) = read_until_closed(&mut stream, Duration::from_secs(5));
    assert_eq!(ending, Ending::Closed);
    assert!(
        String::from_utf8_lossy(&rest).ends_with("0\r\n\r\n"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
}
