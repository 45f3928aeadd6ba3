//! Logging refused tokens without flooding the log.
//!
//! Every refusal is logged at `debug` with its reason. At `info` (or `warn`
//! when keys or a revocation check were unavailable), one summary line per
//! [`SUMMARY_INTERVAL`] at most, per process, counts the refusals by reason
//! since the previous summary. The request path only increments atomic
//! counters; the request that finds the interval over writes the summary.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, TokenRejection};

/// The shortest time between two summary lines.
pub(crate) const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// Every rejection reason, in declaration order (`reason as usize` is its index).
const REJECTIONS: [TokenRejection; 18] = [
    TokenRejection::TooLarge,
    TokenRejection::Malformed,
    TokenRejection::DuplicateMember,
    TokenRejection::UnsupportedAlgorithm,
    TokenRejection::DisallowedAlgorithm,
    TokenRejection::ForbiddenHeader,
    TokenRejection::UnknownIssuer,
    TokenRejection::UnknownKey,
    TokenRejection::BadSignature,
    TokenRejection::Expired,
    TokenRejection::NotYetValid,
    TokenRejection::MissingClaim,
    TokenRejection::InvalidClaim,
    TokenRejection::WrongAudience,
    TokenRejection::WrongTokenType,
    TokenRejection::Revoked,
    TokenRejection::UnverifiedEmail,
    TokenRejection::InvalidPrincipal,
];

/// Counter slots: one per rejection, then `unavailable`, then any other error.
const UNAVAILABLE: usize = REJECTIONS.len();
const OTHER: usize = REJECTIONS.len() + 1;
const SLOTS: usize = REJECTIONS.len() + 2;

/// Refusal counts since the last summary, and when that was.
pub(crate) struct RefusalLog {
    counts: [AtomicU64; SLOTS],
    /// Milliseconds (on the caller's clock) of the last summary, plus one; 0: none yet.
    last_summary: AtomicU64,
    interval_ms: u64,
}

impl RefusalLog {
    pub(crate) const fn new(interval: Duration) -> Self {
        Self {
            counts: [const { AtomicU64::new(0) }; SLOTS],
            last_summary: AtomicU64::new(0),
            interval_ms: interval.as_millis() as u64,
        }
    }

    /// Counts `error`, logs it at debug, and writes the summary when the
    /// interval is over. `now_ms` is any monotonic millisecond count.
    pub(crate) fn record(&self, error: &Error, now_ms: u64) {
        tracing::debug!(
            kind = ?error.kind(),
            rejection = ?error.rejection(),
            reason = %error,
            "token refused"
        );
        self.counts[slot(error)].fetch_add(1, Ordering::Relaxed);
        if interval_over(&self.last_summary, now_ms, self.interval_ms) {
            self.summarize();
        }
    }

    fn summarize(&self) {
        let mut total = 0u64;
        let mut by_reason = String::new();
        let mut unavailable = 0u64;
        for (i, counter) in self.counts.iter().enumerate() {
            let n = counter.swap(0, Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            total += n;
            if i == UNAVAILABLE {
                unavailable = n;
            }
            if !by_reason.is_empty() {
                by_reason.push_str(", ");
            }
            let _ = write!(by_reason, "{}={n}", slot_name(i));
        }
        if total == 0 {
            return;
        }
        let interval_secs = self.interval_ms / 1000;
        if unavailable > 0 {
            tracing::warn!(refused = total, %by_reason, interval_secs, "tokens refused since the last summary");
        } else {
            tracing::info!(refused = total, %by_reason, interval_secs, "tokens refused since the last summary");
        }
    }
}

fn slot(error: &Error) -> usize {
    match (error.kind(), error.rejection()) {
        (_, Some(r)) => {
            let i = r as usize;
            if REJECTIONS.get(i) == Some(&r) {
                i
            } else {
                OTHER
            }
        }
        (ErrorKind::Unavailable, None) => UNAVAILABLE,
        _ => OTHER,
    }
}

fn slot_name(i: usize) -> String {
    match REJECTIONS.get(i) {
        Some(r) => format!("{r:?}"),
        None if i == UNAVAILABLE => "Unavailable".to_owned(),
        None => "Other".to_owned(),
    }
}

/// The process's refusal log.
static GLOBAL: RefusalLog = RefusalLog::new(SUMMARY_INTERVAL);

/// The process's monotonic origin.
static START: OnceLock<Instant> = OnceLock::new();

/// Milliseconds since the process's monotonic origin.
fn elapsed_ms() -> u64 {
    let elapsed = START.get_or_init(Instant::now).elapsed();
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// Whether an interval of `interval_ms` has passed since the time in `last`
/// (milliseconds plus one; 0: never), and this caller won the right to act
/// on it: of concurrent callers, exactly one gets `true`. Lock-free.
fn interval_over(last: &AtomicU64, now_ms: u64, interval_ms: u64) -> bool {
    let now = now_ms.saturating_add(1);
    let seen = last.load(Ordering::Acquire);
    if seen != 0 && now.saturating_sub(seen) < interval_ms {
        return false;
    }
    last.compare_exchange(seen, now, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
}

/// Counts and logs a refusal in the process's refusal log.
pub(crate) fn record(error: &Error) {
    GLOBAL.record(error, elapsed_ms());
}

/// Milliseconds (since [`START`], plus one) of the last server-side failure
/// logged at `warn`; 0: none yet.
static LAST_SERVER_FAILURE: AtomicU64 = AtomicU64::new(0);

/// Server-side failures logged at `debug` only since the last `warn` line.
static QUIETED_SERVER_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Whether this server-side failure is the one of its [`SUMMARY_INTERVAL`]
/// to log at `warn`: `Some(n)` with the number of failures quieted since
/// the previous one, `None` (counted) otherwise. Lock-free.
pub(crate) fn server_failure_due() -> Option<u64> {
    let interval = u64::try_from(SUMMARY_INTERVAL.as_millis()).unwrap_or(u64::MAX);
    if interval_over(&LAST_SERVER_FAILURE, elapsed_ms(), interval) {
        return Some(QUIETED_SERVER_FAILURES.swap(0, Ordering::Relaxed));
    }
    QUIETED_SERVER_FAILURES.fetch_add(1, Ordering::Relaxed);
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata, Subscriber};

    use super::*;

    /// A subscriber that keeps every event as its level and rendered fields.
    #[derive(Debug, Clone, Default)]
    pub(crate) struct Capture(pub(crate) Arc<Mutex<Vec<(Level, String)>>>);

    impl Capture {
        pub(crate) fn lines(&self, level: Level) -> Vec<String> {
            self.0
                .lock()
                .unwrap()
                .iter()
                .filter(|(l, _)| *l == level)
                .map(|(_, s)| s.clone())
                .collect()
        }

        pub(crate) fn all(&self) -> String {
            let lines = self.0.lock().unwrap();
            lines
                .iter()
                .map(|(_, s)| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        }
    }

    struct Fields(String);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, "{}={value:?} ", field.name());
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            self.0
                .lock()
                .unwrap()
                .push((*event.metadata().level(), fields.0));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn rejections_are_listed_in_declaration_order() {
        for (i, r) in REJECTIONS.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
        }
    }

    #[test]
    fn one_summary_per_interval_with_counts_by_reason() {
        let log = RefusalLog::new(SUMMARY_INTERVAL);
        let capture = Capture::default();
        tracing::subscriber::with_default(capture.clone(), || {
            // 1000 refusals within one interval (a synthetic clock: 1 ms apart).
            for i in 0..1000u64 {
                let reason = if i % 2 == 0 {
                    TokenRejection::Expired
                } else {
                    TokenRejection::BadSignature
                };
                log.record(&Error::invalid_token(reason), i);
            }
            // The next interval's first refusal writes the summary of the rest.
            log.record(&Error::unavailable("keys down"), 10_001);
        });
        assert_eq!(capture.lines(Level::DEBUG).len(), 1001);
        let info = capture.lines(Level::INFO);
        assert_eq!(info.len(), 1, "{info:?}");
        assert!(info[0].contains("refused=1 "), "{}", info[0]);
        let warn = capture.lines(Level::WARN);
        assert_eq!(warn.len(), 1, "{warn:?}");
        assert!(warn[0].contains("refused=1000 "), "{}", warn[0]);
        assert!(
            warn[0].contains("Expired=499") && warn[0].contains("BadSignature=500"),
            "{}",
            warn[0]
        );
        assert!(warn[0].contains("Unavailable=1"), "{}", warn[0]);
    }

    #[test]
    fn an_outage_logs_one_server_failure_per_interval() {
        // Other tests may log failures in the same process: at most one
        // line per interval, whoever writes it.
        let warned = (0..1000)
            .filter(|_| super::server_failure_due().is_some())
            .count();
        assert!(warned <= 2, "{warned} warn lines for 1000 failures");
    }
}
