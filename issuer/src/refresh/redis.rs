//! [`RedisRefreshStore`]: refresh families in Redis, shared by every replica.

use std::fmt;
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use portcullis_capabilities::RedisConfig;
use portcullis_core::Error;

use super::{RefreshStore, StoreFuture, millis};

/// Replaces a family's record only if it is still the expected one.
/// KEYS: the family. ARGV: expected, new record, TTL in milliseconds.
const REPLACE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"#;

/// Refresh families in Redis: one key per family,
/// `{prefix}refresh:{<family>}`. The family id is the key's hash tag, so
/// that on a Redis Cluster every key of one family (today one, tomorrow
/// its session) lives in one slot and families spread over the nodes.
/// Every change is a compare-and-set run by Redis atomically; Redis down
/// is `Unavailable` (503), never an answer.
#[derive(Clone)]
pub struct RedisRefreshStore {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
}

impl fmt::Debug for RedisRefreshStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRefreshStore")
            .field("prefix", &self.prefix)
            .field("command_timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: ::redis::RedisError) -> Error {
    Error::unavailable("Redis could not answer").with_source(e)
}

impl RedisRefreshStore {
    /// Connects to the Redis `config` names and checks that it answers.
    ///
    /// # Errors
    ///
    /// Kind `Config` for an invalid URL or a zero timeout; `Unavailable`
    /// when Redis cannot be reached within the command timeout.
    pub async fn connect(config: RedisConfig) -> Result<Self, Error> {
        let RedisConfig {
            url,
            prefix,
            command_timeout,
            // Refresh families are read and changed in one script each:
            // nothing of them is cached.
            local_cache: _,
        } = config;
        if command_timeout.is_zero() {
            return Err(Error::config("the Redis command timeout must not be zero"));
        }
        let conn = portcullis_capabilities::managed_connection(&url, command_timeout).await?;
        let store = Self {
            conn,
            prefix,
            timeout: command_timeout,
        };
        let mut conn = store.conn.clone();
        store
            .bounded(async move { ::redis::cmd("PING").query_async::<String>(&mut conn).await })
            .await?;
        Ok(store)
    }

    fn key(&self, family: &str) -> String {
        format!("{}refresh:{{{family}}}", self.prefix)
    }

    async fn bounded<T>(
        &self,
        call: impl Future<Output = ::redis::RedisResult<T>>,
    ) -> Result<T, Error> {
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| Error::unavailable("Redis did not answer in time"))?
            .map_err(unavailable)
    }
}

impl RefreshStore for RedisRefreshStore {
    fn get<'a>(&'a self, family: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let key = self.key(family);
            self.bounded(async move {
                ::redis::cmd("GET")
                    .arg(key)
                    .query_async::<Option<String>>(&mut conn)
                    .await
            })
            .await
        })
    }

    fn create<'a>(
        &'a self,
        family: &'a str,
        record: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let key = self.key(family);
            let set: Option<String> = self
                .bounded(async move {
                    ::redis::cmd("SET")
                        .arg(key)
                        .arg(record)
                        .arg("NX")
                        .arg("PX")
                        .arg(millis(ttl).max(1))
                        .query_async::<Option<String>>(&mut conn)
                        .await
                })
                .await?;
            Ok(set.is_some())
        })
    }

    fn replace<'a>(
        &'a self,
        family: &'a str,
        expected: &'a str,
        record: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let key = self.key(family);
            let done: i64 = self
                .bounded(async move {
                    ::redis::cmd("EVAL")
                        .arg(REPLACE)
                        .arg(1)
                        .arg(key)
                        .arg(expected)
                        .arg(record)
                        .arg(millis(ttl).max(1))
                        .query_async::<i64>(&mut conn)
                        .await
                })
                .await?;
            Ok(done == 1)
        })
    }

    fn delete<'a>(&'a self, family: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let key = self.key(family);
            self.bounded(async move {
                ::redis::cmd("DEL")
                    .arg(key)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await?;
            Ok(())
        })
    }
}
