//! Headless login for command-line tools (easy-oauth's
//! `/login?headless=true`): the tool gets a `login_url` to open in any
//! browser and a `token_url` that waits for that login and answers the
//! user's token once.
//!
//! The pending login lives in the session store (memory, or Redis for
//! several replicas) under `headless:{id}`, until the login timeout; the
//! `token_url` carries a secret that only the tool knows (the store keeps
//! its SHA-256), so someone who sees the `login_url` cannot collect the
//! token. Collecting it is single-use across replicas through the
//! revocation store's `revoke_once`.
//!
//! Starting headless logins is limited per client address
//! ([`StartLimit`]): each start writes a record that lives for the login
//! timeout, so that one client cannot fill the store.
//!
//! A device login (RFC 8628, `/login?headless=true&device=true` when the
//! provider advertises a `device_authorization_endpoint`) keeps the same
//! record, with the provider's device code (sealed: it is a credential)
//! and when it may next be polled. The `token_url` polls the provider:
//! only when the interval has passed, and on one replica at a time (a
//! `put_new` lock in the session store); `slow_down` adds five seconds to
//! the interval for every replica.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How long one call of the `token_url` waits for the login to complete
/// before answering `202` (the tool calls again).
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// How often a waiting call looks at the store.
pub(crate) const POLL: Duration = Duration::from_millis(250);

/// How many headless logins one client address may start per
/// [`START_WINDOW_SECS`] (per process).
pub(crate) const STARTS_PER_ADDRESS: u32 = 10;

/// The window of [`STARTS_PER_ADDRESS`], in seconds.
pub(crate) const START_WINDOW_SECS: u64 = 60;

/// How many client addresses [`StartLimit`] remembers; past it, the least
/// used are forgotten (their counts start again).
const START_LIMIT_CAPACITY: usize = 10_000;

/// The per-address limit on headless login starts: at most
/// [`STARTS_PER_ADDRESS`] per [`START_WINDOW_SECS`] from one address (an
/// IPv6 address counts by its /64, what one client usually holds), in a
/// sharded cache of bounded size. Requests whose address the framework
/// does not give share one count.
pub(crate) struct StartLimit {
    windows: quick_cache::sync::Cache<Option<IpAddr>, Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started_at: u64,
    count: u32,
}

impl Default for StartLimit {
    fn default() -> Self {
        Self {
            windows: quick_cache::sync::Cache::new(START_LIMIT_CAPACITY),
        }
    }
}

impl fmt::Debug for StartLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Addresses are personal data: only the count shows.
        f.debug_struct("StartLimit")
            .field("addresses", &self.windows.len())
            .finish()
    }
}

/// The count an address starts under: itself, or its /64 for IPv6.
fn bucket(peer: Option<IpAddr>) -> Option<IpAddr> {
    peer.map(|ip| match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::from(octets)
            }
        },
    })
}

impl StartLimit {
    /// Counts a start from `peer` at `now`; answers `Err(seconds)` to wait
    /// when the address is past its limit (the start is then not counted).
    pub(crate) fn start(&self, peer: Option<IpAddr>, now: u64) -> Result<(), u64> {
        let key = bucket(peer);
        let window = match self.windows.get(&key) {
            Some(w) if now < w.started_at.saturating_add(START_WINDOW_SECS) => w,
            _ => Window {
                started_at: now,
                count: 0,
            },
        };
        if window.count >= STARTS_PER_ADDRESS {
            return Err(window
                .started_at
                .saturating_add(START_WINDOW_SECS)
                .saturating_sub(now)
                .max(1));
        }
        self.windows.insert(
            key,
            Window {
                count: window.count + 1,
                ..window
            },
        );
        Ok(())
    }
}

/// The store key of headless login `id`.
pub(crate) fn key(id: &str) -> String {
    format!("headless:{id}")
}

/// The single-use record of collecting headless login `id`'s token.
pub(crate) fn collected_id(id: &str) -> String {
    format!("headless-collected:{id}")
}

/// The poll lock of headless login `id`: the replica that holds it polls
/// the provider for a device login.
pub(crate) fn poll_lock(id: &str) -> String {
    format!("headless-poll:{id}")
}

/// What seals the device code of headless login `id` (associated data).
pub(crate) fn device_seal_name(id: &str) -> String {
    format!("headless-device:{id}")
}

/// The provider's side of a device login, as stored.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Device {
    /// The provider's device code, sealed under [`device_seal_name`].
    pub(crate) device_code: String,
    /// Seconds between two polls (grown by `slow_down`).
    pub(crate) interval: u64,
    /// When the provider may be polled next (Unix seconds).
    pub(crate) next_poll_at: u64,
}

/// A pending headless login, as stored.
#[derive(Serialize, Deserialize)]
pub(crate) struct Pending {
    /// SHA-256 of the `token_url`'s secret, hex.
    pub(crate) secret_hash: String,
    /// When the login and its record expire.
    pub(crate) expires_at: u64,
    /// `/token`'s answer for the user, once the login completed.
    pub(crate) token: Option<Value>,
    /// The device authorization, for a device login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) device: Option<Device>,
}

impl Pending {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// SHA-256 of `secret`, hex.
pub(crate) fn secret_hash(secret: &str) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a headless login id or secret has the shape portcullis makes
/// (base64url, bounded), before it is used in a store key.
pub(crate) fn well_formed(value: &str) -> bool {
    (16..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::{
        Pending, START_WINDOW_SECS, STARTS_PER_ADDRESS, StartLimit, secret_hash, well_formed,
    };

    #[test]
    fn starts_are_limited_per_address_and_window() {
        let limit = StartLimit::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..STARTS_PER_ADDRESS {
            assert_eq!(limit.start(Some(a), 100), Ok(()));
        }
        assert_eq!(limit.start(Some(a), 110), Err(START_WINDOW_SECS - 10));
        // Another address has its own count; so do requests without one.
        assert_eq!(limit.start(Some(b), 110), Ok(()));
        assert_eq!(limit.start(None, 110), Ok(()));
        // The next window starts again.
        assert_eq!(limit.start(Some(a), 100 + START_WINDOW_SECS), Ok(()));
        // IPv6 counts by /64; a mapped IPv4 address as itself.
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        for _ in 0..STARTS_PER_ADDRESS {
            assert_eq!(limit.start(Some(v6), 100), Ok(()));
        }
        assert!(limit.start(Some(same_64), 100).is_err());
        let mapped: IpAddr = "::ffff:192.0.2.2".parse().unwrap();
        assert_eq!(limit.start(Some(mapped), 110), Ok(()));
        assert!(!format!("{limit:?}").contains("192.0.2"));
    }

    #[test]
    fn records_round_trip_and_ids_are_checked() {
        let p = Pending {
            secret_hash: secret_hash("s"),
            expires_at: 7,
            token: None,
            device: None,
        };
        let back = Pending::from_bytes(&p.to_bytes()).expect("a record");
        assert_eq!(back.secret_hash, p.secret_hash);
        assert_eq!(back.expires_at, 7);
        assert!(Pending::from_bytes(b"garbage").is_none());
        assert!(well_formed("abcdefghijklmnop_-12"));
        for bad in ["short", "has space in it......", "a:b:c:d:e:f:g:h:i:j", ""] {
            assert!(!well_formed(bad), "{bad}");
        }
    }
}
