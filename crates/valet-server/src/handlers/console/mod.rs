//! The web console at `/admin`: server-rendered pages over the admin service,
//! for a signed-in user with the admin role (see `valet_core::console`).
//!
//! Every page checks the session and the role; every form POST also checks
//! the request's origin, the page's CSRF value and that the sign-in is recent,
//! before anything changes. One file per resource: [`clients`], [`users`],
//! [`keys`], [`audit`].

pub mod audit;
pub mod clients;
pub mod keys;
pub mod users;

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{LOCATION, ORIGIN};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use valet_core::admin::AdminError;
use valet_core::authn::{self, Cookies};
use valet_core::authorize::PageError;
use valet_core::console::{self, Gate, Operator};
use valet_core::endpoint::metadata::paths;
use valet_core::{AuthorizationServer, RequestContext};
use valet_protocol::Form;

use crate::AppState;
use crate::context::Context;
use crate::cookies;
use crate::error::ApiError;
use crate::handlers::authorize::{cookie_names, outcome_response};
use crate::pages::render;
use crate::response::no_store;

/// Rows per page of a list.
pub(super) const PAGE_SIZE: usize = 50;

/// A console request let through: its operator and session cookie.
pub(super) struct Admitted {
    pub operator: Operator,
    pub cookie: String,
}

/// `GET /admin`: the console's start, where its sign-in lands.
pub async fn home(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Err(response) = for_reading(&state, &headers, &context).await? {
        return Ok(response);
    }
    see_other(&url(&state.server, "/clients"))
}

/// `GET /admin/sign-in`: Valet's sign-in steps, ending back on the console.
/// With a session older than `CONSOLE_MAX_AGE` the password (and second
/// factor) is asked for again (`max_age`, OIDC Core §3.1.2.1).
pub async fn sign_in(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let names = cookie_names(&state);
    let session = cookies::read(&headers, names.session());
    let csrf = cookies::read(&headers, names.csrf());
    let cookies = Cookies {
        session: session.as_deref(),
        csrf: csrf.as_deref(),
    };
    let outcome = authn::sign_in_to_console(&state.server, cookies, &context).await?;
    outcome_response(&state, outcome)
}

/// The gate of every page: the sign-in for a browser without a session, 403
/// for a user without the admin role.
pub(super) async fn for_reading(
    state: &AppState,
    headers: &HeaderMap,
    context: &RequestContext,
) -> Result<Result<Admitted, Response>, ApiError> {
    let names = cookie_names(state);
    let cookie = cookies::read(headers, names.session());
    match console::gate(&state.server, cookie.as_deref(), context.now).await? {
        Gate::SignedOut => Ok(Err(see_other(&url(&state.server, "/sign-in"))?)),
        Gate::NotAdmin => {
            tracing::warn!("console refused: the signed-in user has no admin role");
            Err(ApiError::Page(PageError {
                status: 403,
                title: "Not allowed",
                message: "Your account may not use the admin console.".to_owned(),
            }))
        }
        Gate::Operator(operator) => Ok(Ok(Admitted {
            operator: *operator,
            cookie: cookie.unwrap_or_default(),
        })),
    }
}

/// The gate of every form: a request from another origin is refused before
/// the session is looked at; then the page's gate, the form's CSRF value
/// and a recent sign-in (else the browser goes to sign in again, and nothing
/// changes).
pub(super) async fn for_change(
    state: &AppState,
    headers: &HeaderMap,
    context: &RequestContext,
    form: &Form,
) -> Result<Result<Admitted, Response>, ApiError> {
    if !same_origin(&state.server, headers) {
        tracing::warn!("console form refused: sent from another origin");
        return Err(forbidden(
            "This form was sent from another site. Open the console and try again.",
        ));
    }
    let admitted = match for_reading(state, headers, context).await? {
        Ok(admitted) => admitted,
        Err(response) => return Ok(Err(response)),
    };
    let token = form.optional("csrf").ok().flatten();
    if !admitted
        .operator
        .form_token_matches(&admitted.cookie, token)
    {
        tracing::warn!("console form refused: CSRF value missing or not this session's");
        return Err(forbidden(
            "This form could not be verified. Open the console page again.",
        ));
    }
    if !admitted.operator.signed_in_recently(context.now) {
        return Ok(Err(see_other(&url(&state.server, "/sign-in"))?));
    }
    Ok(Ok(admitted))
}

/// Whether a form came from a page of this server. Browsers send `Origin` on
/// every POST; under this site's `no-referrer` policy a same-origin one is
/// `null`, and then `Sec-Fetch-Site` (which no page can set) must say
/// `same-origin`. A request naming neither is refused.
fn same_origin(server: &AuthorizationServer, headers: &HeaderMap) -> bool {
    let issuer = &server.settings().issuer;
    let own = issuer_origin(issuer);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match header(ORIGIN.as_str()) {
        Some(origin) if origin != "null" => origin.eq_ignore_ascii_case(own),
        _ => header("sec-fetch-site") == Some("same-origin"),
    }
}

/// `https://host:port` of `https://host:port/path`.
fn issuer_origin(issuer: &str) -> &str {
    let after_scheme = issuer.find("://").map_or(0, |at| at + 3);
    let end = issuer
        .get(after_scheme..)
        .and_then(|rest| rest.find('/'))
        .map_or(issuer.len(), |at| after_scheme + at);
    issuer.get(..end).unwrap_or(issuer)
}

fn forbidden(message: &str) -> ApiError {
    ApiError::Page(PageError {
        status: 403,
        title: "Form refused",
        message: message.to_owned(),
    })
}

/// The console URL of `path` (`""` for the start).
pub(super) fn url(server: &AuthorizationServer, path: &str) -> String {
    format!("{}{}{path}", server.settings().issuer, paths::CONSOLE)
}

/// Renders a console page with what every page shows: the navigation, the
/// operator, the CSRF value for its forms.
pub(super) fn page(
    state: &AppState,
    admitted: &Admitted,
    status: StatusCode,
    template: &str,
    context: minijinja::Value,
) -> Result<Response, ApiError> {
    let server = &state.server;
    let section = ["client", "user", "key", "audit"]
        .into_iter()
        .find(|name| template.starts_with(&format!("console_{name}")))
        .map(|name| {
            if name == "audit" {
                "audit".to_owned()
            } else {
                format!("{name}s")
            }
        });
    render(
        status,
        template,
        minijinja::context! {
            nav => minijinja::context! {
                clients => url(server, "/clients"),
                users => url(server, "/users"),
                keys => url(server, "/keys"),
                audit => url(server, "/audit"),
                logout => format!("{}{}", server.settings().issuer, paths::LOGOUT),
            },
            section,
            operator => &admitted.operator.user.username,
            csrf => admitted.operator.csrf(),
            ..context
        },
    )
    .ok_or(ApiError::Rendering)
}

/// What an admin refusal looks like on a page: the status, the message, and
/// the field at fault (its API name, which is the form field's name too).
pub(super) struct Refusal {
    pub status: StatusCode,
    pub message: String,
    pub field: Option<&'static str>,
}

impl Refusal {
    /// Server failures are logged and shown without their detail.
    pub fn of(error: &AdminError) -> Self {
        match error {
            AdminError::Invalid(field) => Self {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: field.to_string(),
                field: Some(field.field.name),
            },
            AdminError::Conflict(field) => Self {
                status: StatusCode::CONFLICT,
                message: field.to_string(),
                field: Some(field.field.name),
            },
            AdminError::NotFound { .. } => Self {
                status: StatusCode::NOT_FOUND,
                message: error.to_string(),
                field: None,
            },
            AdminError::KeyPending { .. } => Self {
                status: StatusCode::CONFLICT,
                message: error.to_string(),
                field: None,
            },
            AdminError::Store(_) | AdminError::Internal(_) => {
                tracing::error!(%error, "console change failed");
                Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: "The change could not be made; the server log has the cause."
                        .to_owned(),
                    field: None,
                }
            }
        }
    }
}

/// Reports audit records the store could not take (the change was made).
pub(super) fn log_audit_warnings(admin: &valet_core::admin::Admin<'_>) {
    for warning in admin.take_warnings() {
        tracing::error!(warning, "console change not audited");
    }
}

/// 303 to `location` (a GET of the page).
pub(super) fn see_other(location: &str) -> Result<Response, ApiError> {
    let mut reply = StatusCode::SEE_OTHER.into_response();
    let value = HeaderValue::from_str(location).map_err(|_| ApiError::Rendering)?;
    reply.headers_mut().insert(LOCATION, value);
    no_store(&mut reply);
    Ok(reply)
}

/// `?offset=` of a list page, bounded.
pub(super) fn offset(value: Option<&str>) -> usize {
    value
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(100_000)
}

/// The previous and next pages' offsets of a list at `offset` holding `total`.
pub(super) fn paging(offset: usize, total: usize) -> (Option<usize>, Option<usize>) {
    let previous = (offset > 0).then(|| offset.saturating_sub(PAGE_SIZE));
    let next = (offset + PAGE_SIZE < total).then_some(offset + PAGE_SIZE);
    (previous, next)
}

/// Forgets this node's cached copy of a client changed here.
pub(super) fn forget_client(server: &AuthorizationServer, client_id: &str) {
    console::forget_client(server, client_id);
}

#[cfg(test)]
mod tests {
    use super::issuer_origin;

    #[test]
    fn the_origin_of_an_issuer() {
        assert_eq!(issuer_origin("https://id.example"), "https://id.example");
        assert_eq!(
            issuer_origin("https://id.example:8443/valet/"),
            "https://id.example:8443"
        );
        assert_eq!(
            issuer_origin("http://127.0.0.1:8080/sso"),
            "http://127.0.0.1:8080"
        );
    }
}
