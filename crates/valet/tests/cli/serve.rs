//! `valet serve` as a process: start, restart, signals, files on disk.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

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
