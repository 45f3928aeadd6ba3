//! portcullis-policy: a policy decision on every request, by an Open Policy
//! Agent server or by Rego policies embedded in the service.
//!
//! A [`Policy`] takes the caller portcullis has verified (core's
//! [`Authenticated`](portcullis_core::Authenticated), or `None` for a guest)
//! and a framework-neutral [`RequestInfo`] (method, raw path, the matched
//! route and its parameters, query, chosen headers, optionally the body),
//! builds the policy's `input`, and asks one of two engines:
//!
//! - **remote OPA** ([`RemoteOpa`]): `POST {url}/v1/data/{package}/{rule}`
//!   with `{"input": ...}`, OPA's REST Data API, through core's hardened
//!   HTTP client (no redirects, rustls, timeouts, connections reused,
//!   answers read under [`MAX_OPA_ANSWER_BYTES`]);
//! - **embedded Rego** ([`EmbeddedRego`]): policies (Rego v1) and
//!   `data.json` documents from a directory, evaluated in the process by
//!   [regorus](https://crates.io/crates/regorus), reloaded when the
//!   directory changes; a set that does not load is refused with its file,
//!   line and reason while the last good set keeps serving; each
//!   evaluation has a time limit.
//!
//! The same policy gives the same decisions on both engines (one test suite
//! runs against both).
//!
//! # Outcomes
//!
//! | the policy's rule is | [`Policy::decide`] | [`Policy::authorize`] |
//! |---|---|---|
//! | `true` | [`Decision::Allow`] | `Ok(())` |
//! | `false` | [`Decision::Deny`] | 403, JSON body (401 for a guest) |
//! | undefined (`{}` from OPA) | [`Decision::Undefined`] | 403, JSON body (401 for a guest) |
//! | not a boolean; OPA answers 5xx, garbage, nothing in time, or is down; the evaluation fails or runs out of time | 503 | 503 |
//!
//! A guest is refused with 401 before any policy is asked, unless
//! [`guests: policy`](Guests::Policy) lets the policy decide on an input
//! without a caller. Errors are core's [`Error`](portcullis_core::Error):
//! adapters answer them with `Error::to_reply` like every other refusal.
//! Nothing is ever a pass by default.
//!
//! # Input
//!
//! [`InputShape::FastapiOpa`] (the default) is fastapi-opa's input, so that
//! its users' policies run unchanged: the caller's claims at the top level,
//! `request_method`, and `request_path` as an array of segments (package
//! `httpapi.authz`, rule `allow` by default). [`InputShape::Native`] puts
//! the caller under `caller` and adds the route template, path parameters,
//! query, chosen headers and, when configured, the body.
//!
//! - The path is split on the raw `/` **before** percent-decoding, each
//!   segment decoded after: `/files/a%2Fb` is `["files", "a/b"]`, never
//!   three segments. `.` and `..` stay segments as sent, never resolved:
//!   the policy sees the path the router routes. A segment that does not
//!   decode to UTF-8 is 400.
//! - `Authorization`, cookies and token headers never reach the input: the
//!   chosen headers are read from a list, and a header named like a
//!   credential cannot be put on it ([`is_sensitive_name`]). Nor do they
//!   reach a log: decision events mask claims, query parameters and
//!   headers named like credentials, and show the body by its size.
//! - A claim named `request_method` or `request_path` never overrides the
//!   request's own.
//!
//! # Decision cache
//!
//! Off by default ([`DecisionCacheConfig`]). When on, a decision is reused
//! for the same verified caller and the same request parts the input is
//! made of, until the caller's token expires, `max_ttl_secs` pass, or the
//! policies or data are reloaded. Only the embedded engine caches. A policy
//! set that calls a built-in function whose answer changes between calls
//! is refused while the cache is on: portcullis scans each policy file's
//! tokens (comments and strings skipped, references read whole) for
//! `time.*`, `rand.*`, `uuid.*`, `http.send`, `opa.runtime`,
//! `net.lookup_ip_addr`, and the JWT and certificate verifications that
//! read the clock, and refuses the set naming the file, line and function.
//! The embedded engine does not provide `time.*`, `uuid.*`, `http.send`
//! or `opa.runtime` at all (a policy calling them fails to evaluate: 503),
//! so those policies belong on an OPA server.
//!
//! # Testing policies
//!
//! [`run_policy_tests`] runs a policy directory's `test_` rules on the
//! embedded engine from `cargo test`, and fails naming each failing rule.
//! `portcullis-testing` has a mock OPA server (`MockOpa`) that answers with
//! the embedded engine, or with faults: 500, a hang, garbage, `{}`.
//!
//! # Example
//!
//! fastapi-opa's README policy, on the embedded engine: a user reads their
//! own salary, members of `finance` read anyone's, guests read `/public`.
//!
//! ```
//! # async fn run() -> Result<(), portcullis_core::Error> {
//! use std::sync::Arc;
//! use portcullis_core::{Authenticated, ErrorKind, Principal, RawToken};
//! use portcullis_policy::{Decision, Guests, Policy, PolicyConfig, RequestInfo};
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("authz.rego"), r#"
//! package httpapi.authz
//!
//! default allow := false
//!
//! allow if {
//!     input.request_method == "GET"
//!     input.request_path == ["finance", "salary", input.preferred_username]
//! }
//!
//! allow if {
//!     input.request_method == "GET"
//!     input.request_path[0] == "finance"
//!     "finance" in input.groups
//! }
//!
//! allow if input.request_path == ["public"]
//! "#).unwrap();
//!
//! let config = PolicyConfig::rego(dir.path()).with_guests(Guests::Policy);
//! let policy = Policy::from_config(&config).await?;
//!
//! // The verified caller, as an adapter's authentication hands it over.
//! let claims = serde_json::json!({"sub": "u-1", "preferred_username": "alice", "groups": ["staff"]});
//! let serde_json::Value::Object(claims) = claims else { unreachable!() };
//! let principal = portcullis_core::dangerous::principal_from_unverified_claims("https://id.example.com", claims, RawToken::new(""), 4_000_000_000)?;
//! let alice = portcullis_core::dangerous::authenticated_unverified(Arc::new(principal));
//!
//! let own = RequestInfo::new("GET", "/finance/salary/alice");
//! assert_eq!(policy.decide(Some(&alice), &own).await?, Decision::Allow);
//! let other = RequestInfo::new("GET", "/finance/salary/bob");
//! assert_eq!(policy.decide(Some(&alice), &other).await?, Decision::Deny);
//! // What a middleware answers: 403 for alice, 401 for a guest.
//! assert_eq!(policy.authorize(Some(&alice), &other).await.unwrap_err().status(), 403);
//! assert_eq!(policy.authorize(None, &other).await.unwrap_err().kind(), ErrorKind::MissingCredentials);
//! policy.authorize(None, &RequestInfo::new("GET", "/public")).await?;
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
//! ```
//!
//! # In the adapters
//!
//! The adapters do not decide; they describe. The decision runs in the
//! adapter kit's `Gate` (the kit's feature `policy`; each adapter is to
//! offer a feature of the same name), **after authentication**: a bad or
//! revoked token is 401 from core before any policy is asked, and the
//! policy sees only verified callers. The gate holds the [`Policy`]
//! (`Gate::with_policy`, which also refuses a policy that would read the
//! authenticator's token headers, see [`Policy::check_credential_headers`])
//! and exposes `Gate::decide(caller, request)`, which the middleware calls
//! with the caller it has just authenticated. A refusal is the kit's
//! `Refusal` over core's `Error`, turned into a response by the adapter's
//! one `reply_response`, so the three adapters answer alike byte for byte.
//!
//! Each adapter's middleware fills a [`RequestInfo`] from its framework:
//!
//! - method and raw path from the request URI (`uri.path()`, never a
//!   decoded form), the raw query (`uri.query()`);
//! - the route template and its parameters, where the framework knows them
//!   when the middleware runs: axum puts `MatchedPath` (and
//!   `RawPathParams`) in the request's extensions before a layer added
//!   with `Router::layer` or `route_layer` sees it; actix-web's
//!   `HttpRequest::match_pattern()` matches the path against the app's
//!   resource map anywhere, while `match_info()` is filled only once the
//!   resource is chosen; poem's `Route` records `PathPattern` in the
//!   request data before calling the endpoint it routes to, so the
//!   middleware sees it when it wraps the routed endpoints. Where none is
//!   known, `route` stays unset and the policy decides on the path;
//! - headers through the adapter's existing `HeaderLookup` (it must be
//!   `Sync`: the request description may be held across an `.await`);
//! - the body only when [`Policy::body_limit`] is set: read under that
//!   limit (413 past it), handed to the policy, and put back for the
//!   handler.
//!
//! Every method goes through the policy (`OPTIONS` included), except a
//! real CORS preflight when CORS is configured; skip lists are exact paths
//! or route templates, never prefixes or patterns.
//!
//! # Cost
//!
//! The embedded engine is regorus 0.11 with its `arc` and `std` features
//! only (no time, regex, glob, network or YAML built-ins): about a minute
//! of compilation for regorus and its few dependencies (`num-bigint`,
//! `rand`); later regorus releases pull in the Verus verification
//! framework's macros (several more minutes) and require Rust 1.95.

mod cache;
mod config;
mod decision;
mod input;
mod policy;
mod policy_tests;
mod rego;
mod remote;
mod request;

pub use config::{
    CorsPreflight, DecisionCacheConfig, DecisionLog, EngineKind, Guests, InputShape,
    MAX_BODY_LIMIT, MAX_TIMEOUT_MS, PolicyConfig,
};
pub use decision::{Decision, DecisionId};
pub use policy::{Policy, PolicyBuilder};
pub use policy_tests::{FailedTest, PolicyTestError, run_policy_tests};
pub use rego::{EmbeddedRego, MAX_OVERRUNNING_EVALUATIONS, RegoOptions};
pub use remote::{MAX_OPA_ANSWER_BYTES, RemoteOpa};
pub use request::{RequestInfo, is_sensitive_name, normalize_route, route_params};
