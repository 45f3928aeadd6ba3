//! The provider's signing keys: the published ones, the unpublished ones made
//! on demand, and the retired ones still listed after a rotation.

use portcullis_core::Algorithm;
use portcullis_core::mint::{SigningKey, jwks_document};
use serde_json::Value;

/// Every key the provider signs with.
#[derive(Debug)]
pub(crate) struct KeyRing {
    /// A random tag shared by the key ids of one provider, so that two
    /// providers never publish the same `kid`.
    tag: String,
    /// Bumped on every rotation; part of every `kid`.
    generation: u64,
    keep_previous: bool,
    /// Current keys for the configured algorithms, published in the JWKS.
    published: Vec<SigningKey>,
    /// Current keys for other algorithms, made on first use and never published.
    unpublished: Vec<SigningKey>,
    /// Retired published keys still listed (newest first), when
    /// `keep_previous_keys_on_rotation` is set.
    previous: Vec<SigningKey>,
}

impl KeyRing {
    /// Generates one key per algorithm in `algorithms`.
    pub(crate) fn new(
        tag: String,
        algorithms: &[Algorithm],
        keep_previous: bool,
    ) -> Result<Self, portcullis_core::Error> {
        let mut ring = Self {
            tag,
            generation: 1,
            keep_previous,
            published: Vec::with_capacity(algorithms.len()),
            unpublished: Vec::new(),
            previous: Vec::new(),
        };
        for &alg in algorithms {
            let key = ring.generate(alg)?;
            ring.published.push(key);
        }
        Ok(ring)
    }

    fn kid(&self, alg: Algorithm) -> String {
        format!(
            "{}-{}-{}",
            self.tag,
            alg.as_str().to_ascii_lowercase(),
            self.generation
        )
    }

    fn generate(&self, alg: Algorithm) -> Result<SigningKey, portcullis_core::Error> {
        SigningKey::generate(alg, self.kid(alg))
    }

    /// The current key for `alg`, if there is one yet.
    pub(crate) fn current(&self, alg: Algorithm) -> Option<&SigningKey> {
        self.published
            .iter()
            .chain(&self.unpublished)
            .find(|k| k.algorithm() == alg)
    }

    /// The current key for `alg`, made (unpublished) when there is none yet.
    pub(crate) fn current_or_generate(&mut self, alg: Algorithm) -> SigningKey {
        if let Some(key) = self.current(alg) {
            return key.clone();
        }
        let key = self
            .generate(alg)
            .unwrap_or_else(|e| panic!("could not generate a {alg} key: {e}"));
        self.unpublished.push(key.clone());
        key
    }

    /// The key with this `kid` among the keys the JWKS lists: the current
    /// published ones and the retired ones still listed.
    pub(crate) fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.published
            .iter()
            .chain(&self.previous)
            .find(|k| k.kid() == kid)
    }

    /// Replaces every key with a new one with a new `kid`.
    pub(crate) fn rotate(&mut self) {
        self.generation += 1;
        let fresh = |ring: &Self, keys: &[SigningKey]| -> Vec<SigningKey> {
            keys.iter()
                .map(|k| {
                    let alg = k.algorithm();
                    ring.generate(alg)
                        .unwrap_or_else(|e| panic!("could not generate a {alg} key: {e}"))
                })
                .collect()
        };
        let published = fresh(self, &self.published);
        let unpublished = fresh(self, &self.unpublished);
        let retired = std::mem::replace(&mut self.published, published);
        self.unpublished = unpublished;
        if self.keep_previous {
            let older = std::mem::replace(&mut self.previous, retired);
            self.previous.extend(older);
        }
    }

    /// The JWKS document: current published keys first, then retired ones.
    pub(crate) fn jwks(&self) -> Value {
        jwks_document(self.published.iter().chain(&self.previous))
    }
}
