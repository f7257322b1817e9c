//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2, §3).
//!
//! A logout ends the session and revokes every grant made in it (its refresh
//! tokens and recorded access tokens). It happens at once when the request
//! carries an `id_token_hint` for the current session; otherwise the user
//! confirms on a page whose form carries the browser's CSRF value, so a
//! cross-site request cannot sign anybody out. The browser is sent only to a
//! `post_logout_redirect_uri` registered for the client.

use serde_json::{Map, Value};
use valet_jose::constant_time_eq;
use valet_protocol::Form;

use crate::AuthorizationServer;
use crate::audit::{AuditEvent, AuditKind};
use crate::authorize::PageError;
use crate::context::RequestContext;
use crate::error::OAuthError;
use crate::session;
use crate::store::{Client, Session};

/// What the browser sees.
#[derive(Debug)]
pub enum LogoutOutcome {
    /// Ask the user; the form posts back with the same parameters.
    Confirm {
        client_name: Option<String>,
        id_token_hint: Option<String>,
        client_id: Option<String>,
        post_logout_redirect_uri: Option<String>,
        state: Option<String>,
    },
    /// Signed out; go to the client's registered URI (with `state`) or show a page.
    Done {
        redirect: Option<String>,
    },
    ErrorPage(PageError),
}

pub async fn end_session(
    server: &AuthorizationServer,
    form: &Form,
    session_cookie: Option<&str>,
    csrf_cookie: Option<&str>,
    confirmed: bool,
    context: &RequestContext,
) -> Result<LogoutOutcome, OAuthError> {
    let now = context.now;
    let param = |name: &'static str| form.optional(name).ok().flatten().map(str::to_owned);
    let (hint, client_id_param, redirect_param, state) = (
        param("id_token_hint"),
        param("client_id"),
        param("post_logout_redirect_uri"),
        param("state"),
    );
    let bad = |message: &str| Ok(LogoutOutcome::ErrorPage(error_page(message)));

    let hint_claims = match verified_hint(server, hint.as_deref()) {
        Ok(claims) => claims,
        Err(message) => return bad(message),
    };
    let hint_client = hint_claims.as_ref().and_then(audience);
    if let (Some(from_hint), Some(param)) = (&hint_client, &client_id_param)
        && from_hint != param
    {
        return bad("client_id does not match the id_token_hint.");
    }
    let client_id = hint_client.or(client_id_param.clone());
    let client = match &client_id {
        Some(id) => {
            server
                .authenticator
                .clients()
                .get(server.store.as_ref(), id, now)
                .await?
        }
        None => None,
    };
    let redirect = match post_logout_redirect(
        redirect_param.as_deref(),
        client.as_deref(),
        state.as_deref(),
    ) {
        Ok(redirect) => redirect,
        Err(message) => return bad(message),
    };

    let current = session::lookup(server.store.as_ref(), session_cookie, now).await?;
    let Some(current) = current else {
        return Ok(LogoutOutcome::Done { redirect });
    };
    let hint_matches = hint_claims
        .as_ref()
        .and_then(|c| c.get("sid"))
        .and_then(Value::as_str)
        .is_some_and(|sid| sid == current.sid);
    let csrf_ok = csrf_matches(csrf_cookie, form);
    if !(hint_matches || (confirmed && csrf_ok)) {
        return Ok(LogoutOutcome::Confirm {
            client_name: client.map(|c| c.name.clone()),
            id_token_hint: hint,
            client_id: client_id_param,
            post_logout_redirect_uri: redirect_param,
            state,
        });
    }
    sign_out(server, session_cookie, &current, client_id, context).await?;
    Ok(LogoutOutcome::Done { redirect })
}

/// The claims of the `id_token_hint`, if one was sent. It need not be unexpired
/// (§2), but must be an ID token of this issuer. `Err` is the message of the
/// page that refuses it.
fn verified_hint(
    server: &AuthorizationServer,
    hint: Option<&str>,
) -> Result<Option<Map<String, Value>>, &'static str> {
    let Some(token) = hint else {
        return Ok(None);
    };
    match server.keyring.verification_keys().verify(token, "JWT") {
        Ok(verified)
            if verified.claims.get("iss").and_then(Value::as_str)
                == Some(server.settings.issuer.as_str()) =>
        {
            Ok(Some(verified.claims))
        }
        _ => Err("The id_token_hint is not a valid ID token of this server."),
    }
}

/// The client an ID token was issued to: its `aud`, or the first of them.
fn audience(claims: &Map<String, Value>) -> Option<String> {
    let aud = claims.get("aud")?;
    aud.as_str()
        .map(str::to_owned)
        .or_else(|| aud.get(0).and_then(Value::as_str).map(str::to_owned))
}

/// Where the browser goes after the logout (§3): only to a URI registered for
/// the client, with `state`. `Err` is the message of the page that refuses it.
fn post_logout_redirect(
    requested: Option<&str>,
    client: Option<&Client>,
    state: Option<&str>,
) -> Result<Option<String>, &'static str> {
    match (requested, client) {
        (None, _) => Ok(None),
        (Some(uri), Some(client)) if client.post_logout_redirect_uris.iter().any(|r| r == uri) => {
            Ok(Some(with_state(uri, state)))
        }
        (Some(_), Some(_)) => {
            Err("The post_logout_redirect_uri is not registered for this application.")
        }
        (Some(_), None) => Err("A post_logout_redirect_uri needs a client_id or an id_token_hint."),
    }
}

/// Whether the form's `csrf` field is the browser's CSRF cookie.
fn csrf_matches(csrf_cookie: Option<&str>, form: &Form) -> bool {
    match (csrf_cookie, form.optional("csrf").ok().flatten()) {
        (Some(cookie), Some(field)) if !cookie.is_empty() => {
            constant_time_eq(cookie.as_bytes(), field.as_bytes())
        }
        _ => false,
    }
}

/// Ends the session and revokes every grant made in it.
async fn sign_out(
    server: &AuthorizationServer,
    session_cookie: Option<&str>,
    current: &Session,
    client_id: Option<String>,
    context: &RequestContext,
) -> Result<(), OAuthError> {
    let now = context.now;
    if let Some(cookie) = session_cookie {
        server.store.delete_session(&session::hash(cookie)).await?;
    }
    let revoked = server
        .store
        .revoke_grants_of_session(&current.sid, now)
        .await?;
    server.status_lists.wake();
    let mut event = AuditEvent::new(AuditKind::Logout, now)
        .user(&current.user_id)
        .request(&context.id)
        .detail("sid", current.sid.as_str())
        .detail("revoked_grants", revoked);
    event.client_id = client_id;
    server.audit(event);
    Ok(())
}

fn with_state(uri: &str, state: Option<&str>) -> String {
    valet_protocol::append_query(uri, state.map(|state| ("state", state)))
}

fn error_page(message: &str) -> PageError {
    PageError {
        status: 400,
        title: "Sign-out refused",
        message: message.to_owned(),
    }
}
