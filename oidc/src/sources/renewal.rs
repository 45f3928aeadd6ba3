//! The renewal state machine shared by the renewing sources: the token
//! [`Held`] and what is known about it (expiry, lifetime, refresh token,
//! whether the provider refused for good), when it is due, and
//! [`Renewing`], which runs one renewal at a time however many tasks ask
//! (single flight) and lets each waiter share its outcome. A renewal runs in
//! its own task, so it ends (and a rotated refresh token is kept) even when
//! the caller that started it gives up.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use portcullis_core::clock::{self, SharedClock};
use portcullis_core::{Error, ErrorKind, RawToken};

use super::token_endpoint::{Grant, Issued, TokenEndpoint};

/// How long before expiry a token is renewed, by default.
const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// A token kept by a renewing source, and what is known about it.
#[derive(Debug, Default)]
pub(super) struct Held {
    pub(super) access_token: Option<RawToken>,
    /// When the access token expires (unix seconds); `None`: renewed only
    /// after a rejection.
    pub(super) expires_at: Option<u64>,
    /// How long the access token lives, when the provider said.
    pub(super) lifetime: Option<u64>,
    pub(super) refresh_token: Option<RawToken>,
    /// How many renewals have finished, successful or not.
    finished: u64,
    /// The error of the last renewal, when it failed.
    last_error: Option<Error>,
    /// A refusal that ends the source: every later call fails with it.
    dead: Option<Error>,
}

impl Held {
    fn store(&mut self, issued: Issued) {
        self.access_token = Some(issued.access_token);
        self.expires_at = issued.expires_at;
        self.lifetime = issued.expires_in;
        if let Some(rt) = issued.refresh_token {
            self.refresh_token = Some(rt);
        }
    }

    /// Whether the access token is due for renewal at `now`: within `leeway`
    /// of its expiry, or past half its life for a short-lived one.
    fn due(&self, now: u64, leeway: u64) -> bool {
        let Some(exp) = self.expires_at else {
            return false;
        };
        let leeway = match self.lifetime {
            Some(life) => leeway.min(life / 2),
            None => leeway,
        };
        now >= exp.saturating_sub(leeway)
    }
}

/// What a caller needs from a renewing source.
#[derive(Clone, Copy)]
pub(super) enum Need<'a> {
    /// A token that is not due for renewal.
    Current,
    /// A token other than this rejected one.
    Replacing(&'a RawToken),
}

/// The state and the single-flight renewal shared by the renewing sources.
pub(super) struct Renewing {
    held: Arc<Mutex<Held>>,
    /// Held by the one renewal running; waiters queue on it.
    flight: Arc<tokio::sync::Mutex<()>>,
    endpoint: TokenEndpoint,
    pub(super) clock: SharedClock,
    /// Renew this many seconds before expiry (at most half the lifetime).
    pub(super) leeway: u64,
    grant: Grant,
    /// The scope asked for with the client credentials grant.
    pub(super) scope: Option<String>,
}

impl fmt::Debug for Renewing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = self.lock();
        f.debug_struct("Renewing")
            .field("endpoint", &self.endpoint)
            .field("expires_at", &held.expires_at)
            .field("has_refresh_token", &held.refresh_token.is_some())
            .field("leeway_secs", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl Renewing {
    pub(super) fn new(endpoint: TokenEndpoint, grant: Grant) -> Self {
        Self {
            held: Arc::default(),
            flight: Arc::default(),
            endpoint,
            clock: clock::system(),
            leeway: DEFAULT_LEEWAY.as_secs(),
            grant,
            scope: None,
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A usable token in `held` for `need`, if there is one.
    fn usable(&self, held: &Held, need: Need<'_>) -> Option<RawToken> {
        let token = held.access_token.as_ref()?;
        if held.due(self.clock.now_secs(), self.leeway) {
            return None;
        }
        match need {
            Need::Current => Some(token.clone()),
            Need::Replacing(rejected) if token != rejected => Some(token.clone()),
            Need::Replacing(_) => None,
        }
    }

    /// A token for `need`: the one held when it will do, else the outcome
    /// of one renewal (started here, or already running).
    pub(super) async fn get(&self, need: Need<'_>) -> Result<RawToken, Error> {
        let seen = {
            let held = self.lock();
            if let Some(e) = &held.dead {
                return Err(e.clone());
            }
            if let Some(t) = self.usable(&held, need) {
                return Ok(t);
            }
            held.finished
        };
        let guard = Arc::clone(&self.flight).lock_owned().await;
        let refresh_token = {
            let held = self.lock();
            if let Some(e) = &held.dead {
                return Err(e.clone());
            }
            if let Some(t) = self.usable(&held, need) {
                return Ok(t);
            }
            if held.finished != seen {
                // A renewal finished while this caller waited: share its
                // outcome rather than call the provider again, even when the
                // provider issued a token that is due at once.
                if let Some(e) = &held.last_error {
                    return Err(e.clone());
                }
                if let Some(t) = &held.access_token
                    && !matches!(need, Need::Replacing(rejected) if rejected == t)
                {
                    return Ok(t.clone());
                }
            }
            held.refresh_token.clone()
        };
        let params: Vec<(&'static str, String)> = match self.grant {
            Grant::Refresh => {
                let Some(rt) = refresh_token else {
                    return Err(Error::missing_credentials());
                };
                vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", rt.expose().to_owned()),
                ]
            }
            Grant::ClientCredentials => {
                let mut p = vec![("grant_type", "client_credentials".to_owned())];
                if let Some(scope) = &self.scope {
                    p.push(("scope", scope.clone()));
                }
                p
            }
        };
        // The renewal runs in its own task holding the flight: when the caller
        // gives up, the call still ends and its rotated refresh token is kept.
        let endpoint = self.endpoint.clone();
        let held = Arc::clone(&self.held);
        let clock = Arc::clone(&self.clock);
        let grant = self.grant;
        let task = tokio::spawn(async move {
            let _flight = guard;
            let now = clock.now_secs();
            let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let result = endpoint.request(grant, &pairs, now).await;
            let mut held = held.lock().unwrap_or_else(PoisonError::into_inner);
            held.finished += 1;
            match result {
                Ok(issued) => {
                    held.store(issued);
                    held.last_error = None;
                    tracing::debug!(?grant, "token renewed");
                    held.access_token
                        .clone()
                        .ok_or_else(|| Error::unavailable("the renewed token was lost"))
                }
                Err(e) => {
                    tracing::warn!(?grant, error = %e, "token renewal failed");
                    // A refusal ends the held token; an outage or a malformed
                    // answer may not repeat, so the next call tries again.
                    if matches!(grant, Grant::Refresh)
                        && !matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::BadGateway)
                    {
                        held.dead = Some(e.clone());
                    }
                    held.last_error = Some(e.clone());
                    Err(e)
                }
            }
        });
        task.await
            .map_err(|e| Error::unavailable("the token renewal task failed").with_source(e))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lived_tokens_renew_halfway() {
        let mut held = Held::default();
        let issued = |expires_in| Issued {
            access_token: RawToken::new("a"),
            expires_in: Some(expires_in),
            expires_at: Some(1000 + expires_in),
            refresh_token: None,
        };
        held.store(issued(300));
        assert!(!held.due(1269, 30));
        assert!(held.due(1270, 30));
        held.store(issued(20));
        assert!(!held.due(1009, 30));
        assert!(held.due(1010, 30));
        // Without a known lifetime the leeway applies as is.
        held.lifetime = None;
        assert!(held.due(990, 30));
        held.expires_at = None;
        assert!(!held.due(u64::MAX, 30));
    }
}
