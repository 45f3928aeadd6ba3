//! The Redis backend against real `redis-server` processes: the shared
//! behaviour, replicas sharing one server, the key layout, seeding from the
//! user file, and failing closed. The tests that hold for every deployment
//! run twice, on one server and on a Redis Cluster of three masters
//! (`on_every_deployment!`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_capabilities::{
    CapabilityStore, Change, LocalCacheConfig, RedisConfig, RedisStore, RevocationStore,
    StoreConfig,
};
use portcullis_core::{Error, ErrorKind};

use crate::suite::{self, names, now};
use crate::support::{RedisServer, free_port};

// `CapabilityStore` and `SessionStore` both have a `get`: the tests using
// sessions import `SessionStore` themselves and call `SessionStore::get`.

/// Where the stores of a test live: one server, or a cluster.
pub(crate) enum Deployment {
    Single(RedisServer),
    #[cfg(feature = "redis-cluster")]
    Cluster(portcullis_testing::RedisCluster),
}

impl Deployment {
    pub(crate) fn single() -> Self {
        Deployment::Single(RedisServer::start())
    }

    #[cfg(feature = "redis-cluster")]
    pub(crate) fn cluster() -> Self {
        Deployment::Cluster(portcullis_testing::RedisCluster::start())
    }

    /// A store (a replica) with `prefix`.
    pub(crate) async fn store(&self, prefix: &str) -> RedisStore {
        self.store_with_timeout(prefix, Duration::from_millis(500))
            .await
    }

    pub(crate) async fn store_with_timeout(&self, prefix: &str, timeout: Duration) -> RedisStore {
        self.connect(prefix, timeout, LocalCacheConfig::default())
            .await
    }

    /// A replica with `prefix` and its local cache configured by `cache`.
    pub(crate) async fn store_with_cache(
        &self,
        prefix: &str,
        cache: LocalCacheConfig,
    ) -> RedisStore {
        self.connect(prefix, Duration::from_millis(500), cache)
            .await
    }

    async fn connect(
        &self,
        prefix: &str,
        timeout: Duration,
        cache: LocalCacheConfig,
    ) -> RedisStore {
        match self {
            Deployment::Single(server) => RedisStore::connect(
                RedisConfig::new(server.url())
                    .with_prefix(prefix)
                    .with_command_timeout(timeout)
                    .with_local_cache(cache),
            )
            .await
            .unwrap(),
            #[cfg(feature = "redis-cluster")]
            Deployment::Cluster(cluster) => RedisStore::connect_cluster(
                portcullis_capabilities::RedisClusterConfig::new(cluster.urls())
                    .with_prefix(prefix)
                    .with_command_timeout(timeout)
                    .with_local_cache(cache),
            )
            .await
            .unwrap(),
        }
    }

    /// Sends one command to every server (each node of a cluster).
    pub(crate) fn each_node(&self, args: &[&str]) {
        match self {
            Deployment::Single(server) => {
                server.command(args).unwrap();
            }
            #[cfg(feature = "redis-cluster")]
            Deployment::Cluster(cluster) => {
                for node in cluster.nodes() {
                    node.command(args).unwrap();
                }
            }
        }
    }

    /// The store configuration of this deployment.
    pub(crate) fn config(&self, prefix: &str, timeout: Duration) -> StoreConfig {
        let ms = u64::try_from(timeout.as_millis()).unwrap();
        let text = match self {
            Deployment::Single(server) => format!(
                "kind: redis\nurl: {}\nprefix: '{prefix}'\ncommand_timeout_ms: {ms}\n",
                server.url()
            ),
            #[cfg(feature = "redis-cluster")]
            Deployment::Cluster(cluster) => format!(
                "kind: redis_cluster\nurls: [{}]\nprefix: '{prefix}'\ncommand_timeout_ms: {ms}\n",
                cluster.urls().join(", ")
            ),
        };
        serde_yaml_ng::from_str(&text).unwrap()
    }

    /// The key of the users set.
    pub(crate) fn users_key(&self, prefix: &str) -> String {
        match self {
            Deployment::Single(_) => format!("{prefix}users"),
            #[cfg(feature = "redis-cluster")]
            Deployment::Cluster(_) => format!("{prefix}{{caps}}users"),
        }
    }

    /// The key of `user`'s capability set.
    pub(crate) fn caps_key(&self, prefix: &str, user: &str) -> String {
        match self {
            Deployment::Single(_) => format!("{prefix}caps:{user}"),
            #[cfg(feature = "redis-cluster")]
            Deployment::Cluster(_) => format!("{prefix}{{caps}}caps:{user}"),
        }
    }

    /// Runs one command outside the store, as another writer would.
    pub(crate) fn command(&self, cmd: &redis::Cmd) {
        match self {
            Deployment::Single(server) => {
                let mut conn = redis::Client::open(server.url())
                    .unwrap()
                    .get_connection()
                    .unwrap();
                cmd.query::<()>(&mut conn).unwrap();
            }
            #[cfg(feature = "redis-cluster")]
            Deployment::Cluster(cluster) => {
                let mut conn = redis::cluster::ClusterClient::new(cluster.urls())
                    .unwrap()
                    .get_connection()
                    .unwrap();
                cmd.query::<()>(&mut conn).unwrap();
            }
        }
    }
}

/// Expands each named `async fn(Deployment)` into a test on one server
/// (`single::name`) and one on a cluster (`cluster::name`).
macro_rules! on_every_deployment {
    ($($name:ident),* $(,)?) => {
        mod single {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Deployment::single()).await;
                }
            )*
        }
        #[cfg(feature = "redis-cluster")]
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Deployment::cluster()).await;
                }
            )*
        }
    };
}

on_every_deployment!(
    shared_behaviour,
    concurrent_revoke_once_has_one_winner_across_replicas,
    replicas_share_sessions_and_single_use_records,
    single_use_records_and_sessions_lapse_at_their_expiry,
    replicas_see_each_others_changes_at_once,
    modify_retries_on_contention_then_gives_up,
    an_empty_store_is_seeded_once_from_the_user_file,
    replicas_seeding_at_once_seed_once,
    interleaved_changes_of_two_replicas_serialize,
);

async fn connect(server: &RedisServer, prefix: &str) -> RedisStore {
    RedisStore::connect(
        RedisConfig::new(server.url())
            .with_prefix(prefix)
            .with_command_timeout(Duration::from_millis(500)),
    )
    .await
    .unwrap()
}

/// A plain connection, to look at the keys themselves.
async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn shared_behaviour(d: Deployment) {
    suite::capabilities(Arc::new(d.store("portcullis:").await)).await;
    suite::revocations(Arc::new(d.store("portcullis:").await)).await;
    suite::revoke_once(Arc::new(d.store("once:").await)).await;
    suite::sessions(Arc::new(d.store("portcullis:").await)).await;
}

async fn concurrent_revoke_once_has_one_winner_across_replicas(d: Deployment) {
    let mut replicas: Vec<Arc<dyn RevocationStore>> = Vec::new();
    for _ in 0..4 {
        replicas.push(Arc::new(d.store("portcullis:").await));
    }
    suite::concurrent_revoke_once(replicas).await;
    let mut replicas: Vec<Arc<dyn portcullis_capabilities::SessionStore>> = Vec::new();
    for _ in 0..4 {
        replicas.push(Arc::new(d.store("portcullis:").await));
    }
    suite::concurrent_put_new(replicas).await;
}

async fn replicas_share_sessions_and_single_use_records(d: Deployment) {
    use portcullis_capabilities::SessionStore;
    let a = d.store("portcullis:").await;
    let b = d.store("portcullis:").await;
    let exp = now() + 600;
    a.put("s-1", b"\x00session\xff", exp).await.unwrap();
    assert_eq!(
        SessionStore::get(&b, "s-1").await.unwrap(),
        Some(b"\x00session\xff".to_vec())
    );
    b.delete("s-1").await.unwrap();
    assert_eq!(SessionStore::get(&a, "s-1").await.unwrap(), None);

    assert!(a.revoke_once("login-1", exp).await.unwrap());
    assert!(!b.revoke_once("login-1", exp).await.unwrap());
    assert!(b.is_revoked("login-1").await.unwrap());

    // Another prefix is another store.
    let other = d.store("other:").await;
    a.put("s-2", b"a", exp).await.unwrap();
    assert_eq!(SessionStore::get(&other, "s-2").await.unwrap(), None);
    assert!(other.revoke_once("login-1", exp).await.unwrap());
}

async fn single_use_records_and_sessions_lapse_at_their_expiry(d: Deployment) {
    use portcullis_capabilities::SessionStore;
    let store = d.store("portcullis:").await;
    let exp = now() + 1;
    assert!(store.revoke_once("login", exp).await.unwrap());
    assert!(!store.revoke_once("login", exp).await.unwrap());
    store.put("s", b"data", exp).await.unwrap();
    // Redis drops both once `exp` has passed (at most about 2 s from now).
    let deadline = Instant::now() + Duration::from_secs(4);
    while store.is_revoked("login").await.unwrap()
        || SessionStore::get(&store, "s").await.unwrap().is_some()
    {
        assert!(Instant::now() < deadline, "the entries did not expire");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(store.revoke_once("login", now() + 600).await.unwrap());
    assert!(!store.revoke_once("login", now() + 600).await.unwrap());
}

async fn replicas_see_each_others_changes_at_once(d: Deployment) {
    let a = d.store("portcullis:").await;
    let b = d.store("portcullis:").await;

    a.update("alice@example.com", Change::Add("read".into()))
        .await
        .unwrap();
    assert_eq!(
        b.get("alice@example.com").await.unwrap(),
        Some(names(&["read"]))
    );
    b.update("alice@example.com", Change::Set(names(&["write", "admin"])))
        .await
        .unwrap();
    assert_eq!(
        a.get("alice@example.com").await.unwrap(),
        Some(names(&["admin", "write"]))
    );
    a.update("alice@example.com", Change::Remove("admin".into()))
        .await
        .unwrap();
    assert_eq!(b.list().await.unwrap()["alice@example.com"], ["write"]);

    assert!(!b.is_revoked("jti-1").await.unwrap());
    a.revoke("jti-1", now() + 600).await.unwrap();
    assert!(b.is_revoked("jti-1").await.unwrap());

    // Another prefix is another store.
    let other = d.store("other:").await;
    assert_eq!(other.get("alice@example.com").await.unwrap(), None);
    assert!(other.list().await.unwrap().is_empty());
    assert!(!other.is_revoked("jti-1").await.unwrap());
}

#[tokio::test]
async fn keys_follow_the_documented_layout() {
    use portcullis_capabilities::SessionStore;
    let server = RedisServer::start();
    let store = connect(&server, "app:").await;
    store
        .update("alice@example.com", Change::Set(names(&["read", "write"])))
        .await
        .unwrap();
    store
        .update("bob@example.com", Change::Set(vec![]))
        .await
        .unwrap();
    let expires = now() + 600;
    store.revoke("jti-9", expires).await.unwrap();

    let mut conn = raw(&server).await;
    let mut users: Vec<String> = redis::cmd("SMEMBERS")
        .arg("app:users")
        .query_async(&mut conn)
        .await
        .unwrap();
    users.sort();
    assert_eq!(users, ["alice@example.com", "bob@example.com"]);
    let mut caps: Vec<String> = redis::cmd("SMEMBERS")
        .arg("app:caps:alice@example.com")
        .query_async(&mut conn)
        .await
        .unwrap();
    caps.sort();
    assert_eq!(caps, ["read", "write"]);
    let bob_exists: bool = redis::cmd("EXISTS")
        .arg("app:caps:bob@example.com")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!bob_exists, "a user with no capability has no set");
    let ttl: i64 = redis::cmd("TTL")
        .arg("app:revoked:jti-9")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((590..=600).contains(&ttl), "ttl {ttl}");

    // `revoke_once` and sessions: absolute expiries, the exact bytes.
    assert!(store.revoke_once("login-9", expires + 5).await.unwrap());
    let data = b"\x00\x01\xfe\xff bytes \r\n".to_vec();
    store.put("sess-9", &data, expires + 7).await.unwrap();
    for (key, at) in [
        ("app:revoked:login-9", expires + 5),
        ("app:session:sess-9", expires + 7),
    ] {
        let expire_time: u64 = redis::cmd("EXPIRETIME")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(expire_time, at, "{key}");
    }
    let stored: Vec<u8> = redis::cmd("GET")
        .arg("app:session:sess-9")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored, data);
    store.delete("sess-9").await.unwrap();
    let exists: bool = redis::cmd("EXISTS")
        .arg("app:session:sess-9")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!exists);

    // An absurdly distant expiry is still accepted.
    assert!(store.revoke_once("login-far", u64::MAX).await.unwrap());
    store.put("sess-far", b"x", u64::MAX).await.unwrap();
    store.revoke("jti-far", u64::MAX).await.unwrap();
    assert!(store.is_revoked("jti-far").await.unwrap());
}

/// Runs `call`, checking that it fails as `Unavailable` well within 3 s.
async fn fails_fast<T: std::fmt::Debug>(what: &str, call: impl Future<Output = Result<T, Error>>) {
    let started = Instant::now();
    let result = call.await;
    let took = started.elapsed();
    let e = result.expect_err(what);
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{what}: {e}");
    assert_eq!(e.status(), 503);
    assert!(took < Duration::from_secs(3), "{what} took {took:?}");
}

#[tokio::test]
async fn a_dead_redis_fails_closed_and_fast_then_recovers() {
    let mut server = RedisServer::start();
    let store = connect(&server, "portcullis:").await;
    store
        .update("alice@example.com", Change::Add("read".into()))
        .await
        .unwrap();
    store.revoke("jti-1", now() + 600).await.unwrap();

    server.kill();
    let started = Instant::now();
    fails_fast("get", store.get("alice@example.com")).await;
    fails_fast("list", store.list()).await;
    fails_fast(
        "update",
        store.update("alice@example.com", Change::Add("write".into())),
    )
    .await;
    fails_fast("revoke", store.revoke("jti-2", now() + 600)).await;
    fails_fast("is_revoked", store.is_revoked("jti-1")).await;
    assert!(started.elapsed() < Duration::from_secs(5));

    // A new server on the same port (empty: nothing was saved) is used again.
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match store.get("alice@example.com").await {
            Ok(found) => {
                assert_eq!(found, None);
                break;
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Unavailable);
                assert!(Instant::now() < deadline, "no recovery: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test]
async fn a_dead_redis_fails_sessions_and_single_use_records_closed() {
    use portcullis_capabilities::SessionStore;
    let mut server = RedisServer::start();
    let store = connect(&server, "portcullis:").await;
    store.put("s-1", b"data", now() + 600).await.unwrap();
    assert!(store.revoke_once("login-1", now() + 600).await.unwrap());

    server.kill();
    fails_fast("session get", SessionStore::get(&store, "s-1")).await;
    fails_fast("session put", store.put("s-2", b"data", now() + 600)).await;
    fails_fast("session delete", store.delete("s-1")).await;
    fails_fast("revoke_once", store.revoke_once("login-2", now() + 600)).await;
}

#[tokio::test]
async fn an_unreachable_redis_fails_to_connect_fast() {
    let config = RedisConfig::new(format!("redis://127.0.0.1:{}/", free_port()))
        .with_command_timeout(Duration::from_millis(500));
    fails_fast("connect", RedisStore::connect(config)).await;
}

#[tokio::test]
async fn a_zero_timeout_is_a_config_error() {
    let config = RedisConfig::new("redis://127.0.0.1:1/").with_command_timeout(Duration::ZERO);
    let e = RedisStore::connect(config).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
}

/// A conditional change re-reads and re-checks when another change lands
/// between its read and its write, and gives up with a 503 when that keeps
/// happening; the check always sees the state the write is compared with.
async fn modify_retries_on_contention_then_gives_up(d: Deployment) {
    use std::sync::Mutex;
    let store = d.store("cas:").await;
    store
        .update("alice@example.com", Change::Set(names(&["read"])))
        .await
        .unwrap();
    let d = Arc::new(d);
    let key = d.caps_key("cas:", "alice@example.com");

    // Another writer changes the user right after each check, `interfere` times.
    let run = |interfere: usize, tag: &'static str| {
        let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let d = Arc::clone(&d);
        let key = key.clone();
        let check_seen = Arc::clone(&seen);
        let check = move |before: Option<&[String]>| {
            let mut seen = check_seen.lock().unwrap();
            seen.push(before.unwrap_or_default().to_vec());
            if seen.len() <= interfere {
                d.command(
                    redis::cmd("SADD")
                        .arg(&key)
                        .arg(format!("{tag}-{}", seen.len())),
                );
            }
            Ok(())
        };
        (seen, check)
    };

    let (seen, check) = run(2, "other");
    let modified = store
        .modify("alice@example.com", Change::Add("write".into()), &check)
        .await
        .unwrap();
    // Third attempt: it saw both interfering writes, and kept them.
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!(
        modified.before,
        Some(names(&["other-1", "other-2", "read"]))
    );
    assert_eq!(
        modified.after,
        Some(names(&["other-1", "other-2", "read", "write"]))
    );

    let (seen, check) = run(usize::MAX, "busy");
    let e = store
        .modify("alice@example.com", Change::Remove("read".into()), &check)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert_eq!(seen.lock().unwrap().len(), 8, "bounded attempts");
    // Nothing was withdrawn.
    assert!(
        store
            .get("alice@example.com")
            .await
            .unwrap()
            .unwrap()
            .contains(&"read".to_owned())
    );

    // A refusing check writes nothing and its error comes back as is.
    let refuse = |_: Option<&[String]>| Err(Error::forbidden("no"));
    let e = store
        .modify("alice@example.com", Change::Set(vec![]), &refuse)
        .await
        .unwrap_err();
    assert_eq!(e.status(), 403);
    assert!(
        !store
            .get("alice@example.com")
            .await
            .unwrap()
            .unwrap()
            .is_empty()
    );
}

/// Writes a user file in a temporary directory.
fn user_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("caps.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// The first administrator on Redis: the configured user file seeds an
/// empty store, once; a store in use, or seeded before, is never
/// overwritten; a broken user file stops the start and writes nothing.
async fn an_empty_store_is_seeded_once_from_the_user_file(d: Deployment) {
    let timeout = Duration::from_millis(500);
    let (_dir, path) = user_file(
        "admin@example.com: [admin]\nbob@example.com: [read, write]\nidle@example.com: []\n",
    );

    // A broken user file: a configuration error, and nothing written.
    let (_bad_dir, bad) = user_file("admin@example.com: [admin\n");
    let config = d.config("seed:", timeout);
    let e = config.open_stores_seeded(Some(&bad)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    let store = d.store("seed:").await;
    assert!(store.list().await.unwrap().is_empty());

    let stores = config.open_stores_seeded(Some(&path)).await.unwrap();
    let expected = BTreeMap::from([
        ("admin@example.com".to_owned(), names(&["admin"])),
        ("bob@example.com".to_owned(), names(&["read", "write"])),
        ("idle@example.com".to_owned(), vec![]),
    ]);
    assert_eq!(stores.capabilities.list().await.unwrap(), expected);

    // The store changes; seeding again (a restart) overwrites nothing, even
    // once every user is gone.
    store
        .update("bob@example.com", Change::Remove("write".into()))
        .await
        .unwrap();
    let again = config.open_stores_seeded(Some(&path)).await.unwrap();
    assert_eq!(
        again.capabilities.get("bob@example.com").await.unwrap(),
        Some(names(&["read"]))
    );
    d.command(redis::cmd("DEL").arg(d.users_key("seed:")));
    assert!(store.list().await.unwrap().is_empty());
    assert!(!store.seed(&expected).await.unwrap(), "seeded twice");
    assert!(store.list().await.unwrap().is_empty());

    // A store in use, never seeded, is not overwritten either.
    let used = d.store("used:").await;
    used.update("carol@example.com", Change::Add("read".into()))
        .await
        .unwrap();
    assert!(!used.seed(&expected).await.unwrap());
    assert_eq!(used.list().await.unwrap().len(), 1);

    // A missing or empty user file seeds nothing, and leaves seeding possible.
    let fresh = d.config("fresh:", timeout);
    let (_empty_dir, empty) = user_file("");
    let stores = fresh.open_stores_seeded(Some(&empty)).await.unwrap();
    assert!(stores.capabilities.list().await.unwrap().is_empty());
    let stores = fresh
        .open_stores_seeded(Some(&empty.with_file_name("missing.yaml")))
        .await
        .unwrap();
    assert!(stores.capabilities.list().await.unwrap().is_empty());
    let stores = fresh.open_stores_seeded(Some(&path)).await.unwrap();
    assert_eq!(stores.capabilities.list().await.unwrap(), expected);
}

/// Several replicas starting at once on an empty store: exactly one seeds,
/// and the store holds the user file's content once.
async fn replicas_seeding_at_once_seed_once(d: Deployment) {
    let d = Arc::new(d);
    let users: BTreeMap<String, Vec<String>> = (0..50)
        .map(|i| (format!("user-{i:02}@example.com"), vec![format!("cap-{i}")]))
        .collect();
    let mut replicas = Vec::new();
    for _ in 0..6 {
        replicas.push(d.store("race:").await);
    }
    let tasks: Vec<_> = replicas
        .into_iter()
        .map(|store| {
            let users = users.clone();
            tokio::spawn(async move { store.seed(&users).await.unwrap() })
        })
        .collect();
    let mut seeded = 0;
    for task in tasks {
        seeded += usize::from(task.await.unwrap());
    }
    assert_eq!(seeded, 1, "exactly one replica seeds");
    assert_eq!(d.store("race:").await.list().await.unwrap(), users);
}

/// Two replicas apply hundreds of interleaved changes to the same users:
/// the end state is one a serial order of the acknowledged changes gives.
async fn interleaved_changes_of_two_replicas_serialize(d: Deployment) {
    let a: Arc<dyn CapabilityStore> = Arc::new(d.store("serial:").await);
    let b: Arc<dyn CapabilityStore> = Arc::new(d.store("serial:").await);
    suite::interleaved_changes_serialize(vec![a, b]).await;
}
