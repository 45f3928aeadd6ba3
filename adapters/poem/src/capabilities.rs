//! Capability checks: translation only. Every decision comes from the
//! middleware's [`Gate`](portcullis_adapter_kit::Gate), which asks
//! [`Capabilities`](portcullis_capabilities::Capabilities).

use std::marker::PhantomData;

use poem::{Request, RequestBody};
use portcullis_core::Authenticated;

use crate::{AuthRejection, CapabilityName, Headers, Refuse, Unauthenticated, state, target};

/// A caller holding capability `C`, as
/// [`Capabilities::require`](portcullis_capabilities::Capabilities::require)
/// decides: 401 for a guest without it (or, with `U` =
/// [`LoginRedirect`](crate::LoginRedirect), a redirect to the login page for
/// a browser; needs
/// [`AuthMiddleware::for_login`](crate::AuthMiddleware::for_login)), 403
/// `insufficient_scope` for a known caller without it. Holds the caller,
/// `None` for a guest the capability is granted to. Needs
/// [`AuthMiddleware::with_capabilities`](crate::AuthMiddleware::with_capabilities)
/// or [`for_login`](crate::AuthMiddleware::for_login).
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

/// Has the middleware's gate decide whether the request's caller holds
/// `capability`; `redirect` sends a browser guest to log in instead of a 401.
pub(crate) async fn require_capability(
    req: &Request,
    capability: &str,
    redirect: bool,
) -> Result<Option<Authenticated>, AuthRejection> {
    let st = state(req)?;
    st.gate
        .require_capability(
            st.caller.as_ref(),
            capability,
            redirect,
            target(req),
            &Headers(req.headers()),
        )
        .await
        .map_err(AuthRejection)?;
    Ok(st.caller.clone())
}

impl<'a, C: CapabilityName, U: Unauthenticated> poem::FromRequest<'a> for RequireCapability<C, U> {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let caller = require_capability(req, C::CAPABILITY, U::REDIRECT).await?;
        Ok(RequireCapability(caller, PhantomData))
    }
}
