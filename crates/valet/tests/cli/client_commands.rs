//! `valet client …` while the server runs on the same store.

use crate::harness::*;

#[test]
fn client_lifecycle_through_the_cli() {
    let (dir, server) = serve_fresh("clients");

    let (id, secret) = create_service_client(&dir, &[]);
    assert!(secret.starts_with("vcs_"));
    server.token(&id, &secret);

    let list = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args(["client", "list", "--json"]);
        c
    }));
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == id.as_str())
    );
    let shown = run_ok({
        let mut c = valet(&dir);
        c.args(["client", "show", &id]);
        c
    });
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains(&id) && text.contains("client_credentials"),
        "{text}"
    );
    assert!(!text.contains(&secret));

    let rotated = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args(["client", "rotate-secret", &id, "--json"]);
        c
    }));
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    // The server notices within its client cache lifetime (5 s).
    std::thread::sleep(std::time::Duration::from_millis(5_500));
    let old = server.post_form(
        "/token",
        Some((&id, &secret)),
        "grant_type=client_credentials",
    );
    assert_eq!(old.status, 401);
    server.token(&id, &new_secret);

    let public = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args([
            "client",
            "create",
            "--name",
            "spa",
            "--public",
            "--redirect-uri",
            "https://spa.example/cb",
            "--json",
        ]);
        c
    }));
    assert!(public.get("client_secret").is_none(), "{public}");

    run_ok({
        let mut c = valet(&dir);
        c.args(["client", "delete", &id]);
        c
    });
    let missing = valet(&dir).args(["client", "show", &id]).output().unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no client"));
}

/// base64url ids may start with `-` (ids made before Valet stopped generating
/// such ones, or imported): they are read as ids, not taken for options.
#[test]
fn ids_with_a_leading_dash_are_ids_not_options() {
    let dir = init_dir("dash-ids");
    for args in [
        &["client", "show", "-uAbc"][..],
        &["client", "delete", "-uAbc"],
        &["client", "rotate-secret", "-uAbc"],
        &["user", "show", "-uAbc"],
        &["user", "disable", "-uAbc"],
        &["user", "enable", "-uAbc"],
        &["user", "delete", "-uAbc"],
    ] {
        let out = valet(&dir).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            !stderr.contains("unexpected argument"),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("-uAbc"),
            "names the id it did not find: {stderr}"
        );
    }
    let mut audit = valet(&dir);
    audit.args(["audit", "--client", "-uAbc", "--json"]);
    run_ok(audit);
}

#[test]
fn invalid_registrations_name_the_option() {
    let dir = init_dir("bad-clients");
    let cases: [(&[&str], &str); 4] = [
        (&["--name", "svc"], "--audience"),
        (
            &[
                "--name",
                "svc",
                "--audience",
                "a",
                "--grant-type",
                "password",
            ],
            "--grant-type password",
        ),
        (
            &["--name", "web", "--redirect-uri", "http://evil.example/cb"],
            "--redirect-uri",
        ),
        (
            &[
                "--name",
                "svc",
                "--audience",
                "a",
                "--access-token-ttl",
                "99999",
            ],
            "--access-token-ttl",
        ),
    ];
    for (args, expected) in cases {
        let out = valet(&dir)
            .args(["client", "create"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
