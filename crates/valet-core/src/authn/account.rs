//! The account page's sign-in: the same steps as an authorization request
//! (password, then a second factor when one is enrolled or required), run for
//! a built-in first-party client that is never stored.
//!
//! `GET /account` without a live session starts a pending request for
//! [`ACCOUNT_CLIENT_ID`]: consent is skipped (the page is Valet's own), and
//! where the issue step would create a grant and a code for a client, the
//! interaction is completed and the browser is sent back to `/account` with
//! its new session cookie. No grant, code or token is ever issued to this
//! client: the pipeline stops before the issue step. Its id holds a colon,
//! which no registered client id (base64url) has, so `/authorize` never finds
//! it and a form cannot name it except through a request made here.

use std::sync::Arc;

use valet_protocol::authorize::{Prompt, ResponseMode};
use valet_protocol::token::GrantType;

use super::pending::{self, PendingAuthorization, Stage};
use crate::AuthorizationServer;
use crate::authorize::AuthorizationResponse;
use crate::endpoint::metadata::paths;
use crate::store::Client;

/// The built-in client the account page signs in through.
pub const ACCOUNT_CLIENT_ID: &str = "valet:account";

/// Whether `client_id` is the account page's built-in client.
pub fn is_account(client_id: &str) -> bool {
    client_id == ACCOUNT_CLIENT_ID
}

/// The account page's URL.
pub fn account_url(server: &AuthorizationServer) -> String {
    format!("{}{}", server.settings.issuer, paths::ACCOUNT)
}

/// The web console's URL: its sign-in runs through the same built-in client
/// and ends there instead of on the account page.
pub fn console_url(server: &AuthorizationServer) -> String {
    format!("{}{}", server.settings.issuer, paths::CONSOLE)
}

/// How recent a sign-in must be for changes at the console: an older session
/// may still read its pages, but a change asks for the password (and second
/// factor) again, as OIDC Core §3.1.2.1 `max_age` would.
pub const CONSOLE_MAX_AGE: i64 = 15 * 60;

/// Which of Valet's own pages a sign-in through the built-in client ends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landing {
    Account,
    Console,
}

impl Landing {
    fn url(self, server: &AuthorizationServer) -> String {
        match self {
            Self::Account => account_url(server),
            Self::Console => console_url(server),
        }
    }
}

/// The built-in client: first-party (no consent), no secret, no scopes beyond
/// `openid`, its only redirect the account page. The `mfa` setting applies
/// to it as to every client.
pub(crate) fn client(server: &AuthorizationServer) -> Arc<Client> {
    Arc::new(Client {
        client_id: ACCOUNT_CLIENT_ID.to_owned(),
        name: "your account".to_owned(),
        token_endpoint_auth_methods: Vec::new(),
        secret_hash: None,
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        introspect_any: false,
        dpop_bound_access_tokens: false,
        jwks: None,
        jwks_uri: None,
        token_exchange_audiences: Vec::new(),
        registration_token_hash: None,
        metadata_expires_at: None,
        sealed_secret: None,
        id_token_encryption: None,
        userinfo_signed_response_alg: None,
        userinfo_encryption: None,
        redirect_uris: vec![account_url(server), console_url(server)],
        post_logout_redirect_uris: Vec::new(),
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: vec!["openid".to_owned()],
        audiences: Vec::new(),
        access_token_ttl: None,
        skip_consent: true,
        require_mfa: false,
        require_pushed_authorization_requests: false,
        allowed_origins: Vec::new(),
        refresh_grace_seconds: 0,
        id_token_signed_response_alg: None,
        created_at: 0,
        updated_at: 0,
    })
}

/// A pending request to sign in to the account page (or the console, by
/// `landing`), bound to `csrf`.
pub(crate) fn request(
    server: &AuthorizationServer,
    csrf: &str,
    landing: Landing,
) -> PendingAuthorization {
    PendingAuthorization {
        client_id: ACCOUNT_CLIENT_ID.to_owned(),
        redirect_uri: landing.url(server),
        redirect_uri_given: false,
        scope: vec!["openid".to_owned()],
        state: None,
        nonce: None,
        code_challenge: String::new(),
        response_mode: ResponseMode::Query,
        prompt: Prompt::default(),
        max_age: (landing == Landing::Console).then_some(CONSOLE_MAX_AGE),
        login_hint: None,
        resources: Vec::new(),
        mfa_requested: false,
        dpop_jkt: None,
        csrf_hash: pending::csrf_hash(csrf),
        stage: Stage::AwaitingLogin,
        device: None,
    }
}

/// Where the browser goes once signed in: the page the request named (kept
/// in the interaction, never taken from the browser), else the account page;
/// nothing attached.
pub(crate) fn back_to_account(
    server: &AuthorizationServer,
    request: &PendingAuthorization,
) -> AuthorizationResponse {
    let console = console_url(server);
    let redirect_uri = if request.redirect_uri == console {
        console
    } else {
        account_url(server)
    };
    AuthorizationResponse {
        redirect_uri,
        mode: ResponseMode::Query,
        params: Vec::new(),
    }
}
