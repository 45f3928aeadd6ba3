//! Token verification cost, per algorithm (RS256, ES256, EdDSA, HS256).
//!
//! Each algorithm is a benchmark group with four measurements of the same
//! token:
//!
//! - `floor`: the signature check alone, on a pre-parsed key and a signature
//!   already decoded from base64: what no verifier can go below;
//! - `jsonwebtoken`: `jsonwebtoken::decode` into a `serde_json::Value` with a
//!   prepared `DecodingKey` and `iss`/`aud` validation: the reference point;
//! - `portcullis_cold`: [`TokenVerifier::verify`] with the verified-token cache
//!   disabled: parsing, key lookup, signature and claims, every time;
//! - `portcullis_cached`: the same verifier with the cache enabled, the token
//!   verified once before measuring: what a repeated token costs.
//!
//! After criterion's groups, `ratios` measures the same paths interleaved
//! (a batch of each in turn, many rounds) and prints, per algorithm, the
//! median over the rounds of each path's time divided by the floor's: on a
//! shared, noisy machine these ratios hold where absolute times drift.
//!
//! Run with `cargo bench -p portcullis-core --bench verify`; `cargo test
//! --benches` runs every measurement once as a smoke test.

#![allow(clippy::print_stdout, reason = "the ratios are the bench's output")]

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{DecodingKey, Validation};
use portcullis_core::config::{IssuerConfig, StaticKey, VerifierConfig};
use portcullis_core::keys::VerifyingKey;
use portcullis_core::mint::SigningKey;
use portcullis_core::{Algorithm, TokenVerifier};
use serde_json::{Value, json};

const ISSUER: &str = "https://id.example.com";
const AUDIENCE: &str = "portcullis-bench";
/// 2100-01-01: far enough that the token never expires during a run.
const FAR_FUTURE: u64 = 4_102_444_800;

/// One algorithm's key, token and verifiers, prepared before measuring.
struct Fixture {
    alg: Algorithm,
    token: String,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
    floor_key: VerifyingKey,
    jwt_key: DecodingKey,
    jwt_validation: Validation,
    cold: TokenVerifier,
    cached: TokenVerifier,
}

fn claims() -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "email": "alice@example.com",
        "email_verified": true,
        "exp": FAR_FUTURE,
        "iat": now,
        "scope": "openid profile email orders:read",
    })
}

fn jsonwebtoken_alg(alg: Algorithm) -> jsonwebtoken::Algorithm {
    match alg {
        Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
        other => panic!("{other} is not benchmarked"),
    }
}

fn fixture(alg: Algorithm) -> Fixture {
    let (key, issuer, jwt_key) = if alg == Algorithm::HS256 {
        // A printable secret: the verifier's configuration holds it as a string.
        let mut raw = [0u8; 32];
        aws_lc_rs::rand::fill(&mut raw).expect("random secret");
        let secret: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let key = SigningKey::from_secret(alg, "k1", secret.as_bytes()).expect("HMAC key");
        let issuer = IssuerConfig::new(ISSUER).with_hmac_secret(secret.as_str());
        (key, issuer, DecodingKey::from_secret(secret.as_bytes()))
    } else {
        let key = SigningKey::generate(alg, "k1").expect("key generation");
        let pem = key.public_pem().expect("public key");
        let issuer = IssuerConfig::new(ISSUER).with_key(StaticKey::pem(Some("k1".to_owned()), pem));
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(key.public_jwk().expect("public JWK")).expect("JWK");
        (
            key,
            issuer,
            DecodingKey::from_jwk(&jwk).expect("decoding key"),
        )
    };
    let token = key.sign(&claims(), Some("at+jwt")).expect("sign");
    let issuer = issuer.with_algorithms([alg]).with_audience(AUDIENCE);

    let mut cold_cfg = VerifierConfig::new([("main".to_owned(), issuer.clone())]);
    cold_cfg.cache.enabled = false;
    let cold = TokenVerifier::new(cold_cfg).expect("verifier");
    let cached =
        TokenVerifier::new(VerifierConfig::new([("main".to_owned(), issuer)])).expect("verifier");

    let mut jwt_validation = Validation::new(jsonwebtoken_alg(alg));
    jwt_validation.set_issuer(&[ISSUER]);
    jwt_validation.set_audience(&[AUDIENCE]);

    let (input, sig) = token.rsplit_once('.').expect("three segments");
    let signature = URL_SAFE_NO_PAD.decode(sig).expect("base64url signature");
    Fixture {
        alg,
        signing_input: input.as_bytes().to_vec(),
        signature,
        floor_key: key.verifying_key().expect("verifying key"),
        jwt_key,
        jwt_validation,
        cold,
        cached,
        token,
    }
}

fn bench_verify(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for alg in [
        Algorithm::RS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
        Algorithm::HS256,
    ] {
        let f = fixture(alg);

        // Every path accepts the token before anything is measured.
        assert!(
            f.floor_key.verify(f.alg, &f.signing_input, &f.signature),
            "{alg}: floor"
        );
        jsonwebtoken::decode::<Value>(&f.token, &f.jwt_key, &f.jwt_validation)
            .unwrap_or_else(|e| panic!("{alg}: jsonwebtoken refused the token: {e}"));
        for verifier in [&f.cold, &f.cached] {
            let p = rt
                .block_on(verifier.verify(&f.token))
                .unwrap_or_else(|e| panic!("{alg}: portcullis refused the token: {e}"));
            assert_eq!(p.email(), Some("alice@example.com"));
        }

        let mut group = c.benchmark_group(alg.as_str());
        group.bench_function("floor", |b| {
            b.iter(|| {
                black_box(f.floor_key.verify(
                    f.alg,
                    black_box(&f.signing_input),
                    black_box(&f.signature),
                ))
            });
        });
        group.bench_function("jsonwebtoken", |b| {
            b.iter(|| {
                black_box(jsonwebtoken::decode::<Value>(
                    black_box(&f.token),
                    &f.jwt_key,
                    &f.jwt_validation,
                ))
                .expect("valid")
            });
        });
        group.bench_function("portcullis_cold", |b| {
            b.iter(|| {
                rt.block_on(f.cold.verify(black_box(&f.token)))
                    .expect("valid")
            });
        });
        group.bench_function("portcullis_cached", |b| {
            b.iter(|| {
                rt.block_on(f.cached.verify(black_box(&f.token)))
                    .expect("valid")
            });
        });
        group.finish();
    }
}

/// The median of `values`.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Per algorithm, the median over interleaved rounds of jsonwebtoken, cold
/// and cached portcullis, each divided by the floor of the same round.
fn ratios(_c: &mut Criterion) {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, batch) = if full { (41, 40) } else { (1, 1) };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let f = fixture(alg);
        rt.block_on(f.cached.verify(&f.token)).expect("valid");
        let time = |run: &dyn Fn()| {
            let started = std::time::Instant::now();
            for _ in 0..batch {
                run();
            }
            started.elapsed().as_secs_f64() / f64::from(batch)
        };
        let floor = || {
            black_box(f.floor_key.verify(
                f.alg,
                black_box(&f.signing_input),
                black_box(&f.signature),
            ));
        };
        let jwt = || {
            black_box(jsonwebtoken::decode::<Value>(
                black_box(&f.token),
                &f.jwt_key,
                &f.jwt_validation,
            ))
            .expect("valid");
        };
        let cold = || {
            rt.block_on(f.cold.verify(black_box(&f.token)))
                .expect("valid");
        };
        let cached = || {
            rt.block_on(f.cached.verify(black_box(&f.token)))
                .expect("valid");
        };
        let (mut j, mut c, mut h, mut fl) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let base = time(&floor);
            fl.push(base);
            j.push(time(&jwt) / base);
            c.push(time(&cold) / base);
            h.push(time(&cached));
        }
        println!(
            "{alg}: floor {:.1} µs; jsonwebtoken/floor {:.3}, portcullis_cold/floor {:.3}, portcullis_cached {:.0} ns (medians of {rounds} interleaved rounds)",
            median(&mut fl) * 1e6,
            median(&mut j),
            median(&mut c),
            median(&mut h) * 1e9,
        );
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_verify, ratios
}
criterion_main!(benches);
