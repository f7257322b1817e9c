//! Valet's revocation feed: a Server-Sent Events stream (WHATWG HTML §9.2) at the
//! metadata's `valet_status_list_events_endpoint`. An event `revoked` with data
//! `{"uri": …, "idx": …}` means "refetch that list now"; the data is only a hint, the bit
//! is always read from the freshly fetched, signed list. While the stream is down, lists
//! are still polled at their `ttl`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Response;
use serde::Deserialize;
use tokio::time::Instant;

use super::cache::StatusCache;
use crate::credentials::StreamToken;
use crate::http::{FetchError, Http};

/// Reconnection backoff: from this, doubling, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A connection that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(30);

/// A stream the issuer ends cleanly after at least this long (Valet closes each stream
/// at its maximum lifetime, and the guard is expected to come back) is reopened after
/// [`FIRST_BACKOFF`], without counting as a failure. One ended sooner backs off as usual,
/// so an issuer that closes every stream at once is not hammered.
const CLEAN_END_MIN: Duration = Duration::from_secs(1);

/// One line, or one event's data, longer than this ends the connection.
const MAX_LINE: usize = 64 * 1024;

/// How a connection ended.
enum Ended {
    /// The issuer closed the stream cleanly (end of its lifetime, shutdown).
    ByIssuer,
    /// A read error, a timeout or an unparsable stream.
    Broken(String),
}

/// Why a subscription failed, for logs (never a credential).
enum SubscribeError {
    Token(FetchError),
    Stream(FetchError),
}

impl SubscribeError {
    /// What the operator can do about it, when that is clear from the status.
    fn hint(&self, has_credentials: bool) -> &'static str {
        match self {
            SubscribeError::Token(FetchError::Status(400 | 401)) => {
                " (check the client id and secret, and that the client may use the scope valet:status with the issuer as audience)"
            }
            SubscribeError::Stream(FetchError::Status(401)) if has_credentials => {
                " (the issuer refused the guard's token: check that the client's audience includes the issuer)"
            }
            SubscribeError::Stream(FetchError::Status(401)) => {
                " (the issuer requires a token for its event stream: give the guard status credentials, `valet guard --client-id`)"
            }
            SubscribeError::Stream(FetchError::Status(403)) => {
                " (the guard's client lacks the scope valet:status)"
            }
            _ => "",
        }
    }
}

impl fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscribeError::Token(error) => write!(f, "cannot obtain a stream token: {error}"),
            SubscribeError::Stream(error) => write!(f, "{error}"),
        }
    }
}

/// Follows the stream until aborted, reconnecting with backoff. With `token`, each
/// subscription presents the guard's own access token.
pub(crate) async fn follow(
    cache: Arc<StatusCache>,
    http: Http,
    url: String,
    token: Option<Arc<StreamToken>>,
) {
    let mut backoff = FIRST_BACKOFF;
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        match subscribe(&http, &url, token.as_deref()).await {
            Ok(response) => {
                tracing::debug!(%url, "subscribed to status list events");
                failures = 0;
                // Notices sent while disconnected are lost: refetch whatever is cached.
                cache.wake_all();
                match read(&cache, response).await {
                    Ended::ByIssuer if started.elapsed() >= CLEAN_END_MIN => {
                        tracing::debug!(%url, "the issuer ended the status list event stream; reconnecting");
                        backoff = FIRST_BACKOFF;
                    }
                    Ended::ByIssuer => tracing::warn!(
                        %url,
                        "the issuer closed the status list event stream at once; polling lists at their ttl until it is back"
                    ),
                    Ended::Broken(reason) => tracing::warn!(
                        %url, %reason,
                        "status list event stream dropped; polling lists at their ttl until it is back"
                    ),
                }
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let hint = error.hint(token.is_some());
                if failures == 1 {
                    tracing::warn!(%url, %error, "cannot subscribe to status list events{hint}; retrying");
                } else {
                    tracing::debug!(%url, %error, "cannot subscribe to status list events{hint}");
                }
            }
        }
        if started.elapsed() >= STABLE {
            backoff = FIRST_BACKOFF;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Opens the stream, with the guard's token if it has credentials. A 401 means the token
/// is no longer accepted (revoked, or signed with a key the issuer dropped): one fresh
/// token is fetched and presented at once (RFC 6750 §3.1 `invalid_token`).
async fn subscribe(
    http: &Http,
    url: &str,
    token: Option<&StreamToken>,
) -> Result<Response, SubscribeError> {
    let Some(token) = token else {
        return http
            .event_stream(url, None)
            .await
            .map_err(SubscribeError::Stream);
    };
    let authorization = token.authorization().await.map_err(SubscribeError::Token)?;
    match http.event_stream(url, Some(authorization.clone())).await {
        Err(FetchError::Status(401)) => {
            tracing::debug!(%url, "the status list event stream refused the guard's token; fetching a new one");
            token.invalidate(&authorization).await;
            let fresh = token.authorization().await.map_err(|error| {
                tracing::debug!(token_endpoint = %token.token_endpoint(), "token refetch failed");
                SubscribeError::Token(error)
            })?;
            http.event_stream(url, Some(fresh))
                .await
                .map_err(SubscribeError::Stream)
        }
        other => other.map_err(SubscribeError::Stream),
    }
}

/// Reads events until the connection ends.
async fn read(cache: &StatusCache, mut response: Response) -> Ended {
    let mut parser = EventParser::default();
    let mut events = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if let Err(error) = parser.feed(&chunk, &mut events) {
                    return Ended::Broken(error.to_owned());
                }
                for event in events.drain(..) {
                    handle(cache, &event);
                }
            }
            Ok(None) => return Ended::ByIssuer,
            Err(error) => return Ended::Broken(error.to_string()),
        }
    }
}

#[derive(Deserialize)]
struct Notice {
    uri: String,
}

fn handle(cache: &StatusCache, event: &Event) {
    // The issuer lost track of what this subscriber missed: refetch every list.
    if event.event == "resync" {
        cache.wake_all();
        tracing::debug!("resync notice: refetching every cached status list");
        return;
    }
    if event.event != "revoked" {
        return;
    }
    match serde_json::from_str::<Notice>(&event.data) {
        Ok(notice) if cache.allowed(&notice.uri) => {
            let cached = cache.wake(&notice.uri);
            tracing::debug!(uri = %notice.uri, cached, "revocation notice");
        }
        _ => tracing::debug!("ignoring a malformed revocation notice"),
    }
}

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// The `event` field, `message` by default.
    pub(crate) event: String,
    /// The `data` lines, joined with `\n`.
    pub(crate) data: String,
}

/// An incremental parser of the `text/event-stream` format (WHATWG HTML §9.2.6): lines end
/// in CR, LF or CRLF (split across chunks too); `:` starts a comment (keep-alives); a blank
/// line dispatches the event if it has data; `id` and `retry` are ignored.
#[derive(Default)]
pub(crate) struct EventParser {
    line: Vec<u8>,
    after_cr: bool,
    started: bool,
    event: String,
    data: String,
    has_data: bool,
}

impl EventParser {
    /// Feeds bytes; complete events are appended to `out`. An over-long line or event is
    /// an error (the caller drops the connection).
    pub(crate) fn feed(&mut self, bytes: &[u8], out: &mut Vec<Event>) -> Result<(), &'static str> {
        for &byte in bytes {
            match byte {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\r' | b'\n' => {
                    self.after_cr = byte == b'\r';
                    self.end_line(out)?;
                }
                _ => {
                    self.after_cr = false;
                    if self.line.len() >= MAX_LINE {
                        return Err("an event stream line is too long");
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<Event>) -> Result<(), &'static str> {
        let raw = std::mem::take(&mut self.line);
        let mut line = String::from_utf8_lossy(&raw).into_owned();
        if !self.started {
            self.started = true;
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest.to_owned();
            }
        }
        if line.is_empty() {
            if self.has_data {
                out.push(Event {
                    event: if self.event.is_empty() {
                        "message".to_owned()
                    } else {
                        std::mem::take(&mut self.event)
                    },
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.data.len().saturating_add(value.len()) > MAX_LINE {
                    return Err("an event's data is too long");
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use super::*;

    fn parse(chunks: &[&[u8]]) -> Vec<Event> {
        let mut parser = EventParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out).unwrap();
        }
        out
    }

    fn event(event: &str, data: &str) -> Event {
        Event {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_comments_and_line_endings() {
        let stream =
            b"\xEF\xBB\xBF: keep-alive\n\nevent: revoked\ndata: {\"uri\":\"u\",\"idx\":1}\n\n\
            data:a\r\ndata: b\r\n\r\nid: 7\nretry: 10\nevent: x\n\nevent:revoked\rdata\r\r";
        assert_eq!(
            parse(&[stream]),
            [
                event("revoked", "{\"uri\":\"u\",\"idx\":1}"),
                event("message", "a\nb"),
                event("revoked", ""),
            ]
        );
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        let stream: &[u8] =
            b": ping\r\n\r\nevent: revoked\r\ndata: {}\r\n\r\nevent: revoked\ndata: 2\n\n";
        let whole = parse(&[stream]);
        assert_eq!(whole.len(), 2);
        for split in 0..stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(parse(&[a, b]), whole, "split at {split}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(parse(&bytes), whole);
    }

    #[test]
    fn unfinished_events_are_not_dispatched() {
        assert!(parse(&[b"event: revoked\ndata: {}\n"]).is_empty());
    }

    #[test]
    fn overlong_lines_are_refused() {
        let mut parser = EventParser::default();
        let mut out = Vec::new();
        let long = vec![b'a'; MAX_LINE + 1];
        assert!(parser.feed(&long, &mut out).is_err());
        let mut parser = EventParser::default();
        let line = format!("data: {}\n", "a".repeat(MAX_LINE - 10));
        parser.feed(line.as_bytes(), &mut out).unwrap();
        assert!(parser.feed(line.as_bytes(), &mut out).is_err());
    }
}
