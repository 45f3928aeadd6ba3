//! Automation principals: services and jobs that authenticate with an id
//! and a token, checked against a secret kept in a secret store (AWS Secrets
//! Manager, or any [`SecretSource`]).
//!
//! A request carries the principal's id in one header (default
//! `SMAC-Principal`) and its token in another (default `SMAC-Token`). The
//! secret named [`common_prefix`](AutomationConfig::common_prefix) + id
//! holds `{"token": "...", "id": "..."}`; the caller is known by the
//! secret's `id` ([`Principal::user_id`]) and is of kind
//! [`PrincipalKind::Automation`](crate::principal::PrincipalKind::Automation).
//! [`Authenticator::with_automation`](crate::Authenticator::with_automation)
//! adds them to an authenticator, so every adapter, gRPC service and worker
//! built on it accepts them.
//!
//! # Rules
//!
//! - **The token is compared in constant time**: the SHA-256 digests of the
//!   presented token and of the secret's are compared with
//!   `subtle::ConstantTimeEq`; only the digest is kept in memory.
//! - **Secrets are cached and refreshed like issuer keys.** A secret read at
//!   `t` serves until `t + refresh_secs`; then it is read again off the
//!   request path (single flight: one read per id however many requests).
//!   When the source cannot be reached, the last good value serves until
//!   `max_stale_secs` past its refresh time; after that, or when the secret
//!   was never read, the answer is 503, never a pass.
//! - **A rotated secret is in force within `refresh_secs`** (default 300 s).
//!   A request whose token does not match re-reads the secret at once, at
//!   most once per `min_refetch_interval_secs` (default 30 s) per id, so a
//!   caller that already holds the new token is usually accepted at its
//!   first request.
//! - **Unknown ids cost one read per `negative_ttl_secs`.** An id whose
//!   secret does not exist is remembered as unknown (at most
//!   `negative_capacity` ids, the least used forgotten first), so a flood of
//!   made-up ids is not a flood of reads; an id that is not a possible
//!   secret name (`A-Z a-z 0-9 / _ + = . @ -`, at most 256 bytes) is refused
//!   without any read, so an ARN or another store's path cannot be named.
//! - **Failed tokens are limited per principal**: after `max_failures`
//!   failures within `failure_window_secs`, the principal's requests are
//!   refused without comparing until the window ends. The answer is the same
//!   401 as for a wrong token or an unknown id
//!   ([`TokenRejection::InvalidPrincipal`]), so it tells no one which ids
//!   exist or are being guessed; the log says which.
//! - **A secret that is not the expected JSON is 502**: the store answered
//!   something that will not change by waiting (see the architecture's
//!   "a provider's unusable answer is not an outage"); the log names the
//!   secret, never its content.
//!
//! ```
//! # async fn run() -> Result<(), portcullis_core::Error> {
//! use std::sync::Arc;
//! use portcullis_core::automation::{AutomationConfig, AutomationPrincipals, MemorySecrets};
//!
//! let secrets = MemorySecrets::new();
//! secrets.put("services/reporter", r#"{"token": "t0k3n-of-the-reporter", "id": "reporter@example.com"}"#);
//! let config = AutomationConfig::default().with_common_prefix("services/");
//! let principals = AutomationPrincipals::new(config, Arc::new(secrets.clone()))?;
//!
//! let caller = principals.authenticate("reporter", "t0k3n-of-the-reporter").await?;
//! assert_eq!(caller.user_id(), "reporter@example.com");
//! assert!(caller.is_automation());
//! let wrong = principals.authenticate("reporter", "guess").await.unwrap_err();
//! assert_eq!(wrong.status(), 401);
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwapOption;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::clock::{self, SharedClock};
use crate::credentials::HeaderLookup;
use crate::error::{Error, TokenRejection};
use crate::principal::{Principal, RawToken};

/// The future [`SecretSource::get_secret`] returns: the secret's text,
/// `None` when no secret has that name.
pub type SecretFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<String>, Error>> + Send + 'a>>;

/// Where automation principals' secrets are read from.
///
/// `Ok(None)` means the secret does not exist (the id is unknown); an error
/// of kind [`Unavailable`](crate::ErrorKind::Unavailable) means the source
/// could not answer (503 unless a last good value serves).
pub trait SecretSource: Send + Sync + fmt::Debug + 'static {
    /// What automation principals' [`issuer`](Principal::issuer) says
    /// authenticated them (e.g. `aws-secretsmanager:eu-west-1`).
    fn issuer(&self) -> &str;

    /// The text of the secret named `name`.
    fn get_secret<'a>(&'a self, name: &'a str) -> SecretFuture<'a>;
}

/// How automation principals are found and how their secrets are cached.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AutomationConfig {
    /// The header carrying the principal's id (default `SMAC-Principal`).
    #[serde(default = "defaults::id_header")]
    pub id_header_name: String,
    /// The header carrying the principal's token (default `SMAC-Token`).
    #[serde(default = "defaults::token_header")]
    pub token_header_name: String,
    /// Put before the presented id to name its secret (default empty).
    #[serde(default)]
    pub common_prefix: String,
    /// How long a secret read serves before it is read again, in the
    /// background (default 300 s): a rotated secret is in force within this.
    #[serde(default = "defaults::refresh")]
    pub refresh_secs: u64,
    /// How long past its refresh time the last good secret serves while the
    /// source cannot be reached (default 3600 s); then 503.
    #[serde(default = "defaults::max_stale")]
    pub max_stale_secs: u64,
    /// A token that does not match re-reads the secret at most once per this
    /// interval and id (default 30 s).
    #[serde(default = "defaults::min_refetch")]
    pub min_refetch_interval_secs: u64,
    /// How long an id whose secret does not exist is remembered as unknown
    /// (default 60 s): one read per id per this interval.
    #[serde(default = "defaults::negative_ttl")]
    pub negative_ttl_secs: u64,
    /// How many unknown ids are remembered at most (default 10000).
    #[serde(default = "defaults::capacity")]
    pub negative_capacity: usize,
    /// How many known principals' secrets are kept at most (default 10000).
    #[serde(default = "defaults::capacity")]
    pub capacity: usize,
    /// Failed tokens allowed per principal within `failure_window_secs`
    /// (default 10); past it, the principal is refused until the window ends.
    #[serde(default = "defaults::max_failures")]
    pub max_failures: u32,
    /// The window of `max_failures` (default 60 s).
    #[serde(default = "defaults::failure_window")]
    pub failure_window_secs: u64,
}

mod defaults {
    pub(super) fn id_header() -> String {
        "SMAC-Principal".to_owned()
    }
    pub(super) fn token_header() -> String {
        "SMAC-Token".to_owned()
    }
    pub(super) fn refresh() -> u64 {
        300
    }
    pub(super) fn max_stale() -> u64 {
        3600
    }
    pub(super) fn min_refetch() -> u64 {
        30
    }
    pub(super) fn negative_ttl() -> u64 {
        60
    }
    pub(super) fn capacity() -> usize {
        10_000
    }
    pub(super) fn max_failures() -> u32 {
        10
    }
    pub(super) fn failure_window() -> u64 {
        60
    }
}

impl Default for AutomationConfig {
    fn default() -> Self {
        Self {
            id_header_name: defaults::id_header(),
            token_header_name: defaults::token_header(),
            common_prefix: String::new(),
            refresh_secs: defaults::refresh(),
            max_stale_secs: defaults::max_stale(),
            min_refetch_interval_secs: defaults::min_refetch(),
            negative_ttl_secs: defaults::negative_ttl(),
            negative_capacity: defaults::capacity(),
            capacity: defaults::capacity(),
            max_failures: defaults::max_failures(),
            failure_window_secs: defaults::failure_window(),
        }
    }
}

impl AutomationConfig {
    /// Sets the id and token header names.
    pub fn with_headers(mut self, id: impl Into<String>, token: impl Into<String>) -> Self {
        self.id_header_name = id.into();
        self.token_header_name = token.into();
        self
    }

    /// Sets the common prefix of secret names.
    pub fn with_common_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.common_prefix = prefix.into();
        self
    }

    /// Sets [`refresh_secs`](Self::refresh_secs).
    pub fn with_refresh_secs(mut self, secs: u64) -> Self {
        self.refresh_secs = secs;
        self
    }

    /// Sets [`max_stale_secs`](Self::max_stale_secs).
    pub fn with_max_stale_secs(mut self, secs: u64) -> Self {
        self.max_stale_secs = secs;
        self
    }

    /// Sets [`negative_ttl_secs`](Self::negative_ttl_secs).
    pub fn with_negative_ttl_secs(mut self, secs: u64) -> Self {
        self.negative_ttl_secs = secs;
        self
    }

    /// Sets [`max_failures`](Self::max_failures) and
    /// [`failure_window_secs`](Self::failure_window_secs).
    pub fn with_failure_limit(mut self, max_failures: u32, window_secs: u64) -> Self {
        self.max_failures = max_failures;
        self.failure_window_secs = window_secs;
        self
    }

    fn validate(&self) -> Result<(), Error> {
        let err = |key: &str, why: &str| {
            Error::config(format!(
                "configuration key `automation_principals.{key}`: {why}"
            ))
        };
        for (key, name) in [
            ("id_header_name", &self.id_header_name),
            ("token_header_name", &self.token_header_name),
        ] {
            if name.is_empty() || !name.bytes().all(is_header_name_byte) {
                return Err(err(key, "not a header name"));
            }
        }
        if self
            .id_header_name
            .eq_ignore_ascii_case(&self.token_header_name)
        {
            return Err(err("token_header_name", "the same header as the id"));
        }
        if !self.common_prefix.bytes().all(is_secret_name_byte) {
            return Err(err(
                "common_prefix",
                "only A-Z a-z 0-9 / _ + = . @ - may name a secret",
            ));
        }
        if self.refresh_secs == 0 {
            return Err(err("refresh_secs", "at least 1"));
        }
        if self.capacity == 0 || self.negative_capacity == 0 {
            return Err(err("capacity", "at least 1"));
        }
        if self.max_failures == 0 || self.failure_window_secs == 0 {
            return Err(err(
                "max_failures",
                "at least 1 failure in at least 1 second",
            ));
        }
        Ok(())
    }
}

fn is_header_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The characters AWS Secrets Manager allows in a secret name.
fn is_secret_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b)
}

/// The longest id accepted (AWS secret names have at most 512 characters).
const MAX_ID_BYTES: usize = 256;

/// What a secret read gave, kept until its refresh time.
#[derive(Debug)]
struct Loaded {
    content: Content,
    /// When it should be read again (ms since epoch).
    refresh_at: u64,
}

enum Content {
    /// The SHA-256 of the secret's token, and the principal's id.
    Secret { digest: [u8; 32], id: String },
    /// The secret is not `{"token": "...", "id": "..."}`.
    Malformed,
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Content::Secret { id, .. } => f
                .debug_struct("Secret")
                .field("id", id)
                .finish_non_exhaustive(),
            Content::Malformed => f.write_str("Malformed"),
        }
    }
}

/// One known (or being looked up) principal.
#[derive(Debug, Default)]
struct Slot {
    loaded: ArcSwapOption<Loaded>,
    /// Serializes reads: one in flight per id.
    fetch_lock: tokio::sync::Mutex<()>,
    /// Incremented when a read completes, whatever its outcome.
    attempts: AtomicU64,
    /// When the last read started (ms since epoch); 0: never.
    last_attempt: AtomicU64,
    /// Set while a background refresh is queued.
    kicked: AtomicBool,
    /// Why the last read failed.
    last_error: ArcSwapOption<Error>,
    /// Failed tokens: (window start in ms, count).
    failures: Mutex<(u64, u32)>,
}

/// Why a secret is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// Never read, or past the stale limit.
    Needed,
    /// A token did not match: perhaps the secret was rotated.
    Mismatch,
    /// The refresh time has come.
    Scheduled,
}

/// What a read found.
enum Read {
    Found,
    NotFound,
    Failed,
}

/// Automation principals over a [`SecretSource`]: see the [module docs](self).
/// Cheap to clone.
#[derive(Clone)]
pub struct AutomationPrincipals {
    inner: Arc<Inner>,
}

struct Inner {
    config: AutomationConfig,
    /// Lower-cased header names.
    id_header: String,
    token_header: String,
    source: Arc<dyn SecretSource>,
    clock: SharedClock,
    slots: quick_cache::sync::Cache<String, Arc<Slot>>,
    /// Unknown ids, with when they may be looked up again (ms since epoch).
    unknown: quick_cache::sync::Cache<String, u64>,
    /// Reads started, for tests and metrics.
    reads: AtomicUsize,
}

impl fmt::Debug for AutomationPrincipals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counts only: ids are not shown.
        f.debug_struct("AutomationPrincipals")
            .field("id_header", &self.inner.id_header)
            .field("token_header", &self.inner.token_header)
            .field("source", &self.inner.source)
            .field("known", &self.inner.slots.len())
            .field("unknown", &self.inner.unknown.len())
            .finish()
    }
}

/// An automation principal's credentials, as found in a request.
pub(crate) struct Presented<'a> {
    pub(crate) id: &'a str,
    pub(crate) token: &'a str,
}

impl fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presented")
            .field("id", &self.id)
            .field("token", &"[redacted]")
            .finish()
    }
}

impl AutomationPrincipals {
    /// Automation principals configured by `config`, their secrets read from
    /// `source`, on the system clock.
    ///
    /// # Errors
    ///
    /// A configuration error naming the bad key.
    pub fn new(config: AutomationConfig, source: Arc<dyn SecretSource>) -> Result<Self, Error> {
        Self::with_clock(config, source, clock::system())
    }

    /// [`new`](Self::new) on `clock` (tests use a
    /// [`ManualClock`](crate::clock::ManualClock)).
    ///
    /// # Errors
    ///
    /// A configuration error naming the bad key.
    pub fn with_clock(
        config: AutomationConfig,
        source: Arc<dyn SecretSource>,
        clock: SharedClock,
    ) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                id_header: config.id_header_name.to_ascii_lowercase(),
                token_header: config.token_header_name.to_ascii_lowercase(),
                slots: quick_cache::sync::Cache::new(config.capacity),
                unknown: quick_cache::sync::Cache::new(config.negative_capacity),
                config,
                source,
                clock,
                reads: AtomicUsize::new(0),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AutomationConfig {
        &self.inner.config
    }

    /// How many secret reads were started so far.
    pub fn reads(&self) -> usize {
        self.inner.reads.load(Ordering::Relaxed)
    }

    /// The id and token headers of a request: `None` when neither is there;
    /// 400 when only one is.
    pub(crate) fn find<'a>(
        &self,
        headers: &'a (impl HeaderLookup + ?Sized),
    ) -> Result<Option<Presented<'a>>, Error> {
        let value = |name: &str| {
            headers
                .header(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        match (
            value(&self.inner.id_header),
            value(&self.inner.token_header),
        ) {
            (None, None) => Ok(None),
            (Some(id), Some(token)) => Ok(Some(Presented { id, token })),
            _ => Err(Error::invalid_request(
                "an automation principal sends both its id and its token",
            )),
        }
    }

    /// The principal `id` if `token` matches its secret.
    ///
    /// # Errors
    ///
    /// - 401 ([`TokenRejection::InvalidPrincipal`]): unknown id, wrong token,
    ///   or too many failures lately;
    /// - 503: the secret was never read (or is past its stale limit) and the
    ///   source cannot be reached;
    /// - 502: the secret is not `{"token": "...", "id": "..."}`.
    pub async fn authenticate(&self, id: &str, token: &str) -> Result<Arc<Principal>, Error> {
        let result = self.authenticate_inner(id, token).await;
        if let Err(e) = &result {
            crate::refusals::record(e);
        }
        result
    }

    async fn authenticate_inner(&self, id: &str, token: &str) -> Result<Arc<Principal>, Error> {
        let inner = &*self.inner;
        let refused = || Error::invalid_token(TokenRejection::InvalidPrincipal);
        if id.is_empty() || id.len() > MAX_ID_BYTES || !id.bytes().all(is_secret_name_byte) {
            tracing::debug!("automation principal refused: not a possible secret name");
            return Err(refused());
        }
        let now = inner.clock.now_millis();
        if let Some(until) = inner.unknown.get(id) {
            if now < until {
                tracing::debug!("automation principal refused: unknown (remembered)");
                return Err(refused());
            }
            inner.unknown.remove(id);
        }
        let slot = match inner.slots.get(id) {
            Some(slot) => slot,
            None => {
                let fresh = Arc::new(Slot::default());
                match inner
                    .slots
                    .get_or_insert_with(id, || Ok::<_, std::convert::Infallible>(fresh))
                {
                    Ok(slot) => slot,
                    Err(never) => match never {},
                }
            }
        };
        if self.locked_out(&slot, now) {
            tracing::debug!("automation principal refused: too many failed tokens");
            return Err(refused());
        }
        let loaded = self.usable(id, &slot).await?;
        let digest = sha256(token.as_bytes());
        let loaded = if accepts(&loaded, &digest) {
            loaded
        } else {
            // Perhaps rotated, or fixed at the source: read again, at most
            // once per interval.
            let fresh = match slot.loaded.load_full() {
                Some(seen) if Arc::ptr_eq(&seen, &loaded) => {
                    match self.read(id, &slot, Trigger::Mismatch).await {
                        Read::NotFound => return Err(refused()),
                        Read::Found | Read::Failed => slot.loaded.load_full(),
                    }
                }
                other => other,
            };
            match fresh {
                Some(fresh) if accepts(&fresh, &digest) => fresh,
                Some(fresh) if matches!(fresh.content, Content::Malformed) => {
                    return Err(malformed(id, &inner.config.common_prefix));
                }
                _ => {
                    self.record_failure(&slot, now);
                    tracing::debug!("automation principal refused: the token does not match");
                    return Err(refused());
                }
            }
        };
        let Content::Secret { id: real, .. } = &loaded.content else {
            return Err(malformed(id, &inner.config.common_prefix));
        };
        let expires_at = loaded
            .refresh_at
            .saturating_add(inner.config.max_stale_secs * 1000)
            / 1000;
        Ok(Arc::new(Principal::automation(
            real.clone(),
            id,
            inner.source.issuer(),
            RawToken::new(token),
            expires_at,
        )))
    }

    fn locked_out(&self, slot: &Slot, now: u64) -> bool {
        let failures = slot.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (start, count) = *failures;
        now < start.saturating_add(self.inner.config.failure_window_secs * 1000)
            && count >= self.inner.config.max_failures
    }

    fn record_failure(&self, slot: &Slot, now: u64) {
        let mut failures = slot.failures.lock().unwrap_or_else(|e| e.into_inner());
        let window = self.inner.config.failure_window_secs * 1000;
        if now >= failures.0.saturating_add(window) {
            *failures = (now, 1);
        } else {
            failures.1 = failures.1.saturating_add(1);
        }
    }

    fn usable_until(&self, loaded: &Loaded) -> u64 {
        loaded
            .refresh_at
            .saturating_add(self.inner.config.max_stale_secs * 1000)
    }

    /// The secret as last read, when usable now; otherwise read first.
    async fn usable(&self, id: &str, slot: &Arc<Slot>) -> Result<Arc<Loaded>, Error> {
        let now = self.inner.clock.now_millis();
        if let Some(loaded) = slot.loaded.load_full()
            && now < self.usable_until(&loaded)
        {
            if now >= loaded.refresh_at {
                self.kick_refresh(id, slot);
            }
            return Ok(loaded);
        }
        let refused = || Error::invalid_token(TokenRejection::InvalidPrincipal);
        if let Read::NotFound = self.read(id, slot, Trigger::Needed).await {
            return Err(refused());
        }
        let now = self.inner.clock.now_millis();
        match slot.loaded.load_full() {
            Some(loaded) if now < self.usable_until(&loaded) => Ok(loaded),
            // Another task found the secret gone while this one waited.
            _ if self.inner.unknown.get(id).is_some() => Err(refused()),
            never_or_stale => {
                let e = if never_or_stale.is_none() {
                    Error::unavailable("the automation principal's secret could not be read")
                } else {
                    Error::unavailable(
                        "the automation principal's secret is stale and could not be read again",
                    )
                };
                Err(match slot.last_error.load_full() {
                    Some(cause) => e.with_source((*cause).clone()),
                    None => e,
                })
            }
        }
    }

    fn kick_refresh(&self, id: &str, slot: &Arc<Slot>) {
        if slot.kicked.swap(true, Ordering::AcqRel) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let me = self.clone();
                let slot = Arc::clone(slot);
                let id = id.to_owned();
                handle.spawn(async move {
                    me.read(&id, &slot, Trigger::Scheduled).await;
                    slot.kicked.store(false, Ordering::Release);
                });
            }
            Err(_) => slot.kicked.store(false, Ordering::Release),
        }
    }

    /// Reads the secret unless another task just did (single flight) or the
    /// interval for `trigger` forbids it. A failed read keeps the last good
    /// value; a secret that no longer exists forgets the id.
    async fn read(&self, id: &str, slot: &Arc<Slot>, trigger: Trigger) -> Read {
        let inner = &*self.inner;
        let seen = slot.attempts.load(Ordering::Acquire);
        let _guard = slot.fetch_lock.lock().await;
        if slot.attempts.load(Ordering::Acquire) != seen {
            // Another task read while this one waited: its outcome stands.
            return if inner.unknown.get(id).is_some() {
                Read::NotFound
            } else {
                Read::Found
            };
        }
        let now = inner.clock.now_millis();
        let last = slot.last_attempt.load(Ordering::Acquire);
        let min_gap = match trigger {
            // A source that just failed is not asked again by every request.
            Trigger::Needed => 1000,
            Trigger::Mismatch => inner.config.min_refetch_interval_secs * 1000,
            Trigger::Scheduled => 1000,
        };
        if last != 0 && now.saturating_sub(last) < min_gap {
            return Read::Failed;
        }
        slot.last_attempt.store(now.max(1), Ordering::Release);
        inner.reads.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}{id}", inner.config.common_prefix);
        let outcome = match inner.source.get_secret(&name).await {
            Ok(Some(text)) => {
                let content = parse_secret(&text).unwrap_or_else(|why| {
                    tracing::warn!(secret = %name, why, "an automation principal's secret is not usable");
                    Content::Malformed
                });
                let now = inner.clock.now_millis();
                slot.loaded.store(Some(Arc::new(Loaded {
                    content,
                    refresh_at: now + inner.config.refresh_secs * 1000,
                })));
                slot.last_error.store(None);
                Read::Found
            }
            Ok(None) => {
                tracing::debug!("an automation principal's secret does not exist");
                let until = now.saturating_add(inner.config.negative_ttl_secs * 1000);
                inner.unknown.insert(id.to_owned(), until);
                slot.loaded.store(None);
                inner.slots.remove(id);
                Read::NotFound
            }
            Err(e) => {
                tracing::warn!(secret = %name, error = %e, ?trigger, "reading an automation principal's secret failed; keeping the last good value");
                slot.last_error.store(Some(Arc::new(e)));
                Read::Failed
            }
        };
        slot.attempts.fetch_add(1, Ordering::AcqRel);
        outcome
    }
}

fn malformed(id: &str, prefix: &str) -> Error {
    Error::bad_gateway(format!(
        "the secret `{prefix}{id}` is not a JSON object with string members `token` and `id`"
    ))
}

/// Whether `digest` is that of the token of `loaded` (constant time).
fn accepts(loaded: &Loaded, digest: &[u8; 32]) -> bool {
    match &loaded.content {
        Content::Secret {
            digest: expected, ..
        } => bool::from(expected.ct_eq(digest)),
        Content::Malformed => false,
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// `{"token": "...", "id": "..."}`, both non-empty strings; other members
/// are ignored.
fn parse_secret(text: &str) -> Result<Content, &'static str> {
    #[derive(Deserialize)]
    struct Shape {
        token: String,
        id: String,
    }
    let not_usable = "not a JSON object with string members `token` and `id`";
    // An object only: serde would also read a struct from an array.
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| not_usable)?;
    if !value.is_object() {
        return Err(not_usable);
    }
    let shape = Shape::deserialize(value).map_err(|_| not_usable)?;
    if shape.token.is_empty() || shape.id.is_empty() {
        return Err("`token` or `id` is empty");
    }
    Ok(Content::Secret {
        digest: sha256(shape.token.as_bytes()),
        id: shape.id,
    })
}

/// An in-process [`SecretSource`], for tests and demonstrations: secrets
/// set in code, a switch to make it unreachable, and a count of reads.
/// Cheap to clone (clones share the secrets).
#[derive(Clone, Default)]
pub struct MemorySecrets {
    inner: Arc<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    secrets: RwLock<HashMap<String, String>>,
    unreachable: AtomicBool,
    reads: AtomicUsize,
}

impl fmt::Debug for MemorySecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self
            .inner
            .secrets
            .read()
            .map(|s| s.len())
            .unwrap_or_default();
        f.debug_struct("MemorySecrets")
            .field("secrets", &count)
            .finish_non_exhaustive()
    }
}

impl MemorySecrets {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the secret `name` to `text`.
    pub fn put(&self, name: impl Into<String>, text: impl Into<String>) {
        self.inner
            .secrets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.into(), text.into());
    }

    /// Removes the secret `name`.
    pub fn delete(&self, name: &str) {
        self.inner
            .secrets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// Makes every read fail as unavailable (true) or answer again (false).
    pub fn set_unreachable(&self, unreachable: bool) {
        self.inner.unreachable.store(unreachable, Ordering::Release);
    }

    /// How many reads were asked of this store.
    pub fn reads(&self) -> usize {
        self.inner.reads.load(Ordering::Acquire)
    }
}

impl SecretSource for MemorySecrets {
    fn issuer(&self) -> &str {
        "memory"
    }

    fn get_secret<'a>(&'a self, name: &'a str) -> SecretFuture<'a> {
        self.inner.reads.fetch_add(1, Ordering::AcqRel);
        let answer = if self.inner.unreachable.load(Ordering::Acquire) {
            Err(Error::unavailable(
                "the in-process secret store is switched off",
            ))
        } else {
            Ok(self
                .inner
                .secrets
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(name)
                .cloned())
        };
        Box::pin(async move { answer })
    }
}

#[cfg(test)]
mod tests;
