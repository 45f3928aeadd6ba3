//! axum adapter for portcullis.
//!
//! [`AuthLayer`] is a tower layer: it finds the request's credentials, has
//! portcullis-core verify them, and either stores the verified caller in the
//! request's extensions or answers with core's error response (401 with an RFC
//! 6750 `WWW-Authenticate`, 400, 503). Extractors then read the caller:
//!
//! - [`Caller`]: a verified caller is required (401 otherwise);
//! - `Option<Caller>`: the caller, if any (easy-oauth's `get_email`);
//! - [`LoggedIn`]: a caller; a guest that follows redirects is sent to log
//!   in and back, an API guest gets 401 (easy-oauth's `ensure_email`);
//! - [`RequireScope`]: a caller holding a scope (401 without a caller, 403
//!   `insufficient_scope` without the scope);
//! - [`RequireCapability`]: a caller (or guest) holding a capability, decided
//!   by the [`Capabilities`] service the layer was built with.
//!
//! [`management_routes`] mounts easy-oauth's capability management and
//! service token routes; their handlers only copy requests into
//! [`Routes::dispatch`](portcullis_adapter_kit::routes::Routes::dispatch) and its answers out.
//!
//! A browser application that logs its users in (feature `login`) builds
//! the layer with [`AuthLayer::for_login`] around a [`RelyingParty`]
//! (portcullis-oidc) and merges [`login_routes`] (`/login`, `/auth`,
//! `/logout`, `/token` and the management routes, under the configured
//! `prefix`): requests are then authenticated by bearer token or session
//! cookie, and `RequireCapability<C, LoginRedirect>` sends browsers to log
//! in and back.
//!
//! The adapter makes no decision of its own: the layer holds a
//! [`Gate`] (portcullis-adapter-kit), which authenticates and decides, and
//! every outcome's HTTP form comes from `portcullis-core`. The scope and
//! capability names ([`ScopeName`], [`scope!`], [`CapabilityName`],
//! [`capability!`], [`Unauthenticated`]) are core's, re-exported. Because
//! the layer is plain tower, it also wraps any other tower service (tonic
//! included).
//!
//! # Examples
//!
//! An API that accepts the access tokens of one OpenID Connect provider
//! (its keys found by discovery when the first token arrives: building the
//! layer contacts nobody), with a route for any caller and one for callers
//! holding a scope:
//!
//! ```
//! use axum::{Router, routing::get};
//! use portcullis_axum::{AuthLayer, Caller, RequireScope, scope};
//! # use axum::body::Body;
//! # use axum::http::Request;
//! # use tower::ServiceExt as _;
//!
//! scope!(Read = "read");
//!
//! async fn me(Caller(caller): Caller) -> String {
//!     format!("hello {}", caller.principal.user_id())
//! }
//!
//! async fn report(_: RequireScope<Read>) -> &'static str {
//!     "the report"
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = AuthLayer::from_oidc("https://id.example.com").audience("my-api").build()?;
//! let app = Router::new()
//!     .route("/me", get(me))
//!     .route("/report", get(report))
//!     .layer(auth);
//!
//! // A request without a token is refused with a challenge.
//! let response = app.oneshot(Request::get("/report").body(Body::empty())?).await?;
//! assert_eq!(response.status(), 401);
//! assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="portcullis""#);
//! # Ok(()) }
//! ```
//!
//! Serve it as any router:
//! `axum::serve(tokio::net::TcpListener::bind("0.0.0.0:3000").await?, app).await?`.
//! A service configured from YAML, TOML or the environment builds an
//! [`Authenticator`] from its configuration ([`portcullis_core::config`])
//! and the layer with [`AuthLayer::new`].
//!
//! Capabilities: what implies what (`write` implies `read`), who holds what
//! (a store), and the route's requirement:
//!
//! ```
//! use std::sync::Arc;
//!
//! use axum::{Router, routing::post};
//! use portcullis_axum::portcullis_capabilities::{Capabilities, MemoryStore};
//! use portcullis_axum::portcullis_core::CapabilitiesConfig;
//! use portcullis_axum::{AuthLayer, RequireCapability, capability};
//! # use axum::body::Body;
//! # use axum::http::Request;
//! # use tower::ServiceExt as _;
//!
//! capability!(Write = "write");
//!
//! async fn save(_: RequireCapability<Write>) -> &'static str {
//!     "saved"
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # // SAFETY: no other thread of this example reads the environment.
//! # unsafe { std::env::set_var("SECRET_KEY", portcullis_testing::conformance::random_secret_key()) };
//! // `write` implies `read`; every user holds `read`.
//! let graph = CapabilitiesConfig::new([("read", vec![]), ("write", vec!["read"])])
//!     .with_default_capabilities(["read"]);
//! // Who holds more: in memory here; easy-oauth's `caps.yaml` (`FileStore`)
//! // or Redis (`RedisStore`) in production.
//! let users = MemoryStore::with_users([("alice@example.com", ["write"])]);
//! // 32 random bytes or more, kept secret: the service's own tokens are signed with it.
//! let secret_key = std::env::var("SECRET_KEY")?;
//! let caps = Capabilities::builder(graph, Arc::new(users), secret_key.into()).build()?;
//!
//! let auth = AuthLayer::from_oidc("https://id.example.com")
//!     .audience("my-api")
//!     .capabilities(caps)
//!     .build()?;
//! let app = Router::new().route("/notes", post(save)).layer(auth);
//!
//! let response = app.oneshot(Request::post("/notes").body(Body::empty())?).await?;
//! assert_eq!(response.status(), 401);
//! # Ok(()) }
//! ```
//!
//! A browser application, as easy-oauth's README: users log in at the
//! provider, and a page that needs a capability sends a browser that is
//! not logged in to log in and back:
//!
//! ```
//! use axum::{Router, routing::get};
//! use portcullis_axum::portcullis_core::CapabilitiesConfig;
//! use portcullis_axum::portcullis_oidc::{OidcConfig, RelyingParty};
//! use portcullis_axum::{AuthLayer, LoginRedirect, RequireCapability, capability, login_routes};
//! # use axum::body::Body;
//! # use axum::http::Request;
//! # use tower::ServiceExt as _;
//!
//! capability!(Announce = "announce");
//!
//! async fn shout(_: RequireCapability<Announce, LoginRedirect>) -> &'static str {
//!     "HELLO"
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # // SAFETY: no other thread of this example reads the environment.
//! # unsafe { std::env::set_var("SECRET_KEY", portcullis_testing::conformance::random_secret_key()) };
//! // `announce` implies `read`; every user holds `read`; `admin` implies all.
//! // Who holds more: granted through the management routes, or listed in
//! // easy-oauth's user file with `.with_user_file("caps.yaml")`.
//! let capabilities = CapabilitiesConfig::new([("read", vec![]), ("announce", vec!["read"])])
//!     .with_default_capabilities(["read"])
//!     .with_auto_admin(true);
//! let config = OidcConfig::new(
//!     "https://id.example.com/.well-known/openid-configuration",
//!     std::env::var("SECRET_KEY")?, // seals the session cookies
//!     "my-client",
//!     "https://app.example.com",
//! )
//! .with_capabilities(capabilities);
//! // Discovery happens on the first login, not here.
//! let rp = RelyingParty::builder(config).build().await?;
//!
//! let app = Router::new()
//!     .route("/shout", get(shout))
//!     .merge(login_routes(rp.clone()))
//!     .layer(AuthLayer::for_login(rp));
//!
//! let browser = Request::get("/shout").header("accept", "text/html").body(Body::empty())?;
//! let response = app.oneshot(browser).await?;
//! assert_eq!(response.status(), 303);
//! assert_eq!(response.headers()["location"], "/login?next=%2Fshout");
//! # Ok(()) }
//! ```
//!
//! # Policy decisions (feature `policy`)
//!
//! With the `policy` feature the layer also asks a portcullis-policy
//! [`Policy`](portcullis_policy::Policy) (an OPA server, or Rego policies
//! embedded in the service) about every request:
//!
//! - It runs **after authentication**: a bad or revoked token is 401
//!   before any policy is asked, and the policy sees verified callers
//!   only. Guests are refused with 401 and the challenge unless the policy
//!   takes them (`guests: policy`).
//! - **Every method** goes through it, `OPTIONS` included; only a real CORS
//!   preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
//!   is let through unasked, and only with `cors_preflight: pass` (for a
//!   CORS layer in front that answers preflights).
//! - The **skip list** (`skip`) names exact paths (`/health`, which
//!   `/health/deep` is not) and exact route templates (`/public/{file}`);
//!   never prefixes or patterns. Skipped requests are still authenticated.
//! - The **body** is read only when the policy is configured to see it
//!   (`body_limit`): at most that many bytes (413 past it), then handed to
//!   the handler unchanged.
//! - Refusals: 401 (a guest), 403 with a JSON body (deny or undefined), 503
//!   when the engine cannot decide; never a pass. The answers are core's,
//!   the same on the three adapters.
//! - The policy's input holds the raw path split on `/` before decoding
//!   (`%2F` stays inside its segment), the route template as `{name}`
//!   whatever the router's syntax, its parameters read from the raw path,
//!   the query and chosen headers; never `Authorization`, cookies or token
//!   headers.
//!
//! **Where the layer goes.** axum tells the layer which route matched
//! (`MatchedPath`) only when the layer is added to the router with
//! `Router::layer` or `Router::route_layer`, as below. A layer wrapped
//! around the whole router from outside (a `ServiceBuilder` around the
//! `Router`, or an outer router's `nest_service`) sees no route: the input's
//! `route` is `null`, its `params` empty, and skip-list templates match
//! nothing, so more requests are decided, never fewer; a policy that allows
//! by route template allows nothing there.
//!
//! ```
//! use axum::{Router, routing::get};
//! use portcullis_axum::AuthLayer;
//! use portcullis_axum::portcullis_policy::{Guests, Policy, PolicyConfig};
//! # use axum::body::Body;
//! # use axum::http::Request;
//! # use tower::ServiceExt as _;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let policies = dir.path();
//! # std::fs::write(policies.join("authz.rego"), "package httpapi.authz\n\ndefault allow := false\n\nallow if input.request_path == [\"public\"]\n")?;
//! // `policies` holds fastapi-opa's kind of policy: `package httpapi.authz`,
//! // `allow if input.request_path == ["public"]`, ...
//! let config = PolicyConfig::rego(policies)
//!     .with_guests(Guests::Policy)
//!     .with_skip(["/health"]);
//! let policy = Policy::from_config(&config).await?;
//! let auth = AuthLayer::from_oidc("https://id.example.com")
//!     .audience("my-api")
//!     .policy(policy)
//!     .build()?;
//! let app = Router::new()
//!     .route("/public", get(|| async { "public" }))
//!     .route("/private", get(|| async { "private" }))
//!     .route("/health", get(|| async { "ok" }))
//!     // On the router: the policy sees the matched route.
//!     .layer(auth);
//!
//! let get = |path: &str| Request::get(path).body(Body::empty());
//! assert_eq!(app.clone().oneshot(get("/public")?).await?.status(), 200);
//! assert_eq!(app.clone().oneshot(get("/health")?).await?.status(), 200);
//! // A guest the policy refuses: 401 with the challenge.
//! assert_eq!(app.oneshot(get("/private")?).await?.status(), 401);
//! # Ok(()) }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `login` | yes | the browser login flow of portcullis-oidc: `AuthLayer::for_login`, `login_routes` and the login redirect of `RequireCapability<C, LoginRedirect>`. Without it the layer authenticates bearer tokens only, and neither portcullis-oidc nor openidconnect is compiled. |
//! | `policy` | no | a policy decision per request (portcullis-policy: OPA over REST or embedded Rego): `AuthLayer::with_policy`, `FromOidc::policy`, and `portcullis_policy` re-exported |
//! | `issuer` | no | `issuer_routes`: the endpoints of a portcullis-issuer authorization server (discovery, JWKS, token, revocation, introspection), and `portcullis_issuer` re-exported |
//! | `utoipa` | no | the `openapi` module: utoipa OpenAPI documents whose operations state the security their handlers' extractors enforce |

#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Uri};
pub use portcullis_adapter_kit::FromOidc;
use portcullis_adapter_kit::{Gate, Refusal};
use portcullis_capabilities::Capabilities;
use portcullis_core::{Authenticated, Authenticator, Error, HeaderLookup, Reply};
#[cfg(feature = "login")]
use portcullis_oidc::RelyingParty;
use tower_layer::Layer;
use tower_service::Service;

pub use portcullis_capabilities;
pub use portcullis_core;
pub use portcullis_core::guard::{
    CapabilityName, LoginRedirect, Refuse, ScopeName, Unauthenticated,
};
pub use portcullis_core::{capability, scope};
#[cfg(feature = "login")]
pub use portcullis_oidc;
#[cfg(feature = "policy")]
pub use portcullis_policy;

mod capabilities;
#[cfg(feature = "issuer")]
mod issuer;
#[cfg(feature = "utoipa")]
pub mod openapi;
#[cfg(feature = "policy")]
mod policy;
mod routes;

pub use capabilities::RequireCapability;
#[cfg(feature = "issuer")]
pub use issuer::issuer_routes;
#[cfg(feature = "issuer")]
pub use portcullis_issuer;
#[cfg(feature = "login")]
pub use routes::login_routes;
pub use routes::management_routes;

/// What the layer leaves in the request extensions.
#[derive(Debug, Clone)]
struct AuthState {
    caller: Option<Authenticated>,
    gate: Gate,
}

/// A tower layer that authenticates every request with an [`Authenticator`]
/// (bearer tokens) or, with the `login` feature, a `RelyingParty` (bearer
/// tokens, then the login session).
#[derive(Debug, Clone)]
pub struct AuthLayer {
    gate: Gate,
}

impl AuthLayer {
    /// The common path: a layer accepting access tokens from one OpenID
    /// Connect `issuer` (its keys found by discovery), finished with
    /// [`FromOidc::audience`] and [`FromOidc::build`]. Requests without
    /// credentials reach the handlers as guests; the extractors decide.
    pub fn from_oidc(issuer: impl Into<String>) -> FromOidc<Self> {
        FromOidc::new(issuer)
    }

    /// A layer authenticating with `auth` (built from configuration:
    /// [`portcullis_core::config`]).
    pub fn new(auth: Authenticator) -> Self {
        Self {
            gate: Gate::new(auth),
        }
    }

    /// A layer for a browser application that logs its users in with `rp`:
    /// a request is authenticated by its bearer token (the provider's access
    /// tokens for the configured audience, portcullis' own tokens) or else
    /// by its session cookie, whose tokens are refreshed when due (the
    /// renewed cookie is added to the response). Capabilities come from the
    /// relying party. Mount [`login_routes`] for `/login`, `/auth`, `/token`,
    /// `/logout` and capability management.
    ///
    /// A request authenticated by the session cookie whose method is not
    /// `GET`, `HEAD` or `OPTIONS` must come from the site's own origin, or
    /// it is refused (403) before the handler runs (see
    /// [`RelyingParty::authenticate`]); a response that sets a session
    /// cookie gets `Cache-Control: private, no-store` in place of the
    /// handler's.
    #[cfg(feature = "login")]
    pub fn for_login(rp: RelyingParty) -> Self {
        Self {
            gate: Gate::for_login(rp),
        }
    }

    /// Makes `capabilities` available to [`RequireCapability`] and the
    /// [`management_routes`] on every request.
    pub fn with_capabilities(self, capabilities: Capabilities) -> Self {
        Self {
            gate: self.gate.with_capabilities(capabilities),
        }
    }

    /// Asks `policy` about every request after authentication (feature
    /// `policy`): the request goes on, or is answered 401 (a guest), 403
    /// (refused), 503 (the engine cannot decide), 413 (a body past the
    /// policy's limit). See the crate documentation for where to add the
    /// layer so that the policy sees the route template.
    ///
    /// # Errors
    ///
    /// A configuration error when the policy's chosen headers include one
    /// the authenticator reads credentials from.
    #[cfg(feature = "policy")]
    pub fn with_policy(self, policy: portcullis_policy::Policy) -> Result<Self, Error> {
        Ok(Self {
            gate: self.gate.with_policy(policy)?,
        })
    }
}

impl From<Gate> for AuthLayer {
    fn from(gate: Gate) -> Self {
        Self { gate }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            gate: self.gate.clone(),
        }
    }
}

/// The service [`AuthLayer`] produces.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    gate: Gate,
}

/// axum's headers as portcullis reads them.
pub(crate) struct Headers<'a>(pub(crate) &'a HeaderMap);

impl HeaderLookup for Headers<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        // `to_str`'s rule, checked faster on a ~1 KB bearer header.
        self.0
            .get(name)
            .and_then(|v| portcullis_core::credentials::header_text(v.as_bytes()))
    }
}

impl<S, B> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        Box::pin(async move {
            let mut authn = match gate
                .authenticate(req.method().as_str(), &Headers(req.headers()))
                .await
            {
                Ok(authn) => authn,
                Err(refusal) => return Ok(AuthRejection(refusal).into_response()),
            };
            let cache_control = authn.cache_control();
            let cookies = std::mem::take(&mut authn.set_cookies);
            // The policy decides after authentication, before the handler.
            #[cfg(feature = "policy")]
            let checked = policy::check(&gate, authn.caller.as_ref(), req).await;
            #[cfg(not(feature = "policy"))]
            let checked: Result<Request<B>, Response> = Ok(req);
            let mut resp = match checked {
                Ok(mut req) => {
                    req.extensions_mut().insert(AuthState {
                        caller: authn.caller,
                        gate,
                    });
                    inner.call(req).await?
                }
                Err(refused) => refused,
            };
            for cookie in cookies {
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    resp.headers_mut().append(http::header::SET_COOKIE, v);
                }
            }
            if let Some(cc) = cache_control {
                resp.headers_mut()
                    .insert(http::header::CACHE_CONTROL, HeaderValue::from_static(cc));
            }
            Ok(resp)
        })
    }
}

/// Copies a [`Reply`] into an axum response (repeated headers kept).
pub fn reply_response(reply: Reply) -> Response {
    let mut resp = Response::new(Body::from(reply.body));
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().append(HeaderName::from_static(name), v);
        }
    }
    resp
}

/// Renders a core error as an axum response, exactly as core maps it.
pub fn error_response(error: &Error, realm: &str) -> Response {
    reply_response(Reply::error(error, realm))
}

/// The rejection of portcullis extractors: core's error, rendered by core's
/// mapping (or, for a browser sent to log in, the redirect).
#[derive(Debug)]
pub struct AuthRejection(Refusal);

impl AuthRejection {
    /// The underlying error.
    pub fn error(&self) -> &Error {
        self.0.error()
    }

    /// The status of the answer (the redirect's for a browser sent to log in).
    pub fn status(&self) -> u16 {
        self.0.status()
    }

    /// The framework-neutral answer: core's error response, or the redirect
    /// to the login page.
    pub fn to_reply(&self) -> Reply {
        self.0.to_reply()
    }

    /// The axum response this refusal answers.
    pub fn to_response(&self) -> Response {
        reply_response(self.0.to_reply())
    }
}

impl std::fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for AuthRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.error())
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        self.to_response()
    }
}

/// The state the layer left in `parts`.
fn state(parts: &Parts) -> Result<&AuthState, AuthRejection> {
    parts.extensions.get::<AuthState>().ok_or_else(|| {
        tracing::error!("a portcullis extractor ran on a route without AuthLayer");
        AuthRejection(Refusal::new(
            Error::config("AuthLayer is not installed on this route"),
            "portcullis",
        ))
    })
}

/// The request's URI as the browser sent it: under `nest`, the router
/// strips the prefix from `parts.uri`.
fn original_uri(parts: &Parts) -> &Uri {
    parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(&parts.uri, |o| &o.0)
}

/// The path and query of `uri`, where a browser sent to log in comes back.
fn target(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |p| p.as_str())
}

/// A verified caller; the request is refused with 401 without one.
///
/// Use `Option<Caller>` for routes open to anonymous callers.
#[derive(Debug, Clone)]
pub struct Caller(pub Authenticated);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let st = state(parts)?;
        let caller = st
            .gate
            .require_caller(st.caller.as_ref())
            .map_err(AuthRejection)?;
        Ok(Caller(caller.clone()))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Caller {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let st = state(parts)?;
        Ok(st.caller.clone().map(Caller))
    }
}

/// easy-oauth's `ensure_email`: a verified caller; a guest that follows
/// redirects (a browser, or an HTTP client with a cookie jar) is sent to
/// log in and back (needs [`AuthLayer::for_login`]), an API guest (an
/// `Accept` without HTML or `*/*`, or an `Authorization` header) gets 401.
/// easy-oauth's `get_email` is `Option<Caller>`.
#[derive(Debug, Clone)]
pub struct LoggedIn(pub Authenticated);

impl<S: Send + Sync> FromRequestParts<S> for LoggedIn {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let st = state(parts)?;
        let caller = st
            .gate
            .require_caller_or_login(
                st.caller.as_ref(),
                target(original_uri(parts)),
                &Headers(&parts.headers),
            )
            .map_err(AuthRejection)?;
        Ok(LoggedIn(caller.clone()))
    }
}

/// A verified caller holding scope `S`: 401 without a caller, 403 `insufficient_scope` without the scope.
#[derive(Debug, Clone)]
pub struct RequireScope<S: ScopeName>(pub Authenticated, PhantomData<S>);

impl<S: ScopeName> RequireScope<S> {
    /// The caller.
    pub fn caller(&self) -> &Authenticated {
        &self.0
    }
}

impl<S: ScopeName, St: Send + Sync> FromRequestParts<St> for RequireScope<S> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Self::Rejection> {
        let st = state(parts)?;
        let caller = st
            .gate
            .require_scope(st.caller.as_ref(), S::SCOPE)
            .map_err(AuthRejection)?;
        Ok(RequireScope(caller.clone(), PhantomData))
    }
}
