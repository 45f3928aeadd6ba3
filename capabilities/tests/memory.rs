//! The memory backend.

use std::sync::Arc;

use portcullis_capabilities::{CapabilityStore, MemoryStore};

use crate::suite;

#[tokio::test]
async fn shared_behaviour() {
    suite::capabilities(Arc::new(MemoryStore::new())).await;
    suite::revocations(Arc::new(MemoryStore::new())).await;
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
