//! Time sources.
//!
//! Every time-dependent decision in portcullis (token expiry, JWKS staleness,
//! cache lifetimes) reads the time through [`Clock`], so tests can move time
//! forward without sleeping.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time, in whole seconds and milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> u64;

    /// Whole seconds since the Unix epoch.
    fn now_secs(&self) -> u64 {
        self.now_millis() / 1000
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to; cheap to clone (clones share the time).
///
/// ```
/// use portcullis_core::clock::{Clock, ManualClock};
/// let clock = ManualClock::new(1_000);
/// clock.advance_secs(30);
/// assert_eq!(clock.now_secs(), 1_030);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock set to `secs` seconds after the Unix epoch.
    pub fn new(secs: u64) -> Self {
        Self {
            millis: Arc::new(AtomicU64::new(secs * 1000)),
        }
    }

    /// A clock set to the current system time.
    pub fn starting_now() -> Self {
        Self {
            millis: Arc::new(AtomicU64::new(SystemClock.now_millis())),
        }
    }

    /// Sets the time, in seconds since the Unix epoch.
    pub fn set_secs(&self, secs: u64) {
        self.millis.store(secs * 1000, Ordering::SeqCst);
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance_secs(&self, secs: u64) {
        self.millis.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    /// Moves the clock forward by `millis` milliseconds.
    pub fn advance_millis(&self, millis: u64) {
        self.millis.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.millis.load(Ordering::SeqCst)
    }
}

/// A shared, dynamically typed clock.
pub type SharedClock = Arc<dyn Clock>;

/// The default shared clock: the system clock.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}
