//! [`EmbeddedRego`]: Rego policies evaluated in the process by regorus,
//! loaded from a directory and reloaded when it changes.

pub(crate) mod scan;

use std::fmt;
use std::fs;
use std::io;
use std::num::NonZeroU32;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use portcullis_core::Error;
use regorus::utils::limits::ExecutionTimerConfig;

use crate::decision::Decision;

/// How an [`EmbeddedRego`] loads and evaluates.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RegoOptions {
    /// The decision rule (`data.httpapi.authz.allow`): every policy set
    /// loaded must define it, as a boolean rule. `None` checks nothing (a
    /// server answering for any rule, as the mock OPA server does).
    pub rule: Option<String>,
    /// The longest one evaluation may run (500 ms by default).
    pub timeout: Duration,
    /// How often the directory is looked at for changes (one second by
    /// default; zero: only on [`reload`](EmbeddedRego::reload)).
    pub reload_interval: Duration,
    /// Refuse policy sets that call built-in functions whose answer changes
    /// between calls (set when decisions are cached).
    pub deterministic: bool,
    /// Evaluate on tokio's blocking threads under a hard deadline (see
    /// [`EmbeddedRego`]).
    pub isolate: bool,
}

impl Default for RegoOptions {
    fn default() -> Self {
        Self {
            rule: None,
            timeout: Duration::from_millis(500),
            reload_interval: Duration::from_secs(1),
            deterministic: false,
            isolate: false,
        }
    }
}

impl RegoOptions {
    /// Sets [`rule`](Self::rule).
    #[must_use]
    pub fn rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }

    /// Sets [`timeout`](Self::timeout).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`reload_interval`](Self::reload_interval).
    #[must_use]
    pub fn reload_interval(mut self, interval: Duration) -> Self {
        self.reload_interval = interval;
        self
    }

    /// Sets [`deterministic`](Self::deterministic).
    #[must_use]
    pub fn deterministic(mut self, deterministic: bool) -> Self {
        self.deterministic = deterministic;
        self
    }

    /// Sets [`isolate`](Self::isolate).
    #[must_use]
    pub fn isolate(mut self, isolate: bool) -> Self {
        self.isolate = isolate;
        self
    }
}

/// At most this many isolated evaluations may still run past their
/// deadline; while they do, further isolated decisions are unavailable
/// (503) rather than tie up more threads.
pub const MAX_OVERRUNNING_EVALUATIONS: usize = 16;

/// How often, in regorus' work units, an evaluation looks at the clock.
const TIME_CHECK_INTERVAL: u32 = 16;

/// Rego policies from a directory, evaluated in the process by regorus.
///
/// # The directory
///
/// Every `*.rego` file under it (subdirectories included, names starting
/// with `.` skipped) is a policy module in Rego v1 syntax. `data.json`
/// files are data documents: the one at the top is the root of `data` (a
/// JSON object); one in `a/b/` is placed at `data.a.b`, as in OPA bundles.
///
/// # Reloading
///
/// A policy set is loaded whole or not at all. At most once per
/// [`reload_interval`](RegoOptions::reload_interval), a background task
/// compares each file's modification time, length and inode with those
/// loaded, and reloads when they differ (or [`reload`](Self::reload) does
/// it now). A set that does not load (a syntax error, a rule conflict,
/// `data.json` that does not parse, a decision rule missing or not
/// boolean, a non-deterministic call while decisions are cached) is
/// refused: logged at `warn` with its file, line and reason, while the last
/// good set keeps serving. Every set installed gets a new
/// [`generation`](Self::generation).
///
/// # Evaluation
///
/// Each decision evaluates a copy of the loaded engine (the policies are
/// shared, not copied) with its own input. By default it runs on the
/// calling task's thread, under regorus' cooperative time limit
/// ([`timeout`](RegoOptions::timeout)): the interpreter looks at the clock
/// as it works and stops with an error (503) past the limit. A decision
/// typically takes microseconds, less than handing it to another thread
/// would cost. The limit is cooperative: one built-in call over a large
/// value (`numbers.range(0, 100000000)`) runs to its end before the clock is
/// looked at again, and holds the thread that long; its answer, late, is
/// then 503 all the same. With [`isolate`](RegoOptions::isolate), evaluations run
/// on tokio's blocking threads and the decision is 503 at the deadline
/// whatever the policy does; an evaluation that overruns is abandoned (its
/// thread finishes it and drops the answer), and at most
/// [`MAX_OVERRUNNING_EVALUATIONS`] may overrun at once. A panic in the
/// engine is caught and is 503 too.
///
/// Cheap to clone; clones share the policies.
#[derive(Clone)]
pub struct EmbeddedRego {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    options: RegoOptions,
    current: ArcSwap<Loaded>,
    /// The directory's state when a load last failed, so that it is not
    /// loaded (and logged) again until it changes.
    refused: Mutex<Option<Scan>>,
    /// Serializes loads.
    loading: tokio::sync::Mutex<()>,
    generations: AtomicU64,
    overrunning: Arc<AtomicUsize>,
}

impl fmt::Debug for EmbeddedRego {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loaded = self.inner.current.load();
        f.debug_struct("EmbeddedRego")
            .field("dir", &self.inner.dir)
            .field("options", &self.inner.options)
            .field("files", &loaded.stamps.len())
            .field("generation", &loaded.generation)
            .finish()
    }
}

/// A loaded policy set.
struct Loaded {
    engine: regorus::Engine,
    stamps: Vec<Stamp>,
    generation: u64,
}

/// A file's identity and version, cheaply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Relative to the directory.
    path: PathBuf,
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

impl Stamp {
    fn new(path: PathBuf, meta: &fs::Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Self {
            path,
            modified: meta.modified().ok(),
            len: meta.len(),
            #[cfg(unix)]
            inode: meta.ino(),
        }
    }

    fn is_rego(&self) -> bool {
        self.path.extension().is_some_and(|e| e == "rego")
    }
}

/// The directory's files, or why it could not be read.
type Scan = Result<Vec<Stamp>, String>;

/// Lists the policy and data files under `dir`, sorted.
fn scan_dir(dir: &Path) -> Scan {
    fn walk(dir: &Path, rel: &Path, out: &mut Vec<Stamp>) -> io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let path = dir.join(&name);
            let rel = rel.join(&name);
            // Follows symbolic links.
            let meta = fs::metadata(&path)?;
            if meta.is_dir() {
                walk(&path, &rel, out)?;
            } else if rel.extension().is_some_and(|e| e == "rego") || name == "data.json" {
                out.push(Stamp::new(rel, &meta));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, Path::new(""), &mut out)
        .map_err(|e| format!("policy directory {}: cannot read: {e}", dir.display()))?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// A failed load: the error, and the directory's state it was made from.
pub(crate) struct Refusal {
    pub(crate) error: Error,
    scan: Scan,
}

/// The policy files among `stamps`, relative to the directory.
pub(crate) fn rego_files(stamps: &[Stamp]) -> impl Iterator<Item = &Path> {
    stamps
        .iter()
        .filter(|s| s.is_rego())
        .map(|s| s.path.as_path())
}

fn timer(timeout: Duration) -> ExecutionTimerConfig {
    ExecutionTimerConfig {
        limit: timeout,
        check_interval: NonZeroU32::new(TIME_CHECK_INTERVAL).unwrap_or(NonZeroU32::MIN),
    }
}

/// Loads the policy set under `dir`.
pub(crate) fn load(
    dir: &Path,
    options: &RegoOptions,
) -> Result<(regorus::Engine, Vec<Stamp>), Refusal> {
    let scan = scan_dir(dir);
    let stamps = match &scan {
        Ok(stamps) => stamps.clone(),
        Err(e) => {
            return Err(Refusal {
                error: Error::config(e.clone()),
                scan,
            });
        }
    };
    let refuse = |error: Error| Refusal {
        error,
        scan: scan.clone(),
    };
    if !stamps.iter().any(Stamp::is_rego) {
        return Err(refuse(Error::config(format!(
            "policy directory {}: no .rego file",
            dir.display()
        ))));
    }
    let mut engine = regorus::Engine::new();
    engine.set_execution_timer_config(timer(options.timeout));
    for stamp in &stamps {
        let path = dir.join(&stamp.path);
        let shown = path.display().to_string();
        let read_error = |e: io::Error| {
            refuse(Error::config(format!(
                "policy file {shown}: cannot read: {e}"
            )))
        };
        if stamp.is_rego() {
            let text = fs::read_to_string(&path).map_err(read_error)?;
            if options.deterministic
                && let Some((name, line)) = scan::nondeterministic_calls(&text).into_iter().next()
            {
                return Err(refuse(Error::config(format!(
                    "policy file {shown}: line {line}: `{name}` answers differently from one \
                     call to the next, and decisions are cached (`policy.cache.enabled`); \
                     turn the cache off or remove the call"
                ))));
            }
            engine
                .add_policy(shown.clone(), text)
                .map_err(|e| refuse(located(&shown, &e.to_string())))?;
        } else {
            let text = fs::read(&path).map_err(read_error)?;
            let value: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
                refuse(Error::config(format!(
                    "data file {shown}: line {}, column {}: {}",
                    e.line(),
                    e.column(),
                    json_reason(&e)
                )))
            })?;
            let mut value = value;
            let parent: Vec<String> = stamp
                .path
                .parent()
                .into_iter()
                .flat_map(Path::components)
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parent.is_empty() && !value.is_object() {
                return Err(refuse(Error::config(format!(
                    "data file {shown}: the top-level data document must be a JSON object"
                ))));
            }
            for name in parent.into_iter().rev() {
                value = serde_json::Value::Object([(name, value)].into_iter().collect());
            }
            engine
                .add_data(regorus::Value::from(value))
                .map_err(|e| refuse(Error::config(format!("data file {shown}: {e}"))))?;
        }
    }
    // Evaluating once prepares the engine (scheduling, loop hoisting) and
    // finds the errors that show only then (rule conflicts, unknown
    // functions on the decision rule's path); every copy made for a decision
    // starts prepared.
    engine.set_input(regorus::Value::new_object());
    let Some(rule) = &options.rule else {
        engine
            .eval_query("true".to_owned(), false)
            .map_err(|e| refuse(located(&dir.display().to_string(), &e.to_string())))?;
        return Ok((engine, stamps));
    };
    {
        match engine.eval_rule(rule.clone()) {
            Ok(regorus::Value::Bool(_) | regorus::Value::Undefined) => {}
            Ok(_) => {
                return Err(refuse(Error::config(format!(
                    "policy directory {}: the decision rule `{rule}` is not a boolean rule",
                    dir.display()
                ))));
            }
            // A policy too slow for an empty input is not a broken one.
            Err(e) if e.to_string().contains("exceeded time limit") => {}
            Err(e) => {
                let e = e.to_string();
                if e.contains("not a valid rule path") {
                    return Err(refuse(Error::config(format!(
                        "policy directory {}: no policy defines the decision rule `{rule}`",
                        dir.display()
                    ))));
                }
                let found = scan::locate(&e);
                let message = match (found.file, found.line) {
                    (Some(file), Some((line, col))) => format!(
                        "policy file {file}: line {line}, column {col}: {} (evaluating the \
                         decision rule `{rule}`)",
                        found.reason
                    ),
                    _ => format!(
                        "policy directory {}: the decision rule `{rule}` fails: {}",
                        dir.display(),
                        found.reason
                    ),
                };
                return Err(refuse(Error::config(message)));
            }
        }
    }
    Ok((engine, stamps))
}

/// A regorus error about file `shown`, as `policy file F: line L, column C: reason`.
fn located(shown: &str, message: &str) -> Error {
    let found = scan::locate(message);
    Error::config(match found.line {
        Some((line, col)) => format!(
            "policy file {shown}: line {line}, column {col}: {}",
            found.reason
        ),
        None => format!("policy file {shown}: {}", found.reason),
    })
}

/// A JSON syntax error's reason without the offending text.
fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

impl EmbeddedRego {
    /// Loads the policies under `dir`, and (when `reload_interval` is not
    /// zero and a tokio runtime is running) starts watching it; the
    /// watching ends when the last clone is dropped.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](portcullis_core::ErrorKind::Config) naming the
    /// file, line and reason when the set does not load.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (the files are read on its blocking threads).
    pub async fn open(dir: impl Into<PathBuf>, options: RegoOptions) -> Result<Self, Error> {
        let dir = dir.into();
        let (engine, stamps) = {
            let dir = dir.clone();
            let options = options.clone();
            tokio::task::spawn_blocking(move || load(&dir, &options))
                .await
                .map_err(|_| Error::config("loading the policies failed"))?
                .map_err(|r| r.error)?
        };
        let inner = Arc::new(Inner {
            dir,
            current: ArcSwap::from_pointee(Loaded {
                engine,
                stamps,
                generation: 1,
            }),
            refused: Mutex::new(None),
            loading: tokio::sync::Mutex::new(()),
            generations: AtomicU64::new(1),
            overrunning: Arc::new(AtomicUsize::new(0)),
            options,
        });
        let interval = inner.options.reload_interval;
        if !interval.is_zero()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(watch(Arc::downgrade(&inner), interval));
        }
        Ok(Self { inner })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The loaded policy set's generation: 1 at start, one more for each
    /// set installed since.
    pub fn generation(&self) -> u64 {
        self.inner.current.load().generation
    }

    /// Loads the directory now, whether or not it changed.
    ///
    /// # Errors
    ///
    /// The set's refusal (kind `Config`, with file, line and reason): the
    /// last good set keeps serving.
    pub async fn reload(&self) -> Result<(), Error> {
        self.inner.reload(None).await
    }

    /// Evaluates `path` (a rule, `data.httpapi.authz.allow`, or a package,
    /// `data.httpapi.authz`) for `input`, on this thread: the value, or
    /// `None` when it is undefined. This is what an OPA server answers for
    /// `POST /v1/data/httpapi/authz/allow`.
    ///
    /// # Errors
    ///
    /// 503 when the evaluation fails or runs out of time.
    pub fn evaluate(
        &self,
        path: &str,
        input: serde_json::Value,
    ) -> Result<Option<serde_json::Value>, Error> {
        let loaded = self.inner.current.load_full();
        let mut engine = loaded.engine.clone();
        engine.set_input(regorus::Value::from(input));
        let value = catch_unwind(AssertUnwindSafe(move || {
            match engine.eval_rule(path.to_owned()) {
                Err(e) if e.to_string().contains("not a valid rule path") => {
                    engine.eval_query(path.to_owned(), false).map(|r| {
                        r.result
                            .into_iter()
                            .next()
                            .and_then(|r| r.expressions.into_iter().next())
                            .map_or(regorus::Value::Undefined, |e| e.value)
                    })
                }
                other => other,
            }
        }))
        .map_err(|_| Error::unavailable("the policy engine failed"))?
        .map_err(evaluation_error)?;
        if value == regorus::Value::Undefined {
            return Ok(None);
        }
        serde_json::to_value(&value)
            .map(Some)
            .map_err(|_| Error::unavailable("the policy's value cannot be written as JSON"))
    }

    /// Decides: evaluates `rule` for `input`, on this thread or isolated.
    /// Returns the decision and the generation of the set that made it.
    pub(crate) async fn decide(
        &self,
        rule: &str,
        input: regorus::Value,
    ) -> Result<(Decision, u64), Error> {
        let loaded = self.inner.current.load_full();
        if !self.inner.options.isolate {
            return evaluate(&loaded, rule, input, self.inner.options.timeout)
                .map(|d| (d, loaded.generation));
        }
        let overrunning = &self.inner.overrunning;
        if overrunning.load(Ordering::Acquire) >= MAX_OVERRUNNING_EVALUATIONS {
            return Err(Error::unavailable(
                "too many policy evaluations are still running past their deadline",
            ));
        }
        // 0: running, 1: done, 2: abandoned.
        let state = Arc::new(AtomicU8::new(0));
        let task = {
            let state = state.clone();
            let overrunning = overrunning.clone();
            let rule = rule.to_owned();
            let loaded = loaded.clone();
            let timeout = self.inner.options.timeout;
            tokio::task::spawn_blocking(move || {
                let decided = evaluate(&loaded, &rule, input, timeout);
                if state.swap(1, Ordering::AcqRel) == 2 {
                    overrunning.fetch_sub(1, Ordering::AcqRel);
                }
                decided
            })
        };
        match tokio::time::timeout(self.inner.options.timeout, task).await {
            Ok(Ok(decided)) => decided.map(|d| (d, loaded.generation)),
            Ok(Err(_)) => Err(Error::unavailable("the policy engine failed")),
            Err(_) => {
                overrunning.fetch_add(1, Ordering::AcqRel);
                if state
                    .compare_exchange(0, 2, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    // It finished meanwhile: nothing overruns.
                    overrunning.fetch_sub(1, Ordering::AcqRel);
                }
                Err(Error::unavailable(
                    "the policy evaluation did not finish in time",
                ))
            }
        }
    }
}

/// Evaluates the decision rule on a copy of the loaded engine, within `timeout`.
fn evaluate(
    loaded: &Loaded,
    rule: &str,
    input: regorus::Value,
    timeout: Duration,
) -> Result<Decision, Error> {
    let started = Instant::now();
    let mut engine = loaded.engine.clone();
    engine.set_input(input);
    let value = catch_unwind(AssertUnwindSafe(move || engine.eval_rule(rule.to_owned())))
        .map_err(|_| Error::unavailable("the policy engine failed"))?
        .map_err(evaluation_error)?;
    // The interpreter looks at the clock between steps, not after the
    // last one: an answer that came too late is not an answer.
    if started.elapsed() > timeout {
        return Err(Error::unavailable(
            "the policy evaluation did not finish in time",
        ));
    }
    match value {
        regorus::Value::Bool(true) => Ok(Decision::Allow),
        regorus::Value::Bool(false) => Ok(Decision::Deny),
        regorus::Value::Undefined => Ok(Decision::Undefined),
        _ => Err(Error::unavailable(
            "the decision rule's value is not a boolean",
        )),
    }
}

fn evaluation_error(e: impl fmt::Display) -> Error {
    let message = e.to_string();
    if message.contains("exceeded time limit") {
        return Error::unavailable("the policy evaluation did not finish in time");
    }
    let found = scan::locate(&message);
    Error::unavailable(match found.line {
        Some((line, col)) => format!(
            "the policy evaluation failed at line {line}, column {col}: {}",
            found.reason
        ),
        None => format!("the policy evaluation failed: {}", found.reason),
    })
}

impl Inner {
    /// Loads and installs the directory's set; with `seen`, the directory's
    /// state that prompted it.
    async fn reload(self: &Arc<Self>, seen: Option<Scan>) -> Result<(), Error> {
        let _loading = self.loading.lock().await;
        let dir = self.dir.clone();
        let options = self.options.clone();
        let loaded = tokio::task::spawn_blocking(move || load(&dir, &options))
            .await
            .map_err(|_| Error::unavailable("loading the policies failed"))?;
        match loaded {
            Ok((engine, stamps)) => {
                let generation = self.generations.fetch_add(1, Ordering::AcqRel) + 1;
                tracing::info!(
                    dir = %self.dir.display(),
                    files = stamps.len(),
                    generation,
                    "policies loaded"
                );
                self.current.store(Arc::new(Loaded {
                    engine,
                    stamps,
                    generation,
                }));
                *self.refused.lock().unwrap_or_else(PoisonError::into_inner) = None;
                Ok(())
            }
            Err(Refusal { error, scan }) => {
                tracing::warn!(
                    error = error.message(),
                    "policies refused; the last good set keeps serving"
                );
                *self.refused.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(seen.unwrap_or(scan));
                Err(error)
            }
        }
    }

    /// Reloads if the directory changed since the last load or refusal.
    async fn refresh_if_changed(self: &Arc<Self>) {
        let dir = self.dir.clone();
        let Ok(scan) = tokio::task::spawn_blocking(move || scan_dir(&dir)).await else {
            return;
        };
        if scan
            .as_ref()
            .is_ok_and(|s| *s == self.current.load().stamps)
        {
            return;
        }
        if self
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|r| *r == scan)
        {
            return;
        }
        // `reload` logs its own outcome.
        let _ = self.reload(Some(scan)).await;
    }
}

/// Looks at the directory every `interval` while the engine lives.
async fn watch(inner: Weak<Inner>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.refresh_if_changed().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(path, text).unwrap();
    }

    fn options() -> RegoOptions {
        RegoOptions::default()
            .rule("data.app.allow")
            .reload_interval(Duration::ZERO)
    }

    #[tokio::test]
    async fn data_documents_nest_like_bundles() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "p.rego",
            "package app\nallow if data.roles[input.user] == \"admin\"\nlimit := data.limits.api.max\n",
        );
        write(dir.path(), "data.json", r#"{"roles": {"ann": "admin"}}"#);
        write(dir.path(), "limits/api/data.json", r#"{"max": 7}"#);
        write(dir.path(), ".hidden.rego", "not rego at all");
        write(dir.path(), "notes.txt", "ignored");
        let e = EmbeddedRego::open(dir.path(), options()).await.unwrap();
        let allow = |user: &str| {
            e.evaluate("data.app.allow", serde_json::json!({"user": user}))
                .unwrap()
        };
        assert_eq!(allow("ann"), Some(serde_json::json!(true)));
        assert_eq!(allow("bob"), None);
        assert_eq!(
            e.evaluate("data.app.limit", serde_json::json!({})).unwrap(),
            Some(serde_json::json!(7))
        );
        // A package evaluates to its document, as OPA answers.
        let doc = e
            .evaluate("data.app", serde_json::json!({"user": "ann"}))
            .unwrap()
            .unwrap();
        assert_eq!(doc["allow"], true);
        assert_eq!(e.generation(), 1);
    }

    #[tokio::test]
    async fn broken_sets_are_refused_with_file_line_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "p.rego",
                "package app\n\nallow if {\n  input.x ==\n}\n",
                "p.rego: line 5, column 1: expecting expression",
            ),
            (
                "p.rego",
                "package app\nallow { true }\n",
                "p.rego: line 2, column 7: `if` keyword is required",
            ),
            (
                "p.rego",
                "package app\nallow := true\nallow := false\n",
                "line 3, column 1: rule conflicts",
            ),
            (
                "p.rego",
                "package other\nallow := true\n",
                "no policy defines the decision rule `data.app.allow`",
            ),
            (
                "p.rego",
                "package app\nallow := {\"a\": 1}\n",
                "is not a boolean rule",
            ),
        ];
        for (name, text, expected) in cases {
            write(dir.path(), name, text);
            let e = EmbeddedRego::open(dir.path(), options()).await.unwrap_err();
            assert_eq!(e.kind(), portcullis_core::ErrorKind::Config);
            assert!(e.message().contains(expected), "{text}: {}", e.message());
        }
        write(dir.path(), "p.rego", "package app\nallow := true\n");
        write(dir.path(), "data.json", "{\"a\": [1,}\n");
        let e = EmbeddedRego::open(dir.path(), options()).await.unwrap_err();
        assert!(
            e.message().contains("data.json: line 1, column 10"),
            "{}",
            e.message()
        );
        write(dir.path(), "data.json", "[1]");
        let e = EmbeddedRego::open(dir.path(), options()).await.unwrap_err();
        assert!(
            e.message().contains("must be a JSON object"),
            "{}",
            e.message()
        );
        fs::remove_file(dir.path().join("data.json")).unwrap();
        fs::remove_file(dir.path().join("p.rego")).unwrap();
        let e = EmbeddedRego::open(dir.path(), options()).await.unwrap_err();
        assert!(e.message().contains("no .rego file"), "{}", e.message());
        let e = EmbeddedRego::open(dir.path().join("missing"), options())
            .await
            .unwrap_err();
        assert!(e.message().contains("cannot read"), "{}", e.message());
    }

    #[tokio::test]
    async fn nondeterministic_calls_are_refused_when_decisions_are_cached() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "p.rego",
            "package app\n\nallow if rand.intn(\"r\", 2) == 1\n",
        );
        EmbeddedRego::open(dir.path(), options()).await.unwrap();
        let e = EmbeddedRego::open(dir.path(), options().deterministic(true))
            .await
            .unwrap_err();
        assert!(
            e.message().contains("p.rego: line 3: `rand.intn`")
                && e.message().contains("policy.cache.enabled"),
            "{}",
            e.message()
        );
    }

    #[tokio::test]
    async fn the_time_limit_holds() {
        let dir = tempfile::tempdir().unwrap();
        // Many small steps: the interpreter looks at the clock between them.
        write(
            dir.path(),
            "p.rego",
            "package app\nallow if {\n  some i in numbers.range(1, 2000)\n  some j in numbers.range(1, 2000)\n  i * j < 0\n}\n",
        );
        let opts = options().timeout(Duration::from_millis(20));
        for isolate in [false, true] {
            let e = EmbeddedRego::open(dir.path(), opts.clone().isolate(isolate))
                .await
                .unwrap();
            // Without the limit this runs far longer; the guard only
            // keeps a broken limit from hanging the suite.
            let err = tokio::time::timeout(
                Duration::from_secs(60),
                e.decide("data.app.allow", regorus::Value::new_object()),
            )
            .await
            .expect("the time limit ends the evaluation")
            .unwrap_err();
            assert_eq!(err.status(), 503);
            assert!(err.message().contains("in time"), "{}", err.message());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn isolated_evaluations_are_abandoned_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        // One built-in call that never looks at the clock.
        write(
            dir.path(),
            "p.rego",
            "package app\nallow if count(numbers.range(1, 1500000)) == 0\n",
        );
        let open = |timeout: Duration, isolate: bool| {
            EmbeddedRego::open(
                dir.path(),
                RegoOptions::default()
                    .reload_interval(Duration::ZERO)
                    .timeout(timeout)
                    .isolate(isolate),
            )
        };
        // How long the call takes when left to finish.
        let patient = open(Duration::from_secs(30), false).await.unwrap();
        let decided = patient
            .decide("data.app.allow", regorus::Value::new_object())
            .await
            .unwrap();
        assert_eq!(decided.0, Decision::Undefined);
        // Inline, the cooperative limit cannot cut the call short: the
        // evaluation has ended when the refusal comes.
        let inline = open(Duration::from_millis(1), false).await.unwrap();
        let err = inline
            .decide("data.app.allow", regorus::Value::new_object())
            .await
            .unwrap_err();
        assert_eq!(err.status(), 503);
        assert_eq!(inline.inner.overrunning.load(Ordering::Acquire), 0);
        // Isolated, the answer comes at the deadline, while the abandoned
        // evaluation still runs (what the answer did not wait for).
        let isolated = open(Duration::from_millis(1), true).await.unwrap();
        let err = isolated
            .decide("data.app.allow", regorus::Value::new_object())
            .await
            .unwrap_err();
        assert_eq!(err.status(), 503);
        assert!(err.message().contains("in time"), "{}", err.message());
        assert_eq!(isolated.inner.overrunning.load(Ordering::Acquire), 1);
        // The abandoned evaluation finishes on its own and is forgotten.
        tokio::time::timeout(Duration::from_secs(30), async {
            while isolated.inner.overrunning.load(Ordering::Acquire) != 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
    }
}
