//! [`GrpcAuthLayer`]: authenticates every gRPC call with portcullis-core.
//!
//! gRPC metadata travels as HTTP/2 headers, so the layer reads
//! `authorization: Bearer ...` from the request's headers and has core's
//! [`Authenticator`] verify it, before the call reaches tonic's router:
//!
//! - a verified caller is stored in the request's extensions, where a service
//!   method finds it with `request.extensions().get::<Authenticated>()`;
//! - no credentials: the call goes on as anonymous when the authenticator
//!   lets guests through (`MissingCredentials::Guest`, the default: methods
//!   then decide), and is refused with `UNAUTHENTICATED` when it refuses
//!   them (`MissingCredentials::Refuse`);
//! - bad credentials, or a provider that cannot be reached: the call is
//!   answered at once with the status [`crate::status`] maps core's error to.
//!
//! Why a tower layer and not a tonic interceptor: verification is async (it
//! may fetch the issuer's keys), and tonic's interceptors are synchronous
//! functions. A tower layer awaits freely, sees every service behind the
//! server, and is what `tonic::transport::Server::layer` takes. The axum
//! adapter's `AuthLayer` is tower too, but answers with HTTP statuses and
//! JSON bodies, which gRPC clients read as a transport failure; this layer
//! answers with gRPC statuses instead.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use portcullis_core::{Authenticator, HeaderLookup};
use tower_layer::Layer;
use tower_service::Service;

use crate::status;

/// A tower layer that authenticates gRPC calls; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct GrpcAuthLayer {
    auth: Authenticator,
}

impl GrpcAuthLayer {
    /// A layer verifying credentials with `auth`.
    pub fn new(auth: Authenticator) -> Self {
        Self { auth }
    }
}

impl<S> Layer<S> for GrpcAuthLayer {
    type Service = GrpcAuth<S>;

    fn layer(&self, inner: S) -> GrpcAuth<S> {
        GrpcAuth {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service [`GrpcAuthLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct GrpcAuth<S> {
    inner: S,
    auth: Authenticator,
}

/// A request's headers (its gRPC metadata) as core reads them.
struct Metadata<'a>(&'a http::HeaderMap);

impl HeaderLookup for Metadata<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for GrpcAuth<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The clone that was driven to readiness serves this call; a fresh
        // clone stays for the next one.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let auth = self.auth.clone();
        Box::pin(async move {
            match auth.authenticate(&Metadata(request.headers())).await {
                Ok(Some(caller)) => {
                    request.extensions_mut().insert(caller);
                }
                Ok(None) => {}
                Err(error) => return Ok(status::from_error(&error).into_http()),
            }
            inner.call(request).await
        })
    }
}
