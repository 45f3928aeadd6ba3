//! State shared by the provider's handle, its token builders and its HTTP handlers.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use portcullis_core::Algorithm;
use portcullis_core::clock::ManualClock;
use portcullis_core::mint::SigningKey;
use serde_json::Value;

use super::Fault;
use super::keys::KeyRing;

/// How the JWKS endpoint answers.
#[derive(Debug, Clone)]
pub(crate) struct JwksBehavior {
    pub(crate) fault: Option<Fault>,
    pub(crate) max_age: Option<u64>,
}

/// Everything the provider knows.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) client_id: String,
    pub(crate) clock: ManualClock,
    /// The configured (published) algorithms, without duplicates.
    pub(crate) algorithms: Vec<Algorithm>,
    keys: RwLock<KeyRing>,
    jwks: Mutex<JwksBehavior>,
    counts: Mutex<HashMap<String, usize>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    pub(crate) fn new(
        issuer: String,
        audience: String,
        client_id: String,
        clock: ManualClock,
        algorithms: Vec<Algorithm>,
        keys: KeyRing,
    ) -> Self {
        Self {
            issuer,
            audience,
            client_id,
            clock,
            algorithms,
            keys: RwLock::new(keys),
            jwks: Mutex::new(JwksBehavior {
                fault: None,
                max_age: Some(300),
            }),
            counts: Mutex::new(HashMap::new()),
        }
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

/// A random lowercase hex string of `bytes` random bytes.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf)
        .unwrap_or_else(|_| panic!("the system random generator failed"));
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
