//! The admin API's OpenAPI 3.1 document: served without a token, equal to
//! the checked-in `docs/openapi.json`, describing every route, and valid for
//! an independent validator (python `openapi-spec-validator`).
//!
//! After changing the API, regenerate the checked-in document with
//! `VALET_UPDATE_OPENAPI=1 cargo test -p valet-server --test api -- admin_api_openapi`.

use std::path::PathBuf;
use std::process::Command;

use axum::http::StatusCode;
use serde_json::Value;
use valet_server::admin_api_openapi as document_json;

use valet_test_support::api::*;

fn checked_in() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[tokio::test]
async fn the_served_document_is_the_checked_in_one() {
    let app = TestApp::new().await;
    let reply = app.get("/admin/v1/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let generated = document_json();
    assert_eq!(reply.text(), generated);
    if std::env::var_os("VALET_UPDATE_OPENAPI").is_some() {
        std::fs::write(checked_in(), &generated).unwrap();
    }
    let stored = std::fs::read_to_string(checked_in()).unwrap_or_default();
    assert!(
        stored == generated,
        "docs/openapi.json is not the document the API serves; regenerate it with \
         VALET_UPDATE_OPENAPI=1 cargo test -p valet-server --test api -- admin_api_openapi"
    );
}

#[test]
fn the_document_describes_every_route_with_its_security() {
    let document: Value = serde_json::from_str(&document_json()).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/clients", &["get", "post"][..]),
        ("/clients/{client_id}", &["get", "patch", "delete"]),
        ("/clients/{client_id}/secret", &["post"]),
        ("/users", &["get", "post"]),
        ("/users/{user}", &["get", "patch", "delete"]),
        ("/users/{user}/disable", &["post"]),
        ("/users/{user}/enable", &["post"]),
        ("/users/{user}/unlock", &["post"]),
        ("/users/{user}/mfa/reset", &["post"]),
        ("/users/{user}/sessions", &["get", "delete"]),
        ("/keys", &["get"]),
        ("/keys/rotate", &["post"]),
        ("/keys/import", &["post"]),
        ("/keys/{kid}/retire", &["post"]),
        ("/grants", &["get", "delete"]),
        ("/grants/{grant_id}", &["delete"]),
        ("/audit", &["get"]),
    ] {
        for method in methods {
            let operation = &paths[path][method];
            assert!(operation.is_object(), "{method} {path} is missing");
            assert!(
                operation["responses"]["401"].is_object(),
                "{method} {path}: 401"
            );
        }
    }
    assert_eq!(
        document["security"][0]["access_token"],
        serde_json::json!([])
    );
    assert_eq!(
        document["components"]["securitySchemes"]["access_token"]["scheme"],
        "bearer"
    );
}

#[test]
fn an_independent_validator_accepts_the_document() {
    let has_validator = Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !has_validator {
        assert!(
            std::env::var_os("VALET_REQUIRE_OPENAPI_VALIDATOR").is_none(),
            "VALET_REQUIRE_OPENAPI_VALIDATOR is set but python3 cannot import openapi_spec_validator \
             (python3 -m pip install openapi-spec-validator)"
        );
        println!(
            "SKIPPED: an_independent_validator_accepts_the_document: python3 openapi-spec-validator \
             is not installed (python3 -m pip install openapi-spec-validator)"
        );
        return;
    }
    let path = temp_dir("openapi").join("openapi.json");
    std::fs::write(&path, document_json()).unwrap();
    let output = Command::new("python3")
        .args([
            "-c",
            "import sys, json\n\
             from openapi_spec_validator import validate\n\
             from openapi_spec_validator.validation import OpenAPIV31SpecValidator\n\
             spec = json.load(open(sys.argv[1]))\n\
             validate(spec, cls=OpenAPIV31SpecValidator)\n\
             print('valid')",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openapi-spec-validator refused the document: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A broken document is refused: the validator really looks.
    let mut broken: Value = serde_json::from_str(&document_json()).unwrap();
    broken["paths"]["/keys"]["get"]["responses"] = Value::from("not responses");
    std::fs::write(&path, broken.to_string()).unwrap();
    let output = Command::new("python3")
        .args([
            "-c",
            "import sys, json\n\
             from openapi_spec_validator import validate\n\
             validate(json.load(open(sys.argv[1])))",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "a broken document must be refused"
    );
}
