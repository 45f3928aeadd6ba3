//! The issuer's signing keys: loaded from the seed's configuration (a shared
//! `SECRET_KEY` for HS256, a base64-encoded PEM `PRIVATE_KEY` for RS256,
//! ES256 or EdDSA) or generated, named by a `kid` derived from the key
//! itself, and rotated so that a new key is published before it signs and
//! an old one stays published until the longest token it signed expires.

use std::collections::HashSet;
use std::fmt;
use std::sync::RwLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use portcullis_core::keys::VerifyingKey;
use portcullis_core::mint::{SigningKey, jwks_document};
use portcullis_core::secret::check_secret_key;
use portcullis_core::{Algorithm, Error, Secret};
use serde_json::Value;

/// The algorithms the issuer signs with.
pub const SUPPORTED_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::HS256,
    Algorithm::RS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
];

/// Where the signing key comes from: the seed's `ALGORITHM`, `SECRET_KEY`,
/// `PRIVATE_KEY` and `PUBLIC_KEY`.
#[derive(Clone, Default)]
pub struct KeyConfig {
    /// The signing algorithm (`ALGORITHM`); `None` is HS256, the seed's default.
    pub algorithm: Option<Algorithm>,
    /// The shared secret of HS256 (`SECRET_KEY`), at least 32 bytes.
    pub secret_key: Option<Secret>,
    /// The private key (`PRIVATE_KEY`): a PKCS#8 PEM (`BEGIN PRIVATE KEY`),
    /// base64-encoded as the seed has it, or the PEM text itself.
    pub private_key: Option<Secret>,
    /// The public key (`PUBLIC_KEY`), base64-encoded PEM or PEM; when given,
    /// it must be the private key's public half.
    pub public_key: Option<String>,
}

impl fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyConfig")
            .field("algorithm", &self.algorithm)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<redacted>"),
            )
            .field("public_key", &self.public_key.is_some())
            .finish()
    }
}

impl KeyConfig {
    /// The signing key this configuration names, with its derived `kid`;
    /// with neither a secret nor a private key, a new key of the algorithm
    /// (which then lives as long as the process: tokens it signed are
    /// refused after a restart).
    ///
    /// # Errors
    ///
    /// A configuration error naming the variable: an algorithm the issuer
    /// does not sign with, a short or published `SECRET_KEY`, a
    /// `PRIVATE_KEY` that is not a PKCS#8 PEM of the algorithm, a
    /// `PUBLIC_KEY` that is not its public half, or a key of the wrong kind
    /// for the algorithm.
    pub fn signing_key(&self) -> Result<SigningKey, Error> {
        let alg = self.algorithm.unwrap_or(Algorithm::HS256);
        if !SUPPORTED_ALGORITHMS.contains(&alg) {
            return Err(Error::config(format!(
                "ALGORITHM: the issuer signs with HS256, RS256, ES256 or EdDSA, not {alg}"
            )));
        }
        let key = if alg == Algorithm::HS256 {
            if self.private_key.is_some() {
                return Err(Error::config(
                    "PRIVATE_KEY is set but ALGORITHM is HS256, which signs with SECRET_KEY",
                ));
            }
            match &self.secret_key {
                Some(secret) => {
                    check_secret_key("SECRET_KEY", secret)?;
                    SigningKey::from_secret(alg, "", secret.expose().as_bytes())?
                }
                None => SigningKey::generate(alg, "")?,
            }
        } else {
            if self.secret_key.is_some() && self.private_key.is_none() {
                return Err(Error::config(format!(
                    "SECRET_KEY is set but ALGORITHM is {alg}, which signs with PRIVATE_KEY"
                )));
            }
            match &self.private_key {
                Some(private) => {
                    let pem = pem_text("PRIVATE_KEY", private.expose())?;
                    if !pem.contains("-----BEGIN PRIVATE KEY-----") {
                        return Err(Error::config(
                            "PRIVATE_KEY: expected a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`); \
                             convert a PKCS#1 or SEC1 key with `openssl pkcs8 -topk8 -nocrypt`",
                        ));
                    }
                    SigningKey::from_pkcs8_pem(alg, "", &pem)
                        .map_err(|e| Error::config(format!("PRIVATE_KEY: {}", e.message())))?
                }
                None => SigningKey::generate(alg, "")?,
            }
        };
        if let Some(public) = &self.public_key {
            check_public_half(&key, public)?;
        }
        let kid = key.thumbprint();
        Ok(key.with_kid(kid))
    }
}

/// The PEM text of a variable holding PEM or base64-encoded PEM.
fn pem_text(variable: &str, value: &str) -> Result<String, Error> {
    let value = value.trim();
    if value.starts_with("-----BEGIN") {
        return Ok(value.to_owned());
    }
    let compact: String = value.split_whitespace().collect();
    let bytes = STANDARD.decode(compact.as_bytes()).map_err(|_| {
        Error::config(format!(
            "{variable}: expected a base64-encoded PEM or a PEM"
        ))
    })?;
    String::from_utf8(bytes)
        .ok()
        .filter(|s| s.trim_start().starts_with("-----BEGIN"))
        .ok_or_else(|| Error::config(format!("{variable}: the base64 value does not hold a PEM")))
}

/// Checks that `public` (the `PUBLIC_KEY` variable) verifies what `key` signs.
fn check_public_half(key: &SigningKey, public: &str) -> Result<(), Error> {
    if key.algorithm() == Algorithm::HS256 {
        return Err(Error::config(
            "PUBLIC_KEY is set but ALGORITHM is HS256, which has no public key",
        ));
    }
    let pem = pem_text("PUBLIC_KEY", public)?;
    let verifying = VerifyingKey::from_pem(None, &pem, &[key.algorithm()])
        .map_err(|e| Error::config(format!("PUBLIC_KEY: {}", e.message())))?;
    let token = key.sign(&serde_json::json!({"check": "public key"}), None)?;
    let (input, signature) = token.rsplit_once('.').unwrap_or_default();
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .unwrap_or_default();
    if verifying.verify(key.algorithm(), input.as_bytes(), &signature) {
        Ok(())
    } else {
        Err(Error::config(
            "PUBLIC_KEY is not the public half of PRIVATE_KEY",
        ))
    }
}

/// The issuer's keys: the one that signs, the one published ahead of its
/// first use, and retired ones published until the tokens they signed have
/// expired. A `kid` once used is never given to another key.
///
/// ```
/// use portcullis_core::Algorithm;
/// use portcullis_issuer::keys::{KeyConfig, KeyRing};
/// let first = KeyConfig { algorithm: Some(Algorithm::ES256), ..KeyConfig::default() };
/// let ring = KeyRing::new(first.signing_key().unwrap(), 3600).unwrap();
/// let next = first.signing_key().unwrap();
/// ring.stage(next.clone(), 0).unwrap();
/// // Published before it signs.
/// assert_eq!(ring.jwks(0)["keys"].as_array().unwrap().len(), 2);
/// ring.activate(100).unwrap();
/// assert_eq!(ring.active().kid(), next.kid());
/// // The old key stays published until the longest token it signed expires.
/// assert_eq!(ring.jwks(100 + 3599)["keys"].as_array().unwrap().len(), 2);
/// assert_eq!(ring.jwks(100 + 3600)["keys"].as_array().unwrap().len(), 1);
/// ```
#[derive(Debug)]
pub struct KeyRing {
    state: RwLock<Ring>,
    token_lifetime_secs: u64,
}

#[derive(Debug)]
struct Ring {
    active: SigningKey,
    staged: Option<SigningKey>,
    /// Retired keys and the time (seconds) until which they stay published.
    retired: Vec<(SigningKey, u64)>,
    kids: HashSet<String>,
}

impl KeyRing {
    /// A ring signing with `active`, whose tokens live at most
    /// `token_lifetime_secs` (plus the verifiers' leeway, which they add).
    ///
    /// # Errors
    ///
    /// A configuration error for an algorithm the issuer does not sign with.
    pub fn new(active: SigningKey, token_lifetime_secs: u64) -> Result<Self, Error> {
        if !SUPPORTED_ALGORITHMS.contains(&active.algorithm()) {
            return Err(Error::config(format!(
                "the issuer does not sign with {}",
                active.algorithm()
            )));
        }
        let kids = HashSet::from([active.kid().to_owned()]);
        Ok(Self {
            state: RwLock::new(Ring {
                active,
                staged: None,
                retired: Vec::new(),
                kids,
            }),
            token_lifetime_secs,
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Ring> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Ring> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The key that signs now.
    pub fn active(&self) -> SigningKey {
        self.read().active.clone()
    }

    /// Publishes `next` (in the JWKS) without signing with it yet, so that
    /// verifiers can fetch it before the first token it signs reaches them.
    ///
    /// # Errors
    ///
    /// A configuration error when `next`'s `kid` was ever used by this ring
    /// (never reused), or for an algorithm the issuer does not sign with.
    pub fn stage(&self, next: SigningKey, _now_secs: u64) -> Result<(), Error> {
        if !SUPPORTED_ALGORITHMS.contains(&next.algorithm()) {
            return Err(Error::config(format!(
                "the issuer does not sign with {}",
                next.algorithm()
            )));
        }
        let mut ring = self.write();
        if !ring.kids.insert(next.kid().to_owned()) {
            return Err(Error::config(format!(
                "the key id {} was already used; a key id is never reused",
                next.kid()
            )));
        }
        if let Some(previous) = ring.staged.replace(next) {
            // Never signed anything: it needs no grace period.
            tracing::info!(kid = previous.kid(), "a staged key was replaced before use");
        }
        Ok(())
    }

    /// Signs with the staged key from now on; the key it replaces stays
    /// published until `now_secs` plus the token lifetime.
    ///
    /// # Errors
    ///
    /// A configuration error when no key is staged.
    pub fn activate(&self, now_secs: u64) -> Result<(), Error> {
        let mut ring = self.write();
        let next = ring
            .staged
            .take()
            .ok_or_else(|| Error::config("no key is staged"))?;
        let old = std::mem::replace(&mut ring.active, next);
        let until = now_secs.saturating_add(self.token_lifetime_secs);
        ring.retired.push((old, until));
        Ok(())
    }

    /// The keys a verifier may meet at `now_secs`: active, staged, and
    /// retired ones still within their grace period.
    pub fn verifying_keys(&self, now_secs: u64) -> Vec<SigningKey> {
        let ring = self.read();
        let mut keys = vec![ring.active.clone()];
        keys.extend(ring.staged.iter().cloned());
        keys.extend(
            ring.retired
                .iter()
                .filter(|(_, until)| now_secs < *until)
                .map(|(k, _)| k.clone()),
        );
        keys
    }

    /// The JWKS document at `now_secs` (HMAC keys are never published).
    pub fn jwks(&self, now_secs: u64) -> Value {
        {
            let mut ring = self.write();
            ring.retired.retain(|(_, until)| now_secs < *until);
        }
        jwks_document(&self.verifying_keys(now_secs))
    }
}
