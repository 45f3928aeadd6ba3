//! The shared conformance suite, run against actix-web.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::web::{self, ServiceConfig};
use actix_web::{App, HttpResponse, HttpServer};
use portcullis_actix::portcullis_oidc::RelyingParty;
use portcullis_actix::{
    AuthMiddleware, Caller, LoginRedirect, RequireCapability, RequireScope, capability,
    login_routes, scope,
};
use portcullis_core::Authenticator;
use portcullis_testing::conformance::{self, Adapter, Stop};

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

/// Serves the application `factory` builds on `listener`, from a thread
/// running an actix system of its own.
fn serve<A, T, B>(listener: std::net::TcpListener, factory: A) -> Stop
where
    A: Fn() -> App<T> + Send + Clone + 'static,
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    let (started, handle) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(factory)
                .workers(1)
                .disable_signals()
                .listen(listener)
                .expect("actix-web serves the listener")
                .run();
            let _ = started.send(server.handle());
            let _ = server.await;
        });
    });
    let handle = handle.recv().expect("the actix-web server starts");
    Box::new(move || drop(handle.stop(false)))
}

/// actix-web, as the conformance suite drives it.
pub(crate) struct Actix;

impl Adapter for Actix {
    fn name(&self) -> &'static str {
        "actix-web"
    }

    fn serve_login(&self, listener: std::net::TcpListener, rp: RelyingParty) -> Stop {
        let prefix = rp.config().prefix.clone();
        serve(listener, move || {
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
                );
            if prefix.is_empty() {
                app.configure(login_routes(rp.clone()))
            } else {
                app.service(web::scope(&prefix).configure(login_routes(rp.clone())))
            }
        })
    }

    fn serve_resource(&self, listener: std::net::TcpListener, auth: Authenticator) -> Stop {
        serve(listener, move || {
            App::new()
                .wrap(AuthMiddleware::new(auth.clone()))
                .configure(common)
        })
    }
}

portcullis_testing::conformance_tests!(Actix);
