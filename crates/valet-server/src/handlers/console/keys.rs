//! The console's signing keys: every key with its state (pending, signing,
//! retiring, verify-only), and the two changes an operator makes by hand:
//! rotate an algorithm, retire a key.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use valet_core::account::utc;
use valet_core::admin::{Admin, AdminError, Field, FieldError};
use valet_jose::Algorithm;

use super::{Admitted, Refusal, for_change, for_reading, page, url};
use crate::AppState;
use crate::context::Context;
use crate::error::ApiError;
use crate::extract::OAuthForm;

/// `GET /admin/keys`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let admitted = match for_reading(&state, &headers, &context).await? {
        Ok(admitted) => admitted,
        Err(response) => return Ok(response),
    };
    let admin = admitted.operator.admin(&state.server);
    keys_page(&state, &admitted, &admin, None, None).await
}

/// `POST /admin/keys`: `action` is `rotate` (with `alg`) or `retire` (with
/// `kid`).
pub async fn change(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    request: OAuthForm,
) -> Result<Response, ApiError> {
    let form = &request.form;
    let admitted = match for_change(&state, &headers, &context, form).await? {
        Ok(admitted) => admitted,
        Err(response) => return Ok(response),
    };
    let admin = admitted.operator.admin(&state.server);
    let keys = admin.keys(state.server.key_manager());
    let field = |name: &'static str| form.optional(name).ok().flatten().unwrap_or_default();
    let outcome = match field("action") {
        "rotate" => match field("alg").parse::<Algorithm>() {
            Ok(alg) => keys.rotate(alg).await.map(|key| {
                format!(
                    "New {} key {} published; it signs from {}.",
                    key.alg,
                    key.kid,
                    utc(key.signs_from)
                )
            }),
            Err(_) => Err(invalid("alg", "must be ES256, RS256 or EdDSA")),
        },
        "retire" => keys.retire(field("kid")).await.map(|until| {
            format!(
                "Key {} retired: it leaves the key set at {}.",
                field("kid"),
                utc(until)
            )
        }),
        _ => Err(invalid("action", "unknown action")),
    };
    super::log_audit_warnings(&admin);
    match outcome {
        Ok(notice) => keys_page(&state, &admitted, &admin, Some(notice), None).await,
        Err(error) => {
            let refusal = Refusal::of(&error);
            keys_page(&state, &admitted, &admin, None, Some(refusal)).await
        }
    }
}

async fn keys_page(
    state: &AppState,
    admitted: &Admitted,
    admin: &Admin<'_>,
    notice: Option<String>,
    refusal: Option<Refusal>,
) -> Result<Response, ApiError> {
    let keys = admin
        .keys(state.server.key_manager())
        .list()
        .await
        .map_err(|error| {
            tracing::error!(%error, "console keys page failed");
            ApiError::Rendering
        })?;
    let rows: Vec<_> = keys
        .iter()
        .map(|k| {
            minijinja::context! {
                kid => &k.kid,
                alg => k.alg.to_string(),
                state => k.state,
                generation => k.generation,
                created => utc(k.created_at),
                activates => k.activates_at.map(utc),
                publish_until => k.publish_until.map(utc),
                retirable => k.state != "signing" && k.publish_until.is_none(),
            }
        })
        .collect();
    let algorithms: Vec<String> = Algorithm::ALL.iter().map(ToString::to_string).collect();
    let status = refusal.as_ref().map_or(StatusCode::OK, |r| r.status);
    page(
        state,
        admitted,
        status,
        "console_keys.html",
        minijinja::context! {
            keys => rows,
            algorithms,
            action => url(&state.server, "/keys"),
            notice,
            error => refusal.map(|r| r.message),
        },
    )
}

fn invalid(field: &'static str, reason: &'static str) -> AdminError {
    AdminError::Invalid(FieldError {
        field: Field::new(field),
        value: None,
        reason: reason.into(),
    })
}
