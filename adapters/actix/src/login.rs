//! The login routes: translation only. Every decision and answer comes from
//! [`RelyingParty`].

use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use portcullis_oidc::{RelyingParty, Reply};

use crate::capabilities::{Ctx, manage_routes};
use crate::{Headers, copy_headers, status};

/// Copies a [`Reply`] into an actix-web response (repeated headers kept).
pub fn reply_response(reply: Reply) -> HttpResponse {
    let mut resp = HttpResponse::with_body(status(reply.status), reply.body).map_into_boxed_body();
    copy_headers(&mut resp, reply.headers, true);
    resp
}

/// The request's query string, `None` without a `?`.
fn query(req: &HttpRequest) -> Option<&str> {
    req.uri().query()
}

/// The request's path and query, as the browser asked for it.
fn target(req: &HttpRequest) -> &str {
    req.uri().path_and_query().map_or("/", |p| p.as_str())
}

/// easy-oauth's routes for a browser application, to configure on the `App`
/// (empty prefix) or on a `Scope` at the configured `prefix`
/// (`web::scope(&prefix).configure(login_routes(rp))`):
///
/// - `GET /login`, `GET /auth`, `GET /logout`, `GET /token`
///   ([`RelyingParty`]'s methods of the same names);
/// - `GET /manage_capabilities/list`, `POST /manage_capabilities/add`,
///   `/remove`, `/set`, `POST /token/revoke`.
///
/// The routes need [`AuthMiddleware::for_login`](crate::AuthMiddleware::for_login)
/// with the same relying party.
pub fn login_routes(rp: RelyingParty) -> impl FnOnce(&mut ServiceConfig) {
    move |cfg| {
        manage_routes(cfg, rp.capabilities().clone());
        let login = rp.clone();
        cfg.route(
            "/login",
            web::get().to(move |req: HttpRequest| {
                let rp = login.clone();
                async move { reply_response(rp.login(query(&req), &Headers(req.headers())).await) }
            }),
        );
        let callback = rp.clone();
        cfg.route(
            "/auth",
            web::get().to(move |req: HttpRequest| {
                let rp = callback.clone();
                async move {
                    reply_response(rp.callback(query(&req), &Headers(req.headers())).await)
                }
            }),
        );
        let logout = rp.clone();
        cfg.route(
            "/logout",
            web::get().to(move |req: HttpRequest| {
                let rp = logout.clone();
                async move { reply_response(rp.logout(&Headers(req.headers())).await) }
            }),
        );
        cfg.route(
            "/token",
            web::get().to(move |ctx: Ctx, req: HttpRequest| {
                let rp = rp.clone();
                async move {
                    reply_response(
                        rp.token(
                            ctx.caller.as_ref(),
                            query(&req),
                            target(&req),
                            &Headers(req.headers()),
                        )
                        .await,
                    )
                }
            }),
        );
    }
}
