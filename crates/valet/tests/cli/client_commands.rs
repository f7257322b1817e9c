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

/// `valet client secret rotate --overlap`: the running server takes the new
/// secret at once (although it caches the client) and keeps the old one until
/// the overlap ends; the rotation is audited. `--introspect-any` is stored.
#[test]
fn secret_rotation_with_overlap_through_the_cli() {
    let (dir, server) = serve_fresh("secret-overlap");
    let (id, old_secret) = create_client_with(
        valet(&dir),
        &[],
        &[
            "--name",
            "svc",
            "--audience",
            "https://api.example.test",
            "--introspect-any",
        ],
    );
    server.token(&id, &old_secret);

    let rotated = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args([
            "client",
            "secret",
            "rotate",
            &id,
            "--overlap",
            "1h",
            "--json",
        ]);
        c
    }));
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    let until = rotated["previous_secret_valid_until"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now + 3_590..=now + 3_610).contains(&until), "{rotated}");
    // No waiting for the cache: both work now.
    server.token(&id, &new_secret);
    server.token(&id, &old_secret);

    let shown = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args(["client", "show", &id, "--json"]);
        c
    }));
    assert_eq!(shown["introspect_any"], true);
    assert_eq!(shown["previous_secret_valid_until"], until);
    let text = serde_json::to_string(&shown).unwrap();
    assert!(!text.contains(&new_secret) && !text.contains(&old_secret));

    let audit = run_ok({
        let mut c = valet(&dir);
        c.args(["audit", "--type", "client.secret_rotated", "--json"]);
        c
    });
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.contains("\"overlap_seconds\":3600"), "{audit}");
    assert!(!audit.contains(&new_secret) && !audit.contains(&old_secret));

    for bad in ["1w", "5x", "31d"] {
        let out = valet(&dir)
            .args(["client", "secret", "rotate", &id, "--overlap", bad])
            .output()
            .unwrap();
        assert!(!out.status.success(), "--overlap {bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("overlap"), "{bad}: {stderr}");
    }
    server.token(&id, &new_secret);
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
        &["client", "secret", "rotate", "-uAbc"],
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

/// `valet client update`: replaces what it is given, keeps the rest and the
/// secret, names the flag at fault and changes nothing then, and is audited as
/// `client.updated` once per change.
#[test]
fn client_update_through_the_cli() {
    let (dir, server) = serve_fresh("client-update");
    let (id, secret) = create_service_client(&dir, &[]);
    let updated = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args([
            "client",
            "update",
            &id,
            "--scope",
            "read",
            "--scope",
            "write",
            "--access-token-ttl",
            "120",
            "--introspect-any",
            "--json",
        ]);
        c
    }));
    assert_eq!(
        updated["changed"],
        serde_json::json!(["scopes", "access_token_ttl", "introspect_any"])
    );
    assert_eq!(updated["revoked_grants"], 0);
    assert_eq!(
        updated["client"]["scopes"],
        serde_json::json!(["read", "write"])
    );
    assert_eq!(
        updated["client"]["audiences"],
        serde_json::json!(["https://api.example.test"])
    );
    assert!(!serde_json::to_string(&updated).unwrap().contains(&secret));

    let cases: [(&[&str], &str); 4] = [
        (
            &["--redirect-uri", "http://evil.example/cb"],
            "--redirect-uri http://evil.example/cb: http is allowed only for loopback hosts",
        ),
        (
            &["--no-audiences"],
            "--audience: client_credentials needs at least one audience",
        ),
        (
            &["--access-token-ttl", "99999"],
            "--access-token-ttl 99999: must be between 1 and the configured maximum of 3600 seconds",
        ),
        (
            &["--scope", "a\"b"],
            "--scope a\"b: not a valid scope token",
        ),
    ];
    for (args, expected) in cases {
        let out = valet(&dir)
            .args(["client", "update", &id])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let missing = valet(&dir)
        .args(["client", "update", "no-such-id", "--name", "x"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no client with id no-such-id"));

    let shown = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args(["client", "show", &id, "--json"]);
        c
    }));
    assert_eq!(shown["scopes"], serde_json::json!(["read", "write"]));
    assert_eq!(shown["access_token_ttl"], 120);
    assert_eq!(shown["introspect_any"], true);
    // The secret is untouched: the server still issues tokens for it, now for
    // the client's new lifetime (once its client cache has expired).
    std::thread::sleep(std::time::Duration::from_millis(5_500));
    let token = server.token(&id, &secret);
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );

    let audit = run_ok({
        let mut c = valet(&dir);
        c.args(["audit", "--type", "client.updated", "--json"]);
        c
    });
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert_eq!(audit.lines().count(), 1, "{audit}");
    assert!(
        audit.contains("\"changed\":\"scopes access_token_ttl introspect_any\"")
            && audit.contains("\"via\":\"cli\""),
        "{audit}"
    );
}

/// `--allowed-origin`: stored as the browser serializes the origin, shown,
/// replaced by `update`, emptied by `--no-allowed-origins`, and refused (naming
/// the option) when it is not an origin.
#[test]
fn allowed_origins_through_the_cli() {
    let dir = init_dir("allowed-origins");
    let created = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args([
            "client",
            "create",
            "--name",
            "web",
            "--redirect-uri",
            "https://web.example.test/cb",
            "--allowed-origin",
            "HTTPS://SPA.example.test:443/",
            "--json",
        ]);
        c
    }));
    let id = created["client_id"].as_str().unwrap().to_owned();
    let shown = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args(["client", "show", &id, "--json"]);
        c
    }));
    assert_eq!(
        shown["allowed_origins"],
        serde_json::json!(["https://spa.example.test"])
    );
    let updated = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args([
            "client",
            "update",
            &id,
            "--allowed-origin",
            "http://localhost:5173",
            "--json",
        ]);
        c
    }));
    assert_eq!(updated["changed"], serde_json::json!(["allowed_origins"]));
    assert_eq!(
        updated["client"]["allowed_origins"],
        serde_json::json!(["http://localhost:5173"])
    );
    for bad in [
        "https://*.example.test",
        "https://spa.example.test/app",
        "null",
    ] {
        let out = valet(&dir)
            .args(["client", "update", &id, "--allowed-origin", bad])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--allowed-origin"), "{bad}: {stderr}");
    }
    let cleared = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args(["client", "update", &id, "--no-allowed-origins", "--json"]);
        c
    }));
    assert_eq!(cleared["client"]["allowed_origins"], serde_json::json!([]));
}

/// `--grant-type device_code` makes a device client (no redirect URI) that
/// `/device_authorization` serves; `--require-par` is stored, shown and
/// changed by `update`.
#[test]
fn device_and_par_options_through_the_cli() {
    let (dir, server) = serve_fresh("device-par-clients");
    let tv = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args(["client", "create", "--name", "tv", "--public"])
            .args(["--grant-type", "device_code", "--scope", "read", "--json"]);
        c
    }));
    let tv_id = tv["client_id"].as_str().unwrap();
    let started = server.post_form("/device_authorization", None, &format!("client_id={tv_id}"));
    assert_eq!(started.status, 200, "{}", started.body);
    assert!(started.json()["user_code"].as_str().is_some());
    let shown = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args(["client", "show", tv_id, "--json"]);
        c
    }));
    assert_eq!(
        shown["grant_types"],
        serde_json::json!(["urn:ietf:params:oauth:grant-type:device_code"])
    );

    let web = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args(["client", "create", "--name", "web", "--require-par"])
            .args(["--redirect-uri", "https://app.example.test/cb", "--json"]);
        c
    }));
    let web_id = web["client_id"].as_str().unwrap();
    let show = |dir: &std::path::Path| {
        stdout_json(&run_ok({
            let mut c = valet(dir);
            c.args(["client", "show", web_id, "--json"]);
            c
        }))
    };
    assert_eq!(show(&dir)["require_pushed_authorization_requests"], true);
    run_ok({
        let mut c = valet(&dir);
        c.args(["client", "update", web_id, "--require-par=false"]);
        c
    });
    assert_eq!(show(&dir)["require_pushed_authorization_requests"], false);
}

/// `--auth-method private_key_jwt` with `--jwks-file`: no secret is printed,
/// `show` says how the client authenticates, a file with a private key names
/// the option at fault, `update --jwks-uri` replaces the inline keys, and token
/// exchange needs its grant type.
#[test]
fn key_clients_and_token_exchange_through_the_cli() {
    let dir = init_dir("key-clients");
    let public = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}]}"#;
    let private = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","kid":"k1"}]}"#;
    let public_path = dir.join("public.json");
    let private_path = dir.join("private.json");
    std::fs::write(&public_path, public).unwrap();
    std::fs::write(&private_path, private).unwrap();
    let create = |jwks: &std::path::Path| {
        let mut c = valet(&dir);
        c.args([
            "client",
            "create",
            "--name",
            "signer",
            "--audience",
            "https://api.example.test",
            "--auth-method",
            "private_key_jwt",
            "--jwks-file",
            jwks.to_str().unwrap(),
            "--json",
        ]);
        c
    };
    let created = stdout_json(&run_ok(create(&public_path)));
    assert!(created.get("client_secret").is_none(), "{created}");
    let id = created["client_id"].as_str().unwrap().to_owned();
    let shown = run_ok({
        let mut c = valet(&dir);
        c.args(["client", "show", &id]);
        c
    });
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("private_key_jwt") && text.contains("jwks (k1)"),
        "{text}"
    );

    let refused = create(&private_path).output().unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--jwks-file") && stderr.contains("private"),
        "{stderr}"
    );

    let updated = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args([
            "client",
            "update",
            &id,
            "--jwks-uri",
            "https://signer.example.test/jwks.json",
            "--json",
        ]);
        c
    }));
    assert_eq!(
        updated["client"]["jwks_uri"],
        "https://signer.example.test/jwks.json"
    );
    assert!(updated["client"]["jwks"].is_null(), "{updated}");
    let no_keys = valet(&dir)
        .args(["client", "update", &id, "--no-jwks"])
        .output()
        .unwrap();
    assert!(
        !no_keys.status.success(),
        "a private_key_jwt client keeps its keys"
    );

    let exchanger = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args([
            "client",
            "create",
            "--name",
            "exchanger",
            "--grant-type",
            "token_exchange",
            "--token-exchange-audience",
            "https://downstream.example.test",
            "--json",
        ]);
        c
    }));
    assert!(exchanger["client_secret"].as_str().is_some());
    let without_grant = valet(&dir)
        .args([
            "client",
            "create",
            "--name",
            "x",
            "--audience",
            "a",
            "--token-exchange-audience",
            "https://downstream.example.test",
        ])
        .output()
        .unwrap();
    assert!(!without_grant.status.success());
    assert!(String::from_utf8_lossy(&without_grant.stderr).contains("--grant-type"));
}

/// `valet client initial-token …` with `client_registration = initial_token`:
/// the token printed once registers a client at the running server as many
/// times as `--uses` allows; `list` never shows it; `revoke` ends it. A bad
/// value names the option.
#[test]
fn initial_tokens_through_the_cli() {
    let dir = temp_dir("initial-tokens");
    let port = free_port();
    let mut command = valet(&dir);
    command
        .env("VALET_CLIENT_REGISTRATION", "initial_token")
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")]);
    let server = Server::start(command, port, dir.join("serve.log"));
    let discovery = server.get("/.well-known/openid-configuration").json();
    assert_eq!(
        discovery["registration_endpoint"],
        format!("http://127.0.0.1:{port}/connect/register")
    );

    let created = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args([
            "client",
            "initial-token",
            "create",
            "--ttl",
            "1h",
            "--uses",
            "1",
            "--note",
            "notes team",
            "--json",
        ]);
        c
    }));
    let token = created["initial_access_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("viat_"), "{created}");
    let register = |token: &str| {
        http(
            port,
            "POST",
            "/connect/register",
            &[
                ("content-type", "application/json".to_owned()),
                ("authorization", format!("Bearer {token}")),
            ],
            r#"{"client_name":"Notes","redirect_uris":["https://notes.example/cb"]}"#,
        )
        .unwrap()
    };
    let registered = register(&token);
    assert_eq!(registered.status, 201, "{}", registered.body);
    assert_eq!(register(&token).status, 401, "one use only");

    let listed = run_ok({
        let mut c = valet(&dir);
        c.args(["client", "initial-token", "list"]);
        c
    });
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains("notes team"), "{text}");
    assert!(!text.contains(&token));

    let lasting = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args(["client", "initial-token", "create", "--json"]);
        c
    }));
    let id = lasting["token_id"].as_str().unwrap();
    run_ok({
        let mut c = valet(&dir);
        c.args(["client", "initial-token", "revoke", id]);
        c
    });
    assert_eq!(
        register(lasting["initial_access_token"].as_str().unwrap()).status,
        401
    );
    let bad = valet(&dir)
        .args(["client", "initial-token", "create", "--uses", "0"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("uses"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    // Operators see self-registered clients by their origin.
    let clients = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args(["client", "list", "--json"]);
        c
    }));
    assert_eq!(clients[0]["origin"], "dynamic", "{clients}");
}

/// `--auth-method client_secret_jwt`: the secret is printed once (the CLI reads
/// the master key to seal it), never shown again; `rotate-secret` prints a new
/// one and an overlap is refused (one sealed secret at a time).
#[test]
fn secret_jwt_client_through_the_cli() {
    let dir = init_dir("secret-jwt");
    let created = run_ok({
        let mut c = valet(&dir);
        c.args([
            "client",
            "create",
            "--name",
            "hmac service",
            "--audience",
            "https://api.example.test",
            "--auth-method",
            "client_secret_jwt",
        ]);
        c
    });
    let text = String::from_utf8_lossy(&created.stdout).into_owned();
    let secret = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("client_secret:"))
        .map(|secret| secret.trim().to_owned())
        .unwrap_or_else(|| panic!("no secret printed: {text}"));
    assert!(secret.starts_with("vcs_"), "{text}");
    assert_eq!(text.matches(&secret).count(), 1, "printed once: {text}");
    assert!(text.contains("client_secret_jwt"), "{text}");
    let id = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("client_id:"))
        .map(|id| id.trim().to_owned())
        .unwrap();

    for args in [
        vec!["client", "show", &id],
        vec!["client", "list", "--json"],
    ] {
        let out = run_ok({
            let mut c = valet(&dir);
            c.args(&args);
            c
        });
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(!shown.contains(&secret), "{args:?} shows the secret");
        assert!(shown.contains("client_secret_jwt"), "{args:?}: {shown}");
    }

    let refused = valet(&dir)
        .args(["client", "secret", "rotate", &id, "--overlap", "1h"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("client_secret_jwt"), "{stderr}");

    let rotated = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args(["client", "rotate-secret", &id, "--json"]);
        c
    }));
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert!(
        new_secret.starts_with("vcs_") && new_secret != secret,
        "{rotated}"
    );
    assert!(
        rotated["previous_secret_valid_until"].is_null(),
        "{rotated}"
    );
}

/// `--id-token-encryption`, `--userinfo-signing` and `--userinfo-encryption`: a
/// fitting `use: enc` key is required (the flag at fault is named), `show` lists
/// the settings, and `update ... none` removes one.
#[test]
fn encrypted_responses_through_the_cli() {
    let dir = init_dir("encrypted-responses");
    let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","use":"enc","kid":"e1","x":"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ","y":"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck"}]}"#;
    let path = dir.join("enc.json");
    std::fs::write(&path, jwks).unwrap();
    let create = |encryption: &str| {
        let mut c = valet(&dir);
        c.args([
            "client",
            "create",
            "--name",
            "encrypting",
            "--redirect-uri",
            "https://rp.example.test/cb",
            "--jwks-file",
            path.to_str().unwrap(),
            "--id-token-encryption",
            encryption,
            "--userinfo-signing",
            "ES256",
            "--userinfo-encryption",
            "ECDH-ES",
            "--json",
        ]);
        c
    };
    let refused = create("RSA-OAEP-256").output().unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--id-token-encryption") && stderr.contains("RSA key"),
        "{stderr}"
    );
    let created = stdout_json(&run_ok(create("ECDH-ES+A256KW:A128GCM")));
    let id = created["client_id"].as_str().unwrap().to_owned();
    let shown = run_ok({
        let mut c = valet(&dir);
        c.args(["client", "show", &id]);
        c
    });
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("encrypted ECDH-ES+A256KW A128GCM")
            && text.contains("signed ES256")
            && text.contains("encrypted ECDH-ES A256GCM"),
        "{text}"
    );
    let updated = stdout_json(&run_ok({
        let mut c = valet(&dir);
        c.args([
            "client",
            "update",
            &id,
            "--id-token-encryption",
            "none",
            "--json",
        ]);
        c
    }));
    assert!(updated["client"]["id_token_encrypted_response_alg"].is_null());
    assert_eq!(
        updated["client"]["userinfo_encrypted_response_alg"],
        "ECDH-ES"
    );
}
