//! The application of easy-oauth's README, on actix-web with portcullis:
//! the same application as `example-axum`, with the same configuration file.
//!
//! Capabilities `read`, `write -> read`, `moderate -> read, write`,
//! `announce -> read, write`, `user_management`, and `admin` (which implies
//! them all); every logged-in user holds `read`; assignments live in a
//! `caps.yaml` user file.
//!
//! Routes:
//! - `GET /`: greets the caller, or a guest;
//! - `GET /read`: needs `read`;
//! - `POST /write`: needs `write`;
//! - `GET /shout?message=`: needs `announce`; a browser that is not logged in
//!   is sent to log in and back;
//! - `GET /login`, `/auth`, `/logout`, `/token`, `/manage_capabilities/*`,
//!   `POST /logout`, `/token/revoke` (under the configured `prefix`).
//!
//! A state-changing request authenticated by the session cookie (`POST
//! /write` from a browser) must come from the application's own pages:
//! another site's form, even on a sibling subdomain, is refused with 403.
//!
//! As bearer tokens it accepts portcullis' own (`/token`, service tokens)
//! and the provider's JWT access tokens for the configured `audience`.

use std::collections::HashMap;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::web::{self, Query};
use actix_web::{App, Error};
use portcullis_actix::portcullis_oidc::{OidcConfig, RelyingParty};
use portcullis_actix::{
    AuthMiddleware, Caller, LoginRedirect, RequireCapability, capability, login_routes,
};
use portcullis_testing::demo::{self, Files};

capability!(Read = "read");
capability!(Write = "write");
capability!(Announce = "announce");

/// The configuration file of this example (easy-oauth's format): see
/// `examples/axum/config.example.yaml`, which both examples read.
pub type ExampleConfig = OidcConfig;

/// The example's configuration file and user file: the axum example's.
pub const FILES: Files = Files {
    config: include_str!("../../axum/config.example.yaml"),
    users: include_str!("../../axum/caps.yaml"),
};

/// The application around a relying party. actix-web builds one per
/// worker: call it from the `HttpServer::new` factory with a clone of `rp`.
pub fn app(
    rp: RelyingParty,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    App::new()
        .wrap(AuthMiddleware::for_login(rp.clone()))
        .route("/", web::get().to(home))
        .route("/read", web::get().to(read))
        .route("/write", web::post().to(write))
        .route("/shout", web::get().to(shout))
        .configure(login_routes(rp))
}

async fn home(caller: Option<Caller>) -> String {
    demo::greeting(caller.as_ref().map(|c| &c.0))
}

async fn read(c: RequireCapability<Read>) -> String {
    demo::read(c.caller())
}

async fn write(c: RequireCapability<Write>, body: String) -> String {
    demo::write(c.caller(), body.len())
}

async fn shout(
    c: RequireCapability<Announce, LoginRedirect>,
    Query(q): Query<HashMap<String, String>>,
) -> String {
    demo::shout(c.caller(), q.get("message").map_or("", String::as_str))
}
