//! JWK and JWKS documents: keys load only for the allowed algorithms, and
//! every entry is either a key or a reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::Algorithm;
use portcullis_core::keys::KeySet;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let allowed = [
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ];
    let entries = doc.get("keys").and_then(Value::as_array).map(Vec::len);
    if let Ok((set, skipped)) = KeySet::from_jwks(&doc, &allowed) {
        assert_eq!(Some(set.len() + skipped.len()), entries);
        for key in set.keys() {
            assert!(key.algorithms().iter().all(|a| allowed.contains(a)));
        }
    }
});
