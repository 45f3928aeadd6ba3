//! Capability checks and the capability management routes: translation only.
//!
//! Every decision, body check and JSON answer comes from
//! [`Capabilities`](portcullis_capabilities::Capabilities).

use std::collections::HashMap;
use std::future::{Ready, ready};
use std::marker::PhantomData;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::web::{self, Bytes, Query, ServiceConfig};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use portcullis_capabilities::{Capabilities, JsonReply};
use portcullis_core::{Authenticated, Error};

use crate::{
    AuthRejection, AuthState, Headers, LocalFuture, copy_headers, error_response, reject, state,
    status,
};

/// A capability name, for [`RequireCapability`]. Declare one with [`capability!`](crate::capability!).
pub trait CapabilityName: Send + Sync + 'static {
    /// The capability.
    const CAPABILITY: &'static str;
}

/// Declares a [`CapabilityName`] type: `capability!(Write = "write");`.
#[macro_export]
macro_rules! capability {
    ($(#[$meta:meta])* $vis:vis $name:ident = $cap:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $name;
        impl $crate::CapabilityName for $name {
            const CAPABILITY: &'static str = $cap;
        }
    };
}

/// What [`RequireCapability`] does with a guest who lacks the capability.
pub trait Unauthenticated: Send + Sync + 'static {
    /// Whether a browser is sent to log in (and back) instead of a 401.
    const REDIRECT: bool;
}

/// Guests get 401 (the default): for APIs.
#[derive(Debug, Clone, Copy)]
pub struct Refuse;

impl Unauthenticated for Refuse {
    const REDIRECT: bool = false;
}

/// A browser guest is sent to `{prefix}/login` and back (easy-oauth's
/// `redirect=True`); API callers still get 401. Needs
/// [`AuthMiddleware::for_login`](crate::AuthMiddleware::for_login).
#[derive(Debug, Clone, Copy)]
pub struct LoginRedirect;

impl Unauthenticated for LoginRedirect {
    const REDIRECT: bool = true;
}

/// A caller holding capability `C`, as [`Capabilities::require`] decides: 401
/// for a guest without it (or, with `U` = [`LoginRedirect`], a redirect to
/// the login page for a browser), 403 `insufficient_scope` for a known
/// caller without it. Holds the caller, `None` for a guest the capability is
/// granted to.
#[derive(Debug, Clone)]
pub struct RequireCapability<C: CapabilityName, U: Unauthenticated = Refuse>(
    pub Option<Authenticated>,
    PhantomData<(C, U)>,
);

impl<C: CapabilityName, U: Unauthenticated> RequireCapability<C, U> {
    /// The caller, `None` for a guest.
    pub fn caller(&self) -> Option<&Authenticated> {
        self.0.as_ref()
    }
}

fn service(st: &AuthState) -> Result<&Capabilities, AuthRejection> {
    st.capabilities.as_ref().ok_or_else(|| {
        tracing::error!("a capability extractor ran without AuthMiddleware::with_capabilities");
        reject(
            Error::config("AuthMiddleware::with_capabilities was not called"),
            st,
        )
    })
}

impl<C: CapabilityName, U: Unauthenticated> FromRequest for RequireCapability<C, U> {
    type Error = AuthRejection;
    type Future = LocalFuture<Result<Self, AuthRejection>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let st = state(&req)?;
            match service(&st)?
                .require(st.caller.as_ref(), C::CAPABILITY)
                .await
            {
                Ok(()) => Ok(RequireCapability(st.caller.clone(), PhantomData)),
                Err(e) => {
                    let mut rejection = reject(e, &st);
                    if U::REDIRECT
                        && st.caller.is_none()
                        && let Some(rp) = &st.login
                    {
                        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
                        rejection.redirect = rp.login_redirect(target, &Headers(req.headers()));
                    }
                    Err(rejection)
                }
            }
        })
    }
}

/// The caller and realm the middleware left, for the management handlers.
pub(crate) struct Ctx {
    pub(crate) caller: Option<Authenticated>,
    pub(crate) realm: Arc<str>,
}

impl FromRequest for Ctx {
    type Error = AuthRejection;
    type Future = Ready<Result<Self, AuthRejection>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(state(req).map(|st| Ctx {
            caller: st.caller.clone(),
            realm: Arc::clone(&st.realm),
        }))
    }
}

fn respond(outcome: Result<JsonReply, Error>, realm: &str) -> HttpResponse {
    match outcome {
        Ok(reply) => {
            let mut resp =
                HttpResponse::with_body(status(reply.status), reply.body).map_into_boxed_body();
            copy_headers(&mut resp, JsonReply::HEADERS, false);
            resp
        }
        Err(e) => error_response(&e, realm),
    }
}

type Params = Query<HashMap<String, String>>;

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
/// The routes need [`AuthMiddleware`](crate::AuthMiddleware) (with
/// auto-error off, so guests reach them and get easy-oauth's answers).
pub fn management_routes(caps: Capabilities) -> impl FnOnce(&mut ServiceConfig) {
    move |cfg| {
        manage_routes(cfg, caps.clone());
        cfg.route(
            "/token",
            web::get().to(move |ctx: Ctx, Query(q): Params| {
                let c = caps.clone();
                async move {
                    let user = q.get("user").map(String::as_str);
                    respond(
                        c.issue_service_token(ctx.caller.as_ref(), user).await,
                        &ctx.realm,
                    )
                }
            }),
        );
    }
}

/// The management routes without `/token` (which the login routes answer).
pub(crate) fn manage_routes(cfg: &mut ServiceConfig, caps: Capabilities) {
    let c = caps.clone();
    cfg.route(
        "/manage_capabilities/list",
        web::get().to(move |ctx: Ctx, Query(q): Params| {
            let c = c.clone();
            async move {
                let email = q.get("email").map(String::as_str);
                respond(c.list(ctx.caller.as_ref(), email).await, &ctx.realm)
            }
        }),
    );
    if caps.management_enabled() {
        let c = caps.clone();
        cfg.route(
            "/manage_capabilities/add",
            web::post().to(move |ctx: Ctx, body: Bytes| {
                let c = c.clone();
                async move { respond(c.add(ctx.caller.as_ref(), &body).await, &ctx.realm) }
            }),
        );
        let c = caps.clone();
        cfg.route(
            "/manage_capabilities/remove",
            web::post().to(move |ctx: Ctx, body: Bytes| {
                let c = c.clone();
                async move { respond(c.remove(ctx.caller.as_ref(), &body).await, &ctx.realm) }
            }),
        );
        let c = caps.clone();
        cfg.route(
            "/manage_capabilities/set",
            web::post().to(move |ctx: Ctx, body: Bytes| {
                let c = c.clone();
                async move { respond(c.set(ctx.caller.as_ref(), &body).await, &ctx.realm) }
            }),
        );
    }
    cfg.route(
        "/token/revoke",
        web::post().to(move |ctx: Ctx, body: Bytes| {
            let c = caps.clone();
            async move { respond(c.revoke(ctx.caller.as_ref(), &body).await, &ctx.realm) }
        }),
    );
}
