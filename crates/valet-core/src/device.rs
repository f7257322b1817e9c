//! The device authorization grant's records (RFC 8628): a request made at
//! `/device_authorization`, found again by the user at `/device` through its
//! user code and by the device at `/token` through its device code.
//!
//! ```text
//!  POST /device_authorization ─▶ DeviceCode  (pending)   key: SHA-256(device_code)
//!                                DeviceUserCode          key: SHA-256(user code)
//!                                DevicePoll  (interval)  key: SHA-256(device_code)
//!  /device: user code ─▶ sign-in steps ─▶ consent ─allow─▶ grant + one code (hash only),
//!                                          │              DeviceCode approved(code hash)
//!                                          └─deny──▶ DeviceCode denied
//!           (the user code is taken on either decision: one decision per code)
//!  /token device_code ─▶ pending: authorization_pending; too fast: slow_down;
//!                        denied: access_denied; expired: expired_token;
//!                        approved: the code is redeemed once (a replay revokes the grant)
//! ```
//!
//! All three are single-use records, each its own kind: the decision and the
//! polls are written to different records, so a poll can never overwrite the
//! user's decision. The device code record is kept [`RECORD_GRACE`] beyond the
//! code's life, so a late poll learns `expired_token` rather than
//! `invalid_grant`. Only hashes of the codes are stored.

use serde::{Deserialize, Serialize};
use valet_jose::{b64url, b64url_decode, random_bytes, sha256};

use crate::error::OAuthError;
use crate::store::{SingleUseKind, Store, StoreError};

/// RFC 8628 §6.1: a user code from an alphabet without vowels (no words) and
/// without look-alikes; 8 of 20 characters are about 34.5 bits, enough against
/// online guessing within the code's life under the throttle at `/device`.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code (shown as two groups of four).
pub const USER_CODE_LEN: usize = 8;
/// RFC 8628 §3.5: what `slow_down` adds to the interval.
pub const SLOW_DOWN_STEP: i64 = 5;
/// How long a device code's record outlives the code (see the module docs).
pub const RECORD_GRACE: i64 = 600;

/// A device authorization request as stored under its device code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceRequest {
    pub client_id: String,
    pub scope: Vec<String>,
    pub resources: Vec<String>,
    /// When the device code stops working (Unix seconds).
    pub expires_at: i64,
    pub decision: Decision,
}

/// The user's decision on a device request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Pending,
    /// Allowed: the grant was made with an authorization code whose hash
    /// (base64url) is here; the device's next poll redeems it.
    Approved {
        code_hash: String,
    },
    Denied,
}

/// When the device last polled, and how long it must wait between polls.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Polls {
    pub interval: i64,
    pub last_poll_at: Option<i64>,
}

/// What a user code stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserCodeRecord {
    /// The device code's key, base64url.
    device_key: String,
}

/// The store key of a device code.
pub fn device_key(device_code: &str) -> [u8; 32] {
    sha256(device_code.as_bytes())
}

/// A user code as typed, normalized (RFC 8628 §6.1: case and dashes do not
/// matter); `None` if it cannot be one.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// How a user code is shown: `BCDF-GHJK`.
pub fn display_user_code(code: &str) -> String {
    match (code.get(..4), code.get(4..)) {
        (Some(head), Some(tail)) => format!("{head}-{tail}"),
        _ => code.to_owned(),
    }
}

/// The store key of a normalized user code.
pub fn user_code_key(code: &str) -> [u8; 32] {
    sha256(code.as_bytes())
}

/// A fresh user code, uniformly drawn from the alphabet (rejection sampling).
fn new_user_code() -> Result<String, OAuthError> {
    let mut code = String::with_capacity(USER_CODE_LEN);
    while code.len() < USER_CODE_LEN {
        let bytes = random_bytes::<16>().map_err(OAuthError::server)?;
        for byte in bytes {
            // 240 = 12 × 20: below it every character is equally likely.
            if byte < 240 && code.len() < USER_CODE_LEN {
                let index = usize::from(byte) % USER_CODE_ALPHABET.len();
                if let Some(c) = USER_CODE_ALPHABET.get(index) {
                    code.push(char::from(*c));
                }
            }
        }
    }
    Ok(code)
}

/// A new request's codes, handed to the device once.
pub struct NewCodes {
    pub device_code: String,
    /// Normalized (no dash).
    pub user_code: String,
}

/// Stores a new pending request and returns its codes: a 256-bit device code
/// and a user code not in use (drawn again on the rare collision).
pub async fn create(
    store: &dyn Store,
    request: &DeviceRequest,
    interval: i64,
) -> Result<NewCodes, OAuthError> {
    let device_code = b64url(random_bytes::<32>().map_err(OAuthError::server)?);
    let key = device_key(&device_code);
    store
        .insert_single_use(
            SingleUseKind::DeviceCode,
            &key,
            &to_json(request)?,
            request.expires_at.saturating_add(RECORD_GRACE),
        )
        .await?;
    let polls = Polls {
        interval,
        last_poll_at: None,
    };
    store
        .insert_single_use(
            SingleUseKind::DevicePoll,
            &key,
            &to_json(&polls)?,
            request.expires_at.saturating_add(RECORD_GRACE),
        )
        .await?;
    let pointer = UserCodeRecord {
        device_key: b64url(key),
    };
    for _ in 0..8 {
        let user_code = new_user_code()?;
        let inserted = store
            .insert_single_use(
                SingleUseKind::DeviceUserCode,
                &user_code_key(&user_code),
                &to_json(&pointer)?,
                request.expires_at,
            )
            .await;
        match inserted {
            Ok(()) => {
                return Ok(NewCodes {
                    device_code,
                    user_code,
                });
            }
            Err(StoreError::Conflict) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(OAuthError::server("no free user code after 8 draws"))
}

/// The pending request a user code stands for, with its device key, if the
/// code is live and the request still waits for a decision at `now`.
pub async fn find_pending(
    store: &dyn Store,
    user_code: &str,
    now: i64,
) -> Result<Option<(Vec<u8>, DeviceRequest)>, OAuthError> {
    let Some(record) = store
        .get_single_use(
            SingleUseKind::DeviceUserCode,
            &user_code_key(user_code),
            now,
        )
        .await?
    else {
        return Ok(None);
    };
    let Ok(pointer) = serde_json::from_str::<UserCodeRecord>(&record.payload) else {
        return Ok(None);
    };
    let Ok(device_key) = b64url_decode(&pointer.device_key) else {
        return Ok(None);
    };
    let request = load(store, &device_key, now).await?;
    Ok(request
        .filter(|r| r.decision == Decision::Pending && now < r.expires_at)
        .map(|r| (device_key, r)))
}

/// The request stored under a device key, if its record is live.
pub async fn load(
    store: &dyn Store,
    device_key: &[u8],
    now: i64,
) -> Result<Option<DeviceRequest>, OAuthError> {
    let record = store
        .get_single_use(SingleUseKind::DeviceCode, device_key, now)
        .await?;
    Ok(record.and_then(|r| serde_json::from_str(&r.payload).ok()))
}

/// Takes the user code: `true` for the one caller that may decide.
pub async fn take_user_code(
    store: &dyn Store,
    user_code_key: &[u8],
    now: i64,
) -> Result<bool, OAuthError> {
    Ok(store
        .take_single_use(SingleUseKind::DeviceUserCode, user_code_key, now)
        .await?
        .is_some())
}

/// Records the user's decision on the request.
pub async fn decide(
    store: &dyn Store,
    device_key: &[u8],
    request: &DeviceRequest,
    decision: Decision,
) -> Result<bool, OAuthError> {
    let decided = DeviceRequest {
        decision,
        ..request.clone()
    };
    let payload = to_json(&decided)?;
    Ok(store
        .update_single_use(SingleUseKind::DeviceCode, device_key, &payload)
        .await?)
}

/// The device's polls so far.
pub async fn polls(
    store: &dyn Store,
    device_key: &[u8],
    now: i64,
) -> Result<Option<Polls>, OAuthError> {
    let record = store
        .get_single_use(SingleUseKind::DevicePoll, device_key, now)
        .await?;
    Ok(record.and_then(|r| serde_json::from_str(&r.payload).ok()))
}

/// Saves the device's polls.
pub async fn save_polls(
    store: &dyn Store,
    device_key: &[u8],
    polls: Polls,
) -> Result<(), OAuthError> {
    let payload = to_json(&polls)?;
    store
        .update_single_use(SingleUseKind::DevicePoll, device_key, &payload)
        .await?;
    Ok(())
}

fn to_json<T: Serialize>(value: &T) -> Result<String, OAuthError> {
    serde_json::to_string(value).map_err(OAuthError::server)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_typed_loosely_and_drawn_from_the_alphabet() {
        assert_eq!(
            normalize_user_code(" bcdf-ghjk ").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(normalize_user_code("BCDFGHJ"), None);
        assert_eq!(normalize_user_code("BCDFGHJA"), None);
        assert_eq!(normalize_user_code("BCDFGHJKL"), None);
        for _ in 0..50 {
            let code = new_user_code().unwrap();
            assert_eq!(normalize_user_code(&code).as_deref(), Some(code.as_str()));
        }
        assert_eq!(display_user_code("BCDFGHJK"), "BCDF-GHJK");
    }
}
