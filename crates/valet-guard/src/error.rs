//! The one catalogue of refusals and its one mapping to RFC 6750 responses.
//!
//! | variant | status | `WWW-Authenticate: Bearer realm="…"` then |
//! |---|---|---|
//! | [`TokenError::Missing`] | 401 | nothing more (RFC 6750 §3.1: no error code when no credentials were sent) |
//! | [`TokenError::InvalidRequest`] | 400 | `error="invalid_request"` |
//! | every "invalid token" variant | 401 | `error="invalid_token"` |
//! | [`TokenError::InsufficientScope`] | 403 | `error="insufficient_scope"`, `scope="…"` (the scopes the resource requires) |
//! | [`TokenError::NotReady`] | 503 | (as for `StatusUnavailable`) |
//! | [`TokenError::StatusUnavailable`] | 503 | (the bare challenge; no header is sent with 503: the token may be fine, the client should retry, not re-authenticate) |
//! | [`TokenError::Internal`] | 500 | (as for 503) |
//!
//! Descriptions are fixed text: never the token, never a claim value.

use crate::config::is_qdtext;

/// Why a request's bearer token was not accepted.
///
/// `Display` is for logs (it may name a claim); [`TokenError::description`] is what
/// clients see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The request carries no bearer token (RFC 6750 §3.1).
    #[error("no bearer token")]
    Missing,
    /// The `Authorization` header is unusable (sent twice, not ASCII) (RFC 6750 §3.1).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),

    /// Longer than [`MAX_ACCESS_TOKEN_LEN`](crate::MAX_ACCESS_TOKEN_LEN), refused unparsed.
    #[error("token too large")]
    TooLarge,
    /// Not a compact JWS: segments, base64url or JSON.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// An `alg` the issuer does not sign with: `none`, HMAC, anything but ES256/RS256
    /// (RFC 8725 §3.1, §3.2).
    #[error("unsupported alg")]
    UnsupportedAlgorithm,
    /// The header's `alg` is not the algorithm of the key its `kid` names.
    #[error("alg does not match the key")]
    AlgorithmMismatch,
    /// The header has no `kid`.
    #[error("no kid")]
    MissingKeyId,
    /// No published key has this `kid`, even after a (rate-limited) JWKS refetch.
    #[error("unknown kid")]
    UnknownKey,
    /// The signature does not verify.
    #[error("invalid signature")]
    InvalidSignature,
    /// A header member this verifier does not support (an unknown `crit`, `b64: false`)
    /// (RFC 7515 §4.1.11).
    #[error("unsupported header")]
    UnsupportedHeader,
    /// `typ` is not `at+jwt` (RFC 9068 §4): for example an ID token.
    #[error("typ is not at+jwt")]
    WrongType,
    /// `iss` is not the configured issuer (RFC 9068 §4).
    #[error("wrong issuer")]
    InvalidIssuer,
    /// `aud` does not contain the configured audience (RFC 9068 §4).
    #[error("wrong audience")]
    InvalidAudience,
    /// `exp` plus leeway has passed (RFC 7519 §4.1.4).
    #[error("expired")]
    Expired,
    /// `nbf` is later than now plus leeway (RFC 7519 §4.1.5).
    #[error("not yet valid")]
    NotYetValid,
    /// `iat` is later than now plus leeway.
    #[error("issued in the future")]
    IssuedInFuture,
    /// A required claim is absent.
    #[error("missing claim {0}")]
    MissingClaim(&'static str),
    /// A claim has the wrong type or shape.
    #[error("invalid claim {0}")]
    InvalidClaim(&'static str),
    /// The `status` claim points outside `{issuer}/statuslists/`.
    #[error("status list uri not allowed")]
    StatusUriNotAllowed,
    /// The `status` claim's index is not in the list.
    #[error("status index out of range")]
    StatusIndexOutOfRange,
    /// No `status` claim while the configuration requires one.
    #[error("no status claim")]
    StatusMissing,
    /// The status list marks the token invalid: it was revoked.
    #[error("revoked")]
    Revoked,
    /// A DPoP-bound token (`cnf.jkt`) sent with the `Bearer` scheme (RFC 9449 §7.2).
    #[error("DPoP-bound token sent as a bearer token")]
    DpopBound,
    /// A token without `cnf.jkt` sent with the `DPoP` scheme.
    #[error("token not DPoP-bound")]
    NotDpopBound,
    /// The DPoP proof is missing, invalid, replayed, or made with another key than
    /// the token's (RFC 9449 §4.3, §7.1): `invalid_dpop_proof`.
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(&'static str),

    /// The token lacks scopes the resource requires (RFC 6750 §3.1).
    #[error("insufficient scope (requires {})", .required.join(" "))]
    InsufficientScope {
        /// Every scope the resource requires, for the `scope` challenge attribute.
        required: Vec<String>,
    },

    /// The guard has not loaded the issuer's keys yet (see
    /// [`Guard::start_in_background`](crate::Guard::start_in_background)): nothing can be
    /// verified; the client should retry.
    #[error("not ready: the issuer's keys are not loaded yet")]
    NotReady,
    /// The token's status list cannot be fetched and the cached copy (if any) is older
    /// than the policy allows: fail closed.
    #[error("token status unavailable")]
    StatusUnavailable,
    /// A fault of this server (no crypto provider); details are logged, not sent.
    #[error("internal error")]
    Internal,
}

impl TokenError {
    /// The HTTP status of the response: 401, 400, 403, 503 or 500 (see the module table).
    pub fn status(&self) -> u16 {
        match self {
            TokenError::Missing => 401,
            TokenError::InvalidRequest(_) => 400,
            TokenError::InsufficientScope { .. } => 403,
            TokenError::StatusUnavailable | TokenError::NotReady => 503,
            TokenError::Internal => 500,
            _ => 401,
        }
    }

    /// The RFC 6750 §3.1 error code, if any. For 503 and 500 these are the RFC 6749
    /// codes used in the JSON body only.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            TokenError::Missing => None,
            TokenError::InvalidRequest(_) => Some("invalid_request"),
            TokenError::InsufficientScope { .. } => Some("insufficient_scope"),
            TokenError::StatusUnavailable | TokenError::NotReady => Some("temporarily_unavailable"),
            TokenError::Internal => Some("server_error"),
            TokenError::InvalidDpopProof(_) => Some("invalid_dpop_proof"),
            _ => Some("invalid_token"),
        }
    }

    /// Whether the response carries a `WWW-Authenticate` challenge: every 4xx.
    pub fn has_challenge(&self) -> bool {
        self.status() < 500
    }

    /// Fixed, client-safe text for `error_description`: printable ASCII without quotes or
    /// backslashes, never the token or a claim value.
    pub fn description(&self) -> &'static str {
        match self {
            TokenError::Missing => "a bearer token is required",
            TokenError::InvalidRequest(reason) => reason,
            TokenError::TooLarge => "the access token is too large",
            TokenError::Malformed(_) => "the access token is malformed",
            TokenError::UnsupportedAlgorithm | TokenError::AlgorithmMismatch => {
                "the access token is signed with an unacceptable algorithm"
            }
            TokenError::MissingKeyId | TokenError::UnknownKey => {
                "the access token is signed with an unknown key"
            }
            TokenError::InvalidSignature => "the access token signature is invalid",
            TokenError::UnsupportedHeader => "the access token header is not supported",
            TokenError::WrongType => "the token is not an access token",
            TokenError::InvalidIssuer => "the access token is from another issuer",
            TokenError::InvalidAudience => "the access token is not meant for this resource",
            TokenError::Expired => "the access token expired",
            TokenError::NotYetValid | TokenError::IssuedInFuture => {
                "the access token is not valid yet"
            }
            TokenError::MissingClaim(_) | TokenError::InvalidClaim(_) => {
                "the access token claims are invalid"
            }
            TokenError::StatusUriNotAllowed
            | TokenError::StatusIndexOutOfRange
            | TokenError::StatusMissing => "the access token status is invalid",
            TokenError::Revoked => "the access token was revoked",
            TokenError::DpopBound => {
                "the access token is DPoP-bound; send it as Authorization: DPoP with a DPoP proof"
            }
            TokenError::NotDpopBound => {
                "the access token is not DPoP-bound; send it as a Bearer token"
            }
            TokenError::InvalidDpopProof(reason) => reason,
            TokenError::InsufficientScope { .. } => {
                "the access token lacks a scope this resource requires"
            }
            TokenError::StatusUnavailable => "the token status cannot be checked now, retry later",
            TokenError::NotReady => "the issuer keys are not loaded yet, retry later",
            TokenError::Internal => "internal error",
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3): `Bearer realm="…"` for a missing token,
    /// else with `error`, `error_description` and, for `insufficient_scope`, `scope`.
    /// For 503 and 500 only the bare challenge (which is not sent; see
    /// [`TokenError::has_challenge`]).
    pub fn www_authenticate(&self, realm: &str) -> String {
        self.www_authenticate_with(realm, None)
    }

    /// Whether the challenge is a `DPoP` one (RFC 9449 §7.1): the refusal is about
    /// the proof, or about a bound token sent as a bearer token.
    pub fn is_dpop(&self) -> bool {
        matches!(
            self,
            TokenError::InvalidDpopProof(_) | TokenError::DpopBound
        )
    }

    /// [`TokenError::www_authenticate`] with the RFC 9728 §5.1 `resource_metadata`
    /// parameter, and for DPoP refusals the `DPoP` scheme with its `algs` (RFC 9449
    /// §7.1) instead of `Bearer`.
    pub fn www_authenticate_with(&self, realm: &str, resource_metadata: Option<&str>) -> String {
        let scheme = if self.is_dpop() { "DPoP" } else { "Bearer" };
        let mut challenge = format!("{scheme} realm=\"{}\"", quotable(realm));
        if let Some(url) = resource_metadata {
            challenge.push_str(&format!(", resource_metadata=\"{}\"", quotable(url)));
        }
        if self.is_dpop() {
            let algs: Vec<&str> = valet_jose::DPOP_ALGORITHMS
                .iter()
                .map(|alg| alg.as_str())
                .collect();
            challenge.push_str(&format!(", algs=\"{}\"", algs.join(" ")));
        }
        if !self.has_challenge() {
            return challenge;
        }
        if let Some(code) = self.error_code() {
            challenge.push_str(&format!(
                ", error=\"{code}\", error_description=\"{}\"",
                self.description()
            ));
        }
        if let TokenError::InsufficientScope { required } = self {
            let scope: Vec<String> = required.iter().map(|s| quotable(s)).collect();
            challenge.push_str(&format!(", scope=\"{}\"", scope.join(" ")));
        }
        challenge
    }
}

/// Drops what a quoted string cannot hold unescaped. Configured values are validated at
/// start-up; this only guards scopes passed per call.
fn quotable(text: &str) -> String {
    text.bytes()
        .filter(|b| is_qdtext(*b))
        .map(char::from)
        .collect()
}

/// Why a [`Guard`](crate::Guard) could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// Neither metadata document could be fetched.
    #[error("cannot fetch the issuer's metadata from {url}: {reason}")]
    Discovery {
        /// The last URL tried.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The metadata's `issuer` is not the configured issuer (RFC 8414 §3.3).
    #[error("the metadata names issuer {found:?}, not the configured {expected:?}")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// What the metadata says.
        found: String,
    },
    /// The metadata is unusable (no `jwks_uri`, or one that is not an https URL).
    #[error("unusable issuer metadata: {0}")]
    Metadata(&'static str),
    /// [`Guard::start_in_background`](crate::Guard::start_in_background) was called
    /// outside a Tokio runtime.
    #[error("the guard must be started within a Tokio runtime")]
    NoRuntime,
    /// The JWKS could not be fetched or parsed.
    #[error("cannot load the JWKS from {url}: {reason}")]
    Jwks {
        /// The `jwks_uri`.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use super::*;

    fn all() -> Vec<TokenError> {
        vec![
            TokenError::Missing,
            TokenError::InvalidRequest("the Authorization header appears more than once"),
            TokenError::TooLarge,
            TokenError::Malformed("x"),
            TokenError::UnsupportedAlgorithm,
            TokenError::AlgorithmMismatch,
            TokenError::MissingKeyId,
            TokenError::UnknownKey,
            TokenError::InvalidSignature,
            TokenError::UnsupportedHeader,
            TokenError::WrongType,
            TokenError::InvalidIssuer,
            TokenError::InvalidAudience,
            TokenError::Expired,
            TokenError::NotYetValid,
            TokenError::IssuedInFuture,
            TokenError::MissingClaim("sub"),
            TokenError::InvalidClaim("aud"),
            TokenError::StatusUriNotAllowed,
            TokenError::StatusIndexOutOfRange,
            TokenError::StatusMissing,
            TokenError::Revoked,
            TokenError::InsufficientScope {
                required: vec!["a".into()],
            },
            TokenError::StatusUnavailable,
            TokenError::NotReady,
            TokenError::Internal,
        ]
    }

    #[test]
    fn descriptions_are_safe_quoted_text() {
        for error in all() {
            assert!(
                error.description().bytes().all(is_qdtext),
                "{error:?}: {}",
                error.description()
            );
            let challenge = error.www_authenticate("api");
            assert!(challenge.starts_with("Bearer realm=\"api\""), "{challenge}");
            assert!(challenge.bytes().all(|b| (0x20..0x7f).contains(&b)));
        }
    }

    #[test]
    fn rfc_6750_mapping() {
        assert_eq!(TokenError::Missing.status(), 401);
        assert_eq!(
            TokenError::Missing.www_authenticate("api"),
            "Bearer realm=\"api\""
        );
        assert_eq!(TokenError::Expired.status(), 401);
        assert_eq!(
            TokenError::Expired.www_authenticate("api"),
            "Bearer realm=\"api\", error=\"invalid_token\", \
             error_description=\"the access token expired\""
        );
        let scope = TokenError::InsufficientScope {
            required: vec!["orders:read".into(), "bad\"scope".into()],
        };
        assert_eq!(scope.status(), 403);
        assert_eq!(
            scope.www_authenticate("api"),
            "Bearer realm=\"api\", error=\"insufficient_scope\", \
             error_description=\"the access token lacks a scope this resource requires\", \
             scope=\"orders:read badscope\""
        );
        assert_eq!(TokenError::StatusUnavailable.status(), 503);
        assert!(!TokenError::StatusUnavailable.has_challenge());
        assert_eq!(TokenError::NotReady.status(), 503);
        assert_eq!(
            TokenError::NotReady.error_code(),
            Some("temporarily_unavailable")
        );
        assert!(!TokenError::NotReady.has_challenge());
        assert_eq!(TokenError::InvalidRequest("x").status(), 400);
        for error in all() {
            match error.status() {
                401 | 400 | 403 => assert!(error.has_challenge()),
                _ => assert!(!error.has_challenge()),
            }
        }
    }
}
