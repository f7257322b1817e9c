//! Verifications per second per core through `Guard::verify` (signature, claims and a
//! cached status list lookup) against the raw ES256 signature verification of the same
//! crypto crate on the same message and signature: what the guard adds (issue 4 target:
//! at most 15 %).
//!
//! `cargo bench -p valet-guard --bench verify` prints `name value` lines: medians of 15
//! rounds, each timing a batch of all three in turn.

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

const ROUNDS: usize = 15;
const PER_BATCH: u32 = 1_500;

/// Microseconds per operation of each of `ops`, timed in rounds that run one batch of
/// every op in turn; the median round per op. Interleaving puts every op through the
/// same moments of a shared machine, so a neighbour's burst cannot land on one of
/// them alone and skew the ratio between them.
fn interleaved_us<const N: usize>(ops: &mut [&mut dyn FnMut(); N]) -> [f64; N] {
    for op in ops.iter_mut() {
        for _ in 0..500 {
            op();
        }
    }
    let mut rounds = [[0.0_f64; ROUNDS]; N];
    for round in 0..ROUNDS {
        for (op, times) in ops.iter_mut().zip(rounds.iter_mut()) {
            let started = Instant::now();
            for _ in 0..PER_BATCH {
                op();
            }
            times[round] = started.elapsed().as_secs_f64() * 1e6 / f64::from(PER_BATCH);
        }
    }
    rounds.map(|mut times| {
        times.sort_by(f64::total_cmp);
        times[ROUNDS / 2]
    })
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

    let parsed = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point).unwrap();
    let mut raw = || {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, black_box(&point))
            .verify(black_box(message.as_bytes()), black_box(&signature))
            .unwrap();
    };
    let mut prepared = || {
        parsed
            .verify_sig(black_box(message.as_bytes()), black_box(&signature))
            .unwrap();
    };
    let mut guarded = || {
        black_box(runtime.block_on(guard.verify(black_box(&token))).unwrap());
    };
    let [raw_us, prepared_us, guard_us] =
        interleaved_us(&mut [&mut raw, &mut prepared, &mut guarded]);

    println!("token_bytes {}", token.len());
    println!("raw_verify_us {raw_us:.2}");
    println!("raw_prepared_verify_us {prepared_us:.2}");
    println!("guard_verify_us {guard_us:.2}");
    println!("guard_verifications_per_s {:.0}", 1e6 / guard_us);
    println!("guard_overhead_ratio {:.3}", guard_us / raw_us);
}
