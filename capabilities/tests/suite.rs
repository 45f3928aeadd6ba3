//! The behaviour every backend shares, written once against the traits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use portcullis_capabilities::{CapabilityStore, Change, RevocationStore, SessionStore};
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

/// `revoke_once` semantics on an empty store.
pub(crate) async fn revoke_once(store: Arc<dyn RevocationStore>) {
    let exp = now() + 3600;
    assert!(
        store.revoke_once("login-1", exp).await.unwrap(),
        "first use"
    );
    assert!(
        !store.revoke_once("login-1", exp).await.unwrap(),
        "second use"
    );
    assert!(
        !store.revoke_once("login-1", exp + 60).await.unwrap(),
        "third use"
    );
    // A used value reads as revoked; another id is untouched.
    assert!(store.is_revoked("login-1").await.unwrap());
    assert!(store.revoke_once("login-2", exp).await.unwrap());
    assert!(!store.revoke_once("login-2", exp).await.unwrap());
    // A revoked id was used already.
    store.revoke("jti-used", exp).await.unwrap();
    assert!(!store.revoke_once("jti-used", exp).await.unwrap());
    // An expired value is never consumed, and records nothing.
    assert!(!store.revoke_once("login-old", now() - 10).await.unwrap());
    assert!(!store.is_revoked("login-old").await.unwrap());
    assert!(store.revoke_once("login-old", exp).await.unwrap());
    for bad in ["", "bad\nid"] {
        let e = store.revoke_once(bad, exp).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{bad:?}: {e}");
    }
}

/// Of many concurrent `revoke_once` calls for one id, spread over `stores`
/// (replicas of one shared state), exactly one answers `true`.
pub(crate) async fn concurrent_revoke_once(stores: Vec<Arc<dyn RevocationStore>>) {
    const PER_STORE: usize = 8;
    for round in 0..5 {
        let id = format!("login-race-{round}");
        let exp = now() + 600;
        let barrier = Arc::new(tokio::sync::Barrier::new(stores.len() * PER_STORE));
        let tasks: Vec<_> = stores
            .iter()
            .flat_map(|store| std::iter::repeat_n(store, PER_STORE))
            .map(|store| {
                let (store, barrier, id) = (store.clone(), barrier.clone(), id.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.revoke_once(&id, exp).await.unwrap()
                })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            winners += usize::from(task.await.unwrap());
        }
        assert_eq!(winners, 1, "round {round}: {winners} calls won");
    }
}

/// Session semantics on an empty store.
pub(crate) async fn sessions(store: Arc<dyn SessionStore>) {
    let exp = now() + 3600;
    assert_eq!(store.get("s-1").await.unwrap(), None);

    // Binary-safe: NUL, invalid UTF-8, CR LF, every byte value.
    let binary: Vec<u8> = (0..=255u8).chain(*b"\r\n\0").collect();
    store.put("s-1", &binary, exp).await.unwrap();
    assert_eq!(store.get("s-1").await.unwrap(), Some(binary.clone()));
    store.put("s-empty", b"", exp).await.unwrap();
    assert_eq!(store.get("s-empty").await.unwrap(), Some(vec![]));
    assert_eq!(store.get("s-2").await.unwrap(), None);

    // Put replaces.
    store.put("s-1", b"second", exp).await.unwrap();
    assert_eq!(store.get("s-1").await.unwrap(), Some(b"second".to_vec()));

    // Delete removes that one only, and deleting the absent is no error.
    store.delete("s-1").await.unwrap();
    assert_eq!(store.get("s-1").await.unwrap(), None);
    store.delete("s-1").await.unwrap();
    store.delete("never-there").await.unwrap();
    assert_eq!(store.get("s-empty").await.unwrap(), Some(vec![]));

    // An expiry in the past stores nothing, and removes what was there.
    store.put("s-3", b"stale", now() - 10).await.unwrap();
    assert_eq!(store.get("s-3").await.unwrap(), None);
    store.put("s-empty", b"x", now() - 10).await.unwrap();
    assert_eq!(store.get("s-empty").await.unwrap(), None);

    for bad in ["", "bad\rid"] {
        let e = store.put(bad, b"x", exp).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{bad:?}: {e}");
        let e = store
            .put_new(bad, b"x", std::time::Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{bad:?}: {e}");
    }

    // `put_new`: only where nothing is stored; a delete frees the id.
    let lease = std::time::Duration::from_secs(30);
    assert!(store.put_new("lock-1", b"first", lease).await.unwrap());
    assert!(!store.put_new("lock-1", b"second", lease).await.unwrap());
    assert_eq!(store.get("lock-1").await.unwrap(), Some(b"first".to_vec()));
    store.delete("lock-1").await.unwrap();
    assert!(store.put_new("lock-1", b"third", lease).await.unwrap());
    store.put("s-4", b"held", exp).await.unwrap();
    assert!(!store.put_new("s-4", b"x", lease).await.unwrap());
}

/// Concurrent `put_new` of one id across `stores` (replicas sharing a
/// backend): exactly one wins.
pub(crate) async fn concurrent_put_new(stores: Vec<Arc<dyn SessionStore>>) {
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = Arc::clone(&stores[i % stores.len()]);
            tokio::spawn(async move {
                store
                    .put_new("the-lock", b"x", std::time::Duration::from_secs(30))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);
}

/// A user's capabilities as the checker sees them (`None`: unknown).
type State = Option<Vec<String>>;

/// Many writers (each store is a replica; several tasks per store) apply
/// hundreds of interleaved `Add`, `Remove` and `Set` changes to the same
/// three users. Every acknowledged change reports its true before and after
/// (`Modified`); the checker then proves that one serial order of exactly
/// the acknowledged changes leads from the initial state to the final one:
/// each acknowledged change is what its change does to its before, the
/// changes that wrote form one trail of states from the initial to the
/// final (an Eulerian trail of the before→after graph: no acknowledged
/// change lost, none applied twice, none applied that was refused), and a
/// change that wrote nothing saw a state on that trail.
pub(crate) async fn interleaved_changes_serialize(stores: Vec<Arc<dyn CapabilityStore>>) {
    use std::collections::{BTreeMap, BTreeSet};

    const USERS: [&str; 3] = ["u0@example.com", "u1@example.com", "u2@example.com"];
    const TASKS_PER_STORE: usize = 4;
    const CHANGES_PER_TASK: usize = 40;
    for user in USERS {
        update(&stores[0], user, Change::Set(names(&["base"]))).await;
    }
    let mut tasks = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for t in 0..TASKS_PER_STORE {
            let store = Arc::clone(store);
            // A small deterministic generator per task.
            let mut seed = u64::try_from(s * TASKS_PER_STORE + t + 1)
                .unwrap()
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
            tasks.push(tokio::spawn(async move {
                let mut done = Vec::new();
                let mut refused = 0usize;
                for _ in 0..CHANGES_PER_TASK {
                    seed = seed
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    let r = (seed >> 33) as usize;
                    let user = USERS[r % 3];
                    let cap = format!("c{}", (r / 3) % 6);
                    let change = match (r / 18) % 3 {
                        0 => Change::Add(cap),
                        1 => Change::Remove(cap),
                        _ => Change::Set(vec![cap, format!("c{}", (r / 54) % 6)]),
                    };
                    let accept = |_: Option<&[String]>| Ok(());
                    match store.modify(user, change.clone(), &accept).await {
                        Ok(m) => done.push((user, change, m.before, m.after)),
                        // Contention may exhaust a store's retries: refused,
                        // and then it must not have been applied.
                        Err(e) if e.kind() == ErrorKind::Unavailable => refused += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                (done, refused)
            }));
        }
    }
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let (done, r) = task.await.unwrap();
        acknowledged.extend(done);
        refused += r;
    }
    let total = stores.len() * TASKS_PER_STORE * CHANGES_PER_TASK;
    assert!(
        acknowledged.len() * 10 >= total * 9,
        "{refused} of {total} changes refused"
    );

    for user in USERS {
        let initial: State = Some(names(&["base"]));
        let last: State = get(&stores[0], user).await;
        let mut balance: BTreeMap<State, i64> = BTreeMap::new();
        let mut edges: BTreeMap<State, Vec<State>> = BTreeMap::new();
        let mut reads = Vec::new();
        for (_, change, before, after) in acknowledged.iter().filter(|(u, ..)| *u == user) {
            assert_eq!(
                &change.apply(before.clone()),
                after,
                "{user}: {change:?} on {before:?}"
            );
            if before == after {
                reads.push(before.clone());
                continue;
            }
            *balance.entry(before.clone()).or_default() += 1;
            *balance.entry(after.clone()).or_default() -= 1;
            edges.entry(before.clone()).or_default().push(after.clone());
        }
        // Out minus in: +1 at the start, -1 at the end, 0 elsewhere.
        let mut expected: BTreeMap<State, i64> = BTreeMap::new();
        if initial != last {
            expected.insert(initial.clone(), 1);
            expected.insert(last.clone(), -1);
        }
        balance.retain(|_, b| *b != 0);
        assert_eq!(
            balance, expected,
            "{user}: the acknowledged changes do not lead from {initial:?} to {last:?}"
        );
        // Every state with a change out of it is reached from the start.
        let mut seen: BTreeSet<State> = BTreeSet::from([initial.clone()]);
        let mut queue = vec![initial.clone()];
        while let Some(state) = queue.pop() {
            for next in edges.get(&state).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    queue.push(next.clone());
                }
            }
        }
        for state in edges.keys().chain(reads.iter()) {
            assert!(
                seen.contains(state),
                "{user}: {state:?} is on no serial order"
            );
        }
    }
}
