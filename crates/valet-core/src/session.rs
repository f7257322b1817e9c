//! Browser sessions: a random cookie value, stored only as its SHA-256, so any
//! node can serve the session and a database dump holds no usable cookie.

use valet_jose::{b64url, random_bytes, sha256};

use crate::error::OAuthError;
use crate::secrets::random_id;
use crate::store::{Session, Store};

/// The browser's cookies a page reads: its session and its CSRF value (the
/// sign-in steps and the account pages alike).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cookies<'a> {
    pub session: Option<&'a str>,
    pub csrf: Option<&'a str>,
}

/// A session just created, with the cookie value to hand to the browser once.
pub struct NewSession {
    pub cookie_value: String,
    pub session: Session,
}

pub fn hash(cookie_value: &str) -> Vec<u8> {
    sha256(cookie_value.as_bytes()).to_vec()
}

/// A new session and its cookie value; the caller stores it (with the form
/// that signed the user in, see [`crate::store::SessionStart`]).
pub fn new(user_id: &str, amr: Vec<String>, ttl: i64, now: i64) -> Result<NewSession, OAuthError> {
    let cookie_value = b64url(random_bytes::<32>().map_err(OAuthError::server)?);
    let session = Session {
        session_hash: hash(&cookie_value),
        sid: random_id()?,
        user_id: user_id.to_owned(),
        auth_time: now,
        amr,
        created_at: now,
        expires_at: now.saturating_add(ttl),
    };
    Ok(NewSession {
        cookie_value,
        session,
    })
}

/// A fresh cookie for `old`'s session, as authenticated as before (same
/// `sid`, `auth_time`, `amr` and expiry), once `old`'s record is gone.
pub async fn renew(store: &dyn Store, old: &Session) -> Result<NewSession, OAuthError> {
    let cookie_value = b64url(random_bytes::<32>().map_err(OAuthError::server)?);
    let session = Session {
        session_hash: hash(&cookie_value),
        ..old.clone()
    };
    store.insert_session(&session).await?;
    Ok(NewSession {
        cookie_value,
        session,
    })
}

/// The live session a cookie refers to, whose user still exists and is enabled.
pub async fn lookup(
    store: &dyn Store,
    cookie_value: Option<&str>,
    now: i64,
) -> Result<Option<Session>, OAuthError> {
    let Some(value) = cookie_value.filter(|v| !v.is_empty() && v.len() <= 128) else {
        return Ok(None);
    };
    Ok(store.get_live_session(&hash(value), now).await?)
}
