//! The console's audit trail: newest first, filtered by event type, user,
//! client and actor, paged by `?offset=`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use valet_core::account::utc;
use valet_core::admin::AuditQuery;
use valet_core::audit::{AuditEvent, AuditKind};
use valet_protocol::{Form, encode_component};

use super::{PAGE_SIZE, for_reading, offset, page, paging, url};
use crate::AppState;
use crate::context::Context;
use crate::error::ApiError;

/// The console reads at most this many of the newest matching records (the
/// CLI's `valet audit` and the admin API reach further back).
const MAX_SCANNED: usize = 1_000;

/// The page's filters, as the query gives them.
struct Filters {
    event: String,
    user: String,
    client: String,
    actor: String,
}

impl Filters {
    fn of(query: &Form) -> Self {
        let value = |name: &'static str| {
            query
                .optional(name)
                .ok()
                .flatten()
                .unwrap_or_default()
                .trim()
                .chars()
                .take(256)
                .collect::<String>()
        };
        Self {
            event: value("event"),
            user: value("user"),
            client: value("client_id"),
            actor: value("actor"),
        }
    }

    fn query_string(&self) -> String {
        [
            ("event", &self.event),
            ("user", &self.user),
            ("client_id", &self.client),
            ("actor", &self.actor),
        ]
        .iter()
        .map(|(name, value)| format!("{name}={}", encode_component(value)))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// `GET /admin/audit?event=…&user=…&client_id=…&actor=…&offset=…`.
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
    let filters = Filters::of(&query);
    let at = offset(query.optional("offset").ok().flatten());
    let event = AuditKind::parse(&filters.event);
    let unknown_event = !filters.event.is_empty() && event.is_none();
    let admin = admitted.operator.admin(&state.server);
    let events = if unknown_event {
        Vec::new()
    } else {
        let found = admin
            .query_audit(AuditQuery {
                user: (!filters.user.is_empty()).then(|| filters.user.clone()),
                client_id: (!filters.client.is_empty()).then(|| filters.client.clone()),
                event,
                max_age: None,
                since: None,
                actor: (!filters.actor.is_empty()).then(|| filters.actor.clone()),
                until: None,
                min_age: None,
                limit: u32::try_from(MAX_SCANNED).unwrap_or(u32::MAX),
            })
            .await;
        found.map_err(|error| {
            tracing::error!(%error, "console audit page failed");
            ApiError::Rendering
        })?
    };
    let matching: Vec<&AuditEvent> = events.iter().collect();
    let (previous, next) = paging(at, matching.len());
    let base = url(&state.server, "/audit");
    let query_string = filters.query_string();
    let link = |at: usize| format!("{base}?{query_string}&offset={at}");
    let rows: Vec<_> = matching
        .iter()
        .skip(at)
        .take(PAGE_SIZE)
        .map(|e| row(e))
        .collect();
    let kinds: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
    page(
        &state,
        &admitted,
        StatusCode::OK,
        "console_audit.html",
        minijinja::context! {
            events => rows,
            kinds,
            event => filters.event,
            user => filters.user,
            client_id => filters.client,
            actor => filters.actor,
            action => base.clone(),
            unknown_event,
            previous => previous.map(link),
            next => next.map(link),
        },
    )
}

fn row(event: &AuditEvent) -> minijinja::Value {
    let detail: Vec<String> = event
        .detail
        .iter()
        .map(|(name, value)| match value.as_str() {
            Some(text) => format!("{name}={text}"),
            None => format!("{name}={value}"),
        })
        .collect();
    minijinja::context! {
        at => utc(event.at),
        event => event.event.as_str(),
        user_id => &event.user_id,
        client_id => &event.client_id,
        address => &event.address,
        detail => detail.join(" "),
    }
}
