//! The guard's offline steps, for the fuzz targets in `fuzz/` only (feature `fuzzing`).
//! Not an API: hidden from the docs, changed whenever the targets need it.

use std::time::Duration;

use serde_json::{Map, Value};
use valet_jose::VerificationKeys;

use crate::config::MAX_ACCESS_TOKEN_LEN;
use crate::error::TokenError;
use crate::guard::{ACCESS_TOKEN_TYP, from_jose};
use crate::status::list::{self, StatusList};
use crate::token::{ClaimRules, VerifiedToken, check_claims};

/// The largest decompressed status list accepted, in bytes.
pub const MAX_LIST_BYTES: usize = list::MAX_LIST_BYTES;

/// Steps 1 to 4 of [`Guard::verify_with_scopes`](crate::Guard::verify_with_scopes) with a
/// fixed key set (so no JWKS refetch): size, signature, `typ`, claims. Returns the token
/// and its status reference as (`uri`, `idx`).
pub fn verify_access_token(
    keys: &VerificationKeys,
    token: &str,
    issuer: &str,
    audience: &str,
    leeway: i64,
    now: i64,
) -> Result<(VerifiedToken, Option<(String, u64)>), TokenError> {
    if token.len() > MAX_ACCESS_TOKEN_LEN {
        return Err(TokenError::TooLarge);
    }
    let jws = keys
        .verify_bounded(token, ACCESS_TOKEN_TYP, MAX_ACCESS_TOKEN_LEN)
        .map_err(from_jose)?;
    let rules = ClaimRules {
        issuer,
        audience,
        leeway,
    };
    let (verified, status) = check_claims(jws.claims, &rules, now)?;
    Ok((
        verified,
        status.map(|reference| (reference.uri, reference.idx)),
    ))
}

/// A status list as the guard decodes a fetched one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedList(StatusList);

impl DecodedList {
    /// `lst` (base64url of ZLIB data) with `bits` per entry; the error is the log text.
    pub fn decode(bits: u64, lst: &str) -> Result<DecodedList, String> {
        StatusList::decode(bits, lst)
            .map(DecodedList)
            .map_err(|error| error.to_string())
    }

    /// The status at `idx`; `None` beyond the list.
    pub fn status(&self, idx: u64) -> Option<u8> {
        self.0.status(idx)
    }
}

/// The claim check of a fetched status list token: the list, `exp` and the clamped `ttl`.
pub fn check_list_claims(
    claims: &Map<String, Value>,
    uri: &str,
    issuer: &str,
    now: i64,
    leeway: i64,
) -> Result<(DecodedList, Option<i64>, Duration), String> {
    list::check_list_claims(claims, uri, issuer, now, leeway)
        .map(|token| (DecodedList(token.list), token.exp, token.ttl))
        .map_err(|error| error.to_string())
}
