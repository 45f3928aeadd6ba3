//! [`MemoryStore`]: capabilities and revocations held in the process, for tests
//! and single-process tools.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::{
    CapabilityStore, Change, RevocationStore, StoreFuture, normalize, validate_name,
    validate_update,
};

/// Below this many revocations, expired entries are not swept.
const SWEEP_FLOOR: usize = 1024;

/// A store that keeps everything in memory and forgets it when dropped.
///
/// Every replica of a service has its own: use it for tests, or where one
/// process is the only one deciding.
///
/// ```
/// # async fn run() -> Result<(), portcullis_core::Error> {
/// use portcullis_capabilities::{CapabilityStore, Change, MemoryStore};
/// let store = MemoryStore::with_users([("alice@example.com", ["write", "read"])]);
/// assert_eq!(store.get("alice@example.com").await?.unwrap(), ["read", "write"]);
/// store.update("bob@example.com", Change::Add("read".into())).await?;
/// assert_eq!(store.list().await?.len(), 2);
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(run()).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    users: RwLock<BTreeMap<String, Vec<String>>>,
    revoked: Mutex<Revoked>,
}

#[derive(Debug, Default)]
struct Revoked {
    /// Token id -> expiry (Unix seconds).
    entries: HashMap<String, u64>,
    /// The size at which expired entries are swept next.
    sweep_at: usize,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `users` and their capabilities (sorted and deduplicated).
    pub fn with_users<U, C, N>(users: impl IntoIterator<Item = (U, C)>) -> Self
    where
        U: Into<String>,
        C: IntoIterator<Item = N>,
        N: Into<String>,
    {
        let users = users
            .into_iter()
            .map(|(user, caps)| {
                let caps = caps.into_iter().map(Into::into).collect();
                (user.into(), normalize(caps))
            })
            .collect();
        Self {
            users: RwLock::new(users),
            revoked: Mutex::default(),
        }
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

// The maps are replaced whole within one statement, so a panic elsewhere
// never leaves them half-updated: a poisoned lock is safe to keep using.

impl CapabilityStore for MemoryStore {
    fn get<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Option<Vec<String>>> {
        Box::pin(async move {
            let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
            Ok(users.get(user).cloned())
        })
    }

    fn list(&self) -> StoreFuture<'_, BTreeMap<String, Vec<String>>> {
        Box::pin(async move {
            let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
            Ok(users.clone())
        })
    }

    fn update<'a>(&'a self, user: &'a str, change: Change) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            validate_update(user, &change)?;
            let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
            match change.apply(users.get(user).cloned()) {
                Some(caps) => {
                    users.insert(user.to_owned(), caps.clone());
                    Ok(caps)
                }
                None => Ok(Vec::new()),
            }
        })
    }
}

impl RevocationStore for MemoryStore {
    fn revoke<'a>(&'a self, token_id: &'a str, expires_at_unix: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            validate_name("token id", token_id)?;
            let now = unix_now();
            let mut revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
            if expires_at_unix <= now {
                // Already expired: nothing left to refuse.
                return Ok(());
            }
            revoked.entries.insert(token_id.to_owned(), expires_at_unix);
            if revoked.entries.len() >= revoked.sweep_at {
                revoked.entries.retain(|_, exp| *exp > now);
                revoked.sweep_at = (revoked.entries.len() * 2).max(SWEEP_FLOOR);
            }
            Ok(())
        })
    }

    fn is_revoked<'a>(&'a self, token_id: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
            Ok(revoked
                .entries
                .get(token_id)
                .is_some_and(|exp| *exp > unix_now()))
        })
    }
}
