//! Capability checks: translation only. Every decision comes from the
//! layer's [`Gate`](portcullis_adapter_kit::Gate), which asks
//! [`Capabilities`](portcullis_capabilities::Capabilities).

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use http::request::Parts;
use portcullis_core::Authenticated;

use crate::{
    AuthRejection, CapabilityName, Headers, Refuse, Unauthenticated, original_uri, state, target,
};

/// A caller holding capability `C`, as
/// [`Capabilities::require`](portcullis_capabilities::Capabilities::require)
/// decides: 401 for a guest without it (or, with `U` =
/// [`LoginRedirect`](crate::LoginRedirect), a redirect to the login page for
/// a browser; needs [`AuthLayer::for_login`](crate::AuthLayer::for_login)),
/// 403 `insufficient_scope` for a known caller without it. Holds the caller,
/// `None` for a guest the capability is granted to. Needs
/// [`AuthLayer::with_capabilities`](crate::AuthLayer::with_capabilities) or
/// [`for_login`](crate::AuthLayer::for_login).
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

impl<C: CapabilityName, U: Unauthenticated, St: Send + Sync> FromRequestParts<St>
    for RequireCapability<C, U>
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Self::Rejection> {
        let st = state(parts)?;
        st.gate
            .require_capability(
                st.caller.as_ref(),
                C::CAPABILITY,
                U::REDIRECT,
                target(original_uri(parts)),
                &Headers(&parts.headers),
            )
            .await
            .map_err(AuthRejection)?;
        Ok(RequireCapability(st.caller.clone(), PhantomData))
    }
}
