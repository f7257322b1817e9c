//! DPoP (RFC 9449) at the authorization server: the proof a request carries, checked
//! per §4.3 (the stateless rules in `valet_jose::verify_proof`; here the one-header
//! rule, the server nonce of §8 and the `jti` replay cache of §11.1), and the nonces
//! this server hands out.
//!
//! Nonces are stateless so that every node accepts every other node's: a nonce is an
//! empty value sealed (AES-GCM) under a key derived from the master key for the
//! current period of [`NONCE_PERIOD`] seconds; it opens in that period and the next.
//!
//! Replays: a proof's `jti` is recorded in the single-use store (kind
//! [`SingleUseKind::DpopProof`], keyed by a hash of the key thumbprint and `jti`) until
//! the proof would be too old anyway; a second use on any node is refused.

use valet_jose::{
    DpopError, DpopProof, MasterKey, PeriodKeys, ProofRequirements, b64url, b64url_decode, sha256,
    verify_proof,
};
use valet_protocol::ErrorCode;

use crate::AuthorizationServer;
use crate::error::OAuthError;
use crate::store::{SingleUseKind, StoreError};

/// The purpose the nonce keys are derived for.
pub(crate) const NONCE_KEY_PURPOSE: &[u8] = b"valet dpop nonce v1";
/// Seconds one nonce key serves; a nonce is good for one to two periods.
pub const NONCE_PERIOD: i64 = 300;
/// Seconds a proof's `iat` may be ahead of this server's clock.
pub const PROOF_LEEWAY: i64 = 5;

/// A DPoP proof that passed every check for this request, replay included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The RFC 7638 thumbprint of the proof's key.
    pub jkt: String,
}

/// The request a proof must match.
#[derive(Debug, Clone, Copy)]
pub struct ProofTarget<'a> {
    /// `POST`, `GET`, ...
    pub method: &'a str,
    /// The endpoint's path (`paths::*`); its URL is the issuer's plus this
    /// path, as discovery publishes it.
    pub path: &'a str,
    /// The access token the request presents (UserInfo), whose hash is `ath`.
    pub access_token: Option<&'a str>,
}

/// The nonce keys, derived from the master key.
pub(crate) fn nonce_keys(master: std::sync::Arc<MasterKey>) -> PeriodKeys {
    PeriodKeys::new(master, NONCE_KEY_PURPOSE, NONCE_PERIOD)
}

impl AuthorizationServer {
    /// A fresh DPoP nonce (RFC 9449 §8), good on every node for at least
    /// [`NONCE_PERIOD`] seconds.
    pub fn dpop_nonce(&self, now: i64) -> Result<String, OAuthError> {
        self.dpop_nonces
            .seal(NONCE_KEY_PURPOSE, &[], now)
            .map(b64url)
            .map_err(OAuthError::server)
    }

    /// Whether responses should carry a `DPoP-Nonce` header.
    pub fn dpop_nonces_required(&self) -> bool {
        self.settings.dpop.require_nonce
    }

    fn nonce_is_good(&self, nonce: &str, now: i64) -> bool {
        b64url_decode(nonce).ok().is_some_and(|sealed| {
            self.dpop_nonces
                .open(NONCE_KEY_PURPOSE, &sealed, now)
                .is_ok()
        })
    }

    /// The request's DPoP proof, checked (RFC 9449 §4.3): `None` without a `DPoP`
    /// header. `proofs` holds every `DPoP` header value: more than one is refused
    /// (point 1). A proof that fails is `invalid_dpop_proof`; one without the
    /// required nonce is `use_dpop_nonce` with a fresh nonce to send.
    pub async fn check_dpop_proof(
        &self,
        proofs: &[&[u8]],
        target: &ProofTarget<'_>,
        now: i64,
    ) -> Result<Option<VerifiedProof>, OAuthError> {
        let proof = match proofs {
            [] => return Ok(None),
            [one] => std::str::from_utf8(one)
                .map_err(|_| invalid_proof("the DPoP header is not ASCII"))?,
            _ => return Err(invalid_proof("send exactly one DPoP header")),
        };
        // Built only here: most token requests carry no proof.
        let url = format!("{}{}", self.settings.issuer, target.path);
        let requirements = ProofRequirements {
            method: target.method,
            url: &url,
            now,
            max_age: self.settings.dpop.proof_max_age,
            leeway: PROOF_LEEWAY,
            access_token: target.access_token,
        };
        let proof = verify_proof(proof, &requirements).map_err(proof_error)?;
        if self.settings.dpop.require_nonce
            && !proof
                .nonce
                .as_deref()
                .is_some_and(|nonce| self.nonce_is_good(nonce, now))
        {
            return Err(OAuthError::new(
                ErrorCode::UseDpopNonce,
                "the DPoP proof must carry the nonce of the DPoP-Nonce header",
            )
            .with_dpop_nonce(self.dpop_nonce(now)?));
        }
        self.remember_jti(&proof, &requirements).await?;
        Ok(Some(VerifiedProof { jkt: proof.jkt }))
    }

    /// §11.1: a `jti` seen before (on any node) is a replay.
    async fn remember_jti(
        &self,
        proof: &DpopProof,
        requirements: &ProofRequirements<'_>,
    ) -> Result<(), OAuthError> {
        let key = sha256(format!("{}.{}", proof.jkt, proof.jti).as_bytes());
        match self
            .store
            .insert_single_use(
                SingleUseKind::DpopProof,
                &key,
                "",
                proof.replay_horizon(requirements),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict) => Err(invalid_proof(
                "the DPoP proof was already used; make a new one for each request",
            )),
            Err(error) => Err(error.into()),
        }
    }
}

/// `invalid_dpop_proof` (RFC 9449 §5, §7.1).
pub fn invalid_proof(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidDpopProof, description)
}

fn proof_error(error: DpopError) -> OAuthError {
    invalid_proof(error.description()).with_source(error)
}
