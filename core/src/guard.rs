//! The names guards require, as types: what the adapters' `RequireScope<S>`
//! and `RequireCapability<C, U>` extractors are generic over.
//!
//! A scope or capability is a zero-sized type carrying its name as a
//! constant, declared with [`scope!`](crate::scope!) or
//! [`capability!`](crate::capability!); [`Unauthenticated`] says what a
//! capability guard does with a guest who lacks the capability. Every
//! adapter re-exports these items, so a name declared once serves any of them.
//!
//! # Examples
//!
//! ```
//! use portcullis_core::guard::{CapabilityName, LoginRedirect, ScopeName, Unauthenticated};
//! use portcullis_core::{capability, scope};
//!
//! scope!(Read = "read");
//! capability!(
//!     /// May post announcements.
//!     pub Announce = "announce"
//! );
//!
//! assert_eq!(Read::SCOPE, "read");
//! assert_eq!(Announce::CAPABILITY, "announce");
//! assert!(LoginRedirect::REDIRECT);
//! ```

/// A scope name, for an adapter's `RequireScope<S>`. Declare one with
/// [`scope!`](crate::scope!).
pub trait ScopeName: Send + Sync + 'static {
    /// The scope.
    const SCOPE: &'static str;
}

/// Declares a [`ScopeName`](crate::guard::ScopeName) type: `scope!(Read = "read");`.
#[macro_export]
macro_rules! scope {
    ($(#[$meta:meta])* $vis:vis $name:ident = $scope:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $name;
        impl $crate::guard::ScopeName for $name {
            const SCOPE: &'static str = $scope;
        }
    };
}

/// A capability name, for an adapter's `RequireCapability<C, U>`. Declare
/// one with [`capability!`](crate::capability!).
pub trait CapabilityName: Send + Sync + 'static {
    /// The capability.
    const CAPABILITY: &'static str;
}

/// Declares a [`CapabilityName`](crate::guard::CapabilityName) type:
/// `capability!(Write = "write");`.
#[macro_export]
macro_rules! capability {
    ($(#[$meta:meta])* $vis:vis $name:ident = $cap:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $name;
        impl $crate::guard::CapabilityName for $name {
            const CAPABILITY: &'static str = $cap;
        }
    };
}

/// What a capability guard does with a guest who lacks the capability.
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
/// `redirect=True`); API callers still get 401. Needs the adapter's
/// middleware built around a relying party (portcullis-oidc's
/// `RelyingParty`, through the adapter's `for_login`).
#[derive(Debug, Clone, Copy)]
pub struct LoginRedirect;

impl Unauthenticated for LoginRedirect {
    const REDIRECT: bool = true;
}
