//! The `status` claim of an access token (draft-ietf-oauth-status-list §6.1):
//! the list and the position in it that stand for the token. The lists
//! themselves are built and served by the `status` module.

/// Indices per list: 2^20 bits, 128 KiB before compression (mostly zeros, so a few
/// hundred bytes after).
pub const LIST_SIZE: i64 = 1 << 20;

/// The `status` claim of an access token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusClaim {
    pub status_list: StatusReference,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusReference {
    pub idx: i64,
    pub uri: String,
}

impl StatusClaim {
    /// The claim for global index `index`: `idx` is the position within the list
    /// the `uri` names (draft-ietf-oauth-status-list §6.1).
    pub fn new(issuer: &str, index: i64) -> Self {
        Self {
            status_list: StatusReference {
                idx: index % LIST_SIZE,
                uri: list_uri(issuer, index / LIST_SIZE),
            },
        }
    }
}

pub fn list_uri(issuer: &str, list: i64) -> String {
    format!("{issuer}/statuslists/{list}")
}

/// The global index a token's `status` claim points at, if it is one of this
/// issuer's lists.
pub fn global_index(
    issuer: &str,
    claims: &serde_json::Map<String, serde_json::Value>,
) -> Option<i64> {
    let reference = claims.get("status")?.get("status_list")?;
    let idx = reference
        .get("idx")?
        .as_i64()
        .filter(|idx| (0..LIST_SIZE).contains(idx))?;
    let list = reference
        .get("uri")?
        .as_str()?
        .strip_prefix(issuer)?
        .strip_prefix("/statuslists/")?;
    // Only the form `StatusClaim` writes: digits, no sign, no leading zero.
    let canonical =
        list.bytes().all(|b| b.is_ascii_digit()) && (list == "0" || !list.starts_with('0'));
    let list = list.parse::<i64>().ok().filter(|_| canonical)?;
    list.checked_mul(LIST_SIZE)?.checked_add(idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_uri_form_valet_writes_names_a_list() {
        let with_uri = |uri: &str| {
            let claims =
                serde_json::json!({ "status": { "status_list": { "idx": 3, "uri": uri } } });
            claims
                .as_object()
                .and_then(|claims| global_index("https://id.example", claims))
        };
        assert_eq!(
            with_uri("https://id.example/statuslists/2"),
            Some(2 * LIST_SIZE + 3)
        );
        assert_eq!(with_uri("https://id.example/statuslists/0"), Some(3));
        for odd in ["+2", "02", "-0", " 2", "2 ", ""] {
            let uri = format!("https://id.example/statuslists/{odd}");
            assert_eq!(with_uri(&uri), None, "{uri}");
        }
    }

    #[test]
    fn claims_name_the_list_and_the_position_in_it() {
        let claim = StatusClaim::new("https://id.example", LIST_SIZE + 7);
        assert_eq!(claim.status_list.idx, 7);
        assert_eq!(claim.status_list.uri, "https://id.example/statuslists/1");
        let claims = serde_json::json!({ "status": claim });
        let Some(map) = claims.as_object() else {
            unreachable!("an object")
        };
        assert_eq!(global_index("https://id.example", map), Some(LIST_SIZE + 7));
        assert_eq!(global_index("https://other.example", map), None);
    }
}
