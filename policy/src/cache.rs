//! The decision cache: opt-in, bounded, keyed by the caller and the
//! request parts the input is made of.
//!
//! The input is a function of the caller's claims and of those request
//! parts (see [`InputRules::cache_key`](crate::input::InputRules::cache_key)),
//! so the key stands for the input without building it: the caller is the
//! verified principal itself, held by the key and compared by identity (the
//! verifier hands out one shared principal per cached token, so a repeated
//! token finds its decisions; holding it means its address cannot be reused
//! by another caller while the entry lives), and the request parts are
//! compared byte for byte.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use portcullis_core::Principal;
use portcullis_core::clock::SharedClock;

use crate::decision::Decision;

/// The caller, by identity.
#[derive(Clone)]
struct Caller(Option<Arc<Principal>>);

impl PartialEq for Caller {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Caller {}

impl Hash for Caller {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_ref().map(Arc::as_ptr).hash(state);
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    caller: Caller,
    request: Vec<u8>,
}

#[derive(Clone, Copy)]
struct Entry {
    decision: Decision,
    /// The policy set that decided.
    generation: u64,
    /// Seconds since the Unix epoch after which the entry is dead.
    expires_at: u64,
}

/// Decisions by caller and request.
pub(crate) struct DecisionCache {
    entries: quick_cache::sync::Cache<Key, Entry>,
    max_ttl_secs: u64,
    clock: SharedClock,
    /// The policy set the entries were made with; a newer one empties the cache.
    generation: AtomicU64,
}

impl std::fmt::Debug for DecisionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Counts only: keys hold callers.
        f.debug_struct("DecisionCache")
            .field("entries", &self.entries.len())
            .field("capacity", &self.entries.capacity())
            .field("max_ttl_secs", &self.max_ttl_secs)
            .finish()
    }
}

impl DecisionCache {
    pub(crate) fn new(capacity: usize, max_ttl_secs: u64, clock: SharedClock) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(capacity),
            max_ttl_secs,
            clock,
            generation: AtomicU64::new(0),
        }
    }

    /// Empties the cache once when the policy set changes.
    fn follow(&self, generation: u64) {
        let seen = self.generation.load(Ordering::Acquire);
        if seen != generation
            && self
                .generation
                .compare_exchange(seen, generation, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.entries.clear();
        }
    }

    /// The cached decision of policy set `generation` for this caller and
    /// request, if it is still alive.
    pub(crate) fn get(
        &self,
        caller: Option<&Arc<Principal>>,
        request: Vec<u8>,
        generation: u64,
    ) -> (Option<Decision>, CacheSlot) {
        self.follow(generation);
        let key = Key {
            caller: Caller(caller.cloned()),
            request,
        };
        let hit = self.entries.get(&key).and_then(|entry| {
            (entry.generation == generation && self.clock.now_secs() < entry.expires_at)
                .then_some(entry.decision)
        });
        (hit, CacheSlot { key })
    }

    /// Keeps `decision` of policy set `generation` for the slot's caller
    /// and request, until the caller's token expires (at most
    /// `max_ttl_secs`).
    pub(crate) fn put(&self, slot: CacheSlot, decision: Decision, generation: u64) {
        let now = self.clock.now_secs();
        let token_end = slot
            .key
            .caller
            .0
            .as_ref()
            .map_or(u64::MAX, |p| p.expires_at());
        let expires_at = token_end.min(now.saturating_add(self.max_ttl_secs));
        if expires_at <= now || generation != self.generation.load(Ordering::Acquire) {
            return;
        }
        self.entries.insert(
            slot.key,
            Entry {
                decision,
                generation,
                expires_at,
            },
        );
    }

    /// How many decisions are cached.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Where a decision missing from the cache goes once made.
pub(crate) struct CacheSlot {
    key: Key,
}

#[cfg(test)]
mod tests {
    use portcullis_core::RawToken;
    use portcullis_core::clock::ManualClock;

    use super::*;

    fn principal(exp: u64) -> Arc<Principal> {
        let serde_json::Value::Object(claims) = serde_json::json!({"sub": "u"}) else {
            unreachable!()
        };
        Arc::new(
            portcullis_core::dangerous::principal_from_unverified_claims(
                "https://id",
                claims,
                RawToken::new(""),
                exp,
            )
            .unwrap(),
        )
    }

    fn key(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn entries_die_with_the_token_the_ttl_and_the_policy_set() {
        let clock = ManualClock::new(1_000);
        let cache = DecisionCache::new(100, 60, Arc::new(clock.clone()));
        let alice = principal(1_030);
        let (hit, slot) = cache.get(Some(&alice), key("GET /a"), 1);
        assert!(hit.is_none());
        cache.put(slot, Decision::Allow, 1);
        assert_eq!(
            cache.get(Some(&alice), key("GET /a"), 1).0,
            Some(Decision::Allow)
        );
        // Another request, another caller with the same claims, a guest: misses.
        assert!(cache.get(Some(&alice), key("GET /b"), 1).0.is_none());
        assert!(
            cache
                .get(Some(&principal(1_030)), key("GET /a"), 1)
                .0
                .is_none()
        );
        assert!(cache.get(None, key("GET /a"), 1).0.is_none());
        // The token expires at 1030.
        clock.set_secs(1_029);
        assert!(cache.get(Some(&alice), key("GET /a"), 1).0.is_some());
        clock.set_secs(1_030);
        assert!(cache.get(Some(&alice), key("GET /a"), 1).0.is_none());

        // The TTL bounds guests and long tokens.
        let (_, slot) = cache.get(None, key("GET /p"), 1);
        cache.put(slot, Decision::Deny, 1);
        clock.advance_secs(59);
        assert_eq!(cache.get(None, key("GET /p"), 1).0, Some(Decision::Deny));
        clock.advance_secs(1);
        assert!(cache.get(None, key("GET /p"), 1).0.is_none());

        // A new policy set empties the cache, and a decision of the old
        // set made meanwhile is not kept.
        let (_, slot) = cache.get(None, key("GET /q"), 1);
        cache.put(slot, Decision::Allow, 1);
        assert!(cache.len() >= 2);
        let (_, late) = cache.get(None, key("GET /late"), 1);
        assert!(cache.get(None, key("GET /q"), 2).0.is_none());
        assert_eq!(cache.len(), 0);
        cache.put(late, Decision::Allow, 1);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn an_expired_token_is_never_cached() {
        let clock = ManualClock::new(2_000);
        let cache = DecisionCache::new(10, 60, Arc::new(clock));
        let old = principal(1_999);
        let (_, slot) = cache.get(Some(&old), key("x"), 0);
        cache.put(slot, Decision::Allow, 0);
        assert_eq!(cache.len(), 0);
    }
}
