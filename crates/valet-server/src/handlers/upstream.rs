//! Sign-in with other providers: the sign-in page's buttons, the provider's
//! redirect back, the choices for a new identity, and the account page's
//! providers (`/account/upstreams`). Thin: the core decides
//! (`valet_core::authn::{start_upstream, finish_upstream, …}` and
//! `valet_core::upstream::links`).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use valet_core::RequestContext;
use valet_core::account::{form_token, form_token_matches};
use valet_core::authn::{self, Cookies, UnknownIdentityPage, UpstreamOutcome};
use valet_core::authorize::PageError;
use valet_core::session::{self, NewSession};
use valet_core::store::Session;
use valet_core::upstream::links::{self, LinkChange};
use valet_core::upstream::paths;
use valet_core::upstream::records::RECORD_TTL;
use valet_protocol::Form;

use super::authorize::{BrowserCookies, cookie_names, outcome_response, signed_in_response};
use crate::AppState;
use crate::context::Context;
use crate::cookies;
use crate::error::ApiError;
use crate::extract::OAuthForm;
use crate::pages::render;
use crate::response::no_store;

/// POST `/upstream/{name}/start`: off to the provider.
pub async fn start(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    Path(name): Path<String>,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let browser = BrowserCookies::read(&headers, &cookie_names(&state));
    let outcome = authn::start_upstream(
        &state.server,
        &name,
        &request.form,
        browser.cookies(),
        &context,
    )
    .await?;
    upstream_response(&state, &context, (outcome, None))
}

/// GET `/upstream/{name}/callback`: the provider's answer.
pub async fn callback(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    Path(name): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let query = Form::parse(request.uri().query().unwrap_or_default().as_bytes());
    let browser = BrowserCookies::read(request.headers(), &cookie_names(&state));
    let outcome =
        authn::finish_upstream(&state.server, &name, &query, browser.cookies(), &context).await?;
    upstream_response(&state, &context, outcome)
}

/// POST `/upstream/identity/create`: a new account for the identity.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let browser = BrowserCookies::read(&headers, &cookie_names(&state));
    let outcome =
        authn::create_upstream_account(&state.server, &request.form, browser.cookies(), &context)
            .await?;
    upstream_response(&state, &context, outcome)
}

/// POST `/upstream/identity/link`: the identity is kept (its handle in a
/// cookie) for the account page, where the user signs in and confirms.
pub async fn link(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let names = cookie_names(&state);
    let browser = BrowserCookies::read(&headers, &names);
    let handle = authn::keep_for_linking(&state.server, &request.form, browser.cookies(), &context)
        .await??;
    let mut response = see_other(&page_url(&state))?;
    names.set(&mut response, names.upstream_link(), &handle, RECORD_TTL);
    Ok(response)
}

fn page_url(state: &AppState) -> String {
    format!(
        "{}{}",
        state.server.settings().issuer,
        paths::ACCOUNT_UPSTREAMS
    )
}

fn upstream_response(
    state: &AppState,
    context: &RequestContext,
    (outcome, session): (UpstreamOutcome, Option<NewSession>),
) -> Result<Response, ApiError> {
    match outcome {
        UpstreamOutcome::ToProvider(location) => see_other(&location),
        UpstreamOutcome::Step(outcome) => signed_in_response(state, context, (outcome, session)),
        UpstreamOutcome::Unknown(page) => unknown_identity(state, page),
    }
}

fn unknown_identity(state: &AppState, page: UnknownIdentityPage) -> Result<Response, ApiError> {
    let issuer = &state.server.settings().issuer;
    render(
        StatusCode::OK,
        "upstream_unknown.html",
        minijinja::context! {
            upstream => page.upstream,
            identity => page.identity,
            email => page.email,
            name => page.name,
            client_name => page.client_name,
            may_register => page.may_register,
            csrf => page.csrf,
            create_action => format!("{issuer}{}", paths::CREATE),
            link_action => format!("{issuer}{}", paths::LINK),
        },
    )
    .ok_or(ApiError::Rendering)
}

/// GET `/account/upstreams`: the page, or the account page's sign-in first.
pub async fn account_get(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let names = cookie_names(&state);
    let cookie = cookies::read(&headers, names.session());
    let csrf = cookies::read(&headers, names.csrf());
    let Some(session) =
        session::lookup(state.server.store(), cookie.as_deref(), context.now).await?
    else {
        let cookies = Cookies {
            session: None,
            csrf: csrf.as_deref(),
        };
        let outcome = authn::sign_in_to_account(&state.server, cookies, &context).await?;
        return outcome_response(&state, outcome);
    };
    let view = View {
        session: &session,
        cookie: &cookie.unwrap_or_default(),
        pending: cookies::read(&headers, names.upstream_link()),
        csrf,
    };
    view.render(&state, &context, StatusCode::OK, None).await
}

/// POST `/account/upstreams`: link the pending identity, or remove a link.
pub async fn account_post(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let names = cookie_names(&state);
    let cookie = cookies::read(&headers, names.session());
    let Some(session) =
        session::lookup(state.server.store(), cookie.as_deref(), context.now).await?
    else {
        return see_other(&page_url(&state));
    };
    let cookie = cookie.unwrap_or_default();
    let form = &request.form;
    if !form_token_matches(&cookie, form.optional("csrf").ok().flatten()) {
        tracing::warn!("providers form rejected: CSRF value missing or not this session's");
        return Err(ApiError::Page(PageError {
            status: 403,
            title: "Form expired",
            message: "This form could not be verified. Open the page again.".to_owned(),
        }));
    }
    let pending = cookies::read(&headers, names.upstream_link());
    let csrf = cookies::read(&headers, names.csrf());
    let field = |name| form.optional(name).ok().flatten().unwrap_or_default();
    let change = match field("action") {
        "link" => {
            links::link(
                &state.server,
                &session,
                pending.as_deref(),
                csrf.as_deref(),
                &context,
            )
            .await?
        }
        "unlink" => {
            let (upstream, subject) = (field("upstream"), field("subject"));
            links::unlink(&state.server, &session, upstream, subject, &context).await?
        }
        _ => LinkChange::Refused(400, "Unknown action."),
    };
    let linked = matches!(change, LinkChange::Linked(_));
    let view = View {
        session: &session,
        cookie: &cookie,
        pending: if linked { None } else { pending },
        csrf,
    };
    let (status, note) = match change {
        LinkChange::Linked(name) => (StatusCode::OK, Ok(format!("{name} is linked."))),
        LinkChange::Unlinked(name) => (StatusCode::OK, Ok(format!("{name} is no longer linked."))),
        LinkChange::Refused(status, why) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            Err(why.to_owned()),
        ),
    };
    let mut response = view.render(&state, &context, status, Some(note)).await?;
    if linked {
        names.clear(&mut response, names.upstream_link());
    }
    Ok(response)
}

/// The providers page for a session.
struct View<'a> {
    session: &'a Session,
    cookie: &'a str,
    /// The pending-link cookie.
    pending: Option<String>,
    csrf: Option<String>,
}

impl View<'_> {
    async fn render(
        &self,
        state: &AppState,
        context: &RequestContext,
        status: StatusCode,
        note: Option<Result<String, String>>,
    ) -> Result<Response, ApiError> {
        let server = &state.server;
        let page = links::page(
            server,
            self.session,
            self.pending.as_deref(),
            self.csrf.as_deref(),
            context.now,
        )
        .await?;
        let username = page.username.clone();
        let links: Vec<_> = page
            .links
            .iter()
            .map(|link| {
                minijinja::context! {
                    upstream => &link.upstream,
                    subject => &link.subject,
                    linked => super::passkeys::date(link.linked_at),
                }
            })
            .collect();
        let pending = page.pending.as_ref().map(|pending| {
            minijinja::context! {
                upstream => &pending.upstream,
                email => &pending.identity.email,
            }
        });
        let (notice, error) = match note {
            Some(Ok(notice)) => (Some(notice), None),
            Some(Err(error)) => (None, Some(error)),
            None => (None, None),
        };
        let issuer = &server.settings().issuer;
        let mut response = render(
            status,
            "account_upstreams.html",
            minijinja::context! {
                action => page_url(state),
                account => format!("{issuer}{}", valet_core::endpoint::metadata::paths::ACCOUNT),
                username, links, pending, notice, error,
                may_link => page.may_link,
                csrf => form_token(self.cookie),
            },
        )
        .ok_or(ApiError::Rendering)?;
        no_store(&mut response);
        Ok(response)
    }
}

/// 303 to `location`.
fn see_other(location: &str) -> Result<Response, ApiError> {
    let mut reply = StatusCode::SEE_OTHER.into_response();
    let value = HeaderValue::from_str(location).map_err(|_| ApiError::Rendering)?;
    reply.headers_mut().insert(LOCATION, value);
    no_store(&mut reply);
    Ok(reply)
}
