//! [`Gate`]: how an adapter's middleware authenticates a request and what
//! its extractors check the caller against, framework-neutral; and
//! [`Refusal`], the answer when they refuse.

use std::fmt;
use std::sync::Arc;

use portcullis_capabilities::Capabilities;
use portcullis_core::credentials::{require_caller, require_scope};
use portcullis_core::{
    Authenticated, Authentication, Authenticator, Error, ErrorKind, HeaderLookup, Reply,
};
#[cfg(feature = "login")]
use portcullis_oidc::RelyingParty;

/// What an adapter's middleware is built with: bearer tokens through an
/// [`Authenticator`], or (feature `login`) a `RelyingParty` of
/// portcullis-oidc (bearer tokens, then the login session); the realm of challenges; the [`Capabilities`] that capability
/// guards ask. The middleware calls [`authenticate`](Self::authenticate) per
/// request and leaves the caller and the gate for the extractors, which call
/// [`require_caller`](Self::require_caller),
/// [`require_scope`](Self::require_scope) and
/// [`require_capability`](Self::require_capability).
///
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    auth: Authenticator,
    realm: Arc<str>,
    capabilities: Option<Capabilities>,
    #[cfg(feature = "login")]
    login: Option<RelyingParty>,
}

impl Gate {
    /// A gate authenticating bearer tokens with `auth`, without capabilities.
    pub fn new(auth: Authenticator) -> Self {
        Self {
            inner: Arc::new(Inner {
                realm: Arc::from(auth.realm()),
                auth,
                capabilities: None,
                #[cfg(feature = "login")]
                login: None,
            }),
        }
    }

    /// A gate for a browser application (feature `login`) that logs its users in with `rp`:
    /// a request is authenticated by its bearer token or else by its session
    /// cookie (see [`RelyingParty::authenticate`]); capabilities come from
    /// the relying party.
    #[cfg(feature = "login")]
    pub fn for_login(rp: RelyingParty) -> Self {
        let auth = rp.authenticator().clone();
        Self {
            inner: Arc::new(Inner {
                realm: Arc::from(auth.realm()),
                auth,
                capabilities: Some(rp.capabilities().clone()),
                login: Some(rp),
            }),
        }
    }

    /// The same gate, asking `capabilities` in capability checks.
    pub fn with_capabilities(self, capabilities: Capabilities) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.capabilities = Some(capabilities);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The authenticator for bearer tokens.
    pub fn authenticator(&self) -> &Authenticator {
        &self.inner.auth
    }

    /// The realm of `WWW-Authenticate` challenges.
    pub fn realm(&self) -> &str {
        &self.inner.realm
    }

    /// The capabilities service, if the gate has one.
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.inner.capabilities.as_ref()
    }

    /// The relying party, for a gate built with [`for_login`](Self::for_login).
    #[cfg(feature = "login")]
    pub fn login(&self) -> Option<&RelyingParty> {
        self.inner.login.as_ref()
    }

    /// `error`, answered in this gate's realm.
    fn refuse(&self, error: Error) -> Refusal {
        Refusal::new(error, Arc::clone(&self.inner.realm))
    }

    /// Authenticates a request of `method` (as the request line has it:
    /// `"GET"`, `"POST"`, ...): through the relying party when there is one
    /// (bearer token, then session cookie; a state-changing request
    /// authenticated by the session cookie must come from the site's own
    /// origin, see [`RelyingParty::authenticate`]), else through the
    /// authenticator (bearer token).
    ///
    /// The adapter appends the [`Authentication`]'s cookies to the response,
    /// whatever it is, and sets the response's `Cache-Control` to
    /// [`Authentication::cache_control`] when there is one.
    ///
    /// # Errors
    ///
    /// The refusal to answer instead of the application: a bad token
    /// (401/400), a missing one under `MissingCredentials::Refuse`
    /// (401), a cross-origin state-changing request with the session cookie
    /// (403), or a store or provider that cannot answer (503).
    pub async fn authenticate(
        &self,
        method: &str,
        headers: &(impl HeaderLookup + ?Sized),
    ) -> Result<Authentication, Refusal> {
        #[cfg(feature = "login")]
        if let Some(rp) = &self.inner.login {
            return rp
                .authenticate(method, headers)
                .await
                .map_err(|e| self.refuse(e));
        }
        let _ = method;
        self.inner
            .auth
            .authenticate(headers)
            .await
            .map(|caller| Authentication {
                caller,
                set_cookies: Vec::new(),
            })
            .map_err(|e| self.refuse(e))
    }

    /// The caller, required.
    ///
    /// # Errors
    ///
    /// 401 for a guest.
    pub fn require_caller<'a>(
        &self,
        caller: Option<&'a Authenticated>,
    ) -> Result<&'a Authenticated, Refusal> {
        require_caller(caller).map_err(|e| self.refuse(e))
    }

    /// The caller, required to hold `scope`.
    ///
    /// # Errors
    ///
    /// 401 for a guest, 403 `insufficient_scope` without the scope.
    pub fn require_scope<'a>(
        &self,
        caller: Option<&'a Authenticated>,
        scope: &str,
    ) -> Result<&'a Authenticated, Refusal> {
        require_scope(caller, scope).map_err(|e| self.refuse(e))
    }

    /// Whether `caller` (`None`: a guest) holds `capability`, as
    /// [`Capabilities::require`] decides. With `redirect`, a browser guest
    /// refused is sent to log in and back to `target` (the request's path
    /// and query as the browser asked for it), when the gate has a relying
    /// party (feature `login`) and the refusal is for missing credentials
    /// (never for a configuration error or an unavailable store): the
    /// refusal then carries that redirect.
    ///
    /// # Errors
    ///
    /// 401 for a guest, 403 `insufficient_scope` for a caller without the
    /// capability, 503 when the store cannot answer, 500 when the gate has
    /// no capabilities service.
    pub async fn require_capability(
        &self,
        caller: Option<&Authenticated>,
        capability: &str,
        redirect: bool,
        target: &str,
        headers: &(impl HeaderLookup + ?Sized),
    ) -> Result<(), Refusal> {
        let Some(capabilities) = self.capabilities() else {
            tracing::error!("a capability check ran without a capabilities service");
            return Err(self.refuse(Error::config(
                "no capabilities service: build the middleware with capabilities or for login",
            )));
        };
        let Err(error) = capabilities.require(caller, capability).await else {
            return Ok(());
        };
        #[cfg_attr(not(feature = "login"), allow(unused_mut))]
        let mut refusal = self.refuse(error);
        #[cfg(feature = "login")]
        if redirect
            && caller.is_none()
            && refusal.error.kind() == ErrorKind::MissingCredentials
            && let Some(rp) = self.login()
        {
            refusal.redirect = rp.login_redirect(target, headers);
        }
        #[cfg(not(feature = "login"))]
        let _ = (redirect, target, headers, ErrorKind::MissingCredentials);
        Err(refusal)
    }
}

/// A refusal of a gate: core's error in a realm, answered as core maps it,
/// or, for a browser sent to log in, the redirect to the login page. Its
/// `Debug` shows the redirect as [`Reply`]'s does (no `location` value).
#[derive(Debug, Clone)]
pub struct Refusal {
    error: Error,
    realm: Arc<str>,
    redirect: Option<Reply>,
}

impl Refusal {
    /// `error`, answered with `realm` in its challenge.
    pub fn new(error: Error, realm: impl Into<Arc<str>>) -> Self {
        Self {
            error,
            realm: realm.into(),
            redirect: None,
        }
    }

    /// The underlying error.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The redirect to the login page answered instead of the error, if any.
    pub fn redirect(&self) -> Option<&Reply> {
        self.redirect.as_ref()
    }

    /// The status of the answer.
    pub fn status(&self) -> u16 {
        match &self.redirect {
            Some(reply) => reply.status,
            None => self.error.status(),
        }
    }

    /// The answer: the redirect, else core's response for the error.
    pub fn to_reply(&self) -> Reply {
        match &self.redirect {
            Some(reply) => reply.clone(),
            None => Reply::error(&self.error, &self.realm),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for Refusal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
