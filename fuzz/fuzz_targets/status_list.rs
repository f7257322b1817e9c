//! The Token Status List (draft-ietf-oauth-status-list): valet-guard's decoder of a
//! fetched list (`lst`: base64url of ZLIB data, `bits` per entry) and its claim check of a
//! status list token, and valet-core's `status` claim of an access token.
//!
//! The first byte says what the rest is:
//! - `C`: the claims of a status list token, as JSON;
//! - `Z`: a `bits` byte, then ZLIB data (decoded as if sent base64url-encoded);
//! - `B`: a `bits` byte, then the raw bitstring (compressed here, then decoded);
//! - `G`: the claims of an access token, as JSON, for valet-core's `global_index`;
//! - `I`: eight bytes, a global status index for valet-core's `StatusClaim`.
//!
//! A `bits` byte below 0xf0 picks 1, 2, 4 or 8; from 0xf0 up it is taken as it is (and
//! refused unless it is 1, 2, 4 or 8).
//!
//! Beyond "no panic":
//! - a decoded list re-encodes to the same list: its entries, packed as draft §4.1 says
//!   (index `i` at bit `(i * bits) % 8` of byte `i * bits / 8`, least significant first)
//!   and compressed again, decode to an equal list; every entry fits in `bits`; the list
//!   ends at a byte boundary and never exceeds the size bound; indices past it (up to
//!   `u64::MAX`) have no status;
//! - a raw bitstring round-trips exactly;
//! - an accepted status list token names the expected `sub` and `iss`, has a `ttl` of
//!   1 s to 1 h and is not expired;
//! - valet-core: the claim made for index `i` points back at `i`; a claim it reads as an
//!   index is a list position below `LIST_SIZE` of a list the issuer serves.

#![no_main]

use std::io::Write;
use std::time::Duration;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use valet_core::token::status_claim::{LIST_SIZE, StatusClaim, global_index, list_uri};
use valet_guard::fuzzing::{DecodedList, MAX_LIST_BYTES, check_list_claims};
use valet_jose::b64url;

const ISSUER: &str = "https://id.example";
const URI: &str = "https://id.example/statuslists/0";
const NOW: i64 = 1_800_000_000;
const LEEWAY: i64 = 30;
/// Lists up to this size are re-encoded whole; larger ones only probed.
const REENCODE_MAX_BYTES: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match (mode, rest) {
        (b'C', json) => {
            let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(json) else {
                return;
            };
            if let Ok((list, exp, ttl)) = check_list_claims(&claims, URI, ISSUER, NOW, LEEWAY) {
                assert_eq!(claims["sub"], URI);
                assert_eq!(claims["iss"], ISSUER);
                assert!((Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&ttl));
                assert!(exp.is_none_or(|exp| NOW < exp.saturating_add(LEEWAY)));
                let bits = claims["status_list"]["bits"].as_u64().expect("bits");
                check_list(&list, bits);
            }
        }
        (b'Z', [bits, zlib @ ..]) => {
            let bits = bits_of(*bits);
            if let Ok(list) = DecodedList::decode(bits, &b64url(zlib)) {
                check_list(&list, bits);
            }
        }
        (b'B', [bits, raw @ ..]) => {
            let bits = bits_of(*bits);
            let decoded = DecodedList::decode(bits, &compress(raw));
            if !matches!(bits, 1 | 2 | 4 | 8) {
                assert!(decoded.is_err());
                return;
            }
            let list = decoded.expect("a compressed bitstring decodes");
            let entries = entries(&list);
            assert_eq!(entries.len() as u64, raw.len() as u64 * 8 / bits);
            assert_eq!(pack(&entries, bits), raw);
            check_list(&list, bits);
        }
        (b'G', json) => {
            let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(json) else {
                return;
            };
            // Whatever names a list is exactly what Valet would have written for it.
            if let Some(index) = global_index(ISSUER, &claims) {
                let claim = StatusClaim::new(ISSUER, index).status_list;
                let reference = &claims["status"]["status_list"];
                assert_eq!(reference["idx"].as_i64(), Some(claim.idx));
                assert_eq!(reference["uri"].as_str(), Some(claim.uri.as_str()));
            }
        }
        (b'I', [a, b, c, d, e, f, g, h, ..]) => {
            let index = i64::from_be_bytes([*a, *b, *c, *d, *e, *f, *g, *h]);
            if index < 0 {
                return;
            }
            let claim = StatusClaim::new(ISSUER, index);
            assert_eq!(claim.status_list.uri, list_uri(ISSUER, index / LIST_SIZE));
            let claims = serde_json::json!({ "status": claim });
            let claims = claims.as_object().expect("an object");
            assert_eq!(global_index(ISSUER, claims), Some(index));
            assert_eq!(global_index("https://other.example", claims), None);
        }
        _ => {}
    }
});

fn bits_of(byte: u8) -> u64 {
    match byte {
        0xf0..=0xfe => u64::from(byte & 0x0f),
        0xff => u64::MAX,
        _ => [1, 2, 4, 8][usize::from(byte % 4)],
    }
}

/// The invariants of any decoded list with `bits` per entry.
fn check_list(list: &DecodedList, bits: u64) {
    for idx in [
        u64::MAX,
        u64::MAX / bits,
        (u64::MAX / bits).saturating_add(1),
        u64::MAX / 8,
    ] {
        let _ = list.status(idx);
    }
    let len = entry_count(list);
    assert_eq!(len * bits % 8, 0, "the list ends inside a byte");
    assert!(len * bits / 8 <= MAX_LIST_BYTES as u64);
    assert_eq!(list.status(u64::MAX), None);
    if len * bits / 8 > REENCODE_MAX_BYTES as u64 {
        return;
    }
    let entries = entries(list);
    assert!(entries.iter().all(|&status| u64::from(status) < 1 << bits));
    let again = DecodedList::decode(bits, &compress(&pack(&entries, bits)))
        .expect("a re-encoded list decodes");
    assert_eq!(&again, list);
}

/// The number of entries: the first index without a status (a binary search, as entries
/// exist exactly below it).
fn entry_count(list: &DecodedList) -> u64 {
    let (mut present, mut absent) = (0u64, 1u64);
    if list.status(0).is_none() {
        return 0;
    }
    while list.status(absent).is_some() {
        present = absent;
        absent = absent.checked_mul(2).expect("fewer than 2^63 entries");
    }
    while absent - present > 1 {
        let middle = present + (absent - present) / 2;
        if list.status(middle).is_some() {
            present = middle;
        } else {
            absent = middle;
        }
    }
    absent
}

fn entries(list: &DecodedList) -> Vec<u8> {
    (0..entry_count(list))
        .map(|idx| list.status(idx).expect("below the count"))
        .collect()
}

/// Draft §4.1: entry `i` at bit `(i * bits) % 8` of byte `i * bits / 8`.
fn pack(entries: &[u8], bits: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; (entries.len() as u64 * bits / 8) as usize];
    for (idx, &status) in entries.iter().enumerate() {
        let position = idx as u64 * bits;
        bytes[(position / 8) as usize] |= status << (position % 8);
    }
    bytes
}

fn compress(bytes: &[u8]) -> String {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).expect("in memory");
    b64url(encoder.finish().expect("in memory"))
}
