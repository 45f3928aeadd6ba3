//! Capability checks and the capability management routes: translation only.
//!
//! Every decision, body check and JSON answer comes from
//! [`Capabilities`](portcullis_capabilities::Capabilities).

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use poem::endpoint::make;
use poem::{Request, RequestBody, Response, Route, get, post};
use portcullis_capabilities::{Capabilities, JsonReply};
use portcullis_core::{Authenticated, Error};

use crate::{AuthRejection, AuthState, Headers, error_response, reject, response, state};

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
    st.shared.capabilities.as_ref().ok_or_else(|| {
        tracing::error!("a capability extractor ran without AuthMiddleware::with_capabilities");
        reject(
            Error::config("AuthMiddleware::with_capabilities was not called"),
            st,
        )
    })
}

/// Has [`Capabilities::require`] decide whether the request's caller holds
/// `capability`; `redirect` sends a browser guest to log in instead of a 401.
pub(crate) async fn require_capability(
    req: &Request,
    capability: &str,
    redirect: bool,
) -> Result<Option<Authenticated>, AuthRejection> {
    let st = state(req)?;
    match service(st)?.require(st.caller.as_ref(), capability).await {
        Ok(()) => Ok(st.caller.clone()),
        Err(e) => {
            let mut rejection = reject(e, st);
            if redirect
                && st.caller.is_none()
                && let Some(rp) = &st.shared.login
            {
                // The page as the browser asked for it, before any `nest`
                // stripped its prefix.
                let target = req
                    .original_uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str());
                rejection.redirect = rp.login_redirect(target, &Headers(req.headers()));
            }
            Err(rejection)
        }
    }
}

impl<'a, C: CapabilityName, U: Unauthenticated> poem::FromRequest<'a> for RequireCapability<C, U> {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let caller = require_capability(req, C::CAPABILITY, U::REDIRECT).await?;
        Ok(RequireCapability(caller, PhantomData))
    }
}

/// The caller and realm the middleware left, for the management handlers.
pub(crate) struct Ctx {
    pub(crate) caller: Option<Authenticated>,
    pub(crate) realm: Arc<str>,
}

impl Ctx {
    pub(crate) fn of(req: &Request) -> Result<Ctx, AuthRejection> {
        let st = state(req)?;
        Ok(Ctx {
            caller: st.caller.clone(),
            realm: Arc::clone(&st.shared.realm),
        })
    }
}

fn respond(outcome: Result<JsonReply, Error>, realm: &str) -> Response {
    match outcome {
        Ok(reply) => response(reply.status, JsonReply::HEADERS, reply.body),
        Err(e) => error_response(&e, realm),
    }
}

/// The most a management request body may hold: a JSON object naming a
/// user and a few capabilities, or a token.
const MAX_BODY: usize = 64 * 1024;

/// A management route's query parameter `name`.
fn param(req: &Request, name: &str) -> poem::Result<Option<String>> {
    let mut q: HashMap<String, String> = req.params()?;
    Ok(q.remove(name))
}

/// A `GET` endpoint answering `f(capabilities, caller, query parameter)`.
fn query_route<F, Fut>(
    caps: Capabilities,
    name: &'static str,
    f: F,
) -> impl poem::Endpoint + use<F, Fut>
where
    F: Fn(Capabilities, Option<Authenticated>, Option<String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<JsonReply, Error>> + Send,
{
    let f = Arc::new(f);
    make(move |req: Request| {
        let caps = caps.clone();
        let f = Arc::clone(&f);
        async move {
            let ctx = Ctx::of(&req)?;
            let value = param(&req, name)?;
            Ok::<_, poem::Error>(respond(f(caps, ctx.caller, value).await, &ctx.realm))
        }
    })
}

/// A `POST` endpoint answering `f(capabilities, caller, body)`.
fn body_route<F, Fut>(caps: Capabilities, f: F) -> impl poem::Endpoint + use<F, Fut>
where
    F: Fn(Capabilities, Option<Authenticated>, Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<JsonReply, Error>> + Send,
{
    let f = Arc::new(f);
    make(move |mut req: Request| {
        let caps = caps.clone();
        let f = Arc::clone(&f);
        async move {
            let ctx = Ctx::of(&req)?;
            let body = req.take_body().into_bytes_limit(MAX_BODY).await?;
            Ok::<_, poem::Error>(respond(f(caps, ctx.caller, body.into()).await, &ctx.realm))
        }
    })
}

/// easy-oauth's routes, to nest under a prefix of the application's choice:
///
/// - `GET /manage_capabilities/list?email=`
/// - `POST /manage_capabilities/add`, `/remove`, `/set` (only when
///   [`Capabilities::management_enabled`])
/// - `GET /token?user=bot@service` (a service token)
/// - `POST /token/revoke`
///
/// The routes need [`AuthMiddleware`](crate::AuthMiddleware) (with
/// auto-error off, so guests reach them and get easy-oauth's answers).
/// Request bodies are limited to 64 KiB (413 beyond).
pub fn management_routes(caps: Capabilities) -> Route {
    let routes = manage_routes(&caps);
    let token = query_route(caps, "user", |c, caller, user| async move {
        c.issue_service_token(caller.as_ref(), user.as_deref())
            .await
    });
    routes.at("/token", get(token))
}

/// The management routes without `/token` (which the login routes answer).
pub(crate) fn manage_routes(caps: &Capabilities) -> Route {
    let list = query_route(caps.clone(), "email", |c, caller, email| async move {
        c.list(caller.as_ref(), email.as_deref()).await
    });
    let mut route = Route::new().at("/manage_capabilities/list", get(list));
    if caps.management_enabled() {
        let add = body_route(caps.clone(), |c, caller, body| async move {
            c.add(caller.as_ref(), &body).await
        });
        let remove = body_route(caps.clone(), |c, caller, body| async move {
            c.remove(caller.as_ref(), &body).await
        });
        let set = body_route(caps.clone(), |c, caller, body| async move {
            c.set(caller.as_ref(), &body).await
        });
        route = route
            .at("/manage_capabilities/add", post(add))
            .at("/manage_capabilities/remove", post(remove))
            .at("/manage_capabilities/set", post(set));
    }
    let revoke = body_route(caps.clone(), |c, caller, body| async move {
        c.revoke(caller.as_ref(), &body).await
    });
    route.at("/token/revoke", post(revoke))
}
