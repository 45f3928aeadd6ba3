//! The login routes: translation only. Every decision and answer comes from
//! [`RelyingParty`].

use poem::endpoint::make;
use poem::{Request, Response, Route, get};
use portcullis_oidc::{RelyingParty, Reply};

use crate::capabilities::{Ctx, manage_routes};
use crate::{Headers, response};

/// Copies a [`Reply`] into a poem response (repeated headers kept).
pub fn reply_response(reply: Reply) -> Response {
    response(
        reply.status,
        reply.headers.iter().map(|(n, v)| (*n, v.as_str())),
        reply.body,
    )
}

/// The page as the browser asked for it, before any `nest` stripped its prefix.
fn target(req: &Request) -> &str {
    req.original_uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
}

/// easy-oauth's routes for a browser application, to nest under the
/// configured `prefix`; when the prefix is empty, add the application's own
/// routes to this [`Route`] instead (poem's routes do not merge):
///
/// - `GET /login`, `GET /auth`, `GET /logout`, `GET /token`
///   ([`RelyingParty`]'s methods of the same names);
/// - `GET /manage_capabilities/list`, `POST /manage_capabilities/add`,
///   `/remove`, `/set`, `POST /token/revoke`.
///
/// The routes need [`AuthMiddleware::for_login`](crate::AuthMiddleware::for_login)
/// with the same relying party.
pub fn login_routes(rp: RelyingParty) -> Route {
    let login = rp.clone();
    let callback = rp.clone();
    let logout = rp.clone();
    let routes = manage_routes(rp.capabilities());
    let token = rp;
    routes
        .at(
            "/login",
            get(make(move |req: Request| {
                let rp = login.clone();
                async move {
                    reply_response(rp.login(req.uri().query(), &Headers(req.headers())).await)
                }
            })),
        )
        .at(
            "/auth",
            get(make(move |req: Request| {
                let rp = callback.clone();
                async move {
                    reply_response(
                        rp.callback(req.uri().query(), &Headers(req.headers()))
                            .await,
                    )
                }
            })),
        )
        .at(
            "/logout",
            get(make(move |req: Request| {
                let rp = logout.clone();
                async move { reply_response(rp.logout(&Headers(req.headers())).await) }
            })),
        )
        .at(
            "/token",
            get(make(move |req: Request| {
                let rp = token.clone();
                async move {
                    let ctx = Ctx::of(&req)?;
                    Ok::<_, poem::Error>(reply_response(
                        rp.token(
                            ctx.caller.as_ref(),
                            req.uri().query(),
                            target(&req),
                            &Headers(req.headers()),
                        )
                        .await,
                    ))
                }
            })),
        )
}
