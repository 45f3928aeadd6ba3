//! [`RedisStore`]: capabilities, revocations and sessions in Redis, shared by
//! every replica.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, FromRedisValue, Pipeline, RedisResult, Value};
use portcullis_core::{Error, Secret};

use crate::memory::unix_now;
use crate::store::{
    CapabilityStore, Change, ChangeCheck, Modified, RevocationStore, SessionStore, StoreFuture,
    normalize, validate_name, validate_update,
};

mod cache;

use cache::LocalCache;
pub use cache::{
    CacheStats, DEFAULT_CACHE_ENTRIES, DEFAULT_STALENESS_BOUND, InvalidationObserver,
    LocalCacheConfig,
};

/// The key prefix used unless one is configured.
pub const DEFAULT_PREFIX: &str = "portcullis:";

/// How long a Redis command (or a connection attempt) may take unless configured.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// How many times a conditional update reads, checks and tries to write
/// before giving up with `Unavailable`.
const MODIFY_ATTEMPTS: u32 = 8;

/// Compare-and-set of one user's capabilities, run atomically by Redis.
///
/// KEYS: the users set, the user's capability set. ARGV: the user, whether
/// the user was known (`1`/`0`), the number `n` of names expected, the `n`
/// names expected, the invalidation channel, then the names to store.
/// Writes only if the user's membership and names are exactly those
/// expected, and then publishes `u{user}` on the channel in the same atomic
/// step (the replicas' caches drop the user); answers 1 if it wrote, 0 if
/// the state had changed. An unknown user expected known (or the reverse)
/// is a change. Leaving the user unknown is never asked for (a change that
/// does not make the user known writes nothing).
const COMPARE_AND_SET: &str = r#"
local known = redis.call('SISMEMBER', KEYS[1], ARGV[1])
if tostring(known) ~= ARGV[2] then return 0 end
local n = tonumber(ARGV[3])
if redis.call('SCARD', KEYS[2]) ~= n then return 0 end
for i = 1, n do
  if redis.call('SISMEMBER', KEYS[2], ARGV[3 + i]) == 0 then return 0 end
end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
for i = 5 + n, #ARGV do
  redis.call('SADD', KEYS[2], ARGV[i])
end
redis.call('PUBLISH', ARGV[4 + n], 'u' .. ARGV[1])
return 1
"#;

/// Seeds an empty store with users and their capabilities, once, run
/// atomically by Redis.
///
/// KEYS: the users set, the seed marker, then one capability set per user.
/// ARGV: the marker's value, the invalidation channel, then per user (in
/// KEYS order) the user, the number `k` of names, and the `k` names. Writes
/// nothing and answers 0 when the marker exists or any user is known; else
/// writes every user, sets the marker, publishes `*` on the channel (the
/// replicas' caches start over) and answers 1.
const SEED: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('SCARD', KEYS[1]) > 0 then return 0 end
local pos = 3
for u = 3, #KEYS do
  local user = ARGV[pos]
  local k = tonumber(ARGV[pos + 1])
  pos = pos + 2
  redis.call('SADD', KEYS[1], user)
  for j = 0, k - 1 do
    redis.call('SADD', KEYS[u], ARGV[pos + j])
  end
  pos = pos + k
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[2], '*')
return 1
"#;

/// The hash tag of the capability keys on a Redis Cluster: the users set and
/// every capability set are used together (in one script or transaction),
/// so they must live in one hash slot.
#[cfg(feature = "redis-cluster")]
const CLUSTER_CAPABILITIES_TAG: &str = "{caps}";

/// Where and how to reach Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user:password@]host[:port][/db]` (or `rediss://`, `unix://`).
    /// A secret, since it may carry a password.
    pub url: Secret,
    /// Prepended to every key (default [`DEFAULT_PREFIX`]), so that several
    /// services or environments can share one Redis.
    pub prefix: String,
    /// The longest a command or a connection attempt may take (default
    /// [`DEFAULT_COMMAND_TIMEOUT`]); past it the call fails with kind `Unavailable`.
    pub command_timeout: Duration,
    /// The local cache of capability reads (default: on, see
    /// [`LocalCacheConfig`]).
    pub local_cache: LocalCacheConfig,
}

impl RedisConfig {
    /// The Redis at `url`, with the default prefix, command timeout and local cache.
    pub fn new(url: impl Into<Secret>) -> Self {
        Self {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            local_cache: LocalCacheConfig::default(),
        }
    }

    /// Replaces the local cache's configuration
    /// ([`LocalCacheConfig::disabled`]: every read goes to Redis).
    pub fn with_local_cache(mut self, local_cache: LocalCacheConfig) -> Self {
        self.local_cache = local_cache;
        self
    }

    /// Replaces the key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Replaces the command timeout.
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }
}

/// Where and how to reach a Redis Cluster (feature `redis-cluster`).
#[cfg(feature = "redis-cluster")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisClusterConfig {
    /// Some of the cluster's nodes, `redis://[user:password@]host:port`
    /// each (or `rediss://`); the others are found from them. Secrets, since
    /// they may carry a password.
    pub urls: Vec<Secret>,
    /// Prepended to every key (default [`DEFAULT_PREFIX`]); it may not hold
    /// `{` or `}`, which would change the hash slots of the keys.
    pub prefix: String,
    /// The longest a command or a connection attempt may take (default
    /// [`DEFAULT_COMMAND_TIMEOUT`]); past it the call fails with kind `Unavailable`.
    pub command_timeout: Duration,
    /// The local cache of capability reads (default: on, see
    /// [`LocalCacheConfig`]).
    pub local_cache: LocalCacheConfig,
}

#[cfg(feature = "redis-cluster")]
impl RedisClusterConfig {
    /// The cluster reached through `urls`, with the default prefix, command
    /// timeout and local cache.
    pub fn new<S: Into<Secret>>(urls: impl IntoIterator<Item = S>) -> Self {
        Self {
            urls: urls.into_iter().map(Into::into).collect(),
            prefix: DEFAULT_PREFIX.to_owned(),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            local_cache: LocalCacheConfig::default(),
        }
    }

    /// Replaces the local cache's configuration
    /// ([`LocalCacheConfig::disabled`]: every read goes to Redis).
    pub fn with_local_cache(mut self, local_cache: LocalCacheConfig) -> Self {
        self.local_cache = local_cache;
        self
    }

    /// Replaces the key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Replaces the command timeout.
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }
}

/// The connection: to one server, or to a cluster.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    #[cfg(feature = "redis-cluster")]
    Cluster(::redis::cluster_async::ClusterConnection),
}

impl Connection {
    async fn query<T: FromRedisValue>(&self, pipe: &Pipeline) -> RedisResult<T> {
        match self {
            Connection::Single(conn) => pipe.query_async(&mut conn.clone()).await,
            #[cfg(feature = "redis-cluster")]
            Connection::Cluster(conn) => pipe.query_async(&mut conn.clone()).await,
        }
    }
}

/// Capabilities, revocations and sessions kept in Redis.
///
/// Revocation checks, session reads and the reads of a change go to Redis
/// every time, so a revocation or a logout made through one replica is in
/// force on all of them at once. Capability reads
/// ([`get`](CapabilityStore::get)) are served from a local cache that Redis
/// invalidates (on by default, [`LocalCacheConfig`]): the replica that
/// made a change sees it at once, the others when its invalidation arrives
/// (milliseconds), and never later than the staleness bound, even when the
/// invalidation channel is lost:
///
/// - every change `PUBLISH`es `u{user}` on `{prefix}invalidate`
///   (`{prefix}{caps}invalidate` on a cluster) in the Lua script that
///   writes it, so the write and its invalidation are one atomic step;
/// - each replica subscribes on the node that runs those scripts (the
///   server; on a cluster, the master of the `{caps}` slot, found with
///   `CLUSTER SLOTS` and checked again once per bound);
/// - each replica publishes a heartbeat of its own through the same path
///   five times per bound, and serves from the cache only until
///   `sent + bound` of the latest one that came back: Redis delivers one
///   node's messages to a subscriber in order, so a heartbeat back proves
///   every earlier change's invalidation arrived;
/// - a subscription that fails or stays silent past the bound drops the
///   whole cache; reads go to Redis, and nothing is cached, until a new
///   subscription carries a heartbeat back;
/// - a read takes the cache's generation before asking Redis and caches
///   its answer only if no invalidation, loss or new subscription bumped
///   it meanwhile, so an answer older than an invalidation is never
///   cached.
///
/// [`list`](CapabilityStore::list) is never cached. The keys, under the
/// configured prefix `{prefix}`:
///
/// | key | type | holds |
/// |-----|------|-------|
/// | `{prefix}users` | set | every known user |
/// | `{prefix}caps:{user}` | set | the user's capability names (absent: none) |
/// | `{prefix}revoked:{token_id}` | string | a revoked token, expiring (`EXPIREAT`) when the token does; also a value used by [`revoke_once`](RevocationStore::revoke_once) |
/// | `{prefix}session:{id}` | string | a session's bytes, expiring when the session does |
/// | `{prefix}seeded` | string | set when [`seed`](Self::seed) imported a user file (the Unix time) |
///
/// On a Redis Cluster ([`connect_cluster`](Self::connect_cluster)) the
/// capability keys and the seed marker carry the hash tag `{caps}`
/// (`{prefix}{caps}users`, `{prefix}{caps}caps:{user}`,
/// `{prefix}{caps}seeded`), so that the keys a change or a seed uses
/// together sit in one hash slot; the other keys are as above, one key per
/// entry, spread over the cluster.
///
/// Each change ([`modify`](CapabilityStore::modify), and so `update`) reads
/// the user's names, checks them, then writes with a Lua script (`EVAL`)
/// that compares the names with those read and writes only if they are
/// unchanged; on a conflict it reads and checks again, up to 8 times, then
/// fails with kind `Unavailable` (503). (The multiplexed connection cannot
/// hold a `WATCH` for one caller.) A
/// [`revoke_once`](RevocationStore::revoke_once) is one `SET ... NX EXAT`, so
/// exactly one replica wins. Expiries are absolute (`EXAT`), Unix seconds
/// compared with Redis' clock. A connection that fails, or
/// a command that takes longer than the command timeout, gives an error of
/// kind `Unavailable` (503): a caller is refused, never let through, while
/// Redis cannot answer. The connection is re-established in the background.
///
/// ```no_run
/// # async fn run() -> Result<(), portcullis_core::Error> {
/// use std::time::Duration;
/// use portcullis_capabilities::{CapabilityStore, Change, RedisConfig, RedisStore, RevocationStore};
/// let config = RedisConfig::new("redis://127.0.0.1:6379/")
///     .with_prefix("billing:")
///     .with_command_timeout(Duration::from_millis(500));
/// let store = RedisStore::connect(config).await?;
/// store.update("alice@example.com", Change::Add("read".into())).await?;
/// store.revoke("token-id", 4_102_444_800).await?;
/// assert!(store.is_revoked("token-id").await?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: Connection,
    prefix: String,
    /// The hash tag of the capability keys (empty on a single server).
    caps_tag: &'static str,
    timeout: Duration,
    /// The local cache of capability reads, if configured.
    cache: Option<Arc<LocalCache>>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("cluster", &!self.caps_tag.is_empty())
            .field("prefix", &self.prefix)
            .field("command_timeout", &self.timeout)
            .field("local_cache", &self.cache.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to Redis and checks that it answers.
    ///
    /// Fails with kind `Config` for an invalid URL or a zero timeout, and with
    /// kind `Unavailable` if Redis cannot be reached within the command timeout.
    pub async fn connect(config: RedisConfig) -> Result<Self, Error> {
        let RedisConfig {
            url,
            prefix,
            command_timeout,
            local_cache,
        } = config;
        if command_timeout.is_zero() {
            return Err(Error::config("the Redis command timeout must not be zero"));
        }
        local_cache.check()?;
        let conn = managed_connection(&url, command_timeout).await?;
        let mut store = Self {
            conn: Connection::Single(conn),
            prefix,
            caps_tag: "",
            timeout: command_timeout,
            cache: None,
        };
        store.ping().await?;
        store.start_cache(local_cache, vec![url], false);
        Ok(store)
    }

    /// Connects to a Redis Cluster (feature `redis-cluster`) and checks that
    /// it answers.
    ///
    /// The capability keys carry the hash tag `{caps}` (`{prefix}{caps}users`,
    /// `{prefix}{caps}caps:{user}`), so that a change, which reads and
    /// writes the users set and a user's set in one script, runs on one
    /// node; revocations, single-use records and sessions are one key each
    /// and spread over the cluster.
    ///
    /// Fails with kind `Config` for no URL, an invalid one, a prefix holding
    /// `{` or `}`, or a zero timeout, and with kind `Unavailable` if the
    /// cluster cannot be reached within the command timeout.
    #[cfg(feature = "redis-cluster")]
    pub async fn connect_cluster(config: RedisClusterConfig) -> Result<Self, Error> {
        let RedisClusterConfig {
            urls,
            prefix,
            command_timeout,
            local_cache,
        } = config;
        if command_timeout.is_zero() {
            return Err(Error::config("the Redis command timeout must not be zero"));
        }
        local_cache.check()?;
        if urls.is_empty() {
            return Err(Error::config("a Redis Cluster needs at least one node URL"));
        }
        if prefix.contains(['{', '}']) {
            return Err(Error::config(
                "the key prefix of a Redis Cluster store may not hold `{` or `}`",
            ));
        }
        // The URLs may hold a password: no message repeats them.
        let client = ::redis::cluster::ClusterClientBuilder::new(urls.iter().map(Secret::expose))
            .connection_timeout(command_timeout)
            .response_timeout(command_timeout)
            .retries(1)
            .build()
            .map_err(|e| {
                Error::config(format!("a Redis Cluster URL is invalid ({:?})", e.kind()))
            })?;
        let conn = tokio::time::timeout(command_timeout, client.get_async_connection())
            .await
            .map_err(|_| {
                Error::unavailable(format!(
                    "the Redis Cluster could not be reached within {command_timeout:?}"
                ))
            })?
            .map_err(|e| {
                Error::unavailable("the Redis Cluster could not be reached").with_source(e)
            })?;
        let mut store = Self {
            conn: Connection::Cluster(conn),
            prefix,
            caps_tag: CLUSTER_CAPABILITIES_TAG,
            timeout: command_timeout,
            cache: None,
        };
        store.ping().await?;
        store.start_cache(local_cache, urls, true);
        Ok(store)
    }

    /// Starts the local cache and the task that keeps its invalidation
    /// channel, unless the cache is disabled.
    fn start_cache(&mut self, config: LocalCacheConfig, urls: Vec<Secret>, cluster: bool) {
        if config.max_entries == 0 {
            return;
        }
        let cache = Arc::new(LocalCache::new(config));
        cache::spawn(
            &cache,
            cache::Channel {
                conn: self.conn.clone(),
                urls,
                cluster,
                name: self.channel(),
                users_key: self.users_key(),
                timeout: self.timeout,
            },
        );
        self.cache = Some(cache);
    }

    /// What the local cache counted so far (`None`: no cache).
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.cache.as_ref().map(|cache| cache.stats())
    }

    /// Whether the local cache serves reads now: it is configured and its
    /// invalidation channel carried a heartbeat back within the staleness
    /// bound. While it does not, every read goes to Redis.
    pub fn cache_is_live(&self) -> bool {
        self.cache.as_ref().is_some_and(|cache| cache.is_live())
    }

    /// Calls `observer` with each user whose cached capabilities the
    /// invalidation channel drops (a change made through any replica,
    /// this one included), right after dropping them; `None` removes it.
    /// Measures how long a change takes to reach this replica.
    pub fn observe_invalidations(&self, observer: Option<InvalidationObserver>) {
        if let Some(cache) = &self.cache {
            cache.set_observer(observer);
        }
    }

    async fn ping(&self) -> Result<(), Error> {
        let mut ping = Pipeline::new();
        ping.cmd("PING");
        let (_pong,): (String,) = self.run("PING", &ping).await?;
        Ok(())
    }

    /// Whether this store is on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        !self.caps_tag.is_empty()
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn users_key(&self) -> String {
        format!("{}{}users", self.prefix, self.caps_tag)
    }

    fn caps_key(&self, user: &str) -> String {
        format!("{}{}caps:{user}", self.prefix, self.caps_tag)
    }

    /// The invalidation channel (a channel, not a key: no hash slot).
    fn channel(&self) -> String {
        format!("{}{}invalidate", self.prefix, self.caps_tag)
    }

    fn seeded_key(&self) -> String {
        format!("{}{}seeded", self.prefix, self.caps_tag)
    }

    fn revoked_key(&self, token_id: &str) -> String {
        format!("{}revoked:{token_id}", self.prefix)
    }

    fn session_key(&self, id: &str) -> String {
        format!("{}session:{id}", self.prefix)
    }

    /// Sends `pipe`, bounded by the command timeout; any failure is `Unavailable`.
    async fn run<T: FromRedisValue>(
        &self,
        what: &'static str,
        pipe: &Pipeline,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.timeout, self.conn.query::<T>(pipe)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(Error::unavailable(format!("Redis {what} failed")).with_source(e)),
            Err(_) => Err(Error::unavailable(format!(
                "Redis {what} took longer than {:?}",
                self.timeout
            ))),
        }
    }

    /// A user's capabilities, from the local cache when it holds them and
    /// is live, else from Redis (cached for the next read unless an
    /// invalidation arrived meanwhile).
    async fn cached_caps(&self, user: &str) -> Result<Option<Vec<String>>, Error> {
        let Some(cache) = &self.cache else {
            return self.get_caps(user).await;
        };
        if let Some(found) = cache.get(user) {
            return Ok(found);
        }
        let stamp = cache.stamp();
        let found = self.get_caps(user).await?;
        cache.insert(stamp, user, found.clone());
        Ok(found)
    }

    async fn get_caps(&self, user: &str) -> Result<Option<Vec<String>>, Error> {
        let mut pipe = Pipeline::new();
        pipe.atomic()
            .sismember(self.users_key(), user)
            .smembers(self.caps_key(user));
        let (known, caps): (bool, Vec<String>) = self.run("read", &pipe).await?;
        Ok(known.then(|| normalize(caps)))
    }

    async fn list_caps(&self) -> Result<BTreeMap<String, Vec<String>>, Error> {
        let mut pipe = Pipeline::new();
        pipe.smembers(self.users_key());
        let (users,): (Vec<String>,) = self.run("read", &pipe).await?;
        if users.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut pipe = Pipeline::new();
        pipe.atomic();
        for user in &users {
            pipe.smembers(self.caps_key(user));
        }
        let caps: Vec<Vec<String>> = self.run("read", &pipe).await?;
        if caps.len() != users.len() {
            return Err(Error::unavailable(
                "Redis answered a read with the wrong count",
            ));
        }
        Ok(users
            .into_iter()
            .zip(caps)
            .map(|(user, caps)| (user, normalize(caps)))
            .collect())
    }

    /// `modify`: read the user's names, check them, then write the result
    /// with a compare-and-set script that applies only if the names are
    /// still those read; on a conflict, read and check again, a bounded
    /// number of times.
    async fn apply(
        &self,
        user: &str,
        change: Change,
        check: &ChangeCheck<'_>,
    ) -> Result<Modified, Error> {
        validate_update(user, &change)?;
        for attempt in 0..MODIFY_ATTEMPTS {
            let before = self.get_caps(user).await?;
            check(before.as_deref())?;
            let after = change.apply(before.clone());
            if after == before {
                // Nothing to write: the read is the change's atomic moment.
                return Ok(Modified { before, after });
            }
            if self
                .compare_and_set(user, before.as_deref(), after.as_deref())
                .await?
            {
                // This replica sees its own change at once; the others when
                // the script's invalidation reaches them.
                if let Some(cache) = &self.cache {
                    cache.invalidate(user);
                }
                return Ok(Modified { before, after });
            }
            // Another change landed in between: back off a little, retry.
            tokio::time::sleep(Duration::from_millis(1 << attempt.min(5))).await;
        }
        Err(Error::unavailable(format!(
            "the capabilities of a user kept changing during {MODIFY_ATTEMPTS} attempts; try again"
        )))
    }

    /// Replaces `user`'s names by `after` if they are still `expected`
    /// (`None`: unknown); answers whether it did.
    async fn compare_and_set(
        &self,
        user: &str,
        expected: Option<&[String]>,
        after: Option<&[String]>,
    ) -> Result<bool, Error> {
        let expected_list = expected.unwrap_or_default();
        let mut pipe = Pipeline::new();
        let cmd = pipe
            .cmd("EVAL")
            .arg(COMPARE_AND_SET)
            .arg(2)
            .arg(self.users_key())
            .arg(self.caps_key(user))
            .arg(user)
            .arg(u8::from(expected.is_some()))
            .arg(expected_list.len())
            .arg(expected_list)
            .arg(self.channel());
        if let Some(after) = after {
            cmd.arg(after);
        }
        let (written,): (i64,) = self.run("update", &pipe).await?;
        Ok(written == 1)
    }

    /// Seeds an empty store with `users` (a user file's content), once, in
    /// one atomic step, and answers whether it did.
    ///
    /// Nothing is written, and the answer is `false`, when the store already
    /// knows a user or was seeded before (its `{prefix}seeded` marker
    /// exists): a store in use is never overwritten, and of several replicas
    /// seeding at once exactly one writes. An empty `users` writes nothing
    /// (and sets no marker). Names are checked as
    /// [`modify`](CapabilityStore::modify) checks them (kind
    /// `InvalidRequest`, nothing written); Redis that cannot answer is
    /// `Unavailable`.
    ///
    /// [`StoreConfig::open_stores_seeded`](crate::StoreConfig::open_stores_seeded)
    /// calls this with the configured user file.
    pub async fn seed(&self, users: &BTreeMap<String, Vec<String>>) -> Result<bool, Error> {
        if users.is_empty() {
            return Ok(false);
        }
        for (user, caps) in users {
            validate_name("user name", user)?;
            for cap in caps {
                validate_name("capability name", cap)?;
            }
        }
        let mut pipe = Pipeline::new();
        let cmd = pipe
            .cmd("EVAL")
            .arg(SEED)
            .arg(2 + users.len())
            .arg(self.users_key())
            .arg(self.seeded_key());
        for user in users.keys() {
            cmd.arg(self.caps_key(user));
        }
        cmd.arg(unix_now()).arg(self.channel());
        for (user, caps) in users {
            let caps = normalize(caps.clone());
            cmd.arg(user).arg(caps.len()).arg(caps);
        }
        let (written,): (i64,) = self.run("seed", &pipe).await?;
        if written == 1
            && let Some(cache) = &self.cache
        {
            cache.clear();
        }
        Ok(written == 1)
    }

    async fn add_revocation(&self, token_id: &str, expires_at_unix: u64) -> Result<(), Error> {
        validate_name("token id", token_id)?;
        if expires_at_unix <= unix_now() {
            // Already expired: nothing left to refuse.
            return Ok(());
        }
        let key = self.revoked_key(token_id);
        let mut pipe = Pipeline::new();
        pipe.atomic()
            .set(&key, 1)
            .ignore()
            .expire_at(&key, redis_expiry(expires_at_unix))
            .ignore();
        self.run("revocation", &pipe).await
    }

    async fn first_use(&self, id: &str, expires_at_unix: u64) -> Result<bool, Error> {
        validate_name("id", id)?;
        if expires_at_unix <= unix_now() {
            // Expired: never consumed.
            return Ok(false);
        }
        let mut pipe = Pipeline::new();
        pipe.cmd("SET")
            .arg(self.revoked_key(id))
            .arg(1)
            .arg("NX")
            .arg("EXAT")
            .arg(redis_expiry(expires_at_unix));
        let (reply,): (Value,) = self.run("single-use record", &pipe).await?;
        match reply {
            Value::Nil => Ok(false),
            Value::Okay => Ok(true),
            Value::SimpleString(status) if status == "OK" => Ok(true),
            _ => Err(Error::unavailable(
                "Redis answered a single-use record unexpectedly",
            )),
        }
    }

    async fn put_session(&self, id: &str, data: &[u8], expires_at_unix: u64) -> Result<(), Error> {
        validate_name("session id", id)?;
        let key = self.session_key(id);
        let mut pipe = Pipeline::new();
        if expires_at_unix <= unix_now() {
            pipe.del(&key).ignore();
        } else {
            pipe.cmd("SET")
                .arg(&key)
                .arg(data)
                .arg("EXAT")
                .arg(redis_expiry(expires_at_unix))
                .ignore();
        }
        self.run("session write", &pipe).await
    }

    async fn put_new_session(&self, id: &str, data: &[u8], lease: Duration) -> Result<bool, Error> {
        validate_name("session id", id)?;
        let ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut pipe = Pipeline::new();
        pipe.cmd("SET")
            .arg(self.session_key(id))
            .arg(data)
            .arg("NX")
            .arg("PX")
            .arg(ms);
        let (reply,): (Value,) = self.run("session lock", &pipe).await?;
        match reply {
            Value::Nil => Ok(false),
            Value::Okay => Ok(true),
            Value::SimpleString(status) if status == "OK" => Ok(true),
            _ => Err(Error::unavailable(
                "Redis answered a session lock unexpectedly",
            )),
        }
    }

    async fn get_session(&self, id: &str) -> Result<Option<Vec<u8>>, Error> {
        let mut pipe = Pipeline::new();
        pipe.get(self.session_key(id));
        let (data,): (Option<Vec<u8>>,) = self.run("session read", &pipe).await?;
        Ok(data)
    }

    async fn delete_session(&self, id: &str) -> Result<(), Error> {
        let mut pipe = Pipeline::new();
        pipe.del(self.session_key(id)).ignore();
        self.run("session delete", &pipe).await
    }

    async fn check_revocation(&self, token_id: &str) -> Result<bool, Error> {
        let mut pipe = Pipeline::new();
        pipe.exists(self.revoked_key(token_id));
        let (revoked,): (bool,) = self.run("revocation check", &pipe).await?;
        Ok(revoked)
    }
}

impl CapabilityStore for RedisStore {
    fn get<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Option<Vec<String>>> {
        Box::pin(self.cached_caps(user))
    }

    fn list(&self) -> StoreFuture<'_, BTreeMap<String, Vec<String>>> {
        Box::pin(self.list_caps())
    }

    fn modify<'a>(
        &'a self,
        user: &'a str,
        change: Change,
        check: &'a ChangeCheck<'a>,
    ) -> StoreFuture<'a, Modified> {
        Box::pin(self.apply(user, change, check))
    }
}

impl RevocationStore for RedisStore {
    fn revoke<'a>(&'a self, token_id: &'a str, expires_at_unix: u64) -> StoreFuture<'a, ()> {
        Box::pin(self.add_revocation(token_id, expires_at_unix))
    }

    fn is_revoked<'a>(&'a self, token_id: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(self.check_revocation(token_id))
    }

    fn revoke_once<'a>(&'a self, id: &'a str, expires_at_unix: u64) -> StoreFuture<'a, bool> {
        Box::pin(self.first_use(id, expires_at_unix))
    }
}

impl SessionStore for RedisStore {
    fn put<'a>(&'a self, id: &'a str, data: &'a [u8], expires_at_unix: u64) -> StoreFuture<'a, ()> {
        Box::pin(self.put_session(id, data, expires_at_unix))
    }

    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(self.get_session(id))
    }

    fn delete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.delete_session(id))
    }

    fn put_new<'a>(
        &'a self,
        id: &'a str,
        data: &'a [u8],
        lease: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.put_new_session(id, data, lease))
    }
}

/// An expiry Redis accepts: it refuses times past `i64::MAX` milliseconds.
/// A managed connection to the single Redis at `url` (reconnecting, one
/// retry), each connection attempt and answer bounded by `command_timeout`:
/// the connection every Redis-backed store of portcullis uses, so that they
/// time out and reconnect alike.
///
/// # Errors
///
/// Kind `Config` for an invalid URL (the message never repeats it: it may
/// hold a password); kind `Unavailable` when Redis cannot be reached within
/// `command_timeout`.
pub async fn managed_connection(
    url: &Secret,
    command_timeout: Duration,
) -> Result<ConnectionManager, Error> {
    let client = Client::open(url.expose())
        .map_err(|e| Error::config(format!("the Redis URL is invalid ({:?})", e.kind())))?;
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(command_timeout))
        .set_response_timeout(Some(command_timeout))
        .set_number_of_retries(1)
        .set_max_delay(command_timeout);
    tokio::time::timeout(
        command_timeout,
        ConnectionManager::new_with_config(client, manager_config),
    )
    .await
    .map_err(|_| {
        Error::unavailable(format!(
            "Redis could not be reached within {command_timeout:?}"
        ))
    })?
    .map_err(|e| Error::unavailable("Redis could not be reached").with_source(e))
}

fn redis_expiry(expires_at_unix: u64) -> i64 {
    const LATEST: i64 = i64::MAX / 1000;
    i64::try_from(expires_at_unix).map_or(LATEST, |secs| secs.min(LATEST))
}
