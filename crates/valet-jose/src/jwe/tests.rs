#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Map, Value, json};

use super::*;
use crate::jwk::PRIVATE_MEMBERS;

const FIXTURE: &str = include_str!("../../tests/fixtures/private_jwks.json");

fn fixture(kty: &str) -> Map<String, Value> {
    let set: Value = serde_json::from_str(FIXTURE).unwrap();
    let mut key = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kty"] == kty)
        .unwrap()
        .as_object()
        .unwrap()
        .clone();
    key.remove("use");
    key.remove("alg");
    key.insert("kid".into(), format!("{kty}-enc").into());
    key
}

fn public(private: &Map<String, Value>) -> Map<String, Value> {
    let mut public = private.clone();
    for name in PRIVATE_MEMBERS {
        public.remove(name);
    }
    public.insert("use".into(), "enc".into());
    public
}

fn pair(kty: &str) -> (EncryptionKey, DecryptionKey) {
    let private = fixture(kty);
    (
        EncryptionKey::from_jwk(&public(&private)).unwrap(),
        DecryptionKey::from_jwk(&private).unwrap(),
    )
}

fn pair_for(alg: KeyManagement) -> (EncryptionKey, DecryptionKey) {
    pair(alg.key_type())
}

fn header_of(token: &str) -> Map<String, Value> {
    let protected = token.split('.').next().unwrap();
    serde_json::from_slice(&b64url_decode(protected).unwrap()).unwrap()
}

#[test]
fn every_alg_and_enc_round_trips() {
    for alg in KeyManagement::ALL {
        for enc in ContentEncryption::ALL {
            let (to, with) = pair_for(alg);
            let token = encrypt(b"a.b.c", &to, alg, enc, Some("JWT")).unwrap();
            let header = header_of(&token);
            assert_eq!(header["alg"], alg.as_str());
            assert_eq!(header["enc"], enc.as_str());
            assert_eq!(header["cty"], "JWT");
            assert_eq!(header["kid"], format!("{}-enc", alg.key_type()));
            assert_eq!(header.contains_key("epk"), alg != KeyManagement::RsaOaep256);
            let parts: Vec<&str> = token.split('.').collect();
            assert_eq!(parts.len(), 5);
            assert_eq!(parts[1].is_empty(), alg == KeyManagement::EcdhEs);
            let opened = decrypt(&token, &with).unwrap();
            assert_eq!(opened.plaintext, b"a.b.c");
            assert_eq!((opened.alg, opened.enc), (alg, enc));
            assert_eq!(opened.cty.as_deref(), Some("JWT"));
        }
    }
}

#[test]
fn encryptions_are_randomized() {
    let (to, _) = pair("EC");
    let a = encrypt(
        b"x",
        &to,
        KeyManagement::EcdhEs,
        ContentEncryption::A256Gcm,
        None,
    )
    .unwrap();
    let b = encrypt(
        b"x",
        &to,
        KeyManagement::EcdhEs,
        ContentEncryption::A256Gcm,
        None,
    )
    .unwrap();
    assert_ne!(a, b);
    assert!(!header_of(&a).contains_key("cty"));
}

/// Flips one bit of part `index` (0 header .. 4 tag) and re-encodes.
fn tamper(token: &str, index: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut bytes = b64url_decode(&parts[index]).unwrap();
    if bytes.is_empty() {
        bytes.push(0);
    } else {
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
    }
    parts[index] = b64url(bytes);
    parts.join(".")
}

#[test]
fn tampering_with_any_part_is_refused() {
    for alg in KeyManagement::ALL {
        let (to, with) = pair_for(alg);
        let token = encrypt(b"claims", &to, alg, ContentEncryption::A256Gcm, None).unwrap();
        for index in 0..5 {
            let tampered = tamper(&token, index);
            assert!(decrypt(&tampered, &with).is_err(), "{alg} part {index}");
        }
    }
}

#[test]
fn a_changed_header_is_refused_even_when_valid_json() {
    let (to, with) = pair("RSA");
    let token = encrypt(
        b"claims",
        &to,
        KeyManagement::RsaOaep256,
        ContentEncryption::A256Gcm,
        None,
    )
    .unwrap();
    let mut header = header_of(&token);
    header.insert("cty".into(), "JWT".into());
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[0] = b64url(serde_json::to_vec(&header).unwrap());
    assert!(matches!(
        decrypt(&parts.join("."), &with),
        Err(JoseError::JweDecrypt)
    ));
}

#[test]
fn the_wrong_key_is_refused() {
    let (to, _) = pair("EC");
    let mut other = fixture("EC");
    // Another P-256 key: RFC 7518 Appendix C's "Bob".
    other.insert("x".into(), BOB_X.into());
    other.insert("y".into(), BOB_Y.into());
    other.insert("d".into(), BOB_D.into());
    other.remove("kid");
    let other = DecryptionKey::from_jwk(&other).unwrap();
    for alg in [KeyManagement::EcdhEs, KeyManagement::EcdhEsA256Kw] {
        let token = encrypt(b"claims", &to, alg, ContentEncryption::A256Gcm, None).unwrap();
        assert!(
            matches!(decrypt(&token, &other), Err(JoseError::JweDecrypt)),
            "{alg}"
        );
    }
    let (_, rsa) = pair("RSA");
    let token = encrypt(
        b"c",
        &to,
        KeyManagement::EcdhEs,
        ContentEncryption::A256Gcm,
        None,
    )
    .unwrap();
    assert!(decrypt(&token, &rsa).is_err());
}

#[test]
fn keys_only_serve_their_algorithms() {
    let (rsa, _) = pair("RSA");
    let (ec, _) = pair("EC");
    assert!(rsa.fits(KeyManagement::RsaOaep256) && !rsa.fits(KeyManagement::EcdhEs));
    assert!(ec.fits(KeyManagement::EcdhEsA256Kw) && !ec.fits(KeyManagement::RsaOaep256));
    assert!(matches!(
        encrypt(
            b"x",
            &rsa,
            KeyManagement::EcdhEs,
            ContentEncryption::A256Gcm,
            None
        ),
        Err(JoseError::JweKeyMismatch(_))
    ));
    let mut declared = public(&fixture("EC"));
    declared.insert("alg".into(), "ECDH-ES".into());
    let declared = EncryptionKey::from_jwk(&declared).unwrap();
    assert!(declared.fits(KeyManagement::EcdhEs) && !declared.fits(KeyManagement::EcdhEsA256Kw));
}

#[test]
fn recipient_keys_are_checked() {
    let ec = public(&fixture("EC"));
    let with = |name: &str, value: Value| {
        let mut key = ec.clone();
        key.insert(name.into(), value);
        key
    };
    for (jwk, why) in [
        (with("use", "sig".into()), "use"),
        (with("alg", "ES256".into()), "alg"),
        (with("alg", "RSA-OAEP-256".into()), "alg"),
        (with("crv", "P-384".into()), "curve"),
        (with("d", "AAAA".into()), "private"),
        (with("x", BOB_X.into()), "invalid public key"),
        (with("kty", "oct".into()), "symmetric"),
    ] {
        let error = EncryptionKey::from_jwk(&jwk).expect_err(why).to_string();
        assert!(error.to_lowercase().contains(why), "{why}: {error}");
    }
}

#[test]
fn selection_prefers_declared_encryption_keys() {
    let mut plain = public(&fixture("EC"));
    plain.remove("use");
    plain.insert("kid".into(), "plain".into());
    let declared = public(&fixture("EC"));
    let mut signing = public(&fixture("EC"));
    signing.insert("use".into(), "sig".into());
    let set = EncryptionKeys::lenient(&[signing, plain, declared]);
    assert_eq!(set.len(), 2);
    let chosen = set.for_algorithm(KeyManagement::EcdhEs).unwrap();
    assert_eq!(chosen.kid(), Some("EC-enc"));
    assert!(set.for_algorithm(KeyManagement::RsaOaep256).is_none());
}

#[test]
fn strict_sets_refuse_broken_encryption_keys() {
    let mut broken = public(&fixture("EC"));
    broken.insert("crv".into(), "P-384".into());
    assert!(EncryptionKeys::strict(&[broken]).is_err());
    let mut signing = public(&fixture("EC"));
    signing.insert("use".into(), "sig".into());
    assert!(EncryptionKeys::strict(&[signing]).unwrap().is_empty());
}

#[test]
fn malformed_tokens_are_refused() {
    let (to, with) = pair("EC");
    let token = encrypt(
        b"x",
        &to,
        KeyManagement::EcdhEs,
        ContentEncryption::A256Gcm,
        None,
    )
    .unwrap();
    let reheader = |header: Value| {
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[0] = b64url(serde_json::to_vec(&header).unwrap());
        parts.join(".")
    };
    let epk = header_of(&token)["epk"].clone();
    for (bad, why) in [
        ("a.b.c".to_owned(), "five parts"),
        (format!("{token}."), "five parts"),
        (
            reheader(json!({"alg":"RSA1_5","enc":"A256GCM"})),
            "unsupported",
        ),
        (
            reheader(json!({"alg":"ECDH-ES","enc":"A128CBC-HS256","epk":epk})),
            "unsupported",
        ),
        (
            reheader(json!({"alg":"ECDH-ES","enc":"A256GCM","epk":epk,"zip":"DEF"})),
            "zip",
        ),
        (
            reheader(json!({"alg":"ECDH-ES","enc":"A256GCM","epk":epk,"crit":["exp"]})),
            "crit",
        ),
        (reheader(json!({"alg":"ECDH-ES","enc":"A256GCM"})), "epk"),
        (
            reheader(json!({"alg":"ECDH-ES","enc":"A256GCM","epk":epk,"kid":"other"})),
            "kid",
        ),
        (reheader(json!(["alg"])), "json object"),
        ("x".repeat(MAX_JWE_LEN + 1), "limit"),
    ] {
        let error = decrypt(&bad, &with).expect_err(why).to_string();
        assert!(error.to_lowercase().contains(why), "{why}: {error}");
    }
}

// RFC 7518 Appendix C: ECDH-ES key agreement between Alice (ephemeral) and Bob.
const ALICE_X: &str = "gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0";
const ALICE_Y: &str = "SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps";
const BOB_X: &str = "weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ";
const BOB_Y: &str = "e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck";
const BOB_D: &str = "VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw";
const DERIVED: &str = "VqqN6vgjbSBcIijNcacQGg";

fn bob() -> DecryptionKey {
    DecryptionKey::from_jwk(
        json!({"kty":"EC","crv":"P-256","x":BOB_X,"y":BOB_Y,"d":BOB_D})
            .as_object()
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn rfc7518_appendix_c_derives_the_published_key() {
    let Private::EcP256(private) = &bob().private else {
        panic!("EC key expected");
    };
    let alice = jwk::ec_point(json!({"x": ALICE_X, "y": ALICE_Y}).as_object().unwrap()).unwrap();
    let info = KdfInfo {
        algorithm_id: "A128GCM",
        apu: b"Alice",
        apv: b"Bob",
        key_len: 16,
    };
    let key = ecdh::agree_as_recipient(private, &alice, &info).unwrap();
    assert_eq!(b64url(key.as_slice()), DERIVED);
}

#[test]
fn rfc7518_appendix_c_header_decrypts() {
    // A JWE with Appendix C's header (apu "Alice", apv "Bob"), sealed with the published
    // derived key: decrypt must derive the same key from the header alone.
    let header = json!({"alg":"ECDH-ES","enc":"A128GCM","apu":"QWxpY2U","apv":"Qm9i",
        "epk":{"kty":"EC","crv":"P-256","x":ALICE_X,"y":ALICE_Y}});
    let protected = b64url(serde_json::to_vec(&header).unwrap());
    let cek = b64url_decode(DERIVED).unwrap();
    let iv = [7u8; IV_LEN];
    let sealing = LessSafeKey::new(UnboundKey::new(&aws_lc_rs::aead::AES_128_GCM, &cek).unwrap());
    let mut ciphertext = b"Live long and prosper.".to_vec();
    let tag = sealing
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(protected.as_bytes()),
            &mut ciphertext,
        )
        .unwrap();
    let token = format!(
        "{protected}..{}.{}.{}",
        b64url(iv),
        b64url(ciphertext),
        b64url(tag.as_ref())
    );
    assert_eq!(
        decrypt(&token, &bob()).unwrap().plaintext,
        b"Live long and prosper."
    );
}
