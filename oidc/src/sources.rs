//! Where the tokens a service sends to other services come from.
//!
//! A [`TokenSource`] hands out a bearer token to send now and, when the
//! receiver refused it (401), perhaps a better one. Three sources cover the
//! usual cases:
//!
//! - [`ForwardedToken`]: the caller's own access token, sent on as is;
//! - [`RefreshingToken`]: the caller's access token and refresh token, renewed
//!   at the provider before expiry and after a rejection, so that work done
//!   for the caller may go on after the access token expired;
//! - [`ClientCredentials`]: the service's own token (the OAuth client
//!   credentials grant), cached until shortly before it expires.
//!
//! The renewing sources talk to the provider's token endpoint through a
//! [`TokenEndpoint`]: found by discovery, authenticated with the client's
//! secret, no redirects followed, answers bounded in size, failed calls
//! retried a bounded number of times. A renewal runs once however many tasks
//! ask at the same time, and it runs to its end even when the task that
//! started it gives up, so a rotated refresh token is never lost halfway.
//!
//! This module holds the trait and the sources; `token_endpoint` the client
//! of the provider's token endpoint (discovery, client authentication,
//! grant requests, answers); `renewal` the state the renewing sources keep
//! and their single-flight renewal.

mod renewal;
mod token_endpoint;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use portcullis_core::clock::SharedClock;
use portcullis_core::{Authenticated, Error, RawToken};
use serde_json::Value;

use renewal::{Need, Renewing};
use token_endpoint::Grant;
pub use token_endpoint::TokenEndpoint;

/// The future a [`TokenSource`] method returns: boxed and `Send`, so that
/// sources can be held as `Arc<dyn TokenSource>`.
pub type TokenFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// A source of bearer tokens to send to other services.
///
/// Implementations never log or print a token: tokens are [`RawToken`]s,
/// whose `Debug` and `Display` redact them.
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// The token to send now, renewed first when it is due.
    ///
    /// # Errors
    ///
    /// When no token can be had: the provider refused a renewal (kind
    /// [`ErrorKind::InvalidToken`]; the caller must log in again) or could not
    /// be reached ([`ErrorKind::Unavailable`]).
    ///
    /// [`ErrorKind::InvalidToken`]: portcullis_core::ErrorKind::InvalidToken
    /// [`ErrorKind::Unavailable`]: portcullis_core::ErrorKind::Unavailable
    fn token(&self) -> TokenFuture<'_, RawToken>;

    /// The receiver refused `rejected` (HTTP 401): another token to try once,
    /// or `None` when this source has no other one to offer.
    ///
    /// When another task already replaced `rejected`, its replacement is
    /// returned without a new call to the provider.
    ///
    /// # Errors
    ///
    /// As [`token`](Self::token).
    fn refresh_after_rejection<'a>(
        &'a self,
        rejected: &'a RawToken,
    ) -> TokenFuture<'a, Option<RawToken>>;
}

impl<T: TokenSource + ?Sized> TokenSource for Arc<T> {
    fn token(&self) -> TokenFuture<'_, RawToken> {
        (**self).token()
    }

    fn refresh_after_rejection<'a>(
        &'a self,
        rejected: &'a RawToken,
    ) -> TokenFuture<'a, Option<RawToken>> {
        (**self).refresh_after_rejection(rejected)
    }
}

/// The caller's own access token, sent on as it is and never renewed.
///
/// ```
/// use portcullis_core::RawToken;
/// use portcullis_oidc::ForwardedToken;
/// let source = ForwardedToken::new(RawToken::new("eyJ..."));
/// assert_eq!(format!("{source:?}"), "ForwardedToken { token: RawToken([redacted]) }");
/// ```
#[derive(Debug, Clone)]
pub struct ForwardedToken {
    token: RawToken,
}

impl ForwardedToken {
    /// Forwards `token`.
    pub fn new(token: RawToken) -> Self {
        Self { token }
    }

    /// Forwards the verified access token `caller` presented.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::MissingCredentials`] when the caller holds no access
    /// token (a login session without one, say).
    ///
    /// [`ErrorKind::MissingCredentials`]: portcullis_core::ErrorKind::MissingCredentials
    pub fn from_caller(caller: &Authenticated) -> Result<Self, Error> {
        let token = caller.principal.token();
        if token.expose().is_empty() {
            return Err(Error::missing_credentials());
        }
        Ok(Self::new(token.clone()))
    }
}

impl TokenSource for ForwardedToken {
    fn token(&self) -> TokenFuture<'_, RawToken> {
        let token = self.token.clone();
        Box::pin(async move { Ok(token) })
    }

    fn refresh_after_rejection<'a>(
        &'a self,
        _rejected: &'a RawToken,
    ) -> TokenFuture<'a, Option<RawToken>> {
        Box::pin(async { Ok(None) })
    }
}

/// An access token renewed with a refresh token: before it expires, and
/// after a receiver refused it.
///
/// However many tasks ask at the same time, one refresh runs and all share
/// its outcome. The provider's rotated refresh token replaces the old one.
/// When the provider refuses the refresh token (`invalid_grant`: revoked,
/// expired, or used elsewhere), every later call fails at once with the same
/// error (kind [`ErrorKind::InvalidToken`]) and no new call to the provider:
/// the caller has to log in again. When the provider cannot be reached, the
/// request is retried as the [`TokenEndpoint`] says, then the call fails with
/// [`ErrorKind::Unavailable`] and a later call tries again.
///
/// [`ErrorKind::InvalidToken`]: portcullis_core::ErrorKind::InvalidToken
/// [`ErrorKind::Unavailable`]: portcullis_core::ErrorKind::Unavailable
///
/// The refresh token forwarded by an auth proxy is the proxy's too: when
/// the provider rotates refresh tokens and the proxy also refreshes, the
/// provider sees one of the two uses as a replay.
///
/// ```no_run
/// # async fn f(endpoint: portcullis_oidc::TokenEndpoint, caller: portcullis_core::Authenticated) {
/// use std::time::Duration;
/// use portcullis_oidc::{RefreshingToken, TokenSource};
/// // `caller` came from an Authenticator reading `x-refresh-token`.
/// if let Some(source) = RefreshingToken::from_caller(&endpoint, &caller) {
///     let source = source.with_leeway(Duration::from_secs(10));
///     let _token = source.token().await;
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct RefreshingToken {
    inner: Renewing,
}

impl RefreshingToken {
    /// A source holding only `refresh_token`: the first call refreshes.
    pub fn new(endpoint: TokenEndpoint, refresh_token: RawToken) -> Self {
        let inner = Renewing::new(endpoint, Grant::Refresh);
        inner.lock().refresh_token = Some(refresh_token);
        Self { inner }
    }

    /// A source for a verified caller of the proxy-forwarded scheme: its
    /// access token (until its `exp`) and its forwarded refresh token.
    /// `None` when the caller forwarded no refresh token.
    pub fn from_caller(endpoint: &TokenEndpoint, caller: &Authenticated) -> Option<Self> {
        let refresh_token = caller.refresh_token.clone()?;
        let source = Self::new(endpoint.clone(), refresh_token);
        let principal = &caller.principal;
        let token = principal.token();
        if token.expose().is_empty() {
            return Some(source);
        }
        let expires_at = principal.expires_at();
        let source = source.with_access_token(token.clone(), Some(expires_at));
        // With `iat`, a short-lived token is renewed halfway at the latest.
        source.inner.lock().lifetime = principal
            .claim("iat")
            .and_then(Value::as_u64)
            .map(|iat| expires_at.saturating_sub(iat));
        Some(source)
    }

    /// Starts with `access_token`, expiring at `expires_at` (unix seconds;
    /// `None`: renewed only after a rejection).
    #[must_use]
    pub fn with_access_token(self, access_token: RawToken, expires_at: Option<u64>) -> Self {
        {
            let mut held = self.inner.lock();
            held.access_token = Some(access_token);
            held.expires_at = expires_at;
            held.lifetime = None;
        }
        self
    }

    /// Renews this long before expiry (30 s by default; at most half the
    /// token's lifetime when the provider says how long it lives).
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.inner.leeway = leeway.as_secs();
        self
    }

    /// Reads time from `clock` (tests share the mock provider's manual clock).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.inner.clock = clock;
        self
    }
}

impl TokenSource for RefreshingToken {
    fn token(&self) -> TokenFuture<'_, RawToken> {
        Box::pin(self.inner.get(Need::Current))
    }

    fn refresh_after_rejection<'a>(
        &'a self,
        rejected: &'a RawToken,
    ) -> TokenFuture<'a, Option<RawToken>> {
        Box::pin(async move { self.inner.get(Need::Replacing(rejected)).await.map(Some) })
    }
}

/// The service's own access token, from the client credentials grant
/// (service to service): fetched on first use, cached until shortly before
/// it expires (or, when the provider does not say when, until a receiver
/// refuses it), fetched once however many tasks ask at the same time.
///
/// ```no_run
/// # async fn f(endpoint: portcullis_oidc::TokenEndpoint) -> Result<(), portcullis_core::Error> {
/// use portcullis_oidc::{ClientCredentials, TokenSource};
/// let source = ClientCredentials::new(endpoint).with_scope("orders:read");
/// let _token = source.token().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ClientCredentials {
    inner: Renewing,
}

impl ClientCredentials {
    /// Tokens for the endpoint's client.
    pub fn new(endpoint: TokenEndpoint) -> Self {
        Self {
            inner: Renewing::new(endpoint, Grant::ClientCredentials),
        }
    }

    /// Asks for `scope` (space-separated names).
    #[must_use]
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.inner.scope = Some(scope.into());
        self
    }

    /// Renews this long before expiry (30 s by default; at most half the
    /// token's lifetime).
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.inner.leeway = leeway.as_secs();
        self
    }

    /// Reads time from `clock` (tests share the mock provider's manual clock).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.inner.clock = clock;
        self
    }
}

impl TokenSource for ClientCredentials {
    fn token(&self) -> TokenFuture<'_, RawToken> {
        Box::pin(self.inner.get(Need::Current))
    }

    fn refresh_after_rejection<'a>(
        &'a self,
        rejected: &'a RawToken,
    ) -> TokenFuture<'a, Option<RawToken>> {
        Box::pin(async move { self.inner.get(Need::Replacing(rejected)).await.map(Some) })
    }
}

#[cfg(test)]
mod tests {
    use portcullis_core::Secret;

    use super::*;

    #[test]
    fn debug_shows_no_secret() {
        let endpoint = TokenEndpoint::new(
            "https://id.example.com/token",
            "c",
            Some(Secret::new("s3cr3t")),
        )
        .unwrap();
        let source = RefreshingToken::new(endpoint, RawToken::new("refresh-me"))
            .with_access_token(RawToken::new("access-me"), Some(100));
        let debug = format!("{source:?}");
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("-me"),
            "{debug}"
        );
    }
}
