//! [`Gate`]: how an adapter's middleware authenticates a request and what
//! its extractors check the caller against, framework-neutral; and
//! [`Refusal`], the answer when they refuse.

use std::fmt;
#[cfg(feature = "policy")]
use std::future::Future;
use std::sync::Arc;

use portcullis_capabilities::Capabilities;
use portcullis_core::credentials::{require_caller, require_scope};
use portcullis_core::{
    Authenticated, Authentication, Authenticator, Error, ErrorKind, HeaderLookup, Reply,
};
#[cfg(feature = "login")]
use portcullis_oidc::RelyingParty;
#[cfg(feature = "policy")]
use portcullis_policy::{Policy, RequestInfo};

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
    #[cfg(feature = "policy")]
    policy: Option<Policy>,
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
                #[cfg(feature = "policy")]
                policy: None,
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
                #[cfg(feature = "policy")]
                policy: None,
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

    /// The same gate, asking `policy` about every request (feature
    /// `policy`): the middleware calls [`decide`](Self::decide) after
    /// [`authenticate`](Self::authenticate).
    ///
    /// # Errors
    ///
    /// A configuration error when the policy's chosen headers include one
    /// the authenticator reads credentials from
    /// ([`Policy::check_credential_headers`]).
    #[cfg(feature = "policy")]
    pub fn with_policy(self, policy: Policy) -> Result<Self, Error> {
        policy.check_credential_headers(self.inner.auth.config())?;
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.policy = Some(policy);
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The policy, for a gate built [`with_policy`](Self::with_policy).
    #[cfg(feature = "policy")]
    pub fn policy(&self) -> Option<&Policy> {
        self.inner.policy.as_ref()
    }

    /// Asks the gate's policy about `request` from `caller`, the caller
    /// [`authenticate`](Self::authenticate) has just verified (`None`: a
    /// guest), as [`Policy::authorize`] answers: the request goes on, or
    /// is refused.
    ///
    /// The request is read before this returns; the future borrows the
    /// gate only.
    ///
    /// # Errors
    ///
    /// 401 for a guest (refused before the policy is asked unless the
    /// policy takes guests, or refused by it), 403 for a caller the policy
    /// refuses (deny or undefined), 503 when the policy engine cannot
    /// decide, 400 when the request's path, query or body cannot be read,
    /// 500 when the gate has no policy.
    #[cfg(feature = "policy")]
    pub fn decide<'g>(
        &'g self,
        caller: Option<&Authenticated>,
        request: &RequestInfo<'_>,
    ) -> impl Future<Output = Result<(), Refusal>> + Send + use<'g> {
        let decided = self
            .inner
            .policy
            .as_ref()
            .map(|policy| policy.authorize(caller, request));
        async move {
            let Some(decided) = decided else {
                tracing::error!("a policy decision was asked of a gate without a policy");
                return Err(self.refuse(Error::config(
                    "no policy: build the middleware's gate with a policy",
                )));
            };
            decided.await.map_err(|e| self.refuse(e))
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
    /// origin, see `RelyingParty::authenticate`), else through the
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

    /// easy-oauth's `ensure_email`: the caller; a guest that follows
    /// redirects (a browser, or an HTTP library with a cookie jar; see
    /// `RelyingParty::login_redirect`) is sent to log in and back to
    /// `target` when the gate has a relying party, any other guest refused.
    ///
    /// # Errors
    ///
    /// 401 for a guest (its refusal carrying the login redirect when one applies).
    pub fn require_caller_or_login<'a>(
        &self,
        caller: Option<&'a Authenticated>,
        target: &str,
        headers: &(impl HeaderLookup + ?Sized),
    ) -> Result<&'a Authenticated, Refusal> {
        self.require_caller(caller)
            .map_err(|refusal| self.with_login_redirect(refusal, true, target, headers))
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
        let refusal = self.refuse(error);
        // A guest without credentials is sent to log in; a configuration
        // error or an outage is answered as it is.
        let send_to_login =
            redirect && caller.is_none() && refusal.error.kind() == ErrorKind::MissingCredentials;
        Err(self.with_login_redirect(refusal, send_to_login, target, headers))
    }

    /// `refusal`, answered by the redirect to the login page when
    /// `send_to_login` and the gate has a relying party.
    #[cfg(feature = "login")]
    fn with_login_redirect(
        &self,
        mut refusal: Refusal,
        send_to_login: bool,
        target: &str,
        headers: &(impl HeaderLookup + ?Sized),
    ) -> Refusal {
        if send_to_login && let Some(rp) = self.login() {
            refusal.redirect = rp.login_redirect(target, headers);
        }
        refusal
    }

    /// `refusal`: without the `login` feature there is no login page.
    #[cfg(not(feature = "login"))]
    fn with_login_redirect(
        &self,
        refusal: Refusal,
        _send_to_login: bool,
        _target: &str,
        _headers: &(impl HeaderLookup + ?Sized),
    ) -> Refusal {
        refusal
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

#[cfg(all(test, feature = "policy"))]
mod policy_tests {
    use portcullis_core::config::{IssuerConfig, VerifierConfig};
    use portcullis_core::{CredentialsConfig, RawToken, TokenVerifier};
    use portcullis_policy::{Guests, InputShape, PolicyConfig};

    use super::*;

    fn gate(credentials: CredentialsConfig) -> Gate {
        let issuer = IssuerConfig::new("https://id.example.com").with_audience("api");
        let verifier = TokenVerifier::new(VerifierConfig::new([("main".to_owned(), issuer)]))
            .expect("verifier");
        Gate::new(Authenticator::new(verifier, credentials))
    }

    fn alice() -> Authenticated {
        let serde_json::Value::Object(claims) =
            serde_json::json!({"sub": "u-1", "preferred_username": "alice"})
        else {
            unreachable!()
        };
        let principal = portcullis_core::dangerous::principal_from_unverified_claims(
            "https://id.example.com",
            claims,
            RawToken::new(""),
            4_000_000_000,
        )
        .expect("principal");
        portcullis_core::dangerous::authenticated_unverified(Arc::new(principal))
    }

    #[tokio::test]
    async fn the_gate_answers_as_the_policy_decides() {
        let dir = tempfile::tempdir().expect("directory");
        std::fs::write(
            dir.path().join("authz.rego"),
            "package httpapi.authz\n\ndefault allow := false\n\n\
             allow if input.request_path == [\"public\"]\n\n\
             allow if input.request_path == [\"salary\", input.preferred_username]\n",
        )
        .expect("policy");
        let config = PolicyConfig::rego(dir.path()).with_guests(Guests::Policy);
        let policy = Policy::from_config(&config).await.expect("policy");
        let gate = gate(CredentialsConfig::default())
            .with_policy(policy)
            .expect("no credential header chosen");
        assert!(gate.policy().is_some());
        let alice = alice();
        gate.decide(Some(&alice), &RequestInfo::new("GET", "/salary/alice"))
            .await
            .expect("allowed");
        gate.decide(None, &RequestInfo::new("GET", "/public"))
            .await
            .expect("guests read /public");
        let refused = gate
            .decide(Some(&alice), &RequestInfo::new("GET", "/salary/bob"))
            .await
            .unwrap_err();
        let reply = refused.to_reply();
        assert_eq!(reply.status, 403);
        let refused = gate
            .decide(None, &RequestInfo::new("GET", "/salary/bob"))
            .await
            .unwrap_err();
        let reply = refused.to_reply();
        assert_eq!(reply.status, 401);
        assert!(
            reply
                .header("www-authenticate")
                .is_some_and(|c| c.starts_with("Bearer")),
            "the challenge comes with it"
        );
    }

    #[tokio::test]
    async fn a_gate_without_a_policy_never_passes() {
        let gate = gate(CredentialsConfig::default());
        let refused = gate
            .decide(Some(&alice()), &RequestInfo::new("GET", "/"))
            .await
            .unwrap_err();
        assert_eq!(refused.status(), 500);
    }

    #[tokio::test]
    async fn a_policy_never_reads_the_authenticators_token_headers() {
        let config = PolicyConfig::opa("http://127.0.0.1:8181")
            .with_input(InputShape::Native)
            .with_headers(["x-user-assertion"]);
        let policy = Policy::from_config(&config).await.expect("policy");
        let forwarded = CredentialsConfig::default().with_id_token_header("X-User-Assertion");
        let e = gate(forwarded).with_policy(policy.clone()).unwrap_err();
        assert!(e.message().contains("x-user-assertion"), "{}", e.message());
        gate(CredentialsConfig::default())
            .with_policy(policy)
            .expect("another header");
    }
}
