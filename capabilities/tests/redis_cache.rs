//! The Redis store's local cache against real `redis-server` processes, on
//! one server and on a Redis Cluster (`on_every_deployment!`): a replica
//! sees its own change at once and another replica's once the invalidation
//! arrives; a lost or silent invalidation channel drops the cache and
//! reads go to Redis; a read in flight never caches an answer older than
//! an invalidation; a restarted Redis serves no grant it lost.
//!
//! Nothing here asserts a duration: what must happen "eventually" is
//! polled under a generous guard, which fails the test only if it never
//! happens (a stale entry that stays).

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_capabilities::{CapabilityStore, Change, LocalCacheConfig, RedisConfig, RedisStore};
use portcullis_core::ErrorKind;

use crate::redis_backend::Deployment;
use crate::suite::names;
use crate::support::RedisServer;

/// Far longer than any invalidation or reconnection takes on a loaded machine.
const GUARD: Duration = Duration::from_secs(20);

on_every_deployment!(
    a_replica_sees_its_own_change_at_once_and_another_replicas_soon,
    a_lost_channel_drops_the_cache_and_reads_go_to_redis,
    a_silent_channel_counts_as_lost,
    reads_in_flight_never_cache_an_invalidated_answer,
);

/// Polls `condition` until it holds; panics with `what` past the guard.
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(start.elapsed() < GUARD, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A replica whose cache is live (its channel carried a heartbeat back).
async fn live_replica(d: &Deployment, prefix: &str) -> RedisStore {
    let store = d.store(prefix).await;
    eventually("the cache becomes live", || {
        let live = store.cache_is_live();
        async move { live }
    })
    .await;
    store
}

async fn read(store: &RedisStore, user: &str) -> Option<Vec<String>> {
    CapabilityStore::get(store, user).await.unwrap()
}

async fn a_replica_sees_its_own_change_at_once_and_another_replicas_soon(d: Deployment) {
    let user = "alice@example.com";
    let a = live_replica(&d, "cache:").await;
    let b = live_replica(&d, "cache:").await;
    assert_eq!(read(&b, user).await, None);
    assert_eq!(read(&b, user).await, None);
    let stats = b.cache_stats().unwrap();
    assert!(stats.hits >= 1, "the second read is a hit: {stats:?}");

    a.update(user, Change::Add("read".into())).await.unwrap();
    assert_eq!(
        read(&a, user).await,
        Some(names(&["read"])),
        "the writer at once"
    );
    eventually("the other replica sees the grant", || async {
        read(&b, user).await == Some(names(&["read"]))
    })
    .await;

    b.update(user, Change::Remove("read".into())).await.unwrap();
    assert_eq!(read(&b, user).await, Some(vec![]), "the writer at once");
    eventually("the other replica sees the withdrawal", || async {
        read(&a, user).await == Some(vec![])
    })
    .await;
    assert!(a.cache_stats().unwrap().invalidations >= 1);
}

/// Grants `read` to `user` behind every store's back: no invalidation is
/// published, so only a replica reading Redis sees it.
fn grant_silently(d: &Deployment, prefix: &str, user: &str) {
    d.command(redis::cmd("SADD").arg(d.caps_key(prefix, user)).arg("read"));
    d.command(redis::cmd("SADD").arg(d.users_key(prefix)).arg(user));
}

async fn a_lost_channel_drops_the_cache_and_reads_go_to_redis(d: Deployment) {
    let user = "bob@example.com";
    let b = live_replica(&d, "lost:").await;
    b.update(user, Change::Set(vec![])).await.unwrap();
    assert_eq!(read(&b, user).await, Some(vec![]));
    assert_eq!(read(&b, user).await, Some(vec![]), "cached");

    d.each_node(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    grant_silently(&d, "lost:", user);
    // Without dropping the cache on the loss, the silent grant would never
    // show: nothing invalidates it.
    eventually(
        "the replica reads Redis once its channel is lost",
        || async { read(&b, user).await == Some(names(&["read"])) },
    )
    .await;
    assert!(b.cache_stats().unwrap().losses >= 1);

    // The channel comes back, fresh: changes through a replica reach it again.
    eventually("the channel is back", || {
        let live = b.cache_is_live();
        async move { live }
    })
    .await;
    assert_eq!(read(&b, user).await, Some(names(&["read"])));
    let a = d.store("lost:").await;
    a.update(user, Change::Add("write".into())).await.unwrap();
    eventually("the other replica sees the change", || async {
        read(&b, user).await == Some(names(&["read", "write"]))
    })
    .await;
}

async fn a_silent_channel_counts_as_lost(d: Deployment) {
    let user = "carol@example.com";
    let config = LocalCacheConfig {
        max_entries: 100,
        staleness_bound: Duration::from_millis(300),
    };
    let b = d.store_with_cache("silent:", config).await;
    eventually("the cache becomes live", || {
        let live = b.cache_is_live();
        async move { live }
    })
    .await;
    b.update(user, Change::Add("read".into())).await.unwrap();
    assert_eq!(read(&b, user).await, Some(names(&["read"])));
    // Writes (heartbeats included) wait; the subscription stays open and
    // silent, reads are still answered.
    d.each_node(&["CLIENT", "PAUSE", "15000", "WRITE"]);
    eventually("a silent channel stops the cache", || {
        let live = b.cache_is_live();
        async move { !live }
    })
    .await;
    // Not from the cache: Redis answers (or, its transactions paused, the
    // read fails closed).
    match CapabilityStore::get(&b, user).await {
        Ok(found) => assert_eq!(found, Some(names(&["read"]))),
        Err(e) => assert_eq!(e.kind(), ErrorKind::Unavailable),
    }
    assert_eq!(b.cache_stats().unwrap().hits, 0);
    d.each_node(&["CLIENT", "UNPAUSE"]);
    eventually("the channel is back", || {
        let live = b.cache_is_live();
        async move { live }
    })
    .await;
}

/// Readers keep reading one user on one replica while another replica
/// changes it, round after round; after each change the reader must come
/// to see it. A read that cached its answer after an invalidation it
/// missed would serve the previous round's answer for ever, and that
/// round would never converge.
async fn reads_in_flight_never_cache_an_invalidated_answer(d: Deployment) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let user = "dave@example.com";
    let writer = live_replica(&d, "race:").await;
    let reader = Arc::new(live_replica(&d, "race:").await);
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let reader = Arc::clone(&reader);
        let stop = Arc::clone(&stop);
        readers.push(tokio::spawn(async move {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                CapabilityStore::get(&*reader, user).await.unwrap();
                reads += 1;
                tokio::task::yield_now().await;
            }
            reads
        }));
    }
    for round in 0..150 {
        let expected = names(&[&format!("c{round}")]);
        writer
            .update(user, Change::Set(expected.clone()))
            .await
            .unwrap();
        eventually("the reader converges on the round's change", || async {
            read(&reader, user).await.as_ref() == Some(&expected)
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut reads = 0;
    for task in readers {
        reads += task.await.unwrap();
    }
    assert!(reads > 0);
    let stats = reader.cache_stats().unwrap();
    assert!(stats.hits > 0 && stats.invalidations >= 150, "{stats:?}");
}

/// Redis restarted empty: the grant it lost is never served from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_redis_serves_no_lost_grant() {
    let user = "erin@example.com";
    let mut server = RedisServer::start();
    let store = RedisStore::connect(
        RedisConfig::new(server.url()).with_command_timeout(Duration::from_millis(500)),
    )
    .await
    .unwrap();
    eventually("the cache becomes live", || {
        let live = store.cache_is_live();
        async move { live }
    })
    .await;
    store
        .update(user, Change::Add("admin".into()))
        .await
        .unwrap();
    assert_eq!(read(&store, user).await, Some(names(&["admin"])));

    server.kill();
    // While Redis is down: refused (503), or the answer cached before the
    // loss was seen (no change could have been made since).
    match CapabilityStore::get(&store, user).await {
        Err(e) => assert_eq!(e.kind(), ErrorKind::Unavailable),
        Ok(found) => assert_eq!(found, Some(names(&["admin"]))),
    }
    eventually("the dead channel stops the cache", || {
        let live = store.cache_is_live();
        async move { !live }
    })
    .await;
    let down = CapabilityStore::get(&store, user).await.unwrap_err();
    assert_eq!(down.kind(), ErrorKind::Unavailable);

    server.restart();
    // The restarted Redis holds nothing (no persistence): the grant is gone.
    eventually("the restarted Redis answers", || async {
        CapabilityStore::get(&store, user).await.is_ok()
    })
    .await;
    assert_eq!(read(&store, user).await, None);
    eventually("the channel is back", || {
        let live = store.cache_is_live();
        async move { live }
    })
    .await;
    assert_eq!(read(&store, user).await, None);
    assert_eq!(read(&store, user).await, None);
}

/// A disabled cache sends every read to Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_cache_reads_redis_every_time() {
    let user = "frank@example.com";
    let d = Deployment::single();
    let store = d
        .store_with_cache("off:", LocalCacheConfig::disabled())
        .await;
    assert!(!store.cache_is_live());
    assert_eq!(store.cache_stats(), None);
    assert_eq!(read(&store, user).await, None);
    grant_silently(&d, "off:", user);
    assert_eq!(read(&store, user).await, Some(names(&["read"])));
}

#[tokio::test]
async fn a_too_short_staleness_bound_is_a_config_error() {
    let server = RedisServer::start();
    let config = RedisConfig::new(server.url()).with_local_cache(LocalCacheConfig {
        max_entries: 10,
        staleness_bound: Duration::from_millis(10),
    });
    let err = RedisStore::connect(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

/// The cluster master holding the capability keys restarted empty: while it
/// is down the cache stops; once it is back, the grant it lost is never
/// served from the cache, and the channel comes back on it.
#[cfg(feature = "redis-cluster")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_cluster_master_serves_no_lost_grant() {
    let user = "grace@example.com";
    let mut cluster = portcullis_testing::RedisCluster::start();
    let store = RedisStore::connect_cluster(
        portcullis_capabilities::RedisClusterConfig::new(cluster.urls())
            .with_command_timeout(Duration::from_millis(500)),
    )
    .await
    .unwrap();
    eventually("the cache becomes live", || {
        let live = store.cache_is_live();
        async move { live }
    })
    .await;
    store
        .update(user, Change::Add("admin".into()))
        .await
        .unwrap();
    assert_eq!(read(&store, user).await, Some(names(&["admin"])));

    let caps = cluster.node_of("portcullis:{caps}users");
    cluster.nodes_mut()[caps].kill();
    eventually("the dead channel stops the cache", || {
        let live = store.cache_is_live();
        async move { !live }
    })
    .await;
    let down = CapabilityStore::get(&store, user).await.unwrap_err();
    assert_eq!(down.kind(), ErrorKind::Unavailable);

    cluster.nodes_mut()[caps].restart();
    eventually("the restarted master answers", || async {
        CapabilityStore::get(&store, user).await.is_ok()
    })
    .await;
    assert_eq!(read(&store, user).await, None, "the lost grant");
    eventually("the channel is back", || {
        let live = store.cache_is_live();
        async move { live }
    })
    .await;
    assert_eq!(read(&store, user).await, None);
    let other = RedisStore::connect_cluster(
        portcullis_capabilities::RedisClusterConfig::new(cluster.urls())
            .with_command_timeout(Duration::from_millis(500)),
    )
    .await
    .unwrap();
    other
        .update(user, Change::Add("read".into()))
        .await
        .unwrap();
    eventually(
        "a change through another replica reaches it again",
        || async { read(&store, user).await == Some(names(&["read"])) },
    )
    .await;
}
