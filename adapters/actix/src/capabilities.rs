//! Capability checks: translation only. Every decision comes from the
//! middleware's [`Gate`](portcullis_adapter_kit::Gate), which asks
//! [`Capabilities`](portcullis_capabilities::Capabilities).

use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use portcullis_core::Authenticated;

use crate::{
    AuthRejection, CapabilityName, Headers, LocalFuture, Refuse, Unauthenticated, state, target,
};

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

impl<C: CapabilityName, U: Unauthenticated> FromRequest for RequireCapability<C, U> {
    type Error = AuthRejection;
    type Future = LocalFuture<Result<Self, AuthRejection>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let st = state(&req)?;
            st.gate
                .require_capability(
                    st.caller.as_ref(),
                    C::CAPABILITY,
                    U::REDIRECT,
                    target(&req),
                    &Headers(req.headers()),
                )
                .await
                .map_err(AuthRejection)?;
            Ok(RequireCapability(st.caller.clone(), PhantomData))
        })
    }
}
