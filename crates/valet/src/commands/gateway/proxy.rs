//! `/api` calls forwarded with the session's access token, and the static app.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{self, AUTHORIZATION};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::api_client::CallError;
use super::handlers::{
    CSRF_HEADER, check_csrf, current_session, no_store, not_signed_in, refused, unavailable,
};
use super::oidc::TokenError;
use super::session::Session;
use super::{Gateway, now};
use crate::commands::forwarding::{Direction, Upstream, check_path, forwarded_headers_without};

pub async fn api_or_static(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let path = request.uri().path();
    let api = gateway.apis.iter().find_map(|(prefix, upstream)| {
        let rest = path.strip_prefix(prefix.as_str())?;
        (rest.is_empty() || rest.starts_with('/')).then(|| (rest.to_owned(), upstream))
    });
    match api {
        Some((rest, _)) if rest.is_empty() => refused(StatusCode::NOT_FOUND, "no such path"),
        Some((rest, upstream)) => forward(&gateway, upstream, &rest, request).await,
        None => match &gateway.static_dir {
            Some(dir) if matches!(*request.method(), Method::GET | Method::HEAD) => {
                static_file(dir, path).await
            }
            _ => refused(StatusCode::NOT_FOUND, "no such path"),
        },
    }
}

/// Forwards an API call with `Authorization: Bearer` the session's access token
/// (refreshed first if it is about to expire); the browser's `Cookie` and
/// `Authorization` are not forwarded, nor the upstream's `Set-Cookie` returned.
///
/// Bodies stream both ways as `http_body` bodies, so their length goes with
/// them: a bodiless GET is sent without a body (not as an empty chunked one), and
/// a reply with a `Content-Length` is answered with it.
async fn forward(gateway: &Gateway, upstream: &Upstream, rest: &str, request: Request) -> Response {
    if !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) && let Err(reason) = check_csrf(gateway, request.headers())
    {
        return refused(StatusCode::FORBIDDEN, reason);
    }
    let target = match upstream.target_for(rest, request.uri().query()) {
        Ok(target) => target,
        Err(reason) => return refused(StatusCode::BAD_REQUEST, reason),
    };
    let session = match current_session(gateway, request.headers()).await {
        Ok(Some(session)) => session,
        Ok(None) => return not_signed_in(),
        Err(error) => return unavailable(&error),
    };
    let bearer = match fresh_access_token(gateway, session).await {
        Ok(session) => bearer(&session.access_token),
        Err(response) => return response,
    };
    let Some(bearer) = bearer else {
        return unavailable("the access token is not a header value");
    };
    let (parts, body) = request.into_parts();
    let mut headers = forwarded_headers_without(
        &parts.headers,
        Direction::Request,
        &[header::COOKIE, AUTHORIZATION, CSRF_HEADER],
    );
    headers.insert(AUTHORIZATION, bearer);
    match gateway
        .api_http
        .call(upstream, parts.method, target, headers, body)
        .await
    {
        Ok(reply) => {
            let headers = forwarded_headers_without(
                &reply.headers,
                Direction::Response,
                &[header::SET_COOKIE],
            );
            let mut response = Response::new(reply.body);
            *response.status_mut() = reply.status;
            *response.headers_mut() = headers;
            response
        }
        Err(CallError::BadBody) => refused(
            StatusCode::BAD_REQUEST,
            "the request body could not be read",
        ),
        Err(CallError::Unreachable(error)) => {
            tracing::warn!(%error, "upstream unreachable");
            refused(StatusCode::BAD_GATEWAY, "upstream unreachable")
        }
    }
}

/// `Bearer <token>` as a header value (`None` if the issuer sent a token with
/// characters a header cannot carry).
fn bearer(access_token: &str) -> Option<HeaderValue> {
    let mut value = String::with_capacity(7 + access_token.len());
    value.push_str("Bearer ");
    value.push_str(access_token);
    let mut value = HeaderValue::try_from(value).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The session with a fresh access token, refreshed first when it is due: one
/// refresh per session at a time; requests that waited for it use its result.
async fn fresh_access_token(
    gateway: &Gateway,
    (session_id, session): (String, Arc<Session>),
) -> Result<Arc<Session>, Response> {
    if now() < session.refresh_at {
        return Ok(session);
    }
    let lock = gateway.refresh_lock(&session_id);
    let _refreshing = lock.lock().await;
    // Another request may have refreshed it while this one waited.
    let session = match gateway.sessions.load(&session_id).await {
        Ok(Some(session)) => session,
        Ok(None) => return Err(not_signed_in()),
        Err(error) => return Err(unavailable(&error)),
    };
    let now = now();
    if now < session.refresh_at {
        return Ok(session);
    }
    let Some(refresh_token) = session.refresh_token.clone() else {
        return if now < session.expires_at {
            Ok(session)
        } else {
            let _ = gateway.sessions.delete(&session_id).await;
            Err(not_signed_in())
        };
    };
    let provider = gateway
        .provider()
        .await
        .map_err(|error| unavailable(&error))?;
    match provider.refresh(&refresh_token).await {
        Ok(tokens) => {
            let mut session = Session::clone(&session);
            session.take_tokens(tokens, now);
            gateway
                .sessions
                .save(&session_id, &session)
                .await
                .map_err(|error| unavailable(&error))?;
            Ok(Arc::new(session))
        }
        // The grant is gone (logout elsewhere, revocation): so is the session.
        Err(TokenError::Refused(error)) => {
            tracing::info!(%error, "refresh refused; the session ends");
            let _ = gateway.sessions.delete(&session_id).await;
            Err(not_signed_in())
        }
        Err(TokenError::Unavailable(error)) if now < session.expires_at => {
            tracing::warn!(%error, "refresh failed; the current token is still valid");
            Ok(session)
        }
        Err(TokenError::Unavailable(error)) => Err(unavailable(&error)),
    }
}

/// A file under `dir`, or `dir/index.html` for a path that names none (the app's
/// own routes). Paths with dot segments, encoded characters or backslashes
/// serve the index too: they never leave `dir`.
async fn static_file(dir: &Path, path: &str) -> Response {
    let relative = path.trim_start_matches('/');
    let candidate = (check_path(path).is_ok() && !relative.is_empty() && !path.contains('%'))
        .then(|| dir.join(relative));
    let (file, content_type) = match candidate {
        Some(file) if tokio::fs::metadata(&file).await.is_ok_and(|m| m.is_file()) => {
            let content_type = content_type(&file);
            (file, content_type)
        }
        _ => (dir.join("index.html"), "text/html; charset=utf-8"),
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            let mut response = bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        Err(_) => no_store(refused(StatusCode::NOT_FOUND, "no such file")),
    }
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|ext| ext.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
