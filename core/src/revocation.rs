//! [`RevocationCheck`]: how an issuer's tokens are checked for revocation
//! after their signature and claims, on every path that verifies them.
//!
//! A token that a store says is revoked is refused by the
//! [`TokenVerifier`](crate::TokenVerifier) itself, with
//! [`TokenRejection::Revoked`](crate::TokenRejection::Revoked) (401), also
//! when the verified token is served from the cache. An issuer configured
//! with a check ([`IssuerConfig::with_revocations`](crate::config::IssuerConfig::with_revocations))
//! therefore cannot be used without it: every adapter, gRPC service and
//! worker that accepts the issuer's tokens asks the check.
//!
//! A check that cannot answer fails with
//! [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) (503): a token
//! whose revocation cannot be ruled out is never accepted.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use crate::error::Error;
use crate::principal::Principal;

/// The future [`RevocationCheck::is_revoked`] returns.
pub type RevocationFuture<'a> = Pin<Box<dyn Future<Output = Result<bool, Error>> + Send + 'a>>;

/// Whether a verified token has been revoked before its expiry.
///
/// ```
/// use portcullis_core::revocation::{RevocationCheck, RevocationFuture};
/// use portcullis_core::Principal;
///
/// /// Refuses the tokens whose `jti` is listed.
/// #[derive(Debug)]
/// struct DenyList(Vec<String>);
///
/// impl RevocationCheck for DenyList {
///     fn is_revoked<'a>(&'a self, principal: &'a Principal) -> RevocationFuture<'a> {
///         let jti = principal.claim("jti").and_then(|v| v.as_str());
///         let revoked = jti.is_some_and(|id| self.0.iter().any(|r| r == id));
///         Box::pin(async move { Ok(revoked) })
///     }
/// }
/// ```
pub trait RevocationCheck: Send + Sync + Debug + 'static {
    /// The answer without waiting, when the check holds it in memory (an
    /// in-process list); `None` to ask [`is_revoked`](Self::is_revoked).
    ///
    /// The verifier asks this first, so that a check with its answer at hand
    /// costs a lookup, not a boxed future, per request.
    fn is_revoked_now(&self, principal: &Principal) -> Option<Result<bool, Error>> {
        let _ = principal;
        None
    }

    /// Whether the token `principal` was verified from is revoked.
    ///
    /// # Errors
    ///
    /// Kind `Unavailable` when the answer cannot be had (the token is then refused with 503).
    fn is_revoked<'a>(&'a self, principal: &'a Principal) -> RevocationFuture<'a>;
}
