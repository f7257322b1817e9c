//! Passkeys in the browser: the login page's passwordless sign-in (its
//! options as JSON, then the assertion as a form) and the signed-in user's
//! passkeys page (register, list, remove).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use valet_core::authn;
use valet_core::endpoint::metadata::paths;
use valet_core::passkeys::Challenge;
use valet_core::passkeys::account;

use super::authorize::{BrowserCookies, browser_cookies, cookie_names, signed_in_response};
use crate::AppState;
use crate::context::Context;
use crate::error::ApiError;
use crate::extract::OAuthForm;
use crate::pages::render;
use crate::response::{json_bytes, no_store};

/// POST `/login/passkey/options`: a sign-in ceremony for the login form's
/// request (its `interaction` and `csrf`), as WebAuthn request options.
pub async fn login_options(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let browser = BrowserCookies::read(&headers, &cookie_names(&state));
    let cookies = browser.cookies();
    let challenge = authn::passkey_options(&state.server, &request.form, cookies, &context).await?;
    Ok(challenge_response(challenge?))
}

/// POST `/second-factor/passkey/options`: a ceremony for the signing-in
/// user's own passkeys, as WebAuthn request options.
pub async fn second_factor_options(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let browser = BrowserCookies::read(&headers, &cookie_names(&state));
    let cookies = browser.cookies();
    let challenge =
        authn::second_factor_passkey_options(&state.server, &request.form, cookies, &context)
            .await?;
    Ok(challenge_response(challenge?))
}

/// POST `/login/passkey`: the browser's assertion; on success as the login
/// form's own success (a session cookie and the next step).
pub async fn login(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let names = cookie_names(&state);
    let browser = BrowserCookies::read(&headers, &names);
    let cookies = browser.cookies();
    let signed_in =
        authn::submit_passkey_login(&state.server, &request.form, cookies, &context).await?;
    signed_in_response(&state, &context, signed_in)
}

/// GET `/account/passkeys`: the signed-in user's passkeys and the forms to
/// add or remove one.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let names = cookie_names(&state);
    let (session, csrf) = browser_cookies(&headers, &names);
    let page = account::page(&state.server, session.as_deref(), context.now).await??;
    let csrf = match csrf.filter(|value| value.len() == 43) {
        Some(value) => value,
        None => valet_core::passkeys::new_csrf()?,
    };
    let issuer = &state.server.settings().issuer;
    let passkeys: Vec<_> = page
        .passkeys
        .iter()
        .map(|passkey| {
            minijinja::context! {
                id => &passkey.id,
                name => &passkey.name,
                created => date(passkey.created_at),
                last_used => passkey.last_used_at.map(date),
                synced => passkey.backed_up,
            }
        })
        .collect();
    let mut response = render(
        StatusCode::OK,
        "passkeys.html",
        minijinja::context! {
            username => page.username,
            passkeys => passkeys,
            csrf => &csrf,
            options_action => format!("{issuer}{}", paths::ACCOUNT_PASSKEY_OPTIONS),
            add_action => format!("{issuer}{}", paths::ACCOUNT_PASSKEYS),
            remove_action => format!("{issuer}{}", paths::ACCOUNT_PASSKEY_REMOVE),
        },
    )
    .ok_or(ApiError::Rendering)?;
    let ttl = state.server.settings().session_ttl;
    names.set(&mut response, names.csrf(), &csrf, ttl);
    Ok(response)
}

/// POST `/account/passkeys/options`: a registration ceremony, as WebAuthn
/// creation options.
pub async fn add_options(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let browser = BrowserCookies::read(&headers, &cookie_names(&state));
    let cookies = browser.cookies();
    let challenge =
        account::begin_registration(&state.server, cookies, &request.form, context.now).await?;
    Ok(challenge_response(challenge?))
}

/// POST `/account/passkeys`: the browser's new credential, named.
pub async fn add(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let browser = BrowserCookies::read(&headers, &cookie_names(&state));
    let cookies = browser.cookies();
    account::finish_registration(&state.server, cookies, &request.form, &context).await??;
    back_to_page(&state)
}

/// POST `/account/passkeys/remove`: removes one of the user's passkeys.
pub async fn remove(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let browser = BrowserCookies::read(&headers, &cookie_names(&state));
    let cookies = browser.cookies();
    account::remove(&state.server, cookies, &request.form, &context).await??;
    back_to_page(&state)
}

/// `{ "ceremony": …, "publicKey": … }`, never cached.
fn challenge_response(challenge: Challenge) -> Response {
    let mut body = challenge.options;
    if let Some(object) = body.as_object_mut() {
        object.insert("ceremony".into(), challenge.ceremony.into());
    }
    let mut response = json_bytes(body.to_string(), HeaderValue::from_static("no-store"));
    no_store(&mut response);
    response
}

/// 303 to the passkeys page (RFC 9110 §15.4.4: no form is posted again).
fn back_to_page(state: &AppState) -> Result<Response, ApiError> {
    let issuer = &state.server.settings().issuer;
    let location = HeaderValue::from_str(&format!("{issuer}{}", paths::ACCOUNT_PASSKEYS))
        .map_err(|_| ApiError::Rendering)?;
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(LOCATION, location);
    Ok(response)
}

/// A Unix time as its UTC date, `YYYY-MM-DD` (the civil-from-days algorithm
/// of H. Hinnant's `chrono`-compatible date library).
pub(crate) fn date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::date;

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_800_000_000), "2027-01-15");
        assert_eq!(date(951_782_400), "2000-02-29");
    }
}
