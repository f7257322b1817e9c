//! The token endpoint's request parsing in valet-protocol: a form body and an optional
//! `Authorization` header value into `ClientAuthentication` and `TokenRequest` (and the
//! introspection and revocation requests, which share the form rules).
//!
//! Input: `AUTHORIZATION\nBODY`; an empty first line means no header, and input without a
//! newline is a body alone. (The `Content-Type` check is valet-server's axum extractor and
//! not fuzzed here: it only compares the media type before `;`.)
//!
//! Beyond "no panic":
//! - a parsed request holds exactly the form's values: the `grant_type` it names, `code`,
//!   `refresh_token`, `redirect_uri`, the `resource` list; a `code_verifier` is RFC 7636
//!   §4.1 syntax; no `resource` has a fragment; a scope prints and parses back to itself;
//! - client credentials: a header always gives `Basic` with a non-empty id and secret,
//!   which re-encoded (RFC 6749 §2.3.1: form-encoded, then base64) read back the same;
//!   without a header, `Post`/`None`/`Absent` follow the body's `client_id` and
//!   `client_secret`.

#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use valet_protocol::pkce::is_code_verifier;
use valet_protocol::token::{
    ClientAuthentication, GrantType, IntrospectionRequest, RevocationRequest, TokenRequest,
};
use valet_protocol::{Form, Scope, encode_component};

fuzz_target!(|data: &[u8]| {
    let (authorization, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (Some(&data[..at]).filter(|h| !h.is_empty()), &data[at + 1..]),
        None => (None, data),
    };
    let form = Form::parse(body);

    check_client_authentication(authorization, &form);
    check_token_request(&form);
    let _ = IntrospectionRequest::from_form(&form);
    let _ = RevocationRequest::from_form(&form);
});

fn check_client_authentication(authorization: Option<&[u8]>, form: &Form) {
    let Ok(credentials) = ClientAuthentication::from_request(authorization, form) else {
        return;
    };
    let body_id = form.optional("client_id").expect("read by from_request");
    let body_secret = form
        .optional("client_secret")
        .expect("read by from_request");
    match (&credentials, authorization) {
        (ClientAuthentication::Basic { client_id, secret }, Some(_)) => {
            assert!(!client_id.is_empty() && !secret.expose().is_empty());
            assert!(body_secret.is_none());
            assert!(body_id.is_none_or(|id| id == client_id));
            let header = format!(
                "Basic {}",
                STANDARD.encode(format!(
                    "{}:{}",
                    encode_component(client_id),
                    encode_component(secret.expose())
                ))
            );
            assert_eq!(
                ClientAuthentication::from_request(Some(header.as_bytes()), &Form::default()),
                Ok(credentials.clone()),
                "Basic credentials do not survive re-encoding"
            );
        }
        (ClientAuthentication::Post { client_id, secret }, None) => {
            assert_eq!(Some(client_id.as_str()), body_id);
            assert_eq!(Some(secret.expose()), body_secret);
        }
        (ClientAuthentication::None { client_id }, None) => {
            assert_eq!(Some(client_id.as_str()), body_id);
            assert!(body_secret.is_none());
        }
        (ClientAuthentication::Absent, None) => assert!(body_id.is_none()),
        (credentials, authorization) => {
            panic!("{credentials:?} from header {authorization:?}")
        }
    }
    assert_eq!(credentials.used_basic(), authorization.is_some());
}

fn check_token_request(form: &Form) {
    let Ok(request) = TokenRequest::from_form(form) else {
        return;
    };
    assert_eq!(
        GrantType::parse(form.required("grant_type").expect("parsed")),
        Some(request.grant_type())
    );
    let value = |name| form.optional(name).expect("single-valued");
    match &request {
        TokenRequest::ClientCredentials { scope, resources } => {
            check_scope(scope.as_ref(), value("scope"));
            assert!(resources.iter().map(String::as_str).eq(form.all("resource")));
            assert!(resources.iter().all(|resource| !resource.contains('#')));
        }
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            assert_eq!(Some(code.expose()), value("code"));
            assert_eq!(redirect_uri.as_deref(), value("redirect_uri"));
            assert_eq!(Some(code_verifier.expose()), value("code_verifier"));
            assert!(is_code_verifier(code_verifier.expose()));
        }
        TokenRequest::RefreshToken {
            refresh_token,
            scope,
        } => {
            assert_eq!(Some(refresh_token.expose()), value("refresh_token"));
            check_scope(scope.as_ref(), value("scope"));
        }
    }
}

/// A parsed scope is the set of the text's space-separated tokens and prints back to
/// itself.
fn check_scope(scope: Option<&Scope>, text: Option<&str>) {
    match (scope, text) {
        (Some(scope), Some(text)) => {
            assert_eq!(Scope::parse(&scope.to_string()).as_ref(), Ok(scope));
            let mut tokens: Vec<&str> = text.split(' ').filter(|t| !t.is_empty()).collect();
            tokens.sort_unstable();
            tokens.dedup();
            assert!(scope.iter().eq(tokens));
        }
        (None, None) => {}
        (scope, text) => panic!("scope {scope:?} from {text:?}"),
    }
}
