//! Strict parsing of compact JWS tokens.
//!
//! Everything here runs before any key is looked at, on untrusted input, so it
//! is deliberately narrow: three segments of canonical unpadded base64url, a
//! header and a payload that are JSON objects without repeated member names.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::error::{Error, TokenRejection};

/// Header parameters that make a verifier fetch or trust key material named by
/// the token itself, or that ask for processing portcullis does not do.
const REFUSED_HEADER_PARAMS: [&str; 7] = ["jku", "x5u", "x5c", "jwk", "crit", "enc", "zip"];

/// A compact JWS split into its parts, header and payload decoded.
///
/// Its `Debug` shows the algorithm and sizes only: the claims, the signed
/// bytes and the signature are token content.
pub(crate) struct Parsed<'a> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    pub(crate) typ: Option<String>,
    pub(crate) claims: Map<String, Value>,
    /// `header.payload`, the bytes the signature covers.
    pub(crate) signing_input: &'a [u8],
    pub(crate) signature: Vec<u8>,
}

impl fmt::Debug for Parsed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parsed")
            .field("alg", &self.alg)
            .field("has_kid", &self.kid.is_some())
            .field("has_typ", &self.typ.is_some())
            .field("claims", &format_args!("[{} redacted]", self.claims.len()))
            .field(
                "signing_input",
                &format_args!("[{} bytes redacted]", self.signing_input.len()),
            )
            .field(
                "signature",
                &format_args!("[{} bytes redacted]", self.signature.len()),
            )
            .finish()
    }
}

/// Decodes one segment; refuses padding, `+`, `/`, whitespace and non-zero trailing bits.
pub(crate) fn b64_decode(segment: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Error::invalid_token(TokenRejection::Malformed))
}

/// Encodes bytes as unpadded base64url.
pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Parses `token` (already size-checked by the caller).
pub(crate) fn parse(token: &str) -> Result<Parsed<'_>, Error> {
    let malformed = || Error::invalid_token(TokenRejection::Malformed);
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    if h.is_empty() || p.is_empty() {
        return Err(malformed());
    }
    let header = parse_object(&b64_decode(h)?)?;
    for name in REFUSED_HEADER_PARAMS {
        if header.contains_key(name) {
            tracing::debug!(param = name, "token header parameter refused");
            return Err(Error::invalid_token(TokenRejection::ForbiddenHeader));
        }
    }
    if header.get("b64").is_some() {
        // RFC 7797 unencoded payloads change what is signed; refuse them.
        return Err(Error::invalid_token(TokenRejection::ForbiddenHeader));
    }
    let alg = match header.get("alg") {
        Some(Value::String(name)) => name
            .parse::<Algorithm>()
            .map_err(|_| Error::invalid_token(TokenRejection::UnsupportedAlgorithm))?,
        _ => return Err(Error::invalid_token(TokenRejection::UnsupportedAlgorithm)),
    };
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(malformed()),
    };
    let typ = match header.get("typ") {
        None => None,
        Some(Value::String(t)) => Some(t.clone()),
        Some(_) => return Err(malformed()),
    };
    if s.is_empty() {
        return Err(Error::invalid_token(TokenRejection::BadSignature));
    }
    let signature = b64_decode(s)?;
    let claims = parse_object(&b64_decode(p)?)?;
    Ok(Parsed {
        alg,
        kid,
        typ,
        claims,
        signing_input: &token.as_bytes()[..h.len() + 1 + p.len()],
        signature,
    })
}

/// Parses a JSON object, refusing repeated member names at the top level.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let obj = match de.deserialize_map(StrictObject) {
        Ok(obj) => obj,
        Err(e) if e.to_string().starts_with(DUPLICATE) => {
            return Err(Error::invalid_token(TokenRejection::DuplicateMember));
        }
        Err(_) => return Err(Error::invalid_token(TokenRejection::Malformed)),
    };
    de.end()
        .map_err(|_| Error::invalid_token(TokenRejection::Malformed))?;
    Ok(obj)
}

const DUPLICATE: &str = "duplicate member";

struct StrictObject;

impl<'de> Visitor<'de> for StrictObject {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(DUPLICATE));
            }
            let value: Value = access.next_value()?;
            map.insert(key, value);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(json: &str) -> String {
        b64_encode(json.as_bytes())
    }

    fn rejection(token: &str) -> TokenRejection {
        parse(token).unwrap_err().rejection().unwrap()
    }

    #[test]
    fn parses_a_plain_token() {
        let t = format!(
            "{}.{}.{}",
            seg(r#"{"alg":"RS256","kid":"k"}"#),
            seg(r#"{"a":1}"#),
            "AAAA"
        );
        let p = parse(&t).unwrap();
        assert_eq!(p.alg, Algorithm::RS256);
        assert_eq!(p.kid.as_deref(), Some("k"));
        assert_eq!(p.claims["a"], 1);
        assert_eq!(p.signature, vec![0, 0, 0]);
    }

    #[test]
    fn debug_shows_no_token_content() {
        let t = format!(
            "{}.{}.{}",
            seg(r#"{"alg":"RS256","kid":"key-7f3a","typ":"at+jwt"}"#),
            seg(r#"{"sub":"alice-secret-subject","email":"alice@example.com"}"#),
            b64_encode(b"signature-bytes-here")
        );
        let shown = format!("{:?}", parse(&t).unwrap());
        for content in [
            "key-7f3a",
            "at+jwt",
            "alice",
            "example.com",
            "eyJ",
            &t[t.len() - 10..],
            "115, 105, 103",
        ] {
            assert!(!shown.contains(content), "{content} in {shown}");
        }
        assert!(shown.contains("RS256"), "{shown}");
    }

    #[test]
    fn refuses_structure_errors() {
        let h = seg(r#"{"alg":"RS256"}"#);
        let p = seg(r#"{"a":1}"#);
        assert_eq!(rejection(&format!("{h}.{p}")), TokenRejection::Malformed);
        assert_eq!(
            rejection(&format!("{h}.{p}.AA.AA")),
            TokenRejection::Malformed
        );
        assert_eq!(
            rejection(&format!("{h}.{p}.")),
            TokenRejection::BadSignature
        );
        assert_eq!(
            rejection(&format!("{h}=.{p}.AAAA")),
            TokenRejection::Malformed
        );
        assert_eq!(
            rejection(&format!("{h}.{p}.AA+A")),
            TokenRejection::Malformed
        );
        assert_eq!(
            rejection(&format!("{h}.{p}.AA/A")),
            TokenRejection::Malformed
        );
        assert_eq!(
            rejection(&format!("{h}.{p} .AAAA")),
            TokenRejection::Malformed
        );
        // "AB" decodes to one byte with non-zero trailing bits: not canonical.
        assert_eq!(rejection(&format!("{h}.{p}.AB")), TokenRejection::Malformed);
        assert_eq!(
            rejection(&format!("{}.{p}.AAAA", seg("[1]"))),
            TokenRejection::Malformed
        );
        assert_eq!(
            rejection(&format!("{h}.{}.AAAA", seg("\"x\""))),
            TokenRejection::Malformed
        );
        assert_eq!(
            rejection(&format!("{h}.{}.AAAA", seg("{} {}"))),
            TokenRejection::Malformed
        );
    }

    #[test]
    fn refuses_duplicates_and_header_params() {
        let p = seg(r#"{"a":1}"#);
        let dup = seg(r#"{"alg":"RS256","alg":"HS256"}"#);
        assert_eq!(
            rejection(&format!("{dup}.{p}.AAAA")),
            TokenRejection::DuplicateMember
        );
        let h = seg(r#"{"alg":"RS256"}"#);
        let dup_claims = seg(r#"{"sub":"a","sub":"b"}"#);
        assert_eq!(
            rejection(&format!("{h}.{dup_claims}.AAAA")),
            TokenRejection::DuplicateMember
        );
        for param in ["jku", "x5u", "x5c", "jwk", "crit"] {
            let h = seg(&format!(r#"{{"alg":"RS256","{param}":"x"}}"#));
            assert_eq!(
                rejection(&format!("{h}.{p}.AAAA")),
                TokenRejection::ForbiddenHeader
            );
        }
        for alg in ["none", "None", "nOnE", ""] {
            let h = seg(&format!(r#"{{"alg":"{alg}"}}"#));
            assert_eq!(
                rejection(&format!("{h}.{p}.")),
                TokenRejection::UnsupportedAlgorithm
            );
        }
    }
}
