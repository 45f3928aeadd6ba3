//! Verification keys: parsed once, from JWKs, PEM or shared secrets.
//!
//! Keys are parsed into aws-lc-rs `ParsedPublicKey`s when they are loaded, one
//! per algorithm the key may be used with, so verifying a signature never
//! re-parses key material.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::alg::{Algorithm, KeyFamily};
use crate::error::Error;
use crate::jws::b64_decode;

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// A public key (or shared secret) ready to verify signatures.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Option<String>,
    family: KeyFamily,
    material: Material,
}

#[derive(Clone)]
enum Material {
    Public(Arc<Vec<(Algorithm, ParsedPublicKey)>>),
    Hmac(Arc<Vec<(Algorithm, hmac::Key)>>),
}

fn verification_alg(alg: Algorithm) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &signature::ED25519,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => return None,
    })
}

fn hmac_alg(alg: Algorithm) -> Option<hmac::Algorithm> {
    match alg {
        Algorithm::HS256 => Some(hmac::HMAC_SHA256),
        Algorithm::HS384 => Some(hmac::HMAC_SHA384),
        Algorithm::HS512 => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

impl VerifyingKey {
    /// The key id, if the key has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key family.
    pub fn family(&self) -> KeyFamily {
        self.family
    }

    /// The algorithms this key verifies.
    pub fn algorithms(&self) -> Vec<Algorithm> {
        match &self.material {
            Material::Public(v) => v.iter().map(|(a, _)| *a).collect(),
            Material::Hmac(v) => v.iter().map(|(a, _)| *a).collect(),
        }
    }

    /// Whether this key may verify `alg`.
    pub fn supports(&self, alg: Algorithm) -> bool {
        match &self.material {
            Material::Public(v) => v.iter().any(|(a, _)| *a == alg),
            Material::Hmac(v) => v.iter().any(|(a, _)| *a == alg),
        }
    }

    /// Verifies `signature` over `message` with `alg`. False when the key does not support `alg`.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            Material::Public(v) => v
                .iter()
                .find(|(a, _)| *a == alg)
                .is_some_and(|(_, k)| k.verify_sig(message, signature).is_ok()),
            Material::Hmac(v) => v
                .iter()
                .find(|(a, _)| *a == alg)
                .is_some_and(|(_, k)| hmac::verify(k, message, signature).is_ok()),
        }
    }

    /// A key for public-key algorithms from DER bytes in the form aws-lc-rs
    /// takes for `alg` (SubjectPublicKeyInfo, PKCS#1 `RSAPublicKey`, an
    /// uncompressed EC point or a raw Ed25519 key), for each of `algs`.
    pub fn from_public_der(
        kid: Option<String>,
        der: &[u8],
        algs: &[Algorithm],
    ) -> Result<Self, Error> {
        let family = single_family(algs)?;
        if family == KeyFamily::Hmac {
            return Err(Error::config("a public key cannot verify HMAC algorithms"));
        }
        let mut parsed = Vec::with_capacity(algs.len());
        for &alg in algs {
            let v = verification_alg(alg).expect("public-key algorithm");
            let key = ParsedPublicKey::new(v, der)
                .map_err(|e| Error::config(format!("the public key does not fit {alg}: {e}")))?;
            parsed.push((alg, key));
        }
        Ok(Self {
            kid,
            family,
            material: Material::Public(Arc::new(parsed)),
        })
    }

    /// A key from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) or `RSA PUBLIC KEY` block.
    pub fn from_pem(kid: Option<String>, pem: &str, algs: &[Algorithm]) -> Result<Self, Error> {
        let der = pem_to_der(pem)?;
        let key = Self::from_public_der(kid, &der, algs)?;
        if key.family == KeyFamily::Rsa {
            let bits = rsa_bits_from_spki(&der).unwrap_or(0);
            if bits != 0 && bits < MIN_RSA_BITS {
                return Err(Error::config(format!(
                    "the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"
                )));
            }
        }
        Ok(key)
    }

    /// A shared-secret key for each of `algs` (all HMAC); the secret must be at
    /// least as long as the hash output of every algorithm.
    pub fn from_hmac_secret(
        kid: Option<String>,
        secret: &[u8],
        algs: &[Algorithm],
    ) -> Result<Self, Error> {
        if single_family(algs)? != KeyFamily::Hmac {
            return Err(Error::config(
                "a shared secret can only verify HS256, HS384 or HS512",
            ));
        }
        let mut keys = Vec::with_capacity(algs.len());
        for &alg in algs {
            if secret.len() < alg.min_secret_len() {
                return Err(Error::config(format!(
                    "the {alg} secret has {} bytes; at least {} are required",
                    secret.len(),
                    alg.min_secret_len()
                )));
            }
            keys.push((alg, hmac::Key::new(hmac_alg(alg).expect("hmac"), secret)));
        }
        Ok(Self {
            kid,
            family: KeyFamily::Hmac,
            material: Material::Hmac(Arc::new(keys)),
        })
    }

    /// A key from one JWK (a JSON object), usable with those of `allowed` that
    /// fit it. Refuses `oct` keys (shared secrets are never published), keys
    /// whose `use` is not `sig` or whose `key_ops` lack `verify`, RSA keys
    /// under 2048 bits, and unknown key types or curves.
    pub fn from_jwk(jwk: &Value, allowed: &[Algorithm]) -> Result<Self, JwkSkip> {
        let obj = jwk.as_object().ok_or(JwkSkip::NotAnObject)?;
        let str_field = |name: &str| obj.get(name).and_then(Value::as_str);
        if obj.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
            return Err(JwkSkip::NotForSignatures);
        }
        if let Some(ops) = obj.get("key_ops") {
            let ok = ops
                .as_array()
                .is_some_and(|a| a.iter().any(|o| o.as_str() == Some("verify")));
            if !ok {
                return Err(JwkSkip::NotForSignatures);
            }
        }
        let kid = match obj.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => return Err(JwkSkip::Invalid("kid is not a string")),
        };
        let declared: Option<Algorithm> = match obj.get("alg") {
            None => None,
            Some(Value::String(a)) => Some(a.parse().map_err(|_| JwkSkip::UnsupportedAlgorithm)?),
            Some(_) => return Err(JwkSkip::Invalid("alg is not a string")),
        };
        let fits = |family: KeyFamily| -> Vec<Algorithm> {
            allowed
                .iter()
                .copied()
                .filter(|a| a.family() == family)
                .filter(|a| declared.is_none_or(|d| d == *a))
                .collect()
        };
        let b64 = |name: &'static str| -> Result<Vec<u8>, JwkSkip> {
            let v = str_field(name).ok_or(JwkSkip::Invalid(name))?;
            b64_decode(v).map_err(|_| JwkSkip::Invalid(name))
        };
        let (family, der) = match str_field("kty") {
            Some("RSA") => {
                let n = b64("n")?;
                let e = b64("e")?;
                let bits = significant_bits(&n);
                if bits < MIN_RSA_BITS {
                    return Err(JwkSkip::WeakKey(bits));
                }
                (KeyFamily::Rsa, rsa_public_key_der(&n, &e))
            }
            Some("EC") => {
                let (crv_alg, len) = match str_field("crv") {
                    Some("P-256") => (Algorithm::ES256, 32),
                    Some("P-384") => (Algorithm::ES384, 48),
                    _ => return Err(JwkSkip::UnsupportedCurve),
                };
                let x = b64("x")?;
                let y = b64("y")?;
                if x.len() != len || y.len() != len {
                    return Err(JwkSkip::Invalid("x or y has the wrong length"));
                }
                let algs: Vec<_> = fits(KeyFamily::Ec)
                    .into_iter()
                    .filter(|a| *a == crv_alg)
                    .collect();
                if algs.is_empty() {
                    return Err(JwkSkip::NotAllowed);
                }
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                return Self::from_public_der(kid, &point, &algs)
                    .map_err(|_| JwkSkip::Invalid("not a point on the curve"));
            }
            Some("OKP") => {
                if str_field("crv") != Some("Ed25519") {
                    return Err(JwkSkip::UnsupportedCurve);
                }
                let x = b64("x")?;
                if x.len() != 32 {
                    return Err(JwkSkip::Invalid("x has the wrong length"));
                }
                (KeyFamily::Okp, x)
            }
            Some("oct") => return Err(JwkSkip::SharedSecret),
            _ => return Err(JwkSkip::UnsupportedKeyType),
        };
        let algs = fits(family);
        if algs.is_empty() {
            return Err(JwkSkip::NotAllowed);
        }
        Self::from_public_der(kid, &der, &algs).map_err(|_| JwkSkip::Invalid("key rejected"))
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .field("algorithms", &self.algorithms())
            .finish()
    }
}

/// Why a JWK was left out of a key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkSkip {
    /// The entry is not a JSON object.
    #[error("not a JSON object")]
    NotAnObject,
    /// `use` is not `sig`, or `key_ops` lacks `verify`.
    #[error("not a signature verification key")]
    NotForSignatures,
    /// `kty: oct`: shared secrets are never taken from a key set.
    #[error("a shared secret (kty oct)")]
    SharedSecret,
    /// An RSA key below the minimum size.
    #[error("an RSA key of {0} bits")]
    WeakKey(usize),
    /// A `kty` portcullis does not verify with.
    #[error("an unsupported key type")]
    UnsupportedKeyType,
    /// A curve portcullis does not verify with.
    #[error("an unsupported curve")]
    UnsupportedCurve,
    /// An `alg` portcullis does not know.
    #[error("an unsupported algorithm")]
    UnsupportedAlgorithm,
    /// The key fits none of the configured algorithms.
    #[error("fits none of the allowed algorithms")]
    NotAllowed,
    /// A field is missing or invalid.
    #[error("invalid field: {0}")]
    Invalid(&'static str),
}

fn single_family(algs: &[Algorithm]) -> Result<KeyFamily, Error> {
    let Some(first) = algs.first() else {
        return Err(Error::config("no algorithm given for the key"));
    };
    if algs.iter().any(|a| a.family() != first.family()) {
        return Err(Error::config(
            "one key cannot serve algorithms of different key types",
        ));
    }
    Ok(first.family())
}

/// A set of keys, indexed by `kid`.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
    by_kid: HashMap<String, usize>,
}

impl KeySet {
    /// A set of `keys`; when two keys share a `kid`, the first wins.
    pub fn new(keys: Vec<VerifyingKey>) -> Self {
        let mut by_kid = HashMap::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            if let Some(kid) = &k.kid {
                by_kid.entry(kid.clone()).or_insert(i);
            }
        }
        Self { keys, by_kid }
    }

    /// Parses a JWKS document, keeping the keys that fit `allowed` and
    /// reporting the ones left out.
    pub fn from_jwks(doc: &Value, allowed: &[Algorithm]) -> Result<(Self, Vec<JwkSkip>), Error> {
        let Some(entries) = doc.get("keys").and_then(Value::as_array) else {
            return Err(Error::unavailable("the JWKS document has no `keys` array"));
        };
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for entry in entries {
            match VerifyingKey::from_jwk(entry, allowed) {
                Ok(k) => keys.push(k),
                Err(skip) => skipped.push(skip),
            }
        }
        Ok((Self::new(keys), skipped))
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys.
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// The key with this id.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.by_kid.get(kid).map(|&i| &self.keys[i])
    }

    /// The keys a token with `kid` (or none) and `alg` may be verified with.
    ///
    /// With a `kid` that names a key, only that key (if it supports `alg`).
    /// Otherwise the keys that have no `kid` of their own and support `alg`
    /// (providers with a single key often publish it without one), and,
    /// for a token without `kid`, every key supporting `alg`.
    pub(crate) fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> Box<dyn Iterator<Item = &'a VerifyingKey> + 'a> {
        match kid.and_then(|k| self.get(k)) {
            Some(key) => Box::new(std::iter::once(key).filter(move |k| k.supports(alg))),
            None if kid.is_some() => Box::new(
                self.keys
                    .iter()
                    .filter(move |k| k.kid.is_none() && k.supports(alg)),
            ),
            None => Box::new(self.keys.iter().filter(move |k| k.supports(alg))),
        }
    }
}

/// Extracts the DER body of the first PEM block.
pub(crate) fn pem_to_der(pem: &str) -> Result<Vec<u8>, Error> {
    let mut body = String::new();
    let mut inside = false;
    for line in pem.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN ") {
            if line.contains("PRIVATE KEY") {
                return Err(Error::config("expected a public key, found a private key"));
            }
            inside = true;
        } else if line.starts_with("-----END ") {
            break;
        } else if inside {
            body.push_str(line);
        }
    }
    if body.is_empty() {
        return Err(Error::config("no PEM block found"));
    }
    STANDARD
        .decode(body.as_bytes())
        .map_err(|e| Error::config(format!("the PEM block is not valid base64: {e}")))
}

fn significant_bits(n: &[u8]) -> usize {
    let n = trim_zeros(n);
    match n.first() {
        None => 0,
        Some(&b) => n.len() * 8 - b.leading_zeros() as usize,
    }
}

fn trim_zeros(mut b: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = b {
        b = rest;
    }
    b
}

/// DER `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
pub(crate) fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn integer(out: &mut Vec<u8>, v: &[u8]) {
        let v = trim_zeros(v);
        let pad = v.first().is_none_or(|b| b & 0x80 != 0);
        out.push(0x02);
        der_len(out, v.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    integer(&mut body, n);
    integer(&mut body, e);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30);
    der_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let bytes = trim_zeros(&bytes);
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
}

/// Reads the modulus size of an RSA SubjectPublicKeyInfo or RSAPublicKey; None if it cannot tell.
fn rsa_bits_from_spki(der: &[u8]) -> Option<usize> {
    // Walk DER just far enough to find the first large INTEGER (the modulus).
    fn read(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = der.split_first()?;
        let (&l0, mut rest) = rest.split_first()?;
        let len = if l0 < 0x80 {
            l0 as usize
        } else {
            let n = (l0 & 0x7f) as usize;
            if n > 4 || rest.len() < n {
                return None;
            }
            let mut len = 0usize;
            for &b in &rest[..n] {
                len = (len << 8) | b as usize;
            }
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return None;
        }
        Some((tag, &rest[..len], &rest[len..]))
    }
    let mut cur = der;
    for _ in 0..8 {
        let (tag, body, _) = read(cur)?;
        match tag {
            0x30 => cur = body,
            0x03 => cur = body.get(1..)?,
            0x02 if body.len() > 16 => return Some(significant_bits(body)),
            _ => {
                let (_, _, next) = read(cur)?;
                cur = next;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refuses_oct_wrong_use_and_small_rsa() {
        let all = Algorithm::ALL;
        assert_eq!(
            VerifyingKey::from_jwk(&json!({"kty":"oct","k":"AAAA"}), &all).unwrap_err(),
            JwkSkip::SharedSecret
        );
        let small_n = crate::jws::b64_encode(&[0xff; 128]);
        assert_eq!(
            VerifyingKey::from_jwk(&json!({"kty":"RSA","n":small_n,"e":"AQAB"}), &all).unwrap_err(),
            JwkSkip::WeakKey(1024)
        );
        assert_eq!(
            VerifyingKey::from_jwk(&json!({"kty":"RSA","use":"enc","n":"AA","e":"AQAB"}), &all)
                .unwrap_err(),
            JwkSkip::NotForSignatures
        );
        assert_eq!(
            VerifyingKey::from_jwk(
                &json!({"kty":"RSA","key_ops":["encrypt"],"n":"AA","e":"AQAB"}),
                &all
            )
            .unwrap_err(),
            JwkSkip::NotForSignatures
        );
    }

    #[test]
    fn hmac_secret_length_is_enforced() {
        assert!(VerifyingKey::from_hmac_secret(None, &[7; 31], &[Algorithm::HS256]).is_err());
        assert!(VerifyingKey::from_hmac_secret(None, &[7; 32], &[Algorithm::HS256]).is_ok());
        assert!(VerifyingKey::from_hmac_secret(None, &[7; 32], &[Algorithm::HS512]).is_err());
        assert!(VerifyingKey::from_hmac_secret(None, &[7; 32], &[Algorithm::RS256]).is_err());
    }

    #[test]
    fn der_integer_encoding() {
        assert_eq!(
            rsa_public_key_der(&[0x80], &[1, 0, 1]),
            vec![0x30, 0x09, 0x02, 0x02, 0x00, 0x80, 0x02, 0x03, 1, 0, 1]
        );
        assert_eq!(significant_bits(&[0, 0x01, 0]), 9);
    }
}
