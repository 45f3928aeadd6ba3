//! [`Decision`], what a policy answers, its id, and the decision event.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portcullis_core::Error;

use crate::config::DecisionLog;

/// What a policy decided about one request.
///
/// Only [`Allow`](Self::Allow) lets a request through: a refusal and an
/// undefined decision are both 403 for a known caller. An engine that
/// cannot decide is not a decision but an error (503).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Decision {
    /// The rule is `true`.
    Allow,
    /// The rule is `false`.
    Deny,
    /// The rule is undefined for this input (no rule body matched and no
    /// default applies, or the rule or package does not exist): a refusal.
    Undefined,
}

impl Decision {
    /// Whether the request may go on.
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }

    /// The name used in decision events: `allow`, `deny`, `undefined`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Undefined => "undefined",
        }
    }

    /// The decision as a result: `Ok` when allowed, else 403 with a JSON
    /// body (core's [`Error::forbidden`]).
    ///
    /// ```
    /// use portcullis_policy::Decision;
    /// assert!(Decision::Allow.into_result().is_ok());
    /// let e = Decision::Undefined.into_result().unwrap_err();
    /// assert_eq!(e.status(), 403);
    /// assert_eq!(e.to_reply("api").status, 403);
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Forbidden`](portcullis_core::ErrorKind::Forbidden) for
    /// [`Deny`](Self::Deny) and [`Undefined`](Self::Undefined).
    pub fn into_result(self) -> Result<(), Error> {
        if self.is_allowed() {
            Ok(())
        } else {
            Err(Error::forbidden("the policy does not allow this request"))
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The id of one decision, unique within the process and unlikely to repeat
/// across processes: a random prefix chosen at start-up and a counter
/// (`1f3a9c2e-000000000000002a`). Cheap: formatted only when shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecisionId(u64);

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn prefix() -> u32 {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    *PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 4];
        // A clock-derived prefix if the system's randomness fails: ids
        // stay unique within the process either way.
        if aws_lc_rs::rand::fill(&mut bytes).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default();
            bytes = nanos.to_le_bytes();
        }
        u32::from_le_bytes(bytes)
    })
}

impl DecisionId {
    /// The next id.
    pub(crate) fn next() -> Self {
        Self(COUNTER.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for DecisionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}-{:016x}", prefix(), self.0)
    }
}

/// How a decision ended, for its event.
pub(crate) enum Outcome<'a> {
    Decided(Decision),
    Failed(&'a Error),
}

/// One decision's event, logged with target `portcullis_policy::decision`.
pub(crate) struct Event<'a> {
    pub(crate) id: DecisionId,
    pub(crate) engine: &'static str,
    pub(crate) rule: &'a str,
    pub(crate) outcome: Outcome<'a>,
    /// When the decision started, when its duration is logged.
    pub(crate) started: Option<Instant>,
    pub(crate) cached: bool,
    pub(crate) opa_decision_id: Option<&'a str>,
}

/// Milliseconds since start-up (plus one) of the last unavailable decision
/// logged at `warn`; 0: none yet.
static LAST_WARNED: AtomicU64 = AtomicU64::new(0);

/// Unavailable decisions logged at `debug` only since the last `warn` line.
static QUIETED: AtomicU64 = AtomicU64::new(0);

/// At most one `warn` line per this interval for unavailable decisions.
const WARN_INTERVAL: Duration = Duration::from_secs(10);

fn elapsed_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// Whether this failure is the one of its interval to log at `warn`, with
/// the number quieted since the previous one.
fn warn_due() -> Option<u64> {
    let now = elapsed_ms();
    let interval = u64::try_from(WARN_INTERVAL.as_millis()).unwrap_or(u64::MAX);
    let last = LAST_WARNED.load(Ordering::Relaxed);
    if (last == 0 || now.saturating_sub(last) >= interval)
        && LAST_WARNED
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        return Some(QUIETED.swap(0, Ordering::Relaxed));
    }
    QUIETED.fetch_add(1, Ordering::Relaxed);
    None
}

/// Whether decision events at `level` would be recorded: the masked input
/// is built only then.
pub(crate) fn enabled(level: DecisionLog) -> bool {
    match level {
        DecisionLog::Debug => {
            tracing::enabled!(target: "portcullis_policy::decision", tracing::Level::DEBUG)
        }
        DecisionLog::Info => {
            tracing::enabled!(target: "portcullis_policy::decision", tracing::Level::INFO)
        }
    }
}

impl Event<'_> {
    /// Logs the event at `level`; `input` is the masked input, when built.
    /// An engine failure is also logged at `warn`, at most once per ten
    /// seconds (the rest at `debug`).
    pub(crate) fn log(&self, level: DecisionLog, input: Option<&str>) {
        let duration_us = self.started.map_or(0, |s| {
            u64::try_from(s.elapsed().as_micros()).unwrap_or(u64::MAX)
        });
        let (result, error) = match &self.outcome {
            Outcome::Decided(d) => (d.as_str(), None),
            Outcome::Failed(e) => (
                if e.status() == 503 {
                    "unavailable"
                } else {
                    "error"
                },
                Some(e.message()),
            ),
        };
        let id = tracing::field::display(self.id);
        let input = input.unwrap_or("");
        let opa = self.opa_decision_id.unwrap_or("");
        macro_rules! event {
            ($level:expr) => {
                tracing::event!(
                    target: "portcullis_policy::decision",
                    $level,
                    decision_id = %id,
                    engine = self.engine,
                    rule = self.rule,
                    result,
                    duration_us,
                    cached = self.cached,
                    opa_decision_id = opa,
                    error = error.unwrap_or(""),
                    input,
                    "policy decision"
                )
            };
        }
        match level {
            DecisionLog::Debug => event!(tracing::Level::DEBUG),
            DecisionLog::Info => event!(tracing::Level::INFO),
        }
        if let Outcome::Failed(e) = &self.outcome
            && e.status() == 503
            && let Some(quieted) = warn_due()
        {
            tracing::warn!(
                decision_id = %id,
                engine = self.engine,
                rule = self.rule,
                error = e.message(),
                quieted,
                "the policy engine could not decide; the request is refused (503)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_shaped() {
        let a = DecisionId::next();
        let b = DecisionId::next();
        assert_ne!(a, b);
        let text = a.to_string();
        assert_eq!(text.len(), 8 + 1 + 16, "{text}");
        assert_eq!(text[..8], b.to_string()[..8], "one prefix per process");
    }

    #[test]
    fn outage_warnings_are_rate_limited() {
        // The first failure of an interval is logged at `warn`, the next
        // ones are counted for it.
        let first = warn_due();
        assert!(first.is_some());
        assert_eq!(warn_due(), None);
        assert_eq!(warn_due(), None);
        assert_eq!(QUIETED.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn only_allow_passes() {
        assert!(Decision::Allow.is_allowed());
        for refused in [Decision::Deny, Decision::Undefined] {
            let e = refused.into_result().unwrap_err();
            assert_eq!(e.status(), 403);
            assert_eq!(e.error_code(), "forbidden");
        }
    }
}
