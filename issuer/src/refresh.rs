//! Refresh tokens: opaque, stored hashed, in families that rotate.
//!
//! A refresh token is `<family>.<secret>`: the family id names the record
//! (one key per family in a store, so a family's state changes atomically
//! and lives in one Redis hash slot), the secret is 256 random bits. The
//! store keeps the SHA-256 of the family's current token and of the one
//! it replaced, never a token.
//!
//! Redeeming the current token rotates the family: a new token becomes
//! current, the redeemed one becomes "previous", with its successor sealed
//! (AES-256-GCM) under a key derived from the redeemed token itself, so
//! that only its holder can open it again. Then:
//!
//! - the previous token presented again by the same client within
//!   [`RefreshPolicy::retry_window`] (its answer was lost, or two tabs
//!   refreshed at once) gets the same successor back, and nothing changes;
//! - any other token of the family (the previous one after the window, or
//!   an older one) is a replay (RFC 9700 section 4.14.2): the whole family is
//!   revoked, so the thief's and the user's tokens both stop working;
//! - a token presented by another client is refused and changes nothing;
//! - a family older than [`RefreshPolicy::absolute_lifetime`], or whose
//!   current token is older than [`RefreshPolicy::idle_lifetime`], is over.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::Error;
use portcullis_core::clock::SharedClock;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::OAuthError;
use crate::password::UserGrant;

#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
pub use self::redis::RedisRefreshStore;

/// What a [`RefreshStore`] answers.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// Where refresh-token families live: one record (a string) per family id,
/// written only by compare-and-set. A store that cannot answer fails with
/// kind `Unavailable` (the endpoint answers 503, nothing is issued).
pub trait RefreshStore: Send + Sync + fmt::Debug + 'static {
    /// The family's record.
    fn get<'a>(&'a self, family: &'a str) -> StoreFuture<'a, Option<String>>;
    /// Writes a new family's record, kept for `ttl`; `false` if the id exists.
    fn create<'a>(
        &'a self,
        family: &'a str,
        record: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool>;
    /// Replaces the record if it is still exactly `expected`; `false` if it
    /// changed (or expired) meanwhile.
    fn replace<'a>(
        &'a self,
        family: &'a str,
        expected: &'a str,
        record: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool>;
    /// Deletes the family (RFC 7009 revocation, logout).
    fn delete<'a>(&'a self, family: &'a str) -> StoreFuture<'a, ()>;
}

/// The embedded store: families in this process's memory, expiring with
/// the store's clock. For one replica; several share a [`RedisRefreshStore`].
pub struct MemoryRefreshStore {
    clock: SharedClock,
    records: Mutex<HashMap<String, (String, u64)>>,
}

impl fmt::Debug for MemoryRefreshStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.records.lock().map_or(0, |r| r.len());
        f.debug_struct("MemoryRefreshStore")
            .field("families", &len)
            .finish()
    }
}

impl MemoryRefreshStore {
    /// An empty store reading time from `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            records: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, (String, u64)>, u64) -> T) -> T {
        let now = self.clock.now_millis();
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() > 1024 && records.len().is_power_of_two() {
            records.retain(|_, (_, until)| now < *until);
        }
        f(&mut records, now)
    }
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

impl RefreshStore for MemoryRefreshStore {
    fn get<'a>(&'a self, family: &'a str) -> StoreFuture<'a, Option<String>> {
        let found = self.with(|records, now| {
            records
                .get(family)
                .filter(|(_, until)| now < *until)
                .map(|(r, _)| r.clone())
        });
        Box::pin(async move { Ok(found) })
    }

    fn create<'a>(
        &'a self,
        family: &'a str,
        record: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        let created = self.with(|records, now| {
            if records.get(family).is_some_and(|(_, until)| now < *until) {
                return false;
            }
            records.insert(
                family.to_owned(),
                (record.to_owned(), now.saturating_add(millis(ttl))),
            );
            true
        });
        Box::pin(async move { Ok(created) })
    }

    fn replace<'a>(
        &'a self,
        family: &'a str,
        expected: &'a str,
        record: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        let replaced = self.with(|records, now| match records.get_mut(family) {
            Some((current, until)) if now < *until && current == expected => {
                *current = record.to_owned();
                *until = now.saturating_add(millis(ttl));
                true
            }
            _ => false,
        });
        Box::pin(async move { Ok(replaced) })
    }

    fn delete<'a>(&'a self, family: &'a str) -> StoreFuture<'a, ()> {
        self.with(|records, _| records.remove(family));
        Box::pin(async move { Ok(()) })
    }
}

/// The lifetimes and windows of refresh-token families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// A family ends this long after the login that started it, however
    /// often it was refreshed (default 30 days).
    pub absolute_lifetime: Duration,
    /// A family ends when its current token was not used for this long
    /// (default 7 days).
    pub idle_lifetime: Duration,
    /// How long after a rotation the redeemed token, presented again by the
    /// same client, gets the same successor back (default 10 seconds).
    pub retry_window: Duration,
    /// The seed's `REFRESH_RESTRICT_MINUTES` (default 2 minutes): how long a
    /// used token stays refused at the least. A used token is refused for
    /// its family's whole life here (its replay revokes the family); this
    /// keeps a family's record at least this long after its last use, even
    /// past its lifetimes, so that a replay is still recognized.
    pub restrict: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            absolute_lifetime: Duration::from_secs(30 * 24 * 3600),
            idle_lifetime: Duration::from_secs(7 * 24 * 3600),
            retry_window: Duration::from_secs(10),
            restrict: Duration::from_secs(120),
        }
    }
}

/// A family's record, as stored (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Family {
    pub(crate) client_id: String,
    /// The user (`None` for a client's own family, which the issuer does
    /// not make, but a store may be shared).
    pub(crate) user: Option<UserGrant>,
    /// The scopes granted at login; a refresh may narrow, never widen.
    pub(crate) scope: Vec<String>,
    /// Where the login came from (the seed's `issued_to`).
    pub(crate) issued_to: Option<String>,
    /// Milliseconds since the epoch.
    pub(crate) created: u64,
    /// SHA-256 (base64url) of the current token.
    pub(crate) current: String,
    /// When the current token was issued (milliseconds).
    pub(crate) current_issued: u64,
    /// The token the current one replaced.
    pub(crate) previous: Option<Previous>,
    /// Set when a replay revoked the family.
    pub(crate) revoked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Previous {
    hash: String,
    used: u64,
    /// The successor, sealed under a key derived from this token.
    successor: String,
}

/// A new refresh token: `<family>.<secret>`.
pub(crate) fn new_token(family: &str) -> Result<String, Error> {
    Ok(format!("{family}.{}", random_b64(32)?))
}

/// A new family id (128 random bits, base64url).
pub(crate) fn new_family_id() -> Result<String, Error> {
    random_b64(16)
}

fn random_b64(len: usize) -> Result<String, Error> {
    let mut bytes = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Error::config("could not draw random bytes"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The family id of a presented token, if it has the shape of one.
pub(crate) fn family_of(token: &str) -> Option<&str> {
    let (family, secret) = token.split_once('.')?;
    let ok = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (ok(family, 22) && ok(secret, 43)).then_some(family)
}

pub(crate) fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, token.as_bytes()))
}

fn same_hash(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn sealing_key(token: &str) -> LessSafeKey {
    let mut input = b"portcullis refresh successor\0".to_vec();
    input.extend_from_slice(token.as_bytes());
    let key = digest(&SHA256, &input);
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.as_ref()).expect("32-byte key"))
}

fn seal(token: &str, successor: &str) -> Result<String, Error> {
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| Error::config("could not draw a nonce"))?;
    let mut data = successor.as_bytes().to_vec();
    sealing_key(token)
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
        .map_err(|_| Error::config("could not seal the successor"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&data);
    Ok(URL_SAFE_NO_PAD.encode(out))
}

fn open(token: &str, sealed: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if bytes.len() < NONCE_LEN {
        return None;
    }
    let (nonce, data) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut data = data.to_vec();
    let plain = sealing_key(token)
        .open_in_place(nonce, Aad::empty(), &mut data)
        .ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

/// How many times a redemption reads and tries to write before answering
/// 503 (another request keeps changing the family).
const ATTEMPTS: u32 = 8;

/// Refresh families over a store, under a policy.
#[derive(Debug)]
pub struct RefreshFamilies {
    store: std::sync::Arc<dyn RefreshStore>,
    policy: RefreshPolicy,
    clock: SharedClock,
}

/// What a redemption gives: the family (who and what) and the new token.
#[derive(Debug)]
pub(crate) struct Redeemed {
    pub(crate) family: Family,
    pub(crate) token: String,
}

fn expired() -> OAuthError {
    OAuthError::invalid_grant("the refresh token is invalid, expired or revoked")
}

impl RefreshFamilies {
    /// Families in `store` under `policy`.
    pub fn new(
        store: std::sync::Arc<dyn RefreshStore>,
        policy: RefreshPolicy,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            policy,
            clock,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &RefreshPolicy {
        &self.policy
    }

    fn ttl(&self, family: &Family, now: u64) -> Duration {
        let end = family
            .created
            .saturating_add(millis(self.policy.absolute_lifetime));
        let remaining = Duration::from_millis(end.saturating_sub(now));
        remaining
            .max(self.policy.restrict)
            .max(Duration::from_secs(1))
    }

    /// Starts a family after a login; answers its first token.
    pub(crate) async fn start(
        &self,
        client_id: &str,
        user: UserGrant,
        scope: Vec<String>,
        issued_to: Option<String>,
    ) -> Result<String, Error> {
        let now = self.clock.now_millis();
        for _ in 0..ATTEMPTS {
            let id = new_family_id()?;
            let token = new_token(&id)?;
            let family = Family {
                client_id: client_id.to_owned(),
                user: Some(user.clone()),
                scope: scope.clone(),
                issued_to: issued_to.clone(),
                created: now,
                current: token_hash(&token),
                current_issued: now,
                previous: None,
                revoked: false,
            };
            let record = serde_json::to_string(&family)
                .map_err(|e| Error::config(format!("family record: {e}")))?;
            if self
                .store
                .create(&id, &record, self.ttl(&family, now))
                .await?
            {
                return Ok(token);
            }
        }
        Err(Error::unavailable("could not create a refresh family"))
    }

    /// Redeems `token` for `client_id`: see the module's documentation.
    /// A `requested` scope wider than the family's is `invalid_scope`, and
    /// changes nothing.
    pub(crate) async fn redeem(
        &self,
        token: &str,
        client_id: &str,
        requested: Option<&[String]>,
    ) -> Result<Redeemed, OAuthError> {
        let Some(id) = family_of(token) else {
            return Err(expired());
        };
        let presented = token_hash(token);
        for _ in 0..ATTEMPTS {
            let now = self.clock.now_millis();
            let Some(raw) = self.store.get(id).await? else {
                return Err(expired());
            };
            let mut family: Family = serde_json::from_str(&raw).map_err(|e| {
                Error::config(format!("a refresh family record is unreadable: {e}"))
            })?;
            if family.revoked {
                return Err(expired());
            }
            if family.client_id != client_id {
                // Another client's token: refused, and nothing changes (the
                // presenting client may not end another's family).
                return Err(OAuthError::invalid_grant(
                    "the refresh token was issued to another client",
                ));
            }
            if let Some(s) = requested
                .into_iter()
                .flatten()
                .find(|s| !family.scope.contains(s))
            {
                return Err(OAuthError::invalid_scope(format!(
                    "the scope `{s}` was not granted at login"
                )));
            }
            let absolute_end = family
                .created
                .saturating_add(millis(self.policy.absolute_lifetime));
            if now >= absolute_end {
                return Err(expired());
            }
            if same_hash(&family.current, &presented) {
                if now
                    >= family
                        .current_issued
                        .saturating_add(millis(self.policy.idle_lifetime))
                {
                    return Err(expired());
                }
                let successor = new_token(id).map_err(OAuthError::from)?;
                family.previous = Some(Previous {
                    hash: presented.clone(),
                    used: now,
                    successor: seal(token, &successor)?,
                });
                family.current = token_hash(&successor);
                family.current_issued = now;
                let record = serde_json::to_string(&family)
                    .map_err(|e| Error::config(format!("family record: {e}")))?;
                if self
                    .store
                    .replace(id, &raw, &record, self.ttl(&family, now))
                    .await?
                {
                    return Ok(Redeemed {
                        family,
                        token: successor,
                    });
                }
                // Another request rotated the family meanwhile: read again
                // (this token is now the previous one, within the window).
                continue;
            }
            if let Some(previous) = &family.previous
                && same_hash(&previous.hash, &presented)
                && now
                    < previous
                        .used
                        .saturating_add(millis(self.policy.retry_window))
            {
                let successor = open(token, &previous.successor)
                    .ok_or_else(|| Error::config("a sealed successor does not open"))?;
                return Ok(Redeemed {
                    family,
                    token: successor,
                });
            }
            // A used token presented again: a replay. The family ends.
            family.revoked = true;
            let record = serde_json::to_string(&family)
                .map_err(|e| Error::config(format!("family record: {e}")))?;
            if self
                .store
                .replace(id, &raw, &record, self.ttl(&family, now))
                .await?
            {
                tracing::warn!(
                    client_id,
                    "a used refresh token was presented again; its family is revoked"
                );
                return Err(expired());
            }
        }
        Err(Error::unavailable("the refresh family kept changing").into())
    }

    /// The family of `token` when `token` is its current token and the
    /// family is live (RFC 7662 introspection).
    pub(crate) async fn live(&self, token: &str) -> Result<Option<Family>, Error> {
        let Some(id) = family_of(token) else {
            return Ok(None);
        };
        let Some(raw) = self.store.get(id).await? else {
            return Ok(None);
        };
        let family: Family = serde_json::from_str(&raw)
            .map_err(|e| Error::config(format!("a refresh family record is unreadable: {e}")))?;
        let now = self.clock.now_millis();
        let live = !family.revoked
            && same_hash(&family.current, &token_hash(token))
            && now
                < family
                    .created
                    .saturating_add(millis(self.policy.absolute_lifetime))
            && now
                < family
                    .current_issued
                    .saturating_add(millis(self.policy.idle_lifetime));
        Ok(live.then_some(family))
    }

    /// Ends the family of `token` (RFC 7009) when `token` is one of its
    /// tokens and the family belongs to `client_id`; anything else changes
    /// nothing.
    pub(crate) async fn revoke(&self, token: &str, client_id: &str) -> Result<(), Error> {
        let Some(id) = family_of(token) else {
            return Ok(());
        };
        let Some(raw) = self.store.get(id).await? else {
            return Ok(());
        };
        let family: Family = serde_json::from_str(&raw)
            .map_err(|e| Error::config(format!("a refresh family record is unreadable: {e}")))?;
        let hash = token_hash(token);
        let member = same_hash(&family.current, &hash)
            || family
                .previous
                .as_ref()
                .is_some_and(|p| same_hash(&p.hash, &hash));
        if member && family.client_id == client_id {
            self.store.delete(id).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_family_shape_and_seal_their_successor() {
        let id = new_family_id().unwrap();
        let token = new_token(&id).unwrap();
        assert_eq!(family_of(&token), Some(id.as_str()));
        assert_eq!(family_of("a.b"), None);
        assert_eq!(family_of(&format!("{token}x")), None);
        let sealed = seal(&token, "next").unwrap();
        assert_eq!(open(&token, &sealed).as_deref(), Some("next"));
        let other = new_token(&id).unwrap();
        assert_eq!(open(&other, &sealed), None);
    }
}
