//! Valet's access token checked by an independent JOSE implementation (Python
//! jwcrypto, over pyca/cryptography) against the published JWKS.

use std::process::Command;

use valet_test_support::api::*;

const VERIFIER: &str = r#"
import json, sys
from jwcrypto import jwk, jws
jwks = jwk.JWKSet.from_json(open(sys.argv[1]).read())
token = open(sys.argv[2]).read().strip()
obj = jws.JWS()
obj.deserialize(token)
kid = obj.jose_header["kid"]
key = jwks.get_key(kid)
obj.verify(key, alg=sys.argv[3])
print(json.dumps({"header": obj.jose_header, "claims": json.loads(obj.payload)}))
"#;

fn jwcrypto_available() -> bool {
    Command::new("python3")
        .args(["-c", "import jwcrypto"])
        .output()
        .is_ok_and(|out| out.status.success())
}

#[tokio::test]
async fn jwcrypto_verifies_the_access_token_against_the_jwks() {
    jwcrypto_verifies(&TestApp::new().await, "ES256").await;
}

/// With `access_token_alg = EdDSA`: the token says EdDSA, the JWKS publishes the OKP
/// Ed25519 key, discovery says so, and an independent implementation agrees.
#[tokio::test]
async fn jwcrypto_verifies_an_eddsa_access_token_against_the_jwks() {
    let mut settings = settings();
    settings.keys.access_token_alg = "EdDSA".parse().unwrap();
    jwcrypto_verifies(&TestApp::with_settings(settings).await, "EdDSA").await;
}

/// The same with the keys stored (sealed) in PostgreSQL.
#[tokio::test]
async fn jwcrypto_verifies_an_eddsa_access_token_on_postgres() {
    let mut settings = settings();
    settings.keys.access_token_alg = "EdDSA".parse().unwrap();
    let Some((app, schema)) = TestApp::on_postgres_with(settings).await else {
        return;
    };
    jwcrypto_verifies(&app, "EdDSA").await;
    TestApp::drop_postgres_schema(&schema).await;
}

async fn jwcrypto_verifies(app: &TestApp, alg: &str) {
    if !jwcrypto_available() {
        assert!(
            std::env::var_os("VALET_REQUIRE_JWCRYPTO").is_none(),
            "VALET_REQUIRE_JWCRYPTO is set but python3 with jwcrypto is missing"
        );
        skip(
            "python3 with jwcrypto not found (pip install jwcrypto); independent JOSE check did not run",
        );
        return;
    }
    let client = app.service().await;
    let token = app.access_token(&client).await;
    let metadata = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json();
    assert_eq!(
        metadata["access_token_signing_alg_values_supported"],
        serde_json::json!([alg])
    );
    let jwks = app.get("/jwks.json").await.text();
    let published: serde_json::Value = serde_json::from_str(&jwks).unwrap();
    let kid = token_header(&token)["kid"].as_str().unwrap().to_owned();
    let key = published["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap();
    assert_eq!(key["alg"], alg);
    if alg == "EdDSA" {
        assert_eq!(
            (&key["kty"], &key["crv"]),
            (&"OKP".into(), &"Ed25519".into())
        );
        assert!(key.get("d").is_none());
    }
    let jwks_path = app.dir.join("jwks.json");
    let token_path = app.dir.join("token.jwt");
    std::fs::write(&jwks_path, jwks).unwrap();
    std::fs::write(&token_path, &token).unwrap();

    let out = Command::new("python3")
        .args(["-c", VERIFIER])
        .arg(&jwks_path)
        .arg(&token_path)
        .arg(alg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "jwcrypto rejected the token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verified: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verified["header"]["typ"], "at+jwt");
    assert_eq!(verified["header"]["alg"], alg);
    assert_eq!(verified["claims"]["iss"], ISSUER);
    assert_eq!(verified["claims"]["client_id"], client.id.as_str());

    // The same verifier must reject a token whose payload was altered.
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged_payload = base64_url(r#"{"iss":"https://id.example.test","sub":"admin"}"#);
    parts[1] = &forged_payload;
    std::fs::write(&token_path, parts.join(".")).unwrap();
    let out = Command::new("python3")
        .args(["-c", VERIFIER])
        .arg(&jwks_path)
        .arg(&token_path)
        .arg(alg)
        .output()
        .unwrap();
    assert!(!out.status.success(), "jwcrypto accepted a forged token");
}

fn token_header(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    serde_json::from_slice(&header).unwrap()
}

fn base64_url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}
