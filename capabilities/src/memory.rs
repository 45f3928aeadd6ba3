//! [`MemoryStore`]: capabilities, revocations and sessions held in the
//! process, for tests and single-process tools.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock, TryLockError};
use std::time::{SystemTime, UNIX_EPOCH};

use portcullis_core::clock::{self, SharedClock};

use crate::store::{
    CapabilityStore, Change, ChangeCheck, Modified, RevocationStore, SessionStore, StoreFuture,
    normalize, validate_name, validate_update,
};

/// Below this many entries, expired revocations and sessions are not swept.
const SWEEP_FLOOR: usize = 1024;

/// A store that keeps everything in memory and forgets it when dropped.
///
/// Every replica of a service has its own: use it for tests, or where one
/// process is the only one deciding. Expiries (of revocations and sessions)
/// are read from a [`Clock`](portcullis_core::clock::Clock), the system clock
/// unless [`with_clock`](Self::with_clock) gives another. Expired entries are
/// swept whenever their number has doubled since the last sweep, so the store
/// holds at most about twice what is live.
///
/// [`is_revoked`](RevocationStore::is_revoked) takes no lock while the store
/// holds no revocation that is still in force: it compares the clock with the
/// latest expiry recorded (an atomic), so checking tokens costs nothing
/// while nothing is revoked.
///
/// Its `Debug` shows how many users, revocations and sessions it holds, never
/// their contents (sessions hold tokens).
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
pub struct MemoryStore {
    users: RwLock<BTreeMap<String, Vec<String>>>,
    revoked: Mutex<Expiring<()>>,
    /// The latest expiry among the entries of `revoked` (0: none). Raised
    /// under the `revoked` lock before a revocation returns, lowered only by a
    /// sweep (under the lock) to the latest that remains: once the clock
    /// reaches it, nothing is revoked, and `is_revoked` answers without the lock.
    revoked_until: AtomicU64,
    sessions: Mutex<Expiring<Vec<u8>>>,
    clock: SharedClock,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            users: RwLock::default(),
            revoked: Mutex::default(),
            revoked_until: AtomicU64::new(0),
            sessions: Mutex::default(),
            clock: clock::system(),
        }
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counts only: session bytes hold tokens. `try_` so that formatting
        // the store while one of its locks is held never deadlocks.
        fn count<T>(guard: Result<T, TryLockError<T>>, len: impl Fn(&T) -> usize) -> Option<usize> {
            match guard {
                Ok(g) => Some(len(&g)),
                Err(TryLockError::Poisoned(p)) => Some(len(&p.into_inner())),
                Err(TryLockError::WouldBlock) => None,
            }
        }
        let users = count(self.users.try_read(), |u| u.len());
        let revoked = count(self.revoked.try_lock(), |r| r.entries.len());
        let sessions = count(self.sessions.try_lock(), |s| s.entries.len());
        f.debug_struct("MemoryStore")
            .field("users", &users)
            .field("revocations", &revoked)
            .field("sessions", &sessions)
            .finish_non_exhaustive()
    }
}

/// Entries that lapse at an expiry (Unix seconds), swept as they accumulate.
struct Expiring<V> {
    /// Id -> value and expiry.
    entries: HashMap<String, (V, u64)>,
    /// The size at which expired entries are swept next.
    sweep_at: usize,
}

impl<V> Default for Expiring<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            sweep_at: SWEEP_FLOOR,
        }
    }
}

impl<V> Expiring<V> {
    /// The value under `id`, unless absent or expired at `now`.
    fn live(&self, id: &str, now: u64) -> Option<&(V, u64)> {
        self.entries.get(id).filter(|(_, exp)| *exp > now)
    }

    /// Stores `value` under `id` until `expires_at`, then sweeps if due.
    /// Returns the latest expiry left when a sweep ran.
    fn insert(&mut self, id: &str, value: V, expires_at: u64, now: u64) -> Option<u64> {
        self.entries.insert(id.to_owned(), (value, expires_at));
        if self.entries.len() >= self.sweep_at {
            self.entries.retain(|_, (_, exp)| *exp > now);
            self.sweep_at = (self.entries.len() * 2).max(SWEEP_FLOOR);
            return Some(
                self.entries
                    .values()
                    .map(|(_, exp)| *exp)
                    .max()
                    .unwrap_or(0),
            );
        }
        None
    }
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
            ..Self::default()
        }
    }

    /// Reads expiries from `clock` instead of the system clock.
    ///
    /// ```
    /// # async fn run() -> Result<(), portcullis_core::Error> {
    /// use std::sync::Arc;
    /// use portcullis_capabilities::{MemoryStore, RevocationStore};
    /// use portcullis_core::clock::ManualClock;
    /// let clock = ManualClock::new(1_000);
    /// let store = MemoryStore::new().with_clock(Arc::new(clock.clone()));
    /// assert!(store.revoke_once("login-1", 1_060).await?);
    /// assert!(!store.revoke_once("login-1", 1_060).await?);
    /// clock.advance_secs(60);
    /// assert!(!store.is_revoked("login-1").await?);
    /// # Ok(()) }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(run()).unwrap();
    /// ```
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Whether `token_id` is revoked now; no lock is taken while nothing is in force.
    fn revoked_now(&self, token_id: &str) -> bool {
        let now = self.now();
        if self.revoked_until.load(Ordering::SeqCst) <= now {
            return false;
        }
        let revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
        revoked.live(token_id, now).is_some()
    }

    fn now(&self) -> u64 {
        self.clock.now_secs()
    }

    /// Records `id` in `revoked` until `until`, keeping `revoked_until` at
    /// the latest expiry held; the caller holds the `revoked` lock.
    fn record(&self, revoked: &mut Expiring<()>, id: &str, until: u64, now: u64) {
        // Raised before the entry can be seen, lowered only after a sweep.
        self.revoked_until.fetch_max(until, Ordering::SeqCst);
        if let Some(latest) = revoked.insert(id, (), until, now) {
            self.revoked_until.store(latest, Ordering::SeqCst);
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

    fn modify<'a>(
        &'a self,
        user: &'a str,
        change: Change,
        check: &'a ChangeCheck<'a>,
    ) -> StoreFuture<'a, Modified> {
        Box::pin(async move {
            validate_update(user, &change)?;
            // The check and the write happen under one write lock.
            let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
            let before = users.get(user).cloned();
            check(before.as_deref())?;
            let after = change.apply(before.clone());
            if let Some(caps) = &after {
                users.insert(user.to_owned(), caps.clone());
            }
            Ok(Modified { before, after })
        })
    }
}

impl RevocationStore for MemoryStore {
    fn revoke<'a>(&'a self, token_id: &'a str, expires_at_unix: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            validate_name("token id", token_id)?;
            let now = self.now();
            if expires_at_unix <= now {
                // Already expired: nothing left to refuse.
                return Ok(());
            }
            let mut revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
            // Revoking again never shortens a revocation.
            let until = revoked
                .live(token_id, now)
                .map_or(expires_at_unix, |(_, exp)| expires_at_unix.max(*exp));
            self.record(&mut revoked, token_id, until, now);
            Ok(())
        })
    }

    fn is_revoked<'a>(&'a self, token_id: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move { Ok(self.revoked_now(token_id)) })
    }

    fn is_revoked_now(&self, token_id: &str) -> Option<bool> {
        Some(self.revoked_now(token_id))
    }

    fn revoke_once<'a>(&'a self, id: &'a str, expires_at_unix: u64) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            validate_name("id", id)?;
            // The check and the record happen under one lock.
            let mut revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
            let now = self.now();
            if expires_at_unix <= now || revoked.live(id, now).is_some() {
                return Ok(false);
            }
            self.record(&mut revoked, id, expires_at_unix, now);
            Ok(true)
        })
    }
}

impl SessionStore for MemoryStore {
    fn put<'a>(&'a self, id: &'a str, data: &'a [u8], expires_at_unix: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            validate_name("session id", id)?;
            let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            let now = self.now();
            if expires_at_unix <= now {
                sessions.entries.remove(id);
            } else {
                let _ = sessions.insert(id, data.to_vec(), expires_at_unix, now);
            }
            Ok(())
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            Ok(sessions.live(id, self.now()).map(|(data, _)| data.clone()))
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entries
                .remove(id);
            Ok(())
        })
    }

    fn put_new<'a>(
        &'a self,
        id: &'a str,
        data: &'a [u8],
        lease: std::time::Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            validate_name("session id", id)?;
            let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            let now = self.now();
            if sessions.live(id, now).is_some() {
                return Ok(false);
            }
            let secs = lease.as_secs() + u64::from(lease.subsec_nanos() > 0);
            let _ = sessions.insert(id, data.to_vec(), now.saturating_add(secs.max(1)), now);
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use portcullis_core::clock::ManualClock;

    use super::*;

    #[tokio::test]
    async fn expired_entries_are_swept_as_they_accumulate() {
        let clock = ManualClock::new(1_000);
        let store = MemoryStore::new().with_clock(Arc::new(clock.clone()));
        for i in 0..3 * SWEEP_FLOOR {
            let id = format!("s-{i}");
            SessionStore::put(&store, &id, b"x", 1_010).await.unwrap();
            store.revoke_once(&id, 1_010).await.unwrap();
        }
        clock.advance_secs(10);
        for i in 0..SWEEP_FLOOR {
            let id = format!("t-{i}");
            SessionStore::put(&store, &id, b"x", 2_000).await.unwrap();
            store.revoke_once(&id, 2_000).await.unwrap();
        }
        let sessions = store.sessions.lock().unwrap().entries.len();
        let revoked = store.revoked.lock().unwrap().entries.len();
        assert!(sessions <= 2 * SWEEP_FLOOR, "{sessions} sessions held");
        assert!(revoked <= 2 * SWEEP_FLOOR, "{revoked} revocations held");
        assert!(SessionStore::get(&store, "t-0").await.unwrap().is_some());
        assert!(store.is_revoked("t-0").await.unwrap());
    }

    #[tokio::test]
    async fn debug_shows_counts_never_contents() {
        let store = MemoryStore::with_users([("alice@example.com", ["secret-cap"])]);
        SessionStore::put(&store, "session-id-1", b"access-token-xyz", u64::MAX)
            .await
            .unwrap();
        store.revoke("jti-abc", u64::MAX).await.unwrap();
        let shown = format!("{store:?}");
        for hidden in [
            "alice",
            "secret-cap",
            "session-id-1",
            "access-token-xyz",
            "jti-abc",
        ] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
        assert!(shown.contains("users: Some(1)"), "{shown}");
        assert!(shown.contains("sessions: Some(1)"), "{shown}");
        assert!(shown.contains("revocations: Some(1)"), "{shown}");
        // Formatting while a lock is held answers rather than deadlocks.
        let _held = store.sessions.lock().unwrap();
        assert!(format!("{store:?}").contains("sessions: None"));
    }

    /// Whether `is_revoked(id)` answers while another thread holds the
    /// revocations lock: `true` if it answered before the lock was released.
    fn answers_without_the_lock(store: &Arc<MemoryStore>, id: &str) -> (bool, bool) {
        use std::sync::atomic::AtomicBool;
        let released = Arc::new(AtomicBool::new(false));
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let holder = {
            let (store, released) = (Arc::clone(store), Arc::clone(&released));
            std::thread::spawn(move || {
                let guard = store.revoked.lock().unwrap();
                locked_tx.send(()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(300));
                released.store(true, Ordering::SeqCst);
                drop(guard);
            })
        };
        locked_rx.recv().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let revoked = rt.block_on(store.is_revoked(id)).unwrap();
        let without_lock = !released.load(Ordering::SeqCst);
        holder.join().unwrap();
        (revoked, without_lock)
    }

    #[test]
    fn checks_take_no_lock_while_nothing_is_in_force() {
        let clock = ManualClock::new(1_000);
        let store = Arc::new(MemoryStore::new().with_clock(Arc::new(clock.clone())));
        assert_eq!(answers_without_the_lock(&store, "jti"), (false, true));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(store.revoke("jti", 1_010)).unwrap();
        // In force: the check takes the lock, and answers right.
        assert_eq!(answers_without_the_lock(&store, "jti"), (true, false));
        assert_eq!(answers_without_the_lock(&store, "other"), (false, false));
        // Expired: no lock again.
        clock.advance_secs(10);
        assert_eq!(answers_without_the_lock(&store, "jti"), (false, true));
    }
}
