//! A DPoP client key (RFC 9449) for tests: proofs made the way a client makes them,
//! and, for attacks, proofs with any header or claims.

use serde_json::{Map, Value, json};
use valet_jose::{Algorithm, SigningKey, access_token_hash, b64url, jwk_thumbprint, random_bytes};

/// A client's DPoP key pair.
pub struct DpopKey {
    key: SigningKey,
    jwk: Map<String, Value>,
}

impl DpopKey {
    pub fn new(alg: Algorithm) -> Self {
        let (key, _) = SigningKey::generate(alg).unwrap();
        let mut jwk = key.public_jwk().clone();
        jwk.remove("kid");
        jwk.remove("use");
        Self { key, jwk }
    }

    pub fn es256() -> Self {
        Self::new(Algorithm::Es256)
    }

    /// The public JWK, as a proof header carries it.
    pub fn jwk(&self) -> &Map<String, Value> {
        &self.jwk
    }

    /// The RFC 7638 thumbprint (`cnf.jkt`, `dpop_jkt`).
    pub fn jkt(&self) -> String {
        jwk_thumbprint(&self.jwk).unwrap()
    }

    /// A fresh proof for `method` `url` at `now`, with `ath` when a token is given.
    pub fn proof(&self, method: &str, url: &str, now: i64, access_token: Option<&str>) -> String {
        let mut claims = json!({
            "jti": b64url(random_bytes::<16>().unwrap()),
            "htm": method,
            "htu": url,
            "iat": now,
        });
        if let Some(token) = access_token {
            claims["ath"] = json!(access_token_hash(token));
        }
        self.proof_with(&json!({}), &claims)
    }

    /// A fresh proof carrying a server `nonce`.
    pub fn proof_with_nonce(&self, method: &str, url: &str, now: i64, nonce: &str) -> String {
        let claims = json!({
            "jti": b64url(random_bytes::<16>().unwrap()),
            "htm": method,
            "htu": url,
            "iat": now,
            "nonce": nonce,
        });
        self.proof_with(&json!({}), &claims)
    }

    /// A proof with exactly these claims and the usual header, members of `header`
    /// replacing or adding to it (`{"alg": "HS256"}`, `{"jwk": …}`).
    pub fn proof_with(&self, header: &Value, claims: &Value) -> String {
        let mut full = json!({
            "typ": "dpop+jwt",
            "alg": self.key.alg().as_str(),
            "jwk": self.jwk,
        });
        for (name, value) in header.as_object().unwrap() {
            full[name] = value.clone();
        }
        self.key.sign_with_header(&full, claims).unwrap()
    }

    /// The algorithm of the key.
    pub fn alg(&self) -> Algorithm {
        self.key.alg()
    }
}
