//! [`StoreConfig`]: which backend to use, as configuration, and opening it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use portcullis_core::{Error, Secret};
use serde::{Deserialize, Serialize};

use crate::file::{DEFAULT_RELOAD_INTERVAL, FileStore};
use crate::memory::MemoryStore;
use crate::store::{CapabilityStore, RevocationStore, SessionStore};

/// Which store holds the capabilities, the revocations and the sessions.
///
/// Tagged by `kind`; unknown keys are refused:
///
/// ```yaml
/// kind: memory
/// ---
/// kind: file
/// path: /etc/service/caps.yaml
/// reload_interval_ms: 1000   # default
/// ---
/// kind: redis
/// url: redis://redis.internal:6379/0
/// prefix: "portcullis:"      # default
/// command_timeout_ms: 1000   # default
/// cache_entries: 10000       # default; 0: no local cache
/// cache_staleness_bound_ms: 1000   # default
/// ---
/// kind: redis_cluster
/// urls: [redis://redis-1.internal:6379, redis://redis-2.internal:6379]
/// prefix: "portcullis:"      # default; no `{` or `}`
/// command_timeout_ms: 1000   # default
/// cache_entries: 10000       # default; 0: no local cache
/// cache_staleness_bound_ms: 1000   # default
/// ```
///
/// ```
/// use portcullis_capabilities::StoreConfig;
/// let config: StoreConfig =
///     serde_yaml_ng::from_str("kind: file\npath: caps.yaml\nreload_interval_ms: 250\n").unwrap();
/// assert_eq!(
///     config,
///     StoreConfig::File { path: "caps.yaml".into(), reload_interval_ms: 250 }
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum StoreConfig {
    /// [`MemoryStore`]: in the process, lost on exit. For tests.
    Memory,
    /// [`FileStore`]: a YAML user file, for the processes of one host (an OS
    /// file lock serializes their changes). Revocations are
    /// kept beside it (`<path>.revoked`, an append-only log) and survive
    /// restarts; one-time values ([`revoke_once`](RevocationStore::revoke_once))
    /// and sessions are kept in the process and are lost on restart.
    File {
        /// The user file (created on the first update if missing).
        path: PathBuf,
        /// How often, at most, the file is checked for hand edits, in
        /// milliseconds (default 1000; 0 checks on every read).
        #[serde(default = "defaults::reload_interval_ms")]
        reload_interval_ms: u64,
    },
    /// [`RedisStore`](crate::RedisStore) (feature `redis`): shared by every replica.
    Redis {
        /// `redis://[user:password@]host[:port][/db]`; kept out of logs.
        url: Secret,
        /// Prepended to every key (default `portcullis:`).
        #[serde(default = "defaults::prefix")]
        prefix: String,
        /// The longest a command may take, in milliseconds (default 1000).
        #[serde(default = "defaults::command_timeout_ms")]
        command_timeout_ms: u64,
        /// The most users whose capabilities each replica caches, invalidated
        /// by Redis (default 10000; 0: no cache, every read goes to Redis).
        #[serde(default = "defaults::cache_entries")]
        cache_entries: usize,
        /// The longest a cached answer may outlive a change made through
        /// another replica, in milliseconds: the liveness bound of the
        /// invalidation channel (default 1000, at least 50).
        #[serde(default = "defaults::cache_staleness_bound_ms")]
        cache_staleness_bound_ms: u64,
    },
    /// [`RedisStore`](crate::RedisStore) on a Redis Cluster (feature
    /// `redis-cluster`): shared by every replica, like `redis`.
    RedisCluster {
        /// Some of the cluster's nodes (`redis://host:port` each); the
        /// others are found from them. Kept out of logs.
        urls: Vec<Secret>,
        /// Prepended to every key (default `portcullis:`); no `{` or `}`.
        #[serde(default = "defaults::prefix")]
        prefix: String,
        /// The longest a command may take, in milliseconds (default 1000).
        #[serde(default = "defaults::command_timeout_ms")]
        command_timeout_ms: u64,
        /// The most users whose capabilities each replica caches, invalidated
        /// by Redis (default 10000; 0: no cache, every read goes to Redis).
        #[serde(default = "defaults::cache_entries")]
        cache_entries: usize,
        /// The longest a cached answer may outlive a change made through
        /// another replica, in milliseconds: the liveness bound of the
        /// invalidation channel (default 1000, at least 50).
        #[serde(default = "defaults::cache_staleness_bound_ms")]
        cache_staleness_bound_ms: u64,
    },
}

/// The stores a configuration opens: one object may serve as several.
///
/// | kind | capabilities | revocations | sessions |
/// |------|--------------|-------------|----------|
/// | `memory` | the [`MemoryStore`] | the same store | the same store |
/// | `file` | the [`FileStore`] | the same store (`<path>.revoked`; one-time values in memory) | a [`MemoryStore`]: one replica's, lost on restart |
/// | `redis`, `redis_cluster` | the [`RedisStore`](crate::RedisStore) | the same store | the same store |
#[derive(Debug, Clone)]
pub struct Stores {
    /// User capabilities.
    pub capabilities: Arc<dyn CapabilityStore>,
    /// Token revocations and single-use records
    /// ([`revoke_once`](RevocationStore::revoke_once)). Every kind opens one;
    /// `None` stands for a deployment that keeps no revocations.
    pub revocations: Option<Arc<dyn RevocationStore>>,
    /// Server-side login sessions.
    pub sessions: Arc<dyn SessionStore>,
}

impl StoreConfig {
    /// Opens the capability store this configuration describes.
    ///
    /// ```
    /// # async fn run() -> Result<(), portcullis_core::Error> {
    /// use portcullis_capabilities::{Change, StoreConfig};
    /// let store = StoreConfig::Memory.open().await?;
    /// assert_eq!(store.update("alice", Change::Add("read".into())).await?, ["read"]);
    /// # Ok(()) }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(run()).unwrap();
    /// ```
    pub async fn open(&self) -> Result<Arc<dyn CapabilityStore>, Error> {
        Ok(self.open_stores().await?.capabilities)
    }

    /// Opens the capability, revocation and session stores (see [`Stores`]).
    ///
    /// Fails with kind `Config` for an invalid configuration (a file whose
    /// directory does not exist, a user or revocations file that does not
    /// parse, a bad URL, the `redis`
    /// kind without the `redis` feature) and with kind `Unavailable` when the
    /// backend cannot be reached.
    pub async fn open_stores(&self) -> Result<Stores, Error> {
        match self {
            StoreConfig::Memory => {
                let store = Arc::new(MemoryStore::new());
                Ok(Stores {
                    capabilities: store.clone(),
                    revocations: Some(store.clone()),
                    sessions: store,
                })
            }
            StoreConfig::File {
                path,
                reload_interval_ms,
            } => {
                let store = FileStore::open_with_reload_interval(
                    path.clone(),
                    Duration::from_millis(*reload_interval_ms),
                )
                .await?;
                let store = Arc::new(store);
                Ok(Stores {
                    capabilities: store.clone(),
                    revocations: Some(store),
                    // Sessions of this one replica, lost on restart.
                    sessions: Arc::new(MemoryStore::new()),
                })
            }
            #[cfg(feature = "redis")]
            StoreConfig::Redis { .. } | StoreConfig::RedisCluster { .. } => {
                let store = self.open_redis().await?;
                Ok(redis_stores(store))
            }
            #[cfg(not(feature = "redis"))]
            StoreConfig::Redis { .. } | StoreConfig::RedisCluster { .. } => Err(Error::config(
                "capability store kinds `redis` and `redis_cluster` need the `redis` feature of portcullis-capabilities",
            )),
        }
    }

    /// Connects the Redis store of a `redis` or `redis_cluster` configuration.
    #[cfg(feature = "redis")]
    async fn open_redis(&self) -> Result<Arc<crate::RedisStore>, Error> {
        match self {
            StoreConfig::Redis {
                url,
                prefix,
                command_timeout_ms,
                cache_entries,
                cache_staleness_bound_ms,
            } => {
                let config = crate::RedisConfig::new(url.clone())
                    .with_prefix(prefix.clone())
                    .with_command_timeout(Duration::from_millis(*command_timeout_ms))
                    .with_local_cache(local_cache(*cache_entries, *cache_staleness_bound_ms));
                Ok(Arc::new(crate::RedisStore::connect(config).await?))
            }
            #[cfg(feature = "redis-cluster")]
            StoreConfig::RedisCluster {
                urls,
                prefix,
                command_timeout_ms,
                cache_entries,
                cache_staleness_bound_ms,
            } => {
                let config = crate::RedisClusterConfig::new(urls.iter().cloned())
                    .with_prefix(prefix.clone())
                    .with_command_timeout(Duration::from_millis(*command_timeout_ms))
                    .with_local_cache(local_cache(*cache_entries, *cache_staleness_bound_ms));
                Ok(Arc::new(crate::RedisStore::connect_cluster(config).await?))
            }
            #[cfg(not(feature = "redis-cluster"))]
            StoreConfig::RedisCluster { .. } => Err(Error::config(
                "capability store kind `redis_cluster` needs the `redis-cluster` feature of portcullis-capabilities",
            )),
            StoreConfig::Memory | StoreConfig::File { .. } => {
                Err(Error::config("the capability store is not a Redis kind"))
            }
        }
    }

    /// Opens the stores like [`open_stores`](Self::open_stores), then, for
    /// the `redis` and `redis_cluster` kinds, seeds an empty Redis store with
    /// the users of `user_file` (the configured `capabilities.user_file`),
    /// once: how a service moves from the user file to Redis without losing
    /// its first administrator.
    ///
    /// The seed is one Lua script, run atomically by Redis, that writes only
    /// when the store knows no user and was never seeded (it leaves a
    /// `{prefix}seeded` marker): a store in use is never overwritten, and
    /// of several replicas starting at once exactly one seeds. A missing or
    /// empty user file seeds nothing. Other kinds ignore `user_file` (the
    /// `file` kind is the user file).
    ///
    /// Fails as [`open_stores`](Self::open_stores) does, and with kind
    /// `Config` when the user file does not parse (nothing is written).
    pub async fn open_stores_seeded(&self, user_file: Option<&Path>) -> Result<Stores, Error> {
        #[cfg(feature = "redis")]
        if let (StoreConfig::Redis { .. } | StoreConfig::RedisCluster { .. }, Some(path)) =
            (self, user_file)
        {
            // Read first: a user file that does not parse stops the start
            // before anything is written.
            let users = crate::file::read_user_file(path).await?;
            let store = self.open_redis().await?;
            if store.seed(&users).await? {
                tracing::info!(users = users.len(), path = %path.display(), "the Redis store was empty: seeded from the user file");
            } else if !users.is_empty() {
                tracing::debug!(path = %path.display(), "the Redis store is in use or was seeded before: the user file was not imported");
            }
            return Ok(redis_stores(store));
        }
        let _ = user_file;
        self.open_stores().await
    }
}

/// The local cache of a Redis kind's configuration.
#[cfg(feature = "redis")]
fn local_cache(entries: usize, staleness_bound_ms: u64) -> crate::LocalCacheConfig {
    crate::LocalCacheConfig {
        max_entries: entries,
        staleness_bound: Duration::from_millis(staleness_bound_ms),
    }
}

/// The stores of a Redis kind: one `RedisStore` serves all three.
#[cfg(feature = "redis")]
fn redis_stores(store: Arc<crate::RedisStore>) -> Stores {
    Stores {
        capabilities: store.clone(),
        revocations: Some(store.clone()),
        sessions: store,
    }
}

mod defaults {
    use super::*;

    pub(super) fn reload_interval_ms() -> u64 {
        u64::try_from(DEFAULT_RELOAD_INTERVAL.as_millis()).unwrap_or(u64::MAX)
    }

    pub(super) fn prefix() -> String {
        "portcullis:".to_owned()
    }

    pub(super) fn command_timeout_ms() -> u64 {
        1000
    }

    pub(super) fn cache_entries() -> usize {
        10_000
    }

    pub(super) fn cache_staleness_bound_ms() -> u64 {
        1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<StoreConfig, serde_yaml_ng::Error> {
        serde_yaml_ng::from_str(yaml)
    }

    #[test]
    fn kinds_parse_with_defaults() {
        assert_eq!(parse("kind: memory").unwrap(), StoreConfig::Memory);
        assert_eq!(
            parse("kind: file\npath: caps.yaml").unwrap(),
            StoreConfig::File {
                path: "caps.yaml".into(),
                reload_interval_ms: 1000
            }
        );
        assert_eq!(
            parse("kind: redis\nurl: redis://127.0.0.1/").unwrap(),
            StoreConfig::Redis {
                url: Secret::new("redis://127.0.0.1/"),
                prefix: "portcullis:".to_owned(),
                command_timeout_ms: 1000,
                cache_entries: 10_000,
                cache_staleness_bound_ms: 1000
            }
        );
    }

    #[test]
    fn clusters_parse_with_defaults() {
        assert_eq!(
            parse("kind: redis_cluster\nurls: [redis://127.0.0.1:7000, redis://127.0.0.1:7001]")
                .unwrap(),
            StoreConfig::RedisCluster {
                urls: vec![
                    Secret::new("redis://127.0.0.1:7000"),
                    Secret::new("redis://127.0.0.1:7001")
                ],
                prefix: "portcullis:".to_owned(),
                command_timeout_ms: 1000,
                cache_entries: 10_000,
                cache_staleness_bound_ms: 1000
            }
        );
        assert!(parse("kind: redis_cluster\nurl: redis://127.0.0.1:7000").is_err());
        let config = parse("kind: redis_cluster\nurls: ['redis://:hunter2@127.0.0.1/']").unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn the_local_cache_is_configured() {
        let config = parse(
            "kind: redis\nurl: redis://127.0.0.1/\ncache_entries: 0\ncache_staleness_bound_ms: 250",
        )
        .unwrap();
        let StoreConfig::Redis {
            cache_entries,
            cache_staleness_bound_ms,
            ..
        } = config
        else {
            panic!("{config:?}")
        };
        assert_eq!((cache_entries, cache_staleness_bound_ms), (0, 250));
        assert!(parse("kind: redis\nurl: redis://127.0.0.1/\ncache: 5").is_err());
    }

    #[test]
    fn mistakes_are_refused() {
        assert!(parse("kind: file\npath: a\nreload_interval: 5").is_err());
        assert!(parse("kind: sqlite").is_err());
        assert!(parse("kind: redis").is_err());
        assert!(parse("path: caps.yaml").is_err());
    }

    #[test]
    fn the_url_stays_out_of_debug() {
        let config = parse("kind: redis\nurl: redis://:hunter2@127.0.0.1/").unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[cfg(feature = "redis")]
    #[test]
    fn defaults_match_the_backends() {
        assert_eq!(defaults::prefix(), crate::redis_store::DEFAULT_PREFIX);
        assert_eq!(
            Duration::from_millis(defaults::command_timeout_ms()),
            crate::redis_store::DEFAULT_COMMAND_TIMEOUT
        );
        assert_eq!(defaults::cache_entries(), crate::DEFAULT_CACHE_ENTRIES);
        assert_eq!(
            Duration::from_millis(defaults::cache_staleness_bound_ms()),
            crate::DEFAULT_STALENESS_BOUND
        );
    }
}
