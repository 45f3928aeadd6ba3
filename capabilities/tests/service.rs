//! `Capabilities` over every store: what a caller holds, what it may change,
//! the tokens it may mint, and their revocation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use portcullis_capabilities::{
    Capabilities, CapabilityStore, Change, ChangeCheck, MemoryStore, Modified, StoreFuture,
};
use portcullis_core::{Authenticated, CapabilitiesConfig, Principal, RawToken, Secret};
use serde_json::{Value, json};

/// A secret key the service accepts (not published, not a placeholder).
pub(crate) const SECRET: &str = "Vq7#tN2m$Lx9pR4w!Zc6bH1s@Kd8jF3g";

/// easy-oauth's graph, with `admin` added by `auto_admin`.
pub(crate) fn config() -> CapabilitiesConfig {
    CapabilitiesConfig::new([
        ("read", vec![]),
        ("write", vec!["read"]),
        ("moderate", vec!["read", "write"]),
        ("user_management", vec![]),
    ])
    .with_auto_admin(true)
}

/// A user logged in through the provider, known by `email`.
pub(crate) fn user(email: &str) -> Authenticated {
    let Value::Object(claims) = json!({"sub": email, "email": email}) else {
        unreachable!()
    };
    let principal = Principal::from_session(
        "https://id.example.com",
        claims,
        RawToken::new(""),
        4_102_444_800,
    )
    .unwrap();
    Authenticated::new(Arc::new(principal))
}

/// The service over `store`.
pub(crate) fn service(store: Arc<dyn CapabilityStore>) -> Capabilities {
    Capabilities::builder(config(), store, Secret::new(SECRET))
        .build()
        .unwrap()
}

/// One audit event: `capabilities changed`.
#[derive(Debug, Clone)]
struct Audit {
    who: String,
    operation: String,
    before: String,
    after: String,
}

/// The audit events recorded so far, by `whom`.
fn audits() -> &'static Mutex<BTreeMap<String, Vec<Audit>>> {
    static AUDITS: OnceLock<Mutex<BTreeMap<String, Vec<Audit>>>> = OnceLock::new();
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt as _;
        let subscriber = tracing_subscriber::registry().with(AuditLayer);
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
    });
    AUDITS.get_or_init(Mutex::default)
}

/// Records `capabilities changed` events into [`audits`].
struct AuditLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AuditLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        #[derive(Default)]
        struct Fields(BTreeMap<String, String>);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.insert(field.name().to_owned(), format!("{value:?}"));
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0.insert(field.name().to_owned(), value.to_owned());
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut f = fields.0;
        if f.get("message").map(String::as_str) != Some("capabilities changed") {
            return;
        }
        let mut take = |k: &str| f.remove(k).unwrap_or_default();
        let whom = take("whom");
        let audit = Audit {
            who: take("who"),
            operation: take("operation"),
            before: take("before"),
            after: take("after"),
        };
        audits()
            .lock()
            .unwrap()
            .entry(whom)
            .or_default()
            .push(audit);
    }
}

fn shown(names: &[&str]) -> String {
    format!("{names:?}")
}

/// A manager without `admin` keeps setting a user's capabilities while an
/// admin grants that user `admin`: the manager must never withdraw `admin`
/// (it does not hold it), and every audit `before` must be the true prior
/// state.
pub(crate) async fn set_never_withdraws_what_a_concurrent_grant_added(
    store: Arc<dyn CapabilityStore>,
    tag: &str,
    rounds: usize,
) {
    const SETS: usize = 12;
    audits();
    let caps = service(store.clone());
    let manager_key = format!("manager-{tag}@example.com");
    let admin_key = format!("admin-{tag}@example.com");
    store
        .update(
            &manager_key,
            Change::Set(vec!["user_management".into(), "write".into()]),
        )
        .await
        .unwrap();
    store
        .update(&admin_key, Change::Set(vec!["admin".into()]))
        .await
        .unwrap();
    let manager = user(&manager_key);
    let admin = user(&admin_key);
    let mut lost = Vec::new();
    for round in 0..rounds {
        let target = format!("target-{tag}-{round}@example.com");
        store
            .update(&target, Change::Set(vec!["read".into()]))
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let setter = {
            let (caps, manager, barrier) = (caps.clone(), manager.clone(), barrier.clone());
            let body = json!({"email": target, "capabilities": ["read", "write"]}).to_string();
            tokio::spawn(async move {
                barrier.wait().await;
                for _ in 0..SETS {
                    match caps.set(Some(&manager), body.as_bytes()).await {
                        Ok(_) => {}
                        Err(e) => assert_eq!(e.status(), 403, "{e}"),
                    }
                    tokio::task::yield_now().await;
                }
            })
        };
        let granter = {
            let (caps, admin, barrier) = (caps.clone(), admin.clone(), barrier.clone());
            let body = json!({"email": target, "capability": "admin"}).to_string();
            tokio::spawn(async move {
                barrier.wait().await;
                for _ in 0..round % 4 {
                    tokio::task::yield_now().await;
                }
                caps.add(Some(&admin), body.as_bytes()).await.unwrap();
            })
        };
        setter.await.unwrap();
        granter.await.unwrap();
        let now = store.get(&target).await.unwrap().unwrap_or_default();
        if !now.iter().any(|c| c == "admin") {
            lost.push((round, now));
        }
    }
    assert!(
        lost.is_empty(),
        "{tag}: `admin` withdrawn by the manager: {lost:?}"
    );

    // The audit trail is a true history: per target, the admin's grant saw
    // either the initial state (and no set landed) or the set's result; each
    // set saw a state without `admin`, and only the first saw the initial one.
    let audits = audits().lock().unwrap();
    for round in 0..rounds {
        let target = format!("target-{tag}-{round}@example.com");
        let events = audits.get(&target).cloned().unwrap_or_default();
        let grants: Vec<&Audit> = events.iter().filter(|a| a.operation == "add").collect();
        let sets: Vec<&Audit> = events.iter().filter(|a| a.operation == "set").collect();
        assert_eq!(grants.len(), 1, "{target}: {events:?}");
        assert!(grants[0].who == admin_key);
        for set in &sets {
            assert_eq!(set.who, manager_key);
            assert!(!set.before.contains("admin"), "{target}: {events:?}");
            assert_eq!(set.after, shown(&["read", "write"]), "{target}: {events:?}");
        }
        let from_initial = sets.iter().filter(|a| a.before == shown(&["read"])).count();
        if grants[0].before == shown(&["read"]) {
            assert!(
                sets.is_empty(),
                "{target}: the grant's `before` is stale: {events:?}"
            );
            assert_eq!(grants[0].after, shown(&["admin", "read"]));
        } else {
            assert_eq!(
                grants[0].before,
                shown(&["read", "write"]),
                "{target}: {events:?}"
            );
            assert_eq!(from_initial, 1, "{target}: {events:?}");
            assert_eq!(grants[0].after, shown(&["admin", "read", "write"]));
        }
    }
}

/// A memory store whose reads yield to other tasks first, as a remote
/// store's would: it widens the window between a read and the next write.
#[derive(Debug, Default)]
struct SlowReads(MemoryStore);

impl CapabilityStore for SlowReads {
    fn get<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Option<Vec<String>>> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            self.0.get(user).await
        })
    }

    fn list(&self) -> StoreFuture<'_, BTreeMap<String, Vec<String>>> {
        self.0.list()
    }

    fn modify<'a>(
        &'a self,
        user: &'a str,
        change: Change,
        check: &'a ChangeCheck<'a>,
    ) -> StoreFuture<'a, Modified> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            self.0.modify(user, change, check).await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_set_never_withdraws_a_concurrent_grant() {
    set_never_withdraws_what_a_concurrent_grant_added(Arc::new(SlowReads::default()), "slow", 100)
        .await;
    set_never_withdraws_what_a_concurrent_grant_added(Arc::new(MemoryStore::new()), "memory", 300)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_set_never_withdraws_a_concurrent_grant() {
    let dir = tempfile::tempdir().unwrap();
    let store = portcullis_capabilities::FileStore::open(dir.path().join("caps.yaml"))
        .await
        .unwrap();
    set_never_withdraws_what_a_concurrent_grant_added(Arc::new(store), "file", 30).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_set_never_withdraws_a_concurrent_grant() {
    let server = crate::support::RedisServer::start();
    let store = portcullis_capabilities::RedisStore::connect(
        portcullis_capabilities::RedisConfig::new(server.url()),
    )
    .await
    .unwrap();
    set_never_withdraws_what_a_concurrent_grant_added(Arc::new(store), "redis", 100).await;
}

#[test]
fn short_published_and_placeholder_secret_keys_are_refused_without_echo() {
    for bad in [
        "short",
        "0123456789abcdef0123456789abcdef",
        "change-me-to-32-random-bytes-or-more!!",
        "<secret key of 32 bytes or more, random>",
    ] {
        let e = Capabilities::builder(config(), Arc::new(MemoryStore::new()), Secret::new(bad))
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), portcullis_core::ErrorKind::Config, "{bad}");
        assert!(e.message().contains("`secret_key`"), "{e}");
        assert!(!e.message().contains(bad), "the key is echoed: {e}");
    }
    assert_eq!(
        portcullis_capabilities::MIN_SECRET_KEY_LEN,
        portcullis_core::secret::MIN_SECRET_KEY_BYTES
    );
}
