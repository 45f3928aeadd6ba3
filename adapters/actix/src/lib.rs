//! actix-web adapter for portcullis.
//!
//! [`AuthMiddleware`] is an actix-web middleware: it finds the request's
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
//! [`management_routes`] configures easy-oauth's capability management and
//! service token routes on an `App`, a `Scope` or a `ServiceConfig`; their
//! handlers only copy requests into
//! [`Routes::dispatch`](portcullis_adapter_kit::routes::Routes::dispatch) and its answers out.
//!
//! A browser application that logs its users in (feature `login`) builds
//! the middleware with [`AuthMiddleware::for_login`] around a
//! [`RelyingParty`] (portcullis-oidc) and configures [`login_routes`]
//! (`/login`, `/auth`, `/logout`, `/token` and the management routes, under
//! the configured `prefix`) on the `App`: requests are then authenticated by
//! bearer token or session cookie, and `RequireCapability<C, LoginRedirect>`
//! sends browsers to log in and back.
//!
//! The adapter makes no decision of its own: the middleware holds a
//! [`Gate`] (portcullis-adapter-kit), which authenticates and decides, and
//! every outcome's HTTP form comes from `portcullis-core`. The scope and
//! capability names ([`ScopeName`], [`scope!`], [`CapabilityName`],
//! [`capability!`], [`Unauthenticated`]) are core's, re-exported.
//! actix-web 4 is built on `http` 0.2, so
//! nothing http-typed crosses into portcullis: headers are read through
//! [`HeaderLookup`] and answers are copied out of core's and the relying
//! party's framework-neutral replies.
//!
//! # Examples
//!
//! An API that accepts the access tokens of one OpenID Connect provider
//! (its keys found by discovery when the first token arrives: building the
//! middleware contacts nobody), with a route for any caller and one for
//! callers holding a scope:
//!
//! ```
//! use actix_web::{App, web};
//! use portcullis_actix::{AuthMiddleware, Caller, RequireScope, scope};
//! # use actix_web::test;
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
//! # #[actix_web::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = AuthMiddleware::from_oidc("https://id.example.com").audience("my-api").build()?;
//! let app = App::new()
//!     .wrap(auth)
//!     .route("/me", web::get().to(me))
//!     .route("/report", web::get().to(report));
//!
//! // A request without a token is refused with a challenge.
//! let app = test::init_service(app).await;
//! let response = test::call_service(&app, test::TestRequest::get().uri("/report").to_request()).await;
//! assert_eq!(response.status(), 401);
//! assert_eq!(response.headers().get("www-authenticate").unwrap(), r#"Bearer realm="portcullis""#);
//! # Ok(()) }
//! ```
//!
//! Serve it as any application, building it once per worker:
//! `HttpServer::new(move || App::new().wrap(auth.clone()).route(...)).bind("0.0.0.0:3000")?.run().await?`.
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
//! use actix_web::{App, web};
//! use portcullis_actix::portcullis_capabilities::{Capabilities, MemoryStore};
//! use portcullis_actix::portcullis_core::CapabilitiesConfig;
//! use portcullis_actix::{AuthMiddleware, RequireCapability, capability};
//! # use actix_web::test;
//!
//! capability!(Write = "write");
//!
//! async fn save(_: RequireCapability<Write>) -> &'static str {
//!     "saved"
//! }
//!
//! # #[actix_web::main]
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
//! let app = App::new().wrap(auth).route("/notes", web::post().to(save));
//!
//! let app = test::init_service(app).await;
//! let response = test::call_service(&app, test::TestRequest::post().uri("/notes").to_request()).await;
//! assert_eq!(response.status(), 401);
//! # Ok(()) }
//! ```
//!
//! A browser application, as easy-oauth's README: users log in at the
//! provider, and a page that needs a capability sends a browser that is
//! not logged in to log in and back:
//!
//! ```
//! use actix_web::{App, web};
//! use portcullis_actix::portcullis_core::CapabilitiesConfig;
//! use portcullis_actix::portcullis_oidc::{OidcConfig, RelyingParty};
//! use portcullis_actix::{AuthMiddleware, LoginRedirect, RequireCapability, capability, login_routes};
//! # use actix_web::test;
//!
//! capability!(Announce = "announce");
//!
//! async fn shout(_: RequireCapability<Announce, LoginRedirect>) -> &'static str {
//!     "HELLO"
//! }
//!
//! # #[actix_web::main]
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
//! // Built once per worker: in `HttpServer::new(move || ...)`, with clones of `rp`.
//! let app = App::new()
//!     .wrap(AuthMiddleware::for_login(rp.clone()))
//!     .route("/shout", web::get().to(shout))
//!     .configure(login_routes(rp));
//!
//! let app = test::init_service(app).await;
//! let browser = test::TestRequest::get().uri("/shout").insert_header(("accept", "text/html"));
//! let response = test::call_service(&app, browser.to_request()).await;
//! assert_eq!(response.status(), 303);
//! assert_eq!(response.headers().get("location").unwrap(), "/login?next=%2Fshout");
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
//! The route template is the pattern of the resource the request's path
//! matches (`HttpRequest::match_pattern`), known to a middleware installed
//! with `App::wrap` as to one on a scope or resource.
//!
//! ```
//! use actix_web::{App, test, web};
//! use portcullis_actix::AuthMiddleware;
//! use portcullis_actix::portcullis_policy::{Guests, Policy, PolicyConfig};
//!
//! # #[actix_web::main]
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
//! let app = App::new()
//!     .wrap(auth)
//!     .route("/public", web::get().to(|| async { "public" }))
//!     .route("/private", web::get().to(|| async { "private" }));
//!
//! let app = test::init_service(app).await;
//! let public = test::call_service(&app, test::TestRequest::get().uri("/public").to_request()).await;
//! assert_eq!(public.status(), 200);
//! // A guest the policy refuses: 401 with the challenge.
//! let private = test::call_service(&app, test::TestRequest::get().uri("/private").to_request()).await;
//! assert_eq!(private.status(), 401);
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

use std::fmt;
use std::future::{Ready, ready};
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderMap, HeaderName, HeaderValue, SET_COOKIE};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
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

/// A boxed future of the adapter (actix-web futures need not be `Send`).
type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// What the middleware leaves in the request extensions.
#[derive(Debug)]
struct AuthState {
    caller: Option<Authenticated>,
    gate: Gate,
}

/// An actix-web middleware that authenticates every request with an
/// [`Authenticator`] (bearer tokens) or, with the `login` feature, a
/// `RelyingParty` (bearer tokens, then the login session). Install it with `App::wrap` or `Scope::wrap`.
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
    /// access tokens for the configured audience, portcullis' own tokens) or
    /// else by its session cookie, whose tokens are refreshed when due (the
    /// renewed cookie is added to the response). Capabilities come from the
    /// relying party. Configure [`login_routes`] for `/login`, `/auth`,
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
    /// policy's limit).
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

impl<S, B> Transform<S, ServiceRequest> for AuthMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = AuthService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(AuthService {
            service: Rc::new(service),
            gate: self.gate.clone(),
        }))
    }
}

/// The service [`AuthMiddleware`] wraps around the application.
pub struct AuthService<S> {
    service: Rc<S>,
    gate: Gate,
}

impl<S> fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

/// actix-web's headers as portcullis reads them.
pub(crate) struct Headers<'a>(pub(crate) &'a HeaderMap);

impl HeaderLookup for Headers<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        // `to_str`'s rule, checked faster on a ~1 KB bearer header.
        self.0
            .get(name)
            .and_then(|v| portcullis_core::credentials::header_text(v.as_bytes()))
    }
}

impl<S, B> Service<ServiceRequest> for AuthService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalFuture<Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let gate = self.gate.clone();
        Box::pin(async move {
            let method = req.method().as_str().to_owned();
            let mut authn = match gate.authenticate(&method, &Headers(req.headers())).await {
                Ok(authn) => authn,
                Err(refusal) => {
                    let resp = reply_response(refusal.to_reply());
                    return Ok(req.into_response(resp).map_into_right_body());
                }
            };
            let cache_control = authn.cache_control();
            let cookies = std::mem::take(&mut authn.set_cookies);
            // The policy decides after authentication, before the handler.
            #[cfg(feature = "policy")]
            let req = {
                let mut req = req;
                if let Err(refused) = policy::check(&gate, authn.caller.as_ref(), &mut req).await {
                    let mut resp = req.into_response(refused);
                    add_cookies(resp.headers_mut(), cookies, cache_control);
                    return Ok(resp.map_into_right_body());
                }
                req
            };
            req.extensions_mut().insert(Rc::new(AuthState {
                caller: authn.caller,
                gate,
            }));
            // An error of the inner service (another middleware returns
            // one; handlers answer responses) stays an error for the
            // middlewares outside, but carries the cookies and the
            // `Cache-Control` into the response actix-web renders from it:
            // a refreshed session cookie dropped on an error would leave the
            // browser with a rotated-out one.
            let mut resp = match service.call(req).await {
                Ok(resp) => resp,
                Err(error) if cookies.is_empty() && cache_control.is_none() => return Err(error),
                Err(error) => {
                    return Err(CarryingCookies {
                        error,
                        cookies,
                        cache_control,
                    }
                    .into());
                }
            };
            add_cookies(resp.headers_mut(), cookies, cache_control);
            Ok(resp.map_into_left_body())
        })
    }
}

/// Appends `cookies` and sets `cache_control` (when there is one) on a
/// response's headers.
fn add_cookies(headers: &mut HeaderMap, cookies: Vec<String>, cache_control: Option<&'static str>) {
    for cookie in cookies {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            headers.append(SET_COOKIE, v);
        }
    }
    if let Some(cc) = cache_control {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(cc));
    }
}

/// An inner service's error with the cookies the authentication set: it
/// renders as the error does, plus the cookies and `Cache-Control`.
struct CarryingCookies {
    error: actix_web::Error,
    cookies: Vec<String>,
    cache_control: Option<&'static str>,
}

impl fmt::Debug for CarryingCookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CarryingCookies")
            .field("error", &self.error)
            .field("cookies", &self.cookies.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for CarryingCookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl ResponseError for CarryingCookies {
    fn status_code(&self) -> StatusCode {
        self.error.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut resp = self.error.error_response();
        add_cookies(resp.headers_mut(), self.cookies.clone(), self.cache_control);
        resp
    }
}

/// The status of a portcullis answer.
fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Copies a [`Reply`] into an actix-web response (repeated headers kept).
pub fn reply_response(reply: Reply) -> HttpResponse {
    let mut resp = HttpResponse::with_body(status(reply.status), reply.body).map_into_boxed_body();
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_lowercase(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            resp.headers_mut().append(name, value);
        }
    }
    resp
}

/// Renders a core error as an actix-web response, exactly as core maps it.
pub fn error_response(error: &Error, realm: &str) -> HttpResponse {
    reply_response(Reply::error(error, realm))
}

/// The error of portcullis extractors: core's error, rendered by core's
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

    /// The actix-web response this refusal answers.
    pub fn to_response(&self) -> HttpResponse {
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

impl ResponseError for AuthRejection {
    fn status_code(&self) -> StatusCode {
        status(self.0.status())
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        self.to_response()
    }
}

/// The state the middleware left on `req`.
fn state(req: &HttpRequest) -> Result<Rc<AuthState>, AuthRejection> {
    req.extensions()
        .get::<Rc<AuthState>>()
        .cloned()
        .ok_or_else(|| {
            tracing::error!("a portcullis extractor ran on a route without AuthMiddleware");
            AuthRejection(Refusal::new(
                Error::config("AuthMiddleware is not installed on this route"),
                "portcullis",
            ))
        })
}

/// The request's path and query, as the browser asked for it (actix-web
/// scopes keep the full path).
fn target(req: &HttpRequest) -> &str {
    req.uri().path_and_query().map_or("/", |p| p.as_str())
}

/// A verified caller; the request is refused with 401 without one.
///
/// Use `Option<Caller>` for routes open to anonymous callers (actix-web's
/// `Option` extractor turns every refusal into `None`).
#[derive(Debug, Clone)]
pub struct Caller(pub Authenticated);

impl FromRequest for Caller {
    type Error = AuthRejection;
    type Future = Ready<Result<Self, AuthRejection>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(state(req).and_then(|st| {
            let caller = st.gate.require_caller(st.caller.as_ref());
            caller.map(|c| Caller(c.clone())).map_err(AuthRejection)
        }))
    }
}

/// easy-oauth's `ensure_email`: a verified caller; a guest that follows
/// redirects (a browser, or an HTTP client with a cookie jar) is sent to
/// log in and back (needs [`AuthMiddleware::for_login`]), an API guest (an
/// `Accept` without HTML or `*/*`, or an `Authorization` header) gets 401.
/// easy-oauth's `get_email` is `Option<Caller>`.
#[derive(Debug, Clone)]
pub struct LoggedIn(pub Authenticated);

impl FromRequest for LoggedIn {
    type Error = AuthRejection;
    type Future = Ready<Result<Self, AuthRejection>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(state(req).and_then(|st| {
            let caller = st.gate.require_caller_or_login(
                st.caller.as_ref(),
                target(req),
                &Headers(req.headers()),
            );
            caller.map(|c| LoggedIn(c.clone())).map_err(AuthRejection)
        }))
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

impl<S: ScopeName> FromRequest for RequireScope<S> {
    type Error = AuthRejection;
    type Future = Ready<Result<Self, AuthRejection>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(state(req).and_then(|st| {
            let caller = st.gate.require_scope(st.caller.as_ref(), S::SCOPE);
            caller
                .map(|c| RequireScope(c.clone(), PhantomData))
                .map_err(AuthRejection)
        }))
    }
}
