//! Discovery documents: one accepted names the expected issuer, and every
//! endpoint it names is HTTPS (plain HTTP on loopback only).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::config::check_provider_url;
use portcullis_core::discovery::Discovery;
use serde_json::Value;

const ISSUER: &str = "https://id.example.com";

fuzz_target!(|data: &[u8]| {
    let at = format!("{ISSUER}/.well-known/openid-configuration");
    let Ok(found) = Discovery::new(&at).parse(data) else {
        return;
    };
    assert_eq!(found.issuer(), ISSUER);
    let doc: Value = serde_json::from_slice(data).expect("an accepted document is JSON");
    let endpoints = [
        ("jwks_uri", found.jwks_uri()),
        ("authorization_endpoint", found.authorization_endpoint()),
        ("token_endpoint", found.token_endpoint()),
        ("userinfo_endpoint", found.userinfo_endpoint()),
        ("end_session_endpoint", found.end_session_endpoint()),
        ("revocation_endpoint", found.revocation_endpoint()),
        ("device_authorization_endpoint", found.device_authorization_endpoint()),
    ];
    for (name, url) in endpoints {
        let raw = doc.get(name).and_then(Value::as_str);
        assert_eq!(url.is_some(), raw.is_some(), "{name}");
        if let Some(raw) = raw {
            assert!(check_provider_url(name, raw, false).is_ok(), "{name}");
        }
    }
});
