//! (feature `issuer`) [`issuer_routes`]: the endpoints of a
//! portcullis-issuer authorization server as a poem `Route`.

use poem::http::header::{AUTHORIZATION, CONTENT_TYPE};
use poem::{Request, Route, RouteMethod, endpoint::make};
use portcullis_issuer::form::MAX_FORM_BYTES;
use portcullis_issuer::{Issuer, IssuerRequest};

use crate::reply_response;

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
/// let app: poem::Route = portcullis_poem::issuer_routes(&Issuer::builder(config).build()?);
/// # let _ = app;
/// # Ok(()) }
/// # build().unwrap();
/// ```
pub fn issuer_routes(issuer: &Issuer) -> Route {
    let mut route_table = Route::new();
    for route in issuer.routes() {
        let (issuer, endpoint) = (issuer.clone(), route.endpoint);
        let handler = make(move |mut req: Request| {
            let issuer = issuer.clone();
            async move {
                let body = req.take_body();
                let Ok(body) = body.into_bytes_limit(MAX_FORM_BYTES).await else {
                    return Ok::<_, poem::Error>(reply_response(Issuer::body_too_large()));
                };
                let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
                let request = IssuerRequest {
                    content_type: header(CONTENT_TYPE),
                    authorization: header(AUTHORIZATION),
                    body: &body,
                    client_addr: req.remote_addr().as_socket_addr().map(|a| a.ip()),
                };
                Ok(reply_response(issuer.handle(endpoint, request).await))
            }
        });
        // Each path has one method: the issuer's routes never share a path.
        let methods = if route.post {
            RouteMethod::new().post(handler)
        } else {
            RouteMethod::new().get(handler)
        };
        route_table = route_table.at(route.path.clone(), methods);
    }
    route_table
}
