//! State shared by the provider's handle, its token builders and its HTTP handlers.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::Algorithm;
use portcullis_core::alg::KeyFamily;
use portcullis_core::clock::ManualClock;
use portcullis_core::mint::SigningKey;
use serde_json::Value;

use super::Fault;
use super::keys::KeyRing;
use super::login::LoginState;

/// How the JWKS endpoint answers.
#[derive(Debug, Clone)]
pub(crate) struct JwksBehavior {
    pub(crate) fault: Option<Fault>,
    pub(crate) max_age: Option<u64>,
}

/// How this provider differs from the default one (discovery fields and
/// the behaviours they announce).
#[derive(Debug, Clone)]
pub(crate) struct Quirks {
    pub(crate) token_endpoint_auth_methods: Option<Vec<String>>,
    pub(crate) null_id_token_audience_under_basic: bool,
    pub(crate) scopes_supported: Vec<String>,
    pub(crate) revocation_endpoint: bool,
    /// Whether discovery advertises the device authorization endpoint
    /// (RFC 8628) and the token endpoint takes the device-code grant.
    pub(crate) device_authorization: bool,
    /// The `interval` device authorizations start with, in seconds.
    pub(crate) device_interval: u64,
}

impl Quirks {
    /// Whether the token endpoint accepts client authentication `method`.
    pub(crate) fn accepts(&self, method: &str) -> bool {
        self.token_endpoint_auth_methods
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == method))
    }

    /// Whether `offline_access` is a scope here (else `access_type=offline`
    /// asks for a refresh token, as at Google).
    pub(crate) fn offline_scope(&self) -> bool {
        self.scopes_supported.iter().any(|s| s == "offline_access")
    }
}

/// What [`State::new`] needs besides the keys.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) clock: ManualClock,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) access_token_ttl: u64,
    pub(crate) iss_parameter: bool,
    pub(crate) quirks: Quirks,
    pub(crate) login: LoginState,
}

/// Everything the provider knows.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) clock: ManualClock,
    /// The configured (published) algorithms, without duplicates.
    pub(crate) algorithms: Vec<Algorithm>,
    /// Lifetime of access and ID tokens issued by `/token`, in seconds.
    pub(crate) access_token_ttl: u64,
    /// Whether authorization responses carry `iss` (RFC 9207).
    pub(crate) iss_parameter: bool,
    /// Discovery fields and the behaviours they announce.
    pub(crate) quirks: Quirks,
    keys: RwLock<KeyRing>,
    jwks: Mutex<JwksBehavior>,
    /// How long `POST /token` waits before it answers.
    token_delay: Mutex<Option<std::time::Duration>>,
    counts: Mutex<HashMap<String, usize>>,
    login: Mutex<LoginState>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    pub(crate) fn new(settings: Settings, keys: KeyRing) -> Self {
        let Settings {
            issuer,
            audience,
            client_id,
            client_secret,
            clock,
            algorithms,
            access_token_ttl,
            iss_parameter,
            quirks,
            login,
        } = settings;
        Self {
            issuer,
            audience,
            client_id,
            client_secret,
            clock,
            algorithms,
            access_token_ttl,
            iss_parameter,
            quirks,
            login: Mutex::new(login),
            keys: RwLock::new(keys),
            jwks: Mutex::new(JwksBehavior {
                fault: None,
                max_age: Some(300),
            }),
            token_delay: Mutex::new(None),
            counts: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn token_delay(&self) -> Option<std::time::Duration> {
        *lock(&self.token_delay)
    }

    pub(crate) fn set_token_delay(&self, delay: Option<std::time::Duration>) {
        *lock(&self.token_delay) = delay;
    }

    /// The current key for `alg`, made on first use for unconfigured algorithms.
    pub(crate) fn signing_key(&self, alg: Algorithm) -> SigningKey {
        {
            let ring = self.keys.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(key) = ring.current(alg) {
                return key.clone();
            }
        }
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .current_or_generate(alg)
    }

    /// The key with this `kid`, if the JWKS lists it.
    pub(crate) fn find_key(&self, kid: &str) -> Option<SigningKey> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .find(kid)
            .cloned()
    }

    /// The algorithm tokens issued by `/token` are signed with: the first
    /// configured public-key algorithm, else the first configured one, else RS256.
    pub(crate) fn login_algorithm(&self) -> Algorithm {
        self.algorithms
            .iter()
            .find(|a| a.family() != KeyFamily::Hmac)
            .or(self.algorithms.first())
            .copied()
            .unwrap_or(Algorithm::RS256)
    }

    /// The login flows' memory, locked.
    pub(crate) fn login(&self) -> MutexGuard<'_, LoginState> {
        lock(&self.login)
    }

    pub(crate) fn rotate_keys(&self) {
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .rotate();
    }

    pub(crate) fn jwks_document(&self) -> Value {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .jwks()
    }

    pub(crate) fn jwks_behavior(&self) -> JwksBehavior {
        lock(&self.jwks).clone()
    }

    pub(crate) fn set_jwks_fault(&self, fault: Option<Fault>) {
        lock(&self.jwks).fault = fault;
    }

    pub(crate) fn set_jwks_max_age(&self, secs: Option<u64>) {
        lock(&self.jwks).max_age = secs;
    }

    pub(crate) fn count_request(&self, path: &str) {
        *lock(&self.counts).entry(path.to_owned()).or_insert(0) += 1;
    }

    pub(crate) fn request_count(&self, path: &str) -> usize {
        lock(&self.counts).get(path).copied().unwrap_or(0)
    }

    /// `{issuer}{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

pub(crate) fn random_bytes(bytes: usize) -> Vec<u8> {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf)
        .unwrap_or_else(|_| panic!("the system random generator failed"));
    buf
}

/// A random lowercase hex string of `bytes` random bytes.
pub(crate) fn random_hex(bytes: usize) -> String {
    random_bytes(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `bytes` random bytes, base64url without padding.
pub(crate) fn random_b64(bytes: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(bytes))
}
