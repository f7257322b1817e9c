//! Every path Valet serves, in one place.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use valet_core::endpoint::metadata::paths;

use crate::AppState;
use crate::handlers::{
    authorize, health, jwks, logout, metadata, status, token_endpoints, userinfo,
};
use crate::layers;
use crate::response::{method_not_allowed, not_found};

pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            paths::AUTHORIZE,
            get(authorize::authorize_get)
                .post(authorize::authorize_post)
                .fallback(method_not_allowed("GET, POST")),
        )
        .route(
            paths::LOGIN,
            post(authorize::login).fallback(method_not_allowed("POST")),
        )
        .route(
            paths::CONSENT,
            post(authorize::consent).fallback(method_not_allowed("POST")),
        )
        .route(
            paths::USERINFO,
            get(userinfo::userinfo)
                .post(userinfo::userinfo)
                .fallback(method_not_allowed("GET, POST")),
        )
        .route(
            paths::LOGOUT,
            get(logout::logout_get)
                .post(logout::logout_post)
                .fallback(method_not_allowed("GET, POST")),
        )
        .route(
            paths::TOKEN,
            post(token_endpoints::token).fallback(method_not_allowed("POST")),
        )
        .route(
            paths::INTROSPECT,
            post(token_endpoints::introspect).fallback(method_not_allowed("POST")),
        )
        .route(
            paths::REVOKE,
            post(token_endpoints::revoke).fallback(method_not_allowed("POST")),
        )
        .route(
            paths::OPENID_CONFIGURATION,
            get(metadata::metadata).fallback(method_not_allowed("GET")),
        )
        .route(
            paths::OAUTH_AUTHORIZATION_SERVER,
            get(metadata::metadata).fallback(method_not_allowed("GET")),
        )
        .route(
            paths::JWKS,
            get(jwks::jwks).fallback(method_not_allowed("GET")),
        )
        .route(
            paths::STATUS_LISTS,
            get(status::aggregation).fallback(method_not_allowed("GET")),
        )
        .route(
            paths::STATUS_EVENTS,
            get(status::events).fallback(method_not_allowed("GET")),
        )
        .route(
            paths::STATUS_LIST,
            get(status::status_list).fallback(method_not_allowed("GET")),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        .layer(layers::AroundEveryRequest {
            https: state.server.settings().is_https(),
        })
        .with_state(state)
}
