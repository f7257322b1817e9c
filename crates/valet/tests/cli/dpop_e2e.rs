//! DPoP end to end with independent clients: a Python client (proofs made with
//! jwcrypto) and openid-client 6 (Node.js) get DPoP-bound tokens from `valet serve`
//! and call an API behind `valet guard`, which checks each proof, refuses replays and
//! the token sent as a bearer token, and serves its RFC 9728 metadata.

use std::process::Command;
use std::sync::Arc;

use crate::harness::*;

const AUDIENCE: &str = "https://api.example.test";

/// Valet, a service client, an upstream that says hello, and `valet guard` in front
/// of it with `--resource http://127.0.0.1:PORT`.
struct Setup {
    valet: Server,
    proxy: Server,
    id: String,
    secret: String,
    _upstream: tokio::runtime::Runtime,
}

fn setup(env: &[(&str, &str)]) -> Setup {
    let dir = temp_dir("dpop");
    let valet_port = free_port();
    let mut command = valet(&dir);
    command.envs(env.iter().copied());
    command.args(["serve", "--bind", &format!("127.0.0.1:{valet_port}")]);
    let valet_server = Server::start(command, valet_port, dir.join("serve.log"));
    let (id, secret) = create_service_client(&dir, &[]);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let upstream_port = listener.local_addr().unwrap().port();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let hits = Arc::clone(&hits);
        async move {
            hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let subject = headers
                .get("x-valet-subject")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            axum::Json(serde_json::json!({ "hello": subject }))
        }
    });
    runtime.spawn(async move { axum::serve(listener, app).await });

    let proxy_port = free_port();
    let mut command = valet(&dir);
    command.args([
        "guard",
        "--issuer",
        &format!("http://127.0.0.1:{valet_port}"),
        "--audience",
        AUDIENCE,
        "--upstream",
        &format!("http://127.0.0.1:{upstream_port}"),
        "--bind",
        &format!("127.0.0.1:{proxy_port}"),
        "--resource",
        &format!("http://127.0.0.1:{proxy_port}"),
        "--scope-supported",
        "read",
        "--require-scope",
        "read",
    ]);
    let proxy = Server::start_unready(command, proxy_port, dir.join("guard.log"));
    eventually("the guard is ready", || {
        http(proxy_port, "GET", "/.well-known/valet-guard/ready", &[], "")
            .is_ok_and(|reply| reply.status == 200)
    });
    Setup {
        valet: valet_server,
        proxy,
        id,
        secret,
        _upstream: runtime,
    }
}

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
            "python3 with jwcrypto not found (pip install jwcrypto); the Python DPoP client did not run",
        );
    }
    found
}

/// A DPoP client written with jwcrypto and the standard library only: a P-256 key,
/// a proof for the token request, then proofs (with `ath`) for the API; each step's
/// status, headers and body as one JSON line.
const PYTHON_CLIENT: &str = r#"
import base64, hashlib, json, sys, time, urllib.request, urllib.error, uuid
from jwcrypto import jwk, jwt

issuer, api, client_id, secret = sys.argv[1:5]
key = jwk.JWK.generate(kty="EC", crv="P-256")
public = json.loads(key.export_public())

def proof(method, url, token=None, nonce=None):
    claims = {"jti": str(uuid.uuid4()), "htm": method, "htu": url, "iat": int(time.time())}
    if token:
        claims["ath"] = base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()
    if nonce:
        claims["nonce"] = nonce
    t = jwt.JWT(header={"typ": "dpop+jwt", "alg": "ES256", "jwk": public}, claims=claims)
    t.make_signed_token(key)
    return t.serialize()

def call(method, url, headers, body=None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request) as reply:
            return {"status": reply.status, "headers": dict(reply.headers), "body": reply.read().decode()}
    except urllib.error.HTTPError as error:
        return {"status": error.code, "headers": dict(error.headers), "body": error.read().decode()}

basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
form = b"grant_type=client_credentials&scope=read"
headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"}
got = call("POST", f"{issuer}/token", dict(headers, DPoP=proof("POST", f"{issuer}/token")), form)
if got["status"] == 400 and "use_dpop_nonce" in got["body"]:
    nonce = got["headers"].get("DPoP-Nonce") or got["headers"].get("dpop-nonce")
    got = call("POST", f"{issuer}/token", dict(headers, DPoP=proof("POST", f"{issuer}/token", nonce=nonce)), form)
print(json.dumps({"step": "token", **got}))
tokens = json.loads(got["body"])
token = tokens["access_token"]
jkt = key.thumbprint()

url = f"{api}/orders?page=1"
good = proof("GET", f"{api}/orders", token)
print(json.dumps({"step": "dpop", "jkt": jkt, **call("GET", url, {"Authorization": f"DPoP {token}", "DPoP": good})}))
print(json.dumps({"step": "replay", **call("GET", url, {"Authorization": f"DPoP {token}", "DPoP": good})}))
print(json.dumps({"step": "bearer", **call("GET", url, {"Authorization": f"Bearer {token}"})}))
other = proof("POST", f"{api}/orders", token)
print(json.dumps({"step": "wrong_method", **call("GET", url, {"Authorization": f"DPoP {token}", "DPoP": other})}))
"#;

fn python_steps(s: &Setup) -> std::collections::HashMap<String, serde_json::Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            PYTHON_CLIENT,
            &format!("http://127.0.0.1:{}", s.valet.port),
            &format!("http://127.0.0.1:{}", s.proxy.port),
            &s.id,
            &s.secret,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python client failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.proxy.log_text()
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let step: serde_json::Value = serde_json::from_str(line).unwrap();
            (step["step"].as_str().unwrap().to_owned(), step)
        })
        .collect()
}

fn header<'a>(step: &'a serde_json::Value, name: &str) -> &'a str {
    step["headers"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
        .unwrap_or_default()
}

#[test]
fn a_python_dpop_client_gets_a_bound_token_and_calls_the_guard() {
    if !jwcrypto_available() {
        return;
    }
    let s = setup(&[]);
    let steps = python_steps(&s);
    let token = &steps["token"];
    assert_eq!(token["status"], 200, "{token}");
    let body: serde_json::Value = serde_json::from_str(token["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["token_type"], "DPoP");

    let dpop = &steps["dpop"];
    assert_eq!(dpop["status"], 200, "{dpop}\n{}", s.proxy.log_text());
    let answer: serde_json::Value = serde_json::from_str(dpop["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["hello"], s.id.as_str());
    // Valet bound the token to the key jwcrypto computed the thumbprint of.
    let introspected = s
        .valet
        .introspect(&s.id, &s.secret, body["access_token"].as_str().unwrap());
    assert_eq!(introspected["cnf"]["jkt"], dpop["jkt"]);

    for refused in ["replay", "bearer", "wrong_method"] {
        let step = &steps[refused];
        assert_eq!(step["status"], 401, "{refused}: {step}");
        let challenge = header(step, "www-authenticate");
        assert!(challenge.starts_with("DPoP "), "{refused}: {challenge}");
        assert!(
            challenge.contains(&format!(
                "resource_metadata=\"http://127.0.0.1:{}/.well-known/oauth-protected-resource\"",
                s.proxy.port
            )),
            "{refused}: {challenge}"
        );
    }
}

#[test]
fn the_python_client_follows_a_required_nonce() {
    if !jwcrypto_available() {
        return;
    }
    let s = setup(&[("VALET_DPOP_REQUIRE_NONCE", "true")]);
    let steps = python_steps(&s);
    assert_eq!(steps["token"]["status"], 200, "{}", steps["token"]);
    assert!(!header(&steps["token"], "dpop-nonce").is_empty());
    assert_eq!(steps["dpop"]["status"], 200, "{}", steps["dpop"]);
}

#[test]
fn the_guard_serves_protected_resource_metadata() {
    let s = setup(&[]);
    let reply = s.proxy.get("/.well-known/oauth-protected-resource");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let document = reply.json();
    assert_eq!(
        document["resource"],
        format!("http://127.0.0.1:{}", s.proxy.port)
    );
    assert_eq!(
        document["authorization_servers"],
        serde_json::json!([format!("http://127.0.0.1:{}", s.valet.port)])
    );
    assert_eq!(document["scopes_supported"], serde_json::json!(["read"]));
    assert_eq!(
        document["dpop_signing_alg_values_supported"],
        serde_json::json!(["ES256", "RS256", "EdDSA"])
    );
    // A request without a token is told where the metadata is.
    let missing = s.proxy.get("/orders");
    assert_eq!(missing.status, 401);
    assert!(
        missing
            .header("www-authenticate")
            .unwrap()
            .contains("resource_metadata="),
        "{:?}",
        missing.headers
    );
}

/// openid-client 6: discovery, a DPoP handle, client_credentials with DPoP, then
/// `fetchProtectedResource` through the guard with the same handle.
const NODE_CLIENT: &str = r#"
import * as client from 'openid-client';
// The last four: `node -e` puts no script path in argv.
const [issuer, api, clientId, secret] = process.argv.slice(-4);
const config = await client.discovery(new URL(issuer), clientId, secret, undefined, {
  execute: [client.allowInsecureRequests],
});
const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
const tokens = await client.clientCredentialsGrant(config, { scope: 'read' }, { DPoP });
const response = await client.fetchProtectedResource(
  config, tokens.access_token, new URL(`${api}/orders`), 'GET', undefined, undefined, { DPoP });
console.log(JSON.stringify({
  token_type: tokens.token_type,
  status: response.status,
  body: await response.text(),
  advertised: config.serverMetadata().dpop_signing_alg_values_supported,
}));
"#;

fn run_openid_client(s: &Setup) -> serde_json::Value {
    let out = run_node_script(
        NODE_CLIENT,
        &[
            &format!("http://127.0.0.1:{}", s.valet.port),
            &format!("http://127.0.0.1:{}", s.proxy.port),
            &s.id,
            &s.secret,
        ],
    );
    assert!(
        out.status.success(),
        "openid-client failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.valet.log_text()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn openid_client_uses_dpop_for_client_credentials_and_the_api() {
    if !node_package_available("openid-client", "the openid-client DPoP test") {
        return;
    }
    let s = setup(&[]);
    let result = run_openid_client(&s);
    assert_eq!(
        result["token_type"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("dpop"),
        "{result}"
    );
    assert_eq!(result["status"], 200, "{result}\n{}", s.proxy.log_text());
    assert_eq!(
        result["advertised"],
        serde_json::json!(["ES256", "RS256", "EdDSA"])
    );
}

#[test]
fn openid_client_follows_required_nonces() {
    if !node_package_available("openid-client", "the openid-client DPoP nonce test") {
        return;
    }
    let s = setup(&[("VALET_DPOP_REQUIRE_NONCE", "true")]);
    let result = run_openid_client(&s);
    assert_eq!(result["status"], 200, "{result}\n{}", s.valet.log_text());
}
