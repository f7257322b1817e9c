//! Encrypted ID tokens and UserInfo answers (OIDC Core §10.2, §5.3.2): the client's
//! registered `alg`/`enc`, its own key, and the nested signature checked against
//! Valet's JWKS, by Valet's decryption and by an independent one (Python jwcrypto).

use std::process::Command;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use valet_core::admin::{AdminError, ClientUpdate, EncryptionNames, NewClient};
use valet_jose::{DecryptionKey, EncryptionKey, VerificationKeys};
use valet_test_support::api::*;

const FIXTURE: &str = include_str!("../../../valet-jose/tests/fixtures/private_jwks.json");
const ALGS: [&str; 3] = ["RSA-OAEP-256", "ECDH-ES", "ECDH-ES+A256KW"];

/// The client's private key for `alg` (from the JOSE fixtures), as an encryption key.
fn private_key(alg: &str) -> Map<String, Value> {
    let kty = if alg.starts_with("RSA") { "RSA" } else { "EC" };
    let set: Value = serde_json::from_str(FIXTURE).unwrap();
    let mut key = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kty"] == kty)
        .unwrap()
        .as_object()
        .unwrap()
        .clone();
    key.insert("use".into(), "enc".into());
    key.remove("alg");
    key.insert("kid".into(), format!("client-{kty}-enc").into());
    key
}

fn public_key(alg: &str) -> Map<String, Value> {
    let mut key = private_key(alg);
    for name in ["d", "p", "q", "dp", "dq", "qi"] {
        key.remove(name);
    }
    key
}

fn public_jwks(alg: &str) -> String {
    json!({"keys": [public_key(alg)]}).to_string()
}

fn names(text: &str) -> Option<EncryptionNames> {
    Some(EncryptionNames::parse(text))
}

/// Decrypts with Valet's JWE code and verifies the nested JWS with Valet's JWKS.
async fn open(app: &TestApp, token: &str, alg: &str) -> (Map<String, Value>, Map<String, Value>) {
    assert_eq!(token.split('.').count(), 5, "a compact JWE: {token}");
    let key = DecryptionKey::from_jwk(&private_key(alg)).unwrap();
    let opened = valet_jose::decrypt(token, &key).unwrap();
    assert_eq!(opened.alg.as_str(), alg);
    assert_eq!(opened.enc.as_str(), "A256GCM");
    assert_eq!(opened.kid.as_deref(), private_key(alg)["kid"].as_str());
    assert_eq!(opened.cty.as_deref(), Some("JWT"));
    let inner = String::from_utf8(opened.plaintext).unwrap();
    let jwks = app.get("/jwks.json").await.text();
    let keys = VerificationKeys::from_jwk_set_json(&jwks).unwrap();
    keys.verify(&inner, "JWT").expect("the nested JWT verifies");
    decode_jwt(&inner)
}

async fn encrypting_client(app: &TestApp, alg: &str) -> TestClient {
    let jwks = public_jwks(alg);
    app.web_client(|c| {
        c.skip_consent = true;
        c.jwks = Some(jwks);
        c.id_token_encryption = names(alg);
    })
    .await
}

#[tokio::test]
async fn id_tokens_are_encrypted_through_the_code_flow_and_refresh() {
    let app = TestApp::new().await;
    app.user("alice").await;
    for alg in ALGS {
        let client = encrypting_client(&app, alg).await;
        let mut browser = Browser::default();
        let pkce = Pkce::new();
        let params = sign_in_and_allow(
            &app,
            &mut browser,
            &authorize_path(&client.id, &pkce, "openid offline_access", ""),
            "alice",
        )
        .await;
        assert!(params.contains_key("code"), "{alg}: {params:?}");
        let reply = redeem(&app, &client, &params["code"], &pkce.verifier).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let tokens = reply.json();
        let (header, claims) = open(&app, tokens["id_token"].as_str().unwrap(), alg).await;
        assert_eq!(header["typ"], "JWT");
        assert_eq!(claims["aud"], client.id.as_str());
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["nonce"], "n-0S6");

        let refreshed = app
            .token(
                &client,
                &format!(
                    "grant_type=refresh_token&refresh_token={}",
                    tokens["refresh_token"].as_str().unwrap()
                ),
            )
            .await;
        assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text());
        let (_, claims) = open(&app, refreshed.json()["id_token"].as_str().unwrap(), alg).await;
        assert_eq!(claims["sub"], tokens_sub(&app, &tokens).await);
    }
}

async fn tokens_sub(app: &TestApp, tokens: &Value) -> String {
    let info = app.userinfo(tokens["access_token"].as_str()).await;
    info.json()["sub"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn userinfo_is_a_signed_then_encrypted_jwt() {
    let app = fresh_clients_app().await;
    app.user("alice").await;
    let jwks = public_jwks("ECDH-ES+A256KW");
    let client = app
        .web_client(|c| {
            c.skip_consent = true;
            c.jwks = Some(jwks);
            c.userinfo_signed_response_alg = Some("ES256".into());
            c.userinfo_encryption = names("ECDH-ES+A256KW");
        })
        .await;
    let token = access_token_for(&app, &client, "openid profile").await;
    let reply = app.userinfo(Some(&token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/jwt"));
    let (header, claims) = open(&app, reply.text().trim(), "ECDH-ES+A256KW").await;
    assert_eq!(header["alg"], "ES256");
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], client.id.as_str());
    assert_eq!(claims["preferred_username"], "alice");

    // Encryption alone: the JSON answer, encrypted (no nested JWT).
    app.admin()
        .update_client(
            &client.id,
            ClientUpdate {
                userinfo_signed_response_alg: Some(None),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    let reply = app.userinfo(Some(&token)).await;
    assert_eq!(reply.header("content-type"), Some("application/jwt"));
    let key = DecryptionKey::from_jwk(&private_key("ECDH-ES+A256KW")).unwrap();
    let opened = valet_jose::decrypt(reply.text().trim(), &key).unwrap();
    assert_eq!(opened.cty, None);
    let claims: Value = serde_json::from_slice(&opened.plaintext).unwrap();
    assert_eq!(claims["preferred_username"], "alice");
}

async fn access_token_for(app: &TestApp, client: &TestClient, scope: &str) -> String {
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let params = sign_in_and_allow(
        app,
        &mut browser,
        &authorize_path(&client.id, &pkce, scope, ""),
        "alice",
    )
    .await;
    let reply = redeem(app, client, &params["code"], &pkce.verifier).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

/// An app that re-reads a client on every request, so an update shows at once.
async fn fresh_clients_app() -> TestApp {
    let mut settings = settings();
    settings.client_cache_ttl = 0;
    TestApp::with_settings(settings).await
}

fn invalid_field(error: &AdminError) -> String {
    match error {
        AdminError::Invalid(field) => format!("{} {}", field.field, field.reason),
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_client_without_a_fitting_key_is_refused() {
    let app = TestApp::new().await;
    let base = |jwks: Option<String>, alg: &str| NewClient {
        name: "Encrypting".into(),
        redirect_uris: vec![WEB_REDIRECT.into()],
        jwks,
        id_token_encryption: names(alg),
        ..NewClient::default()
    };
    for (new, field, why) in [
        (
            base(Some(public_jwks("ECDH-ES")), "RSA-OAEP-256"),
            "id_token_encrypted_response_alg",
            "RSA key",
        ),
        (
            base(Some(public_jwks("RSA-OAEP-256")), "ECDH-ES"),
            "id_token_encrypted_response_alg",
            "P-256",
        ),
        (
            base(None, "ECDH-ES"),
            "id_token_encrypted_response_alg",
            "jwks or jwks_uri",
        ),
        (
            base(Some(public_jwks("ECDH-ES")), "RSA1_5"),
            "id_token_encrypted_response_alg",
            "RSA-OAEP-256",
        ),
        (
            base(Some(public_jwks("ECDH-ES")), "ECDH-ES:A128CBC-HS256"),
            "id_token_encrypted_response_enc",
            "A256GCM",
        ),
    ] {
        let error = app.admin().register_client(new).await.expect_err(field);
        let text = invalid_field(&error);
        assert!(text.starts_with(field) && text.contains(why), "{text}");
    }
    // A signature key (use "sig") is never encrypted to.
    let mut signing = public_key("ECDH-ES");
    signing.insert("use".into(), "sig".into());
    signing.insert("alg".into(), "ES256".into());
    let error = app
        .admin()
        .register_client(base(
            Some(json!({"keys": [signing]}).to_string()),
            "ECDH-ES",
        ))
        .await
        .expect_err("a signature key");
    assert!(invalid_field(&error).contains("no key to encrypt to"));

    // Update: the key cannot go while encryption needs it, nor a wrong alg come in.
    let client = encrypting_client(&app, "ECDH-ES").await;
    let same = app
        .admin()
        .update_client(
            &client.id,
            ClientUpdate {
                id_token_encryption: Some(names("ECDH-ES:A256GCM")),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    assert!(same.changed.is_empty(), "{:?}", same.changed);
    let no_keys = app
        .admin()
        .update_client(
            &client.id,
            ClientUpdate {
                jwks: Some(None),
                ..ClientUpdate::default()
            },
        )
        .await
        .expect_err("keys removed");
    assert!(invalid_field(&no_keys).contains("jwks or jwks_uri"));
    let wrong = app
        .admin()
        .update_client(
            &client.id,
            ClientUpdate {
                userinfo_encryption: Some(names("RSA-OAEP-256")),
                ..ClientUpdate::default()
            },
        )
        .await
        .expect_err("no RSA key");
    assert!(invalid_field(&wrong).starts_with("userinfo_encrypted_response_alg"));
}

/// A `jwks_uri` that cannot be fetched: the token request fails with
/// `server_error` and the code is not consumed, so it works once the keys do.
#[tokio::test]
async fn unreachable_keys_fail_the_request_and_keep_the_code() {
    let app = fresh_clients_app().await;
    app.user("alice").await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!(
        "http://127.0.0.1:{}/jwks",
        closed.local_addr().unwrap().port()
    );
    drop(closed);
    let client = app
        .web_client(|c| {
            c.skip_consent = true;
            c.jwks_uri = Some(uri);
            c.id_token_encryption = names("ECDH-ES");
        })
        .await;
    let mut browser = Browser::default();
    let pkce = Pkce::new();
    let params = sign_in_and_allow(
        &app,
        &mut browser,
        &authorize_path(&client.id, &pkce, "openid", ""),
        "alice",
    )
    .await;
    let failed = redeem(&app, &client, &params["code"], &pkce.verifier).await;
    failed.assert_error(500, "server_error");

    app.admin()
        .update_client(
            &client.id,
            ClientUpdate {
                jwks_uri: Some(None),
                jwks: Some(Some(public_jwks("ECDH-ES"))),
                ..ClientUpdate::default()
            },
        )
        .await
        .unwrap();
    let reply = redeem(&app, &client, &params["code"], &pkce.verifier).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    open(&app, reply.json()["id_token"].as_str().unwrap(), "ECDH-ES").await;
}

#[tokio::test]
async fn discovery_lists_the_encryption_values() {
    let app = TestApp::new().await;
    let metadata = app.get("/.well-known/openid-configuration").await.json();
    for name in [
        "id_token_encryption_alg_values_supported",
        "userinfo_encryption_alg_values_supported",
    ] {
        assert_eq!(metadata[name], json!(ALGS), "{name}");
    }
    for name in [
        "id_token_encryption_enc_values_supported",
        "userinfo_encryption_enc_values_supported",
    ] {
        assert_eq!(metadata[name], json!(["A128GCM", "A256GCM"]), "{name}");
    }
    assert_eq!(
        metadata["userinfo_signing_alg_values_supported"],
        json!(["RS256", "ES256"])
    );
}

const JWCRYPTO_OPEN: &str = r#"
import json, sys
from jwcrypto import jwe, jwk, jws
private = jwk.JWK.from_json(open(sys.argv[1]).read())
jwks = jwk.JWKSet.from_json(open(sys.argv[2]).read())
token = open(sys.argv[3]).read().strip()
outer = jwe.JWE()
outer.deserialize(token, key=private)
header = outer.jose_header
assert header["alg"] == sys.argv[4] and header["enc"] == "A256GCM" and header["cty"] == "JWT", header
inner = jws.JWS()
inner.deserialize(outer.payload.decode())
inner.verify(jwks.get_key(inner.jose_header["kid"]))
print(json.dumps(json.loads(inner.payload)))
"#;

const JWCRYPTO_SEAL: &str = r#"
import json, sys
from jwcrypto import jwe, jwk
public = jwk.JWK.from_json(open(sys.argv[1]).read())
token = jwe.JWE(b"made by jwcrypto", json.dumps({"alg": sys.argv[2], "enc": sys.argv[3], "kid": public.get("kid")}))
token.add_recipient(public)
print(token.serialize(compact=True))
"#;

fn jwcrypto_available() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import jwcrypto"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(
            std::env::var_os("VALET_REQUIRE_JWCRYPTO").is_none(),
            "VALET_REQUIRE_JWCRYPTO is set but python3 with jwcrypto is missing"
        );
        skip(
            "python3 with jwcrypto not found (pip install jwcrypto); independent JWE check did not run",
        );
    }
    found
}

fn python(script: &str, args: &[&std::path::Path], extra: &[&str]) -> std::process::Output {
    Command::new("python3")
        .args(["-c", script])
        .args(args)
        .args(extra)
        .output()
        .unwrap()
}

/// jwcrypto decrypts Valet's ID tokens and UserInfo answers for each `alg` and verifies
/// the nested signature against Valet's JWKS; Valet decrypts what jwcrypto encrypts.
#[tokio::test]
async fn jwcrypto_opens_valet_jwes_and_valet_opens_jwcrypto_jwes() {
    if !jwcrypto_available() {
        return;
    }
    let app = TestApp::new().await;
    app.user("alice").await;
    let jwks_path = app.dir.join("valet-jwks.json");
    std::fs::write(&jwks_path, app.get("/jwks.json").await.text()).unwrap();
    for alg in ALGS {
        let jwks = public_jwks(alg);
        let client = app
            .web_client(|c| {
                c.skip_consent = true;
                c.jwks = Some(jwks);
                c.id_token_encryption = names(alg);
                c.userinfo_signed_response_alg = Some("RS256".into());
                c.userinfo_encryption = names(alg);
            })
            .await;
        let mut browser = Browser::default();
        let pkce = Pkce::new();
        let params = sign_in_and_allow(
            &app,
            &mut browser,
            &authorize_path(&client.id, &pkce, "openid email", ""),
            "alice",
        )
        .await;
        let tokens = redeem(&app, &client, &params["code"], &pkce.verifier)
            .await
            .json();
        let userinfo = app.userinfo(tokens["access_token"].as_str()).await.text();
        let private_path = app.dir.join("client-key.json");
        std::fs::write(&private_path, Value::Object(private_key(alg)).to_string()).unwrap();
        for (what, token) in [
            ("id_token", tokens["id_token"].as_str().unwrap().to_owned()),
            ("userinfo", userinfo),
        ] {
            let token_path = app.dir.join("token.jwe");
            std::fs::write(&token_path, &token).unwrap();
            let out = python(
                JWCRYPTO_OPEN,
                &[&private_path, &jwks_path, &token_path],
                &[alg],
            );
            assert!(
                out.status.success(),
                "jwcrypto refused the {what} ({alg}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let claims: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(claims["aud"], client.id.as_str(), "{what}");
            assert_eq!(claims["iss"], ISSUER, "{what}");

            // A flipped ciphertext byte: jwcrypto refuses it too.
            let mut parts: Vec<String> = token.trim().split('.').map(str::to_owned).collect();
            let flipped = if parts[3].starts_with('A') { "B" } else { "A" };
            parts[3].replace_range(0..1, flipped);
            std::fs::write(&token_path, parts.join(".")).unwrap();
            let out = python(
                JWCRYPTO_OPEN,
                &[&private_path, &jwks_path, &token_path],
                &[alg],
            );
            assert!(!out.status.success(), "jwcrypto accepted a tampered {what}");
        }

        // The other direction: jwcrypto encrypts, Valet decrypts.
        let public_path = app.dir.join("client-public.json");
        std::fs::write(&public_path, Value::Object(public_key(alg)).to_string()).unwrap();
        for enc in ["A256GCM", "A128GCM"] {
            let out = python(JWCRYPTO_SEAL, &[&public_path], &[alg, enc]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let token = String::from_utf8(out.stdout).unwrap();
            let key = DecryptionKey::from_jwk(&private_key(alg)).unwrap();
            let opened = valet_jose::decrypt(token.trim(), &key).unwrap();
            assert_eq!(opened.plaintext, b"made by jwcrypto", "{alg} {enc}");
        }
    }
    // The public key parses as an encryption key on Valet's side as well.
    assert!(EncryptionKey::from_jwk(&public_key("ECDH-ES")).is_ok());
}
