//! The shared conformance suite, run against axum.

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use portcullis_axum::portcullis_oidc::RelyingParty;
use portcullis_axum::portcullis_policy::Policy;
use portcullis_axum::{
    AuthLayer, Caller, LoggedIn, LoginRedirect, RequireCapability, RequireScope, capability,
    login_routes, scope,
};
use portcullis_core::Authenticator;
use portcullis_testing::conformance::{self, Adapter, Stop};
use portcullis_testing::serve;

scope!(ReadScope = "read");
capability!(Read = "read");
capability!(Announce = "announce");

/// The routes both conformance applications share.
fn common() -> Router {
    Router::new()
        .route(
            "/",
            get(|c: Option<Caller>| async move { conformance::greeting(c.as_ref().map(|c| &c.0)) }),
        )
        .route(
            "/me",
            get(|Caller(c): Caller| async move {
                (
                    [("content-type", "application/json")],
                    conformance::me_json(&c),
                )
            }),
        )
        .route(
            "/scoped",
            get(|_: RequireScope<ReadScope>| async { "scoped" }),
        )
}

/// The conformance login application on axum (the login-flow tests use it too).
pub(crate) fn login_router(rp: RelyingParty) -> Router {
    let app = common()
        .route("/read", get(|_: RequireCapability<Read>| async { "read" }))
        .route(
            "/shout",
            get(|_: RequireCapability<Announce, LoginRedirect>| async { "shout" }),
        )
        .route(
            "/ensure",
            get(|LoggedIn(c): LoggedIn| async move { conformance::greeting(Some(&c)) }),
        )
        .route(
            "/note",
            post(|_: Caller| async { ([("content-type", "text/plain")], conformance::NOTED) }),
        )
        .route(
            "/cacheable",
            get(|c: Option<Caller>| async move {
                (
                    [
                        ("content-type", "text/plain"),
                        ("cache-control", conformance::CACHEABLE),
                    ],
                    conformance::greeting(c.as_ref().map(|c| &c.0)),
                )
            }),
        );
    app.route("/failing", get(|| async { "not reached" }))
        .merge(login_routes(rp.clone()))
        .layer(axum::middleware::from_fn(fail_inside))
        .layer(AuthLayer::for_login(rp))
}

/// Fails `GET /failing` inside the authentication layer.
async fn fail_inside(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if req.uri().path() == "/failing" {
        return (
            http::StatusCode::SERVICE_UNAVAILABLE,
            conformance::INNER_FAILURE,
        )
            .into_response();
    }
    next.run(req).await
}

/// The conformance policy application on axum: the layer added with
/// `Router::layer`, inside the router, where axum knows the matched route.
fn policy_router(auth: Authenticator, policy: Policy) -> Router {
    let layer = AuthLayer::new(auth)
        .with_policy(policy)
        .expect("no credential header chosen");
    Router::new()
        .route(
            "/",
            get(|c: Option<Caller>| async move { conformance::greeting(c.as_ref().map(|c| &c.0)) }),
        )
        .route("/health", get(|| async { "ok" }))
        .route("/health/deep", get(|| async { "deep" }))
        .route("/public/{file}", get(|| async { "public" }))
        .route("/files/{name}", get(|| async { "file" }))
        .route("/denied", get(|| async { "denied" }))
        .route(
            "/records",
            post(|body: axum::body::Bytes| async move { ([("content-type", "text/plain")], body) })
                .options(|| async { conformance::OPTIONS }),
        )
        .layer(layer)
}

fn serve(listener: std::net::TcpListener, app: Router) -> Stop {
    serve::axum(listener, app).expect("a tokio listener")
}

/// axum, as the conformance suite drives it.
pub(crate) struct Axum;

impl Adapter for Axum {
    fn name(&self) -> &'static str {
        "axum"
    }

    fn serve_login(&self, listener: std::net::TcpListener, rp: RelyingParty) -> Stop {
        serve(listener, login_router(rp))
    }

    fn serve_resource(&self, listener: std::net::TcpListener, auth: Authenticator) -> Stop {
        serve(listener, common().layer(AuthLayer::new(auth)))
    }

    fn serve_policy(
        &self,
        listener: std::net::TcpListener,
        auth: Authenticator,
        policy: Policy,
    ) -> Stop {
        serve(listener, policy_router(auth, policy))
    }

    fn serve_issuer(
        &self,
        listener: std::net::TcpListener,
        issuer: portcullis_axum::portcullis_issuer::Issuer,
    ) -> Stop {
        serve(listener, portcullis_axum::issuer_routes(&issuer))
    }

    fn middleware_debug(&self, rp: RelyingParty) -> Vec<String> {
        let layer = AuthLayer::for_login(rp);
        let service = tower::Layer::layer(&layer, ());
        vec![format!("{layer:?}"), format!("{service:?}")]
    }
}

portcullis_testing::conformance_tests!(Axum);
