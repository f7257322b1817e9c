//! Raw cost of one ES256 signature with the prepared aws-lc-rs key, and of a whole
//! access-token-shaped JWT through `SigningKey::sign_jwt`: the floor the token
//! endpoint is measured against (`bench/client_credentials.sh`). The same two figures
//! for EdDSA (Ed25519, `access_token_alg = "EdDSA"`), measured in the same run.
//!
//! `cargo bench -p valet-jose --bench sign` prints `name value` lines: the median of
//! 15 timed batches, and for the signature also the fastest and slowest batch.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use valet_jose::{Algorithm, SigningKey};

/// Timed in batches, and the median batch reported: on a shared 2-core machine a
/// neighbour's burst can slow one batch, and a single long run would carry it.
const BATCHES: usize = 15;
const PER_BATCH: u32 = 2_000;

/// Microseconds per operation: (median, fastest, slowest) batch.
fn per_op_us(mut op: impl FnMut()) -> (f64, f64, f64) {
    for _ in 0..1_000 {
        op();
    }
    let mut batches = [0.0_f64; BATCHES];
    for batch in &mut batches {
        let started = Instant::now();
        for _ in 0..PER_BATCH {
            op();
        }
        *batch = started.elapsed().as_secs_f64() * 1e6 / f64::from(PER_BATCH);
    }
    batches.sort_by(f64::total_cmp);
    (batches[BATCHES / 2], batches[0], batches[BATCHES - 1])
}

fn main() {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let raw = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let message = [0x5a_u8; 300];
    let (raw_us, fastest, slowest) = per_op_us(|| {
        black_box(raw.sign(&rng, black_box(&message)).unwrap());
    });
    println!("es256_sign_us {raw_us:.2}");
    println!("es256_sign_fastest_us {fastest:.2}");
    println!("es256_sign_slowest_us {slowest:.2}");

    let (key, _) = SigningKey::generate(Algorithm::Es256).unwrap();
    let claims = serde_json::json!({
        "iss": "http://127.0.0.1:8080", "sub": "Qm3vYk2fX1nq0aZ8", "aud": "https://api.example.test",
        "exp": 1_800_000_600, "iat": 1_800_000_000, "jti": "b2c1e0c6a7f54f4e8d1c0f3a",
        "client_id": "Qm3vYk2fX1nq0aZ8", "scope": "read",
    });
    let (jwt_us, _, _) = per_op_us(|| {
        black_box(key.sign_jwt("at+jwt", black_box(&claims)).unwrap());
    });
    println!("es256_jwt_us {jwt_us:.2}");
    println!("jwt_overhead_ratio {:.2}", jwt_us / raw_us);

    let ed = Ed25519KeyPair::generate().unwrap();
    let (ed_raw_us, ed_fastest, ed_slowest) = per_op_us(|| {
        black_box(ed.sign(black_box(&message)));
    });
    println!("eddsa_sign_us {ed_raw_us:.2}");
    println!("eddsa_sign_fastest_us {ed_fastest:.2}");
    println!("eddsa_sign_slowest_us {ed_slowest:.2}");
    let (ed_key, _) = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let (ed_jwt_us, _, _) = per_op_us(|| {
        black_box(ed_key.sign_jwt("at+jwt", black_box(&claims)).unwrap());
    });
    println!("eddsa_jwt_us {ed_jwt_us:.2}");
    println!("es256_per_s {:.0}", 1e6 / raw_us);
    println!("eddsa_per_s {:.0}", 1e6 / ed_raw_us);
    println!("eddsa_over_es256_signatures {:.2}", raw_us / ed_raw_us);
    println!("eddsa_over_es256_jwts {:.2}", jwt_us / ed_jwt_us);
}
