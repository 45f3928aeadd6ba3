//! The shared conformance suite, run against actix-web.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::StatusCode;
use actix_web::middleware::{Next, from_fn};
use actix_web::web::{self, ServiceConfig};
use actix_web::{App, HttpResponse};
use portcullis_actix::portcullis_oidc::RelyingParty;
use portcullis_actix::portcullis_policy::Policy;
use portcullis_actix::{
    AuthMiddleware, Caller, LoggedIn, LoginRedirect, RequireCapability, RequireScope, capability,
    login_routes, scope,
};
use portcullis_core::Authenticator;
use portcullis_testing::conformance::{self, Adapter, Stop};
use portcullis_testing::serve;

scope!(ReadScope = "read");
capability!(Read = "read");
capability!(Announce = "announce");

/// The routes both conformance applications share.
fn common(cfg: &mut ServiceConfig) {
    cfg.route(
        "/",
        web::get()
            .to(|c: Option<Caller>| async move { conformance::greeting(c.as_ref().map(|c| &c.0)) }),
    )
    .route(
        "/me",
        web::get().to(|Caller(c): Caller| async move {
            HttpResponse::Ok()
                .content_type("application/json")
                .body(conformance::me_json(&c))
        }),
    )
    .route(
        "/scoped",
        web::get().to(|_: RequireScope<ReadScope>| async { "scoped" }),
    );
}

/// Fails `GET /failing` inside the authentication middleware, with an
/// error rather than a response.
async fn fail_inside(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.path() == "/failing" {
        return Err(InternalError::new(
            conformance::INNER_FAILURE,
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .into());
    }
    next.call(req).await
}

/// actix-web, as the conformance suite drives it.
pub(crate) struct Actix;

impl Adapter for Actix {
    fn name(&self) -> &'static str {
        "actix-web"
    }

    fn serve_login(&self, listener: std::net::TcpListener, rp: RelyingParty) -> Stop {
        let factory = move || {
            App::new()
                .wrap(from_fn(fail_inside))
                .wrap(AuthMiddleware::for_login(rp.clone()))
                .configure(common)
                .route(
                    "/read",
                    web::get().to(|_: RequireCapability<Read>| async { "read" }),
                )
                .route(
                    "/shout",
                    web::get()
                        .to(|_: RequireCapability<Announce, LoginRedirect>| async { "shout" }),
                )
                .route(
                    "/ensure",
                    web::get()
                        .to(|LoggedIn(c): LoggedIn| async move { conformance::greeting(Some(&c)) }),
                )
                .route(
                    "/note",
                    web::post().to(|_: Caller| async {
                        HttpResponse::Ok()
                            .content_type("text/plain")
                            .body(conformance::NOTED)
                    }),
                )
                .route(
                    "/cacheable",
                    web::get().to(|c: Option<Caller>| async move {
                        HttpResponse::Ok()
                            .content_type("text/plain")
                            .insert_header(("cache-control", conformance::CACHEABLE))
                            .body(conformance::greeting(c.as_ref().map(|c| &c.0)))
                    }),
                )
                .route("/failing", web::get().to(|| async { "not reached" }))
                .configure(login_routes(rp.clone()))
        };
        serve::actix(listener, factory).expect("the actix-web server starts")
    }

    fn serve_resource(&self, listener: std::net::TcpListener, auth: Authenticator) -> Stop {
        let factory = move || {
            App::new()
                .wrap(AuthMiddleware::new(auth.clone()))
                .configure(common)
        };
        serve::actix(listener, factory).expect("the actix-web server starts")
    }

    fn serve_policy(
        &self,
        listener: std::net::TcpListener,
        auth: Authenticator,
        policy: Policy,
    ) -> Stop {
        let middleware = AuthMiddleware::new(auth)
            .with_policy(policy)
            .expect("no credential header chosen");
        let factory = move || {
            App::new()
                .wrap(middleware.clone())
                .route(
                    "/",
                    web::get().to(|c: Option<Caller>| async move {
                        conformance::greeting(c.as_ref().map(|c| &c.0))
                    }),
                )
                .route("/health", web::get().to(|| async { "ok" }))
                .route("/health/deep", web::get().to(|| async { "deep" }))
                .route("/public/{file}", web::get().to(|| async { "public" }))
                .route("/files/{name}", web::get().to(|| async { "file" }))
                .route("/denied", web::get().to(|| async { "denied" }))
                .route(
                    "/records",
                    web::post().to(|body: web::Bytes| async move {
                        HttpResponse::Ok().content_type("text/plain").body(body)
                    }),
                )
                .route(
                    "/records",
                    web::method(actix_web::http::Method::OPTIONS)
                        .to(|| async { conformance::OPTIONS }),
                )
        };
        serve::actix(listener, factory).expect("the actix-web server starts")
    }

    fn serve_issuer(
        &self,
        listener: std::net::TcpListener,
        issuer: portcullis_actix::portcullis_issuer::Issuer,
    ) -> Stop {
        let factory = move || App::new().configure(portcullis_actix::issuer_routes(&issuer));
        serve::actix(listener, factory).expect("the actix-web server starts")
    }

    fn middleware_debug(&self, rp: RelyingParty) -> Vec<String> {
        vec![format!("{:?}", AuthMiddleware::for_login(rp))]
    }
}

portcullis_testing::conformance_tests!(Actix);
