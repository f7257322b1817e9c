//! DPoP-bound access tokens at the resource server (RFC 9449 §7) and this resource's
//! metadata document (RFC 9728).
//!
//! A token whose claims carry `cnf.jkt` is accepted only with the `DPoP` scheme and a
//! proof made for this request (method, URL, `ath` = hash of the token) with the key
//! of that thumbprint, fresh (`iat` within `dpop_proof_max_age`) and not seen before
//! (`jti` remembered in memory until the proof is too old anyway). Several replicas of
//! an API each keep their own cache: a proof replayed to another replica within the
//! window is caught only by the short window (RFC 9449 §11.1 accepts this).

use serde_json::{Value, json};
use valet_jose::{DPOP_ALGORITHMS, ProofRequirements, sha256, verify_proof};

use crate::config::GuardConfig;
use crate::error::TokenError;
use crate::guard::Guard;
use crate::token::VerifiedToken;

/// Seconds a proof's `iat` may be ahead of this server's clock.
const PROOF_LEEWAY: i64 = 5;
/// What a request presents for a DPoP-bound token: the proof header and where the
/// request went.
#[derive(Debug, Clone, Copy)]
pub struct DpopRequest<'a> {
    /// The request method, e.g. `GET`.
    pub method: &'a str,
    /// The request's path (as the client sent it, before any router stripped a prefix);
    /// the query is ignored.
    pub path: &'a str,
    /// Every `DPoP` header value of the request (exactly one is accepted).
    pub proofs: &'a [&'a [u8]],
}

impl Guard {
    /// Verifies a token sent with the `DPoP` scheme (RFC 9449 §7.1): everything
    /// [`Guard::verify_with_scopes`] checks, then that the token is bound (`cnf.jkt`)
    /// and the request's proof is good for it (§4.3: one header, `typ`, asymmetric
    /// `alg`, public `jwk`, signature, `htm`, `htu` = the resource's scheme and host with
    /// `request.path`, fresh `iat`, `ath`, unused `jti`) and made with the bound key;
    /// then the scopes.
    pub async fn verify_dpop(
        &self,
        token: &str,
        request: &DpopRequest<'_>,
        scopes: &[&str],
    ) -> Result<VerifiedToken, TokenError> {
        let verified = self.verify_unbound(token).await?;
        let Some(bound) = verified.dpop_jkt() else {
            return Err(TokenError::NotDpopBound);
        };
        let config = self.config();
        let proof = match request.proofs {
            [] => {
                return Err(TokenError::InvalidDpopProof(
                    "the DPoP scheme needs a DPoP proof header",
                ));
            }
            [one] => std::str::from_utf8(one)
                .map_err(|_| TokenError::InvalidDpopProof("the DPoP header is not ASCII"))?,
            _ => {
                return Err(TokenError::InvalidDpopProof("send exactly one DPoP header"));
            }
        };
        let Some(mut url) = config.dpop_base() else {
            tracing::warn!(
                "a DPoP-bound token was presented but no resource URL is configured to check proofs against"
            );
            return Err(TokenError::InvalidDpopProof(
                "this resource cannot check DPoP proofs",
            ));
        };
        url.set_path(request.path.split('?').next().unwrap_or_default());
        url.set_query(None);
        let now = config.clock.now();
        let max_age = i64::try_from(config.dpop_proof_max_age.as_secs()).unwrap_or(60);
        let requirements = ProofRequirements {
            method: request.method,
            url: url.as_str(),
            now,
            max_age,
            leeway: PROOF_LEEWAY,
            access_token: Some(token),
        };
        let proof = verify_proof(proof, &requirements).map_err(|error| {
            tracing::debug!(%error, "DPoP proof refused");
            TokenError::InvalidDpopProof(error.description())
        })?;
        if !valet_jose::constant_time_eq(proof.jkt.as_bytes(), bound.as_bytes()) {
            return Err(TokenError::InvalidDpopProof(
                "the DPoP proof key is not the one the access token is bound to",
            ));
        }
        let key = sha256(format!("{}.{}", proof.jkt, proof.jti).as_bytes());
        if !self
            .replay_cache()
            .first_use(key, proof.replay_horizon(&requirements), now)
        {
            return Err(TokenError::InvalidDpopProof(
                "the DPoP proof was already used; make a new one for each request",
            ));
        }
        self.require_scopes(&verified, scopes)?;
        Ok(verified)
    }

    /// This resource's metadata document (RFC 9728 §2), if a resource is configured:
    /// `resource`, `authorization_servers` (the issuer), `bearer_methods_supported`
    /// (`header` only: tokens in bodies and queries are not read),
    /// `dpop_signing_alg_values_supported`, and `scopes_supported` when configured.
    pub fn protected_resource_metadata(&self) -> Option<Value> {
        metadata(self.config())
    }
}

fn metadata(config: &GuardConfig) -> Option<Value> {
    let resource = config.resource()?;
    let mut document = json!({
        "resource": resource,
        "authorization_servers": [config.issuer()],
        "bearer_methods_supported": ["header"],
        "dpop_signing_alg_values_supported": DPOP_ALGORITHMS
            .iter()
            .map(|alg| alg.as_str())
            .collect::<Vec<_>>(),
    });
    if !config.scopes_supported().is_empty()
        && let Some(object) = document.as_object_mut()
    {
        object.insert("scopes_supported".into(), json!(config.scopes_supported()));
    }
    Some(document)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn metadata_names_the_resource_and_issuer() {
        let config = GuardConfig::builder("https://id.example", "orders")
            .resource("https://api.example/orders")
            .scopes_supported(["orders:read"])
            .build()
            .unwrap();
        let document = metadata(&config).unwrap();
        assert_eq!(document["resource"], "https://api.example/orders");
        assert_eq!(document["authorization_servers"][0], "https://id.example");
        assert_eq!(document["scopes_supported"][0], "orders:read");
        assert_eq!(
            config.resource_metadata_url().as_deref(),
            Some("https://api.example/.well-known/oauth-protected-resource/orders")
        );
        let none = GuardConfig::builder("https://id.example", "orders")
            .build()
            .unwrap();
        assert_eq!(metadata(&none), None);
    }
}
