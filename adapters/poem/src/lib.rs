//! poem adapter for portcullis.
//!
//! [`AuthMiddleware`] is a poem [`Middleware`]: it finds the request's
//! credentials, has portcullis-core verify them, and either stores the
//! verified caller in the request's extensions or answers with core's error
//! response (401 with an RFC 6750 `WWW-Authenticate`, 400, 503). Extractors
//! then read the caller:
//!
//! - [`Caller`]: a verified caller is required (401 otherwise);
//! - `Option<Caller>`: the caller, if any (easy-oauth's `get_email`);
//! - [`LoggedIn`]: a caller; a guest that follows redirects is sent to log
//!   in and back, an API guest gets 401 (easy-oauth's `ensure_email`);
//! - [`RequireScope`]: a caller holding a scope (401 without a caller, 403
//!   `insufficient_scope` without the scope);
//! - [`RequireCapability`]: a caller (or guest) holding a capability, decided
//!   by the [`Capabilities`] service the middleware was built with.
//!
//! [`management_routes`] builds easy-oauth's capability management and
//! service token routes as a [`Route`](poem::Route) to nest; their handlers
//! only copy requests into
//! [`Routes::dispatch`](portcullis_adapter_kit::routes::Routes::dispatch) and its answers out.
//!
//! A browser application that logs its users in (feature `login`) builds
//! the middleware with [`AuthMiddleware::for_login`] around a
//! [`RelyingParty`] (portcullis-oidc) and adds its own routes to
//! [`login_routes`] (`/login`, `/auth`, `/logout`, `/token` and the
//! management routes, already under the configured `prefix`; poem's routes
//! do not merge): requests are then authenticated by bearer token or
//! session cookie, and `RequireCapability<C, LoginRedirect>` sends browsers
//! to log in and back.
//!
//! The adapter makes no decision of its own: the middleware holds a
//! [`Gate`] (portcullis-adapter-kit), which authenticates and decides, and
//! every outcome's HTTP form comes from `portcullis-core`. The scope and
//! capability names ([`ScopeName`], [`scope!`], [`CapabilityName`],
//! [`capability!`], [`Unauthenticated`]) are core's, re-exported. Refusals
//! are [`poem::Error`]s made from an [`AuthRejection`], so an application
//! can find them with `err.downcast_ref::<AuthRejection>()` (in
//! `catch_error`, say); left alone, they render exactly as core maps them.
//!
//! # Examples
//!
//! An API that accepts the access tokens of one OpenID Connect provider
//! (its keys found by discovery when the first token arrives: building the
//! middleware contacts nobody), with a route for any caller and one for
//! callers holding a scope:
//!
//! ```
//! use poem::{EndpointExt, Route, get, handler};
//! use portcullis_poem::{AuthMiddleware, Caller, RequireScope, scope};
//! # use poem::http::StatusCode;
//! # use poem::test::TestClient;
//!
//! scope!(Read = "read");
//!
//! #[handler]
//! fn me(Caller(caller): Caller) -> String {
//!     format!("hello {}", caller.principal.user_id())
//! }
//!
//! #[handler]
//! fn report(_: RequireScope<Read>) -> &'static str {
//!     "the report"
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = AuthMiddleware::from_oidc("https://id.example.com").audience("my-api").build()?;
//! let app = Route::new()
//!     .at("/me", get(me))
//!     .at("/report", get(report))
//!     .with(auth);
//!
//! // A request without a token is refused with a challenge.
//! let response = TestClient::new(app).get("/report").send().await;
//! response.assert_status(StatusCode::UNAUTHORIZED);
//! response.assert_header("www-authenticate", r#"Bearer realm="portcullis""#);
//! # Ok(()) }
//! ```
//!
//! Serve it as any endpoint:
//! `Server::new(TcpListener::bind("0.0.0.0:3000")).run(app).await?`.
//! A service configured from YAML, TOML or the environment builds an
//! [`Authenticator`] from its configuration ([`portcullis_core::config`])
//! and the middleware with [`AuthMiddleware::new`].
//!
//! Capabilities: what implies what (`write` implies `read`), who holds what
//! (a store), and the route's requirement:
//!
//! ```
//! use std::sync::Arc;
//!
//! use poem::{EndpointExt, Route, handler, post};
//! use portcullis_poem::portcullis_capabilities::{Capabilities, MemoryStore};
//! use portcullis_poem::portcullis_core::CapabilitiesConfig;
//! use portcullis_poem::{AuthMiddleware, RequireCapability, capability};
//! # use poem::http::StatusCode;
//! # use poem::test::TestClient;
//!
//! capability!(Write = "write");
//!
//! #[handler]
//! fn save(_: RequireCapability<Write>) -> &'static str {
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
//! let auth = AuthMiddleware::from_oidc("https://id.example.com")
//!     .audience("my-api")
//!     .capabilities(caps)
//!     .build()?;
//! let app = Route::new().at("/notes", post(save)).with(auth);
//!
//! let response = TestClient::new(app).post("/notes").send().await;
//! response.assert_status(StatusCode::UNAUTHORIZED);
//! # Ok(()) }
//! ```
//!
//! A browser application, as easy-oauth's README: users log in at the
//! provider, and a page that needs a capability sends a browser that is
//! not logged in to log in and back:
//!
//! ```
//! use poem::{EndpointExt, get, handler};
//! use portcullis_poem::portcullis_core::CapabilitiesConfig;
//! use portcullis_poem::portcullis_oidc::{OidcConfig, RelyingParty};
//! use portcullis_poem::{AuthMiddleware, LoginRedirect, RequireCapability, capability, login_routes};
//! # use poem::http::StatusCode;
//! # use poem::test::TestClient;
//!
//! capability!(Announce = "announce");
//!
//! #[handler]
//! fn shout(_: RequireCapability<Announce, LoginRedirect>) -> &'static str {
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
//! // The login routes are a `Route` already under the configured prefix:
//! // the application's routes are added to it.
//! let app = login_routes(rp.clone())
//!     .at("/shout", get(shout))
//!     .with(AuthMiddleware::for_login(rp));
//!
//! let response = TestClient::new(app).get("/shout").header("accept", "text/html").send().await;
//! response.assert_status(StatusCode::SEE_OTHER);
//! // To the login page, which sends the browser back here afterwards.
//! response.assert_header("location", "/login?next=%2Fshout");
//! # Ok(()) }
//! ```
//!
//! # Policy decisions (feature `policy`)
//!
//! With the `policy` feature the middleware also asks a portcullis-policy
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
//! **Where the middleware goes.** poem's `Route` records the pattern it
//! matched (`PathPattern`) for the endpoint it calls, so a middleware
//! applied around each routed endpoint (`get(handler).with(auth.clone())`,
//! as below) gives the policy the route template; one applied around the
//! whole `Route` runs before routing: the input's `route` is `null`, its
//! `params` empty, and skip-list templates match nothing, so more requests
//! are decided, never fewer; a policy that allows by route template allows
//! nothing there. poem's `:name` and `*rest` reach the policy as `{name}`
//! and `{*rest}`.
//!
//! ```
//! use poem::{EndpointExt, Route, get, handler, http::StatusCode, test::TestClient};
//! use portcullis_poem::AuthMiddleware;
//! use portcullis_poem::portcullis_policy::{Guests, Policy, PolicyConfig};
//!
//! #[handler]
//! fn page() -> &'static str {
//!     "page"
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let policies = dir.path();
//! # std::fs::write(policies.join("authz.rego"), "package httpapi.authz\n\ndefault allow := false\n\nallow if input.request_path == [\"public\"]\n")?;
//! // `policies` holds fastapi-opa's kind of policy: `package httpapi.authz`,
//! // `allow if input.request_path == ["public"]`, ...
//! let config = PolicyConfig::rego(policies).with_guests(Guests::Policy);
//! let policy = Policy::from_config(&config).await?;
//! let auth = AuthMiddleware::from_oidc("https://id.example.com")
//!     .audience("my-api")
//!     .policy(policy)
//!     .build()?;
//! let app = Route::new()
//!     .at("/public", get(page).with(auth.clone()))
//!     .at("/private", get(page).with(auth));
//!
//! let client = TestClient::new(app);
//! client.get("/public").send().await.assert_status_is_ok();
//! // A guest the policy refuses: 401 with the challenge.
//! client.get("/private").send().await.assert_status(StatusCode::UNAUTHORIZED);
//! # Ok(()) }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `login` | yes | the browser login flow of portcullis-oidc: `AuthMiddleware::for_login`, `login_routes` and the login redirect of `RequireCapability<C, LoginRedirect>`. Without it the middleware authenticates bearer tokens only, and neither portcullis-oidc nor openidconnect is compiled. |
//! | `policy` | no | a policy decision per request (portcullis-policy: OPA over REST or embedded Rego): `AuthMiddleware::with_policy`, `FromOidc::policy`, and `portcullis_policy` re-exported |
//! | `issuer` | no | `issuer_routes`: the endpoints of a portcullis-issuer authorization server (discovery, JWKS, token, revocation, introspection), and `portcullis_issuer` re-exported |
//! | `openapi` | no | the `openapi` module: a bearer security scheme for poem-openapi operations that enforces what it documents |

use std::marker::PhantomData;

use poem::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, RequestBody, Response};
pub use portcullis_adapter_kit::FromOidc;
use portcullis_adapter_kit::{Gate, Refusal};
use portcullis_capabilities::Capabilities;
use portcullis_core::{Authenticated, Authenticator, Error, HeaderLookup, Reply};
#[cfg(feature = "login")]
use portcullis_oidc::RelyingParty;

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
#[cfg(feature = "openapi")]
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

/// What the middleware leaves in the request extensions.
#[derive(Debug, Clone)]
struct AuthState {
    caller: Option<Authenticated>,
    gate: Gate,
}

/// A poem middleware that authenticates every request with an
/// [`Authenticator`] (bearer tokens) or, with the `login` feature, a
/// `RelyingParty` (bearer tokens, then the login session).
///
/// Apply it with [`EndpointExt::with`](poem::EndpointExt::with) around the
/// routes whose handlers use this crate's extractors.
#[derive(Debug, Clone)]
pub struct AuthMiddleware {
    gate: Gate,
}

impl AuthMiddleware {
    /// The common path: a middleware accepting access tokens from one OpenID
    /// Connect `issuer` (its keys found by discovery), finished with
    /// [`FromOidc::audience`] and [`FromOidc::build`]. Requests without
    /// credentials reach the handlers as guests; the extractors decide.
    pub fn from_oidc(issuer: impl Into<String>) -> FromOidc<Self> {
        FromOidc::new(issuer)
    }

    /// A middleware authenticating with `auth` (built from configuration:
    /// [`portcullis_core::config`]).
    pub fn new(auth: Authenticator) -> Self {
        Self {
            gate: Gate::new(auth),
        }
    }

    /// A middleware for a browser application that logs its users in with
    /// `rp`: a request is authenticated by its bearer token (the provider's
    /// access tokens for the configured audience, portcullis' own tokens)
    /// or else by its session cookie, whose tokens are refreshed when due
    /// (the renewed cookie is added to the response). Capabilities come from
    /// the relying party. Nest [`login_routes`] for `/login`, `/auth`,
    /// `/token`, `/logout` and capability management.
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
    /// policy's limit). See the crate documentation for where to apply the
    /// middleware so that the policy sees the route template.
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

impl From<Gate> for AuthMiddleware {
    fn from(gate: Gate) -> Self {
        Self { gate }
    }
}

impl<E: Endpoint> Middleware<E> for AuthMiddleware {
    type Output = AuthEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        AuthEndpoint {
            inner,
            gate: self.gate.clone(),
        }
    }
}

/// The endpoint [`AuthMiddleware`] produces.
#[derive(Debug)]
pub struct AuthEndpoint<E> {
    inner: E,
    gate: Gate,
}

/// poem's headers as portcullis reads them.
pub(crate) struct Headers<'a>(pub(crate) &'a HeaderMap);

impl HeaderLookup for Headers<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        // `to_str`'s rule, checked faster on a ~1 KB bearer header.
        self.0
            .get(name)
            .and_then(|v| portcullis_core::credentials::header_text(v.as_bytes()))
    }
}

impl<E: Endpoint> Endpoint for AuthEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let mut authn = self
            .gate
            .authenticate(req.method().as_str(), &Headers(req.headers()))
            .await
            .map_err(AuthRejection)?;
        let cache_control = authn.cache_control();
        let cookies = std::mem::take(&mut authn.set_cookies);
        // The policy decides after authentication, before the handler.
        #[cfg(feature = "policy")]
        let refused = policy::check(&self.gate, authn.caller.as_ref(), &mut req)
            .await
            .err();
        #[cfg(not(feature = "policy"))]
        let refused: Option<Response> = None;
        let outcome = match refused {
            Some(refused) => Ok(refused),
            None => {
                req.extensions_mut().insert(AuthState {
                    caller: authn.caller,
                    gate: self.gate.clone(),
                });
                self.inner.call(req).await.map(IntoResponse::into_response)
            }
        };
        if cookies.is_empty() && cache_control.is_none() {
            return outcome.map(IntoResponse::into_response);
        }
        // The cookies go out whatever the answer, refusals included (a
        // cleared session cookie must reach the browser that sent it), so
        // an error is rendered here to carry them.
        let mut resp = match outcome {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        for cookie in cookies {
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        if let Some(cc) = cache_control {
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static(cc));
        }
        Ok(resp)
    }
}

/// Copies a [`Reply`] into a poem response (repeated headers kept).
pub fn reply_response(reply: Reply) -> Response {
    let mut resp = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .body(reply.body);
    for (name, value) in reply.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            resp.headers_mut().append(n, v);
        }
    }
    resp
}

/// Renders a core error as a poem response, exactly as core maps it.
pub fn error_response(error: &Error, realm: &str) -> Response {
    reply_response(Reply::error(error, realm))
}

/// The refusal of this crate's middleware and extractors: core's error,
/// rendered by core's mapping (or, for a browser sent to log in, the
/// redirect). It converts into a [`poem::Error`] that renders the same.
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

    /// The poem response this refusal answers.
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

impl poem::error::ResponseError for AuthRejection {
    fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn as_response(&self) -> Response {
        self.to_response()
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        self.to_response()
    }
}

/// The state the middleware left on `req`.
fn state(req: &Request) -> Result<&AuthState, AuthRejection> {
    req.extensions().get::<AuthState>().ok_or_else(|| {
        tracing::error!("a portcullis extractor ran on a route without AuthMiddleware");
        AuthRejection(Refusal::new(
            Error::config("AuthMiddleware is not installed on this route"),
            "portcullis",
        ))
    })
}

/// The page as the browser asked for it, before any `nest` stripped its
/// prefix. A request that was not served by poem's server (poem's
/// `TestClient`) has no original URI apart from `/`: its own URI is the page.
fn target(req: &Request) -> &str {
    let original = req.original_uri().path_and_query().map(|p| p.as_str());
    match original {
        Some(page) if page != "/" => page,
        _ => req.uri().path_and_query().map_or("/", |p| p.as_str()),
    }
}

/// A verified caller; the request is refused with 401 without one.
///
/// Use `Option<Caller>` for routes open to anonymous callers (poem's
/// `Option` extractor: `None` for a guest, and also when the middleware is
/// missing).
#[derive(Debug, Clone)]
pub struct Caller(pub Authenticated);

impl<'a> poem::FromRequest<'a> for Caller {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let st = state(req)?;
        let caller = st.gate.require_caller(st.caller.as_ref());
        Ok(Caller(caller.map_err(AuthRejection)?.clone()))
    }
}

/// easy-oauth's `ensure_email`: a verified caller; a guest that follows
/// redirects (a browser, or an HTTP client with a cookie jar) is sent to
/// log in and back (needs [`AuthMiddleware::for_login`]), an API guest (an
/// `Accept` without HTML or `*/*`, or an `Authorization` header) gets 401.
/// easy-oauth's `get_email` is `Option<Caller>`.
#[derive(Debug, Clone)]
pub struct LoggedIn(pub Authenticated);

impl<'a> poem::FromRequest<'a> for LoggedIn {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let st = state(req)?;
        let caller = st.gate.require_caller_or_login(
            st.caller.as_ref(),
            target(req),
            &Headers(req.headers()),
        );
        Ok(LoggedIn(caller.map_err(AuthRejection)?.clone()))
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

impl<'a, S: ScopeName> poem::FromRequest<'a> for RequireScope<S> {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let st = state(req)?;
        let caller = st.gate.require_scope(st.caller.as_ref(), S::SCOPE);
        Ok(RequireScope(
            caller.map_err(AuthRejection)?.clone(),
            PhantomData,
        ))
    }
}
