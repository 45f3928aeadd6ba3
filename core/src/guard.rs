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
///
/// Every capability so declared in a program is listed by
/// [`declared_capabilities`], so that a name missing from the configured
/// graph is reported when the service starts
/// ([`CapabilityGraph::unknown_guards`](crate::CapabilityGraph::unknown_guards)),
/// not as a 500 on the first request that needs it.
#[macro_export]
macro_rules! capability {
    ($(#[$meta:meta])* $vis:vis $name:ident = $cap:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $name;
        impl $crate::guard::CapabilityName for $name {
            const CAPABILITY: &'static str = $cap;
        }
        $crate::guard::__private::inventory::submit! {
            $crate::guard::DeclaredCapability::new($cap, ::core::module_path!())
        }
    };
}

/// A capability name declared with [`capability!`](crate::capability),
/// and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeclaredCapability {
    /// The capability's name.
    pub name: &'static str,
    /// The module that declared it.
    pub module: &'static str,
}

impl DeclaredCapability {
    #[doc(hidden)]
    pub const fn new(name: &'static str, module: &'static str) -> Self {
        Self { name, module }
    }
}

inventory::collect!(DeclaredCapability);

/// Every capability declared with [`capability!`](crate::capability) in
/// the program (the binary and every library linked into it), in no
/// particular order.
pub fn declared_capabilities() -> impl Iterator<Item = &'static DeclaredCapability> {
    inventory::iter::<DeclaredCapability>.into_iter()
}

#[doc(hidden)]
pub mod __private {
    pub use inventory;
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
