//! Encrypted ID tokens and UserInfo answers (OIDC Core §10.2, §5.3.2): signed first,
//! then encrypted to a key from the client's JWK Set (`jwks` or `jwks_uri`) with the
//! `alg`/`enc` it registered (OIDC Registration §2).
//!
//! The key is found before anything is consumed (a code, a refresh token), so a client
//! whose keys cannot be had gets `server_error` and keeps its grant: Valet never sends
//! in clear what a client asked to have encrypted.

use valet_jose::{EncryptionKey, encrypt};
use valet_protocol::ErrorCode;

use crate::AuthorizationServer;
use crate::error::OAuthError;
use crate::store::{Client, JweChoice};

/// What a response is encrypted with: the chosen key and the registered `alg`/`enc`.
#[derive(Debug, Clone)]
pub struct Sealer {
    key: EncryptionKey,
    choice: JweChoice,
}

/// Which response a [`Sealer`] is for, in log lines and error descriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealed {
    IdToken,
    UserInfo,
}

impl Sealed {
    fn name(self) -> &'static str {
        match self {
            Sealed::IdToken => "ID token",
            Sealed::UserInfo => "UserInfo response",
        }
    }

    fn choice(self, client: &Client) -> Option<JweChoice> {
        match self {
            Sealed::IdToken => client.id_token_encryption,
            Sealed::UserInfo => client.userinfo_encryption,
        }
    }
}

/// The sealer for `what`, when the client registered encryption for it: `None` when it
/// did not; `server_error` (and an error log line naming the client and the cause) when
/// its keys cannot be fetched or hold no key fitting the registered `alg`.
pub async fn sealer_for(
    server: &AuthorizationServer,
    client: &Client,
    what: Sealed,
    now: i64,
) -> Result<Option<Sealer>, OAuthError> {
    let Some(choice) = what.choice(client) else {
        return Ok(None);
    };
    let keys = match server
        .authenticator
        .keys()
        .encryption_keys_of(client, now)
        .await
    {
        Ok(keys) => keys,
        Err(error) => {
            tracing::error!(
                client_id = %client.client_id,
                response = what.name(),
                reason = error.description(),
                "cannot encrypt to the client: its keys are not available"
            );
            return Err(no_key(what, choice));
        }
    };
    let Some(key) = keys.for_algorithm(choice.alg) else {
        tracing::error!(
            client_id = %client.client_id,
            response = what.name(),
            alg = choice.alg.as_str(),
            "cannot encrypt to the client: no key in its JWK Set fits the registered alg"
        );
        return Err(no_key(what, choice));
    };
    Ok(Some(Sealer {
        key: key.clone(),
        choice,
    }))
}

fn no_key(what: Sealed, choice: JweChoice) -> OAuthError {
    OAuthError::new(
        ErrorCode::ServerError,
        format!(
            "the {} must be encrypted with {}, but the client's registered keys (jwks or jwks_uri) hold no usable key for it",
            what.name(),
            choice.alg
        ),
    )
}

impl Sealer {
    /// `plaintext` as a compact JWE; `cty` is `"JWT"` for a nested signed JWT.
    pub fn seal(&self, plaintext: &[u8], cty: Option<&str>) -> Result<String, OAuthError> {
        encrypt(plaintext, &self.key, self.choice.alg, self.choice.enc, cty)
            .map_err(OAuthError::server)
    }
}
