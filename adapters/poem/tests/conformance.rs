//! The shared conformance suite, run against poem.

use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get, handler, post};
use portcullis_core::Authenticator;
use portcullis_poem::portcullis_oidc::RelyingParty;
use portcullis_poem::portcullis_policy::Policy;
use portcullis_poem::{
    AuthMiddleware, Caller, LoggedIn, LoginRedirect, RequireCapability, RequireScope, capability,
    login_routes, scope,
};
use portcullis_testing::conformance::{self, Adapter, Stop};
use portcullis_testing::serve;

scope!(ReadScope = "read");
capability!(Read = "read");
capability!(Announce = "announce");

#[handler]
async fn home(caller: Option<Caller>) -> String {
    conformance::greeting(caller.as_ref().map(|c| &c.0))
}

#[handler]
async fn me(Caller(caller): Caller) -> Response {
    Response::builder()
        .content_type("application/json")
        .body(conformance::me_json(&caller))
}

#[handler]
async fn scoped(_: RequireScope<ReadScope>) -> &'static str {
    "scoped"
}

#[handler]
async fn read(_: RequireCapability<Read>) -> &'static str {
    "read"
}

#[handler]
async fn shout(_: RequireCapability<Announce, LoginRedirect>) -> &'static str {
    "shout"
}

#[handler]
async fn ensure(LoggedIn(caller): LoggedIn) -> String {
    conformance::greeting(Some(&caller))
}

#[handler]
async fn note(_: Caller) -> Response {
    Response::builder()
        .content_type("text/plain")
        .body(conformance::NOTED)
}

#[handler]
async fn cacheable(caller: Option<Caller>) -> Response {
    Response::builder()
        .content_type("text/plain")
        .header("cache-control", conformance::CACHEABLE)
        .body(conformance::greeting(caller.as_ref().map(|c| &c.0)))
}

#[handler]
async fn not_reached() -> &'static str {
    "not reached"
}

#[handler]
async fn ok() -> &'static str {
    "ok"
}

#[handler]
async fn deep() -> &'static str {
    "deep"
}

#[handler]
async fn public() -> &'static str {
    "public"
}

#[handler]
async fn file() -> &'static str {
    "file"
}

#[handler]
async fn denied() -> &'static str {
    "denied"
}

#[handler]
async fn record(body: Vec<u8>) -> Response {
    Response::builder().content_type("text/plain").body(body)
}

#[handler]
async fn record_options() -> &'static str {
    conformance::OPTIONS
}

/// The conformance policy application on poem: the middleware wraps each
/// routed endpoint, where poem has recorded the matched pattern.
pub(crate) fn policy_app(auth: Authenticator, policy: Policy) -> impl Endpoint + 'static {
    let mw = AuthMiddleware::new(auth)
        .with_policy(policy)
        .expect("no credential header chosen");
    Route::new()
        .at("/", get(home).with(mw.clone()))
        .at("/health", get(ok).with(mw.clone()))
        .at("/health/deep", get(deep).with(mw.clone()))
        .at("/public/:file", get(public).with(mw.clone()))
        .at("/files/:name", get(file).with(mw.clone()))
        .at("/denied", get(denied).with(mw.clone()))
        .at("/records", post(record).options(record_options).with(mw))
}

/// The routes both conformance applications share, added to `route`.
fn common(route: Route) -> Route {
    route
        .at("/", get(home))
        .at("/me", get(me))
        .at("/scoped", get(scoped))
}

/// The conformance login application on poem.
pub(crate) fn login_app(rp: RelyingParty) -> impl Endpoint + 'static {
    // poem has no merge: the application's routes are added to the login
    // routes themselves.
    common(login_routes(rp.clone()))
        .at("/read", get(read))
        .at("/shout", get(shout))
        .at("/ensure", get(ensure))
        .at("/note", post(note))
        .at("/cacheable", get(cacheable))
        .at("/failing", get(not_reached))
        .around(|ep, req| async move {
            // Fails `GET /failing` inside the authentication middleware.
            if req.uri().path() == "/failing" {
                return Err(poem::Error::from_string(
                    conformance::INNER_FAILURE,
                    poem::http::StatusCode::SERVICE_UNAVAILABLE,
                ));
            }
            ep.call(req).await.map(IntoResponse::into_response)
        })
        .with(AuthMiddleware::for_login(rp))
}

pub(crate) fn serve(listener: std::net::TcpListener, ep: impl Endpoint + 'static) -> Stop {
    serve::poem(listener, ep).expect("a tokio listener")
}

/// poem, as the conformance suite drives it.
pub(crate) struct Poem;

impl Adapter for Poem {
    fn name(&self) -> &'static str {
        "poem"
    }

    fn serve_login(&self, listener: std::net::TcpListener, rp: RelyingParty) -> Stop {
        serve(listener, login_app(rp))
    }

    fn serve_resource(&self, listener: std::net::TcpListener, auth: Authenticator) -> Stop {
        serve(
            listener,
            common(Route::new()).with(AuthMiddleware::new(auth)),
        )
    }

    fn serve_policy(
        &self,
        listener: std::net::TcpListener,
        auth: Authenticator,
        policy: Policy,
    ) -> Stop {
        serve(listener, policy_app(auth, policy))
    }

    fn serve_issuer(
        &self,
        listener: std::net::TcpListener,
        issuer: portcullis_poem::portcullis_issuer::Issuer,
    ) -> Stop {
        serve(listener, portcullis_poem::issuer_routes(&issuer))
    }

    fn middleware_debug(&self, rp: RelyingParty) -> Vec<String> {
        vec![format!("{:?}", AuthMiddleware::for_login(rp))]
    }
}

portcullis_testing::conformance_tests!(Poem);
