//! The authorization endpoint's request parsing in valet-protocol (a query string or form
//! body into `ClientAndRedirect` and `AuthorizationParameters`), and the redirect back
//! that valet-core builds from it (`AuthorizationResponse::location`).
//!
//! Input: the query string, as bytes.
//!
//! Beyond "no panic":
//! - a parsed request is what OAuth 2.1 allows: `response_type=code`, an S256
//!   `code_challenge` of 43 base64url characters, `max_age` not negative, `prompt=none`
//!   alone, no `resource` with a fragment, a scope that prints and parses back to itself;
//! - the lenient readers used for error responses agree with the strict parse:
//!   `state_of` and `response_mode_of` give the parsed `state` and `response_mode`;
//! - the redirect carries `code`, `state` and `iss` back exactly: its query, read as a
//!   form, gives the registered URI's own parameters then those three, unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use url::form_urlencoded;
use valet_core::authorize::AuthorizationResponse;
use valet_protocol::authorize::{
    AuthorizationParameters, ClientAndRedirect, response_mode_of, state_of,
};
use valet_protocol::{Form, Scope};

const ISSUER: &str = "https://id.example";
const REGISTERED: &str = "https://app.example/cb?tenant=a%20b";

fuzz_target!(|data: &[u8]| {
    let form = Form::parse(data);
    let value = |name| form.optional(name);

    if let Ok(client) = ClientAndRedirect::from_form(&form) {
        assert_eq!(value("client_id"), Ok(Some(client.client_id.as_str())));
        assert_eq!(value("redirect_uri"), Ok(client.redirect_uri.as_deref()));
    }

    let state = state_of(&form);
    let mode = response_mode_of(&form);
    if let Ok(Some(sent)) = value("state") {
        assert_eq!(state.as_deref(), Some(sent));
    }
    let Ok(params) = AuthorizationParameters::from_form(&form) else {
        check_redirect(state.as_deref());
        return;
    };
    assert_eq!(params.state, state);
    assert_eq!(params.response_mode, mode);
    assert_eq!(value("response_type"), Ok(Some("code")));
    assert_eq!(value("code_challenge_method"), Ok(Some("S256")));
    assert_eq!(params.code_challenge.len(), 43);
    assert!(
        params
            .code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert!(params.max_age.is_none_or(|age| age >= 0));
    assert!(!(params.prompt.none && (params.prompt.login || params.prompt.consent)));
    assert!(params.resources.iter().map(String::as_str).eq(form.all("resource")));
    assert!(params.resources.iter().all(|r| !r.contains('#')));
    assert_eq!(
        Scope::parse(&params.scope.to_string()),
        Ok(params.scope.clone())
    );
    assert_eq!(params.nonce.as_deref(), value("nonce").expect("parsed"));
    assert_eq!(
        params.login_hint.as_deref(),
        value("login_hint").expect("parsed")
    );
    check_redirect(params.state.as_deref());
});

/// The query of the redirect: the registered URI's parameters, then `code`, `state` (if
/// sent) and `iss`, each decoding to exactly what was put in.
fn check_redirect(state: Option<&str>) {
    let code = state.unwrap_or("c0de");
    let response = AuthorizationResponse::code(
        REGISTERED,
        valet_protocol::authorize::ResponseMode::Query,
        code.to_owned(),
        state,
        ISSUER,
    );
    let location = response.location();
    let query = location
        .strip_prefix("https://app.example/cb?")
        .expect("the redirect starts with the registered URI");
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let mut expected = vec![
        ("tenant".to_owned(), "a b".to_owned()),
        ("code".to_owned(), code.to_owned()),
    ];
    if let Some(state) = state {
        expected.push(("state".to_owned(), state.to_owned()));
    }
    expected.push(("iss".to_owned(), ISSUER.to_owned()));
    assert_eq!(pairs, expected);
    assert!(!location.contains('#'));
}
