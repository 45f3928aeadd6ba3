//! The application of easy-oauth's README, on poem with portcullis.
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
//!
//! The configuration file and the user file are the axum example's
//! (`examples/axum/config.example.yaml` and `caps.yaml`).

use std::collections::HashMap;

use poem::web::Query;
use poem::{EndpointExt, Route, get, handler, post};
use portcullis_poem::portcullis_core::Authenticated;
use portcullis_poem::portcullis_oidc::{OidcConfig, RelyingParty};
use portcullis_poem::{
    AuthEndpoint, AuthMiddleware, Caller, LoginRedirect, RequireCapability, capability,
    login_routes,
};

capability!(Read = "read");
capability!(Write = "write");
capability!(Announce = "announce");

/// The configuration file of this example (easy-oauth's format): see
/// `examples/axum/config.example.yaml`.
pub type ExampleConfig = OidcConfig;

/// The configuration file the example ships, the axum example's
/// `config.example.yaml`: its secrets are placeholders, to be set in the
/// environment.
pub const CONFIG_FILE: &str = include_str!("../../axum/config.example.yaml");

/// The user file the example ships, the axum example's `caps.yaml`: who
/// holds which capabilities.
pub const USER_FILE: &str = include_str!("../../axum/caps.yaml");

/// The application around a relying party.
pub fn app(rp: RelyingParty) -> AuthEndpoint<Route> {
    // poem's routes do not merge: the pages are added to the login routes
    // (which sit under the configured prefix) themselves.
    login_routes(rp.clone())
        .at("/", get(home))
        .at("/read", get(read))
        .at("/write", post(write))
        .at("/shout", get(shout))
        .with(AuthMiddleware::for_login(rp))
}

#[handler]
async fn home(caller: Option<Caller>) -> String {
    match caller {
        Some(Caller(caller)) => format!("Hello, {}!\n", name(Some(&caller))),
        None => "Hello, guest! Log in at /login\n".to_owned(),
    }
}

#[handler]
async fn read(c: RequireCapability<Read>) -> String {
    format!("{} reads the news\n", name(c.caller()))
}

#[handler]
async fn write(c: RequireCapability<Write>, body: String) -> String {
    format!("{} wrote {} bytes\n", name(c.caller()), body.len())
}

#[handler]
async fn shout(
    c: RequireCapability<Announce, LoginRedirect>,
    Query(q): Query<HashMap<String, String>>,
) -> String {
    let message = q.get("message").map_or("", String::as_str);
    format!("{} shouts {message:?}\n", name(c.caller()))
}

/// How the pages name a caller: its email, else its user id.
fn name(caller: Option<&Authenticated>) -> &str {
    caller.map_or("a guest", |c| {
        c.principal.email().unwrap_or(c.principal.user_id())
    })
}
