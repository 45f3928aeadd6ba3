//! axum adapter for portcullis.
//!
//! [`AuthLayer`] is a tower layer: it finds the request's credentials, has
//! portcullis-core verify them, and either stores the verified caller in the
//! request's extensions or answers with core's error response (401 with an RFC
//! 6750 `WWW-Authenticate`, 400, 503). Extractors then read the caller:
//!
//! - [`Caller`]: a verified caller is required (401 otherwise);
//! - `Option<Caller>`: the caller, if any;
//! - [`RequireScope`]: a caller holding a scope (401 without a caller, 403
//!   `insufficient_scope` without the scope);
//! - [`RequireCapability`]: a caller (or guest) holding a capability, decided
//!   by the [`Capabilities`] service given to [`AuthLayer::with_capabilities`].
//!
//! [`management_routes`] mounts easy-oauth's capability management and
//! service token routes; their handlers only copy requests into
//! [`Routes::dispatch`](portcullis_adapter_kit::routes::Routes::dispatch) and its answers out.
//!
//! A browser application that logs its users in builds the layer with
//! [`AuthLayer::for_login`] around a [`RelyingParty`] (portcullis-oidc) and
//! mounts [`login_routes`] (`/login`, `/auth`, `/logout`, `/token` and the
//! management routes): requests are then authenticated by bearer token or
//! session cookie, and `RequireCapability<C, LoginRedirect>` sends browsers
//! to log in and back.
//!
//! The adapter makes no decision of its own: the layer holds a
//! [`Gate`] (portcullis-oidc), which authenticates and decides, and every
//! outcome's HTTP form comes from `portcullis-core`. The scope and
//! capability names ([`ScopeName`], [`scope!`], [`CapabilityName`],
//! [`capability!`], [`Unauthenticated`]) are core's, re-exported. Because the layer is plain tower, it also wraps
//! any other tower service (tonic included).
//!
//! # Examples
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use portcullis_axum::{AuthLayer, Caller, RequireScope, scope};
//! use portcullis_core::config::{IssuerConfig, VerifierConfig};
//! use portcullis_core::{Authenticator, CredentialsConfig, TokenVerifier};
//!
//! scope!(Read = "read");
//!
//! async fn me(Caller(caller): Caller) -> String {
//!     format!("hello {}", caller.principal.email().unwrap_or(caller.principal.user_id()))
//! }
//!
//! async fn report(_: RequireScope<Read>) -> &'static str {
//!     "the report"
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = IssuerConfig::new("https://id.example.com").with_audience("my-api");
//! let verifier = TokenVerifier::new(VerifierConfig::new([("main".to_owned(), issuer)]))?;
//! // Requests without credentials reach the handlers as guests, and their
//! // extractors decide (`.refuse_missing()` would answer them 401 at once).
//! let auth = Authenticator::new(verifier, CredentialsConfig::default());
//!
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .route("/report", get(report))
//!     .layer(AuthLayer::new(auth));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! A browser application, as easy-oauth's README:
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use portcullis_axum::portcullis_oidc::{OidcConfig, RelyingParty};
//! use portcullis_axum::{AuthLayer, LoginRedirect, RequireCapability, capability, login_routes};
//!
//! capability!(Announce = "announce");
//!
//! // Browsers without a session are sent to log in and come back here.
//! async fn shout(_: RequireCapability<Announce, LoginRedirect>) -> &'static str {
//!     "HELLO"
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = OidcConfig::new(
//!     "https://id.example.com/.well-known/openid-configuration",
//!     std::env::var("SECRET_KEY")?,
//!     "my-client",
//!     "https://app.example.com",
//! );
//! let rp = RelyingParty::builder(config).build().await?;
//! let app: Router = Router::new()
//!     .route("/shout", get(shout))
//!     .merge(login_routes(rp.clone()))
//!     .layer(AuthLayer::for_login(rp));
//! # let _ = app; Ok(()) }
//! ```
//!
//! # Feature flags
//!
//! | feature | what it adds |
//! |---|---|
//! | `utoipa` | the `openapi` module: utoipa OpenAPI documents whose operations state the security their handlers' extractors enforce |

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

mod capabilities;
#[cfg(feature = "utoipa")]
pub mod openapi;
mod routes;

pub use capabilities::RequireCapability;
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

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
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
            req.extensions_mut().insert(AuthState {
                caller: authn.caller,
                gate,
            });
            let mut resp = inner.call(req).await?;
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
