//! The memory backend.

use std::sync::Arc;

use portcullis_capabilities::{CapabilityStore, MemoryStore, RevocationStore};
use portcullis_core::clock::ManualClock;

use crate::suite;

// `CapabilityStore` and `SessionStore` both have a `get`: the tests using
// sessions import `SessionStore` themselves and call `SessionStore::get`.

#[tokio::test]
async fn shared_behaviour() {
    suite::capabilities(Arc::new(MemoryStore::new())).await;
    suite::revocations(Arc::new(MemoryStore::new())).await;
    suite::revoke_once(Arc::new(MemoryStore::new())).await;
    suite::sessions(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_revoke_once_has_one_winner() {
    suite::concurrent_revoke_once(vec![Arc::new(MemoryStore::new())]).await;
    suite::concurrent_put_new(vec![Arc::new(MemoryStore::new())]).await;
}

/// A store on a clock the test moves.
fn clocked() -> (ManualClock, MemoryStore) {
    let clock = ManualClock::new(suite::now());
    let store = MemoryStore::new().with_clock(Arc::new(clock.clone()));
    (clock, store)
}

#[tokio::test]
async fn single_use_records_lapse_at_their_expiry() {
    let (clock, store) = clocked();
    let exp = suite::now() + 60;
    assert!(store.revoke_once("login", exp).await.unwrap());
    clock.advance_secs(59);
    assert!(!store.revoke_once("login", exp).await.unwrap());
    assert!(store.is_revoked("login").await.unwrap());
    clock.advance_secs(1);
    assert!(!store.is_revoked("login").await.unwrap());
    // Expired: the same id may be recorded again, once.
    assert!(store.revoke_once("login", exp + 60).await.unwrap());
    assert!(!store.revoke_once("login", exp + 60).await.unwrap());

    // Revocations follow the same clock.
    store.revoke("jti", exp + 10).await.unwrap();
    assert!(store.is_revoked("jti").await.unwrap());
    clock.advance_secs(10);
    assert!(!store.is_revoked("jti").await.unwrap());
}

#[tokio::test]
async fn sessions_lapse_at_their_expiry() {
    use portcullis_capabilities::SessionStore;
    let (clock, store) = clocked();
    let exp = suite::now() + 30;
    store.put("s", b"data", exp).await.unwrap();
    clock.advance_secs(29);
    assert_eq!(
        SessionStore::get(&store, "s").await.unwrap(),
        Some(b"data".to_vec())
    );
    clock.advance_secs(1);
    assert_eq!(SessionStore::get(&store, "s").await.unwrap(), None);
    // A new put brings it back.
    store.put("s", b"again", exp + 30).await.unwrap();
    assert_eq!(
        SessionStore::get(&store, "s").await.unwrap(),
        Some(b"again".to_vec())
    );
}

#[tokio::test]
async fn starts_from_given_users() {
    let store = MemoryStore::with_users([("alice", vec!["b", "a", "b"]), ("bob", vec![])]);
    assert_eq!(
        store.get("alice").await.unwrap(),
        Some(suite::names(&["a", "b"]))
    );
    assert_eq!(store.get("bob").await.unwrap(), Some(vec![]));
    assert_eq!(store.list().await.unwrap().len(), 2);
}
