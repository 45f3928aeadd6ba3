//! Login sessions and login transactions: what they hold, how they travel
//! (sealed cookie, or a sealed id and the store), and the single-flight
//! refresh of their access tokens.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_capabilities::SessionStore;
use portcullis_core::Error;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::config::SessionStorage;
use crate::seal::{CookieAttrs, Sealer};

/// The session cookie's base name.
pub(crate) const SESSION_COOKIE: &str = "portcullis-session";
/// The login transaction cookie's base name.
pub(crate) const LOGIN_COOKIE: &str = "portcullis-login";
/// The largest `name=value` a browser is sure to keep (RFC 6265 asks for at
/// least 4096 bytes including attributes).
pub(crate) const MAX_COOKIE_BYTES: usize = 4000;

/// A logged-in user's session. Its `Debug` shows no token and no session id.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct SessionData {
    /// Random session id, renewed at every login.
    pub(crate) sid: String,
    /// The provider's issuer.
    pub(crate) iss: String,
    /// Identity claims from the ID token (and userinfo): `sub`, `email`, ...
    pub(crate) claims: Map<String, Value>,
    /// The provider's access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) access_token: Option<String>,
    /// When the access token expires (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) access_expires_at: Option<u64>,
    /// The provider's refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<String>,
    /// The ID token, for `id_token_hint` at logout (dropped when the cookie
    /// would be too large).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id_token: Option<String>,
    /// When the session ends (unix seconds).
    pub(crate) expires_at: u64,
    /// The login record holding the provider's refresh token, when the
    /// provider gave one (see [`LoginRecord`]); `refresh_token` is then
    /// `None` here, so that the token is redeemed in one place only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) login: Option<String>,
    /// When the provider last accepted the refresh token (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) checked_at: Option<u64>,
}

impl SessionData {
    /// Whether the access token is due for a refresh at `now`.
    pub(crate) fn needs_refresh(&self, now: u64, leeway: u64) -> bool {
        self.refresh_token.is_some()
            && self
                .access_expires_at
                .is_some_and(|exp| now.saturating_add(leeway) >= exp)
    }
}

impl fmt::Debug for SessionData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionData")
            .field("sid", &REDACTED)
            .field("iss", &self.iss)
            .field("sub", &self.claims.get("sub"))
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| REDACTED),
            )
            .field("access_expires_at", &self.access_expires_at)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| REDACTED),
            )
            .field("id_token", &self.id_token.as_ref().map(|_| REDACTED))
            .field("expires_at", &self.expires_at)
            .field("login", &self.login.as_ref().map(|_| REDACTED))
            .field("checked_at", &self.checked_at)
            .finish_non_exhaustive()
    }
}

/// What `Debug` shows for a secret value.
const REDACTED: &str = "<redacted>";

/// A started login: what the callback must find again. Its `Debug` shows
/// none of the secrets (`state`, `nonce`, PKCE verifier).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Transaction {
    pub(crate) state: String,
    pub(crate) nonce: String,
    pub(crate) pkce_verifier: String,
    /// Where to go after login (already checked to be a safe path).
    pub(crate) return_to: String,
    pub(crate) expires_at: u64,
    /// The headless login this browser login completes, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) headless: Option<String>,
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("state", &REDACTED)
            .field("nonce", &REDACTED)
            .field("pkce_verifier", &REDACTED)
            .field("return_to", &self.return_to)
            .field("expires_at", &self.expires_at)
            .field("headless", &self.headless.is_some())
            .finish()
    }
}

/// Encodes and decodes sessions and transactions to and from cookies.
#[derive(Debug)]
pub(crate) struct Codec {
    pub(crate) sealer: Sealer,
    pub(crate) attrs: CookieAttrs,
    pub(crate) session_name: String,
    pub(crate) login_name: String,
    pub(crate) storage: SessionStorage,
    pub(crate) store: Arc<dyn SessionStore>,
}

/// What a session cookie turned out to hold.
#[derive(Debug)]
pub(crate) enum Loaded {
    /// No session cookie.
    None,
    /// A cookie that is not (or no longer) a session: to be cleared.
    Invalid,
    /// A session.
    Session(Box<SessionData>),
}

/// Why a session could not be written.
#[derive(Debug)]
pub(crate) enum SaveError {
    /// The cookie would exceed [`MAX_COOKIE_BYTES`] even without the ID token.
    TooLarge(usize),
    /// Sealing or the store failed.
    Failed(Error),
}

impl Codec {
    /// The session in the request's `Cookie` header.
    pub(crate) async fn load(&self, cookie_header: Option<&str>) -> Result<Loaded, Error> {
        let Some(value) = crate::seal::find_cookie(cookie_header, &self.session_name) else {
            return Ok(Loaded::None);
        };
        let Some(plain) = self.sealer.open(&self.session_name, value) else {
            return Ok(Loaded::Invalid);
        };
        let bytes = match self.storage {
            SessionStorage::Cookie => plain,
            SessionStorage::Server => {
                let Ok(sid) = std::str::from_utf8(&plain) else {
                    return Ok(Loaded::Invalid);
                };
                match self.store.get(&store_key(sid)).await? {
                    Some(bytes) => bytes,
                    None => return Ok(Loaded::Invalid),
                }
            }
        };
        match serde_json::from_slice::<SessionData>(&bytes) {
            Ok(s) => Ok(Loaded::Session(Box::new(s))),
            Err(_) => Ok(Loaded::Invalid),
        }
    }

    /// The `Set-Cookie` header that stores `session` (and, for server-side
    /// sessions, the stored copy), living until the session ends.
    pub(crate) async fn save(&self, session: &SessionData, now: u64) -> Result<String, SaveError> {
        let max_age = session.expires_at.saturating_sub(now);
        match self.storage {
            SessionStorage::Cookie => {
                let mut data = session.clone();
                let mut value = self.seal_session(&data)?;
                if self.session_name.len() + 1 + value.len() > MAX_COOKIE_BYTES
                    && data.id_token.is_some()
                {
                    // The ID token only serves as a logout hint; the client id stands in for it.
                    data.id_token = None;
                    value = self.seal_session(&data)?;
                }
                let size = self.session_name.len() + 1 + value.len();
                if size > MAX_COOKIE_BYTES {
                    return Err(SaveError::TooLarge(size));
                }
                Ok(self.attrs.set(&self.session_name, &value, max_age))
            }
            SessionStorage::Server => {
                let bytes = serde_json::to_vec(session).map_err(|e| {
                    SaveError::Failed(
                        Error::unavailable("encoding the session failed").with_source(e),
                    )
                })?;
                self.store
                    .put(&store_key(&session.sid), &bytes, session.expires_at)
                    .await
                    .map_err(SaveError::Failed)?;
                let value = self
                    .sealer
                    .seal(&self.session_name, session.sid.as_bytes())
                    .map_err(SaveError::Failed)?;
                Ok(self.attrs.set(&self.session_name, &value, max_age))
            }
        }
    }

    fn seal_session(&self, data: &SessionData) -> Result<String, SaveError> {
        let bytes = serde_json::to_vec(data).map_err(|e| {
            SaveError::Failed(Error::unavailable("encoding the session failed").with_source(e))
        })?;
        self.sealer
            .seal(&self.session_name, &bytes)
            .map_err(SaveError::Failed)
    }

    /// The login record `id` (see [`LoginRecord`]), if the store holds it.
    pub(crate) async fn load_login(&self, id: &str) -> Result<Option<LoginRecord>, Error> {
        let Some(bytes) = self.store.get(&login_key(id)).await? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice::<LoginRecord>(&bytes).ok())
    }

    /// Stores a login record until it expires.
    pub(crate) async fn save_login(&self, record: &LoginRecord) -> Result<(), Error> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| Error::unavailable("encoding the login failed").with_source(e))?;
        self.store
            .put(&login_key(&record.sid), &bytes, record.expires_at)
            .await
    }

    /// Deletes login record `id`: every token bound to it is refused from now on.
    pub(crate) async fn forget_login(&self, id: &str) -> Result<(), Error> {
        self.store.delete(&login_key(id)).await
    }

    /// Removes a server-side session's stored copy.
    pub(crate) async fn forget(&self, sid: &str) -> Result<(), Error> {
        if self.storage == SessionStorage::Server {
            self.store.delete(&store_key(sid)).await?;
        }
        Ok(())
    }

    /// `Set-Cookie` clearing the session.
    pub(crate) fn clear_session(&self) -> String {
        self.attrs.clear(&self.session_name)
    }

    /// `Set-Cookie` for a login transaction.
    pub(crate) fn save_transaction(&self, tx: &Transaction, max_age: u64) -> Result<String, Error> {
        let bytes = serde_json::to_vec(tx)
            .map_err(|e| Error::unavailable("encoding the login failed").with_source(e))?;
        let value = self.sealer.seal(&self.login_name, &bytes)?;
        Ok(self.attrs.set(&self.login_name, &value, max_age))
    }

    /// The login transaction in the request's `Cookie` header, if any and intact.
    pub(crate) fn load_transaction(&self, cookie_header: Option<&str>) -> Option<Transaction> {
        let value = crate::seal::find_cookie(cookie_header, &self.login_name)?;
        let plain = self.sealer.open(&self.login_name, value)?;
        serde_json::from_slice(&plain).ok()
    }

    /// `Set-Cookie` clearing the login transaction.
    pub(crate) fn clear_transaction(&self) -> String {
        self.attrs.clear(&self.login_name)
    }

    /// Takes the refresh lock of flight `key` in the shared store, for
    /// [`REFRESH_LEASE`]; answers whether this replica holds it now.
    pub(crate) async fn take_refresh_lock(&self, key: &str) -> Result<bool, Error> {
        self.store
            .put_new(&format!("refresh-lock:{key}"), b"", REFRESH_LEASE)
            .await
    }

    /// Releases the refresh lock of flight `key`.
    pub(crate) async fn release_refresh_lock(&self, key: &str) -> Result<(), Error> {
        self.store.delete(&format!("refresh-lock:{key}")).await
    }

    /// The outcome of flight `key` that a replica published, if any. A
    /// stored value that does not open (another secret key) counts as none.
    pub(crate) async fn published_refresh(&self, key: &str) -> Result<Option<Refreshed>, Error> {
        let Some(bytes) = self.store.get(&format!("refresh-outcome:{key}")).await? else {
            return Ok(None);
        };
        let Some(plain) = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|sealed| self.sealer.open(REFRESH_OUTCOME, sealed))
        else {
            return Ok(None);
        };
        Ok(match serde_json::from_slice::<SharedOutcome>(&plain) {
            Ok(SharedOutcome::Renewed(data)) => Some(Refreshed::Renewed(data)),
            Ok(SharedOutcome::Ended) => Some(Refreshed::Ended),
            Err(_) => None,
        })
    }

    /// Publishes the outcome of flight `key` to the other replicas until
    /// `until` (Unix seconds), sealed: it holds tokens. An unavailable
    /// provider is no outcome and is never published.
    pub(crate) async fn publish_refresh(
        &self,
        key: &str,
        outcome: &Refreshed,
        until: u64,
    ) -> Result<(), Error> {
        let shared = match outcome {
            Refreshed::Renewed(data) => SharedOutcome::Renewed(data.clone()),
            Refreshed::Ended => SharedOutcome::Ended,
            Refreshed::Unavailable(_) => return Ok(()),
        };
        let plain = serde_json::to_vec(&shared)
            .map_err(|e| Error::unavailable("encoding a refresh failed").with_source(e))?;
        let sealed = self.sealer.seal(REFRESH_OUTCOME, &plain)?;
        self.store
            .put(&format!("refresh-outcome:{key}"), sealed.as_bytes(), until)
            .await
    }
}

/// The associated data refresh outcomes are sealed under in the store, so
/// that one never opens as a cookie (or the reverse).
const REFRESH_OUTCOME: &str = "portcullis-refresh-outcome";

/// How long a replica may hold a session's refresh lock: far beyond the
/// provider's answer (the HTTP client's total timeout), and the bound on how
/// long the other replicas wait for a replica that died while refreshing.
pub(crate) const REFRESH_LEASE: Duration = Duration::from_secs(15);

/// What a replica publishes of a refresh for the others.
#[derive(Serialize, Deserialize)]
enum SharedOutcome {
    Renewed(Box<SessionData>),
    Ended,
}

/// The store key of a server-side session.
fn store_key(sid: &str) -> String {
    format!("session:{sid}")
}

/// A login record: the one holder of a login's provider refresh token,
/// in the session store under `login:{id}`, its id in `sid`. The session
/// and every user token minted from it name it (`login`, the
/// `portcullis_login` claim); refreshing the session's access token and
/// re-checking the login with the provider both redeem its refresh token,
/// under the same single-flight refresh as sessions (in the process and,
/// through the store's refresh lock, across replicas), and the rotated
/// token replaces it here. A missing record is a login that ended: its
/// tokens are refused. `checked_at` is when the provider last accepted it.
pub(crate) type LoginRecord = SessionData;

/// The store key of login record `id`.
fn login_key(id: &str) -> String {
    format!("login:{id}")
}

/// The revocation id that marks session `sid` as ended.
pub(crate) fn ended_id(sid: &str) -> String {
    format!("session-ended:{sid}")
}

/// The outcome of a refresh.
#[derive(Debug, Clone)]
pub(crate) enum Refreshed {
    /// New tokens; the session continues.
    Renewed(Box<SessionData>),
    /// The provider refused (or changed the identity): the session ends.
    Ended,
    /// The provider could not be reached.
    Unavailable(Error),
}

/// One refresh in flight (or just finished) for one session and refresh token.
#[derive(Debug)]
struct Flight {
    /// `None` until the refresh task finishes.
    outcome: watch::Receiver<Option<Refreshed>>,
    started_at: u64,
}

impl Flight {
    /// Whether the flight is over without an outcome worth remembering: the
    /// provider (or the store) could not answer, or the task died. The next
    /// request tries again.
    fn failed(&self) -> bool {
        match &*self.outcome.borrow() {
            Some(Refreshed::Unavailable(_)) => true,
            Some(_) => false,
            None => self.outcome.has_changed().is_err(),
        }
    }
}

/// Refreshes running per session: requests arriving together with the same
/// session and refresh token share one call to the provider, and a request
/// arriving shortly after (carrying the old cookie) gets the same outcome
/// instead of replaying a rotated refresh token. Each refresh runs as a
/// task of its own, so that it completes (and its rotated token is kept)
/// when the request that started it is cancelled. An unavailable provider
/// is not remembered: the next request tries again.
#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<String, Arc<Flight>>>,
}

impl fmt::Debug for Flights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys hold session ids and the outcomes tokens: only the count shows.
        let n = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        f.debug_struct("Flights").field("in_memory", &n).finish()
    }
}

/// What this process remembers of the logins it checked with the provider:
/// when the provider last accepted each (so that a token of a login checked
/// within the interval costs no store read), and when it last could not be
/// reached (so that a provider that is down is asked again at most every
/// [`LOGIN_RETRY_SECS`], not on every request). A sharded cache of bounded
/// size ([`LOGIN_MEMO_CAPACITY`]): no request waits on a global lock, and a
/// forgotten entry costs one store read.
pub(crate) struct LoginMemo {
    cache: quick_cache::sync::Cache<String, Memo>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Memo {
    checked_at: u64,
    failed_at: Option<u64>,
}

/// How many logins a process remembers the checks of.
pub(crate) const LOGIN_MEMO_CAPACITY: usize = 100_000;

/// How often a provider that could not be reached is asked again about a
/// login whose last good check still serves.
pub(crate) const LOGIN_RETRY_SECS: u64 = 10;

impl Default for LoginMemo {
    fn default() -> Self {
        Self {
            cache: quick_cache::sync::Cache::new(LOGIN_MEMO_CAPACITY),
        }
    }
}

impl fmt::Debug for LoginMemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys name logins: only the count shows.
        f.debug_struct("LoginMemo")
            .field("remembered", &self.cache.len())
            .finish()
    }
}

impl LoginMemo {
    /// When the provider last accepted login `id`, as far as this process knows.
    pub(crate) fn checked_at(&self, id: &str) -> Option<u64> {
        self.cache.get(id).map(|m| m.checked_at)
    }

    /// When the provider last could not be reached about login `id`.
    pub(crate) fn failed_at(&self, id: &str) -> Option<u64> {
        self.cache.get(id).and_then(|m| m.failed_at)
    }

    /// Records that the provider accepted login `id` at `at`.
    pub(crate) fn checked(&self, id: &str, at: u64) {
        self.cache.insert(
            id.to_owned(),
            Memo {
                checked_at: at,
                failed_at: None,
            },
        );
    }

    /// Records that the provider could not be reached about login `id` at
    /// `at`; `checked_at` is the last good check.
    pub(crate) fn failed(&self, id: &str, checked_at: u64, at: u64) {
        self.cache.insert(
            id.to_owned(),
            Memo {
                checked_at,
                failed_at: Some(at),
            },
        );
    }

    /// Forgets login `id` (it ended).
    pub(crate) fn forget(&self, id: &str) {
        self.cache.remove(id);
    }
}

/// How long a finished refresh's outcome is kept for late requests, in
/// the process and in the shared store.
pub(crate) const FLIGHT_MEMORY_SECS: u64 = 120;

/// The flight of `session`'s current refresh token: its session id and a
/// digest of the token (never the token itself).
pub(crate) fn flight_key(session: &SessionData) -> String {
    let token = session.refresh_token.as_deref().unwrap_or_default();
    let hash = digest::digest(&digest::SHA256, token.as_bytes());
    format!(
        "{}:{}",
        session.sid,
        URL_SAFE_NO_PAD.encode(&hash.as_ref()[..16])
    )
}

impl Flights {
    /// Runs `refresh` once, as a task of its own, for `session`'s current
    /// refresh token, or joins the run in progress (or just finished).
    pub(crate) async fn run<F, Fut>(&self, session: &SessionData, now: u64, refresh: F) -> Refreshed
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Refreshed> + Send + 'static,
    {
        let key = flight_key(session);
        let mut outcome = {
            // Held only to find or insert the flight; never across an await.
            let mut map = self
                .map
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.retain(|_, f| now.saturating_sub(f.started_at) < FLIGHT_MEMORY_SECS && !f.failed());
            match map.get(&key) {
                Some(flight) => flight.outcome.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    let task = refresh();
                    tokio::spawn(async move {
                        let _ = tx.send(Some(task.await));
                    });
                    map.insert(
                        key,
                        Arc::new(Flight {
                            outcome: rx.clone(),
                            started_at: now,
                        }),
                    );
                    rx
                }
            }
        };
        match outcome.wait_for(Option::is_some).await {
            Ok(done) => done.clone().unwrap_or_else(|| {
                Refreshed::Unavailable(Error::unavailable("the session refresh did not complete"))
            }),
            Err(_) => {
                Refreshed::Unavailable(Error::unavailable("the session refresh did not complete"))
            }
        }
    }

    /// The number of remembered flights (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn session(rt: &str) -> SessionData {
        SessionData {
            sid: "s".into(),
            iss: "i".into(),
            claims: Map::new(),
            access_token: Some("a".into()),
            access_expires_at: Some(100),
            refresh_token: Some(rt.into()),
            id_token: None,
            expires_at: 1000,
            login: None,
            checked_at: None,
        }
    }

    #[tokio::test]
    async fn concurrent_refreshes_share_one_call() {
        let flights = Flights::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let s = session("r1");
        let run = || async {
            let calls = Arc::clone(&calls);
            flights
                .run(&s, 100, || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    Refreshed::Ended
                })
                .await
        };
        let (a, b, c) = tokio::join!(run(), run(), run());
        assert!(matches!(
            (a, b, c),
            (Refreshed::Ended, Refreshed::Ended, Refreshed::Ended)
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Another refresh token is another flight; old flights are forgotten in time.
        flights
            .run(&session("r2"), 100, || async { Refreshed::Ended })
            .await;
        assert_eq!(flights.len(), 2);
        flights
            .run(&session("r3"), 100 + FLIGHT_MEMORY_SECS, || async {
                Refreshed::Ended
            })
            .await;
        assert_eq!(flights.len(), 1);
    }

    #[tokio::test]
    async fn an_unavailable_provider_is_not_remembered() {
        let flights = Flights::default();
        let s = session("r1");
        let down = flights
            .run(&s, 100, || async {
                Refreshed::Unavailable(Error::unavailable("down"))
            })
            .await;
        assert!(matches!(down, Refreshed::Unavailable(_)));
        // The next request, a second later, asks the provider again.
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let up = flights
            .run(&s, 101, || async move {
                counted.fetch_add(1, Ordering::SeqCst);
                Refreshed::Ended
            })
            .await;
        assert!(matches!(up, Refreshed::Ended));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // A real outcome is remembered: no third call.
        let again = flights
            .run(&s, 102, || async {
                Refreshed::Unavailable(Error::unavailable("not asked"))
            })
            .await;
        assert!(matches!(again, Refreshed::Ended));
    }

    #[tokio::test]
    async fn a_refresh_completes_when_its_request_is_cancelled() {
        let flights = Arc::new(Flights::default());
        let s = session("r1");
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let finished = Arc::new(AtomicUsize::new(0));
        let done = Arc::clone(&finished);
        let request = {
            let flights = Arc::clone(&flights);
            let s = s.clone();
            tokio::spawn(async move {
                flights
                    .run(&s, 100, || async move {
                        let _ = released.await;
                        done.fetch_add(1, Ordering::SeqCst);
                        Refreshed::Ended
                    })
                    .await
            })
        };
        // The request is cancelled while the refresh runs.
        while flights.len() == 0 {
            tokio::task::yield_now().await;
        }
        request.abort();
        assert!(request.await.unwrap_err().is_cancelled());
        let _ = release.send(());
        // A later request gets the outcome without a second refresh.
        let later = flights
            .run(&s, 101, || async {
                Refreshed::Unavailable(Error::unavailable("not asked"))
            })
            .await;
        assert!(matches!(later, Refreshed::Ended));
        assert_eq!(finished.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn debug_shows_no_token_and_no_login_secret() {
        let mut s = session("s3cr3t-refresh");
        s.sid = "s3cr3t-sid".into();
        s.access_token = Some("s3cr3t-access".into());
        s.id_token = Some("s3cr3t-id".into());
        let tx = Transaction {
            state: "s3cr3t-state".into(),
            nonce: "s3cr3t-nonce".into(),
            pkce_verifier: "s3cr3t-verifier".into(),
            return_to: "/read".into(),
            expires_at: 1,
            headless: Some("s3cr3t-headless".into()),
        };
        let flights = Flights::default();
        let shown = format!(
            "{s:?} {tx:?} {:?} {flights:?}",
            Refreshed::Renewed(Box::new(s.clone()))
        );
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("/read"), "{shown}");
    }

    #[test]
    fn refresh_is_due_near_expiry_only_with_a_refresh_token() {
        let s = session("r");
        assert!(!s.needs_refresh(50, 30));
        assert!(s.needs_refresh(70, 30));
        let mut no_rt = s;
        no_rt.refresh_token = None;
        assert!(!no_rt.needs_refresh(200, 30));
    }
}
