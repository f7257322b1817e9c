//! JOSE for Valet: JWS signing with prepared aws-lc-rs keys, JWS verification and JWKs
//! through `jsonwebtoken`, key generation, import of foreign JWK Sets, JWE encryption to a
//! client's key (`jwe/`), and encryption of private keys at rest.
//!
//! This crate knows nothing of OAuth, except the shape of a DPoP proof (RFC 9449 §4), which
//! the server and `valet-guard` both check (`dpop.rs`). It implements no cryptography of its own: signatures,
//! AES-GCM, RSA-OAEP, ECDH, AES Key Wrap, SHA-256 and randomness come from `aws-lc-rs`, signature verification from
//! `jsonwebtoken`. What is ours is serialization: the compact JWS and JWE forms (RFC 7515 §7.1, RFC 7516 §7.1), the
//! Concat KDF's input layout (RFC 7518 §4.6.2), JWK
//! members (RFC 7517, RFC 7518 §6), thumbprints (RFC 7638), and the sealed-blob layout.
//!
//! | need | here |
//! |---|---|
//! | sign a JWT on the token path | [`SigningKey::sign_jwt`] |
//! | new signing key, its DER to store | [`SigningKey::generate`], [`SigningKey::from_der`] |
//! | publish a key | [`SigningKey::public_jwk`] |
//! | bring keys from another server | [`import_jwk_set`] |
//! | verify a JWS (signature, `alg`, `kid`, `typ`; no claims) | [`VerificationKeys::verify`] |
//! | verify a JWS signed by the `jwk` in its header | [`verify_self_signed`] |
//! | verify a DPoP proof (RFC 9449 §4.3; replay and nonce are the caller's) | [`verify_proof`] |
//! | encrypt an ID token or userinfo to a client's key (JWE, RFC 7516) | [`encrypt`], [`EncryptionKeys::for_algorithm`] |
//! | decrypt a JWE (tests, future use) | [`decrypt`], [`DecryptionKey::from_jwk`] |
//! | encrypt private keys at rest | [`MasterKey::seal`], [`MasterKey::open`] |
//! | randomness, SHA-256, constant-time compare, base64url | [`random_bytes`], [`sha256`], [`constant_time_eq`], [`b64url`] |
//!
//! Every failure is a [`JoseError`]; no error message carries key material.

mod algorithm;
mod clock;
mod dpop;
mod error;
mod import;
mod jwe;
mod jwk;
mod master_key;
mod signing;
mod text;
mod util;
mod verify;

pub use algorithm::{Algorithm, UnsupportedAlgorithm};
pub use clock::{Clock, ManualClock, SystemClock};
pub use dpop::{
    DPOP_ALGORITHMS, DPOP_TYP, DpopError, DpopProof, MAX_PROOF_LEN, ProofRequirements,
    access_token_hash, verify_proof,
};
pub use error::{JoseError, JwkError};
pub use import::{ImportedKey, import_jwk_set};
pub use jwe::{
    ContentEncryption, Decrypted, DecryptionKey, EncryptionKey, EncryptionKeys, KeyManagement,
    MAX_JWE_LEN, UnsupportedJweAlgorithm, declares_encryption, decrypt, encrypt,
};
pub use jwk::jwk_thumbprint;
pub use master_key::{MASTER_KEY_LEN, MasterKey, PeriodKeys};
pub use signing::{PrivateKeyDer, RSA_KEY_BITS, SigningKey};
pub use util::{b64url, b64url_decode, constant_time_eq, random_bytes, sha256};
pub use verify::{MAX_TOKEN_LEN, SelfSignedJws, VerificationKeys, VerifiedJws, verify_self_signed};
