//! The login routes: translation only. Every decision and answer comes from
//! [`RelyingParty`].

use axum::Router;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::Response;
use axum::routing::get;
use http::request::Parts;
use http::{HeaderName, HeaderValue, StatusCode, Uri};
use portcullis_oidc::{RelyingParty, Reply};

use crate::capabilities::{Ctx, manage_routes};
use crate::{AuthRejection, Headers};

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

/// The request's headers and target, for the login handlers.
struct Request {
    headers: http::HeaderMap,
    uri: Uri,
}

impl<St: Send + Sync> FromRequestParts<St> for Request {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Self::Rejection> {
        Ok(Request {
            headers: parts.headers.clone(),
            // Under `nest` the router strips the prefix from `parts.uri`.
            uri: parts
                .extensions
                .get::<axum::extract::OriginalUri>()
                .map_or_else(|| parts.uri.clone(), |o| o.0.clone()),
        })
    }
}

impl Request {
    fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    fn target(&self) -> &str {
        self.uri.path_and_query().map_or("/", |p| p.as_str())
    }
}

/// easy-oauth's routes for a browser application, to nest under the
/// configured `prefix`:
///
/// - `GET /login`, `GET /auth`, `GET /logout`, `GET /token`
///   ([`RelyingParty`]'s methods of the same names);
/// - `GET /manage_capabilities/list`, `POST /manage_capabilities/add`,
///   `/remove`, `/set`, `POST /token/revoke`.
///
/// The router needs [`AuthLayer::for_login`](crate::AuthLayer::for_login)
/// with the same relying party.
pub fn login_routes<S>(rp: RelyingParty) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let caps = rp.capabilities().clone();
    let login = rp.clone();
    let callback = rp.clone();
    let logout = rp.clone();
    let token = rp;
    manage_routes(caps)
        .route(
            "/login",
            get(move |req: Request| async move {
                reply_response(login.login(req.query(), &Headers(&req.headers)).await)
            }),
        )
        .route(
            "/auth",
            get(move |req: Request| async move {
                reply_response(callback.callback(req.query(), &Headers(&req.headers)).await)
            }),
        )
        .route(
            "/logout",
            get(move |req: Request| async move {
                reply_response(logout.logout(&Headers(&req.headers)).await)
            }),
        )
        .route(
            "/token",
            get(move |ctx: Ctx, req: Request| async move {
                reply_response(
                    token
                        .token(
                            ctx.caller.as_ref(),
                            req.query(),
                            req.target(),
                            &Headers(&req.headers),
                        )
                        .await,
                )
            }),
        )
}
