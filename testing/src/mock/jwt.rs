//! Reading back tokens the provider signed: for userinfo's bearer tokens and
//! logout's `id_token_hint`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::Algorithm;
use serde_json::{Map, Value};

use super::state::State;

/// A token whose signature one of the provider's keys verified.
#[derive(Debug)]
pub(crate) struct OwnToken {
    pub(crate) header: Map<String, Value>,
    pub(crate) claims: Map<String, Value>,
}

impl OwnToken {
    pub(crate) fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    pub(crate) fn claim_u64(&self, name: &str) -> Option<u64> {
        self.claims.get(name).and_then(Value::as_u64)
    }

    /// The `typ` header, lowercased, without an `application/` prefix.
    pub(crate) fn typ(&self) -> Option<String> {
        let typ = self.header.get("typ")?.as_str()?.to_ascii_lowercase();
        Some(typ.strip_prefix("application/").unwrap_or(&typ).to_owned())
    }

    /// Whether `aud` is `audience` or an array holding it.
    pub(crate) fn has_audience(&self, audience: &str) -> bool {
        match self.claims.get("aud") {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        }
    }
}

fn decode_object(segment: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The header and claims of `token` when its `kid` names one of the keys the
/// provider's JWKS lists (current, or retired but kept on rotation),
/// its `alg` is that key's and the signature verifies, and its `iss` is the
/// provider's issuer. Times are not checked.
pub(crate) fn verify_own(state: &State, token: &str) -> Option<OwnToken> {
    let mut segments = token.split('.');
    let (header_b64, claims_b64, signature_b64) =
        (segments.next()?, segments.next()?, segments.next()?);
    if segments.next().is_some() {
        return None;
    }
    let header = decode_object(header_b64)?;
    let alg: Algorithm = header.get("alg")?.as_str()?.parse().ok()?;
    let key = state.find_key(header.get("kid")?.as_str()?)?;
    if key.algorithm() != alg {
        return None;
    }
    let signature = URL_SAFE_NO_PAD.decode(signature_b64).ok()?;
    let input = &token[..header_b64.len() + 1 + claims_b64.len()];
    if !key
        .verifying_key()
        .ok()?
        .verify(alg, input.as_bytes(), &signature)
    {
        return None;
    }
    let claims = decode_object(claims_b64)?;
    if claims.get("iss").and_then(Value::as_str) != Some(state.issuer.as_str()) {
        return None;
    }
    Some(OwnToken { header, claims })
}
