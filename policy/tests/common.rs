//! What the tests share: the policy directory copied for each test, the
//! two engines behind one setup, callers, and a log capture.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::Duration;

use portcullis_core::{Authenticated, RawToken};
use portcullis_policy::{Decision, Policy, PolicyConfig, RequestInfo};
use portcullis_testing::MockOpa;
use serde_json::Value;
use tempfile::TempDir;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

/// The longest any one test may take.
pub(crate) const TEST_BOUND: Duration = Duration::from_secs(30);

/// How often the policy directories are looked at in tests.
pub(crate) const RELOAD: Duration = Duration::from_millis(50);

/// Runs `test` under [`TEST_BOUND`].
pub(crate) async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("the test finished in time");
}

/// The engines the shared suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Embedded,
    Remote,
}

/// A policy over a private copy of `tests/policies`, and for the remote
/// engine the mock OPA server answering it.
pub(crate) struct Setup {
    pub(crate) policy: Policy,
    pub(crate) dir: TempDir,
    pub(crate) opa: Option<MockOpa>,
}

/// `tests/policies`.
pub(crate) fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/policies")
}

/// A fresh copy of `tests/policies`.
pub(crate) fn policy_dir() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(policies()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

impl Setup {
    /// The `kind` engine over a copy of the policies; `edit` adjusts the
    /// configuration (input shape, guests, rule, ...).
    pub(crate) async fn new(kind: Kind, edit: impl FnOnce(PolicyConfig) -> PolicyConfig) -> Self {
        let dir = policy_dir();
        let (config, opa) = match kind {
            Kind::Embedded => (
                PolicyConfig::rego(dir.path()).with_reload_interval(RELOAD),
                None,
            ),
            Kind::Remote => {
                let opa = MockOpa::start(dir.path()).await.unwrap();
                (PolicyConfig::opa(opa.url()), Some(opa))
            }
        };
        let policy = Policy::from_config(&edit(config)).await.unwrap();
        Self { policy, dir, opa }
    }

    /// Decides about `method path` for `caller`.
    pub(crate) async fn decide(
        &self,
        caller: Option<&Authenticated>,
        method: &str,
        path: &str,
    ) -> Result<Decision, portcullis_core::Error> {
        self.policy
            .decide(caller, &RequestInfo::new(method, path))
            .await
    }

    /// What a middleware answers about `method path` for `caller`:
    /// `Ok` to pass, the refusal otherwise.
    pub(crate) async fn authorize(
        &self,
        caller: Option<&Authenticated>,
        method: &str,
        path: &str,
    ) -> Result<(), portcullis_core::Error> {
        self.policy
            .authorize(caller, &RequestInfo::new(method, path))
            .await
    }

    /// Writes `file` in the policy directory, replacing it.
    pub(crate) fn write(&self, file: &str, text: &str) {
        // Through a temporary file and a rename: a reader never sees half a file.
        let tmp = self.dir.path().join(format!(".{file}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(tmp, self.dir.path().join(file)).unwrap();
    }

    /// Waits until `method path` for `caller` is decided `expected`.
    pub(crate) async fn until(
        &self,
        caller: Option<&Authenticated>,
        method: &str,
        path: &str,
        expected: Decision,
    ) {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if self.decide(caller, method, path).await.ok() == Some(expected) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{method} {path} never became {expected}"));
    }

    /// The inputs the OPA server received (remote only).
    pub(crate) fn inputs(&self) -> Vec<Value> {
        self.opa.as_ref().map(MockOpa::inputs).unwrap_or_default()
    }
}

/// A verified caller with `claims`, valid until `exp`.
pub(crate) fn caller_until(claims: Value, exp: u64) -> Authenticated {
    let Value::Object(claims) = claims else {
        panic!("claims are an object")
    };
    let principal = portcullis_core::dangerous::principal_from_unverified_claims(
        "https://id.example.com",
        claims,
        RawToken::new("the-session-access-token"),
        exp,
    )
    .unwrap();
    portcullis_core::dangerous::authenticated_unverified(Arc::new(principal))
}

/// A verified caller named `name` in `groups`.
pub(crate) fn caller(name: &str, groups: &[&str]) -> Authenticated {
    caller_until(
        serde_json::json!({
            "sub": format!("sub-{name}"),
            "preferred_username": name,
            "groups": groups,
        }),
        4_000_000_000,
    )
}

/// Records the events of the thread that made it, until dropped.
///
/// One subscriber is installed for the whole test binary, the first time a
/// capture starts; it keeps each capturing thread's events apart and asks
/// about every event (no per-call-site caching), so that tests running at
/// once on other threads neither see these events nor hide them.
#[derive(Debug)]
pub(crate) struct Capture(());

thread_local! {
    static LINES: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

impl Capture {
    /// Starts capturing this thread's events.
    pub(crate) fn start() -> Self {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            tracing::subscriber::set_global_default(Recorder).expect("no other subscriber");
        });
        LINES.with(|l| *l.borrow_mut() = Some(Vec::new()));
        Capture(())
    }

    /// The events so far, each as `target level name=value ...`.
    pub(crate) fn lines(&self) -> Vec<String> {
        LINES.with(|l| l.borrow().clone().unwrap_or_default())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        LINES.with(|l| *l.borrow_mut() = None);
    }
}

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, "{}={value} ", field.name());
    }
}

/// The binary's subscriber: records on capturing threads only.
struct Recorder;

fn capturing() -> bool {
    LINES.with(|l| l.borrow().is_some())
}

impl Subscriber for Recorder {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        capturing()
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut fields = Fields(format!("{} {} ", meta.target(), meta.level()));
        event.record(&mut fields);
        LINES.with(|l| {
            if let Some(lines) = l.borrow_mut().as_mut() {
                lines.push(fields.0);
            }
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
