//! A software WebAuthn authenticator for the in-process tests: it makes
//! ES256 discoverable credentials with `none` attestation (WebAuthn §6.5,
//! §8.7) and signs assertions (§6.3.3), as a platform authenticator with user
//! verification would, and lets a test break any part of its answer.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};
use valet_jose::{b64url, b64url_decode, random_bytes, sha256};

/// Authenticator data flags (WebAuthn §6.1).
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;

/// One credential on the authenticator.
pub struct SoftPasskey {
    pub credential_id: Vec<u8>,
    /// The user handle it was created for.
    pub user_handle: Vec<u8>,
    pub rp_id: String,
    key: EcdsaKeyPair,
    pub counter: u32,
    /// Backup eligible and backed up (a synced passkey).
    pub synced: bool,
}

/// How the browser and authenticator answer: what a test may change.
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// The origin the browser puts in the client data.
    pub origin: String,
    /// The RP id whose hash the authenticator data carries.
    pub rp_id: String,
    /// User verification happened (flag UV).
    pub verified: bool,
}

impl SoftPasskey {
    /// Answers creation options (`publicKey`, as the server sent them) for a new
    /// credential; returns it and the `RegisterPublicKeyCredential` JSON.
    pub fn create(options: &Value, ceremony: &Ceremony, synced: bool) -> (Self, String) {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let public = key.public_key().as_ref().to_vec();
        let credential_id = random_bytes::<16>().unwrap().to_vec();
        let key_options = &options["publicKey"];
        let user_handle = b64url_decode(key_options["user"]["id"].as_str().unwrap()).unwrap();
        let client_data = client_data("webauthn.create", key_options, &ceremony.origin);
        let mut auth_data = auth_data_head(&ceremony.rp_id, ceremony.verified, synced, 0);
        auth_data[32] |= AT;
        auth_data.extend_from_slice(&[0; 16]); // AAGUID: none
        auth_data.extend_from_slice(&u16::try_from(credential_id.len()).unwrap().to_be_bytes());
        auth_data.extend_from_slice(&credential_id);
        auth_data.extend_from_slice(&cose_es256(&public));
        // {"fmt": "none", "attStmt": {}, "authData": bytes}
        let mut attestation = vec![0xa3];
        cbor_text(&mut attestation, "fmt");
        cbor_text(&mut attestation, "none");
        cbor_text(&mut attestation, "attStmt");
        attestation.push(0xa0);
        cbor_text(&mut attestation, "authData");
        cbor_bytes(&mut attestation, &auth_data);
        let id = b64url(&credential_id);
        let answer = json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "extensions": {},
            "response": {
                "attestationObject": b64url(&attestation),
                "clientDataJSON": b64url(client_data.as_bytes()),
                "transports": ["internal"],
            },
        });
        let passkey = Self {
            credential_id,
            user_handle,
            rp_id: ceremony.rp_id.clone(),
            key,
            counter: 0,
            synced,
        };
        (passkey, answer.to_string())
    }

    /// Answers request options (`publicKey`) with an assertion: the
    /// `PublicKeyCredential` JSON. The counter goes up by one.
    pub fn assert(&mut self, options: &Value, ceremony: &Ceremony) -> String {
        self.counter += 1;
        let client_data = client_data("webauthn.get", &options["publicKey"], &ceremony.origin);
        let auth_data = auth_data_head(
            &ceremony.rp_id,
            ceremony.verified,
            self.synced,
            self.counter,
        );
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&sha256(client_data.as_bytes()));
        let signature = self.key.sign(&SystemRandom::new(), &signed).unwrap();
        let id = b64url(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "extensions": {},
            "response": {
                "authenticatorData": b64url(&auth_data),
                "clientDataJSON": b64url(client_data.as_bytes()),
                "signature": b64url(signature.as_ref()),
                "userHandle": b64url(&self.user_handle),
            },
        })
        .to_string()
    }
}

/// The client data the browser makes (WebAuthn §5.8.1).
fn client_data(kind: &str, options: &Value, origin: &str) -> String {
    json!({
        "type": kind,
        "challenge": options["challenge"].as_str().unwrap(),
        "origin": origin,
        "crossOrigin": false,
    })
    .to_string()
}

/// rpIdHash, flags and signCount (WebAuthn §6.1).
fn auth_data_head(rp_id: &str, verified: bool, synced: bool, counter: u32) -> Vec<u8> {
    let mut data = sha256(rp_id.as_bytes()).to_vec();
    let mut flags = UP;
    if verified {
        flags |= UV;
    }
    if synced {
        flags |= BE | BS;
    }
    data.push(flags);
    data.extend_from_slice(&counter.to_be_bytes());
    data
}

/// An uncompressed P-256 point as a COSE_Key (RFC 9053 §7.1.1): kty EC2,
/// alg ES256, crv P-256, x, y.
fn cose_es256(point: &[u8]) -> Vec<u8> {
    let mut key = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21];
    cbor_bytes(&mut key, &point[1..33]);
    key.push(0x22);
    cbor_bytes(&mut key, &point[33..65]);
    key
}

fn cbor_text(out: &mut Vec<u8>, text: &str) {
    cbor_head(out, 0x60, text.len());
    out.extend_from_slice(text.as_bytes());
}

fn cbor_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    cbor_head(out, 0x40, bytes.len());
    out.extend_from_slice(bytes);
}

fn cbor_head(out: &mut Vec<u8>, major: u8, len: usize) {
    match len {
        0..=23 => out.push(major | u8::try_from(len).unwrap()),
        24..=255 => out.extend_from_slice(&[major | 24, u8::try_from(len).unwrap()]),
        _ => {
            out.push(major | 25);
            out.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        }
    }
}
