//! A pending authorization request and its stages, kept in the store as an
//! interaction.

use serde::{Deserialize, Serialize};
use valet_jose::{b64url, constant_time_eq, random_bytes, sha256};
use valet_protocol::authorize::{Prompt, ResponseMode};

use crate::error::OAuthError;
use crate::secrets::random_id;
use crate::store::{Interaction, Store};

/// What the user is being asked for. Each step consumes one stage and yields the
/// next (see the diagram in the module above).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    AwaitingLogin,
    AwaitingConsent {
        user_id: String,
        sid: String,
        auth_time: i64,
        amr: Vec<String>,
    },
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
    /// SHA-256 of the browser's CSRF value, base64url.
    pub csrf_hash: String,
    pub stage: Stage,
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

pub async fn save_new(
    store: &dyn Store,
    pending: &PendingAuthorization,
    ttl: i64,
    now: i64,
) -> Result<String, OAuthError> {
    let interaction_id = random_id()?;
    store
        .insert_interaction(&Interaction {
            interaction_id: interaction_id.clone(),
            payload: serde_json::to_string(pending).map_err(OAuthError::server)?,
            expires_at: now.saturating_add(ttl),
        })
        .await?;
    Ok(interaction_id)
}

pub async fn update(
    store: &dyn Store,
    interaction_id: &str,
    pending: &PendingAuthorization,
    ttl: i64,
    now: i64,
) -> Result<bool, OAuthError> {
    Ok(store
        .update_interaction(&Interaction {
            interaction_id: interaction_id.to_owned(),
            payload: serde_json::to_string(pending).map_err(OAuthError::server)?,
            expires_at: now.saturating_add(ttl),
        })
        .await?)
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
