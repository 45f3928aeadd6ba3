//! The login and management routes: translation only. The routes, their
//! answers and every decision come from
//! [`Routes`](portcullis_adapter_kit::routes::Routes); the handlers copy requests in and
//! replies out.

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use http::request::Parts;
use portcullis_adapter_kit::routes::{Method, RouteRequest, Routes};
use portcullis_capabilities::{Capabilities, MAX_BODY_BYTES};
#[cfg(feature = "login")]
use portcullis_oidc::RelyingParty;

use crate::{Headers, original_uri, reply_response, state, target};

/// easy-oauth's routes, to nest under a prefix of the application's choice:
///
/// - `GET /manage_capabilities/list?email=`
/// - `POST /manage_capabilities/add`, `/remove`, `/set` (only when
///   [`Capabilities::management_enabled`])
/// - `GET /token?user=bot@service` (a service token)
/// - `POST /token/revoke`
///
/// The routes need [`AuthLayer`](crate::AuthLayer) (letting requests without
/// credentials through, the default, so guests reach them and get
/// easy-oauth's answers). Request bodies are limited to [`MAX_BODY_BYTES`]
/// (413 beyond).
pub fn management_routes<S>(caps: Capabilities) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    mount(&Routes::management(caps))
}

/// easy-oauth's routes for a browser application, already under the
/// configured `prefix` (merge them: `app.merge(login_routes(rp))`):
///
/// - `GET /login`, `GET /auth`, `GET /logout`, `GET /token`
///   ([`RelyingParty`]'s methods of the same names), `POST /logout`
///   ([`RelyingParty::logout_post`]);
/// - `GET /manage_capabilities/list`, `POST /manage_capabilities/add`,
///   `/remove`, `/set`, `POST /token/revoke`.
///
/// The router needs [`AuthLayer::for_login`](crate::AuthLayer::for_login)
/// with the same relying party.
#[cfg(feature = "login")]
pub fn login_routes<S>(rp: RelyingParty) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    mount(&Routes::login(rp))
}

/// One axum route per entry of `routes`, each answered by [`Routes::dispatch`].
fn mount<S>(routes: &Routes) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut router = Router::new();
    for route in routes.routes() {
        let path = routes.mount_path(route);
        let (routes, kind) = (routes.clone(), route.kind);
        let handler = move |parts: Parts, body: Bytes| async move {
            let st = match state(&parts) {
                Ok(st) => st,
                Err(rejection) => return rejection.into_response(),
            };
            let uri = original_uri(&parts);
            let req = RouteRequest {
                caller: st.caller.as_ref(),
                realm: st.gate.realm(),
                query: uri.query(),
                target: target(uri),
                headers: &Headers(&parts.headers),
                body: &body,
                peer: parts
                    .extensions
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|c| c.0.ip()),
            };
            reply_response(routes.dispatch(kind, req).await)
        };
        let method = match route.method {
            Method::Get => get(handler),
            Method::Post => post(handler),
        };
        router = router.route(&path, method);
    }
    router.layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}
