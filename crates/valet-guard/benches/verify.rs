//! Verifications per second per core through `Guard::verify` (signature, claims and a
//! cached status list lookup) against the raw ES256 signature verification of the same
//! crypto crate on the same message and signature: what the guard adds (issue 4 target:
//! at most 15 %).
//!
//! `cargo bench -p valet-guard --bench verify` prints `name value` lines.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(dead_code)]
#[path = "../tests/guard/support.rs"]
mod support;

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ParsedPublicKey, UnparsedPublicKey};
use valet_jose::b64url_decode;

const ITERATIONS: u32 = 20_000;

fn per_op_us(mut op: impl FnMut()) -> f64 {
    for _ in 0..1_000 {
        op();
    }
    let started = Instant::now();
    for _ in 0..ITERATIONS {
        op();
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(ITERATIONS)
}

fn main() {
    // One thread: the fake issuer only answers during start-up; the measured loop is the
    // guard alone, on one core.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (issuer, guard) = runtime.block_on(async {
        let issuer = support::FakeIssuer::start().await;
        let guard = issuer.guard().await;
        (issuer, guard)
    });
    let token = issuer.token();
    // The first verification fetches the status list; later ones read the cache.
    runtime.block_on(guard.verify(&token)).unwrap();

    let (message, signature) = token.rsplit_once('.').unwrap();
    let signature = b64url_decode(signature).unwrap();
    let jwk = issuer.state.signer.signing.public_jwk();
    let mut point = vec![4u8];
    point.extend(b64url_decode(jwk["x"].as_str().unwrap()).unwrap());
    point.extend(b64url_decode(jwk["y"].as_str().unwrap()).unwrap());

    let raw_us = per_op_us(|| {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, black_box(&point))
            .verify(black_box(message.as_bytes()), black_box(&signature))
            .unwrap();
    });
    let parsed = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point).unwrap();
    let prepared_us = per_op_us(|| {
        parsed
            .verify_sig(black_box(message.as_bytes()), black_box(&signature))
            .unwrap();
    });
    let guard_us = per_op_us(|| {
        black_box(runtime.block_on(guard.verify(black_box(&token))).unwrap());
    });

    println!("token_bytes {}", token.len());
    println!("raw_verify_us {raw_us:.2}");
    println!("raw_prepared_verify_us {prepared_us:.2}");
    println!("guard_verify_us {guard_us:.2}");
    println!("guard_verifications_per_s {:.0}", 1e6 / guard_us);
    println!("guard_overhead_ratio {:.3}", guard_us / raw_us);
}
