//! Bad configuration stops the start with a message naming the setting.

use crate::harness::*;

fn serve_fails(configure: impl FnOnce(&mut std::process::Command), expected: &[&str]) {
    let dir = temp_dir("config");
    let mut command = valet(&dir);
    command.args(["serve", "--bind", &format!("127.0.0.1:{}", free_port())]);
    configure(&mut command);
    let out = command.output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for fragment in expected {
        assert!(
            stderr.contains(fragment),
            "expected {fragment:?} in: {stderr}"
        );
    }
}

#[test]
fn settings_at_fault_are_named() {
    serve_fails(
        |c| {
            c.env("VALET_ACCESS_TOKEN_TTL", "ten");
        },
        &["access_token_ttl"],
    );
    serve_fails(
        |c| {
            c.args(["--issuer", "http://id.example.com"]);
        },
        &["issuer", "https"],
    );
    serve_fails(
        |c| {
            c.args(["--bind", "nonsense"]);
        },
        &["bind"],
    );
    serve_fails(
        |c| {
            c.env("VALET_ACCESS_TOKEN_TTL", "7200");
        },
        &["access_token_ttl", "access_token_max_ttl"],
    );
    serve_fails(
        |c| {
            c.args(["--database-url", "mysql://x"]);
        },
        &["database_url"],
    );
    serve_fails(
        |c| {
            c.env("VALET_MASTER_KEY", "short");
        },
        &["VALET_MASTER_KEY"],
    );
    // Neither HMAC, `none`, nor a misspelling of EdDSA signs access tokens.
    for alg in ["HS256", "none", "eddsa", "Ed25519"] {
        serve_fails(
            |c| {
                c.env("VALET_ACCESS_TOKEN_ALG", alg);
            },
            &["access_token_alg"],
        );
    }
}

#[test]
fn config_file_typos_and_missing_files_are_reported() {
    let dir = temp_dir("config-file");
    std::fs::write(dir.join("valet.toml"), "acess_token_ttl = 300\n").unwrap();
    let out = valet(&dir).args(["serve"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("acess_token_ttl"), "{stderr}");

    let out = valet(&dir)
        .args(["--config", "missing.toml", "serve"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

#[test]
fn config_file_environment_and_flags_layer_in_that_order() {
    let dir = temp_dir("layers");
    let port = free_port();
    std::fs::write(
        dir.join("custom.toml"),
        format!("issuer = \"https://from-file.example\"\naccess_token_ttl = 120\nbind = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let mut command = valet(&dir);
    command
        .args([
            "--config",
            "custom.toml",
            "serve",
            "--issuer",
            "https://from-flag.example",
        ])
        .env("VALET_ACCESS_TOKEN_TTL", "90");
    let server = Server::start(command, port, dir.join("serve.log"));
    assert_eq!(
        server.get("/.well-known/oauth-authorization-server").json()["issuer"],
        "https://from-flag.example"
    );
    let (id, secret) = create_service_client(&dir, &["--config", "custom.toml"]);
    let reply = server.post_form(
        "/token",
        Some((&id, &secret)),
        "grant_type=client_credentials",
    );
    assert_eq!(reply.json()["expires_in"], 90);
}

#[test]
fn an_insecure_issuer_needs_the_dangerous_flag() {
    let dir = temp_dir("insecure-issuer");
    let port = free_port();
    let mut command = valet(&dir);
    command.args([
        "serve",
        "--bind",
        &format!("127.0.0.1:{port}"),
        "--issuer",
        "http://id.example.com",
        "--dangerous-allow-insecure-issuer",
    ]);
    let server = Server::start(command, port, dir.join("serve.log"));
    let metadata = server.get("/.well-known/oauth-authorization-server").json();
    assert_eq!(metadata["issuer"], "http://id.example.com");
    // No HSTS over a plain-http issuer.
    assert!(
        server
            .get("/healthz")
            .header("strict-transport-security")
            .is_none()
    );
}

#[test]
fn resource_limits_at_fault_are_named() {
    serve_fails(
        |c| {
            c.env("VALET_STATUS_EVENTS_AUTH", "password");
        },
        &["status_events_auth"],
    );
    serve_fails(
        |c| {
            c.env("VALET_STATUS_EVENTS_MAX_LIFETIME", "1");
        },
        &["status_events_max_lifetime", "between 10 and 86400"],
    );
    serve_fails(
        |c| {
            c.env("VALET_MAX_CONNECTIONS", "100")
                .env("VALET_STATUS_EVENTS_MAX_STREAMS", "100");
        },
        &["status_events_max_streams", "max_connections (100)"],
    );
    serve_fails(
        |c| {
            c.env("VALET_MAX_CONNECTIONS", "100000000");
        },
        &["max_connections", "file descriptors"],
    );
    serve_fails(
        |c| {
            c.env("VALET_PASSWORD_HASH_QUEUE", "-1");
        },
        &["password_hash_queue"],
    );
}

/// What needs mail refuses to start without it; a bad `smtp_url` is named,
/// never echoed (it may hold a password).
#[test]
fn mail_settings_are_checked_at_start() {
    serve_fails(
        |c| {
            c.env("VALET_PASSWORD_RESET", "true");
        },
        &["password_reset", "smtp_url"],
    );
    serve_fails(
        |c| {
            c.env("VALET_REGISTRATION", "open");
        },
        &["registration", "smtp_url"],
    );
    serve_fails(
        |c| {
            c.env(
                "VALET_SMTP_URL",
                "smtp://user:hunter2-secret@mail.example.com",
            );
        },
        &["smtp_url", "loopback"],
    );
    serve_fails(
        |c| {
            c.env("VALET_SMTP_URL", "smtps://mail.example.com");
        },
        &["mail_from"],
    );
    let dir = temp_dir("config");
    let out = valet(&dir)
        .args(["serve", "--bind", &format!("127.0.0.1:{}", free_port())])
        .env(
            "VALET_SMTP_URL",
            "smtp://user:hunter2-secret@mail.example.com",
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// Branding and languages: a colour under WCAG AA contrast, a malformed
/// colour, and a catalogue with an unknown key or placeholder stop the start.
#[test]
fn branding_and_catalogues_are_checked_at_start() {
    serve_fails(
        |c| {
            c.env("VALET_BRAND_COLOR", "#ffd700");
        },
        &["brand_color", "contrast ratio of 1.40:1", "4.5:1"],
    );
    serve_fails(
        |c| {
            c.env("VALET_BRAND_COLOR_DARK", "#333");
        },
        &["brand_color_dark", "contrast ratio"],
    );
    serve_fails(
        |c| {
            c.env("VALET_BRAND_COLOR", "blue");
        },
        &["brand_color", "not a hex colour"],
    );
    serve_fails(
        |c| {
            c.env("VALET_DEFAULT_LOCALE", "fr");
        },
        &["default_locale", "`fr` has no catalogue"],
    );
    let locales = temp_dir("locales");
    std::fs::write(locales.join("de.toml"), "[login]\ntitel = \"Einloggen\"\n").unwrap();
    serve_fails(
        |c| {
            c.env("VALET_LOCALES_DIR", &locales);
        },
        &["locales_dir", "de.toml", "unknown key `login.titel`"],
    );
    std::fs::write(locales.join("de.toml"), "[login]\nlead = \"zu {kunde}\"\n").unwrap();
    serve_fails(
        |c| {
            c.env("VALET_LOCALES_DIR", &locales);
        },
        &["locales_dir", "{kunde}"],
    );
}
