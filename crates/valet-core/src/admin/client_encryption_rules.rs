//! The rules for a client's encrypted responses (OIDC Registration §2
//! `id_token_encrypted_response_alg`/`_enc`, `userinfo_signed_response_alg`,
//! `userinfo_encrypted_response_alg`/`_enc`): supported names, and a key to encrypt
//! to. An inline `jwks` must hold a fitting key now; a `jwks_uri` is fetched when a
//! response is encrypted (a failure then is a `server_error` for that request).

use valet_jose::{Algorithm, ContentEncryption, KeyManagement};

use super::client_rules::NewClient;
use super::{AdminError, Field};
use crate::client_auth::keys::check_encryption_jwks;
use crate::store::{Client, JweChoice};
use crate::token::id_token::ID_TOKEN_ALGORITHMS;

/// A JWE `alg` and, optionally, `enc` (A256GCM when absent), as registered names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionNames {
    pub alg: String,
    pub enc: Option<String>,
}

impl EncryptionNames {
    /// `ALG` or `ALG:ENC`, as the command line takes them.
    pub fn parse(text: &str) -> Self {
        match text.split_once(':') {
            Some((alg, enc)) => Self {
                alg: alg.to_owned(),
                enc: Some(enc.to_owned()),
            },
            None => Self {
                alg: text.to_owned(),
                enc: None,
            },
        }
    }

    /// The same names with `enc` spelled out (A256GCM when left out).
    pub fn with_default_enc(&self) -> Self {
        Self {
            alg: self.alg.clone(),
            enc: Some(
                self.enc
                    .clone()
                    .unwrap_or_else(|| ContentEncryption::default().as_str().to_owned()),
            ),
        }
    }

    /// The names of a stored choice.
    pub fn of(choice: JweChoice) -> Self {
        Self {
            alg: choice.alg.as_str().to_owned(),
            enc: Some(choice.enc.as_str().to_owned()),
        }
    }
}

/// The checked settings, parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CheckedEncryption {
    pub(crate) id_token: Option<JweChoice>,
    pub(crate) userinfo_signed: Option<Algorithm>,
    pub(crate) userinfo: Option<JweChoice>,
}

/// Checks the encryption settings of a registration or of an updated client.
pub(crate) fn check_encryption(new: &NewClient) -> Result<CheckedEncryption, AdminError> {
    let userinfo_signed = match &new.userinfo_signed_response_alg {
        None => None,
        Some(alg) => Some(
            alg.parse::<Algorithm>()
                .ok()
                .filter(|alg| ID_TOKEN_ALGORITHMS.contains(alg))
                .ok_or_else(|| {
                    AdminError::invalid(
                        Field::new("userinfo_signed_response_alg"),
                        Some(alg.clone()),
                        "must be RS256 or ES256",
                    )
                })?,
        ),
    };
    Ok(CheckedEncryption {
        id_token: check_choice(new, new.id_token_encryption.as_ref(), "id_token")?,
        userinfo_signed,
        userinfo: check_choice(new, new.userinfo_encryption.as_ref(), "userinfo")?,
    })
}

fn check_choice(
    new: &NewClient,
    names: Option<&EncryptionNames>,
    prefix: &'static str,
) -> Result<Option<JweChoice>, AdminError> {
    let Some(names) = names else {
        return Ok(None);
    };
    let (alg_field, enc_field) = match prefix {
        "id_token" => (
            "id_token_encrypted_response_alg",
            "id_token_encrypted_response_enc",
        ),
        _ => (
            "userinfo_encrypted_response_alg",
            "userinfo_encrypted_response_enc",
        ),
    };
    let alg: KeyManagement = names.alg.parse().map_err(|_| {
        AdminError::invalid(
            Field::new(alg_field),
            Some(names.alg.clone()),
            "must be RSA-OAEP-256, ECDH-ES or ECDH-ES+A256KW",
        )
    })?;
    let enc = match &names.enc {
        None => ContentEncryption::default(),
        Some(enc) => enc.parse().map_err(|_| {
            AdminError::invalid(
                Field::new(enc_field),
                Some(enc.clone()),
                "must be A256GCM or A128GCM",
            )
        })?,
    };
    check_key(new, alg, alg_field)?;
    Ok(Some(JweChoice { alg, enc }))
}

/// OIDC Core §10.2: the response is encrypted to a key the client registered.
fn check_key(new: &NewClient, alg: KeyManagement, field: &'static str) -> Result<(), AdminError> {
    let kind = match alg {
        KeyManagement::RsaOaep256 => "an RSA key",
        KeyManagement::EcdhEs | KeyManagement::EcdhEsA256Kw => "an EC P-256 key",
    };
    match (&new.jwks, &new.jwks_uri) {
        (Some(jwks), _) => {
            let keys = check_encryption_jwks(jwks).map_err(|reason| {
                AdminError::invalid(Field::new("jwks"), None, format!("not usable: {reason}"))
            })?;
            if keys.for_algorithm(alg).is_none() {
                return Err(AdminError::invalid(
                    Field::new(field),
                    Some(alg.as_str().to_owned()),
                    format!(
                        "the client's jwks has no key to encrypt to with {alg}: it needs {kind} with \"use\": \"enc\" (or no \"use\") and no other \"alg\""
                    ),
                ));
            }
            Ok(())
        }
        (None, Some(_)) => Ok(()),
        (None, None) => Err(AdminError::invalid(
            Field::new(field),
            Some(alg.as_str().to_owned()),
            format!(
                "encryption needs the client's public keys: jwks or jwks_uri with {kind} for encryption"
            ),
        )),
    }
}

/// The stored settings as names, for an update's re-check.
pub(crate) fn names_of(
    client: &Client,
) -> (
    Option<EncryptionNames>,
    Option<String>,
    Option<EncryptionNames>,
) {
    (
        client.id_token_encryption.map(EncryptionNames::of),
        client
            .userinfo_signed_response_alg
            .map(|alg| alg.as_str().to_owned()),
        client.userinfo_encryption.map(EncryptionNames::of),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const EC_ENC: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","use":"enc","kid":"e1","x":"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ","y":"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck"}]}"#;

    fn asking(alg: &str, jwks: Option<&str>) -> NewClient {
        NewClient {
            id_token_encryption: Some(EncryptionNames::parse(alg)),
            jwks: jwks.map(str::to_owned),
            ..NewClient::default()
        }
    }

    fn refusal(new: &NewClient) -> String {
        format!("{:?}", check_encryption(new).expect_err("refused"))
    }

    #[test]
    fn a_fitting_inline_key_is_required() {
        let ok = check_encryption(&asking("ECDH-ES+A256KW", Some(EC_ENC))).unwrap();
        assert_eq!(
            ok.id_token,
            Some(JweChoice {
                alg: KeyManagement::EcdhEsA256Kw,
                enc: ContentEncryption::A256Gcm
            })
        );
        let a128 = check_encryption(&asking("ECDH-ES:A128GCM", Some(EC_ENC))).unwrap();
        assert_eq!(a128.id_token.unwrap().enc, ContentEncryption::A128Gcm);
        assert!(refusal(&asking("RSA-OAEP-256", Some(EC_ENC))).contains("no key to encrypt to"));
        assert!(refusal(&asking("RSA-OAEP-256", None)).contains("jwks or jwks_uri"));
        assert!(
            refusal(&asking("RSA1_5", Some(EC_ENC))).contains("id_token_encrypted_response_alg")
        );
        assert!(
            refusal(&asking("ECDH-ES:A128CBC-HS256", Some(EC_ENC)))
                .contains("id_token_encrypted_response_enc")
        );
        let uri = NewClient {
            jwks_uri: Some("https://client.example/jwks".to_owned()),
            ..asking("RSA-OAEP-256", None)
        };
        assert!(check_encryption(&uri).is_ok());
    }

    #[test]
    fn userinfo_settings_are_checked() {
        let new = NewClient {
            userinfo_signed_response_alg: Some("EdDSA".to_owned()),
            ..NewClient::default()
        };
        assert!(refusal(&new).contains("userinfo_signed_response_alg"));
        let new = NewClient {
            userinfo_encryption: Some(EncryptionNames::parse("ECDH-ES")),
            ..NewClient::default()
        };
        assert!(refusal(&new).contains("userinfo_encrypted_response_alg"));
    }
}
