//! [`Policy`]: the decision interface, over either engine.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use portcullis_core::clock::{self, SharedClock};
use portcullis_core::{Authenticated, CredentialsConfig, Error, Principal};

use crate::cache::{CacheSlot, DecisionCache};
use crate::config::{CorsPreflight, DecisionLog, EngineKind, Guests, InputShape, PolicyConfig};
use crate::decision::{self, Decision, DecisionId, Event, Outcome};
use crate::input::{Input, InputRules, Prepared};
use crate::rego::{EmbeddedRego, RegoOptions};
use crate::remote::RemoteOpa;
use crate::request::{RequestInfo, chosen_headers};

/// Policy decisions for requests: the verified caller and a
/// [`RequestInfo`] in, a [`Decision`] out, from an OPA server or the
/// embedded engine as [configured](PolicyConfig).
///
/// - [`decide`](Self::decide) answers allow, deny or undefined, or an
///   error: 503 when the engine cannot decide, 400 when the request's path,
///   query or body cannot be read.
/// - [`authorize`](Self::authorize) turns that into what a middleware
///   answers: `Ok` to let the request through; 403 (JSON body) for a caller
///   refused, 401 with the challenge for a guest refused (or for every
///   guest with [`Guests::Refuse`]); 503 when the engine cannot decide.
///   Never a pass on error.
///
/// Every decision is logged as one event (target
/// `portcullis_policy::decision`, at the configured
/// [level](PolicyConfig::decision_log)): its id, the engine, the rule, the
/// result, the duration, whether it came from the cache, OPA's
/// `decision_id`, and the input with credentials masked (claims, query
/// parameters and headers named like tokens, secrets, cookies or
/// sessions; the body by its size only).
///
/// Cheap to clone.
#[derive(Clone)]
pub struct Policy {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    rules: InputRules,
    guests: Guests,
    cache: Option<DecisionCache>,
    /// `data.httpapi.authz.allow`.
    rule: String,
    log: DecisionLog,
    /// Exact raw paths the policy is not asked about.
    skip_paths: Vec<String>,
    /// Exact route templates the policy is not asked about.
    skip_routes: Vec<String>,
    cors_preflight: CorsPreflight,
}

enum Engine {
    Remote(RemoteOpa),
    Embedded(EmbeddedRego),
}

impl Engine {
    fn name(&self) -> &'static str {
        match self {
            Engine::Remote(_) => "opa",
            Engine::Embedded(_) => "rego",
        }
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        let mut d = f.debug_struct("Policy");
        match &i.engine {
            Engine::Remote(r) => d.field("engine", r),
            Engine::Embedded(e) => d.field("engine", e),
        };
        d.field("rule", &i.rule)
            .field("input", &i.rules.shape)
            .field("guests", &i.guests)
            .field("cache", &i.cache)
            .finish()
    }
}

/// Builds a [`Policy`]: [`Policy::builder`].
#[derive(Debug)]
pub struct PolicyBuilder {
    config: PolicyConfig,
    clock: SharedClock,
}

impl PolicyBuilder {
    /// The clock cached decisions expire by (the system clock by default).
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the configuration, loads the policies (engine `rego`) or sets
    /// up the client (engine `opa`; nothing is sent yet: an OPA server down
    /// at start-up makes decisions unavailable, not the start-up fail).
    ///
    /// # Errors
    ///
    /// A configuration error naming the key, or (engine `rego`) the policy
    /// file, line and reason.
    ///
    /// # Panics
    ///
    /// Engine `rego`, outside a tokio runtime.
    pub async fn build(self) -> Result<Policy, Error> {
        let config = self.config;
        config.validate()?;
        let rule = config.rule_ref();
        let engine = match config.engine {
            EngineKind::Opa => Engine::Remote(RemoteOpa::new(
                config.url.as_deref().unwrap_or_default(),
                &config.data_path(),
                config.timeout(),
                config.danger_allow_plain_http,
            )?),
            EngineKind::Rego => {
                let dir = config.policy_dir.clone().unwrap_or_default();
                let options = RegoOptions::default()
                    .rule(rule.clone())
                    .timeout(config.timeout())
                    .reload_interval(std::time::Duration::from_millis(config.reload_interval_ms))
                    .deterministic(config.cache.enabled)
                    .isolate(config.isolate);
                Engine::Embedded(EmbeddedRego::open(dir, options).await?)
            }
        };
        let cache = config.cache.enabled.then(|| {
            DecisionCache::new(config.cache.capacity, config.cache.max_ttl_secs, self.clock)
        });
        Ok(Policy {
            inner: Arc::new(Inner {
                engine,
                rules: InputRules {
                    shape: config.input,
                    headers: chosen_headers("policy.headers", &config.headers)?,
                    body_limit: config.body_limit,
                },
                guests: config.guests,
                cache,
                rule,
                log: config.decision_log,
                skip_paths: config
                    .skip
                    .iter()
                    .filter(|e| !e.contains('{'))
                    .cloned()
                    .collect(),
                skip_routes: config
                    .skip
                    .iter()
                    .filter(|e| e.contains('{'))
                    .cloned()
                    .collect(),
                cors_preflight: config.cors_preflight,
            }),
        })
    }
}

/// `{"input": ...}`, the body of an OPA Data API request.
#[derive(serde::Serialize)]
struct Query<'a> {
    input: Input<'a>,
}

/// What [`Policy::decide`] found before any evaluation.
enum Start {
    /// The cache's answer.
    Cached(Decision),
    /// An evaluation to run, and where its decision goes in the cache.
    Evaluate(Box<Result<Prepared, Error>>, Option<(CacheSlot, u64)>),
}

impl Policy {
    /// A builder from `config`.
    pub fn builder(config: PolicyConfig) -> PolicyBuilder {
        PolicyBuilder {
            config,
            clock: clock::system(),
        }
    }

    /// A policy from `config` (see [`PolicyBuilder::build`]).
    ///
    /// # Errors
    ///
    /// As [`PolicyBuilder::build`].
    pub async fn from_config(config: &PolicyConfig) -> Result<Self, Error> {
        Self::builder(config.clone()).build().await
    }

    /// What happens to requests without credentials.
    pub fn guests(&self) -> Guests {
        self.inner.guests
    }

    /// The input's shape.
    pub fn input_shape(&self) -> InputShape {
        self.inner.rules.shape
    }

    /// The chosen headers (lower case) the adapter's header lookup is asked for.
    pub fn headers(&self) -> &[String] {
        &self.inner.rules.headers
    }

    /// The largest body the policy reads, when it reads bodies: adapters
    /// read at most this much and answer 413 past it.
    pub fn body_limit(&self) -> Option<usize> {
        self.inner.rules.body_limit
    }

    /// Checks that no chosen header is one the authenticator reads
    /// credentials from (its token header, and the forwarded ID and refresh
    /// token headers), whatever their names: such a header never reaches a
    /// policy's input.
    ///
    /// ```
    /// # async fn run() -> Result<(), portcullis_core::Error> {
    /// use portcullis_core::CredentialsConfig;
    /// use portcullis_policy::{InputShape, Policy, PolicyConfig};
    /// let config = PolicyConfig::opa("http://127.0.0.1:8181")
    ///     .with_input(InputShape::Native)
    ///     .with_headers(["x-tenant", "x-forwarded-user"]);
    /// let policy = Policy::from_config(&config).await?;
    /// policy.check_credential_headers(&CredentialsConfig::default())?;
    /// let proxy = CredentialsConfig::default().with_token_header("X-Forwarded-User");
    /// let e = policy.check_credential_headers(&proxy).unwrap_err();
    /// assert!(e.message().contains("policy.headers"));
    /// # Ok(()) }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// A configuration error naming the header.
    pub fn check_credential_headers(&self, credentials: &CredentialsConfig) -> Result<(), Error> {
        let readers = [
            Some(credentials.auth_token_header.as_str()),
            credentials.id_token_header.as_deref(),
            credentials.refresh_token_header.as_deref(),
        ];
        for header in &self.inner.rules.headers {
            if readers
                .iter()
                .flatten()
                .any(|reader| reader.eq_ignore_ascii_case(header))
            {
                return Err(Error::config(format!(
                    "configuration key `policy.headers`: `{header}` carries credentials (the \
                     authenticator reads tokens from it), which never reach a policy's input"
                )));
            }
        }
        Ok(())
    }

    /// Whether `request` goes on without a decision
    /// ([`authorize`](Self::authorize) lets it through unasked; it is still
    /// authenticated):
    ///
    /// - its raw path is exactly a path of the [skip list](PolicyConfig::skip)
    ///   (`/health` skips `/health`, never `/health/` or `/health/deep`), or
    ///   the route template the router matched ([normalized](crate::normalize_route))
    ///   is exactly a template of it (`/public/{file}`);
    /// - it is a real CORS preflight (`OPTIONS` with `Origin` and
    ///   `Access-Control-Request-Method`) and
    ///   [`cors_preflight`](PolicyConfig::cors_preflight) is `pass`.
    ///
    /// Every other request, whatever its method (`OPTIONS`, `HEAD`,
    /// `TRACE` included), is decided.
    ///
    /// ```
    /// # async fn run() -> Result<(), portcullis_core::Error> {
    /// use portcullis_policy::{CorsPreflight, Policy, PolicyConfig, RequestInfo};
    /// let config = PolicyConfig::opa("http://127.0.0.1:8181")
    ///     .with_skip(["/health", "/public/{file}"])
    ///     .with_cors_preflight(CorsPreflight::Pass);
    /// let policy = Policy::from_config(&config).await?;
    /// assert!(policy.exempt(&RequestInfo::new("GET", "/health")));
    /// assert!(!policy.exempt(&RequestInfo::new("GET", "/health/deep")));
    /// let file = RequestInfo::new("GET", "/public/a.css").with_route("/public/{file}", &[]);
    /// assert!(policy.exempt(&file));
    /// // A template is matched against the route, never the path.
    /// assert!(!policy.exempt(&RequestInfo::new("GET", "/public/a.css")));
    /// let preflight = [("origin", "https://app.example.com"), ("access-control-request-method", "POST")];
    /// assert!(policy.exempt(&RequestInfo::new("OPTIONS", "/records").with_header_pairs(&preflight)));
    /// assert!(!policy.exempt(&RequestInfo::new("OPTIONS", "/records")));
    /// # Ok(()) }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
    /// ```
    pub fn exempt(&self, request: &RequestInfo<'_>) -> bool {
        let inner = &*self.inner;
        if inner.skip_paths.iter().any(|p| p == request.path()) {
            return true;
        }
        if let Some(route) = request.route()
            && inner.skip_routes.iter().any(|r| r == route)
        {
            return true;
        }
        inner.cors_preflight == CorsPreflight::Pass
            && request.method() == "OPTIONS"
            && request.header("origin").is_some()
            && request.header("access-control-request-method").is_some()
    }

    /// The decision rule, `data.httpapi.authz.allow`.
    pub fn rule(&self) -> &str {
        &self.inner.rule
    }

    /// The embedded engine, with engine `rego`.
    pub fn embedded(&self) -> Option<&EmbeddedRego> {
        match &self.inner.engine {
            Engine::Embedded(e) => Some(e),
            Engine::Remote(_) => None,
        }
    }

    /// How many decisions are cached (0 without a cache).
    pub fn cached_decisions(&self) -> usize {
        self.inner.cache.as_ref().map_or(0, DecisionCache::len)
    }

    /// Reloads the embedded engine's policies now (nothing to do for a
    /// remote OPA server).
    ///
    /// # Errors
    ///
    /// The refusal of a set that does not load; the last good set keeps
    /// serving.
    pub async fn reload(&self) -> Result<(), Error> {
        match &self.inner.engine {
            Engine::Embedded(e) => e.reload().await,
            Engine::Remote(_) => Ok(()),
        }
    }

    /// Decides about `request` from `caller` (`None`: a guest, whose input
    /// has no caller).
    ///
    /// The request is read before this returns (the future borrows only
    /// the policy): the path split and decoded, the query parsed, the
    /// chosen headers and the body copied, or the decision found in the
    /// cache.
    ///
    /// # Errors
    ///
    /// 503 ([`ErrorKind::Unavailable`](portcullis_core::ErrorKind::Unavailable))
    /// when the engine cannot decide (unreachable, too slow, a failing
    /// evaluation, a non-boolean result); 400 when the request's path,
    /// query or body cannot be read.
    pub fn decide<'s>(
        &'s self,
        caller: Option<&Authenticated>,
        request: &RequestInfo<'_>,
    ) -> impl Future<Output = Result<Decision, Error>> + Send + use<'s> {
        let inner = &*self.inner;
        // Events cost only when they are recorded (a failure's warning aside).
        let logged = decision::enabled(inner.log);
        let started = logged.then(Instant::now);
        let caller = caller.map(|a| a.principal.clone());
        let start = match &inner.cache {
            Some(cache) => {
                let generation = self.embedded().map_or(0, EmbeddedRego::generation);
                match cache.get(caller.as_ref(), inner.rules.cache_key(request), generation) {
                    (Some(decision), _) => Start::Cached(decision),
                    (None, slot) => Start::Evaluate(
                        Box::new(inner.rules.prepare(request)),
                        Some((slot, generation)),
                    ),
                }
            }
            None => Start::Evaluate(Box::new(inner.rules.prepare(request)), None),
        };
        // A cached decision's event shows its input too, when it is logged.
        let shown = match (&start, logged) {
            (Start::Cached(_), true) => inner.rules.prepare(request).ok(),
            _ => None,
        };
        async move {
            let (result, cached, opa_decision_id, prepared) = match start {
                Start::Cached(decision) => (Ok(decision), true, None, shown),
                Start::Evaluate(prepared, slot) => match *prepared {
                    Err(e) => (Err(e), false, None, None),
                    Ok(prepared) => {
                        let (result, opa_id) =
                            inner.evaluate(caller.as_ref(), &prepared, slot).await;
                        (result, false, opa_id, Some(prepared))
                    }
                },
            };
            if !logged && result.is_ok() {
                return result;
            }
            let input = match (&prepared, logged) {
                (Some(prepared), true) => serde_json::to_string(&Input {
                    shape: inner.rules.shape,
                    caller: caller.as_ref(),
                    request: prepared,
                    masked: true,
                })
                .ok(),
                _ => None,
            };
            Event {
                id: DecisionId::next(),
                engine: inner.engine.name(),
                rule: &inner.rule,
                outcome: match &result {
                    Ok(d) => Outcome::Decided(*d),
                    Err(e) => Outcome::Failed(e),
                },
                started,
                cached,
                opa_decision_id: opa_decision_id.as_deref(),
            }
            .log(inner.log, input.as_deref());
            result
        }
    }

    /// Decides about `request` and answers as a middleware does: `Ok(())`
    /// lets it through. A request [exempt](Self::exempt) (skip list, CORS
    /// preflight passed on) goes through without a decision.
    ///
    /// # Errors
    ///
    /// - 401 ([`Error::missing_credentials`], with the challenge) for a
    ///   guest when guests are [refused](Guests::Refuse) (the policy is not
    ///   asked), or when the policy refuses a guest (logging in may help);
    /// - 403 ([`Error::forbidden`], a JSON body) when it refuses a caller
    ///   (deny or undefined);
    /// - 503 and 400 as [`decide`](Self::decide).
    pub fn authorize<'s>(
        &'s self,
        caller: Option<&Authenticated>,
        request: &RequestInfo<'_>,
    ) -> impl Future<Output = Result<(), Error>> + Send + use<'s> {
        let guest = caller.is_none();
        let exempt = self.exempt(request);
        let asked = (!exempt && (!guest || self.inner.guests == Guests::Policy))
            .then(|| self.decide(caller, request));
        async move {
            if exempt {
                return Ok(());
            }
            let Some(decision) = asked else {
                return Err(Error::missing_credentials());
            };
            match decision.await? {
                Decision::Allow => Ok(()),
                _ if guest => Err(Error::missing_credentials()),
                refused => refused.into_result(),
            }
        }
    }
}

impl Inner {
    /// Asks the engine; caches the decision in `slot` when given.
    async fn evaluate(
        &self,
        caller: Option<&Arc<Principal>>,
        prepared: &Prepared,
        slot: Option<(CacheSlot, u64)>,
    ) -> (Result<Decision, Error>, Option<String>) {
        let input = Input {
            shape: self.rules.shape,
            caller,
            request: prepared,
            masked: false,
        };
        match &self.engine {
            Engine::Remote(remote) => {
                let body = match serde_json::to_vec(&Query { input }) {
                    Ok(body) => body,
                    Err(_) => {
                        return (
                            Err(Error::unavailable("the policy input cannot be written")),
                            None,
                        );
                    }
                };
                match remote.ask(body).await {
                    Ok(answer) => (Ok(answer.decision), answer.decision_id),
                    Err(e) => (Err(e), None),
                }
            }
            Engine::Embedded(embedded) => {
                let value = input.to_rego();
                let decided = embedded.decide(&self.rule, value).await;
                if let (Ok((decision, generation)), Some((slot, _)), Some(cache)) =
                    (&decided, slot, &self.cache)
                {
                    cache.put(slot, *decision, *generation);
                }
                (decided.map(|(d, _)| d), None)
            }
        }
    }
}
