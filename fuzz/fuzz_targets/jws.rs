//! Compact JWS parsing and verification: any input is refused or verified,
//! and a second verification (from the cache) gives the same answer.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::{Algorithm, TokenVerifier};

const ISSUER: &str = "https://issuer.example";

fn verifier() -> &'static (TokenVerifier, tokio::runtime::Runtime) {
    static V: OnceLock<(TokenVerifier, tokio::runtime::Runtime)> = OnceLock::new();
    V.get_or_init(|| {
        let issuer = IssuerConfig::new(ISSUER)
            .with_hmac_secret("a fuzzing secret of at least thirty-two bytes")
            .with_algorithms([Algorithm::HS256])
            .with_audience("api");
        let verifier = TokenVerifier::new(VerifierConfig::new([(ISSUER.to_owned(), issuer)]))
            .expect("verifier");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        (verifier, rt)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let (verifier, rt) = verifier();
    let first = rt.block_on(verifier.verify(token));
    let second = rt.block_on(verifier.verify(token));
    match (first, second) {
        (Ok(a), Ok(b)) => assert_eq!(a.claims(), b.claims()),
        (Err(a), Err(b)) => assert_eq!(a.rejection(), b.rejection()),
        _ => panic!("the cache answered differently"),
    }
});
