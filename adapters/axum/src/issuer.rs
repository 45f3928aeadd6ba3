//! (feature `issuer`) [`issuer_routes`]: the endpoints of a
//! portcullis-issuer authorization server as axum routes.

use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::request::Parts;
use portcullis_issuer::form::MAX_FORM_BYTES;
use portcullis_issuer::{Issuer, IssuerRequest};

use crate::reply_response;

/// The routes of `issuer` ([`Issuer::routes`]: discovery, JWKS, token,
/// revocation, introspection), each copying its request into
/// [`Issuer::handle`] and the answer out. Bodies are read up to
/// [`MAX_FORM_BYTES`]; past it the answer is [`Issuer::body_too_large`].
///
/// Mount them at the path of the issuer URL (its root, usually). Serve the
/// router with `into_make_service_with_connect_info::<SocketAddr>()` so that
/// failed logins are limited per client address too (without it, per
/// account only) and tokens carry `issued_to`.
///
/// ```
/// # fn build() -> Result<(), portcullis_core::Error> {
/// use portcullis_issuer::{ClientConfig, Issuer, IssuerConfig};
/// let config = IssuerConfig::new("https://auth.example.com")
///     .with_client(ClientConfig::machine("reports", "a machine secret of 32 bytes or more", &["reports:read"]));
/// let app: axum::Router = portcullis_axum::issuer_routes(&Issuer::builder(config).build()?);
/// # Ok(()) }
/// # build().unwrap();
/// ```
pub fn issuer_routes<S>(issuer: &Issuer) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut router = Router::new();
    for route in issuer.routes() {
        let (issuer, endpoint) = (issuer.clone(), route.endpoint);
        let handler = move |parts: Parts, body: Body| async move {
            let Ok(body) = to_bytes(body, MAX_FORM_BYTES).await else {
                return reply_response(Issuer::body_too_large());
            };
            let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
            let request = IssuerRequest {
                content_type: header(CONTENT_TYPE),
                authorization: header(AUTHORIZATION),
                body: &body,
                client_addr: parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip()),
            };
            reply_response(issuer.handle(endpoint, request).await)
        };
        router = if route.post {
            router.route(&route.path, post(handler))
        } else {
            router.route(&route.path, get(handler))
        };
    }
    router
}
