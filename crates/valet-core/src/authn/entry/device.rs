//! `/device` (RFC 8628 §3.3): the user enters the code their device shows and
//! goes through the same steps as any sign-in (password, second factor), then
//! confirms the device's request on the consent page (always asked, §5.4);
//! the end is [`crate::authn::device`].
//!
//! Guessing user codes is throttled like passwords (per address, §5.1): a
//! wrong or expired code counts as a failure, a right one takes it back.

use valet_jose::constant_time_eq;
use valet_protocol::Form;
use valet_protocol::authorize::{Prompt, ResponseMode};

use crate::AuthorizationServer;
use crate::authn::pending::{self, DeviceLink, PendingAuthorization, Stage, Whereabouts};
use crate::authn::step::Step;
use crate::authn::verify::SignedIn;
use crate::authorize::{AuthorizeOutcome, DevicePage, PageError};
use crate::context::RequestContext;
use crate::device::{self, DeviceRequest};
use crate::error::OAuthError;
use crate::session::{self, Cookies};

/// What the user-code throttle counts failures under (one bucket per address).
const THROTTLE_KEY: &str = "device user code";

/// `GET /device`: the form, with the code filled in when the link carried it
/// (`verification_uri_complete`).
pub async fn device_page(
    form: &Form,
    cookies: Cookies<'_>,
) -> Result<AuthorizeOutcome, OAuthError> {
    let user_code = form
        .optional("user_code")
        .ok()
        .flatten()
        .and_then(device::normalize_user_code)
        .map(|code| device::display_user_code(&code));
    Ok(AuthorizeOutcome::Device(DevicePage::Enter {
        status: 200,
        user_code,
        error: None,
        csrf: browser_csrf(cookies)?,
        retry_after: None,
    }))
}

/// `POST /device`: the user code was entered; the device's request goes
/// through the sign-in steps.
pub async fn submit_device_code(
    server: &AuthorizationServer,
    form: &Form,
    cookies: Cookies<'_>,
    context: &RequestContext,
) -> Result<AuthorizeOutcome, OAuthError> {
    let now = context.now;
    let Some(csrf) = checked_csrf(form, cookies) else {
        return Ok(AuthorizeOutcome::ErrorPage(PageError::new(
            403,
            "Form expired",
            "This form could not be verified. Open the page again and enter the code.",
        )));
    };
    let typed = form
        .optional("user_code")
        .ok()
        .flatten()
        .unwrap_or_default();
    let enter_again = |status: u16, error: &str, retry_after: Option<i64>| {
        AuthorizeOutcome::Device(DevicePage::Enter {
            status,
            user_code: Some(typed.to_owned()).filter(|t| t.len() <= 32),
            error: Some(error.to_owned()),
            csrf: csrf.clone(),
            retry_after,
        })
    };
    let admitted = match server
        .device_throttle
        .admit(THROTTLE_KEY, context.address, now)
    {
        Ok(admitted) => admitted,
        Err(throttled) => {
            return Ok(enter_again(
                429,
                "Too many wrong codes. Wait a while, then try again.",
                Some(throttled.retry_after_seconds),
            ));
        }
    };
    let found = match device::normalize_user_code(typed) {
        Some(code) => device::find_pending(server.store.as_ref(), &code, now)
            .await?
            .map(|found| (code, found)),
        None => None,
    };
    let Some((code, (device_key, request))) = found else {
        // The admitted attempt stays counted as a failure.
        return Ok(enter_again(
            400,
            "That code is not valid or has expired. Check the code on your device.",
            None,
        ));
    };
    server.device_throttle.succeeded(admitted);
    let Some(client) = server
        .authenticator
        .clients()
        .get(server.store.as_ref(), &request.client_id, now)
        .await?
    else {
        return Ok(AuthorizeOutcome::ErrorPage(PageError::new(
            400,
            "Unknown application",
            "The application is no longer registered.",
        )));
    };
    let link = DeviceLink {
        device_key: valet_jose::b64url(&device_key),
        user_code_key: valet_jose::b64url(device::user_code_key(&code)),
    };
    let pending = pending_request(&client.client_id, request, &csrf, link);
    let session = session::lookup(server.store.as_ref(), cookies.session, now).await?;
    let signed_in = session.map(|s| SignedIn::from(&s));
    let step = Step {
        client: &client,
        at: Whereabouts::Fresh,
        csrf,
        login: None,
        signing_in: None,
        username: None,
    };
    step.advance(server, pending, signed_in.as_ref(), context)
        .await
}

/// The browser's CSRF value if the form carries the same one.
fn checked_csrf(form: &Form, cookies: Cookies<'_>) -> Option<String> {
    let csrf_form = form.optional("csrf").ok().flatten().unwrap_or_default();
    cookies
        .csrf
        .filter(|cookie| {
            cookie.len() == 43 && constant_time_eq(cookie.as_bytes(), csrf_form.as_bytes())
        })
        .map(str::to_owned)
}

/// The device's request as the sign-in steps carry it: no redirect URI, no
/// PKCE (the device's own code is its proof), bound to this browser.
fn pending_request(
    client_id: &str,
    request: DeviceRequest,
    csrf: &str,
    link: DeviceLink,
) -> PendingAuthorization {
    PendingAuthorization {
        client_id: client_id.to_owned(),
        redirect_uri: String::new(),
        redirect_uri_given: false,
        scope: request.scope,
        state: None,
        nonce: None,
        code_challenge: String::new(),
        response_mode: ResponseMode::Query,
        prompt: Prompt::default(),
        max_age: None,
        login_hint: None,
        resources: request.resources,
        mfa_requested: false,
        csrf_hash: pending::csrf_hash(csrf),
        stage: Stage::AwaitingLogin,
        device: Some(link),
        dpop_jkt: None,
    }
}

/// The browser's CSRF value, or a fresh one.
fn browser_csrf(cookies: Cookies<'_>) -> Result<String, OAuthError> {
    match cookies.csrf.filter(|c| c.len() == 43) {
        Some(existing) => Ok(existing.to_owned()),
        None => pending::new_csrf(),
    }
}
