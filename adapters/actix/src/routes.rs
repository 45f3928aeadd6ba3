//! The login and management routes: translation only. The routes, their
//! answers and every decision come from
//! [`Routes`](portcullis_adapter_kit::routes::Routes); the handlers copy requests in and
//! replies out.

use actix_web::web::{self, Bytes, PayloadConfig, ServiceConfig};
use actix_web::{HttpRequest, guard};
use portcullis_adapter_kit::routes::{Method, RouteRequest, Routes};
use portcullis_capabilities::{Capabilities, MAX_BODY_BYTES};
#[cfg(feature = "login")]
use portcullis_oidc::RelyingParty;

use crate::{Headers, reply_response, state, target};

/// easy-oauth's routes, to configure on an `App` or on a `Scope` under a
/// prefix of the application's choice
/// (`web::scope("/auth").configure(management_routes(caps))`):
///
/// - `GET /manage_capabilities/list?email=`
/// - `POST /manage_capabilities/add`, `/remove`, `/set` (only when
///   [`Capabilities::management_enabled`])
/// - `GET /token?user=bot@service` (a service token)
/// - `POST /token/revoke`
///
/// The routes need [`AuthMiddleware`](crate::AuthMiddleware) (letting requests
/// without credentials through, the default, so guests reach them and get
/// easy-oauth's answers).
/// Request bodies are limited to [`MAX_BODY_BYTES`] (413 beyond).
pub fn management_routes(caps: Capabilities) -> impl FnOnce(&mut ServiceConfig) {
    mount(Routes::management(caps))
}

/// easy-oauth's routes for a browser application, already under the
/// configured `prefix`, to configure on the `App`
/// (`app.configure(login_routes(rp))`):
///
/// - `GET /login`, `GET /auth`, `GET /logout`, `GET /token`
///   ([`RelyingParty`]'s methods of the same names), `POST /logout`
///   ([`RelyingParty::logout_post`]);
/// - `GET /manage_capabilities/list`, `POST /manage_capabilities/add`,
///   `/remove`, `/set`, `POST /token/revoke`.
///
/// The routes need [`AuthMiddleware::for_login`](crate::AuthMiddleware::for_login)
/// with the same relying party.
#[cfg(feature = "login")]
pub fn login_routes(rp: RelyingParty) -> impl FnOnce(&mut ServiceConfig) {
    mount(Routes::login(rp))
}

/// One actix-web resource per entry of `routes`, each answered by
/// [`Routes::dispatch`]. The method guards the resource, as
/// `ServiceConfig::route` does, so another method falls through to the
/// application's other routes.
fn mount(routes: Routes) -> impl FnOnce(&mut ServiceConfig) {
    move |cfg| {
        for route in routes.routes() {
            let path = routes.mount_path(route);
            let (routes, kind) = (routes.clone(), route.kind);
            let handler = move |req: HttpRequest, body: Bytes| {
                let routes = routes.clone();
                async move {
                    let st = match state(&req) {
                        Ok(st) => st,
                        Err(rejection) => return reply_response(rejection.0.to_reply()),
                    };
                    let req = RouteRequest {
                        caller: st.caller.as_ref(),
                        realm: st.gate.realm(),
                        query: req.uri().query(),
                        target: target(&req),
                        headers: &Headers(req.headers()),
                        body: &body,
                        peer: req.peer_addr().map(|a| a.ip()),
                    };
                    reply_response(routes.dispatch(kind, req).await)
                }
            };
            let resource = web::resource(path).app_data(PayloadConfig::new(MAX_BODY_BYTES));
            let resource = match route.method {
                Method::Get => resource.guard(guard::Get()),
                Method::Post => resource.guard(guard::Post()),
            };
            cfg.service(resource.to(handler));
        }
    }
}
