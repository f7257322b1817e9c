//! Every path Valet serves, in one place.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use valet_core::AuthorizationServer;
use valet_core::endpoint::metadata::paths;

use crate::AppState;
use crate::cors::Cors;
use crate::error::{method_not_allowed, not_found};
use crate::handlers::{
    account, admin_api, authorize, client_registration, console, device, health, jwks, logout,
    metadata, par, passkeys, register, reset, status, token_endpoints, upstream, userinfo,
    verify_email,
};
use crate::layers;
pub use crate::layers::ContinueTrace;

/// What the operator chose about the public listener's observability.
#[derive(Debug, Clone, Copy)]
pub struct RouteOptions {
    /// `/metrics` on this listener (no separate metrics listener configured).
    pub metrics: bool,
    /// One access log line per request.
    pub access_log: bool,
    /// One trace span per request (OTLP export configured).
    pub traced: bool,
    /// Continues the trace a trusted proxy's request headers carry (W3C
    /// `traceparent`) in the request's span; set with `traced`.
    pub continue_trace: Option<ContinueTrace>,
}

impl Default for RouteOptions {
    /// Today's single listener: metrics next to the endpoints, access log on, no
    /// trace spans.
    fn default() -> Self {
        Self {
            metrics: true,
            access_log: true,
            traced: false,
            continue_trace: None,
        }
    }
}

/// [`app_with`] the default [`RouteOptions`].
pub fn app(state: Arc<AppState>) -> Router {
    app_with(state, RouteOptions::default())
}

/// The endpoints are served under the issuer's path, where discovery says they
/// are: for `https://host/valet`, `/valet/token` and so on. Health and metrics
/// stay at the root, for probes and scrapers.
pub fn app_with(state: Arc<AppState>, options: RouteOptions) -> Router {
    let server = &state.server;
    let endpoints = Router::new()
        .route(
            paths::AUTHORIZE,
            get(authorize::authorize_get)
                .post(authorize::authorize_post)
                .fallback(method_not_allowed("GET, POST")),
        )
        .route(
            paths::USERINFO,
            get(userinfo::userinfo)
                .post(userinfo::userinfo)
                .fallback(method_not_allowed("GET, POST"))
                .layer(Cors::clients(server, "GET, POST")),
        )
        .route(
            paths::LOGOUT,
            get(logout::logout_get)
                .post(logout::logout_post)
                .fallback(method_not_allowed("GET, POST")),
        )
        .route(
            paths::TOKEN,
            post(token_endpoints::token)
                .fallback(method_not_allowed("POST"))
                .layer(Cors::clients(server, "POST")),
        )
        .route(
            paths::INTROSPECT,
            post(token_endpoints::introspect).fallback(method_not_allowed("POST")),
        )
        .route(
            paths::REVOKE,
            post(token_endpoints::revoke)
                .fallback(method_not_allowed("POST"))
                .layer(Cors::clients(server, "POST")),
        )
        .merge(passkey_routes())
        .merge(device_and_par_routes(server))
        .merge(client_registration_routes())
        .merge(upstream_routes())
        // The admin HTTP API (README, "Admin API").
        .nest(admin_api::PREFIX, admin_api::routes(&state));
    let endpoints = browser_pages(public_documents(endpoints))
        .merge(self_service())
        // The web console for admin users.
        .merge(console_routes());
    let mut routes = under_issuer_path(endpoints, &state.server.settings().issuer)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    if options.metrics {
        routes = routes.route("/metrics", get(health::metrics));
    }
    routes
        .fallback(not_found)
        // Branding and languages: every page is rendered in the request's language.
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            crate::locale::choose_language,
        ))
        .layer(layers::AroundEveryRequest {
            https: state.server.settings().is_https(),
            trusted_proxies: (!state.trusted_proxies.is_empty())
                .then(|| Arc::new(state.trusted_proxies.clone())),
            access_log: options.access_log,
            traced: options.traced,
            continue_trace: options.continue_trace,
        })
        .with_state(state)
}

/// Observability: the metrics listener (`metrics_bind`), for the scraper and
/// the probes only. No access log and no spans: a scrape every few seconds
/// would drown the requests that matter.
pub fn metrics_app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(health::metrics))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(not_found)
        .with_state(state)
}

/// The pages people use on their own: registration, password reset, email
/// verification. Each answers 404 while its setting is off.
fn self_service() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            paths::REGISTER,
            get(register::register_get)
                .post(register::register_post)
                .fallback(method_not_allowed("GET, POST")),
        )
        .route(
            paths::RESET,
            get(reset::reset_get)
                .post(reset::reset_post)
                .fallback(method_not_allowed("GET, POST")),
        )
        .route(
            paths::RESET_CONFIRM,
            get(reset::reset_confirm_get)
                .post(reset::reset_confirm_post)
                .fallback(method_not_allowed("GET, POST")),
        )
        .route(
            paths::VERIFY_EMAIL,
            get(verify_email::verify_email_get)
                .post(verify_email::verify_email_post)
                .fallback(method_not_allowed("GET, POST")),
        )
}

/// Sign-in with other providers ("Sign in with …", `valet upstream add`):
/// the sign-in page's buttons, the providers' redirects back, the choices for
/// a new identity, and the account page's providers.
fn upstream_routes() -> Router<Arc<AppState>> {
    use valet_core::upstream::paths as upstream_paths;
    Router::new()
        .route(
            upstream_paths::START,
            post(upstream::start).fallback(method_not_allowed("POST")),
        )
        .route(
            upstream_paths::CALLBACK,
            get(upstream::callback).fallback(method_not_allowed("GET")),
        )
        .route(
            upstream_paths::CREATE,
            post(upstream::create).fallback(method_not_allowed("POST")),
        )
        .route(
            upstream_paths::LINK,
            post(upstream::link).fallback(method_not_allowed("POST")),
        )
        .route(
            upstream_paths::ACCOUNT_UPSTREAMS,
            get(upstream::account_get)
                .post(upstream::account_post)
                .fallback(method_not_allowed("GET, POST")),
        )
}

/// The web console (`/admin`): pages for users with the admin role, over
/// Valet's own browser session.
fn console_routes() -> Router<Arc<AppState>> {
    let at = |path: &str| format!("{}{path}", paths::CONSOLE);
    Router::new()
        .route(
            paths::CONSOLE,
            get(console::home).fallback(method_not_allowed("GET")),
        )
        .route(
            &at("/sign-in"),
            get(console::sign_in).fallback(method_not_allowed("GET")),
        )
        .route(
            &at("/clients"),
            get(console::clients::list)
                .post(console::clients::create)
                .fallback(method_not_allowed("GET, POST")),
        )
        .route(
            &at("/clients/new"),
            get(console::clients::new_form).fallback(method_not_allowed("GET")),
        )
        .route(
            &at("/client"),
            get(console::clients::detail)
                .post(console::clients::change)
                .fallback(method_not_allowed("GET, POST")),
        )
        .route(
            &at("/users"),
            get(console::users::list).fallback(method_not_allowed("GET")),
        )
        .route(
            &at("/user"),
            get(console::users::detail)
                .post(console::users::change)
                .fallback(method_not_allowed("GET, POST")),
        )
        .route(
            &at("/keys"),
            get(console::keys::list)
                .post(console::keys::change)
                .fallback(method_not_allowed("GET, POST")),
        )
        .route(
            &at("/audit"),
            get(console::audit::list).fallback(method_not_allowed("GET")),
        )
}

/// The device authorization grant (RFC 8628) and pushed authorization
/// requests (RFC 9126): the client-authenticated endpoints are CORS-readable
/// by registered origins like `/token`; `/device` is a page.
fn device_and_par_routes(server: &Arc<AuthorizationServer>) -> Router<Arc<AppState>> {
    Router::new()
        .route(
            paths::DEVICE_AUTHORIZATION,
            post(device::device_authorization)
                .fallback(method_not_allowed("POST"))
                .layer(Cors::clients(server, "POST")),
        )
        .route(
            paths::DEVICE,
            get(device::device_get)
                .post(device::device_post)
                .fallback(method_not_allowed("GET, POST")),
        )
        .route(
            paths::PAR,
            post(par::push)
                .fallback(method_not_allowed("POST"))
                .layer(Cors::clients(server, "POST")),
        )
}

/// Dynamic client registration (RFC 7591) and each self-registered client's
/// configuration endpoint (RFC 7592); both answer 404 while
/// `client_registration` is closed. Browser-based agents (MCP clients) may
/// register from any origin: the endpoint takes no cookies, only its JSON and
/// an initial access token in `Authorization`.
fn client_registration_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            paths::REGISTRATION,
            post(client_registration::register)
                .fallback(method_not_allowed("POST"))
                .layer(Cors::public("POST")),
        )
        .route(
            paths::REGISTRATION_CLIENT,
            get(client_registration::read)
                .put(client_registration::replace)
                .delete(client_registration::delete)
                .fallback(method_not_allowed("GET, PUT, DELETE")),
        )
}

/// The login page's passwordless sign-in and the account's passkeys page.
fn passkey_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            paths::LOGIN_PASSKEY_OPTIONS,
            post(passkeys::login_options).fallback(method_not_allowed("POST")),
        )
        .route(
            paths::SECOND_FACTOR_PASSKEY_OPTIONS,
            post(passkeys::second_factor_options).fallback(method_not_allowed("POST")),
        )
        .route(
            paths::LOGIN_PASSKEY,
            post(passkeys::login).fallback(method_not_allowed("POST")),
        )
        .route(
            paths::ACCOUNT_PASSKEYS,
            get(passkeys::page)
                .post(passkeys::add)
                .fallback(method_not_allowed("GET, POST")),
        )
        .route(
            paths::ACCOUNT_PASSKEY_OPTIONS,
            post(passkeys::add_options).fallback(method_not_allowed("POST")),
        )
        .route(
            paths::ACCOUNT_PASSKEY_REMOVE,
            post(passkeys::remove).fallback(method_not_allowed("POST")),
        )
}

/// The documents anyone may read, from any origin (CORS `*`): discovery, the
/// JWKS and the status lists. The revocation event stream is for guards, not
/// browsers: no CORS.
fn public_documents(endpoints: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    endpoints
        .route(
            paths::OPENID_CONFIGURATION,
            get(metadata::metadata)
                .fallback(method_not_allowed("GET"))
                .layer(Cors::public("GET")),
        )
        .route(
            paths::OAUTH_AUTHORIZATION_SERVER,
            get(metadata::metadata)
                .fallback(method_not_allowed("GET"))
                .layer(Cors::public("GET")),
        )
        .route(
            paths::JWKS,
            get(jwks::jwks)
                .fallback(method_not_allowed("GET"))
                .layer(Cors::public("GET")),
        )
        .route(
            paths::STATUS_LISTS,
            get(status::aggregation)
                .fallback(method_not_allowed("GET"))
                .layer(Cors::public("GET")),
        )
        .route(
            paths::STATUS_EVENTS,
            get(status::events).fallback(method_not_allowed("GET")),
        )
        .route(
            paths::STATUS_LIST,
            get(status::status_list)
                .fallback(method_not_allowed("GET"))
                .layer(Cors::public("GET")),
        )
}

/// The forms of the sign-in steps and the account page.
fn browser_pages(endpoints: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    endpoints
        .route(
            paths::LOGIN,
            post(authorize::login).fallback(method_not_allowed("POST")),
        )
        .route(
            paths::SECOND_FACTOR,
            post(authorize::second_factor).fallback(method_not_allowed("POST")),
        )
        .route(
            paths::ACCOUNT,
            get(account::account_get)
                .post(account::account_post)
                .fallback(method_not_allowed("GET, POST")),
        )
        .route(
            paths::CONSENT,
            post(authorize::consent).fallback(method_not_allowed("POST")),
        )
}

/// Nests `endpoints` under the path of `issuer` (none for `https://host`). For a
/// path issuer the RFC 8414 metadata is also served where §3.1 puts it: the
/// well-known suffix between the host and the path
/// (`/.well-known/oauth-authorization-server/valet`); the OpenID Connect
/// configuration is at the path plus the suffix (OIDC Discovery §4).
fn under_issuer_path(endpoints: Router<Arc<AppState>>, issuer: &str) -> Router<Arc<AppState>> {
    let path = issuer_path(issuer);
    if path.is_empty() {
        return endpoints;
    }
    Router::new()
        .route(
            &format!("{}{path}", paths::OAUTH_AUTHORIZATION_SERVER),
            get(metadata::metadata)
                .fallback(method_not_allowed("GET"))
                .layer(Cors::public("GET")),
        )
        .nest(path, endpoints)
}

/// The path of an issuer URL without its trailing slash: `""` for
/// `https://host`, `"/valet"` for `https://host/valet/`.
fn issuer_path(issuer: &str) -> &str {
    let after_scheme = issuer.split_once("://").map_or(issuer, |(_, rest)| rest);
    let path = after_scheme
        .find('/')
        .and_then(|at| after_scheme.get(at..))
        .unwrap_or_default();
    path.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::issuer_path;

    #[test]
    fn the_path_of_an_issuer() {
        assert_eq!(issuer_path("https://id.example"), "");
        assert_eq!(issuer_path("https://id.example/"), "");
        assert_eq!(issuer_path("https://id.example:8443/valet"), "/valet");
        assert_eq!(issuer_path("https://id.example/a/b/"), "/a/b");
        assert_eq!(issuer_path("http://127.0.0.1:8080/sso"), "/sso");
    }
}
