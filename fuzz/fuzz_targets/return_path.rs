//! `safe_return_path`: the target kept is the input or `/`, and never
//! resolves off-origin for a WHATWG URL parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_oidc::safe_return_path;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let base = Url::parse("https://app.example").expect("base");
    let safe = safe_return_path(target);
    assert!(safe == target || safe == "/");
    if let Ok(resolved) = base.join(safe) {
        assert_eq!(resolved.origin(), base.origin(), "{safe:?}");
    }
});
