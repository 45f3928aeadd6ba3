//! poem adapter for portcullis.
//!
//! [`AuthMiddleware`] is a poem [`Middleware`]: it finds the request's
//! credentials, has portcullis-core verify them, and either stores the
//! verified caller in the request's extensions or answers with core's error
//! response (401 with an RFC 6750 `WWW-Authenticate`, 400, 503). Extractors
//! then read the caller:
//!
//! - [`Caller`]: a verified caller is required (401 otherwise);
//! - `Option<Caller>`: the caller, if any;
//! - [`RequireScope`]: a caller holding a scope (401 without a caller, 403
//!   `insufficient_scope` without the scope);
//! - [`RequireCapability`]: a caller (or guest) holding a capability, decided
//!   by the [`Capabilities`] service given to
//!   [`AuthMiddleware::with_capabilities`].
//!
//! [`management_routes`] builds easy-oauth's capability management and
//! service token routes as a [`Route`](poem::Route) to nest; their handlers only copy
//! requests into [`Capabilities`] and its answers out.
//!
//! A browser application that logs its users in builds the middleware with
//! [`AuthMiddleware::for_login`] around a [`RelyingParty`] (portcullis-oidc)
//! and nests [`login_routes`] (`/login`, `/auth`, `/logout`, `/token` and the
//! management routes) under the configured prefix: requests are then
//! authenticated by bearer token or session cookie, and
//! `RequireCapability<C, LoginRedirect>` sends browsers to log in and back.
//!
//! The adapter makes no decision of its own: every outcome and its HTTP form
//! come from `portcullis-core`. Refusals are [`poem::Error`]s made from an
//! [`AuthRejection`], so an application can find them with
//! `err.downcast_ref::<AuthRejection>()` (in `catch_error`, say); left
//! alone, they render exactly as core maps them.
//!
//! # Examples
//!
//! A resource server:
//!
//! ```no_run
//! use poem::listener::TcpListener;
//! use poem::{EndpointExt, Route, Server, get, handler};
//! use portcullis_core::config::{IssuerConfig, VerifierConfig};
//! use portcullis_core::{Authenticator, CredentialsConfig, TokenVerifier};
//! use portcullis_poem::{AuthMiddleware, Caller, RequireScope, scope};
//!
//! scope!(Read = "read");
//!
//! #[handler]
//! fn me(Caller(caller): Caller) -> String {
//!     format!("hello {}", caller.principal.email().unwrap_or(caller.principal.user_id()))
//! }
//!
//! #[handler]
//! fn report(_: RequireScope<Read>) -> &'static str {
//!     "the report"
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = IssuerConfig::new("https://id.example.com").with_audience("my-api");
//! let verifier = TokenVerifier::new(VerifierConfig::new([("main".to_owned(), issuer)]))?;
//! // auto_error(false): anonymous requests reach the handlers, whose extractors decide.
//! let auth = Authenticator::new(verifier, CredentialsConfig::default().with_auto_error(false));
//!
//! let app = Route::new()
//!     .at("/me", get(me))
//!     .at("/report", get(report))
//!     .with(AuthMiddleware::new(auth));
//! Server::new(TcpListener::bind("127.0.0.1:3000")).run(app).await?;
//! # Ok(()) }
//! ```
//!
//! A browser application, as easy-oauth's README:
//!
//! ```no_run
//! use poem::{EndpointExt, Route, get, handler};
//! use portcullis_poem::portcullis_oidc::{OidcConfig, RelyingParty};
//! use portcullis_poem::{AuthMiddleware, LoginRedirect, RequireCapability, capability, login_routes};
//!
//! capability!(Announce = "announce");
//!
//! // Browsers without a session are sent to log in and come back here.
//! #[handler]
//! fn shout(_: RequireCapability<Announce, LoginRedirect>) -> &'static str {
//!     "HELLO"
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = OidcConfig::new(
//!     "https://id.example.com/.well-known/openid-configuration",
//!     std::env::var("SECRET_KEY")?,
//!     "my-client",
//!     "https://app.example.com",
//! )
//! .with_prefix("/account");
//! let rp = RelyingParty::builder(config).build().await?;
//! let app = Route::new()
//!     .at("/shout", get(shout))
//!     .nest("/account", login_routes(rp.clone()))
//!     .with(AuthMiddleware::for_login(rp));
//! # let _ = app; Ok(()) }
//! ```
//!
//! With an empty prefix (the default), add the application's routes to the
//! login routes themselves, as poem's [`Route`](poem::Route) has no merge:
//! `login_routes(rp.clone()).at("/shout", get(shout)).with(AuthMiddleware::for_login(rp))`.
//!
//! # Feature flags
//!
//! | feature | what it adds |
//! |---|---|
//! | `openapi` | the `openapi` module: a bearer security scheme for poem-openapi operations that enforces what it documents |

use std::marker::PhantomData;
use std::sync::Arc;

use poem::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use poem::{Body, Endpoint, IntoResponse, Middleware, Request, RequestBody, Response};
use portcullis_capabilities::Capabilities;
use portcullis_core::credentials::{require_caller, require_scope};
use portcullis_core::{Authenticated, Authenticator, Error, HeaderLookup};
use portcullis_oidc::{Authentication, RelyingParty, Reply};

pub use portcullis_capabilities;
pub use portcullis_core;
pub use portcullis_oidc;

mod capabilities;
mod login;
#[cfg(feature = "openapi")]
pub mod openapi;

pub use capabilities::{
    CapabilityName, LoginRedirect, Refuse, RequireCapability, Unauthenticated, management_routes,
};
pub use login::{login_routes, reply_response};

/// What every request of one middleware shares.
#[derive(Debug, Clone)]
struct Shared {
    auth: Authenticator,
    realm: Arc<str>,
    capabilities: Option<Capabilities>,
    login: Option<RelyingParty>,
}

/// What the middleware leaves in the request extensions.
#[derive(Debug, Clone)]
struct AuthState {
    caller: Option<Authenticated>,
    shared: Arc<Shared>,
}

/// A poem middleware that authenticates every request with an
/// [`Authenticator`] (bearer tokens) or a [`RelyingParty`] (bearer tokens,
/// then the login session).
///
/// Apply it with [`EndpointExt::with`](poem::EndpointExt::with) around the
/// routes whose handlers use this crate's extractors.
#[derive(Debug, Clone)]
pub struct AuthMiddleware {
    shared: Arc<Shared>,
}

impl AuthMiddleware {
    /// A middleware authenticating with `auth`.
    pub fn new(auth: Authenticator) -> Self {
        let realm = Arc::from(auth.realm());
        Self {
            shared: Arc::new(Shared {
                auth,
                realm,
                capabilities: None,
                login: None,
            }),
        }
    }

    /// A middleware for a browser application that logs its users in with
    /// `rp`: a request is authenticated by its bearer token (the provider's
    /// access tokens for the configured audience, portcullis' own tokens)
    /// or else by its session cookie, whose tokens are refreshed when due
    /// (the renewed cookie is added to the response). Capabilities come from
    /// the relying party. Nest [`login_routes`] for `/login`, `/auth`,
    /// `/token`, `/logout` and capability management.
    pub fn for_login(rp: RelyingParty) -> Self {
        let auth = rp.authenticator().clone();
        Self {
            shared: Arc::new(Shared {
                realm: Arc::from(auth.realm()),
                auth,
                capabilities: Some(rp.capabilities().clone()),
                login: Some(rp),
            }),
        }
    }

    /// Makes `capabilities` available to [`RequireCapability`] and the
    /// [`management_routes`] on every request.
    pub fn with_capabilities(self, capabilities: Capabilities) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.shared);
        shared.capabilities = Some(capabilities);
        Self {
            shared: Arc::new(shared),
        }
    }
}

impl<E: Endpoint> Middleware<E> for AuthMiddleware {
    type Output = AuthEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        AuthEndpoint {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The endpoint [`AuthMiddleware`] produces.
#[derive(Debug)]
pub struct AuthEndpoint<E> {
    inner: E,
    shared: Arc<Shared>,
}

pub(crate) struct Headers<'a>(pub(crate) &'a HeaderMap);

impl HeaderLookup for Headers<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

impl<E: Endpoint> Endpoint for AuthEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let shared = &self.shared;
        let outcome = match &shared.login {
            Some(rp) => rp.authenticate(&Headers(req.headers())).await,
            None => shared
                .auth
                .authenticate(&Headers(req.headers()))
                .await
                .map(|caller| Authentication {
                    caller,
                    set_cookies: Vec::new(),
                }),
        };
        let authn = match outcome {
            Ok(authn) => authn,
            Err(e) => return Err(AuthRejection::new(e, &shared.realm).into()),
        };
        req.extensions_mut().insert(AuthState {
            caller: authn.caller,
            shared: Arc::clone(shared),
        });
        let outcome = self.inner.call(req).await;
        if authn.set_cookies.is_empty() {
            return outcome.map(IntoResponse::into_response);
        }
        // The cookies go out whatever the answer, refusals included (a
        // cleared session cookie must reach the browser that sent it), so
        // an error is rendered here to carry them.
        let mut resp = match outcome {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        for cookie in authn.set_cookies {
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        Ok(resp)
    }
}

/// A response with `status`, the lower-case `headers` (appended, so names
/// may repeat) and `body`.
fn response<'a>(
    status: u16,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: impl Into<Body>,
) -> Response {
    let mut resp = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .body(body);
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            resp.headers_mut().append(n, v);
        }
    }
    resp
}

/// Renders a core error as a poem response, exactly as core maps it.
pub fn error_response(error: &Error, realm: &str) -> Response {
    let r = error.to_response(realm);
    response(
        r.status,
        r.headers.iter().map(|(n, v)| (*n, v.as_str())),
        r.body,
    )
}

/// The refusal of this crate's middleware and extractors: core's error,
/// rendered by core's mapping (or, for a browser sent to log in, the
/// redirect). It converts into a [`poem::Error`] that renders the same.
#[derive(Debug)]
pub struct AuthRejection {
    error: Error,
    realm: Arc<str>,
    /// For a browser without credentials on a route that asks for it: the
    /// redirect to the login page, answered instead of the error.
    redirect: Option<Reply>,
}

impl AuthRejection {
    fn new(error: Error, realm: &Arc<str>) -> Self {
        Self {
            error,
            realm: Arc::clone(realm),
            redirect: None,
        }
    }

    /// The underlying error.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The response this refusal answers: core's error response, or the
    /// redirect to the login page.
    pub fn to_response(&self) -> Response {
        match &self.redirect {
            Some(reply) => reply_response(reply.clone()),
            None => error_response(&self.error, &self.realm),
        }
    }
}

impl std::fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for AuthRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl poem::error::ResponseError for AuthRejection {
    fn status(&self) -> StatusCode {
        let status = match &self.redirect {
            Some(reply) => reply.status,
            None => self.error.status(),
        };
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
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

fn state(req: &Request) -> Result<&AuthState, AuthRejection> {
    req.extensions().get::<AuthState>().ok_or_else(|| {
        tracing::error!("a portcullis extractor ran on a route without AuthMiddleware");
        AuthRejection::new(
            Error::config("AuthMiddleware is not installed on this route"),
            &Arc::from("portcullis"),
        )
    })
}

fn reject(error: Error, st: &AuthState) -> AuthRejection {
    AuthRejection::new(error, &st.shared.realm)
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
        Ok(require_caller(st.caller.as_ref())
            .map(|c| Caller(c.clone()))
            .map_err(|e| reject(e, st))?)
    }
}

/// A scope name, for [`RequireScope`]. Declare one with [`scope!`].
pub trait ScopeName: Send + Sync + 'static {
    /// The scope.
    const SCOPE: &'static str;
}

/// Declares a [`ScopeName`] type: `scope!(Read = "read");`.
#[macro_export]
macro_rules! scope {
    ($(#[$meta:meta])* $vis:vis $name:ident = $scope:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $name;
        impl $crate::ScopeName for $name {
            const SCOPE: &'static str = $scope;
        }
    };
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
        Ok(require_scope(st.caller.as_ref(), S::SCOPE)
            .map(|c| RequireScope(c.clone(), PhantomData))
            .map_err(|e| reject(e, st))?)
    }
}
