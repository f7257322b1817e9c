//! The admin API's OpenAPI 3.1 document, generated from the handlers and
//! their types (utoipa), served unauthenticated at `/admin/v1/openapi.json`
//! and checked in at `docs/openapi.json` (a test keeps the two equal).

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{audit, clients, grants, keys, users};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Valet admin API",
        description = "Manage Valet's clients, users, signing keys and grants, and read the audit trail. \
            Authorised by a Valet access token for the audience `{issuer}/admin` with the scope \
            `admin:read` (GET) or `admin:write` (every change); see README, \"Admin API\".",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "/admin/v1", description = "Under the issuer's URL")),
    paths(
        clients::create_client,
        clients::list_clients,
        clients::get_client,
        clients::update_client,
        clients::rotate_secret,
        clients::delete_client,
        users::create_user,
        users::list_users,
        users::get_user,
        users::update_user,
        users::delete_user,
        users::disable_user,
        users::enable_user,
        users::unlock_user,
        users::reset_mfa,
        users::list_sessions,
        users::end_sessions,
        keys::list_keys,
        keys::rotate_key,
        keys::import_keys,
        keys::retire_key,
        grants::list_grants,
        grants::revoke_grants,
        grants::revoke_grant,
        audit::query_audit,
    ),
    modifiers(&BearerToken),
    security(("access_token" = [])),
    tags(
        (name = "clients", description = "OAuth clients"),
        (name = "users", description = "Users and their sessions"),
        (name = "keys", description = "Signing keys"),
        (name = "grants", description = "Live grants (refresh tokens and the access tokens issued under them)"),
        (name = "audit", description = "The audit trail"),
    )
)]
pub struct AdminApiDoc;

/// The bearer token scheme (RFC 6750; a DPoP-bound token is sent as
/// `Authorization: DPoP` with a proof, RFC 9449).
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "access_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A Valet access token (RFC 9068) for `{issuer}/admin` with admin:read or admin:write",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as checked in: pretty JSON with a final newline.
pub fn document_json() -> String {
    let mut json = AdminApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"));
    json.push('\n');
    json
}

/// `GET /admin/v1/openapi.json` (no token needed: it describes, it reveals
/// nothing stored).
pub async fn document() -> Response {
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "application/json")],
        document_json(),
    )
        .into_response()
}
