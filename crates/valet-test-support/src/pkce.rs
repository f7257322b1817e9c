//! PKCE (RFC 7636).

/// A PKCE verifier and its S256 challenge (RFC 7636 §4.1, §4.2).
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    /// A fresh random verifier (32 bytes, base64url) and its challenge.
    pub fn new() -> Self {
        let verifier = valet_jose::b64url(valet_jose::random_bytes::<32>().unwrap());
        let challenge = valet_jose::b64url(valet_jose::sha256(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}
