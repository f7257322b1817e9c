//! `valet admin bootstrap`, then the admin API with the printed secret, on a
//! running server.

use crate::harness::*;

#[test]
fn bootstrap_then_call_the_admin_api_with_the_printed_secret() {
    let (dir, server) = serve_fresh("admin-api");
    let issuer = format!("http://127.0.0.1:{}", server.port);
    let created = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args(["admin", "bootstrap", "--issuer", &issuer, "--json"]);
        c
    }));
    assert_eq!(created["client_id"], "valet-admin");
    assert_eq!(created["scope"], "admin:read admin:write");
    let secret = created["client_secret"].as_str().unwrap().to_owned();

    // A second bootstrap refuses and prints no secret.
    let again = valet(&dir).args(["admin", "bootstrap"]).output().unwrap();
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("exists already"), "{stderr}");
    assert!(!String::from_utf8_lossy(&again.stdout).contains("client_secret"));

    let token = server.token("valet-admin", &secret);
    let authorization = format!("Bearer {token}");
    let reply = http(
        server.port,
        "POST",
        "/admin/v1/users",
        &[
            ("Authorization", authorization.clone()),
            ("Content-Type", "application/json".to_owned()),
        ],
        r#"{"username": "grace", "email": "grace@example.test"}"#,
    )
    .unwrap();
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = http(
        server.port,
        "GET",
        "/admin/v1/users/grace",
        &[("Authorization", authorization)],
        "",
    )
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["username"], "grace");
    // Without the token: refused.
    let reply = server.get("/admin/v1/users/grace");
    assert_eq!(reply.status, 401);

    // The change is in the audit trail, made through the API by valet-admin.
    let audit = run_ok({
        let mut c = valet(&dir);
        c.args(["audit", "--type", "user.created", "--json"]);
        c
    });
    let line = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["detail"]["via"], "api");
    assert_eq!(event["detail"]["actor"], "valet-admin");
    // `--actor` finds it; another actor, or `--until` before it, does not.
    for (args, found) in [
        (&["--actor", "valet-admin"][..], true),
        (&["--actor", "valet-other"][..], false),
        (&["--actor", "valet-admin", "--until", "1d"][..], false),
        (&["--actor", "valet-admin", "--until", "0"][..], true),
    ] {
        let audit = run_ok({
            let mut c = valet(&dir);
            c.args(["audit", "--type", "user.created", "--json"])
                .args(args);
            c
        });
        let lines = String::from_utf8_lossy(&audit.stdout).lines().count();
        assert_eq!(lines, usize::from(found), "{args:?}");
    }
    let out = valet(&dir)
        .args(["audit", "--until", "later"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--until"));

    // The OpenAPI document the CLI prints is the one served.
    let printed = run_ok({
        let mut c = valet(&dir);
        c.args(["admin", "openapi"]);
        c
    });
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout),
        server.get("/admin/v1/openapi.json").body
    );
}
