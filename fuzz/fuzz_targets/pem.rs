//! PEM public keys: parsed or refused, for each key type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::Algorithm;
use portcullis_core::keys::VerifyingKey;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for algs in [
        &[Algorithm::RS256][..],
        &[Algorithm::ES256],
        &[Algorithm::EdDSA],
    ] {
        if let Ok(key) = VerifyingKey::from_pem(None, &text, algs) {
            assert_eq!(key.algorithms(), algs);
        }
    }
});
