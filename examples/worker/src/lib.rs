//! A background worker that trusts nothing a job says until portcullis-core
//! has verified the token the job carries.
//!
//! Each job is a JSON object `{"token": "<jwt>", "action": "<name>"}` (one
//! per line on standard input or in a file), or `{"principal": "<id>",
//! "token": "<token>", "action": "<name>"}` from an automation principal.
//! For each, the [`Worker`]:
//!
//! 1. verifies the token with core's [`TokenVerifier`] (issuer, algorithm,
//!    signature, `aud`, `exp`, ...), with static keys: no HTTP request is
//!    ever made; or, for an automation principal, checks its id and token
//!    with core's [`AutomationPrincipals`] ([`Worker::with_automation`]);
//! 2. works out what the caller holds: the token's scopes that name a
//!    capability, with everything they imply in core's [`CapabilityGraph`],
//!    and the graph's defaults (a worker has no user store to ask);
//! 3. requires the action's capability ([`Action::capability`]) and runs it,
//!    or refuses the job with core's reason.
//!
//! Outcomes are JSON lines too ([`Outcome::to_json`]): `{"status": "done",
//! ...}` or `{"status": "refused", "error": "invalid_token", "reason": "the
//! token has expired"}`. No token, and nothing a job says, is ever echoed.
//!
//! This crate depends on `portcullis-core` without its `reqwest` feature and
//! on no web framework: `cargo tree -p example-worker -e normal` lists no
//! HTTP server or client (a test checks it).
//!
//! # Examples
//!
//! ```
//! # async fn run() -> Result<(), portcullis_core::Error> {
//! use example_worker::{Job, Worker, WorkerConfig};
//! use portcullis_core::config::{IssuerConfig, StaticKey, VerifierConfig};
//! use portcullis_core::mint::SigningKey;
//! use portcullis_core::{Algorithm, ErrorKind};
//!
//! let key = SigningKey::generate(Algorithm::ES256, "k1")?;
//! let issuer = IssuerConfig::new("https://scheduler.internal")
//!     .with_key(StaticKey::pem(Some("k1".into()), key.public_pem().unwrap()))
//!     .with_algorithms([Algorithm::ES256])
//!     .with_audience("jobs");
//! let worker = Worker::new(WorkerConfig::new(VerifierConfig::new([(
//!     "scheduler".to_owned(),
//!     issuer,
//! )])))?;
//!
//! let claims = serde_json::json!({
//!     "iss": "https://scheduler.internal", "aud": "jobs", "sub": "batch-7",
//!     "scope": "read", "exp": 4102444800u64,
//! });
//! let token = key.sign(&claims, None)?;
//!
//! let outcome = worker.process(&Job::new(token.as_str(), "report")).await;
//! assert!(outcome.is_done());
//!
//! // `reindex` needs `write`, which `read` does not imply.
//! let outcome = worker.process(&Job::new(token.as_str(), "reindex")).await;
//! assert_eq!(outcome.error().unwrap().kind(), ErrorKind::InsufficientScope);
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
//! ```

use std::io::{self, BufRead, Write};

use portcullis_core::automation::AutomationPrincipals;
use portcullis_core::config::VerifierConfig;
use portcullis_core::{
    CapId, CapSet, CapabilitiesConfig, CapabilityGraph, Error, ErrorKind, Principal, RawToken,
    TokenVerifier,
};
use serde::Deserialize;
use serde_json::{Value, json};

pub mod demo;

/// Jobs longer than this many bytes are refused unread.
pub const MAX_JOB_BYTES: usize = 64 * 1024;

/// The worker's configuration file (`config.example.yaml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// The issuers whose tokens jobs may carry. Their keys must be static
    /// (`keys` or `hmac_secret`): this worker has no HTTP client.
    pub verifier: VerifierConfig,
    /// The capability graph; [`default_capabilities`] when absent.
    #[serde(default = "default_capabilities")]
    pub capabilities: CapabilitiesConfig,
}

impl WorkerConfig {
    /// A configuration trusting `verifier`'s issuers, with [`default_capabilities`].
    pub fn new(verifier: VerifierConfig) -> Self {
        Self {
            verifier,
            capabilities: default_capabilities(),
        }
    }

    /// Uses `capabilities` as the capability graph.
    pub fn with_capabilities(mut self, capabilities: CapabilitiesConfig) -> Self {
        self.capabilities = capabilities;
        self
    }
}

/// The worker's capabilities: `read`, `write` (implies `read`), and `admin`
/// (implies both); nobody holds any without a scope naming it.
pub fn default_capabilities() -> CapabilitiesConfig {
    CapabilitiesConfig::new([("read", vec![]), ("write", vec!["read"])]).with_auto_admin(true)
}

/// What a job may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Reads a report: needs `read`.
    Report,
    /// Rebuilds an index: needs `write`.
    Reindex,
    /// Deletes everything: needs `admin`.
    Purge,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 3] = [Action::Report, Action::Reindex, Action::Purge];

    /// The action's name in a job.
    pub const fn name(self) -> &'static str {
        match self {
            Action::Report => "report",
            Action::Reindex => "reindex",
            Action::Purge => "purge",
        }
    }

    /// The capability the action needs.
    pub const fn capability(self) -> &'static str {
        match self {
            Action::Report => "read",
            Action::Reindex => "write",
            Action::Purge => "admin",
        }
    }

    /// The action named `name`.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Does the work (here, only says what it would have done).
    fn run(self, caller: &Principal) -> String {
        match self {
            Action::Report => format!("report prepared for {}", caller.user_id()),
            Action::Reindex => "index rebuilt".to_owned(),
            Action::Purge => "everything deleted".to_owned(),
        }
    }
}

/// A job: the token of whoever submitted it, and what it asks for.
///
/// `Debug` never shows the token.
#[derive(Debug, Clone)]
pub struct Job {
    /// The automation principal's id, for a job an automation principal
    /// submitted (its token in `token`).
    pub principal: Option<String>,
    /// The submitter's token, unverified.
    pub token: RawToken,
    /// The action's name, unchecked.
    pub action: String,
}

/// A job as it arrives.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobJson {
    #[serde(default)]
    principal: Option<String>,
    token: String,
    action: String,
}

impl Job {
    /// A job asking for `action` on behalf of `token`'s holder.
    pub fn new(token: impl Into<std::sync::Arc<str>>, action: impl Into<String>) -> Self {
        Self {
            principal: None,
            token: RawToken::new(token),
            action: action.into(),
        }
    }

    /// A job asking for `action` on behalf of the automation principal
    /// `principal`, whose token is `token`.
    pub fn automation(
        principal: impl Into<String>,
        token: impl Into<std::sync::Arc<str>>,
        action: impl Into<String>,
    ) -> Self {
        Self {
            principal: Some(principal.into()),
            ..Self::new(token, action)
        }
    }

    /// Parses `{"token": "...", "action": "..."}`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidRequest`] when `json` is not such an object. The
    /// message says what is wrong without quoting the input, which may hold a
    /// token.
    pub fn from_json(json: &[u8]) -> Result<Job, Error> {
        if json.len() > MAX_JOB_BYTES {
            return Err(too_large());
        }
        match serde_json::from_slice::<JobJson>(json) {
            Ok(JobJson {
                principal: Some(principal),
                token,
                action,
            }) => Ok(Job::automation(principal, token, action)),
            Ok(job) => Ok(Job::new(job.token, job.action)),
            Err(e) if e.is_data() => Err(Error::invalid_request(
                r#"the job is not of the form {"token": "...", "action": "..."}"#,
            )),
            Err(_) => Err(Error::invalid_request("the job is not valid JSON")),
        }
    }
}

fn too_large() -> Error {
    Error::invalid_request(format!("the job is larger than {MAX_JOB_BYTES} bytes"))
}

/// What became of a job.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Outcome {
    /// The job ran.
    Done {
        /// What ran.
        action: Action,
        /// The caller's user id.
        caller: String,
        /// What the action produced.
        result: String,
    },
    /// The job was refused.
    Refused {
        /// The action, when the job named a known one.
        action: Option<Action>,
        /// Why, in core's terms.
        error: Error,
    },
}

impl Outcome {
    /// Whether the job ran.
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done { .. })
    }

    /// Why the job was refused, if it was.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Outcome::Done { .. } => None,
            Outcome::Refused { error, .. } => Some(error),
        }
    }

    /// The outcome as reported: `{"status": "done", "action", "caller",
    /// "result"}` or `{"status": "refused", "action"?, "error", "reason"}`,
    /// `error` being core's code (`invalid_token`, `insufficient_scope`, ...)
    /// and `reason` core's message.
    pub fn to_json(&self) -> Value {
        match self {
            Outcome::Done {
                action,
                caller,
                result,
            } => json!({
                "status": "done",
                "action": action.name(),
                "caller": caller,
                "result": result,
            }),
            Outcome::Refused { action, error } => {
                let reason = match error.kind() {
                    // Configuration details are for the operator's log.
                    ErrorKind::Config => "internal error",
                    _ => error.message(),
                };
                let mut out = json!({
                    "status": "refused",
                    "error": error.error_code(),
                    "reason": reason,
                });
                if let Some(action) = action {
                    out["action"] = json!(action.name());
                }
                out
            }
        }
    }
}

/// Verifies jobs' tokens and checks their capabilities. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Worker {
    verifier: TokenVerifier,
    graph: CapabilityGraph,
    automation: Option<AutomationPrincipals>,
}

impl Worker {
    /// A worker for `config`.
    ///
    /// # Errors
    ///
    /// A configuration error for an invalid verifier or graph, an issuer
    /// whose keys would have to be fetched, or a graph that does not declare
    /// a capability an [`Action`] needs.
    pub fn new(config: WorkerConfig) -> Result<Self, Error> {
        // Checked here rather than left to core's missing HTTP client: the
        // answer must not depend on which features another crate in the
        // same build enables.
        for (name, issuer) in &config.verifier.issuers {
            if issuer.keys.is_empty() && issuer.hmac_secret.is_none() {
                return Err(Error::config(format!(
                    "configuration key `verifier.issuers.{name}`: set `keys` or `hmac_secret`; \
                     this worker makes no HTTP request, so keys are never fetched"
                )));
            }
        }
        let graph = CapabilityGraph::new(&config.capabilities)?;
        Self::from_parts(TokenVerifier::new(config.verifier)?, graph)
    }

    /// A worker over an existing verifier and graph.
    ///
    /// # Errors
    ///
    /// A configuration error when `graph` does not declare a capability an
    /// [`Action`] needs.
    pub fn from_parts(verifier: TokenVerifier, graph: CapabilityGraph) -> Result<Self, Error> {
        for action in Action::ALL {
            if !graph.has(action.capability()) {
                return Err(Error::config(format!(
                    "configuration key `capabilities.graph`: action `{}` needs `{}`, which is not declared",
                    action.name(),
                    action.capability()
                )));
            }
        }
        Ok(Self {
            verifier,
            graph,
            automation: None,
        })
    }

    /// Also accepts jobs of automation principals (`{"principal", "token",
    /// "action"}`), checked by `automation`. Without it, such a job is
    /// refused (400).
    pub fn with_automation(mut self, automation: AutomationPrincipals) -> Self {
        self.automation = Some(automation);
        self
    }

    /// The capability graph.
    pub fn graph(&self) -> &CapabilityGraph {
        &self.graph
    }

    /// What `caller` holds: its scopes that name capabilities, with what they
    /// imply, and the graph's defaults. Other scopes (`openid`, ...) are ignored.
    pub fn capabilities_of(&self, caller: &Principal) -> CapSet {
        let expanded = self
            .graph
            .expand(caller.scopes().iter().map(String::as_str));
        expanded.set.union(self.graph.defaults())
    }

    fn required(&self, action: Action) -> Result<CapId, Error> {
        self.graph.id(action.capability()).ok_or_else(|| {
            Error::config(format!(
                "capability `{}` is not declared",
                action.capability()
            ))
        })
    }

    /// Processes one job: verifies its token, then checks and runs its action.
    pub async fn process(&self, job: &Job) -> Outcome {
        // The caller is established before the job is looked at, so an
        // unauthenticated submitter learns nothing about valid actions.
        let verified = match (&job.principal, &self.automation) {
            (None, _) => self.verifier.verify(job.token.expose()).await,
            (Some(id), Some(automation)) => automation.authenticate(id, job.token.expose()).await,
            (Some(_), None) => Err(Error::invalid_request(
                "this worker accepts no automation principals",
            )),
        };
        let caller = match verified {
            Ok(caller) => caller,
            Err(error) => {
                return Outcome::Refused {
                    action: None,
                    error,
                };
            }
        };
        let Some(action) = Action::from_name(&job.action) else {
            let known: Vec<_> = Action::ALL.iter().map(|a| a.name()).collect();
            return Outcome::Refused {
                action: None,
                error: Error::invalid_request(format!(
                    "unknown action; expected one of {}",
                    known.join(", ")
                )),
            };
        };
        let refused = |error| Outcome::Refused {
            action: Some(action),
            error,
        };
        let needed = match self.required(action) {
            Ok(id) => id,
            Err(error) => return refused(error),
        };
        if !self.capabilities_of(&caller).contains(needed) {
            return refused(Error::insufficient_scope(action.capability()));
        }
        Outcome::Done {
            action,
            caller: caller.user_id().to_owned(),
            result: action.run(&caller),
        }
    }

    /// Parses and processes one job in JSON.
    pub async fn process_json(&self, json: &[u8]) -> Outcome {
        match Job::from_json(json) {
            Ok(job) => self.process(&job).await,
            Err(error) => Outcome::Refused {
                action: None,
                error,
            },
        }
    }

    /// Processes every job of `input`, one JSON object per line, and writes
    /// one outcome per line to `output`. Blank lines and lines starting with
    /// `#` are skipped; a line longer than [`MAX_JOB_BYTES`] is refused
    /// without being kept in memory.
    ///
    /// # Errors
    ///
    /// When reading `input` or writing `output` fails.
    pub async fn process_lines(
        &self,
        mut input: impl BufRead,
        mut output: impl Write,
    ) -> io::Result<Summary> {
        let mut summary = Summary::default();
        let mut line = Vec::new();
        loop {
            line.clear();
            let complete = read_bounded_line(&mut input, &mut line)?;
            if line.is_empty() && complete.is_none() {
                break;
            }
            let outcome = if complete == Some(false) {
                Outcome::Refused {
                    action: None,
                    error: too_large(),
                }
            } else {
                let job = line.trim_ascii();
                if job.is_empty() || job.starts_with(b"#") {
                    continue;
                }
                self.process_json(job).await
            };
            if outcome.is_done() {
                summary.done += 1;
            } else {
                summary.refused += 1;
            }
            writeln!(output, "{}", outcome.to_json())?;
        }
        output.flush()?;
        Ok(summary)
    }
}

/// Reads one line into `line`, keeping at most [`MAX_JOB_BYTES`] of it.
/// `None` at the end of input, `Some(true)` for a line kept whole,
/// `Some(false)` for one that was too long (the rest of it is skipped).
fn read_bounded_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<Option<bool>> {
    let limit = MAX_JOB_BYTES as u64 + 1;
    let read = io::Read::take(&mut *input, limit).read_until(b'\n', line)?;
    if read == 0 {
        return Ok(None);
    }
    if line.len() <= MAX_JOB_BYTES || line.ends_with(b"\n") {
        return Ok(Some(true));
    }
    // Too long: skip to the end of the line, a buffer at a time.
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        match buf.iter().position(|b| *b == b'\n') {
            Some(i) => {
                input.consume(i + 1);
                break;
            }
            None => {
                let n = buf.len();
                input.consume(n);
            }
        }
    }
    line.clear();
    Ok(Some(false))
}

/// How many jobs ran and how many were refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Jobs that ran.
    pub done: usize,
    /// Jobs refused.
    pub refused: usize,
}
