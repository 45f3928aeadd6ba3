//! OpenID Connect token hashes (`at_hash`): the left half of the hash of the
//! token, with the hash function of the ID token's algorithm.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The `at_hash` that `access_token` must have for `id_token`; `None` when
/// the ID token's header cannot be read.
pub(crate) fn token_hash(id_token: &str, access_token: &str) -> Option<String> {
    let header = id_token.split('.').next()?;
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    let alg = header.get("alg")?.as_str()?;
    let hash = match alg {
        "RS384" | "PS384" | "ES384" | "HS384" => &digest::SHA384,
        // EdDSA with Ed25519 uses SHA-512 (OpenID Connect Core errata).
        "RS512" | "PS512" | "ES512" | "HS512" | "EdDSA" => &digest::SHA512,
        _ => &digest::SHA256,
    };
    let d = digest::digest(hash, access_token.as_bytes());
    let bytes = d.as_ref();
    Some(URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // OpenID Connect Core, appendix A.3: an RS256 ID token's at_hash.
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        let id_token = format!("{header}.e30.sig");
        assert_eq!(
            token_hash(&id_token, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y").as_deref(),
            Some("77QmUPtjPfzWtF2AnpK9RQ")
        );
        assert_eq!(token_hash("not a token", "x"), None);
    }
}
