//! The `Cookie` header and the origin checks. Input lines: a `Cookie`
//! header, then `Sec-Fetch-Site`, `Origin` and `Referer` values (an empty
//! line is an absent header).
#![no_main]

// Crate-private modules, compiled here as they are.
#[allow(dead_code, unreachable_pub)]
#[path = "../../oidc/src/origin.rs"]
mod origin;
#[allow(dead_code, unreachable_pub)]
#[path = "../../oidc/src/seal.rs"]
mod seal;

use libfuzzer_sys::fuzz_target;
use url::Url;

const OWN: &str = "https://app.example.com";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let cookie = lines.next();
    if let Some(value) = seal::find_cookie(cookie, "s") {
        assert!(cookie.is_some_and(|c| c.contains(value)));
    }
    let mut headers: Vec<(&str, &str)> = Vec::new();
    for name in ["sec-fetch-site", "origin", "referer"] {
        if let Some(v) = lines.next().filter(|v| !v.is_empty()) {
            headers.push((name, v));
        }
    }
    if origin::comes_from(OWN, &headers[..]) {
        let own = Url::parse(OWN).expect("own").origin();
        let ours = |v: &str| Url::parse(v.trim()).is_ok_and(|u| u.origin() == own);
        let lookup = |n: &str| headers.iter().find(|(h, _)| *h == n).map(|(_, v)| *v);
        match (
            lookup("sec-fetch-site"),
            lookup("origin"),
            lookup("referer"),
        ) {
            (Some(s), _, _) => assert!(s.trim().eq_ignore_ascii_case("same-origin")),
            (None, Some(o), _) => assert!(ours(o)),
            (None, None, Some(r)) => assert!(ours(r)),
            (None, None, None) => panic!("no signal passed"),
        }
    }
});
