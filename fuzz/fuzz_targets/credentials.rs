//! The `Authorization` header and proxy token headers: a token found is
//! non-empty, trimmed, taken from the header, without whitespace for Bearer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::CredentialsConfig;
use portcullis_core::credentials::extract;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let bearer = CredentialsConfig::default();
    let headers = [("authorization", value)];
    if let Ok(Some(found)) = extract(&bearer, &headers[..]) {
        let token = found.access_token.expose();
        assert!(!token.is_empty() && value.contains(token));
        assert!(!token.contains(char::is_whitespace));
    }
    let proxy = CredentialsConfig::default().with_token_header("x-forwarded-access-token");
    let headers = [("x-forwarded-access-token", value)];
    if let Ok(Some(found)) = extract(&proxy, &headers[..]) {
        let token = found.access_token.expose();
        assert!(!token.is_empty() && token == token.trim());
    }
});
