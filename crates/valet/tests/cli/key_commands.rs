//! `valet key …` against a running server.

use serde_json::Value;

use crate::harness::*;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../valet-jose/tests/fixtures/private_jwks.json"
);

fn key_list(dir: &std::path::Path) -> Vec<Value> {
    let out = run_ok({
        let mut c = valet(dir);
        c.args(["key", "list", "--json"]);
        c
    });
    stdout_json(&out).as_array().unwrap().clone()
}

fn kid_of(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[test]
fn rotate_publishes_a_pending_key_and_import_activates_at_once() {
    let (dir, server) = serve_fresh("keys");
    let (id, secret) = create_service_client(&dir, &[]);

    let keys = key_list(&dir);
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k["state"] == "signing"), "{keys:?}");
    let signing_kid = kid_of(&server.token(&id, &secret));

    let out = run_ok({
        let mut c = valet(&dir);
        c.args(["key", "rotate", "--alg", "ES256"]);
        c
    });
    assert!(String::from_utf8_lossy(&out.stdout).contains("published now"));
    let keys = key_list(&dir);
    let pending: Vec<&Value> = keys.iter().filter(|k| k["state"] == "pending").collect();
    assert_eq!(pending.len(), 1, "{keys:?}");
    let pending_kid = pending[0]["kid"].as_str().unwrap().to_owned();
    eventually("the server to publish the pending key", || {
        server.get("/jwks.json").body.contains(&pending_kid)
    });
    // Published before it signs.
    assert_eq!(kid_of(&server.token(&id, &secret)), signing_kid);

    let out = run_ok({
        let mut c = valet(&dir);
        c.args(["key", "import", FIXTURE, "--activate"]);
        c
    });
    assert!(String::from_utf8_lossy(&out.stdout).contains("ec-test-1"));
    eventually("the imported key to sign", || {
        kid_of(&server.token(&id, &secret)) == "ec-test-1"
    });
    let keys = key_list(&dir);
    let state = |kid: &str| {
        keys.iter()
            .find(|k| k["kid"] == kid)
            .map(|k| k["state"].clone())
    };
    assert_eq!(state("ec-test-1"), Some("signing".into()));
    assert_eq!(state(&signing_kid), Some("retiring".into()));
    // The superseded key still verifies its tokens.
    assert!(server.get("/jwks.json").body.contains(&signing_kid));

    // Importing the same keys twice is refused.
    let again = valet(&dir)
        .args(["key", "import", FIXTURE])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn a_wrong_master_key_stops_the_start() {
    let dir = temp_dir("wrong-master");
    let port = free_port();
    let mut command = valet(&dir);
    command.args(["serve", "--bind", &format!("127.0.0.1:{port}")]);
    drop(Server::start(command, port, dir.join("serve.log")));
    let out = valet(&dir)
        .env(
            "VALET_MASTER_KEY",
            "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80",
        )
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("master key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rotate_stages_an_eddsa_key_before_the_setting_switches() {
    let (dir, server) = serve_fresh("keys-eddsa");
    let out = run_ok({
        let mut c = valet(&dir);
        c.args(["key", "rotate", "--alg", "EdDSA"]);
        c
    });
    assert!(String::from_utf8_lossy(&out.stdout).contains("published now"));
    let keys = key_list(&dir);
    let ed: Vec<&Value> = keys.iter().filter(|k| k["alg"] == "EdDSA").collect();
    assert_eq!(ed.len(), 1, "{keys:?}");
    assert_eq!(ed[0]["state"], "pending");
    let kid = ed[0]["kid"].as_str().unwrap().to_owned();
    eventually("the server to publish the EdDSA key", || {
        server.get("/jwks.json").body.contains(&kid)
    });
    let jwks = server.get("/jwks.json").json();
    let published = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap()
        .clone();
    assert_eq!(published["kty"], "OKP");
    assert_eq!(published["crv"], "Ed25519");
    assert!(published.get("d").is_none());
    // A second one while it is pending is refused.
    let again = valet(&dir)
        .args(["key", "rotate", "--alg", "EdDSA"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    // Unknown names stay refused.
    let wrong = valet(&dir)
        .args(["key", "rotate", "--alg", "Ed25519"])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
}
