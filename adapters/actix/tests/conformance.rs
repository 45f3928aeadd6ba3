//! The shared conformance suite, run against actix-web.

use actix_web::web::{self, ServiceConfig};
use actix_web::{App, HttpResponse};
use portcullis_actix::portcullis_oidc::RelyingParty;
use portcullis_actix::{
    AuthMiddleware, Caller, LoginRedirect, RequireCapability, RequireScope, capability,
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

/// actix-web, as the conformance suite drives it.
pub(crate) struct Actix;

impl Adapter for Actix {
    fn name(&self) -> &'static str {
        "actix-web"
    }

    fn serve_login(&self, listener: std::net::TcpListener, rp: RelyingParty) -> Stop {
        let prefix = rp.config().prefix.clone();
        let factory = move || {
            let app = App::new()
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
                );
            if prefix.is_empty() {
                app.configure(login_routes(rp.clone()))
            } else {
                app.service(web::scope(&prefix).configure(login_routes(rp.clone())))
            }
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

    fn middleware_debug(&self, rp: RelyingParty) -> Vec<String> {
        vec![format!("{:?}", AuthMiddleware::for_login(rp))]
    }
}

portcullis_testing::conformance_tests!(Actix);
