//! The console's users: list (searched by email or username, paged), and one
//! user's page with its actions: disable, enable, unlock, reset second
//! factors, sign out everywhere, grant or take the admin role.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use valet_core::account::utc;
use valet_core::admin::{Admin, AdminError, Field, FieldError, UserRecord, UserUpdate};
use valet_core::authorize::PageError;
use valet_protocol::{Form, encode_component};

use super::{Admitted, PAGE_SIZE, Refusal, for_change, for_reading, offset, page, paging, url};
use crate::AppState;
use crate::context::Context;
use crate::error::ApiError;
use crate::extract::OAuthForm;

/// Longest search text.
const MAX_SEARCH_CHARS: usize = 254;

/// `GET /admin/users?q=…&offset=…`: users whose email or username contains
/// `q` (ignoring case), oldest first.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let admitted = match for_reading(&state, &headers, &context).await? {
        Ok(admitted) => admitted,
        Err(response) => return Ok(response),
    };
    let query = Form::parse(query.unwrap_or_default().as_bytes());
    let search: String = query
        .optional("q")
        .ok()
        .flatten()
        .unwrap_or_default()
        .trim()
        .chars()
        .take(MAX_SEARCH_CHARS)
        .collect();
    let at = offset(query.optional("offset").ok().flatten());
    let admin = admitted.operator.admin(&state.server);
    let (found, total) = admin
        .search_users(
            &search,
            u32::try_from(at).unwrap_or(u32::MAX),
            u32::try_from(PAGE_SIZE).unwrap_or(u32::MAX),
        )
        .await
        .map_err(|error| {
            tracing::error!(%error, "console users page failed");
            ApiError::Rendering
        })?;
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let (previous, next) = paging(at, total);
    let base = url(&state.server, "/users");
    let encoded = encode_component(&search);
    let link = |at: usize| format!("{base}?q={encoded}&offset={at}");
    let rows: Vec<_> = found.iter().map(|u| row(&state, u)).collect();
    page(
        &state,
        &admitted,
        StatusCode::OK,
        "console_users.html",
        minijinja::context! {
            users => rows,
            search,
            action => base.clone(),
            total,
            previous => previous.map(link),
            next => next.map(link),
        },
    )
}

fn row(state: &AppState, user: &UserRecord) -> minijinja::Value {
    minijinja::context! {
        user_id => &user.user_id,
        username => &user.username,
        email => &user.email,
        disabled => user.disabled,
        admin => user.admin,
        href => format!("{}?user_id={}", url(&state.server, "/user"), encode_component(&user.user_id)),
    }
}

/// `GET /admin/user?user_id=…`.
pub async fn detail(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let admitted = match for_reading(&state, &headers, &context).await? {
        Ok(admitted) => admitted,
        Err(response) => return Ok(response),
    };
    let query = Form::parse(query.unwrap_or_default().as_bytes());
    let user_id = query.optional("user_id").ok().flatten().unwrap_or_default();
    let admin = admitted.operator.admin(&state.server);
    let user = admin.get_user(user_id).await.map_err(|e| not_found(&e))?;
    user_page(&state, &admitted, &user, None, None)
}

/// `POST /admin/user`: `action` is `disable`, `enable`, `unlock`,
/// `reset_mfa`, `end_sessions`, `grant_admin` or `revoke_admin`.
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
    let user_id = form.optional("user_id").ok().flatten().unwrap_or_default();
    let admin = admitted.operator.admin(&state.server);
    let user = admin.get_user(user_id).await.map_err(|e| not_found(&e))?;
    let action = form.optional("action").ok().flatten().unwrap_or_default();
    let outcome = act(&admin, &admitted, &user.user_id, action).await;
    super::log_audit_warnings(&admin);
    match outcome {
        Ok(notice) => {
            let user = admin
                .get_user(&user.user_id)
                .await
                .map_err(|e| not_found(&e))?;
            user_page(&state, &admitted, &user, Some(notice), None)
        }
        Err(error) => user_page(&state, &admitted, &user, None, Some(Refusal::of(&error))),
    }
}

async fn act(
    admin: &Admin<'_>,
    admitted: &Admitted,
    user_id: &str,
    action: &str,
) -> Result<String, AdminError> {
    Ok(match action {
        "disable" => {
            let revoked = admin.disable_user(user_id).await?.revoked;
            format!(
                "Disabled: {} grant(s) revoked, {} session(s) ended.",
                revoked.grants, revoked.sessions
            )
        }
        "enable" => {
            admin.enable_user(user_id).await?;
            "Enabled.".to_owned()
        }
        "unlock" => {
            admin.unlock_user(user_id).await?;
            "Unlocked: earlier failed sign-ins no longer count.".to_owned()
        }
        "reset_mfa" => {
            let (_, removed) = admin.reset_user_mfa(user_id).await?;
            if removed {
                "Second factors removed; their sessions ended.".to_owned()
            } else {
                "The user had no second factor; their sessions ended.".to_owned()
            }
        }
        "end_sessions" => {
            let ended = admin.end_user_sessions(user_id).await?;
            format!(
                "Signed out everywhere: {} session(s) ended, {} grant(s) revoked.",
                ended.sessions, ended.grants
            )
        }
        "grant_admin" | "revoke_admin" => {
            let admin_role = action == "grant_admin";
            if !admin_role && user_id == admitted.operator.user.user_id {
                // The last way back in would otherwise be the CLI.
                return Err(invalid("action", "you cannot take your own admin role"));
            }
            let update = UserUpdate {
                admin: Some(admin_role),
                ..UserUpdate::default()
            };
            admin.update_user(user_id, update).await?;
            if admin_role {
                "The user may now use the console.".to_owned()
            } else {
                "The user may no longer use the console.".to_owned()
            }
        }
        _ => return Err(invalid("action", "unknown action")),
    })
}

fn user_page(
    state: &AppState,
    admitted: &Admitted,
    user: &UserRecord,
    notice: Option<String>,
    refusal: Option<Refusal>,
) -> Result<Response, ApiError> {
    let status = refusal.as_ref().map_or(StatusCode::OK, |r| r.status);
    page(
        state,
        admitted,
        status,
        "console_user.html",
        minijinja::context! {
            user => minijinja::Value::from(minijinja::value::Serde(user)),
            created => utc(user.created_at),
            updated => utc(user.updated_at),
            is_self => user.user_id == admitted.operator.user.user_id,
            action => url(&state.server, "/user"),
            audit => format!("{}?user={}", url(&state.server, "/audit"), encode_component(&user.user_id)),
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

fn not_found(error: &AdminError) -> ApiError {
    let refusal = Refusal::of(error);
    ApiError::Page(PageError {
        status: refusal.status.as_u16(),
        title: "Not found",
        message: refusal.message,
    })
}
