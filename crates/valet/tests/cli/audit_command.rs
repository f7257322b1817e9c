//! `valet audit` reads the trail the server and the CLI wrote, and the server's
//! JSON log carries the same records.

use serde_json::Value;

use crate::harness::*;

fn audit(dir: &std::path::Path, args: &[&str]) -> Vec<Value> {
    let out = run_ok({
        let mut c = valet(dir);
        c.arg("audit").args(args).arg("--json");
        c
    });
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn the_audit_trail_from_server_and_cli() {
    let dir = temp_dir("audit");
    let port = free_port();
    let mut command = valet(&dir);
    command
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("VALET_LOG_FORMAT", "json");
    let server = Server::start(command, port, dir.join("serve.log"));

    let (id, secret) = create_service_client(&dir, &[]);
    let user_id = create_user_with(valet(&dir), &[], "alice", "correct horse battery staple");
    server.token(&id, &secret);
    server.token(&id, &secret);
    let wrong = server.post_form(
        "/token",
        Some((&id, "vcs_wrong")),
        "grant_type=client_credentials",
    );
    assert_eq!(wrong.status, 401);

    // The server flushes its queue every second.
    let mut issued = Vec::new();
    eventually("the token.issued record", || {
        issued = audit(&dir, &["--client", &id, "--type", "token.issued"]);
        !issued.is_empty()
    });
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0]["detail"]["count"], 2);
    assert_eq!(issued[0]["address"], "127.0.0.1");

    let of_client = audit(&dir, &["--client", &id]);
    let kinds: Vec<&str> = of_client
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    for kind in ["client.created", "token.issued", "client_auth.failed"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let created = of_client
        .iter()
        .find(|e| e["event"] == "client.created")
        .unwrap();
    assert_eq!(created["detail"]["via"], "cli");

    // --user takes a username as well as an id.
    let of_alice = audit(&dir, &["--user", "alice"]);
    assert_eq!(of_alice.len(), 1, "{of_alice:?}");
    assert_eq!(of_alice[0]["event"], "user.created");
    assert_eq!(of_alice[0]["user_id"], user_id.as_str());
    assert_eq!(audit(&dir, &["--user", &user_id]), of_alice);

    // The table form, and the refusals.
    let table = run_ok({
        let mut c = valet(&dir);
        c.args(["audit", "--limit", "3"]);
        c
    });
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.starts_with("TIME (UTC)"), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");
    for (args, message) in [
        (&["audit", "--type", "login"][..], "unknown event type"),
        (&["audit", "--since", "soon"][..], "not a duration"),
    ] {
        let out = valet(&dir).args(args).output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }

    // The server's log has one JSON line per record, with the same fields, and
    // nothing secret.
    let log = server.log_text();
    let audit_lines: Vec<Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["target"] == "valet::audit")
        .collect();
    let logged = audit_lines
        .iter()
        .find(|line| line["fields"]["event"] == "token.issued")
        .unwrap_or_else(|| panic!("no token.issued audit line in {log}"));
    assert_eq!(logged["fields"]["client_id"], id.as_str());
    assert!(
        logged["fields"]["detail"]
            .as_str()
            .unwrap()
            .contains("\"count\":2")
    );
    assert!(!log.contains(&secret));
}
