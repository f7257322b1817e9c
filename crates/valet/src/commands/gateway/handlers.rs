//! The gateway's own endpoints under `/bff/`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, COOKIE, HeaderName, LOCATION, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use valet_jose::{b64url, b64url_decode, constant_time_eq, random_bytes, sha256};

use super::oidc::{TokenError, Tokens, form};
use super::session::{Session, new_session_id, tag};
use super::{Gateway, now};

/// The session cookie: `__Host-` (Secure, Path=/, no Domain: RFC 6265bis §4.1.3.2).
pub const SESSION_COOKIE: &str = "__Host-valet-gateway";
/// The sealed state of a sign-in under way.
const LOGIN_COOKIE: &str = "__Host-valet-gateway-login";
/// How long a sign-in may take.
const LOGIN_TTL: i64 = 600;
/// The header state-changing requests must carry.
pub const CSRF_HEADER: HeaderName = HeaderName::from_static("x-valet-csrf");

/// What the login cookie carries to the callback.
#[derive(Serialize, Deserialize)]
struct PendingLogin {
    state: String,
    nonce: String,
    verifier: String,
    return_to: String,
    expires_at: i64,
}

pub async fn health() -> Response {
    no_store(Json(json!({ "status": "ok" })).into_response())
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(rename = "returnTo")]
    return_to: Option<String>,
}

/// Starts a sign-in: a fresh state, nonce and PKCE verifier (RFC 7636) in a
/// sealed cookie, and a redirect to the authorization endpoint.
pub async fn login(
    State(gateway): State<Arc<Gateway>>,
    Query(query): Query<LoginQuery>,
) -> Response {
    let provider = match gateway.provider().await {
        Ok(provider) => provider,
        Err(error) => return unavailable(&error),
    };
    let (Ok(state), Ok(nonce), Ok(verifier)) = (
        random_bytes::<32>(),
        random_bytes::<32>(),
        random_bytes::<32>(),
    ) else {
        return unavailable("no randomness");
    };
    let pending = PendingLogin {
        state: b64url(state),
        nonce: b64url(nonce),
        verifier: b64url(verifier),
        return_to: local_path(query.return_to.as_deref()),
        expires_at: now() + LOGIN_TTL,
    };
    let sealed = serde_json::to_vec(&pending)
        .ok()
        .and_then(|json| gateway.login_key.seal(LOGIN_COOKIE.as_bytes(), &json).ok());
    let Some(sealed) = sealed else {
        return unavailable("cannot seal the login state");
    };
    let challenge = b64url(sha256(pending.verifier.as_bytes()));
    let location = format!(
        "{}?{}",
        provider.metadata.authorization_endpoint,
        form(&[
            ("response_type", "code"),
            ("client_id", &gateway.client_id),
            ("redirect_uri", &gateway.redirect_uri),
            ("scope", &gateway.scope),
            ("state", &pending.state),
            ("nonce", &pending.nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
    );
    let mut response = redirect(&location);
    set_cookie(&mut response, LOGIN_COOKIE, &b64url(sealed), LOGIN_TTL);
    response
}

/// Only a path on this gateway (`/…`, not `//host` or `/\host`): never an open redirect.
fn local_path(return_to: Option<&str>) -> String {
    match return_to {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// The authorization response (RFC 6749 §4.1.2, RFC 9207): checked against the
/// login cookie, the code redeemed and the ID token verified, then the session starts.
pub async fn callback(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(pending) = pending_login(&gateway, &headers) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "no sign-in is under way in this browser (or it took too long)",
        );
    };
    let state = query.get("state").map_or("", String::as_str);
    if !constant_time_eq(state.as_bytes(), pending.state.as_bytes()) {
        return refused(
            StatusCode::BAD_REQUEST,
            "state does not match this browser's sign-in",
        );
    }
    let provider = match gateway.provider().await {
        Ok(provider) => provider,
        Err(error) => return unavailable(&error),
    };
    match query.get("iss") {
        Some(iss) if *iss != provider.metadata.issuer => {
            return refused(
                StatusCode::BAD_REQUEST,
                "iss is not the issuer (RFC 9207): mix-up refused",
            );
        }
        None if provider
            .metadata
            .authorization_response_iss_parameter_supported =>
        {
            return refused(
                StatusCode::BAD_REQUEST,
                "the response has no iss (RFC 9207)",
            );
        }
        _ => {}
    }
    if let Some(error) = query.get("error") {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return refused(
            StatusCode::FORBIDDEN,
            &format!("the issuer answered {error}"),
        );
    }
    let Some(code) = query.get("code") else {
        return refused(StatusCode::BAD_REQUEST, "the response has no code");
    };
    let tokens = match provider
        .redeem_code(code, &pending.verifier, &gateway.redirect_uri)
        .await
    {
        Ok(tokens) => tokens,
        Err(TokenError::Refused(error)) => {
            tracing::warn!(%error, "the issuer refused the code");
            return refused(StatusCode::FORBIDDEN, "the issuer refused the code");
        }
        Err(TokenError::Unavailable(error)) => return unavailable(&error),
    };
    let Some(id_token) = tokens.id_token.clone() else {
        return refused(
            StatusCode::BAD_GATEWAY,
            "the token response has no ID token",
        );
    };
    let claims = match provider
        .verify_id_token(&id_token, &pending.nonce, now())
        .await
    {
        Ok(claims) => claims,
        Err(error) => {
            tracing::warn!(%error, "ID token refused");
            return refused(StatusCode::BAD_GATEWAY, "the ID token did not verify");
        }
    };
    let session = Session::from_tokens(claims, id_token, tokens, now());
    start_session(&gateway, &session, &pending.return_to).await
}

async fn start_session(gateway: &Gateway, session: &Session, return_to: &str) -> Response {
    let Ok(session_id) = new_session_id() else {
        return unavailable("no randomness");
    };
    if let Err(error) = gateway.sessions.save(&session_id, session).await {
        return unavailable(&error);
    }
    let mut response = redirect(return_to);
    let ttl = i64::try_from(gateway.session_ttl.as_secs()).unwrap_or(i64::MAX);
    set_cookie(&mut response, SESSION_COOKIE, &session_id, ttl);
    set_cookie(&mut response, LOGIN_COOKIE, "", 0);
    response
}

impl Session {
    /// A session from a token response; the access token is refreshed a quarter
    /// of its lifetime (at most 30 s) before it expires.
    pub fn from_tokens(
        claims: serde_json::Map<String, Value>,
        id_token: String,
        tokens: Tokens,
        now: i64,
    ) -> Session {
        let mut session = Session {
            claims,
            id_token,
            access_token: String::new(),
            refresh_token: None,
            refresh_at: now,
            expires_at: now,
        };
        session.take_tokens(tokens, now);
        session
    }

    /// Keeps a (refreshed) token response: the new access token, the rotated
    /// refresh token (or the old one if none came), and the new times.
    pub fn take_tokens(&mut self, tokens: Tokens, now: i64) {
        let lifetime = tokens.expires_in.unwrap_or(300).max(1);
        self.access_token = tokens.access_token;
        if tokens.refresh_token.is_some() {
            self.refresh_token = tokens.refresh_token;
        }
        self.expires_at = now + lifetime;
        self.refresh_at = self.expires_at - (lifetime / 4).min(30);
    }
}

fn pending_login(gateway: &Gateway, headers: &HeaderMap) -> Option<PendingLogin> {
    let sealed = b64url_decode(cookie(headers, LOGIN_COOKIE)?).ok()?;
    let json = gateway
        .login_key
        .open(LOGIN_COOKIE.as_bytes(), &sealed)
        .ok()?;
    let pending: PendingLogin = serde_json::from_slice(&json).ok()?;
    (pending.expires_at > now()).then_some(pending)
}

/// The signed-in user's ID token claims.
pub async fn user(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    match current_session(&gateway, &headers).await {
        Ok(Some((_, session))) => {
            no_store(Json(Value::Object(session.claims.clone())).into_response())
        }
        Ok(None) => not_signed_in(),
        Err(error) => unavailable(&error),
    }
}

/// The session the request's cookie names, with its id.
pub async fn current_session(
    gateway: &Gateway,
    headers: &HeaderMap,
) -> Result<Option<(String, Arc<Session>)>, String> {
    let Some(session_id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(gateway
        .sessions
        .load(session_id)
        .await?
        .map(|session| (session_id.to_owned(), session)))
}

/// Ends the session here and revokes its refresh token; answers the URL of
/// Valet's end-session endpoint (OIDC RP-Initiated Logout 1.0 §2) for the
/// browser to visit, so the sign-in at Valet ends too.
pub async fn logout(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if let Err(reason) = check_csrf(&gateway, &headers) {
        return refused(StatusCode::FORBIDDEN, reason);
    }
    let session = match current_session(&gateway, &headers).await {
        Ok(session) => session,
        Err(error) => return unavailable(&error),
    };
    let mut logout_url = Value::Null;
    if let Some((session_id, session)) = session {
        if let Err(error) = gateway.sessions.delete(&session_id).await {
            return unavailable(&error);
        }
        if let Ok(provider) = gateway.provider().await {
            if let Some(refresh_token) = &session.refresh_token {
                provider.revoke(refresh_token).await;
            }
            if let Some(endpoint) = &provider.metadata.end_session_endpoint {
                logout_url = Value::String(format!(
                    "{endpoint}?{}",
                    form(&[
                        ("id_token_hint", &session.id_token),
                        ("client_id", &gateway.client_id),
                        (
                            "post_logout_redirect_uri",
                            &gateway.post_logout_redirect_uri
                        ),
                    ])
                ));
            }
        }
    }
    let mut response = no_store(Json(json!({ "logout_url": logout_url })).into_response());
    set_cookie(&mut response, SESSION_COOKIE, "", 0);
    response
}

#[derive(Deserialize)]
pub struct LogoutToken {
    logout_token: String,
}

/// OIDC Back-Channel Logout 1.0 §2.5-2.8: a logout token from the issuer ends
/// the sessions of its `sid`, or of its `sub` when it names no `sid`.
pub async fn backchannel_logout(
    State(gateway): State<Arc<Gateway>>,
    Form(form): Form<LogoutToken>,
) -> Response {
    let provider = match gateway.provider().await {
        Ok(provider) => provider,
        Err(error) => return unavailable(&error),
    };
    let (sub, sid) = match provider
        .verify_logout_token(&form.logout_token, now())
        .await
    {
        Ok(named) => named,
        Err(error) => {
            tracing::warn!(%error, "logout token refused");
            let body = json!({ "error": "invalid_request", "error_description": "the logout token did not verify" });
            return no_store((StatusCode::BAD_REQUEST, Json(body)).into_response());
        }
    };
    let found = match (sid, sub) {
        (Some(sid), _) => tag("sid", &sid),
        (None, Some(sub)) => tag("sub", &sub),
        (None, None) => return refused(StatusCode::BAD_REQUEST, "names neither sub nor sid"),
    };
    match gateway.sessions.delete_tagged(&found).await {
        Ok(ended) => {
            tracing::info!(ended, "back-channel logout");
            no_store(StatusCode::OK.into_response())
        }
        Err(error) => unavailable(&error),
    }
}

/// The CSRF rule of state-changing requests (see the module documentation).
pub fn check_csrf(gateway: &Gateway, headers: &HeaderMap) -> Result<(), &'static str> {
    if headers.get(&CSRF_HEADER).map(HeaderValue::as_bytes) != Some(b"1") {
        return Err("a state-changing request needs the X-Valet-CSRF: 1 header");
    }
    let fetch_site = headers.get("sec-fetch-site").map(HeaderValue::as_bytes);
    if fetch_site.is_some_and(|site| site != b"same-origin") {
        return Err("cross-site request refused");
    }
    match headers.get(ORIGIN) {
        Some(origin) if origin.as_bytes() == gateway.public_origin.as_bytes() => Ok(()),
        Some(_) => Err("cross-origin request refused"),
        None if fetch_site.is_some() => Ok(()),
        None => Err("a state-changing request needs an Origin header"),
    }
}

/// A cookie's value from the request (the first of that name).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// `__Host-` cookies: Secure, Path=/, no Domain; HttpOnly and SameSite=Lax
/// (sent on the top-level redirect back from Valet). `max_age` 0 deletes.
fn set_cookie(response: &mut Response, name: &str, value: &str, max_age: i64) {
    let cookie =
        format!("{name}={value}; Max-Age={max_age}; Path=/; Secure; HttpOnly; SameSite=Lax");
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, location);
    }
    no_store(response)
}

pub fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn refused(status: StatusCode, reason: &str) -> Response {
    no_store((status, Json(json!({ "error": reason }))).into_response())
}

pub fn not_signed_in() -> Response {
    refused(StatusCode::UNAUTHORIZED, "not signed in")
}

pub fn unavailable(error: &str) -> Response {
    tracing::warn!(%error, "the issuer or the session store is unavailable");
    refused(
        StatusCode::SERVICE_UNAVAILABLE,
        "the issuer or the session store is unavailable",
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn return_to_is_a_local_path_only() {
        for (given, kept) in [
            (Some("/orders?page=2"), "/orders?page=2"),
            (Some("/"), "/"),
            (None, "/"),
            (Some("https://evil.example/"), "/"),
            (Some("//evil.example/"), "/"),
            (Some("/\\evil.example/"), "/"),
            (Some("/a b"), "/"),
            (Some("orders"), "/"),
        ] {
            assert_eq!(local_path(given), kept, "{given:?}");
        }
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("x__Host-valet-gateway=no; __Host-valet-gateway=abc; b=c"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), None);
    }

    #[test]
    fn session_cookies_have_every_flag() {
        let mut response = StatusCode::OK.into_response();
        set_cookie(&mut response, SESSION_COOKIE, "id", 60);
        assert_eq!(
            response.headers().get(SET_COOKIE).unwrap(),
            "__Host-valet-gateway=id; Max-Age=60; Path=/; Secure; HttpOnly; SameSite=Lax"
        );
    }
}
