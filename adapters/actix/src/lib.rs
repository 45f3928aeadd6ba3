//! actix-web adapter for portcullis.
//!
//! [`AuthMiddleware`] is an actix-web middleware: it finds the request's
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
//! [`management_routes`] configures easy-oauth's capability management and
//! service token routes on an `App`, a `Scope` or a `ServiceConfig`; their
//! handlers only copy requests into [`Capabilities`] and its answers out.
//!
//! A browser application that logs its users in builds the middleware with
//! [`AuthMiddleware::for_login`] around a [`RelyingParty`] (portcullis-oidc)
//! and configures [`login_routes`] (`/login`, `/auth`, `/logout`, `/token`
//! and the management routes): requests are then authenticated by bearer
//! token or session cookie, and `RequireCapability<C, LoginRedirect>` sends
//! browsers to log in and back.
//!
//! The adapter makes no decision of its own: every outcome and its HTTP form
//! come from `portcullis-core`. actix-web 4 is built on `http` 0.2, so
//! nothing http-typed crosses into portcullis: headers are read through
//! [`HeaderLookup`] and answers are copied out of core's and the relying
//! party's framework-neutral replies.
//!
//! # Examples
//!
//! A resource server:
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use portcullis_actix::{AuthMiddleware, Caller, RequireScope, scope};
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
//! // auto_error(false): anonymous requests reach the handlers, whose extractors decide.
//! let auth = Authenticator::new(verifier, CredentialsConfig::default().with_auto_error(false));
//!
//! HttpServer::new(move || {
//!     App::new()
//!         .wrap(AuthMiddleware::new(auth.clone()))
//!         .route("/me", web::get().to(me))
//!         .route("/report", web::get().to(report))
//! })
//! .bind("127.0.0.1:3000")?
//! .run()
//! .await?;
//! # Ok(()) }
//! ```
//!
//! A browser application, as easy-oauth's README:
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use portcullis_actix::portcullis_oidc::{OidcConfig, RelyingParty};
//! use portcullis_actix::{AuthMiddleware, LoginRedirect, RequireCapability, capability, login_routes};
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
//! let prefix = rp.config().prefix.clone();
//! HttpServer::new(move || {
//!     App::new()
//!         .wrap(AuthMiddleware::for_login(rp.clone()))
//!         .route("/shout", web::get().to(shout))
//!         // The login routes live under the configured prefix.
//!         .service(web::scope(&prefix).configure(login_routes(rp.clone())))
//! })
//! .bind("127.0.0.1:3000")?
//! .run()
//! .await?;
//! # Ok(()) }
//! ```
//!
//! With an empty prefix, configure the routes on the `App` itself:
//! `App::new().configure(login_routes(rp.clone()))`.
//!
//! # Feature flags
//!
//! This crate has no feature flags of its own.

use std::fmt;
use std::future::{Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, SET_COOKIE};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use portcullis_capabilities::Capabilities;
use portcullis_core::credentials::{require_caller, require_scope};
use portcullis_core::{Authenticated, Authenticator, Error, HeaderLookup};
use portcullis_oidc::{Authentication, RelyingParty, Reply};

pub use portcullis_capabilities;
pub use portcullis_core;
pub use portcullis_oidc;

mod capabilities;
mod login;

pub use capabilities::{
    CapabilityName, LoginRedirect, Refuse, RequireCapability, Unauthenticated, management_routes,
};
pub use login::{login_routes, reply_response};

/// A boxed future of the adapter (actix-web futures need not be `Send`).
type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// What the middleware leaves in the request extensions.
#[derive(Debug)]
struct AuthState {
    caller: Option<Authenticated>,
    realm: Arc<str>,
    capabilities: Option<Capabilities>,
    login: Option<RelyingParty>,
}

/// What the middleware was built with, shared by every request.
#[derive(Debug)]
struct Config {
    auth: Authenticator,
    realm: Arc<str>,
    capabilities: Option<Capabilities>,
    login: Option<RelyingParty>,
}

/// An actix-web middleware that authenticates every request with an
/// [`Authenticator`] (bearer tokens) or a [`RelyingParty`] (bearer tokens,
/// then the login session). Install it with `App::wrap` or `Scope::wrap`.
#[derive(Debug, Clone)]
pub struct AuthMiddleware {
    config: Arc<Config>,
}

impl AuthMiddleware {
    /// A middleware authenticating with `auth`.
    pub fn new(auth: Authenticator) -> Self {
        let realm = Arc::from(auth.realm());
        Self {
            config: Arc::new(Config {
                auth,
                realm,
                capabilities: None,
                login: None,
            }),
        }
    }

    /// A middleware for a browser application that logs its users in with
    /// `rp`: a request is authenticated by its bearer token (the provider's
    /// access tokens for the configured audience, portcullis' own tokens) or
    /// else by its session cookie, whose tokens are refreshed when due (the
    /// renewed cookie is added to the response). Capabilities come from the
    /// relying party. Configure [`login_routes`] for `/login`, `/auth`,
    /// `/token`, `/logout` and capability management.
    pub fn for_login(rp: RelyingParty) -> Self {
        let auth = rp.authenticator().clone();
        Self {
            config: Arc::new(Config {
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
        let c = &self.config;
        Self {
            config: Arc::new(Config {
                auth: c.auth.clone(),
                realm: Arc::clone(&c.realm),
                capabilities: Some(capabilities),
                login: c.login.clone(),
            }),
        }
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
            config: Arc::clone(&self.config),
        }))
    }
}

/// The service [`AuthMiddleware`] wraps around the application.
pub struct AuthService<S> {
    service: Rc<S>,
    config: Arc<Config>,
}

impl<S> fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// actix-web's headers as portcullis reads them.
pub(crate) struct Headers<'a>(pub(crate) &'a HeaderMap);

impl HeaderLookup for Headers<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
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
        let config = Arc::clone(&self.config);
        Box::pin(async move {
            let headers = Headers(req.headers());
            let outcome = match &config.login {
                Some(rp) => rp.authenticate(&headers).await,
                None => config
                    .auth
                    .authenticate(&headers)
                    .await
                    .map(|caller| Authentication {
                        caller,
                        set_cookies: Vec::new(),
                    }),
            };
            match outcome {
                Ok(authn) => {
                    req.extensions_mut().insert(Rc::new(AuthState {
                        caller: authn.caller,
                        realm: Arc::clone(&config.realm),
                        capabilities: config.capabilities.clone(),
                        login: config.login.clone(),
                    }));
                    // An error of the inner service (only another middleware
                    // returns one; handlers answer responses) passes through
                    // as actix-web expects, without the cookies.
                    let mut resp = service.call(req).await?;
                    for cookie in authn.set_cookies {
                        if let Ok(v) = HeaderValue::from_str(&cookie) {
                            resp.headers_mut().append(SET_COOKIE, v);
                        }
                    }
                    Ok(resp.map_into_left_body())
                }
                Err(e) => Ok(req
                    .into_response(error_response(&e, &config.realm))
                    .map_into_right_body()),
            }
        })
    }
}

/// The status of a portcullis answer.
fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Copies framework-neutral headers into `resp`; `append` keeps repeated names.
fn copy_headers<V: AsRef<str>>(
    resp: &mut HttpResponse,
    headers: impl IntoIterator<Item = (&'static str, V)>,
    append: bool,
) {
    for (name, value) in headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_lowercase(name.as_bytes()),
            HeaderValue::from_str(value.as_ref()),
        ) else {
            continue;
        };
        if append {
            resp.headers_mut().append(name, value);
        } else {
            resp.headers_mut().insert(name, value);
        }
    }
}

/// Renders a core error as an actix-web response, exactly as core maps it.
pub fn error_response(error: &Error, realm: &str) -> HttpResponse {
    let r = error.to_response(realm);
    let mut resp = HttpResponse::with_body(status(r.status), r.body).map_into_boxed_body();
    copy_headers(&mut resp, r.headers, false);
    resp
}

/// The error of portcullis extractors: core's error, rendered by core's mapping.
#[derive(Debug)]
pub struct AuthRejection {
    error: Error,
    realm: Arc<str>,
    /// For a browser without credentials on a route that asks for it: the
    /// redirect to the login page, answered instead of the error.
    redirect: Option<Reply>,
}

impl AuthRejection {
    /// The underlying error.
    pub fn error(&self) -> &Error {
        &self.error
    }
}

impl fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl ResponseError for AuthRejection {
    fn status_code(&self) -> StatusCode {
        match &self.redirect {
            Some(reply) => status(reply.status),
            None => status(self.error.status()),
        }
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        match &self.redirect {
            Some(reply) => reply_response(reply.clone()),
            None => error_response(&self.error, &self.realm),
        }
    }
}

/// The state the middleware left on `req`.
fn state(req: &HttpRequest) -> Result<Rc<AuthState>, AuthRejection> {
    req.extensions()
        .get::<Rc<AuthState>>()
        .cloned()
        .ok_or_else(|| {
            tracing::error!("a portcullis extractor ran on a route without AuthMiddleware");
            AuthRejection {
                error: Error::config("AuthMiddleware is not installed on this route"),
                realm: Arc::from("portcullis"),
                redirect: None,
            }
        })
}

fn reject(error: Error, st: &AuthState) -> AuthRejection {
    AuthRejection {
        error,
        realm: Arc::clone(&st.realm),
        redirect: None,
    }
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
            require_caller(st.caller.as_ref())
                .map(|c| Caller(c.clone()))
                .map_err(|e| reject(e, &st))
        }))
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
pub struct RequireScope<S: ScopeName>(pub Authenticated, std::marker::PhantomData<S>);

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
            require_scope(st.caller.as_ref(), S::SCOPE)
                .map(|c| RequireScope(c.clone(), std::marker::PhantomData))
                .map_err(|e| reject(e, &st))
        }))
    }
}
