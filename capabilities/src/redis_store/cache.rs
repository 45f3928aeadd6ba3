//! The local cache of capability reads that Redis invalidates.
//!
//! Every change of a user's capabilities `PUBLISH`es the user's name on the
//! store's invalidation channel, in the same Lua script that writes it, so a
//! change and its invalidation are one atomic step on the server. Each
//! replica holds one subscription on the node that runs those scripts (the
//! server, or the master of the `{caps}` hash slot) and drops what it is
//! told to drop.
//!
//! The subscription is trusted only while it is seen to work: every
//! heartbeat interval the replica publishes a heartbeat of its own through
//! the same path as the changes (a script on the same node), and the cache
//! is live until `sent + bound` of the latest own heartbeat it received.
//! Redis delivers the messages of one node to one subscriber in order, so
//! a heartbeat received proves that every change run before it was
//! received too: an entry is never served more than `bound` after a change
//! that made it stale, even when the subscription stalls silently. A
//! subscription that fails or stays silent past the bound is dropped with
//! the whole cache; reads go to Redis (and nothing is cached) until a new
//! subscription has carried a heartbeat back.
//!
//! No read may insert an answer older than an invalidation it missed: a
//! read takes the generation before asking Redis and inserts only if no
//! invalidation (and no loss or new subscription) bumped it meanwhile.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use ::redis::{Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Pipeline, Value};
use futures_util::StreamExt as _;
use portcullis_core::{Error, Secret};

use super::Connection;

/// The largest number of users a replica caches unless configured.
pub const DEFAULT_CACHE_ENTRIES: usize = 10_000;

/// The longest a cached answer may outlive a change unless configured: the
/// liveness bound of the invalidation channel.
pub const DEFAULT_STALENESS_BOUND: Duration = Duration::from_secs(1);

/// How many heartbeats a replica sends per staleness bound.
const HEARTBEATS_PER_BOUND: u32 = 5;

/// Publishes `ARGV[2]` on the channel `ARGV[1]`, on the node of `KEYS[1]`
/// (the users set), the node every change runs on.
const HEARTBEAT: &str = "redis.call('PUBLISH', ARGV[1], ARGV[2]) return 1";

/// How a [`RedisStore`](crate::RedisStore) caches capability reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalCacheConfig {
    /// The most users cached (0: no cache, every read goes to Redis). When
    /// full, the cache starts over empty.
    pub max_entries: usize,
    /// The longest a cached answer may be served after a change made
    /// through another replica, when the invalidation channel is lost
    /// silently; normally an invalidation arrives within milliseconds.
    pub staleness_bound: Duration,
}

impl Default for LocalCacheConfig {
    fn default() -> Self {
        Self {
            max_entries: DEFAULT_CACHE_ENTRIES,
            staleness_bound: DEFAULT_STALENESS_BOUND,
        }
    }
}

impl LocalCacheConfig {
    /// No cache: every read goes to Redis.
    pub fn disabled() -> Self {
        Self {
            max_entries: 0,
            ..Self::default()
        }
    }

    pub(super) fn check(&self) -> Result<(), Error> {
        if self.max_entries > 0 && self.staleness_bound < Duration::from_millis(50) {
            return Err(Error::config(
                "the staleness bound of the Redis store's local cache must be at least 50 ms",
            ));
        }
        Ok(())
    }
}

/// What the cache counts, for a look at its effect (and the load harness).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads that went to Redis.
    pub misses: u64,
    /// Invalidations received from the channel (each change of any replica).
    pub invalidations: u64,
    /// Times the channel was lost (failed or silent past the bound) and
    /// the cache dropped.
    pub losses: u64,
}

/// The cached capability reads of one store.
pub(super) struct LocalCache {
    entries: Mutex<HashMap<String, Option<Vec<String>>>>,
    /// Bumped (under the `entries` lock) by every invalidation, loss and
    /// new subscription.
    generation: AtomicU64,
    /// Milliseconds since `base` until which the channel is trusted (0: not).
    live_until_ms: AtomicU64,
    base: Instant,
    max_entries: usize,
    bound: Duration,
    /// This replica's heartbeat id.
    replica: u64,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
    losses: AtomicU64,
    /// Called with each user invalidated by the channel (tests and the load
    /// harness measure the delay with it).
    observer: Mutex<Option<Observer>>,
}

/// Called with each user whose cached capabilities the invalidation
/// channel drops: see
/// [`RedisStore::observe_invalidations`](crate::RedisStore::observe_invalidations).
pub type InvalidationObserver = Arc<dyn Fn(&str) + Send + Sync>;
type Observer = InvalidationObserver;

impl LocalCache {
    pub(super) fn new(config: LocalCacheConfig) -> Self {
        let mut id = [0u8; 8];
        aws_lc_rs::rand::fill(&mut id).unwrap_or_default();
        Self {
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            live_until_ms: AtomicU64::new(0),
            base: Instant::now(),
            max_entries: config.max_entries,
            bound: config.staleness_bound,
            replica: u64::from_le_bytes(id),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            losses: AtomicU64::new(0),
            observer: Mutex::new(None),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<Vec<String>>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the channel is trusted now.
    pub(super) fn is_live(&self) -> bool {
        self.now_ms() < self.live_until_ms.load(Ordering::SeqCst)
    }

    /// The cached answer for `user`, if the channel is trusted and it holds one.
    pub(super) fn get(&self, user: &str) -> Option<Option<Vec<String>>> {
        if !self.is_live() {
            return None;
        }
        let found = self.lock().get(user).cloned();
        match &found {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        found
    }

    /// The generation to hand back to [`insert`](Self::insert), taken
    /// before asking Redis.
    pub(super) fn stamp(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Caches `value` for `user`, read from Redis after `stamp` was
    /// taken, unless anything was invalidated since or the channel is not
    /// trusted.
    pub(super) fn insert(&self, stamp: u64, user: &str, value: Option<Vec<String>>) {
        let mut entries = self.lock();
        if self.generation.load(Ordering::SeqCst) != stamp || !self.is_live() {
            return;
        }
        if entries.len() >= self.max_entries && !entries.contains_key(user) {
            entries.clear();
        }
        entries.insert(user.to_owned(), value);
    }

    /// Drops `user`'s entry (a change, here or on another replica).
    pub(super) fn invalidate(&self, user: &str) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.remove(user);
    }

    /// Drops every entry.
    pub(super) fn clear(&self) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.clear();
    }

    /// The channel is lost: nothing is served or cached until a new one
    /// carries a heartbeat back.
    fn lose(&self) {
        self.live_until_ms.store(0, Ordering::SeqCst);
        self.clear();
    }

    pub(super) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            losses: self.losses.load(Ordering::Relaxed),
        }
    }

    pub(super) fn set_observer(&self, observer: Option<Observer>) {
        *self.observer.lock().unwrap_or_else(PoisonError::into_inner) = observer;
    }

    /// Handles one message of the channel: `u{user}` (a change drops one
    /// user), `*` (a seed drops everything), `h{replica}:{sent_ms}` (a
    /// heartbeat). `since_ms` is when the current
    /// subscription was confirmed. Answers the send time of an own heartbeat.
    fn receive(&self, payload: &[u8], since_ms: u64) -> Option<u64> {
        match payload.split_first() {
            Some((b'u', user)) => {
                let user = String::from_utf8_lossy(user);
                self.invalidate(&user);
                self.invalidations.fetch_add(1, Ordering::Relaxed);
                let observer = self
                    .observer
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                if let Some(observer) = observer {
                    observer(&user);
                }
                None
            }
            Some((b'*', _)) => {
                self.clear();
                self.invalidations.fetch_add(1, Ordering::Relaxed);
                None
            }
            Some((b'h', rest)) => {
                let text = std::str::from_utf8(rest).ok()?;
                let (replica, sent) = text.split_once(':')?;
                let replica = u64::from_str_radix(replica, 16).ok()?;
                let sent: u64 = sent.parse().ok()?;
                if replica != self.replica || sent < since_ms {
                    return None;
                }
                let bound = u64::try_from(self.bound.as_millis()).unwrap_or(u64::MAX);
                self.live_until_ms
                    .fetch_max(sent.saturating_add(bound), Ordering::SeqCst);
                Some(sent)
            }
            _ => None,
        }
    }
}

/// Where the subscription connects and how the heartbeats are sent.
pub(super) struct Channel {
    /// The store's connection (heartbeats go through it).
    pub(super) conn: Connection,
    /// The node URLs: one server, or some nodes of a cluster.
    pub(super) urls: Vec<Secret>,
    pub(super) cluster: bool,
    /// The channel's name.
    pub(super) name: String,
    /// The users set's key: heartbeats run on its node.
    pub(super) users_key: String,
    pub(super) timeout: Duration,
}

/// Starts the task that keeps the subscription of `cache`; it ends when
/// the store (the last strong reference to `cache`) is dropped.
pub(super) fn spawn(cache: &Arc<LocalCache>, channel: Channel) {
    let weak = Arc::downgrade(cache);
    tokio::spawn(watch(weak, channel));
}

async fn watch(cache: Weak<LocalCache>, channel: Channel) {
    let interval = match cache.upgrade() {
        Some(cache) => cache.bound / HEARTBEATS_PER_BOUND,
        None => return,
    };
    loop {
        let followed = match tokio::time::timeout(channel.timeout, subscribe(&channel)).await {
            Ok(Ok((pubsub, owner))) => {
                follow(&cache, &channel, pubsub, owner, interval).await;
                true
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "the Redis invalidation channel could not subscribe");
                false
            }
            Err(_) => {
                tracing::debug!("subscribing to the Redis invalidation channel timed out");
                false
            }
        };
        let Some(strong) = cache.upgrade() else {
            return;
        };
        if followed {
            strong.losses.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "the Redis invalidation channel was lost: the local cache is dropped and \
                 capability reads go to Redis until it is back"
            );
        }
        strong.lose();
        drop(strong);
        tokio::time::sleep(interval).await;
    }
}

/// The master a cluster subscription listens on.
type Owner = Option<(String, u16)>;

/// Opens a subscription to the channel on the node that runs the changes
/// (and, on a cluster, names that node).
async fn subscribe(channel: &Channel) -> Result<(::redis::aio::PubSub, Owner), Error> {
    let first = channel
        .urls
        .first()
        .ok_or_else(|| Error::config("no Redis URL"))?;
    let mut info: ConnectionInfo = first
        .expose()
        .into_connection_info()
        .map_err(|e| Error::config(format!("the Redis URL is invalid ({:?})", e.kind())))?;
    let mut owner = None;
    if channel.cluster {
        let (host, port) = slot_owner(channel).await?;
        owner = Some((host.clone(), port));
        let addr = match info.addr().clone() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host,
                port,
                insecure,
                tls_params,
            },
            _ => ConnectionAddr::Tcp(host, port),
        };
        info = info.set_addr(addr);
    }
    let client = Client::open(info).map_err(|e| {
        Error::unavailable("the Redis invalidation channel could not connect").with_source(e)
    })?;
    let mut pubsub = client.get_async_pubsub().await.map_err(|e| {
        Error::unavailable("the Redis invalidation channel could not connect").with_source(e)
    })?;
    pubsub.subscribe(&channel.name).await.map_err(|e| {
        Error::unavailable("the Redis invalidation channel could not subscribe").with_source(e)
    })?;
    Ok((pubsub, owner))
}

/// The address of the master that holds the users set's hash slot.
async fn slot_owner(channel: &Channel) -> Result<(String, u16), Error> {
    let mut pipe = Pipeline::new();
    pipe.cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(&channel.users_key)
        .cmd("CLUSTER")
        .arg("SLOTS");
    let (slot, slots): (i64, Vec<Value>) = channel
        .conn
        .query(&pipe)
        .await
        .map_err(|e| Error::unavailable("Redis CLUSTER SLOTS failed").with_source(e))?;
    for range in slots {
        let Value::Array(parts) = range else { continue };
        let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(master))) =
            (parts.first(), parts.get(1), parts.get(2))
        else {
            continue;
        };
        if !(*start..=*end).contains(&slot) {
            continue;
        }
        let host = match master.first() {
            Some(Value::BulkString(host)) => String::from_utf8_lossy(host).into_owned(),
            Some(Value::SimpleString(host)) => host.clone(),
            _ => continue,
        };
        let Some(Value::Int(port)) = master.get(1) else {
            continue;
        };
        let port = u16::try_from(*port)
            .map_err(|_| Error::unavailable("Redis CLUSTER SLOTS answered a bad port"))?;
        return Ok((host, port));
    }
    Err(Error::unavailable(
        "no Redis Cluster master holds the capability keys' slot",
    ))
}

/// Follows one subscription until it fails, stays silent past the bound,
/// or (on a cluster) the changes' slot moves to another master.
async fn follow(
    cache: &Weak<LocalCache>,
    channel: &Channel,
    pubsub: ::redis::aio::PubSub,
    owner: Owner,
    interval: Duration,
) {
    let (since_ms, bound, replica) = {
        let Some(cache) = cache.upgrade() else { return };
        // Changes made before this subscription were not seen: start fresh.
        cache.clear();
        (cache.now_ms(), cache.bound, cache.replica)
    };
    let mut messages = pubsub.into_on_message();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Silent past this instant: lost.
    let mut deadline = tokio::time::Instant::now() + bound;
    // Set when a check finds the slot on another master: the changes would
    // reach this subscription only through the cluster bus.
    let moved = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tick_count: u32 = 0;
    loop {
        if moved.load(Ordering::SeqCst) {
            return;
        }
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else {
                    return;
                };
                let Some(cache) = cache.upgrade() else { return };
                if let Some(sent) = cache.receive(message.get_payload_bytes(), since_ms) {
                    let sent_at = cache.base + Duration::from_millis(sent);
                    deadline = deadline.max(tokio::time::Instant::from_std(sent_at) + bound);
                }
            }
            _ = ticks.tick() => {
                let Some(cache) = cache.upgrade() else { return };
                let mut pipe = Pipeline::new();
                pipe.cmd("EVAL")
                    .arg(HEARTBEAT)
                    .arg(1)
                    .arg(&channel.users_key)
                    .arg(&channel.name)
                    .arg(format!("h{replica:016x}:{}", cache.now_ms()));
                let conn = channel.conn.clone();
                let timeout = channel.timeout;
                tokio::spawn(async move {
                    let sent = tokio::time::timeout(timeout, conn.query::<Value>(&pipe)).await;
                    if !matches!(sent, Ok(Ok(_))) {
                        tracing::debug!("a heartbeat on the Redis invalidation channel failed");
                    }
                });
                tick_count = tick_count.wrapping_add(1);
                if let Some(owner) = owner.clone().filter(|_| tick_count.is_multiple_of(HEARTBEATS_PER_BOUND)) {
                    let probe = Channel {
                        conn: channel.conn.clone(),
                        urls: Vec::new(),
                        cluster: true,
                        name: String::new(),
                        users_key: channel.users_key.clone(),
                        timeout,
                    };
                    let moved = Arc::clone(&moved);
                    tokio::spawn(async move {
                        if let Ok(Ok(now)) = tokio::time::timeout(timeout, slot_owner(&probe)).await
                            && now != owner
                        {
                            tracing::debug!("the capability keys' slot moved to another master");
                            moved.store(true, Ordering::SeqCst);
                        }
                    });
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!(bound = ?bound, "the Redis invalidation channel was silent past the staleness bound");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(names: &[&str]) -> Option<Vec<String>> {
        Some(names.iter().map(|n| (*n).to_owned()).collect())
    }

    /// A cache whose channel just carried its own heartbeat back.
    fn live_cache(max_entries: usize) -> LocalCache {
        let cache = LocalCache::new(LocalCacheConfig {
            max_entries,
            staleness_bound: Duration::from_secs(3600),
        });
        let sent = cache.now_ms();
        let heartbeat = format!("h{:016x}:{sent}", cache.replica);
        assert_eq!(cache.receive(heartbeat.as_bytes(), 0), Some(sent));
        assert!(cache.is_live());
        cache
    }

    #[test]
    fn a_read_started_before_an_invalidation_caches_nothing() {
        let cache = live_cache(10);
        let stamp = cache.stamp();
        // The read's answer is on its way when the change's invalidation lands.
        cache.receive(b"ualice", 0);
        cache.insert(stamp, "alice", v(&["old"]));
        assert_eq!(cache.get("alice"), None);
        // A read started after it caches its answer.
        let stamp = cache.stamp();
        cache.insert(stamp, "alice", v(&["new"]));
        assert_eq!(cache.get("alice"), Some(v(&["new"])));
        // An invalidation of anyone else also refuses older reads (one
        // generation for all: never too few refusals).
        let stamp = cache.stamp();
        cache.invalidate("bob");
        cache.insert(stamp, "carol", None);
        assert_eq!(cache.get("carol"), None);
    }

    #[test]
    fn a_lost_channel_serves_and_caches_nothing_until_a_new_heartbeat() {
        let cache = live_cache(10);
        cache.insert(cache.stamp(), "alice", v(&["read"]));
        let stamp = cache.stamp();
        cache.lose();
        assert!(!cache.is_live());
        assert_eq!(cache.get("alice"), None);
        cache.insert(cache.stamp(), "alice", v(&["read"]));
        // Back: an old heartbeat (sent before the new subscription) does
        // not count, a new one does; the entries are gone, the read that
        // started before the loss caches nothing.
        let since = cache.now_ms() + 1;
        let old = format!("h{:016x}:{}", cache.replica, since - 1);
        assert_eq!(cache.receive(old.as_bytes(), since), None);
        assert!(!cache.is_live());
        let fresh = format!("h{:016x}:{since}", cache.replica);
        assert_eq!(cache.receive(fresh.as_bytes(), since), Some(since));
        assert!(cache.is_live());
        assert_eq!(cache.get("alice"), None);
        cache.insert(stamp, "alice", v(&["read"]));
        assert_eq!(cache.get("alice"), None);
    }

    #[test]
    fn other_replicas_heartbeats_prove_nothing() {
        let cache = LocalCache::new(LocalCacheConfig::default());
        let other = format!("h{:016x}:{}", cache.replica ^ 1, cache.now_ms());
        assert_eq!(cache.receive(other.as_bytes(), 0), None);
        assert!(!cache.is_live());
        assert_eq!(cache.receive(b"h-not-a-heartbeat", 0), None);
        assert!(!cache.is_live());
    }

    #[test]
    fn the_cache_is_bounded_and_a_seed_clears_it() {
        let cache = live_cache(3);
        for user in ["a", "b", "c"] {
            cache.insert(cache.stamp(), user, None);
        }
        assert_eq!(cache.lock().len(), 3);
        cache.insert(cache.stamp(), "d", v(&["x"]));
        assert_eq!(cache.lock().len(), 1, "full: starts over");
        assert_eq!(cache.get("d"), Some(v(&["x"])));
        cache.receive(b"*", 0);
        assert_eq!(cache.get("d"), None);
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.invalidations), (1, 1));
    }
}
