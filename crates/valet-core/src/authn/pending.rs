//! The interaction: a pending authorization request and the stage it is at,
//! which is the state the sign-in steps consume and produce.
//!
//! Until the user signs in, the request is carried by the browser: sealed
//! (AES-256-GCM under a key derived from the master key for this purpose and
//! the current period only, see [`carried_key_period`]) with an expiry, in the login form, and bound to the browser's CSRF value
//! (whose hash it holds). So an anonymous `GET /authorize` writes nothing to the
//! store. From the sign-in on it is kept in the store: a record under an id
//! derived from the carried value marks the login form completed (inserting it
//! is what makes a carried login form complete only once; it stays until the
//! request would have expired), and a request that needs consent moves on as
//! an interaction of its own.

use serde::{Deserialize, Serialize};
use valet_jose::{PeriodKeys, b64url, b64url_decode, constant_time_eq, random_bytes, sha256};
use valet_protocol::authorize::{Prompt, ResponseMode};

use super::verify::{Proved, SignedIn};
use crate::error::OAuthError;
use crate::secrets::random_id;
use crate::store::{FormWrite, Interaction, InteractionChange, Store};

/// What the user is being asked for. Each step consumes one stage and yields the
/// next (see the diagram in [`super`]). The serialized form (`"stage": …` next
/// to the sign-in's fields) is what stored and carried requests hold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    AwaitingLogin,
    /// The first factor is proved; the user is asked for a second one. Only
    /// ever stored, never carried.
    AwaitingSecondFactor(Proved),
    /// The first factor is proved and a second is required but none is
    /// enrolled: the user enrols one (TOTP) before going on. Stored only.
    AwaitingEnrolment(Proved),
    /// Signed in; the user is asked to allow the scopes.
    AwaitingConsent(SignedIn),
    /// A carried request whose login form was completed (the code issued, or
    /// the request moved on to consent): kept only so that the same login form
    /// cannot complete again.
    Completed,
}

/// Where a request's interaction lives, which decides how a step that moves it
/// on writes (see [`advance`] and [`complete`]).
#[derive(Debug, Clone)]
pub enum Whereabouts {
    /// A request just made at `/authorize`: nothing is stored yet.
    Fresh,
    /// Carried sealed in the login form (the form's `interaction` value).
    Carried(String),
    /// Stored under this id (a form after the sign-in).
    Stored(String),
}

/// The validated request, as the code will be issued for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub scope: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub response_mode: ResponseMode,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub resources: Vec<String>,
    /// `acr_values` asked for two factors ([`crate::mfa::ACR_MFA`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mfa_requested: bool,
    /// RFC 9449 §10: the DPoP key thumbprint the code will be bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    /// SHA-256 of the browser's CSRF value, base64url.
    pub csrf_hash: String,
    pub stage: Stage,
    /// A device's request (RFC 8628) entered at `/device`: the steps end with
    /// the user's decision recorded for the device, not with a redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceLink>,
}

/// Which device request a sign-in decides: the keys (hashes, base64url) of its
/// device code and user code records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceLink {
    pub device_key: String,
    pub user_code_key: String,
}

impl PendingAuthorization {
    pub fn csrf_matches(&self, cookie: Option<&str>, form: Option<&str>) -> bool {
        match (cookie, form) {
            (Some(cookie), Some(form)) if !cookie.is_empty() => {
                constant_time_eq(cookie.as_bytes(), form.as_bytes())
                    && constant_time_eq(
                        b64url(sha256(cookie.as_bytes())).as_bytes(),
                        self.csrf_hash.as_bytes(),
                    )
            }
            _ => false,
        }
    }
}

/// A fresh CSRF value for a browser that has none.
pub fn new_csrf() -> Result<String, OAuthError> {
    random_bytes::<32>().map(b64url).map_err(OAuthError::server)
}

pub fn csrf_hash(csrf: &str) -> String {
    b64url(sha256(csrf.as_bytes()))
}

/// The purpose a carried request's keys are derived for.
pub const CARRIED_KEY_PURPOSE: &[u8] = b"valet authorization request v1";
/// The shortest period a carried request's key is used for.
const CARRIED_KEY_MIN_PERIOD: i64 = 3600;

/// How long one key seals carried requests: an hour, or the interaction
/// lifetime if longer, so a request sealed at the end of one period opens
/// until it expires (keys of the current and the previous period open). Every
/// anonymous `GET /authorize` seals one, so the key changes with time rather
/// than serving the store's whole life (random nonces: at most about 2^32
/// seals per key, SP 800-38D §8.3).
pub fn carried_key_period(interaction_ttl: i64) -> i64 {
    interaction_ttl.max(CARRIED_KEY_MIN_PERIOD)
}

/// Marks a carried request in the form's `interaction` field; a stored
/// interaction's id is base64url, which has no dot. Version 2: sealed under
/// the key of a period, which the value names (`c1.` values, sealed under one
/// key for ever, are no longer opened).
const CARRIED_PREFIX: &str = "c2.";
/// Bound to every carried value (authenticated, not encrypted).
const CARRIED_AAD: &[u8] = b"pending authorization";
/// The longest carried value sealed or opened. The largest request the
/// parameter limits let through (`state`, `nonce` and `login_hint` at 2 KiB each
/// of characters JSON escapes, 40 long scopes, 8 resources of 230 bytes) carries
/// about 21 KiB; the login form (64 KiB at most) keeps 30 KiB for the rest. A
/// request that would carry more is refused at `/authorize` (see [`carry`]).
pub(crate) const MAX_CARRIED_LEN: usize = 32 * 1024;

#[derive(Serialize, Deserialize)]
struct Carried {
    expires_at: i64,
    request: PendingAuthorization,
}

/// Whether a form's `interaction` value is a carried request (else a stored id).
pub fn is_carried(value: &str) -> bool {
    value.starts_with(CARRIED_PREFIX)
}

/// Seals `pending` at `now` for the browser to carry until `expires_at`;
/// `None` if the sealed value would be longer than [`MAX_CARRIED_LEN`] (it
/// would not open: better refused now than after the user typed a password).
pub fn carry(
    keys: &PeriodKeys,
    pending: &PendingAuthorization,
    now: i64,
    expires_at: i64,
) -> Result<Option<String>, OAuthError> {
    let plain = serde_json::to_vec(&Carried {
        expires_at,
        request: pending.clone(),
    })
    .map_err(OAuthError::server)?;
    let sealed = keys
        .seal(CARRIED_AAD, &plain, now)
        .map_err(OAuthError::server)?;
    let carried = format!("{CARRIED_PREFIX}{}", b64url(sealed));
    Ok((carried.len() <= MAX_CARRIED_LEN).then_some(carried))
}

/// The carried request, if `value` was sealed by [`carry`] with these keys (in
/// this period or the previous one) and has not expired.
pub fn open_carried(keys: &PeriodKeys, value: &str, now: i64) -> Option<PendingAuthorization> {
    if value.len() > MAX_CARRIED_LEN {
        return None;
    }
    let sealed = b64url_decode(value.strip_prefix(CARRIED_PREFIX)?).ok()?;
    let plain = keys.open(CARRIED_AAD, &sealed, now).ok()?;
    let carried: Carried = serde_json::from_slice(&plain).ok()?;
    (carried.expires_at > now && carried.request.stage == Stage::AwaitingLogin)
        .then_some(carried.request)
}

/// The store id of a carried request once it is stored: one per sealed value.
pub fn carried_id(value: &str) -> String {
    b64url(sha256(value.as_bytes()))
}

/// Whether a carried request's login form was completed (see [`advancing`]
/// and [`completing`]) and the request has not expired since.
pub async fn was_stored(store: &dyn Store, value: &str, now: i64) -> Result<bool, OAuthError> {
    Ok(store
        .get_interaction(&carried_id(value), now)
        .await?
        .is_some())
}

/// The record that marks a carried request's login form completed: `pending`
/// under [`carried_id`], inserted only once (see [`InteractionChange::Remember`]).
fn carried_marker(
    value: &str,
    pending: &PendingAuthorization,
    ttl: i64,
    now: i64,
) -> Result<Interaction, OAuthError> {
    let completed = PendingAuthorization {
        stage: Stage::Completed,
        ..pending.clone()
    };
    interaction(carried_id(value), &completed, ttl, now)
}

fn interaction(
    interaction_id: String,
    pending: &PendingAuthorization,
    ttl: i64,
    now: i64,
) -> Result<Interaction, OAuthError> {
    Ok(Interaction {
        interaction_id,
        payload: serde_json::to_string(pending).map_err(OAuthError::server)?,
        expires_at: now.saturating_add(ttl),
    })
}

/// The writes that move the interaction to `request`'s stage, and the id its
/// next form names. The store refuses them when a carried request was stored
/// before or a stored one has gone (its form was already completed).
pub fn advancing(
    at: &Whereabouts,
    request: &PendingAuthorization,
    ttl: i64,
    now: i64,
) -> Result<(FormWrite, String), OAuthError> {
    if let Whereabouts::Stored(id) = at {
        let update = interaction(id.clone(), request, ttl, now)?;
        let write = FormWrite {
            interaction: Some(InteractionChange::Update(update)),
            ..FormWrite::default()
        };
        return Ok((write, id.clone()));
    }
    // A fresh request is stored under a new id. For a carried one these are its
    // first store writes: the user has signed in. Its login form is completed (and stays so until it would have expired, even once the
    // consent form completes too: a re-posted login form is refused before its
    // password is checked), and the request moves on under an id of its own,
    // which the next form completes.
    let next = interaction(random_id()?, request, ttl, now)?;
    let id = next.interaction_id.clone();
    let write = FormWrite {
        next: Some(next),
        ..completing(at, request, ttl, now)?
    };
    Ok((write, id))
}

/// The writes that end the interaction as its code is issued; the store
/// refuses them if another submission of the same form got there first, so
/// each form completes once. A carried request is remembered as
/// [`Stage::Completed`] until it would have expired anyway; a stored one is
/// consumed.
pub fn completing(
    at: &Whereabouts,
    request: &PendingAuthorization,
    ttl: i64,
    now: i64,
) -> Result<FormWrite, OAuthError> {
    let interaction = match at {
        Whereabouts::Fresh => None,
        Whereabouts::Carried(value) => Some(InteractionChange::Remember(carried_marker(
            value, request, ttl, now,
        )?)),
        Whereabouts::Stored(id) => Some(InteractionChange::Complete(id.clone())),
    };
    Ok(FormWrite {
        interaction,
        ..FormWrite::default()
    })
}

pub async fn load(
    store: &dyn Store,
    interaction_id: &str,
    now: i64,
) -> Result<Option<PendingAuthorization>, OAuthError> {
    if interaction_id.is_empty() || interaction_id.len() > 64 {
        return Ok(None);
    }
    match store.get_interaction(interaction_id, now).await? {
        Some(interaction) => Ok(serde_json::from_str(&interaction.payload).ok()),
        None => Ok(None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Stored and carried requests keep the JSON they had before the stage
    /// held a `SignedIn`: an interaction written by an older node still opens.
    #[test]
    fn the_consent_stage_keeps_its_stored_form() {
        let stage = Stage::AwaitingConsent(SignedIn {
            user_id: "u1".into(),
            sid: "s1".into(),
            auth_time: 7,
            amr: vec!["pwd".into()],
        });
        let json = serde_json::to_value(&stage).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "stage": "awaiting_consent",
                "user_id": "u1",
                "sid": "s1",
                "auth_time": 7,
                "amr": ["pwd"],
            })
        );
        assert_eq!(serde_json::from_value::<Stage>(json).unwrap(), stage);
        assert_eq!(
            serde_json::to_value(Stage::AwaitingLogin).unwrap(),
            serde_json::json!({"stage": "awaiting_login"})
        );
    }
}
