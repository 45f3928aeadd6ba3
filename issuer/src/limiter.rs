//! Failed-login limits: per account and per client address, so that neither
//! one account can be guessed at from many addresses nor many accounts from
//! one address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use portcullis_core::clock::SharedClock;

/// How many failed attempts are allowed in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptLimits {
    /// Failures allowed per account (username) in `window`.
    pub per_account: u32,
    /// Failures allowed per client address in `window`.
    pub per_address: u32,
    /// The window; an account or address over its limit is refused until
    /// the window in which it failed ends.
    pub window: Duration,
}

impl Default for AttemptLimits {
    /// 5 failures per account and 20 per address in 15 minutes.
    fn default() -> Self {
        Self {
            per_account: 5,
            per_address: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// The most entries kept; past it, expired ones are dropped, then (an
/// attack with many names) the oldest windows.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

/// Counts failed attempts in fixed windows, in memory (per process).
#[derive(Debug)]
pub struct AttemptLimiter {
    limits: AttemptLimits,
    clock: SharedClock,
    counts: Mutex<HashMap<Key, (u32, u64)>>,
}

impl AttemptLimiter {
    /// A limiter with `limits`, reading time from `clock`.
    pub fn new(limits: AttemptLimits, clock: SharedClock) -> Self {
        Self {
            limits,
            clock,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn window_ms(&self) -> u64 {
        u64::try_from(self.limits.window.as_millis()).unwrap_or(u64::MAX)
    }

    fn keys(account: &str, addr: Option<IpAddr>) -> impl Iterator<Item = Key> {
        std::iter::once(Key::Account(account.to_owned())).chain(addr.map(Key::Address))
    }

    fn limit(&self, key: &Key) -> u32 {
        match key {
            Key::Account(_) => self.limits.per_account,
            Key::Address(_) => self.limits.per_address,
        }
    }

    /// `Err(seconds)` when `account` or `addr` is over its limit: the time
    /// until its window ends.
    pub fn check(&self, account: &str, addr: Option<IpAddr>) -> Result<(), u64> {
        let now = self.clock.now_millis();
        let window = self.window_ms();
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for key in Self::keys(account, addr) {
            if let Some((count, start)) = counts.get(&key) {
                let end = start.saturating_add(window);
                if now < end && *count >= self.limit(&key) {
                    return Err((end - now).div_ceil(1000));
                }
            }
        }
        Ok(())
    }

    /// Records a failed attempt for `account` and `addr`.
    pub fn failed(&self, account: &str, addr: Option<IpAddr>) {
        let now = self.clock.now_millis();
        let window = self.window_ms();
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() >= MAX_ENTRIES {
            counts.retain(|_, (_, start)| now < start.saturating_add(window));
            if counts.len() >= MAX_ENTRIES {
                let mut starts: Vec<u64> = counts.values().map(|(_, s)| *s).collect();
                starts.sort_unstable();
                let cut = starts[starts.len() / 2];
                counts.retain(|_, (_, start)| *start > cut);
            }
        }
        for key in Self::keys(account, addr) {
            let entry = counts.entry(key).or_insert((0, now));
            if now >= entry.1.saturating_add(window) {
                *entry = (0, now);
            }
            entry.0 = entry.0.saturating_add(1);
        }
    }

    /// Forgets the account's failures after a successful login (the
    /// address's stay: one address guessing many accounts stays limited).
    pub fn succeeded(&self, account: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.remove(&Key::Account(account.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use portcullis_core::clock::ManualClock;

    use super::*;

    #[test]
    fn accounts_and_addresses_are_limited_apart_until_their_window_ends() {
        let clock = ManualClock::new(1_000);
        let limits = AttemptLimits {
            per_account: 2,
            per_address: 3,
            window: Duration::from_secs(60),
        };
        let limiter = AttemptLimiter::new(limits, Arc::new(clock.clone()));
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        limiter.failed("alice", Some(addr));
        assert_eq!(limiter.check("alice", Some(addr)), Ok(()));
        limiter.failed("alice", Some(addr));
        assert_eq!(limiter.check("alice", None), Err(60));
        // Another account from the same address: one more failure allowed.
        assert_eq!(limiter.check("bob", Some(addr)), Ok(()));
        limiter.failed("bob", Some(addr));
        assert_eq!(limiter.check("carol", Some(addr)), Err(60));
        assert_eq!(limiter.check("carol", None), Ok(()));
        clock.advance_secs(59);
        assert_eq!(limiter.check("alice", None), Err(1));
        clock.advance_secs(1);
        assert_eq!(limiter.check("alice", Some(addr)), Ok(()));
        limiter.failed("dave", None);
        limiter.succeeded("dave");
        assert_eq!(limiter.check("dave", None), Ok(()));
    }
}
