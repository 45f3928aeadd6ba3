//! Remote key sets: discovery, JWKS fetching, caching, refresh and staleness.
//!
//! The request path reads the current key set with one atomic load. Fetches
//! happen (a) the first time keys are needed, (b) in a background task when
//! the set reaches its refresh time (`Cache-Control: max-age` clamped to the
//! configured bounds), (c) when a token names an unknown `kid`, at most once per
//! `min_refetch_interval` however many requests ask (single flight). When the
//! provider is down, the last good keys serve until `max_stale` past their
//! refresh time; after that verification fails as unavailable, never as a pass.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::Value;

use crate::alg::Algorithm;
use crate::clock::SharedClock;
use crate::config::JwksConfig;
use crate::discovery::{Discovery, DiscoveryError};
use crate::error::Error;
use crate::fetch::{HttpFetch, max_age};
use crate::jws::parse_object;
use crate::keys::KeySet;

/// Where an issuer's keys come from.
#[derive(Debug, Clone)]
pub(crate) enum Location {
    /// A JWKS URL.
    Jwks(String),
    /// A discovery document, whose `issuer` must equal this issuer.
    Discovery { url: String, issuer: String },
}

/// A snapshot of an issuer's keys.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) keys: KeySet,
    /// When the keys were fetched (ms since epoch); 0 if never.
    pub(crate) fetched_at: u64,
    /// When they should be refreshed (ms since epoch).
    pub(crate) refresh_at: u64,
}

impl Snapshot {
    fn empty() -> Self {
        Self {
            keys: KeySet::default(),
            fetched_at: 0,
            refresh_at: 0,
        }
    }
}

/// An issuer's remote keys.
#[derive(Debug)]
pub(crate) struct RemoteKeys {
    location: Location,
    jwks_url: ArcSwap<Option<String>>,
    algorithms: Vec<Algorithm>,
    settings: JwksConfig,
    /// `danger_allow_plain_http`: the `jwks_uri` of a discovery document is
    /// held to the same rule as configured URLs.
    allow_plain_http: bool,
    fetch: Arc<dyn HttpFetch>,
    clock: SharedClock,
    current: ArcSwap<Snapshot>,
    /// Serializes fetches: one in flight per issuer.
    fetch_lock: tokio::sync::Mutex<()>,
    /// Incremented when a fetch attempt completes, successful or not.
    attempts: AtomicU64,
    /// When the last fetch attempt started (ms since epoch).
    last_attempt: AtomicU64,
    background: AtomicBool,
    /// Set while an off-request-path refresh is queued, so a busy service
    /// queues one, not one per request.
    kicked: AtomicBool,
    /// Why the last fetch failed, reported as the cause of `Unavailable` errors.
    last_error: arc_swap::ArcSwapOption<Error>,
}

/// Why keys are being fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// No keys yet, or the keys are past their stale limit: fetch unless one was just tried.
    Needed,
    /// A token names an unknown `kid`.
    UnknownKid,
    /// The refresh time has come.
    Scheduled,
}

impl RemoteKeys {
    pub(crate) fn new(
        location: Location,
        algorithms: Vec<Algorithm>,
        settings: JwksConfig,
        allow_plain_http: bool,
        fetch: Arc<dyn HttpFetch>,
        clock: SharedClock,
    ) -> Self {
        let jwks_url = match &location {
            Location::Jwks(url) => Some(url.clone()),
            Location::Discovery { .. } => None,
        };
        Self {
            location,
            jwks_url: ArcSwap::from_pointee(jwks_url),
            algorithms,
            settings,
            allow_plain_http,
            fetch,
            clock,
            current: ArcSwap::from_pointee(Snapshot::empty()),
            fetch_lock: tokio::sync::Mutex::new(()),
            attempts: AtomicU64::new(0),
            last_attempt: AtomicU64::new(0),
            background: AtomicBool::new(false),
            kicked: AtomicBool::new(false),
            last_error: arc_swap::ArcSwapOption::empty(),
        }
    }

    fn usable_until(&self, s: &Snapshot) -> u64 {
        s.refresh_at
            .saturating_add(self.settings.max_stale_secs * 1000)
    }

    /// Keys usable now: fetches first if there are none or they are past the stale limit.
    pub(crate) async fn usable(self: &Arc<Self>) -> Result<Arc<Snapshot>, Error> {
        let snap = self.current.load_full();
        let now = self.clock.now_millis();
        if snap.fetched_at != 0 && now < self.usable_until(&snap) {
            if now >= snap.refresh_at {
                // Due for refresh but still usable: refresh off the request path.
                self.kick_refresh();
            }
            return Ok(snap);
        }
        self.refresh(Trigger::Needed).await;
        let snap = self.current.load_full();
        let now = self.clock.now_millis();
        if snap.fetched_at != 0 && now < self.usable_until(&snap) {
            Ok(snap)
        } else {
            let e = if snap.fetched_at == 0 {
                Error::unavailable("the issuer's keys could not be fetched")
            } else {
                Error::unavailable("the issuer's keys are stale and could not be refreshed")
            };
            Err(match self.last_error.load_full() {
                Some(cause) => e.with_source((*cause).clone()),
                None => e,
            })
        }
    }

    /// Called when a token names a `kid` absent from `seen`: refetches at most
    /// once per interval and returns the keys now current.
    pub(crate) async fn after_unknown_kid(self: &Arc<Self>, seen: &Arc<Snapshot>) -> Arc<Snapshot> {
        let now_snap = self.current.load_full();
        if !Arc::ptr_eq(&now_snap, seen) {
            return now_snap;
        }
        self.refresh(Trigger::UnknownKid).await;
        self.current.load_full()
    }

    fn kick_refresh(self: &Arc<Self>) {
        let since = self
            .clock
            .now_millis()
            .saturating_sub(self.last_attempt.load(Ordering::Acquire));
        if since < self.settings.min_refresh_secs * 1000 || self.kicked.swap(true, Ordering::AcqRel)
        {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let me = Arc::clone(self);
                handle.spawn(async move {
                    me.refresh(Trigger::Scheduled).await;
                    me.kicked.store(false, Ordering::Release);
                });
            }
            Err(_) => self.kicked.store(false, Ordering::Release),
        }
    }

    /// Fetches new keys unless another task just did (single flight) or the
    /// rate limit forbids it. Failures keep the previous keys.
    async fn refresh(self: &Arc<Self>, trigger: Trigger) {
        let seen_attempts = self.attempts.load(Ordering::Acquire);
        let _guard = self.fetch_lock.lock().await;
        if self.attempts.load(Ordering::Acquire) != seen_attempts {
            // Another task fetched while this one waited: use its result.
            return;
        }
        let now = self.clock.now_millis();
        let last = self.last_attempt.load(Ordering::Acquire);
        let since = now.saturating_sub(last);
        let min_gap = match trigger {
            Trigger::UnknownKid => self.settings.min_refetch_interval_secs * 1000,
            // A needed fetch after a failure waits a little, so a down provider
            // is not hammered by every request.
            Trigger::Needed => 1000,
            Trigger::Scheduled => self.settings.min_refresh_secs * 1000,
        };
        if last != 0 && since < min_gap {
            tracing::debug!(?trigger, "key refetch skipped: rate limited");
            return;
        }
        self.last_attempt.store(now.max(1), Ordering::Release);
        let result = self.fetch_keys().await;
        match result {
            Ok(snapshot) => {
                tracing::debug!(keys = snapshot.keys.len(), ?trigger, "issuer keys fetched");
                self.current.store(Arc::new(snapshot));
                self.last_error.store(None);
                self.start_background();
            }
            Err(e) => {
                tracing::warn!(error = %e, ?trigger, "fetching issuer keys failed; keeping the last good keys");
                self.last_error.store(Some(Arc::new(e)));
            }
        }
        self.attempts.fetch_add(1, Ordering::AcqRel);
    }

    async fn fetch_keys(&self) -> Result<Snapshot, Error> {
        let url = match self.jwks_url.load().as_ref() {
            Some(url) => url.clone(),
            None => {
                let url = self.discover().await?;
                self.jwks_url.store(Arc::new(Some(url.clone())));
                url
            }
        };
        let resp = self
            .fetch
            .get_limited(&url, self.settings.max_response_bytes)
            .await?;
        if resp.status != 200 {
            return Err(Error::unavailable(format!(
                "the JWKS endpoint answered {}",
                resp.status
            )));
        }
        let doc = parse_object(&resp.body)
            .map_err(|_| Error::unavailable("the JWKS document is not a JSON object"))?;
        let (keys, skipped) = KeySet::from_jwks(&Value::Object(doc), &self.algorithms)?;
        for skip in &skipped {
            tracing::debug!(reason = %skip, "JWK skipped");
        }
        if keys.is_empty() {
            return Err(Error::unavailable("the JWKS document holds no usable key"));
        }
        let now = self.clock.now_millis();
        let s = &self.settings;
        let ttl = resp
            .cache_control
            .as_deref()
            .and_then(max_age)
            .unwrap_or(s.default_refresh_secs)
            .clamp(
                s.min_refresh_secs,
                s.max_refresh_secs.max(s.min_refresh_secs),
            );
        Ok(Snapshot {
            keys,
            fetched_at: now.max(1),
            refresh_at: now + ttl * 1000,
        })
    }

    async fn discover(&self) -> Result<String, Error> {
        let Location::Discovery { url, issuer } = &self.location else {
            return Err(Error::unavailable("no JWKS URL"));
        };
        // Keys travel over HTTPS only (loopback excepted), wherever their
        // URL comes from: a plain-http `jwks_uri` fails closed. Found while
        // verifying, every problem is a 503, never a pass.
        let found = Discovery::new(url)
            .issuer(issuer)
            .danger_allow_plain_http(self.allow_plain_http)
            .fetch(self.fetch.as_ref())
            .await
            .map_err(|e| match e {
                DiscoveryError::Fetch(e) => e,
                DiscoveryError::Status(status) => {
                    Error::unavailable(format!("the discovery endpoint answered {status}"))
                }
                DiscoveryError::Malformed => {
                    Error::unavailable("the discovery document is not a JSON object")
                }
                // A discovery document for another issuer is a misconfiguration or an attack (mix-up).
                DiscoveryError::OtherIssuer { .. }
                | DiscoveryError::Missing { field: "issuer" }
                | DiscoveryError::Invalid { field: "issuer" } => {
                    Error::unavailable("the discovery document names another issuer")
                }
                DiscoveryError::Invalid { field: "jwks_uri" } => {
                    Error::unavailable("the discovery document has no valid jwks_uri")
                }
                DiscoveryError::RefusedUrl { field, error } => {
                    Error::unavailable(format!("the discovery document's {field} is refused"))
                        .with_source(error)
                }
                e => Error::unavailable("the discovery document cannot be used").with_source(e),
            })?;
        let Some(jwks_uri) = found.jwks_uri() else {
            return Err(Error::unavailable(
                "the discovery document has no valid jwks_uri",
            ));
        };
        Ok(jwks_uri.as_str().to_owned())
    }

    /// Starts the background refresher once; it holds only a weak reference
    /// and ends when the verifier is dropped.
    fn start_background(self: &Arc<Self>) {
        if self.background.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.background.store(false, Ordering::Release);
            return;
        };
        let weak: Weak<Self> = Arc::downgrade(self);
        handle.spawn(async move {
            loop {
                let wait = {
                    let Some(me) = weak.upgrade() else { return };
                    let snap = me.current.load();
                    let now = me.clock.now_millis();
                    let until = if snap.refresh_at > now {
                        snap.refresh_at - now
                    } else {
                        me.settings.min_refresh_secs * 1000
                    };
                    Duration::from_millis(until.max(1000))
                };
                tokio::time::sleep(wait).await;
                let Some(me) = weak.upgrade() else { return };
                if me.clock.now_millis() >= me.current.load().refresh_at {
                    me.refresh(Trigger::Scheduled).await;
                }
            }
        });
    }
}
