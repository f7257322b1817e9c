//! The guard's side of a protected revocation feed (the status stream credential): the
//! token is obtained by the client credentials grant with HTTP Basic authentication,
//! presented as a bearer token, reused until 30 s before it expires, replaced once after
//! a 401, and never shown in `Debug` output or logs. And the feed's lifetime: a stream the
//! issuer ends cleanly is reopened at once and is not an outage.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use valet_guard::{Guard, TokenError};

use super::support::*;

const SECRET: &str = "s3cr3t:with&odd=chars+";

fn basic(id: &str, secret: &str) -> String {
    let encode = |part: &str| form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            encode(id),
            encode(secret)
        ))
    )
}

/// Waits until a revocation announced now is seen by `guard` for `token`.
async fn revocation_arrives(issuer: &FakeIssuer, guard: &Guard, idx: usize, token: &str) {
    issuer.revoke("0", idx, true);
    let seen = tokio::time::timeout(Duration::from_secs(1), async {
        while guard.verify(token).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(seen.is_ok(), "the revocation did not arrive within 1 s");
    assert_eq!(guard.verify(token).await.unwrap_err(), TokenError::Revoked);
}

#[tokio::test]
async fn the_stream_token_is_fetched_presented_and_replaced_after_a_401() {
    let issuer = FakeIssuer::start().await;
    issuer.require_stream_token("tok-1");
    let guard = issuer
        .guard_with(issuer.config().status_credentials("guards", SECRET))
        .await;

    // One token request: client credentials, scope and resource (the issuer), Basic auth
    // with the id and secret form-urlencoded (RFC 6749 §2.3.1).
    let requests = issuer.token_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        requests[0].0.as_deref(),
        Some(basic("guards", SECRET).as_str())
    );
    let form: Vec<(String, String)> = form_urlencoded::parse(requests[0].1.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(
        form,
        [
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("scope".to_owned(), "valet:status".to_owned()),
            ("resource".to_owned(), issuer.url.clone()),
        ]
    );
    assert_eq!(issuer.stream_auth(), [Some("Bearer tok-1".to_owned())]);
    revocation_arrives(&issuer, &guard, 1, &issuer.token_at("0", 1)).await;

    // A reconnection reuses the cached token (it expires in an hour).
    issuer.drop_event_streams(false);
    wait_until(Duration::from_secs(5), || issuer.stream_auth().len() == 2).await;
    issuer.wait_for_streams(1).await;
    assert_eq!(issuer.stream_auth()[1].as_deref(), Some("Bearer tok-1"));
    assert_eq!(issuer.token_requests().len(), 1);

    // The issuer stops accepting it (revoked, say): after the 401 the guard fetches one
    // new token at once and presents it.
    issuer.require_stream_token("tok-2");
    issuer.drop_event_streams(false);
    wait_until(Duration::from_secs(5), || issuer.stream_auth().len() == 4).await;
    issuer.wait_for_streams(1).await;
    assert_eq!(
        issuer.stream_auth()[2..],
        [
            Some("Bearer tok-1".to_owned()),
            Some("Bearer tok-2".to_owned())
        ]
    );
    assert_eq!(issuer.token_requests().len(), 2);
    revocation_arrives(&issuer, &guard, 2, &issuer.token_at("0", 2)).await;
}

#[tokio::test]
async fn a_token_is_replaced_30_seconds_before_it_expires() {
    let issuer = FakeIssuer::start().await;
    // 31 s: reusable for one second only.
    issuer.state.token_expires_in.store(31, Ordering::SeqCst);
    let _guard = issuer
        .guard_with(issuer.config().status_credentials("guards", SECRET))
        .await;
    assert_eq!(issuer.token_requests().len(), 1);
    issuer.drop_event_streams(false);
    wait_until(Duration::from_secs(5), || issuer.stream_auth().len() == 2).await;
    assert_eq!(issuer.token_requests().len(), 1, "still fresh: reused");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    issuer.drop_event_streams(false);
    wait_until(Duration::from_secs(5), || issuer.stream_auth().len() == 3).await;
    assert_eq!(
        issuer.token_requests().len(),
        2,
        "within 30 s of expiry: replaced"
    );
    assert_eq!(issuer.stream_auth()[2].as_deref(), Some("Bearer tok-2"));
}

#[tokio::test]
async fn an_enormous_expires_in_does_not_stop_the_stream() {
    let issuer = FakeIssuer::start().await;
    // `Instant + u64::MAX seconds` would overflow (and panic) the stream's task.
    issuer
        .state
        .token_expires_in
        .store(u64::MAX, Ordering::SeqCst);
    let _guard = issuer
        .guard_with(issuer.config().status_credentials("guards", SECRET))
        .await;
    issuer.drop_event_streams(false);
    wait_until(Duration::from_secs(5), || issuer.stream_auth().len() == 2).await;
    assert_eq!(issuer.stream_auth()[1].as_deref(), Some("Bearer tok-1"));
}

#[tokio::test]
async fn without_credentials_the_stream_is_opened_anonymously() {
    let issuer = FakeIssuer::start().await;
    let _guard = issuer.guard().await;
    assert_eq!(issuer.stream_auth(), [None]);
    assert!(issuer.token_requests().is_empty());
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

// The current-thread runtime polls every task of the guard on this thread, so the
// thread's default subscriber sees all of their events.
#[tokio::test(flavor = "current_thread")]
async fn the_secret_and_the_tokens_never_reach_logs_or_debug_output() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let issuer = FakeIssuer::start().await;
    // First the token endpoint refuses the client, then the stream refuses the token.
    issuer.state.token_refused.store(true, Ordering::SeqCst);
    issuer.require_stream_token("tok-3");
    let config = issuer
        .config()
        .status_credentials("guards", SECRET)
        .build()
        .unwrap();
    let guard = Guard::new(config.clone()).await.unwrap();
    wait_until(Duration::from_secs(5), || {
        issuer.token_requests().len() >= 2
    })
    .await;
    issuer.state.token_refused.store(false, Ordering::SeqCst);
    issuer.wait_for_streams(1).await;
    assert!(
        issuer
            .stream_auth()
            .contains(&Some("Bearer tok-3".to_owned()))
    );

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("status list events"), "{logs}");
    assert!(
        logs.contains("(check the client id and secret")
            && logs.contains("cannot obtain a stream token: HTTP status 401"),
        "the operator is told what to fix: {logs}"
    );
    let shown = [format!("{guard:?}"), format!("{config:?}"), logs];
    let basic = basic("guards", SECRET);
    let encoded_secret: String = form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
    for text in &shown {
        for secret in [
            SECRET,
            encoded_secret.as_str(),
            &basic[6..],
            "tok-1",
            "tok-2",
            "tok-3",
        ] {
            assert!(!text.contains(secret), "{secret:?} shown in:\n{text}");
        }
    }
    assert!(
        shown[1].contains("guards"),
        "the client id is shown: {}",
        shown[1]
    );
}

/// Valet ends each stream at its maximum lifetime: the guard reopens it within a moment
/// every time (no growing backoff), keeps verifying without a 503, and revocations keep
/// arriving on the new streams.
#[tokio::test]
async fn streams_the_issuer_ends_cleanly_are_reopened_at_once() {
    let issuer = FakeIssuer::start().await;
    issuer
        .state
        .stream_lifetime_ms
        .store(1200, Ordering::SeqCst);
    let guard = issuer
        .guard_with(issuer.config().status_policy(valet_guard::StatusPolicy {
            max_staleness: Duration::from_secs(2),
            fail_open: false,
        }))
        .await;
    let token = issuer.token();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        assert!(guard.verify(&token).await.is_ok());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let times = issuer.state.stream_times.lock().unwrap().clone();
    assert!(times.len() >= 5, "{} streams in 6 s", times.len());
    for pair in times.windows(2) {
        let ended = pair[0].1.expect("an earlier stream ended");
        let gap = pair[1].0.duration_since(ended);
        assert!(gap < Duration::from_millis(900), "reopened after {gap:?}");
    }
    revocation_arrives(&issuer, &guard, 3, &issuer.token_at("0", 3)).await;
}
