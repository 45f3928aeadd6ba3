//! (feature `issuer`) [`issuer_routes`]: the endpoints of a
//! portcullis-issuer authorization server as actix-web resources.

use actix_web::HttpRequest;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::web::{self, Payload, ServiceConfig};
use futures_util::StreamExt as _;
use portcullis_issuer::form::MAX_FORM_BYTES;
use portcullis_issuer::{Issuer, IssuerRequest};

use crate::reply_response;

/// The body, or `None` when it cannot be read within [`MAX_FORM_BYTES`].
async fn read_bounded(mut payload: Payload) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.ok()?;
        if body.len() + chunk.len() > MAX_FORM_BYTES {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

/// The routes of `issuer` ([`Issuer::routes`]: discovery, JWKS, token,
/// revocation, introspection), each copying its request into
/// [`Issuer::handle`] and the answer out. Bodies are read up to
/// [`MAX_FORM_BYTES`]; past it the answer is [`Issuer::body_too_large`].
/// The peer address limits failed logins and becomes `issued_to`.
///
/// ```
/// # fn build() -> Result<(), portcullis_core::Error> {
/// use portcullis_issuer::{ClientConfig, Issuer, IssuerConfig};
/// let config = IssuerConfig::new("https://auth.example.com")
///     .with_client(ClientConfig::machine("reports", "a machine secret of 32 bytes or more", &["reports:read"]));
/// let issuer = Issuer::builder(config).build()?;
/// let app = actix_web::App::new().configure(portcullis_actix::issuer_routes(&issuer));
/// # let _ = app;
/// # Ok(()) }
/// # build().unwrap();
/// ```
pub fn issuer_routes(issuer: &Issuer) -> impl FnOnce(&mut ServiceConfig) {
    let issuer = issuer.clone();
    move |cfg| {
        for route in issuer.routes() {
            let (issuer, endpoint) = (issuer.clone(), route.endpoint);
            let handler = move |req: HttpRequest, payload: Payload| {
                let issuer = issuer.clone();
                async move {
                    let Some(body) = read_bounded(payload).await else {
                        return reply_response(Issuer::body_too_large());
                    };
                    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
                    let request = IssuerRequest {
                        content_type: header(CONTENT_TYPE),
                        authorization: header(AUTHORIZATION),
                        body: &body,
                        client_addr: req.peer_addr().map(|a| a.ip()),
                    };
                    reply_response(issuer.handle(endpoint, request).await)
                }
            };
            // One method per path; another method is 405, as on the other
            // frameworks.
            let method = if route.post { web::post() } else { web::get() };
            cfg.service(web::resource(route.path.clone()).route(method.to(handler)));
        }
    }
}
