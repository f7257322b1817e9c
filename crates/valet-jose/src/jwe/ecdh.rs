//! ECDH-ES key agreement on P-256 (RFC 7518 §4.6) and the Concat KDF that turns the shared
//! secret into a key (RFC 7518 §4.6.2, NIST SP 800-56A §5.8.1). The agreement and SHA-256
//! are aws-lc-rs's; only the KDF's input layout is written here.

use aws_lc_rs::agreement::{self, ECDH_P256, EphemeralPrivateKey, PrivateKey, UnparsedPublicKey};
use aws_lc_rs::digest::{Context, SHA256};
use aws_lc_rs::rand::SystemRandom;
use zeroize::Zeroizing;

use crate::error::JoseError;

/// The ephemeral public key sent in `epk`, as an uncompressed SEC1 point, and the key
/// derived for `algorithm_id` with `key_len` octets.
pub(crate) struct Agreed {
    pub(crate) ephemeral_point: Vec<u8>,
    pub(crate) key: Zeroizing<Vec<u8>>,
}

/// The parties' inputs to the KDF: the algorithm whose key is derived (the `enc` value for
/// direct agreement, the `alg` value for key wrapping; §4.6.2 "AlgorithmID"), `apu`, `apv`.
pub(crate) struct KdfInfo<'a> {
    pub(crate) algorithm_id: &'a str,
    pub(crate) apu: &'a [u8],
    pub(crate) apv: &'a [u8],
    pub(crate) key_len: usize,
}

/// Sender side: a fresh ephemeral P-256 key agreed with the recipient's point.
pub(crate) fn agree_as_sender(
    recipient_point: &[u8],
    info: &KdfInfo<'_>,
) -> Result<Agreed, JoseError> {
    let ephemeral = EphemeralPrivateKey::generate(&ECDH_P256, &SystemRandom::new())
        .map_err(|_| JoseError::Random)?;
    let ephemeral_point = ephemeral
        .compute_public_key()
        .map_err(|_| JoseError::JweEncrypt)?
        .as_ref()
        .to_vec();
    let key = agreement::agree_ephemeral(
        ephemeral,
        UnparsedPublicKey::new(&ECDH_P256, recipient_point),
        JoseError::JweEncrypt,
        |z| Ok(concat_kdf(z, info)),
    )?;
    Ok(Agreed {
        ephemeral_point,
        key,
    })
}

/// Recipient side: the static private key agreed with the sender's `epk` point. aws-lc-rs
/// checks the point is on P-256 (RFC 7518 §4.6 security note on invalid-curve attacks).
pub(crate) fn agree_as_recipient(
    private: &PrivateKey,
    ephemeral_point: &[u8],
    info: &KdfInfo<'_>,
) -> Result<Zeroizing<Vec<u8>>, JoseError> {
    agreement::agree(
        private,
        UnparsedPublicKey::new(&ECDH_P256, ephemeral_point),
        JoseError::JweDecrypt,
        |z| Ok(concat_kdf(z, info)),
    )
}

/// The Concat KDF with SHA-256 (RFC 7518 §4.6.2): rounds of
/// `SHA-256(counter || Z || OtherInfo)` where OtherInfo is
/// `AlgorithmID || PartyUInfo || PartyVInfo || SuppPubInfo`, each datum but the last
/// prefixed with its 32-bit big-endian length, SuppPubInfo the key length in bits.
pub(crate) fn concat_kdf(z: &[u8], info: &KdfInfo<'_>) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(info.key_len + 32));
    let key_bits = u32::try_from(info.key_len.saturating_mul(8)).unwrap_or(u32::MAX);
    let mut counter: u32 = 1;
    while out.len() < info.key_len {
        let mut round = Context::new(&SHA256);
        round.update(&counter.to_be_bytes());
        round.update(z);
        for datum in [info.algorithm_id.as_bytes(), info.apu, info.apv] {
            round.update(&length_prefix(datum));
            round.update(datum);
        }
        round.update(&key_bits.to_be_bytes());
        out.extend_from_slice(round.finish().as_ref());
        counter = counter.wrapping_add(1);
    }
    out.truncate(info.key_len);
    out
}

fn length_prefix(datum: &[u8]) -> [u8; 4] {
    u32::try_from(datum.len()).unwrap_or(u32::MAX).to_be_bytes()
}
