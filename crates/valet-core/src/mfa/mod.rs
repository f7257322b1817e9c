//! Second factors: TOTP credentials ([`totp`]) and recovery codes
//! ([`recovery`]), what a user has enrolled, and the `acr` values a sign-in
//! earns. The sign-in pipeline (`authn`), the account page and the admin
//! service share these functions; none of them decides when a factor is
//! asked for (that is `authn::policy`).

pub mod recovery;
pub mod totp;

use valet_jose::MasterKey;
use zeroize::Zeroizing;

use crate::error::OAuthError;
use crate::store::{Store, TotpCredential};

/// `acr` (OIDC Core §2) of a sign-in with one factor (a password).
pub const ACR_PASSWORD: &str = "urn:valet:acr:pwd";
/// `acr` of a sign-in with two factors (a password and a second factor).
pub const ACR_MFA: &str = "urn:valet:acr:mfa";
/// What discovery advertises as `acr_values_supported`, weakest first.
pub const ACR_VALUES: [&str; 2] = [ACR_PASSWORD, ACR_MFA];

/// Whether a sign-in's `amr` (RFC 8176) holds two different methods: a
/// password and a second factor.
pub fn is_multi_factor(amr: &[String]) -> bool {
    amr.iter()
        .any(|method| amr.first().is_some_and(|first| first != method))
}

/// The `acr` a sign-in with these methods earns.
pub fn acr_for(amr: &[String]) -> &'static str {
    if is_multi_factor(amr) {
        ACR_MFA
    } else {
        ACR_PASSWORD
    }
}

/// The second factors a user has enrolled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enrolled {
    /// A confirmed TOTP credential.
    pub totp: bool,
    /// Recovery codes not used yet.
    pub recovery_codes: u64,
}

impl Enrolled {
    /// Whether any second factor is enrolled.
    pub fn any(&self) -> bool {
        self.totp
    }
}

pub async fn enrolled(store: &dyn Store, user_id: &str) -> Result<Enrolled, OAuthError> {
    let totp = store
        .get_totp(user_id)
        .await?
        .is_some_and(|credential| credential.confirmed_at.is_some());
    let recovery_codes = if totp {
        store.recovery_codes_left(user_id).await?
    } else {
        0
    };
    Ok(Enrolled {
        totp,
        recovery_codes,
    })
}

/// What the enrolment page shows, once: the secret (as a Key URI for the QR
/// code and in base32 to type) and the recovery codes.
pub struct Enrolment {
    pub otpauth_uri: String,
    pub secret_base32: String,
    pub recovery_codes: Vec<String>,
}

/// Nothing secret is printed.
impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment").finish_non_exhaustive()
    }
}

/// Starts a TOTP enrolment for the user: a new secret and recovery codes,
/// stored pending (sealed) until a code confirms them. `None` if the user has
/// a confirmed credential already (it must be removed first).
pub async fn begin_totp(
    store: &dyn Store,
    master: &MasterKey,
    user_id: &str,
    account_label: &str,
    issuer_label: &str,
    now: i64,
) -> Result<Option<Enrolment>, OAuthError> {
    let secret = totp::new_secret()?;
    let codes = recovery::generate()?;
    let codes_json = Zeroizing::new(serde_json::to_vec(&*codes).map_err(OAuthError::server)?);
    let credential = TotpCredential {
        user_id: user_id.to_owned(),
        sealed_secret: totp::seal(master, user_id, &secret)?,
        sealed_recovery_codes: Some(totp::seal(master, user_id, &codes_json)?),
        confirmed_at: None,
        last_step: None,
        created_at: now,
    };
    if !store.begin_totp(&credential).await? {
        return Ok(None);
    }
    Ok(Some(Enrolment {
        otpauth_uri: totp::otpauth_uri(issuer_label, account_label, &secret),
        secret_base32: totp::base32(&secret),
        recovery_codes: codes.to_vec(),
    }))
}

/// The pending enrolment again (the page shown anew after a wrong code).
pub async fn pending_totp(
    store: &dyn Store,
    master: &MasterKey,
    user_id: &str,
    account_label: &str,
    issuer_label: &str,
) -> Result<Option<Enrolment>, OAuthError> {
    let Some(credential) = store.get_totp(user_id).await? else {
        return Ok(None);
    };
    let (None, Some(sealed_codes)) = (credential.confirmed_at, &credential.sealed_recovery_codes)
    else {
        return Ok(None);
    };
    let secret = totp::open(master, user_id, &credential.sealed_secret)?;
    let codes_json = totp::open(master, user_id, sealed_codes)?;
    let codes: Vec<String> = serde_json::from_slice(&codes_json).map_err(OAuthError::server)?;
    Ok(Some(Enrolment {
        otpauth_uri: totp::otpauth_uri(issuer_label, account_label, &secret),
        secret_base32: totp::base32(&secret),
        recovery_codes: codes,
    }))
}

/// Confirms the pending enrolment with a code from the app: the credential
/// becomes the user's and its recovery codes replace any earlier ones (kept as
/// hashes only). `false` for a wrong code or no pending enrolment.
pub async fn confirm_totp(
    store: &dyn Store,
    master: &MasterKey,
    user_id: &str,
    code: &str,
    now: i64,
) -> Result<bool, OAuthError> {
    let Some(credential) = store.get_totp(user_id).await? else {
        return Ok(false);
    };
    let (None, Some(sealed_codes)) = (credential.confirmed_at, &credential.sealed_recovery_codes)
    else {
        return Ok(false);
    };
    let secret = totp::open(master, user_id, &credential.sealed_secret)?;
    let Some(step) = totp::matching_step(&secret, code, now, None) else {
        return Ok(false);
    };
    let codes_json = totp::open(master, user_id, sealed_codes)?;
    let codes: Zeroizing<Vec<String>> =
        Zeroizing::new(serde_json::from_slice(&codes_json).map_err(OAuthError::server)?);
    let hashes = recovery_hashes(user_id, &codes);
    Ok(store
        .confirm_totp(user_id, &credential.sealed_secret, step, &hashes, now)
        .await?)
}

fn recovery_hashes(user_id: &str, codes: &[String]) -> Vec<Vec<u8>> {
    codes
        .iter()
        .filter_map(|code| recovery::normalize(code))
        .map(|code| recovery::hash(user_id, &code))
        .collect()
}

/// Checks a code against the user's confirmed credential: right, within the
/// drift, and of a later step than the last accepted (a code works once).
pub async fn check_totp(
    store: &dyn Store,
    master: &MasterKey,
    user_id: &str,
    code: &str,
    now: i64,
) -> Result<bool, OAuthError> {
    let Some(credential) = store.get_totp(user_id).await? else {
        return Ok(false);
    };
    if credential.confirmed_at.is_none() {
        return Ok(false);
    }
    let secret = totp::open(master, user_id, &credential.sealed_secret)?;
    let Some(step) = totp::matching_step(&secret, code, now, credential.last_step) else {
        return Ok(false);
    };
    // The store takes the step only if it is still later than the last one:
    // two requests racing with the same code cannot both win.
    Ok(store.accept_totp_step(user_id, step).await?)
}

/// Uses one of the user's recovery codes: `true` once per code.
pub async fn use_recovery_code(
    store: &dyn Store,
    user_id: &str,
    entered: &str,
    now: i64,
) -> Result<bool, OAuthError> {
    let Some(code) = recovery::normalize(entered) else {
        return Ok(false);
    };
    Ok(store
        .use_recovery_code(user_id, &recovery::hash(user_id, &code), now)
        .await?)
}

/// New recovery codes for a user with a confirmed TOTP credential, replacing
/// the old ones; `None` if the user has none.
pub async fn regenerate_recovery_codes(
    store: &dyn Store,
    user_id: &str,
    now: i64,
) -> Result<Option<Vec<String>>, OAuthError> {
    let codes = recovery::generate()?;
    let hashes = recovery_hashes(user_id, &codes);
    if !store.replace_recovery_codes(user_id, &hashes, now).await? {
        return Ok(None);
    }
    Ok(Some(codes.to_vec()))
}

/// Removes every second factor of the user (TOTP and recovery codes).
pub async fn remove_all(store: &dyn Store, user_id: &str) -> Result<bool, OAuthError> {
    Ok(store.delete_second_factors(user_id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_follows_the_methods() {
        let amr = |methods: &[&str]| methods.iter().map(|m| (*m).to_owned()).collect::<Vec<_>>();
        assert_eq!(acr_for(&amr(&["pwd"])), ACR_PASSWORD);
        assert_eq!(acr_for(&amr(&["pwd", "otp"])), ACR_MFA);
        assert_eq!(acr_for(&amr(&["pwd", "pwd"])), ACR_PASSWORD);
        assert_eq!(acr_for(&[]), ACR_PASSWORD);
    }
}
