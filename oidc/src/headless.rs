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
//! A device login (RFC 8628, `/login?headless=true&device=true` when the
//! provider advertises a `device_authorization_endpoint`) keeps the same
//! record, with the provider's device code (sealed: it is a credential)
//! and when it may next be polled. The `token_url` polls the provider:
//! only when the interval has passed, and on one replica at a time (a
//! `put_new` lock in the session store); `slow_down` adds five seconds to
//! the interval for every replica.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How long one call of the `token_url` waits for the login to complete
/// before answering `202` (the tool calls again).
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// How often a waiting call looks at the store.
pub(crate) const POLL: Duration = Duration::from_millis(250);

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
    use super::{Pending, secret_hash, well_formed};

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
