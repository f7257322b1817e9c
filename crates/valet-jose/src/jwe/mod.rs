//! JWE in the compact serialization (RFC 7516 §7.1), for ID tokens and userinfo answers
//! encrypted to a client's key (OpenID Connect Core §10.2).
//!
//! Key management: RSA-OAEP-256 (RFC 7518 §4.3), ECDH-ES and ECDH-ES+A256KW on P-256
//! (RFC 7518 §4.6). Content encryption: A256GCM and A128GCM (RFC 7518 §5.3). RSA-OAEP,
//! ECDH, AES Key Wrap, AES-GCM, SHA-256 and randomness are aws-lc-rs's; the header, the
//! Concat KDF layout and the serialization are written here. No compression (`zip`), no
//! `crit`, no JSON serialization.

mod algorithms;
mod ecdh;
mod keys;

#[cfg(test)]
mod tests;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::key_wrap::{AES_256, KeyEncryptionKey, KeyWrap};
use aws_lc_rs::rsa::{
    OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey, PublicKeyComponents,
};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

pub use algorithms::{ContentEncryption, KeyManagement, UnsupportedJweAlgorithm};
pub use keys::{DecryptionKey, EncryptionKey, EncryptionKeys, declares_encryption};

use crate::error::JoseError;
use crate::jwk;
use crate::util::{b64url, b64url_decode, random_bytes};
use ecdh::KdfInfo;
use keys::{Private, Recipient};

/// Octets of the AES-GCM initialization vector (RFC 7518 §5.3: 96 bits).
const IV_LEN: usize = 12;
/// Octets of the AES-GCM authentication tag (RFC 7518 §5.3: 128 bits).
const TAG_LEN: usize = 16;
/// The largest JWE [`decrypt`] reads.
pub const MAX_JWE_LEN: usize = 256 * 1024;

/// Encrypts `plaintext` to `key` with `alg` and `enc`, returning the compact JWE. The
/// protected header carries `alg`, `enc`, the key's `kid` when it has one, `cty` when
/// given (`"JWT"` for a nested signed JWT, OpenID Connect Core §10.2), and `epk` for ECDH-ES.
pub fn encrypt(
    plaintext: &[u8],
    key: &EncryptionKey,
    alg: KeyManagement,
    enc: ContentEncryption,
    cty: Option<&str>,
) -> Result<String, JoseError> {
    if !key.fits(alg) {
        return Err(JoseError::JweKeyMismatch(alg.as_str()));
    }
    let mut header = Map::new();
    header.insert("alg".into(), alg.as_str().into());
    header.insert("enc".into(), enc.as_str().into());
    if let Some(kid) = key.kid() {
        header.insert("kid".into(), kid.into());
    }
    if let Some(cty) = cty {
        header.insert("cty".into(), cty.into());
    }
    let (cek, encrypted_key) = manage_key(&key.recipient, alg, enc, &mut header)?;
    let protected = b64url(serde_json::to_vec(&header).map_err(JoseError::Json)?);
    let iv = random_bytes::<IV_LEN>()?;
    let sealing =
        LessSafeKey::new(UnboundKey::new(enc.aead(), &cek).map_err(|_| JoseError::JweEncrypt)?);
    let mut ciphertext = plaintext.to_vec();
    let tag = sealing
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(protected.as_bytes()),
            &mut ciphertext,
        )
        .map_err(|_| JoseError::JweEncrypt)?;
    Ok(format!(
        "{protected}.{}.{}.{}.{}",
        b64url(encrypted_key),
        b64url(iv),
        b64url(ciphertext),
        b64url(tag.as_ref())
    ))
}

/// The CEK and the JWE Encrypted Key for `alg` (RFC 7516 §5.1 steps 1–6).
fn manage_key(
    recipient: &Recipient,
    alg: KeyManagement,
    enc: ContentEncryption,
    header: &mut Map<String, Value>,
) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), JoseError> {
    match (recipient, alg) {
        (Recipient::Rsa { n, e }, KeyManagement::RsaOaep256) => {
            let cek = random_cek(enc)?;
            let public: PublicEncryptingKey = PublicKeyComponents { n, e }
                .try_into()
                .map_err(|_| JoseError::JweEncrypt)?;
            let oaep = OaepPublicEncryptingKey::new(public).map_err(|_| JoseError::JweEncrypt)?;
            let mut out = vec![0u8; oaep.ciphertext_size()];
            let written = oaep
                .encrypt(&OAEP_SHA256_MGF1SHA256, &cek, &mut out, None)
                .map_err(|_| JoseError::JweEncrypt)?
                .len();
            out.truncate(written);
            Ok((cek, out))
        }
        (Recipient::EcP256 { point }, KeyManagement::EcdhEs) => {
            let agreed = ecdh::agree_as_sender(point, &kdf_info(alg, enc, &[], &[]))?;
            header.insert("epk".into(), epk_jwk(&agreed.ephemeral_point)?);
            Ok((agreed.key, Vec::new()))
        }
        (Recipient::EcP256 { point }, KeyManagement::EcdhEsA256Kw) => {
            let agreed = ecdh::agree_as_sender(point, &kdf_info(alg, enc, &[], &[]))?;
            header.insert("epk".into(), epk_jwk(&agreed.ephemeral_point)?);
            let cek = random_cek(enc)?;
            let kek =
                KeyEncryptionKey::new(&AES_256, &agreed.key).map_err(|_| JoseError::JweEncrypt)?;
            let mut out = vec![0u8; cek.len() + 8];
            kek.wrap(&cek, &mut out)
                .map_err(|_| JoseError::JweEncrypt)?;
            Ok((cek, out))
        }
        _ => Err(JoseError::JweKeyMismatch(alg.as_str())),
    }
}

/// The KDF inputs: for direct agreement the key is the CEK, named by `enc`; for key
/// wrapping it is the KEK, named by `alg` (RFC 7518 §4.6.2).
fn kdf_info<'a>(
    alg: KeyManagement,
    enc: ContentEncryption,
    apu: &'a [u8],
    apv: &'a [u8],
) -> KdfInfo<'a> {
    match alg {
        KeyManagement::EcdhEs => KdfInfo {
            algorithm_id: enc.as_str(),
            apu,
            apv,
            key_len: enc.key_len(),
        },
        KeyManagement::RsaOaep256 | KeyManagement::EcdhEsA256Kw => KdfInfo {
            algorithm_id: alg.as_str(),
            apu,
            apv,
            key_len: 32,
        },
    }
}

fn random_cek(enc: ContentEncryption) -> Result<Zeroizing<Vec<u8>>, JoseError> {
    let bytes = Zeroizing::new(random_bytes::<32>()?);
    Ok(Zeroizing::new(
        bytes.get(..enc.key_len()).unwrap_or_default().to_vec(),
    ))
}

fn epk_jwk(point: &[u8]) -> Result<Value, JoseError> {
    match point.split_first() {
        Some((0x04, xy)) if xy.len() == 2 * jwk::P256_LEN => {
            let (x, y) = xy.split_at(jwk::P256_LEN);
            Ok(serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64url(x), "y": b64url(y)}))
        }
        _ => Err(JoseError::JweEncrypt),
    }
}

/// A decrypted JWE: the plaintext and the header members a caller decides on.
#[derive(Debug)]
pub struct Decrypted {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The key management algorithm used.
    pub alg: KeyManagement,
    /// The content encryption used.
    pub enc: ContentEncryption,
    /// `cty`, if present (`"JWT"` for a nested JWT).
    pub cty: Option<String>,
    /// `kid`, if present.
    pub kid: Option<String>,
}

/// The protected header and the four other parts of a compact JWE, decoded.
struct Parts {
    protected: String,
    header: Map<String, Value>,
    encrypted_key: Vec<u8>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

fn split(token: &str) -> Result<Parts, JoseError> {
    if token.len() > MAX_JWE_LEN {
        return Err(JoseError::TokenTooLarge {
            len: token.len(),
            max: MAX_JWE_LEN,
        });
    }
    let segments: Vec<&str> = token.split('.').collect();
    let [protected, encrypted_key, iv, ciphertext, tag] = segments.as_slice() else {
        return Err(JoseError::MalformedToken("a compact JWE has five parts"));
    };
    let decode =
        |part: &str, what| b64url_decode(part).map_err(|_| JoseError::MalformedToken(what));
    let header_bytes = decode(protected, "the protected header is not base64url")?;
    let header = match serde_json::from_slice::<Value>(&header_bytes) {
        Ok(Value::Object(header)) => header,
        _ => {
            return Err(JoseError::MalformedToken(
                "the protected header is not a JSON object",
            ));
        }
    };
    Ok(Parts {
        protected: (*protected).to_owned(),
        header,
        encrypted_key: decode(encrypted_key, "the encrypted key is not base64url")?,
        iv: decode(iv, "the IV is not base64url")?,
        ciphertext: decode(ciphertext, "the ciphertext is not base64url")?,
        tag: decode(tag, "the tag is not base64url")?,
    })
}

/// Decrypts a compact JWE with `key`, strictly: five parts; a protected header that is a
/// JSON object with a supported `alg` fitting the key and a supported `enc`; no `zip`, no
/// `crit`; a `kid`, when both have one, equal to the key's; a 96-bit IV and 128-bit tag;
/// an empty encrypted key for ECDH-ES. Every cryptographic failure is the same
/// [`JoseError::JweDecrypt`], and an RSA-OAEP failure carries on with a random CEK so
/// that it cannot be told apart by timing (RFC 7516 §11.5).
pub fn decrypt(token: &str, key: &DecryptionKey) -> Result<Decrypted, JoseError> {
    let parts = split(token)?;
    let header = &parts.header;
    let text = |name: &'static str| match header.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(JoseError::MalformedToken("a header member is not a string")),
    };
    let alg: KeyManagement = text("alg")?
        .ok_or(JoseError::MalformedToken("the header has no alg"))?
        .parse()
        .map_err(|UnsupportedJweAlgorithm(name)| JoseError::UnsupportedAlgorithm(name))?;
    let enc: ContentEncryption = text("enc")?
        .ok_or(JoseError::MalformedToken("the header has no enc"))?
        .parse()
        .map_err(|UnsupportedJweAlgorithm(name)| JoseError::UnsupportedAlgorithm(name))?;
    if header.contains_key("zip") || header.contains_key("crit") {
        return Err(JoseError::MalformedToken("zip and crit are not supported"));
    }
    let kid = text("kid")?;
    if let (Some(token_kid), Some(key_kid)) = (&kid, &key.kid)
        && token_kid != key_kid
    {
        return Err(JoseError::UnknownKid(crate::text::excerpt(token_kid)));
    }
    if parts.iv.len() != IV_LEN || parts.tag.len() != TAG_LEN {
        return Err(JoseError::MalformedToken(
            "the IV or tag has the wrong length",
        ));
    }
    let cek = recover_cek(&parts, key, alg, enc)?;
    let opening =
        LessSafeKey::new(UnboundKey::new(enc.aead(), &cek).map_err(|_| JoseError::JweDecrypt)?);
    let nonce = Nonce::try_assume_unique_for_key(&parts.iv).map_err(|_| JoseError::JweDecrypt)?;
    let mut in_out = parts.ciphertext.clone();
    in_out.extend_from_slice(&parts.tag);
    let plaintext = opening
        .open_in_place(nonce, Aad::from(parts.protected.as_bytes()), &mut in_out)
        .map_err(|_| JoseError::JweDecrypt)?
        .to_vec();
    Ok(Decrypted {
        plaintext,
        alg,
        enc,
        cty: text("cty")?,
        kid,
    })
}

/// The CEK from the JWE Encrypted Key (RFC 7516 §5.2 steps 9–11).
fn recover_cek(
    parts: &Parts,
    key: &DecryptionKey,
    alg: KeyManagement,
    enc: ContentEncryption,
) -> Result<Zeroizing<Vec<u8>>, JoseError> {
    match (&key.private, alg) {
        (Private::Rsa(private), KeyManagement::RsaOaep256) => {
            let mut out = Zeroizing::new(vec![0u8; private.min_output_size()]);
            let decrypted = private
                .decrypt(
                    &OAEP_SHA256_MGF1SHA256,
                    &parts.encrypted_key,
                    &mut out,
                    None,
                )
                .map(|cek| cek.len());
            match decrypted {
                Ok(len) if len == enc.key_len() => {
                    out.truncate(len);
                    Ok(out)
                }
                _ => random_cek(enc),
            }
        }
        (Private::EcP256(private), KeyManagement::EcdhEs | KeyManagement::EcdhEsA256Kw) => {
            let point = ephemeral_point(&parts.header)?;
            let apu = optional_b64(&parts.header, "apu")?;
            let apv = optional_b64(&parts.header, "apv")?;
            let agreed =
                ecdh::agree_as_recipient(private, &point, &kdf_info(alg, enc, &apu, &apv))?;
            if alg == KeyManagement::EcdhEs {
                if !parts.encrypted_key.is_empty() {
                    return Err(JoseError::MalformedToken(
                        "ECDH-ES needs an empty encrypted key",
                    ));
                }
                return Ok(agreed);
            }
            if parts.encrypted_key.len() != enc.key_len() + 8 {
                return Err(JoseError::JweDecrypt);
            }
            let kek =
                KeyEncryptionKey::new(&AES_256, &agreed).map_err(|_| JoseError::JweDecrypt)?;
            let mut out = Zeroizing::new(vec![0u8; enc.key_len()]);
            kek.unwrap(&parts.encrypted_key, &mut out)
                .map_err(|_| JoseError::JweDecrypt)?;
            Ok(out)
        }
        _ => Err(JoseError::JweKeyMismatch(alg.as_str())),
    }
}

/// The `epk` header member: a public EC P-256 JWK (RFC 7518 §4.6.1.1).
fn ephemeral_point(header: &Map<String, Value>) -> Result<Vec<u8>, JoseError> {
    let epk = header
        .get("epk")
        .and_then(Value::as_object)
        .ok_or(JoseError::MalformedToken("ECDH-ES needs an epk object"))?;
    let fits = jwk::optional_str(epk, "kty").ok().flatten() == Some("EC")
        && jwk::optional_str(epk, "crv").ok().flatten() == Some("P-256")
        && !epk.contains_key("d");
    if !fits {
        return Err(JoseError::MalformedToken(
            "epk must be a public EC P-256 key",
        ));
    }
    jwk::ec_point(epk).map_err(|_| JoseError::MalformedToken("epk is not a P-256 point"))
}

fn optional_b64(header: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, JoseError> {
    match header.get(name) {
        None => Ok(Vec::new()),
        Some(Value::String(text)) => {
            b64url_decode(text).map_err(|_| JoseError::MalformedToken("apu/apv is not base64url"))
        }
        Some(_) => Err(JoseError::MalformedToken("apu/apv must be a string")),
    }
}
