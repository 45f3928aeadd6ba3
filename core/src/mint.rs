//! Signing keys and token minting: what the mock provider, service tokens and
//! the token-issuing server sign with, and the JWKS documents they publish.
//!
//! Signing goes through `jsonwebtoken` (aws-lc-rs backend); key generation and
//! public-key export through aws-lc-rs directly.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::EncodingKey;
use serde_json::{Map, Value, json};

use crate::alg::{Algorithm, KeyFamily};
use crate::error::Error;
use crate::jws::b64_encode;
use crate::keys::{VerifyingKey, rsa_public_key_der};

/// A private key (or shared secret) that signs tokens, with its public half.
///
/// `Debug` shows the algorithm and key id only.
///
/// ```
/// use portcullis_core::mint::SigningKey;
/// use portcullis_core::Algorithm;
/// let key = SigningKey::generate(Algorithm::ES256, "k1").unwrap();
/// let token = key.sign(&serde_json::json!({"sub": "alice", "exp": 4102444800u64}), Some("at+jwt")).unwrap();
/// assert_eq!(token.split('.').count(), 3);
/// assert_eq!(key.public_jwk().unwrap()["kty"], "EC");
/// ```
#[derive(Clone)]
pub struct SigningKey {
    alg: Algorithm,
    kid: String,
    encoding: EncodingKey,
    public: Public,
}

#[derive(Clone)]
enum Public {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec { point: Vec<u8> },
    Ed { x: Vec<u8> },
    Hmac { secret: Vec<u8> },
}

fn unspecified(what: &str) -> Error {
    Error::config(format!("could not {what}"))
}

impl SigningKey {
    /// Generates a new key for `alg` (RSA 2048 bits, P-256, P-384, Ed25519, or a
    /// random 64-byte secret for HMAC).
    pub fn generate(alg: Algorithm, kid: impl Into<String>) -> Result<Self, Error> {
        let kid = kid.into();
        match alg.family() {
            KeyFamily::Rsa => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| unspecified("generate an RSA key"))?;
                let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'_>>::as_der(&pair)
                    .map_err(|_| unspecified("export an RSA key"))?;
                Self::from_pkcs8_der(alg, kid, der.as_ref())
            }
            KeyFamily::Ec => {
                let signing = if alg == Algorithm::ES256 {
                    &ECDSA_P256_SHA256_FIXED_SIGNING
                } else {
                    &ECDSA_P384_SHA384_FIXED_SIGNING
                };
                let pair = EcdsaKeyPair::generate(signing)
                    .map_err(|_| unspecified("generate an EC key"))?;
                let doc = pair
                    .to_pkcs8v1()
                    .map_err(|_| unspecified("export an EC key"))?;
                Self::from_pkcs8_der(alg, kid, doc.as_ref())
            }
            KeyFamily::Okp => {
                let pair = Ed25519KeyPair::generate()
                    .map_err(|_| unspecified("generate an Ed25519 key"))?;
                let doc = pair
                    .to_pkcs8v1()
                    .map_err(|_| unspecified("export an Ed25519 key"))?;
                Self::from_pkcs8_der(alg, kid, doc.as_ref())
            }
            KeyFamily::Hmac => {
                let mut secret = vec![0u8; 64];
                aws_lc_rs::rand::fill(&mut secret).map_err(|_| unspecified("draw a secret"))?;
                Self::from_secret(alg, kid, &secret)
            }
        }
    }

    /// A key from a PKCS#8 private key in DER.
    pub fn from_pkcs8_der(
        alg: Algorithm,
        kid: impl Into<String>,
        der: &[u8],
    ) -> Result<Self, Error> {
        let kid = kid.into();
        let bad =
            |e: &dyn fmt::Display| Error::config(format!("the {alg} private key is invalid: {e}"));
        let (encoding, public) = match alg.family() {
            KeyFamily::Rsa => {
                let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(der).map_err(|e| bad(&e))?;
                let pem = format!(
                    "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                    STANDARD.encode(der)
                );
                let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| bad(&e))?;
                let pk = pair.public_key();
                let public = Public::Rsa {
                    n: pk.modulus().big_endian_without_leading_zero().to_vec(),
                    e: pk.exponent().big_endian_without_leading_zero().to_vec(),
                };
                (encoding, public)
            }
            KeyFamily::Ec => {
                let signing = if alg == Algorithm::ES256 {
                    &ECDSA_P256_SHA256_FIXED_SIGNING
                } else {
                    &ECDSA_P384_SHA384_FIXED_SIGNING
                };
                let pair = EcdsaKeyPair::from_pkcs8(signing, der).map_err(|e| bad(&e))?;
                let point = pair.public_key().as_ref().to_vec();
                (EncodingKey::from_ec_der(der), Public::Ec { point })
            }
            KeyFamily::Okp => {
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| bad(&e))?;
                let x = pair.public_key().as_ref().to_vec();
                (EncodingKey::from_ed_der(der), Public::Ed { x })
            }
            KeyFamily::Hmac => {
                return Err(Error::config(
                    "HMAC keys are made with SigningKey::from_secret",
                ));
            }
        };
        Ok(Self {
            alg,
            kid,
            encoding,
            public,
        })
    }

    /// A key from a PKCS#8 private key in PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(
        alg: Algorithm,
        kid: impl Into<String>,
        pem: &str,
    ) -> Result<Self, Error> {
        let body: String = pem
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|e| Error::config(format!("the private key PEM is not valid base64: {e}")))?;
        Self::from_pkcs8_der(alg, kid, &der)
    }

    /// An HMAC key; the secret must be at least as long as the hash output.
    pub fn from_secret(
        alg: Algorithm,
        kid: impl Into<String>,
        secret: &[u8],
    ) -> Result<Self, Error> {
        if alg.family() != KeyFamily::Hmac {
            return Err(Error::config(format!("{alg} does not use a shared secret")));
        }
        if secret.len() < alg.min_secret_len() {
            return Err(Error::config(format!(
                "the {alg} secret has {} bytes; at least {} are required",
                secret.len(),
                alg.min_secret_len()
            )));
        }
        Ok(Self {
            alg,
            kid: kid.into(),
            encoding: EncodingKey::from_secret(secret),
            public: Public::Hmac {
                secret: secret.to_vec(),
            },
        })
    }

    /// The same key under another key id.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = kid.into();
        self
    }

    /// A key id derived from the key itself, so that two different keys never
    /// share one: the RFC 7638 JWK thumbprint (SHA-256, base64url) of the
    /// public key; for an HMAC key, whose secret is never published nor
    /// hashed alone, HMAC-SHA-256 of a fixed label under the secret.
    ///
    /// ```
    /// use portcullis_core::mint::SigningKey;
    /// use portcullis_core::Algorithm;
    /// let key = SigningKey::generate(Algorithm::EdDSA, "temporary").unwrap();
    /// let kid = key.thumbprint();
    /// assert_eq!(kid.len(), 43);
    /// assert_eq!(key.with_kid(kid.clone()).kid(), kid);
    /// ```
    pub fn thumbprint(&self) -> String {
        use aws_lc_rs::digest::{SHA256, digest};
        // RFC 7638: the required members only, in lexicographic order, no spaces.
        let canonical = match &self.public {
            Public::Rsa { n, e } => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64_encode(e),
                b64_encode(n)
            ),
            Public::Ec { point } => {
                let half = (point.len() - 1) / 2;
                let crv = if self.alg == Algorithm::ES256 {
                    "P-256"
                } else {
                    "P-384"
                };
                format!(
                    r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
                    b64_encode(&point[1..1 + half]),
                    b64_encode(&point[1 + half..])
                )
            }
            Public::Ed { x } => {
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64_encode(x))
            }
            Public::Hmac { secret } => {
                let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
                let tag = aws_lc_rs::hmac::sign(&key, b"portcullis key id");
                return b64_encode(tag.as_ref());
            }
        };
        b64_encode(digest(&SHA256, canonical.as_bytes()).as_ref())
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id put in the `kid` header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key that verifies this key's signatures.
    pub fn verifying_key(&self) -> Result<VerifyingKey, Error> {
        let kid = Some(self.kid.clone());
        let algs = [self.alg];
        match &self.public {
            Public::Rsa { n, e } => {
                VerifyingKey::from_public_der(kid, &rsa_public_key_der(n, e), &algs)
            }
            Public::Ec { point } => VerifyingKey::from_public_der(kid, point, &algs),
            Public::Ed { x } => VerifyingKey::from_public_der(kid, x, &algs),
            Public::Hmac { secret } => VerifyingKey::from_hmac_secret(kid, secret, &algs),
        }
    }

    /// The public JWK (`use: sig`, with `kid` and `alg`); `None` for HMAC keys,
    /// whose secret is never published.
    pub fn public_jwk(&self) -> Option<Value> {
        let mut jwk = match &self.public {
            Public::Rsa { n, e } => json!({"kty": "RSA", "n": b64_encode(n), "e": b64_encode(e)}),
            Public::Ec { point } => {
                let half = (point.len() - 1) / 2;
                let crv = if self.alg == Algorithm::ES256 {
                    "P-256"
                } else {
                    "P-384"
                };
                json!({
                    "kty": "EC",
                    "crv": crv,
                    "x": b64_encode(&point[1..1 + half]),
                    "y": b64_encode(&point[1 + half..]),
                })
            }
            Public::Ed { x } => json!({"kty": "OKP", "crv": "Ed25519", "x": b64_encode(x)}),
            Public::Hmac { .. } => return None,
        };
        let obj = jwk.as_object_mut()?;
        obj.insert("kid".into(), Value::String(self.kid.clone()));
        obj.insert("alg".into(), Value::String(self.alg.as_str().into()));
        obj.insert("use".into(), Value::String("sig".into()));
        Some(jwk)
    }

    /// The public key as PEM (`PUBLIC KEY`, SubjectPublicKeyInfo); `None` for HMAC keys.
    pub fn public_pem(&self) -> Option<String> {
        let der = match &self.public {
            Public::Rsa { n, e } => spki(RSA_ALG_ID, &rsa_public_key_der(n, e)),
            Public::Ec { point } => {
                let id: &[u8] = if self.alg == Algorithm::ES256 {
                    P256_ALG_ID
                } else {
                    P384_ALG_ID
                };
                spki(id, point)
            }
            Public::Ed { x } => spki(ED25519_ALG_ID, x),
            Public::Hmac { .. } => return None,
        };
        let b64 = STANDARD.encode(der);
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).expect("base64 is ascii"));
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        Some(pem)
    }

    /// Signs `claims` (a JSON object) with a header of `alg`, `kid` and `typ` (when given).
    pub fn sign(&self, claims: &Value, typ: Option<&str>) -> Result<String, Error> {
        let mut header = Map::new();
        header.insert("alg".into(), Value::String(self.alg.as_str().into()));
        if let Some(typ) = typ {
            header.insert("typ".into(), Value::String(typ.into()));
        }
        header.insert("kid".into(), Value::String(self.kid.clone()));
        let payload =
            serde_json::to_vec(claims).map_err(|e| Error::config(format!("claims: {e}")))?;
        let header =
            serde_json::to_vec(&header).map_err(|e| Error::config(format!("header: {e}")))?;
        self.sign_raw(&header, &payload)
    }

    /// Signs exactly these header and payload bytes, unchecked: see
    /// [`dangerous::sign_unchecked`](crate::dangerous::sign_unchecked), the
    /// one way in from outside this crate.
    pub(crate) fn sign_raw(&self, header: &[u8], payload: &[u8]) -> Result<String, Error> {
        let mut token = b64_encode(header);
        token.push('.');
        token.push_str(&b64_encode(payload));
        let signature = jsonwebtoken::crypto::sign(
            token.as_bytes(),
            &self.encoding,
            self.alg.to_jsonwebtoken(),
        )
        .map_err(|e| Error::config(format!("signing failed: {e}")))?;
        token.push('.');
        token.push_str(&signature);
        Ok(token)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A JWKS document (`{"keys": [...]}`) publishing the public halves of `keys`.
pub fn jwks_document<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> Value {
    let keys: Vec<Value> = keys
        .into_iter()
        .filter_map(SigningKey::public_jwk)
        .collect();
    json!({ "keys": keys })
}

// DER AlgorithmIdentifier bodies (SEQUENCE contents included) for SubjectPublicKeyInfo.
const RSA_ALG_ID: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
const P256_ALG_ID: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07,
];
const P384_ALG_ID: &[u8] = &[
    0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04,
    0x00, 0x22,
];
const ED25519_ALG_ID: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];

fn spki(alg_id: &[u8], key: &[u8]) -> Vec<u8> {
    let mut bitstring = vec![0x03];
    push_len(&mut bitstring, key.len() + 1);
    bitstring.push(0);
    bitstring.extend_from_slice(key);
    let mut out = vec![0x30];
    push_len(&mut out, alg_id.len() + bitstring.len());
    out.extend_from_slice(alg_id);
    out.extend_from_slice(&bitstring);
    out
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_signs_and_verifies_through_jwk_and_pem() {
        for alg in [
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ] {
            let key = SigningKey::generate(alg, "k").unwrap();
            let token = key.sign(&json!({"sub": "a"}), None).unwrap();
            let (input, sig) = token.rsplit_once('.').unwrap();
            let sig = crate::jws::b64_decode(sig).unwrap();
            let from_jwk =
                VerifyingKey::from_jwk(&key.public_jwk().unwrap(), &Algorithm::ALL).unwrap();
            assert!(from_jwk.verify(alg, input.as_bytes(), &sig), "{alg} jwk");
            let from_pem =
                VerifyingKey::from_pem(None, &key.public_pem().unwrap(), &[alg]).unwrap();
            assert!(from_pem.verify(alg, input.as_bytes(), &sig), "{alg} pem");
            assert!(!from_pem.verify(alg, b"other", &sig), "{alg} other message");
        }
    }

    #[test]
    fn thumbprints_follow_rfc_7638() {
        // RFC 7638, section 3.1: the example RSA key and its thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let der = rsa_public_key_der(
            &crate::jws::b64_decode(n).unwrap(),
            &crate::jws::b64_decode("AQAB").unwrap(),
        );
        assert!(!der.is_empty());
        let key = SigningKey {
            alg: Algorithm::RS256,
            kid: String::new(),
            encoding: EncodingKey::from_secret(b"unused"),
            public: Public::Rsa {
                n: crate::jws::b64_decode(n).unwrap(),
                e: crate::jws::b64_decode("AQAB").unwrap(),
            },
        };
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        let a = SigningKey::generate(Algorithm::HS256, "a").unwrap();
        let b = SigningKey::generate(Algorithm::HS256, "b").unwrap();
        assert_ne!(a.thumbprint(), b.thumbprint());
        let before = a.thumbprint();
        assert_eq!(before, a.with_kid("c").thumbprint());
    }

    #[test]
    fn hmac_keys_are_not_published() {
        let key = SigningKey::generate(Algorithm::HS256, "h").unwrap();
        assert!(key.public_jwk().is_none());
        let token = key.sign(&json!({}), None).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let vk = key.verifying_key().unwrap();
        assert!(vk.verify(
            Algorithm::HS256,
            input.as_bytes(),
            &crate::jws::b64_decode(sig).unwrap()
        ));
        assert!(format!("{key:?}").contains("HS256"));
    }
}
