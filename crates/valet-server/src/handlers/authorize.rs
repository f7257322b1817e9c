//! The authorization endpoint and its login and consent forms.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use valet_core::RequestContext;
use valet_core::authn::{self, Cookies};
use valet_core::authorize::{
    AuthorizationResponse, AuthorizeOutcome, DevicePage, EnrolPage, LoginPage, PageError,
};
use valet_core::endpoint::metadata::paths;
use valet_core::session::NewSession;
use valet_protocol::Form;
use valet_protocol::authorize::ResponseMode;

use crate::AppState;
use crate::context::Context;
use crate::cookies::{self, CookieNames};
use crate::error::ApiError;
use crate::extract::OAuthForm;
use crate::locale;
use crate::pages::render;
use crate::response::{no_store, retry_after};

/// GET: parameters in the query (RFC 6749 §4.1.1).
pub async fn authorize_get(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    request: Request,
) -> Result<Response, ApiError> {
    let form = Form::parse(request.uri().query().unwrap_or_default().as_bytes());
    authorize_with(&state, &context, request.headers(), &form).await
}

/// POST: the same parameters as a form (OIDC Core §3.1.2.1).
pub async fn authorize_post(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    authorize_with(&state, &context, &headers, &request.form).await
}

async fn authorize_with(
    state: &AppState,
    context: &RequestContext,
    headers: &HeaderMap,
    form: &Form,
) -> Result<Response, ApiError> {
    let names = cookie_names(state);
    let browser = BrowserCookies::read(headers, &names);
    let cookies = browser.cookies();
    // The sign-in page's provider buttons.
    let store = state.server.store();
    state
        .server
        .upstreams()
        .refresh_names(store, context.now)
        .await?;
    let authorized = authn::authorize(&state.server, form, cookies, context).await;
    // OIDC Core §3.1.2.1 `ui_locales`: this request's pages, error pages
    // included, and the rest of its interaction (by a cookie the language
    // choice reads) are in the first language asked for that Valet has. A
    // request without one leaves the choice to the browser again. A pushed
    // request's or a request object's own `ui_locales` is the request's
    // (RFC 9126 §4, RFC 9101 §6.3).
    let settings = state.server.settings();
    let catalogues = &settings.catalogues;
    let (outcome, asked) = match authorized {
        Ok(authn::Authorized {
            outcome,
            ui_locales,
        }) => (
            Ok(outcome),
            ui_locales
                .as_deref()
                .and_then(|text| locale::from_ui_locales_text(catalogues, text)),
        ),
        Err(error) => (Err(error), locale::from_ui_locales(catalogues, form)),
    };
    let chosen = asked
        .or_else(|| locale::from_accept_language(catalogues, headers))
        .unwrap_or_else(|| catalogues.default_locale());
    let mut response = locale::rendered_in(chosen, || match outcome {
        Ok(outcome) => outcome_response(state, outcome).into_response(),
        Err(error) => ApiError::from(error).into_response(),
    });
    match asked {
        Some(locale) => names.set(
            &mut response,
            names.locale(),
            locale,
            settings.interaction_ttl,
        ),
        None if cookies::read(headers, names.locale()).is_some() => {
            names.clear(&mut response, names.locale());
        }
        None => {}
    }
    Ok(response)
}

pub async fn login(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let names = cookie_names(&state);
    let browser = BrowserCookies::read(&headers, &names);
    let cookies = browser.cookies();
    let signed_in = authn::submit_login(&state.server, &request.form, cookies, &context).await?;
    signed_in_response(&state, &context, signed_in)
}

/// The second-factor and enrolment forms.
pub async fn second_factor(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let names = cookie_names(&state);
    let browser = BrowserCookies::read(&headers, &names);
    let cookies = browser.cookies();
    let signed_in =
        authn::submit_second_factor(&state.server, &request.form, cookies, &context).await?;
    signed_in_response(&state, &context, signed_in)
}

/// The outcome of a sign-in step, with the new session's cookie if it started one.
pub fn signed_in_response(
    state: &AppState,
    context: &RequestContext,
    (outcome, new_session): (AuthorizeOutcome, Option<NewSession>),
) -> Result<Response, ApiError> {
    let names = cookie_names(state);
    let mut response = outcome_response(state, outcome)?;
    if let Some(new_session) = new_session {
        names.set(
            &mut response,
            names.session(),
            &new_session.cookie_value,
            new_session.session.expires_at.saturating_sub(context.now),
        );
    }
    Ok(response)
}

pub async fn consent(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let names = cookie_names(&state);
    let browser = BrowserCookies::read(&headers, &names);
    let cookies = browser.cookies();
    let outcome = authn::submit_consent(&state.server, &request.form, cookies, &context).await?;
    outcome_response(&state, outcome)
}

/// The session and CSRF cookies' values as read from a request, lent to the
/// sign-in steps as [`Cookies`].
pub struct BrowserCookies {
    session: Option<String>,
    csrf: Option<String>,
}

impl BrowserCookies {
    pub fn read(headers: &HeaderMap, names: &CookieNames) -> Self {
        let (session, csrf) = browser_cookies(headers, names);
        Self { session, csrf }
    }

    pub fn cookies(&self) -> Cookies<'_> {
        Cookies {
            session: self.session.as_deref(),
            csrf: self.csrf.as_deref(),
        }
    }
}

/// The session and CSRF cookies' values.
pub fn browser_cookies(
    headers: &HeaderMap,
    names: &CookieNames,
) -> (Option<String>, Option<String>) {
    (
        cookies::read(headers, names.session()),
        cookies::read(headers, names.csrf()),
    )
}

pub fn cookie_names(state: &AppState) -> CookieNames {
    CookieNames::new(state.server.settings().secure_cookies())
}

pub(crate) fn outcome_response(
    state: &AppState,
    outcome: AuthorizeOutcome,
) -> Result<Response, ApiError> {
    let issuer = &state.server.settings().issuer;
    let names = cookie_names(state);
    let csrf_ttl = state.server.settings().interaction_ttl;
    Ok(match outcome {
        AuthorizeOutcome::ErrorPage(error) => return Err(ApiError::Page(error)),
        AuthorizeOutcome::Redirect(response) => return redirect(response),
        AuthorizeOutcome::Login(page) => login_response(state, page)?,
        AuthorizeOutcome::SecondFactor(page) => {
            let status = StatusCode::from_u16(page.status).unwrap_or(StatusCode::OK);
            let mut response = render(
                status,
                "second_factor.html",
                minijinja::context! {
                    action => format!("{issuer}{}", paths::SECOND_FACTOR),
                    interaction_id => page.interaction_id,
                    client_name => page.client_name,
                    methods => page.methods,
                    error => page.error,
                    csrf => &page.csrf,
                    passkey_options => format!("{issuer}{}", paths::SECOND_FACTOR_PASSKEY_OPTIONS),
                },
            )
            .ok_or(ApiError::Rendering)?;
            names.set(&mut response, names.csrf(), &page.csrf, csrf_ttl);
            if let Some(seconds) = page.retry_after {
                retry_after(&mut response, seconds);
            }
            response
        }
        AuthorizeOutcome::Enrol(page) => enrol_response(state, page)?,
        AuthorizeOutcome::Device(page) => device_response(state, page)?,
        AuthorizeOutcome::Consent(page) => {
            let scopes: Vec<_> = page
                .scopes
                .iter()
                .map(|(scope, description)| minijinja::context! { scope => scope, description => description })
                .collect();
            let mut response = render(
                StatusCode::OK,
                "consent.html",
                minijinja::context! {
                    action => format!("{issuer}{}", paths::CONSENT),
                    interaction_id => page.interaction_id,
                    client_name => page.client_name,
                    client_site => page.client_site,
                    username => page.username,
                    scopes => scopes,
                    csrf => &page.csrf,
                },
            )
            .ok_or(ApiError::Rendering)?;
            names.set(&mut response, names.csrf(), &page.csrf, csrf_ttl);
            response
        }
    })
}

/// The sign-in page, with the ways to sign in that are switched on.
fn login_response(state: &AppState, page: LoginPage) -> Result<Response, ApiError> {
    let issuer = &state.server.settings().issuer;
    let names = cookie_names(state);
    let csrf_ttl = state.server.settings().interaction_ttl;
    let status = StatusCode::from_u16(page.status).unwrap_or(StatusCode::OK);
    let mut response = render(
        status,
        "login.html",
        minijinja::context! {
            action => format!("{issuer}{}", paths::LOGIN),
            interaction_id => page.interaction_id,
            client_name => page.client_name,
            login => page.login,
            error => page.error,
            // The throttle's words carry the wait, so they are the catalogue's.
            throttled_minutes => page.retry_after
                .filter(|_| page.status == 429)
                .map(|seconds| (seconds + 59) / 60),
            csrf => &page.csrf,
            reset_url => state
                .server
                .settings()
                .password_reset
                .then(|| format!("{issuer}{}", paths::RESET)),
            register_url => (state.server.settings().registration
                != valet_core::config::Registration::Closed)
                .then(|| format!("{issuer}{}", paths::REGISTER)),
            passkey_options => state.server.passkeys_available()
                .then(|| format!("{issuer}{}", paths::LOGIN_PASSKEY_OPTIONS)),
            passkey_action => format!("{issuer}{}", paths::LOGIN_PASSKEY),
            upstreams => upstream_buttons(state),
        },
    )
    .ok_or(ApiError::Rendering)?;
    names.set(&mut response, names.csrf(), &page.csrf, csrf_ttl);
    if let Some(seconds) = page.retry_after {
        retry_after(&mut response, seconds);
    }
    Ok(response)
}

/// The sign-in page's "Sign in with …" buttons: each upstream's name and
/// where its form posts.
fn upstream_buttons(state: &AppState) -> Vec<minijinja::Value> {
    use valet_core::upstream::paths as upstream_paths;
    let issuer = &state.server.settings().issuer;
    state
        .server
        .upstreams()
        .names()
        .iter()
        .map(|name| {
            minijinja::context! {
                name => name,
                action => format!("{issuer}{}", upstream_paths::named(upstream_paths::START, name)),
            }
        })
        .collect()
}

/// `/device`: the form to enter the user code, or the decision made.
fn device_response(state: &AppState, page: DevicePage) -> Result<Response, ApiError> {
    let issuer = &state.server.settings().issuer;
    match page {
        DevicePage::Enter {
            status,
            user_code,
            error,
            csrf,
            retry_after: wait,
        } => {
            let names = cookie_names(state);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = render(
                status,
                "device.html",
                minijinja::context! {
                    action => format!("{issuer}{}", paths::DEVICE),
                    user_code => user_code,
                    error => error,
                    csrf => &csrf,
                },
            )
            .ok_or(ApiError::Rendering)?;
            let csrf_ttl = state.server.settings().interaction_ttl;
            names.set(&mut response, names.csrf(), &csrf, csrf_ttl);
            if let Some(seconds) = wait {
                retry_after(&mut response, seconds);
            }
            Ok(response)
        }
        DevicePage::Approved { client_name } => render(
            StatusCode::OK,
            "device_done.html",
            minijinja::context! { client_name => client_name, approved => true },
        )
        .ok_or(ApiError::Rendering),
        DevicePage::Denied { client_name } => render(
            StatusCode::OK,
            "device_done.html",
            minijinja::context! { client_name => client_name, approved => false },
        )
        .ok_or(ApiError::Rendering),
    }
}

/// The TOTP enrolment page: the QR code of the Key URI as an SVG image.
fn enrol_response(state: &AppState, page: EnrolPage) -> Result<Response, ApiError> {
    let issuer = &state.server.settings().issuer;
    let names = cookie_names(state);
    let status = StatusCode::from_u16(page.status).unwrap_or(StatusCode::OK);
    let enrolment = &page.enrolment;
    let mut response = render(
        status,
        "enrol_totp.html",
        minijinja::context! {
            action => format!("{issuer}{}", paths::SECOND_FACTOR),
            interaction_id => page.interaction_id,
            client_name => page.client_name,
            qr => qr_data_uri(&enrolment.otpauth_uri).ok_or(ApiError::Rendering)?,
            secret => &enrolment.secret_base32,
            otpauth_uri => &enrolment.otpauth_uri,
            recovery_codes => &enrolment.recovery_codes,
            error => page.error,
            csrf => &page.csrf,
        },
    )
    .ok_or(ApiError::Rendering)?;
    let csrf_ttl = state.server.settings().interaction_ttl;
    names.set(&mut response, names.csrf(), &page.csrf, csrf_ttl);
    if let Some(seconds) = page.retry_after {
        retry_after(&mut response, seconds);
    }
    Ok(response)
}

/// `text` as a QR code (error correction M), an SVG image in a `data:` URI
/// (the pages' CSP allows `img-src data:`); `None` if it is too long for one.
pub(crate) fn qr_data_uri(text: &str) -> Option<String> {
    use base64::Engine as _;
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Some(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}

/// RFC 9700 §4.11: 303 See Other, so a browser never re-posts the login form's
/// body to the client. `form_post` answers with an auto-submitting form instead.
fn redirect(response: AuthorizationResponse) -> Result<Response, ApiError> {
    match response.mode {
        ResponseMode::Query => match HeaderValue::from_str(&response.location()) {
            Ok(location) => {
                let mut reply = StatusCode::SEE_OTHER.into_response();
                reply.headers_mut().insert(LOCATION, location);
                // The Location carries the code.
                no_store(&mut reply);
                Ok(reply)
            }
            Err(_) => Err(ApiError::Page(PageError {
                status: 400,
                title: "Invalid redirect",
                message: "The redirect could not be built.".to_owned(),
            })),
        },
        ResponseMode::FormPost => {
            let params: Vec<_> = response
                .params
                .iter()
                .map(|(name, value)| minijinja::context! { name => *name, value => value })
                .collect();
            render(
                StatusCode::OK,
                "form_post.html",
                minijinja::context! { redirect_uri => response.redirect_uri, params => params },
            )
            .ok_or(ApiError::Rendering)
        }
    }
}
