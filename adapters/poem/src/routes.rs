//! The login and management routes: translation only. The routes, their
//! answers and every decision come from
//! [`Routes`](portcullis_adapter_kit::routes::Routes); the handlers copy requests in and
//! replies out.

use poem::endpoint::make;
use poem::{Request, Route, RouteMethod};
use portcullis_adapter_kit::routes::{Method, RouteRequest, Routes};
use portcullis_capabilities::{Capabilities, MAX_BODY_BYTES};
#[cfg(feature = "login")]
use portcullis_oidc::RelyingParty;

use crate::{Headers, reply_response, state, target};

/// easy-oauth's routes, to nest under a prefix of the application's choice:
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
pub fn management_routes(caps: Capabilities) -> Route {
    mount(&Routes::management(caps))
}

/// easy-oauth's routes for a browser application, already under the
/// configured `prefix`: add the application's own routes to this
/// [`Route`] (poem's routes do not merge):
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
pub fn login_routes(rp: RelyingParty) -> Route {
    mount(&Routes::login(rp))
}

/// One poem route per path of `routes` (a path may have several methods),
/// each method answered by [`Routes::dispatch`].
fn mount(routes: &Routes) -> Route {
    let mut paths: Vec<(String, RouteMethod)> = Vec::new();
    for route in routes.routes() {
        let path = routes.mount_path(route);
        let (routes, kind) = (routes.clone(), route.kind);
        let endpoint = make(move |mut req: Request| {
            let routes = routes.clone();
            async move {
                let body = req.take_body();
                let st = state(&req)?;
                let body = body.into_bytes_limit(MAX_BODY_BYTES).await?;
                let req = RouteRequest {
                    caller: st.caller.as_ref(),
                    realm: st.gate.realm(),
                    query: req.uri().query(),
                    target: target(&req),
                    headers: &Headers(req.headers()),
                    body: &body,
                    peer: req.remote_addr().as_socket_addr().map(|a| a.ip()),
                };
                Ok::<_, poem::Error>(reply_response(routes.dispatch(kind, req).await))
            }
        });
        let i = match paths.iter().position(|(p, _)| *p == path) {
            Some(i) => i,
            None => {
                paths.push((path, RouteMethod::new()));
                paths.len() - 1
            }
        };
        let (path, methods) = paths.swap_remove(i);
        let methods = match route.method {
            Method::Get => methods.get(endpoint),
            Method::Post => methods.post(endpoint),
        };
        paths.push((path, methods));
    }
    paths
        .into_iter()
        .fold(Route::new(), |mounted, (path, methods)| {
            mounted.at(path, methods)
        })
}
