//! Capability checks and the capability management routes: translation only.
//!
//! Every decision, body check and JSON answer comes from
//! [`Capabilities`](portcullis_capabilities::Capabilities).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Query};
use axum::response::Response;
use axum::routing::{get, post};
use http::request::Parts;
use http::{HeaderName, HeaderValue, StatusCode};
use portcullis_capabilities::{Capabilities, JsonReply};
use portcullis_core::{Authenticated, Error};

use crate::{AuthRejection, AuthState, Headers, error_response, reject, state};

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
/// `redirect=True`); API callers still get 401. Needs [`AuthLayer::for_login`](crate::AuthLayer::for_login).
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
        tracing::error!("a capability extractor ran without AuthLayer::with_capabilities");
        reject(
            Error::config("AuthLayer::with_capabilities was not called"),
            st,
        )
    })
}

impl<C: CapabilityName, U: Unauthenticated, St: Send + Sync> FromRequestParts<St>
    for RequireCapability<C, U>
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Self::Rejection> {
        let st = state(parts)?;
        match service(st)?
            .require(st.caller.as_ref(), C::CAPABILITY)
            .await
        {
            Ok(()) => Ok(RequireCapability(st.caller.clone(), PhantomData)),
            Err(e) => {
                let mut rejection = reject(e, st);
                if U::REDIRECT
                    && st.caller.is_none()
                    && let Some(rp) = &st.login
                {
                    // Under `nest`, the router strips the prefix from `parts.uri`;
                    // the browser must come back to the full path.
                    let uri = parts
                        .extensions
                        .get::<axum::extract::OriginalUri>()
                        .map_or(&parts.uri, |o| &o.0);
                    let target = uri.path_and_query().map_or("/", |p| p.as_str());
                    rejection.redirect = rp.login_redirect(target, &Headers(&parts.headers));
                }
                Err(rejection)
            }
        }
    }
}

/// The caller and realm the layer left, for the management handlers.
pub(crate) struct Ctx {
    pub(crate) caller: Option<Authenticated>,
    pub(crate) realm: Arc<str>,
}

impl<St: Send + Sync> FromRequestParts<St> for Ctx {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Self::Rejection> {
        let st = state(parts)?;
        Ok(Ctx {
            caller: st.caller.clone(),
            realm: Arc::clone(&st.realm),
        })
    }
}

fn respond(outcome: Result<JsonReply, Error>, realm: &str) -> Response {
    match outcome {
        Ok(reply) => {
            let mut resp = Response::new(Body::from(reply.body));
            *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
            for (name, value) in JsonReply::HEADERS {
                resp.headers_mut().insert(
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                );
            }
            resp
        }
        Err(e) => error_response(&e, realm),
    }
}

type Params = Query<HashMap<String, String>>;

/// easy-oauth's routes, to nest under a prefix of the application's choice:
///
/// - `GET /manage_capabilities/list?email=`
/// - `POST /manage_capabilities/add`, `/remove`, `/set` (only when
///   [`Capabilities::management_enabled`])
/// - `GET /token?user=bot@service` (a service token)
/// - `POST /token/revoke`
///
/// The routes need [`AuthLayer`](crate::AuthLayer) (with auto-error off, so
/// guests reach them and get easy-oauth's answers).
pub fn management_routes<S>(caps: Capabilities) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let c = caps.clone();
    manage_routes(caps).route(
        "/token",
        get(move |ctx: Ctx, Query(q): Params| async move {
            let user = q.get("user").map(String::as_str);
            respond(
                c.issue_service_token(ctx.caller.as_ref(), user).await,
                &ctx.realm,
            )
        }),
    )
}

/// The management routes without `/token` (which the login routes answer).
pub(crate) fn manage_routes<S>(caps: Capabilities) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let c = caps.clone();
    let mut router = Router::new().route(
        "/manage_capabilities/list",
        get(move |ctx: Ctx, Query(q): Params| async move {
            let email = q.get("email").map(String::as_str);
            respond(c.list(ctx.caller.as_ref(), email).await, &ctx.realm)
        }),
    );
    if caps.management_enabled() {
        let c = caps.clone();
        router = router.route(
            "/manage_capabilities/add",
            post(move |ctx: Ctx, body: Bytes| async move {
                respond(c.add(ctx.caller.as_ref(), &body).await, &ctx.realm)
            }),
        );
        let c = caps.clone();
        router = router.route(
            "/manage_capabilities/remove",
            post(move |ctx: Ctx, body: Bytes| async move {
                respond(c.remove(ctx.caller.as_ref(), &body).await, &ctx.realm)
            }),
        );
        let c = caps.clone();
        router = router.route(
            "/manage_capabilities/set",
            post(move |ctx: Ctx, body: Bytes| async move {
                respond(c.set(ctx.caller.as_ref(), &body).await, &ctx.realm)
            }),
        );
    }
    let c = caps;
    router.route(
        "/token/revoke",
        post(move |ctx: Ctx, body: Bytes| async move {
            respond(c.revoke(ctx.caller.as_ref(), &body).await, &ctx.realm)
        }),
    )
}
