//! The console's clients: list, create, show and edit, rotate the secret,
//! delete. A client is named by `?client_id=` (a metadata-document client's
//! id is a URL, which a path segment could not hold).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use valet_core::account::utc;
use valet_core::admin::{AdminError, ClientRecord, ClientUpdate, Field, NewClient};
use valet_protocol::Form;

use super::{Admitted, Refusal, for_change, for_reading, page, see_other, url};
use crate::AppState;
use crate::context::Context;
use crate::error::ApiError;
use crate::extract::OAuthForm;

/// `GET /admin/clients`.
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
    let clients = admin.list_clients().await.map_err(internal)?;
    let rows: Vec<_> = clients
        .iter()
        .map(|c| {
            minijinja::context! {
                client_id => &c.client_id,
                name => &c.name,
                kind => c.kind,
                origin => c.origin,
                href => client_href(&state, &c.client_id),
            }
        })
        .collect();
    page(
        &state,
        &admitted,
        StatusCode::OK,
        "console_clients.html",
        minijinja::context! { clients => rows, new => url(&state.server, "/clients/new") },
    )
}

/// `GET /admin/clients/new`: the registration form.
pub async fn new_form(
    State(state): State<Arc<AppState>>,
    Context(context): Context,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let admitted = match for_reading(&state, &headers, &context).await? {
        Ok(admitted) => admitted,
        Err(response) => return Ok(response),
    };
    new_page(&state, &admitted, StatusCode::OK, &Form::default(), None)
}

/// `POST /admin/clients`: registers a client; its page then shows the
/// secret, once.
pub async fn create(
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
    let new = match new_client(form) {
        Ok(new) => new,
        Err(error) => {
            let refusal = Refusal::of(&error);
            return new_page(&state, &admitted, refusal.status, form, Some(refusal));
        }
    };
    let admin = admitted.operator.admin(&state.server);
    let registered = admin.register_client(new).await;
    super::log_audit_warnings(&admin);
    match registered {
        Ok(registered) => {
            let secret = registered.secret.as_ref().map(|s| s.expose().to_owned());
            let notice = "The client was registered.";
            client_page(
                &state,
                &admitted,
                &registered.client,
                Shown::new(notice, secret),
            )
        }
        Err(error) => {
            let refusal = Refusal::of(&error);
            new_page(&state, &admitted, refusal.status, form, Some(refusal))
        }
    }
}

/// `GET /admin/client?client_id=…`: the client and its edit form.
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
    let client_id = query
        .optional("client_id")
        .ok()
        .flatten()
        .unwrap_or_default();
    let admin = admitted.operator.admin(&state.server);
    match admin.get_client(client_id).await {
        Ok(client) => client_page(&state, &admitted, &client, Shown::default()),
        Err(error) => Err(not_found_page(&error)),
    }
}

/// `POST /admin/client`: `action` is `update`, `rotate_secret` or `delete`.
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
    let client_id = form
        .optional("client_id")
        .ok()
        .flatten()
        .unwrap_or_default();
    let admin = admitted.operator.admin(&state.server);
    let current = admin
        .get_client(client_id)
        .await
        .map_err(|e| not_found_page(&e))?;
    let action = form.optional("action").ok().flatten().unwrap_or_default();
    let outcome = match action {
        "update" => update(&admin, client_id, form).await,
        "rotate_secret" => rotate(&admin, client_id, form).await,
        "delete" => delete(&admin, client_id, form).await,
        _ => Err(AdminError::Invalid(valet_core::admin::FieldError {
            field: Field::new("action"),
            value: None,
            reason: "unknown action".into(),
        })),
    };
    super::log_audit_warnings(&admin);
    super::forget_client(&state.server, client_id);
    match outcome {
        Ok(Done::Deleted) => see_other(&url(&state.server, "/clients")),
        Ok(Done::Shown(client, shown)) => client_page(&state, &admitted, &client, shown),
        Err(error) => {
            let shown = Shown {
                refusal: Some(Refusal::of(&error)),
                form: (action == "update").then(|| form.clone()),
                ..Shown::default()
            };
            client_page(&state, &admitted, &current, shown)
        }
    }
}

enum Done {
    Shown(Box<ClientRecord>, Shown),
    Deleted,
}

async fn update(
    admin: &valet_core::admin::Admin<'_>,
    client_id: &str,
    form: &Form,
) -> Result<Done, AdminError> {
    let update = ClientUpdate {
        name: Some(text(form, "name")),
        redirect_uris: Some(lines(form, "redirect_uris")),
        post_logout_redirect_uris: Some(lines(form, "post_logout_redirect_uris")),
        allowed_origins: Some(lines(form, "allowed_origins")),
        scopes: Some(words(form, "scopes")),
        audiences: Some(lines(form, "audiences")),
        access_token_ttl: Some(optional_seconds(form, "access_token_ttl")?),
        skip_consent: Some(checked(form, "skip_consent")),
        require_mfa: Some(checked(form, "require_mfa")),
        refresh_grace_seconds: Some(optional_seconds(form, "refresh_grace_seconds")?.unwrap_or(0)),
        ..ClientUpdate::default()
    };
    let updated = admin.update_client(client_id, update).await?;
    let notice = if updated.changed.is_empty() {
        "Nothing changed.".to_owned()
    } else if updated.revoked_grants > 0 {
        format!(
            "Saved ({}); {} grant(s) of the client were revoked.",
            updated.changed.join(", "),
            updated.revoked_grants
        )
    } else {
        format!("Saved ({}).", updated.changed.join(", "))
    };
    Ok(Done::Shown(
        Box::new(updated.client),
        Shown::new(notice, None),
    ))
}

async fn rotate(
    admin: &valet_core::admin::Admin<'_>,
    client_id: &str,
    form: &Form,
) -> Result<Done, AdminError> {
    let overlap = optional_seconds(form, "overlap_seconds")?.unwrap_or(0);
    let rotated = admin.rotate_client_secret(client_id, overlap).await?;
    let notice = match rotated.previous_valid_until {
        Some(until) => format!("New secret made; the old one works until {}.", utc(until)),
        None => "New secret made; the old one no longer works.".to_owned(),
    };
    let client = admin.get_client(client_id).await?;
    let secret = Some(rotated.secret.expose().to_owned());
    Ok(Done::Shown(Box::new(client), Shown::new(notice, secret)))
}

async fn delete(
    admin: &valet_core::admin::Admin<'_>,
    client_id: &str,
    form: &Form,
) -> Result<Done, AdminError> {
    if !checked(form, "confirm") {
        return Err(AdminError::Invalid(valet_core::admin::FieldError {
            field: Field::new("confirm"),
            value: None,
            reason: "tick the box to confirm the deletion".into(),
        }));
    }
    admin.delete_client(client_id).await?;
    Ok(Done::Deleted)
}

/// What a client page shows besides the client.
#[derive(Default)]
struct Shown {
    notice: Option<String>,
    /// A new secret, shown once.
    secret: Option<String>,
    refusal: Option<Refusal>,
    /// The refused edit form, to show as it was sent.
    form: Option<Form>,
}

impl Shown {
    fn new(notice: impl Into<String>, secret: Option<String>) -> Self {
        Self {
            notice: Some(notice.into()),
            secret,
            ..Self::default()
        }
    }
}

fn client_page(
    state: &AppState,
    admitted: &Admitted,
    client: &ClientRecord,
    shown: Shown,
) -> Result<Response, ApiError> {
    let status = shown.refusal.as_ref().map_or(StatusCode::OK, |r| r.status);
    // A refused edit shows what was sent, so the operator can correct it.
    let value = |name: &'static str, stored: String| match &shown.form {
        Some(form) => form
            .optional(name)
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_owned(),
        None => stored,
    };
    let flag = |name: &'static str, stored: bool| match &shown.form {
        Some(form) => checked(form, name),
        None => stored,
    };
    let edit = minijinja::context! {
        name => value("name", client.name.clone()),
        redirect_uris => value("redirect_uris", client.redirect_uris.join("\n")),
        post_logout_redirect_uris => value("post_logout_redirect_uris", client.post_logout_redirect_uris.join("\n")),
        allowed_origins => value("allowed_origins", client.allowed_origins.join("\n")),
        scopes => value("scopes", client.scopes.join(" ")),
        audiences => value("audiences", client.audiences.join("\n")),
        access_token_ttl => value("access_token_ttl", client.access_token_ttl.map(|t| t.to_string()).unwrap_or_default()),
        refresh_grace_seconds => value("refresh_grace_seconds", client.refresh_grace_seconds.to_string()),
        skip_consent => flag("skip_consent", client.skip_consent),
        require_mfa => flag("require_mfa", client.require_mfa),
    };
    page(
        state,
        admitted,
        status,
        "console_client.html",
        minijinja::context! {
            client => minijinja::Value::from(minijinja::value::Serde(client)),
            has_secret => client.token_endpoint_auth_methods.iter().any(|m| m.starts_with("client_secret_")),
            created => utc(client.created_at),
            updated => utc(client.updated_at),
            edit,
            action => url(&state.server, "/client"),
            notice => shown.notice,
            secret => shown.secret,
            error => shown.refusal.as_ref().map(|r| r.message.clone()),
            error_field => shown.refusal.as_ref().and_then(|r| r.field),
        },
    )
}

fn new_page(
    state: &AppState,
    admitted: &Admitted,
    status: StatusCode,
    form: &Form,
    refusal: Option<Refusal>,
) -> Result<Response, ApiError> {
    let value = |name: &'static str| form.optional(name).ok().flatten().unwrap_or_default();
    page(
        state,
        admitted,
        status,
        "console_client_new.html",
        minijinja::context! {
            action => url(&state.server, "/clients"),
            form => minijinja::context! {
                name => value("name"),
                public => value("type") == "public",
                redirect_uris => value("redirect_uris"),
                post_logout_redirect_uris => value("post_logout_redirect_uris"),
                allowed_origins => value("allowed_origins"),
                scopes => value("scopes"),
                audiences => value("audiences"),
                access_token_ttl => value("access_token_ttl"),
                skip_consent => checked(form, "skip_consent"),
                require_mfa => checked(form, "require_mfa"),
            },
            error => refusal.as_ref().map(|r| r.message.clone()),
            error_field => refusal.as_ref().and_then(|r| r.field),
        },
    )
}

fn new_client(form: &Form) -> Result<NewClient, AdminError> {
    Ok(NewClient {
        name: text(form, "name"),
        public: form.optional("type").ok().flatten() == Some("public"),
        redirect_uris: lines(form, "redirect_uris"),
        post_logout_redirect_uris: lines(form, "post_logout_redirect_uris"),
        allowed_origins: lines(form, "allowed_origins"),
        scopes: words(form, "scopes"),
        audiences: lines(form, "audiences"),
        access_token_ttl: optional_seconds(form, "access_token_ttl")?,
        skip_consent: checked(form, "skip_consent"),
        require_mfa: checked(form, "require_mfa"),
        ..NewClient::default()
    })
}

fn client_href(state: &AppState, client_id: &str) -> String {
    format!(
        "{}?client_id={}",
        url(&state.server, "/client"),
        valet_protocol::encode_component(client_id)
    )
}

fn text(form: &Form, name: &'static str) -> String {
    form.optional(name)
        .ok()
        .flatten()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// A textarea's entries, one a line, blank lines dropped.
fn lines(form: &Form, name: &'static str) -> Vec<String> {
    text(form, name)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A field's space-separated words (scopes, as OAuth spells them).
fn words(form: &Form, name: &'static str) -> Vec<String> {
    text(form, name)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn checked(form: &Form, name: &'static str) -> bool {
    form.optional(name).ok().flatten().is_some()
}

/// A number of seconds, or `None` for an empty field.
fn optional_seconds(form: &Form, name: &'static str) -> Result<Option<i64>, AdminError> {
    let value = text(form, name);
    if value.is_empty() {
        return Ok(None);
    }
    value.parse::<i64>().map(Some).map_err(|_| {
        AdminError::Invalid(valet_core::admin::FieldError {
            field: Field::new(name),
            value: Some(value.clone()),
            reason: "must be a whole number of seconds".into(),
        })
    })
}

fn not_found_page(error: &AdminError) -> ApiError {
    let refusal = Refusal::of(error);
    ApiError::Page(valet_core::authorize::PageError {
        status: refusal.status.as_u16(),
        title: "Not found",
        message: refusal.message,
    })
}

fn internal(error: AdminError) -> ApiError {
    tracing::error!(%error, "console page failed");
    ApiError::Rendering
}
