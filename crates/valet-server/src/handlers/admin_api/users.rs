//! `/admin/v1/users`: create, list, read, change, delete, disable, enable,
//! unlock, reset second factors, list and end sessions. `{user}` is a user id,
//! username or email, as `valet user` takes it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use valet_core::admin::users::ChangedUser;
use valet_core::admin::{EndedSessions, NewUser, Page, SessionRecord, UserRecord, UserUpdate};
use valet_core::endpoint::admin_api::AdminAccess;
use valet_core::users::Password;

use super::clients::{fresh, present};
use super::{AdminApiError, Caller, ErrorBody, Paging, json_body, query};
use crate::AppState;

/// A user to create.
#[derive(Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct NewUserRequest {
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// Absent: the user cannot sign in with a password until one is set.
    pub password: Option<String>,
}

impl From<NewUserRequest> for NewUser {
    fn from(request: NewUserRequest) -> Self {
        Self {
            username: request.username,
            email: request.email,
            email_verified: request.email_verified,
            name: request.name,
            given_name: request.given_name,
            family_name: request.family_name,
            password: request.password.map(Password::new),
            // The console's admin role is given from the CLI or the console.
            admin: false,
        }
    }
}

/// A change to a user's profile: absent fields stay, `null` removes.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct UserUpdateRequest {
    #[serde(deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    pub email_verified: Option<bool>,
    #[serde(deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub given_name: Option<Option<String>>,
    #[serde(deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub family_name: Option<Option<String>>,
}

impl From<UserUpdateRequest> for UserUpdate {
    fn from(request: UserUpdateRequest) -> Self {
        Self {
            email: request.email,
            email_verified: request.email_verified,
            name: request.name,
            given_name: request.given_name,
            family_name: request.family_name,
            admin: None,
        }
    }
}

/// A list page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserRecord>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

impl From<Page<UserRecord>> for UserPage {
    fn from(page: Page<UserRecord>) -> Self {
        Self {
            items: page.items,
            next_cursor: page.next_cursor,
        }
    }
}

/// The answer to `POST /users/{user}/mfa/reset`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaReset {
    pub user: UserRecord,
    /// Whether the user had any second factor.
    pub removed: bool,
}

/// The user's live sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub items: Vec<SessionRecord>,
}

#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUserRequest,
    responses((status = 201, body = UserRecord), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn create_user(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Write).await?;
    let request: NewUserRequest = json_body(&body)?;
    Ok(fresh(
        StatusCode::CREATED,
        admin.create_user(request.into()).await?,
    ))
}

#[utoipa::path(get, path = "/users", tag = "users", params(Paging),
    responses((status = 200, body = UserPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Read).await?;
    let paging: Paging = query(raw.as_deref())?;
    let page = admin.list_users_page(&paging.into()).await?;
    Ok(fresh(StatusCode::OK, UserPage::from(page)))
}

#[utoipa::path(get, path = "/users/{user}", tag = "users",
    params(("user" = String, Path, description = "User id, username or email")),
    responses((status = 200, body = UserRecord), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Read).await?;
    Ok(fresh(StatusCode::OK, admin.get_user(&user).await?))
}

#[utoipa::path(patch, path = "/users/{user}", tag = "users",
    params(("user" = String, Path, description = "User id, username or email")),
    request_body = UserUpdateRequest,
    responses((status = 200, body = ChangedUser), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_user(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(user): Path<String>,
    body: Bytes,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Write).await?;
    let request: UserUpdateRequest = json_body(&body)?;
    Ok(fresh(
        StatusCode::OK,
        admin.update_user(&user, request.into()).await?,
    ))
}

#[utoipa::path(delete, path = "/users/{user}", tag = "users",
    params(("user" = String, Path, description = "User id, username or email")),
    responses((status = 200, body = UserRecord, description = "Deleted, grants revoked"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete_user(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Write).await?;
    Ok(fresh(StatusCode::OK, admin.delete_user(&user).await?))
}

#[utoipa::path(post, path = "/users/{user}/disable", tag = "users",
    params(("user" = String, Path, description = "User id, username or email")),
    responses(
        (status = 200, body = ChangedUser, description = "Disabled; grants and sessions ended"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn disable_user(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Write).await?;
    Ok(fresh(StatusCode::OK, admin.disable_user(&user).await?))
}

#[utoipa::path(post, path = "/users/{user}/enable", tag = "users",
    params(("user" = String, Path, description = "User id, username or email")),
    responses((status = 200, body = ChangedUser), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn enable_user(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Write).await?;
    Ok(fresh(StatusCode::OK, admin.enable_user(&user).await?))
}

#[utoipa::path(post, path = "/users/{user}/unlock", tag = "users",
    params(("user" = String, Path, description = "User id, username or email")),
    responses((status = 200, body = UserRecord, description = "Earlier login failures forgotten"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn unlock_user(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Write).await?;
    Ok(fresh(StatusCode::OK, admin.unlock_user(&user).await?))
}

#[utoipa::path(post, path = "/users/{user}/mfa/reset", tag = "users",
    params(("user" = String, Path, description = "User id, username or email")),
    responses(
        (status = 200, body = MfaReset,
            description = "Second factors and passkeys removed, sessions ended"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn reset_mfa(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Write).await?;
    let (user, removed) = admin.reset_user_mfa(&user).await?;
    Ok(fresh(StatusCode::OK, MfaReset { user, removed }))
}

#[utoipa::path(get, path = "/users/{user}/sessions", tag = "users",
    params(("user" = String, Path, description = "User id, username or email")),
    responses((status = 200, body = SessionList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_sessions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Read).await?;
    let items = admin.list_user_sessions(&user).await?;
    Ok(fresh(StatusCode::OK, SessionList { items }))
}

#[utoipa::path(delete, path = "/users/{user}/sessions", tag = "users",
    params(("user" = String, Path, description = "User id, username or email")),
    responses(
        (status = 200, body = EndedSessions,
            description = "Every session ended and every grant revoked"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn end_sessions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Response, AdminApiError> {
    let admin = caller.admin(&state, AdminAccess::Write).await?;
    Ok(fresh(StatusCode::OK, admin.end_user_sessions(&user).await?))
}
