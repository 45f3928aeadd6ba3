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
//! [`Capabilities`] and its answers out.
//!
//! The adapter makes no decision of its own: every outcome and its HTTP form
//! come from `portcullis-core`. Because the layer is plain tower, it also wraps
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
//! // auto_error(false): anonymous requests reach the handlers, whose extractors decide.
//! let auth = Authenticator::new(verifier, CredentialsConfig::default().with_auto_error(false));
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
//! # Feature flags
//!
//! This crate has no feature flags of its own.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use portcullis_capabilities::Capabilities;
use portcullis_core::credentials::{require_caller, require_scope};
use portcullis_core::{Authenticated, Authenticator, Error, HeaderLookup};
use tower_layer::Layer;
use tower_service::Service;

pub use portcullis_capabilities;
pub use portcullis_core;

mod capabilities;

pub use capabilities::{CapabilityName, RequireCapability, management_routes};

/// What the layer leaves in the request extensions.
#[derive(Debug, Clone)]
struct AuthState {
    caller: Option<Authenticated>,
    realm: Arc<str>,
    capabilities: Option<Capabilities>,
}

/// A tower layer that authenticates every request with an [`Authenticator`].
#[derive(Debug, Clone)]
pub struct AuthLayer {
    auth: Authenticator,
    realm: Arc<str>,
    capabilities: Option<Capabilities>,
}

impl AuthLayer {
    /// A layer authenticating with `auth`.
    pub fn new(auth: Authenticator) -> Self {
        let realm = Arc::from(auth.realm());
        Self {
            auth,
            realm,
            capabilities: None,
        }
    }

    /// Makes `capabilities` available to [`RequireCapability`] and the
    /// [`management_routes`] on every request.
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = Some(capabilities);
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
            realm: Arc::clone(&self.realm),
            capabilities: self.capabilities.clone(),
        }
    }
}

/// The service [`AuthLayer`] produces.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Authenticator,
    realm: Arc<str>,
    capabilities: Option<Capabilities>,
}

struct Headers<'a>(&'a HeaderMap);

impl HeaderLookup for Headers<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
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
        let auth = self.auth.clone();
        let realm = Arc::clone(&self.realm);
        let capabilities = self.capabilities.clone();
        Box::pin(async move {
            match auth.authenticate(&Headers(req.headers())).await {
                Ok(caller) => {
                    req.extensions_mut().insert(AuthState {
                        caller,
                        realm,
                        capabilities,
                    });
                    inner.call(req).await
                }
                Err(e) => Ok(error_response(&e, &realm)),
            }
        })
    }
}

/// Renders a core error as an axum response, exactly as core maps it.
pub fn error_response(error: &Error, realm: &str) -> Response {
    let r = error.to_response(realm);
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in r.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(HeaderName::from_static(name), v);
        }
    }
    resp
}

/// The rejection of portcullis extractors: core's error, rendered by core's mapping.
#[derive(Debug)]
pub struct AuthRejection {
    error: Error,
    realm: Arc<str>,
}

impl AuthRejection {
    /// The underlying error.
    pub fn error(&self) -> &Error {
        &self.error
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        error_response(&self.error, &self.realm)
    }
}

fn state(parts: &Parts) -> Result<&AuthState, AuthRejection> {
    parts.extensions.get::<AuthState>().ok_or_else(|| {
        tracing::error!("a portcullis extractor ran on a route without AuthLayer");
        AuthRejection {
            error: Error::config("AuthLayer is not installed on this route"),
            realm: Arc::from("portcullis"),
        }
    })
}

fn reject(error: Error, st: &AuthState) -> AuthRejection {
    AuthRejection {
        error,
        realm: Arc::clone(&st.realm),
    }
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
        require_caller(st.caller.as_ref())
            .map(|c| Caller(c.clone()))
            .map_err(|e| reject(e, st))
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

impl<S: ScopeName, St: Send + Sync> FromRequestParts<St> for RequireScope<S> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Self::Rejection> {
        let st = state(parts)?;
        require_scope(st.caller.as_ref(), S::SCOPE)
            .map(|c| RequireScope(c.clone(), PhantomData))
            .map_err(|e| reject(e, st))
    }
}
