//! The behaviour every backend shares, written once against the traits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use portcullis_capabilities::{CapabilityStore, Change, RevocationStore};
use portcullis_core::ErrorKind;

/// Owned names.
pub(crate) fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs()
}

async fn update(store: &Arc<dyn CapabilityStore>, user: &str, change: Change) -> Vec<String> {
    store
        .update(user, change)
        .await
        .unwrap_or_else(|e| panic!("update of {user}: {e}"))
}

async fn get(store: &Arc<dyn CapabilityStore>, user: &str) -> Option<Vec<String>> {
    store
        .get(user)
        .await
        .unwrap_or_else(|e| panic!("get of {user}: {e}"))
}

/// Get, list, add, remove and set semantics on an empty store.
pub(crate) async fn capabilities(store: Arc<dyn CapabilityStore>) {
    let alice = "alice@example.com";
    let bob = "bob@example.com";
    let odd = "o'brien+tag:ops@example.org";

    assert_eq!(store.list().await.unwrap(), BTreeMap::new());
    assert_eq!(get(&store, alice).await, None);

    // Add: sorted, deduplicated, idempotent.
    assert_eq!(
        update(&store, alice, Change::Add("write".into())).await,
        ["write"]
    );
    assert_eq!(
        update(&store, alice, Change::Add("read".into())).await,
        ["read", "write"]
    );
    assert_eq!(
        update(&store, alice, Change::Add("read".into())).await,
        ["read", "write"]
    );
    assert_eq!(get(&store, alice).await, Some(names(&["read", "write"])));

    // Remove: absent names change nothing; the last one leaves a known user with none.
    assert_eq!(
        update(&store, alice, Change::Remove("write".into())).await,
        ["read"]
    );
    assert_eq!(
        update(&store, alice, Change::Remove("admin".into())).await,
        ["read"]
    );
    assert_eq!(
        update(&store, alice, Change::Remove("read".into())).await,
        Vec::<String>::new()
    );
    assert_eq!(get(&store, alice).await, Some(vec![]));

    // Removing from an unknown user does not make the user known.
    assert_eq!(
        update(&store, "ghost@example.com", Change::Remove("read".into())).await,
        Vec::<String>::new()
    );
    assert_eq!(get(&store, "ghost@example.com").await, None);

    // Set: replaces, sorts, deduplicates; an empty set keeps the user known.
    assert_eq!(
        update(
            &store,
            bob,
            Change::Set(names(&["write", "read", "write", "admin"]))
        )
        .await,
        ["admin", "read", "write"]
    );
    assert_eq!(
        update(&store, bob, Change::Set(vec![])).await,
        Vec::<String>::new()
    );
    assert_eq!(get(&store, bob).await, Some(vec![]));
    assert_eq!(
        update(&store, bob, Change::Set(names(&["moderate"]))).await,
        ["moderate"]
    );

    // Names are opaque: punctuation, spaces and non-ASCII survive.
    assert_eq!(
        update(
            &store,
            odd,
            Change::Set(names(&["ünïcode", "ns:cap", "with space"]))
        )
        .await,
        ["ns:cap", "with space", "ünïcode"]
    );
    assert_eq!(
        update(&store, "carol@example.com", Change::Add("read".into())).await,
        ["read"]
    );

    let expected: BTreeMap<String, Vec<String>> = [
        (alice, names(&[])),
        (bob, names(&["moderate"])),
        ("carol@example.com", names(&["read"])),
        (odd, names(&["ns:cap", "with space", "ünïcode"])),
    ]
    .into_iter()
    .map(|(user, caps)| (user.to_owned(), caps))
    .collect();
    assert_eq!(store.list().await.unwrap(), expected);

    // Invalid names are refused and change nothing.
    for (user, change) in [
        ("", Change::Add("read".into())),
        ("dave@example.com", Change::Add(String::new())),
        (
            "dave@example.com",
            Change::Set(names(&["read", "bad\nname"])),
        ),
        ("dave\r@example.com", Change::Set(vec![])),
    ] {
        let e = store.update(user, change.clone()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{change:?}: {e}");
    }
    assert_eq!(get(&store, "dave@example.com").await, None);
    assert_eq!(store.list().await.unwrap(), expected);
}

/// Revocation semantics on an empty store.
pub(crate) async fn revocations(store: Arc<dyn RevocationStore>) {
    assert!(!store.is_revoked("t-1").await.unwrap());
    store.revoke("t-1", now() + 3600).await.unwrap();
    assert!(store.is_revoked("t-1").await.unwrap());
    assert!(!store.is_revoked("t-2").await.unwrap());
    // Revoking again is harmless.
    store.revoke("t-1", now() + 3600).await.unwrap();
    assert!(store.is_revoked("t-1").await.unwrap());
    // A token already past its expiry needs no entry.
    store.revoke("t-old", now() - 10).await.unwrap();
    assert!(!store.is_revoked("t-old").await.unwrap());
    let e = store.revoke("", now() + 60).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
}
