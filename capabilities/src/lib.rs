//! portcullis-capabilities: where user capabilities, token revocations and
//! login sessions are kept.
//!
//! A capability is a name (`read`, `user_management`, ...) granted to a user.
//! This crate stores the names each user holds — what a capability implies is
//! decided from the capability graph, elsewhere — the tokens revoked before
//! their expiry, and server-side sessions. Every backend implements the same
//! object-safe traits, so a service holds an `Arc<dyn CapabilityStore>` chosen
//! by configuration:
//!
//! - [`CapabilityStore`]: `get`, `list` and atomic changes ([`Change::Add`],
//!   [`Change::Remove`], [`Change::Set`]) of user → sorted, deduplicated
//!   names: [`modify`](CapabilityStore::modify) checks the names right
//!   before the change and writes in one atomic step, returning them before
//!   and after ([`Modified`]); `update` is `modify` without a condition.
//! - [`RevocationStore`]: `revoke` a token id until its expiry, `is_revoked`,
//!   and `revoke_once`, which makes a one-time value single-use.
//! - [`SessionStore`]: `put`, `get` and `delete` opaque session bytes until an expiry.
//!
//! | backend | capabilities | revocations | sessions | for |
//! |---------|--------------|-------------|----------|-----|
//! | [`MemoryStore`] | yes | yes | yes | tests, one process |
//! | [`FileStore`] | yes (YAML user file, easy-oauth's `caps.yaml` format) | yes (an append-only sibling `.revoked` file; one-time values in memory) | no ([`StoreConfig`] pairs it with a [`MemoryStore`]) | the processes of one host (an OS file lock around every change) |
//! | [`RedisStore`] | yes (reads from a local cache Redis invalidates) | yes | yes | several replicas (one Redis, or a Redis Cluster) |
//!
//! [`Capabilities`] puts the graph and the stores together: what a caller may
//! do, easy-oauth's management operations, and user, service and API tokens.
//! Its rules:
//!
//! - **No caller obtains a capability it does not hold**, directly or through
//!   a token it mints: managers grant, withdraw and mint only what they hold;
//!   service and API tokens record their issuer and hold no more than it
//!   holds now; a caller authenticated by a service or API token mints no
//!   token.
//! - **A revoked token is refused at authentication (401).**
//!   [`Capabilities::service_issuer_config`] carries a
//!   [`StoreRevocationCheck`] over the revocation store, which the verifier
//!   asks on every verification, cached tokens included.
//! - **Each capability change is one atomic check-and-write**
//!   ([`CapabilityStore::modify`]), and its audit event reports the true
//!   before and after.
//!
//! [`StoreConfig`] describes a backend in configuration (`kind: memory`,
//! `kind: file`, `kind: redis`, `kind: redis_cluster`) and opens it;
//! [`StoreConfig::open_stores_seeded`] seeds an empty Redis store from the
//! user file once.
//!
//! **Several replicas, fast reads.** A [`RedisStore`] answers capability
//! reads from a local cache that Redis invalidates through a channel
//! published by the writes themselves: the replica that writes sees its
//! change at once, the others within milliseconds, and never later than
//! the staleness bound ([`LocalCacheConfig::staleness_bound`], 1 s by
//! default) — a lost or silent channel drops the cache and sends reads to
//! Redis until it is back. Revocations and sessions are never cached.
//!
//! **Fail closed.** A backend that cannot answer — Redis down or too slow, an
//! I/O error — fails with [`ErrorKind::Unavailable`](portcullis_core::ErrorKind::Unavailable)
//! (503), never with an empty answer that would read as "no capabilities" or
//! "not revoked".
//!
//! # Examples
//!
//! Keep capabilities in a user file and change them at run time:
//!
//! ```
//! # async fn run() -> Result<(), portcullis_core::Error> {
//! use portcullis_capabilities::{Change, StoreConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("caps.yaml");
//! std::fs::write(&path, "admin@example.com: [admin]\nguest@example.com: []\n").unwrap();
//!
//! let config: StoreConfig = serde_yaml_ng::from_str(&format!(
//!     "kind: file\npath: {}\n",
//!     path.display()
//! ))
//! .unwrap();
//! let store = config.open().await?;
//!
//! assert_eq!(store.get("admin@example.com").await?.unwrap(), ["admin"]);
//! assert_eq!(store.get("guest@example.com").await?, Some(vec![]));
//! assert_eq!(store.get("stranger@example.com").await?, None);
//!
//! let caps = store
//!     .update("guest@example.com", Change::Set(vec!["write".into(), "read".into()]))
//!     .await?;
//! assert_eq!(caps, ["read", "write"]);
//! assert_eq!(store.list().await?.len(), 2);
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `redis` | yes     | [`RedisStore`] and [`RedisConfig`] (the `redis` crate with its Tokio connection manager), and `kind: redis` in [`StoreConfig`]. Without it, that kind fails to open with a configuration error. |
//! | `redis-cluster` | yes | [`RedisStore::connect_cluster`] and [`RedisClusterConfig`] (the `redis` crate's `cluster-async`), and `kind: redis_cluster` in [`StoreConfig`]. Without it, that kind fails to open with a configuration error. |

// The docs link the Redis items, which exist only with the `redis` and
// `redis-cluster` features.
#![cfg_attr(
    not(all(feature = "redis", feature = "redis-cluster")),
    allow(rustdoc::broken_intra_doc_links)
)]

mod config;
mod file;
mod memory;
#[cfg(feature = "redis")]
mod redis_store;
mod service;
mod store;

pub use config::{StoreConfig, Stores};
pub use file::{DEFAULT_RELOAD_INTERVAL, FileStore};
pub use memory::MemoryStore;
#[cfg(feature = "redis-cluster")]
pub use redis_store::RedisClusterConfig;
#[cfg(feature = "redis")]
pub use redis_store::{
    CacheStats, DEFAULT_CACHE_ENTRIES, DEFAULT_COMMAND_TIMEOUT, DEFAULT_PREFIX,
    DEFAULT_STALENESS_BOUND, InvalidationObserver, LocalCacheConfig, RedisConfig, RedisStore,
    managed_connection,
};
pub use service::{
    Capabilities, CapabilitiesBuilder, DEFAULT_SERVICE_TOKEN_TTL_SECS, DEFAULT_USER_TOKEN_TTL_SECS,
    LOGIN_CLAIM, MAX_BODY_BYTES, MIN_SECRET_KEY_LEN, SERVICE_ACCOUNT_SUFFIX, SERVICE_ISSUER,
    StoreRevocationCheck, user_key,
};
pub use store::{
    CapabilityStore, Change, ChangeCheck, Modified, RevocationStore, SessionStore, StoreFuture,
};
