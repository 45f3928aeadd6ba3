//! [`RelyingParty`]: the login routes' logic and the per-request session
//! check, framework-neutral. Adapters call these methods and copy the
//! [`Reply`] out.

use std::sync::Arc;
use std::time::Duration;

use portcullis_capabilities::{
    Capabilities, LOGIN_CLAIM, MemoryStore, RevocationStore, SERVICE_ISSUER, Stores,
};
use portcullis_core::clock::{self, SharedClock};
use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::dangerous::{
    authenticated_session, forced_caller, principal_from_unverified_claims,
};
use portcullis_core::principal::vouched_email;
use portcullis_core::reply::SESSION_CACHE_CONTROL;
use portcullis_core::{
    Algorithm, Authenticated, Authentication, Authenticator, CredentialSource, CredentialsConfig,
    Error, HeaderLookup, RawToken, Reply, TokenKind, TokenRejection, TokenVerifier,
};
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;

use crate::config::{OidcConfig, SessionStorage};
use crate::origin::{comes_from, is_safe_method, origin_of, same_origin_navigation};
use crate::provider::{OfflineRequest, Provider, TokenFailure, Tokens, http_client};
use crate::redirect::{ascii_location, safe_return_path};
use crate::seal::{CookieAttrs, Sealer, random_token};
use crate::session::{
    Codec, FLIGHT_MEMORY_SECS, Flights, LOGIN_COOKIE, LOGIN_RETRY_SECS, Loaded, LoginMemo,
    LoginRecord, REFRESH_LEASE, Refreshed, SESSION_COOKIE, SaveError, SessionData, Transaction,
    ended_id, flight_key,
};

mod device;

use device::device_pending;

/// The algorithms accepted from the provider: every asymmetric one. The
/// key's type decides which one a given key verifies, so accepting them all
/// opens no confusion; shared-secret algorithms are never accepted.
fn provider_algorithms() -> impl Iterator<Item = Algorithm> {
    Algorithm::ALL
        .into_iter()
        .filter(|a| a.family() != portcullis_core::alg::KeyFamily::Hmac)
}

/// Identity claims kept in a session.
const KEPT_CLAIMS: [&str; 6] = [
    "sub",
    "email",
    "email_verified",
    "name",
    "preferred_username",
    "auth_time",
];

/// Builds a [`RelyingParty`]. Start with [`RelyingParty::builder`].
#[derive(Debug)]
pub struct RelyingPartyBuilder {
    config: OidcConfig,
    clock: SharedClock,
    stores: Option<Stores>,
}

impl RelyingPartyBuilder {
    /// Reads time from `clock` (tests share the mock provider's manual clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Uses already opened stores instead of opening the configured ones.
    pub fn stores(mut self, stores: Stores) -> Self {
        self.stores = Some(stores);
        self
    }

    /// Checks the configuration, opens the stores and builds the relying
    /// party. The provider is discovered on first use, so an application
    /// starts (and answers 503 on its login routes) while the provider is down.
    ///
    /// A configured Redis store (`redis`, `redis_cluster`; not stores given
    /// with [`stores`](Self::stores)) that holds no user yet is seeded with
    /// the users of `capabilities.user_file`, once
    /// ([`StoreConfig::open_stores_seeded`](portcullis_capabilities::StoreConfig::open_stores_seeded)).
    ///
    /// # Errors
    ///
    /// A configuration error naming the key, or `Unavailable` when a store
    /// cannot be reached.
    pub async fn build(self) -> Result<RelyingParty, Error> {
        let config = self.config;
        config.validate()?;
        if let Some(forced) = &config.dangerous_force_user {
            tracing::warn!(
                user = %forced.email,
                base_url = %config.base_url,
                "DANGER: `force_user` is set: every request is this user, with no login and \
                 no credential checked; for a development server only"
            );
        }
        let stores = match self.stores {
            Some(s) => s,
            // An empty Redis store starts with the user file's users, once.
            None => {
                config
                    .store_config()
                    .open_stores_seeded(config.capabilities.user_file.as_deref())
                    .await?
            }
        };
        let revocations: Arc<dyn RevocationStore> = match stores.revocations {
            Some(r) => r,
            None => {
                tracing::warn!(
                    "the store keeps no revocations; they are kept in memory and lost on restart"
                );
                Arc::new(MemoryStore::new())
            }
        };
        let mut caps = Capabilities::builder(
            config.capabilities.clone(),
            stores.capabilities,
            config.secret_key.clone(),
        )
        .revocations(Arc::clone(&revocations))
        .clock(Arc::clone(&self.clock));
        if let Some(ttl) = config.user_token_ttl_secs {
            caps = caps.user_token_ttl_secs(ttl);
        }
        if let Some(ttl) = config.service_token_ttl_secs {
            caps = caps.service_token_ttl_secs(ttl);
        }
        let capabilities = caps.build()?;
        let issuer = config.expected_issuer()?;
        let mut provider_issuer = IssuerConfig::new(issuer.clone())
            .with_discovery_url(config.server_metadata_url.clone())
            .with_algorithms(provider_algorithms())
            .with_client_id(config.client_id.clone())
            .with_trust_email_without_verified_claim(config.trust_email_without_verified_claim);
        if let Some(aud) = &config.audience {
            provider_issuer = provider_issuer.with_audience(aud.clone());
        }
        // The verifier discovers the provider's keys itself: the same rule
        // for their URLs (HTTPS, loopback excepted, unless told).
        let verifier = TokenVerifier::builder(
            VerifierConfig::new([
                ("provider".to_owned(), provider_issuer),
                (
                    "portcullis".to_owned(),
                    capabilities.service_issuer_config(),
                ),
            ])
            .with_danger_allow_plain_http(config.danger_allow_plain_http),
        )
        .clock(Arc::clone(&self.clock))
        .build()?;
        let authenticator = Authenticator::new(verifier.clone(), CredentialsConfig::default());
        let attrs = CookieAttrs {
            secure: config.is_https(),
        };
        let codec = Codec {
            sealer: Sealer::new(config.secret_key.expose().as_bytes())?,
            session_name: attrs.name(SESSION_COOKIE),
            login_name: attrs.name(LOGIN_COOKIE),
            attrs,
            storage: config.session.storage,
            store: stores.sessions,
        };
        let origin = origin_of(&config.base_url)
            .ok_or_else(|| Error::config("configuration key `base_url`: no origin"))?;
        Ok(RelyingParty {
            inner: Arc::new(Inner {
                origin,
                http: http_client()?,
                provider: OnceCell::new(),
                issuer,
                verifier,
                authenticator,
                capabilities,
                revocations,
                codec,
                flights: Flights::default(),
                logins: LoginMemo::default(),
                headless_starts: crate::headless::StartLimit::default(),
                clock: self.clock,
                config,
            }),
        })
    }
}

#[derive(Debug)]
struct Inner {
    config: OidcConfig,
    /// `base_url`'s origin, which state-changing requests must come from.
    origin: String,
    issuer: String,
    http: portcullis_core::http_client::HttpClient,
    provider: OnceCell<Arc<Provider>>,
    verifier: TokenVerifier,
    authenticator: Authenticator,
    capabilities: Capabilities,
    revocations: Arc<dyn RevocationStore>,
    codec: Codec,
    flights: Flights,
    logins: LoginMemo,
    headless_starts: crate::headless::StartLimit,
    clock: SharedClock,
}

/// Where a refreshed set of tokens is kept: a server-side session, or a
/// login record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    Session,
    Login,
}

/// What the provider says of a login, as far as a request needs to know.
#[derive(Debug)]
enum LoginState {
    /// The login holds; its record when it was read (or refreshed).
    Alive(Option<Box<LoginRecord>>),
    /// The provider refused its refresh token, or the record is gone.
    Dead,
}

/// An OpenID Connect relying party: easy-oauth's `OAuthManager`, framework-neutral.
///
/// It logs users in (`/login`, `/auth`), keeps their sessions, refreshes
/// their tokens, logs them out (`/logout`), gives them tokens for scripts
/// (`/token`), and authenticates every request by bearer token or session.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    inner: Arc<Inner>,
}

/// The query parameters of a request, decoded.
fn params(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A login failure answer: 400 (or `status`) with a JSON body.
fn login_failed(status: u16, description: impl Into<String>) -> Reply {
    let body = json!({"error": "login_failed", "error_description": description.into()});
    Reply::json(status, body.to_string())
}

fn json_reply(outcome: Result<Reply, Error>, realm: &str) -> Reply {
    match outcome {
        Ok(reply) => reply.private(),
        Err(e) => Reply::error(&e, realm).private(),
    }
}

/// An OAuth error code from the provider, kept only if it looks like one.
fn error_code(code: &str) -> &str {
    if !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        code
    } else {
        "error"
    }
}

/// `text` escaped for an HTML attribute value or text.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Adds to an authorization request what asks `rule`'s provider for a
/// refresh token.
fn ask_offline(rule: OfflineRequest, scopes: &mut Vec<String>, extra: &mut Vec<(String, String)>) {
    match rule {
        OfflineRequest::Scope => {
            if !scopes.iter().any(|s| s == "offline_access") {
                scopes.push("offline_access".to_owned());
            }
        }
        OfflineRequest::AccessType => {
            extra.retain(|(k, _)| k != "access_type");
            extra.push(("access_type".to_owned(), "offline".to_owned()));
            match extra.iter_mut().find(|(k, _)| k == "prompt") {
                Some((_, prompt)) => {
                    if !prompt.split_ascii_whitespace().any(|p| p == "consent") {
                        prompt.push_str(" consent");
                    }
                }
                None => extra.push(("prompt".to_owned(), "consent".to_owned())),
            }
        }
    }
}

/// Whether a guest request is walked through the login (see
/// [`RelyingParty::login_redirect`]): no `Authorization`, and an `Accept`
/// that is absent or admits HTML or anything.
fn walks_to_login(headers: &(impl HeaderLookup + ?Sized)) -> bool {
    if headers.header("authorization").is_some() {
        return false;
    }
    let Some(accept) = headers.header("accept") else {
        return true;
    };
    accept.split(',').any(|range| {
        let media = range.split(';').next().unwrap_or_default().trim();
        ["text/html", "*/*", "text/*"]
            .iter()
            .any(|m| media.eq_ignore_ascii_case(m))
    })
}

/// The headers of portcullis' own small HTML pages: never cached, framed
/// or leaking the URL.
fn html_headers() -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "text/html; charset=utf-8".to_owned()),
        ("cache-control", SESSION_CACHE_CONTROL.to_owned()),
        ("pragma", "no-cache".to_owned()),
        // Not `no-referrer`: the form's POST must carry its origin.
        ("referrer-policy", "same-origin".to_owned()),
        // No `form-action`: it would also stop the logout form's redirect
        // to the provider's logout page.
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'".to_owned(),
        ),
        ("x-frame-options", "DENY".to_owned()),
    ]
}

/// 400 with easy-oauth's message, as JSON, never cached.
fn bad_request(description: &str) -> Reply {
    let body = json!({"error": "invalid_request", "error_description": description});
    Reply::json(400, body.to_string()).private()
}

/// The token a `POST /revoke_token` names: `Authorization: Bearer`, else
/// the `token` field of a form (`application/x-www-form-urlencoded`) or of
/// a JSON object body. Empty values count as none.
fn presented_token(headers: &(impl HeaderLookup + ?Sized), body: &[u8]) -> Option<String> {
    if let Some(auth) = headers.header("authorization") {
        let (scheme, token) = auth.split_once(' ')?;
        return (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
            .then(|| token.trim().to_owned());
    }
    let form = headers
        .header("content-type")
        .is_some_and(|ct| ct.contains("application/x-www-form-urlencoded"));
    let token = if form {
        url::form_urlencoded::parse(body)
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    } else {
        serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_owned))
    };
    token.filter(|t| !t.trim().is_empty())
}

/// The claims of a session's caller: the identity claims kept at login,
/// and the login record it is bound to ([`LOGIN_CLAIM`]), which the user
/// tokens minted for it carry.
fn session_claims(session: &SessionData) -> Map<String, Value> {
    let mut claims = session.claims.clone();
    if let Some(login) = &session.login {
        claims.insert(LOGIN_CLAIM.to_owned(), Value::String(login.clone()));
    }
    claims
}

/// The login a session caller is bound to; `None` for any other caller.
fn login_of(caller: Option<&Authenticated>) -> Option<&str> {
    caller
        .filter(|c| c.source == CredentialSource::Session)
        .and_then(|c| c.principal.claim(LOGIN_CLAIM))
        .and_then(Value::as_str)
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl RelyingParty {
    /// A builder for `config`.
    pub fn builder(config: OidcConfig) -> RelyingPartyBuilder {
        RelyingPartyBuilder {
            config,
            clock: clock::system(),
            stores: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OidcConfig {
        &self.inner.config
    }

    /// The authenticator for bearer tokens: the provider's access tokens (for
    /// the configured `audience`) and portcullis' own tokens. It verifies
    /// tokens only: the provider check of the logins user tokens are bound
    /// to is [`authenticate`](Self::authenticate)'s.
    pub fn authenticator(&self) -> &Authenticator {
        &self.inner.authenticator
    }

    /// The capabilities service.
    pub fn capabilities(&self) -> &Capabilities {
        &self.inner.capabilities
    }

    /// The realm of `WWW-Authenticate` challenges.
    pub fn realm(&self) -> &str {
        self.inner.authenticator.realm()
    }

    /// The session cookie's name (`__Host-portcullis-session` over HTTPS).
    pub fn session_cookie_name(&self) -> &str {
        &self.inner.codec.session_name
    }

    /// The login transaction cookie's name (`__Host-portcullis-login` over HTTPS).
    pub fn login_cookie_name(&self) -> &str {
        &self.inner.codec.login_name
    }

    /// Whether the `dangerous_force_user` development mode is on: no
    /// provider is contacted, every request is the configured user.
    fn is_forced(&self) -> bool {
        self.inner.config.dangerous_force_user.is_some()
    }

    /// The discovered provider, discovering it on first use (a failed
    /// discovery is retried by the next call).
    async fn provider(&self) -> Result<Arc<Provider>, Error> {
        self.inner
            .provider
            .get_or_try_init(|| async {
                Provider::discover(&self.inner.config, self.inner.http.clone())
                    .await
                    .map(Arc::new)
            })
            .await
            .cloned()
    }

    /// Authenticates a request of `method` (`"GET"`, `"POST"`, ... as the
    /// request line has it): a bearer token when one is presented (a bad
    /// one is an error, whatever cookie comes with it), else the session
    /// cookie, refreshing the session's tokens when they are due.
    ///
    /// A request authenticated by the session cookie whose method is not
    /// `GET`, `HEAD` or `OPTIONS` must come from `base_url`'s origin
    /// (`Sec-Fetch-Site: same-origin`; without it an `Origin` of
    /// `base_url`; without that a `Referer` on it), unless
    /// [`OidcConfig::csrf_protection`] is off: otherwise it is refused
    /// (403) before anything changes, its session's tokens not even
    /// refreshed. Bearer tokens are not concerned: a browser never sends
    /// them by itself.
    ///
    /// A user token bound to a provider login (minted from a session whose
    /// login gave a refresh token) holds only while the provider accepts
    /// that login: see [`SessionConfig::recheck_interval_secs`](crate::SessionConfig::recheck_interval_secs).
    /// Once the provider refuses it, the token is refused (401 `revoked`)
    /// and the session ends.
    ///
    /// # Errors
    ///
    /// The bearer token's refusal (401/400), a cross-origin state-changing
    /// request (403 `forbidden`), or `Unavailable` (503) when the store or,
    /// for a due refresh or a login check past its stale bound, the
    /// provider cannot answer.
    pub async fn authenticate(
        &self,
        method: &str,
        headers: &(impl HeaderLookup + ?Sized),
    ) -> Result<Authentication, Error> {
        if let Some(forced) = &self.inner.config.dangerous_force_user {
            // Development mode (loopback `base_url` only, checked at build):
            // easy-oauth's `force_user`, whatever the request carries.
            let caller = forced_caller(
                self.inner.issuer.clone(),
                &forced.email,
                forced.sub.as_deref(),
                self.inner.clock.now_secs().saturating_add(3600),
            )?;
            return Ok(Authentication {
                caller: Some(caller),
                set_cookies: Vec::new(),
            });
        }
        if let Some(caller) = self.inner.authenticator.authenticate(headers).await? {
            // A user token bound to a provider login holds only while the
            // provider accepts that login (checked at most every interval).
            if caller.principal.issuer() == SERVICE_ISSUER
                && let Some(login) = caller.principal.claim(LOGIN_CLAIM).and_then(Value::as_str)
            {
                let now = self.inner.clock.now_secs();
                if let LoginState::Dead = self.login_state(login, now, false).await? {
                    return Err(Error::invalid_token(TokenRejection::Revoked));
                }
            }
            return Ok(Authentication {
                caller: Some(caller),
                set_cookies: Vec::new(),
            });
        }
        let codec = &self.inner.codec;
        let session = match codec.load(headers.header("cookie")).await? {
            Loaded::None => return Ok(Authentication::guest()),
            Loaded::Invalid => return Ok(Authentication::clearing(codec.clear_session())),
            Loaded::Session(s) => *s,
        };
        let now = self.inner.clock.now_secs();
        if now >= session.expires_at || session.iss != self.inner.issuer {
            codec.forget(&session.sid).await?;
            return Ok(Authentication::clearing(codec.clear_session()));
        }
        if self
            .inner
            .revocations
            .is_revoked(&ended_id(&session.sid))
            .await?
        {
            return Ok(Authentication::clearing(codec.clear_session()));
        }
        if self.inner.config.csrf_protection && !is_safe_method(method) {
            self.require_same_origin(headers)?;
        }
        let mut session = session;
        let mut set_cookies = Vec::new();
        let leeway = self.inner.config.session.refresh_leeway_secs;
        let mut renewed: Option<Box<SessionData>> = None;
        if let Some(login) = session.login.clone() {
            // The login record holds the refresh token: the session takes
            // the access token it has (refreshing it when due), and ends
            // with the login.
            let access_due = session
                .access_expires_at
                .is_some_and(|exp| now.saturating_add(leeway) >= exp);
            match self.login_state(&login, now, access_due).await? {
                LoginState::Dead => {
                    self.end(&session).await?;
                    return Ok(Authentication::clearing(codec.clear_session()));
                }
                LoginState::Alive(Some(record)) if record.access_token != session.access_token => {
                    let record = *record;
                    renewed = Some(Box::new(SessionData {
                        access_token: record.access_token,
                        access_expires_at: record.access_expires_at,
                        id_token: record.id_token.or(session.id_token.clone()),
                        ..session.clone()
                    }));
                }
                LoginState::Alive(_) => {}
            }
        } else if session.needs_refresh(now, leeway) {
            let current = session.clone();
            let rp = self.clone();
            let outcome = self
                .inner
                .flights
                .run(&session, now, move || {
                    rp.refresh_across_replicas(current, now, Holder::Session)
                })
                .await;
            match outcome {
                Refreshed::Renewed(r) => renewed = Some(r),
                Refreshed::Ended => {
                    self.end(&session).await?;
                    return Ok(Authentication::clearing(codec.clear_session()));
                }
                Refreshed::Unavailable(e) => return Err(e),
            }
        }
        if let Some(renewed) = renewed {
            match codec.save(&renewed, now).await {
                Ok(cookie) => set_cookies.push(cookie),
                Err(SaveError::TooLarge(size)) => {
                    tracing::error!(
                        size,
                        "a refreshed session no longer fits in a cookie; set `session.storage: server`"
                    );
                    self.end(&renewed).await?;
                    return Ok(Authentication::clearing(codec.clear_session()));
                }
                Err(SaveError::Failed(e)) => return Err(e),
            }
            session = *renewed;
        }
        // The session's ID token was verified at the callback, and its
        // claims have been sealed or stored since: they are taken as they are.
        let principal = principal_from_unverified_claims(
            session.iss.clone(),
            session_claims(&session),
            RawToken::new(session.access_token.unwrap_or_default()),
            session.expires_at,
        )?;
        Ok(Authentication {
            caller: Some(authenticated_session(Arc::new(principal))),
            set_cookies,
        })
    }

    /// Refuses a state-changing request that does not come from
    /// `base_url`'s origin (see [`authenticate`](Self::authenticate)).
    fn require_same_origin(&self, headers: &(impl HeaderLookup + ?Sized)) -> Result<(), Error> {
        if comes_from(&self.inner.origin, headers) {
            return Ok(());
        }
        // At `debug`: another site can send these as often as it likes, and
        // refusals must not flood the log.
        tracing::debug!(
            "a state-changing request with the session cookie came from another origin; refused"
        );
        Err(Error::forbidden(
            "cross-origin request refused: a request that changes state with the session \
             cookie must come from this site's own pages (same origin)",
        ))
    }

    /// For portcullis' own state-changing routes, whatever
    /// [`OidcConfig::csrf_protection`] says: refuses `caller` when it was
    /// authenticated by the session cookie and the request does not come
    /// from `base_url`'s origin (its
    /// [`source`](portcullis_core::Authenticated::source) is
    /// [`CredentialSource::Session`]).
    ///
    /// # Errors
    ///
    /// 403 `forbidden`, as [`authenticate`](Self::authenticate) refuses.
    pub fn require_same_origin_for(
        &self,
        caller: Option<&Authenticated>,
        headers: &(impl HeaderLookup + ?Sized),
    ) -> Result<(), Error> {
        match caller {
            Some(c) if c.source == CredentialSource::Session => self.require_same_origin(headers),
            _ => Ok(()),
        }
    }

    /// Ends a session everywhere: its id is recorded as ended until the
    /// session would have expired (a copied cookie stops working), and a
    /// server-side copy is deleted.
    async fn end(&self, session: &SessionData) -> Result<(), Error> {
        self.inner
            .revocations
            .revoke(&ended_id(&session.sid), session.expires_at)
            .await?;
        self.inner.codec.forget(&session.sid).await
    }

    /// Refreshes `session` once across the replicas sharing the session
    /// store: the replica that takes the session's refresh lock (a short
    /// `put_new` lease in the store) redeems the refresh token, publishes
    /// the outcome (sealed, for [`FLIGHT_MEMORY_SECS`]), keeps a server-side
    /// session's new tokens, and releases the lock; the others wait for the
    /// published outcome rather than redeeming the token again, which a
    /// provider that rotates refresh tokens would take for a replay. An
    /// unavailable provider publishes nothing: the next request tries again.
    /// Runs as a task of its own (see [`Flights`]), so that it completes
    /// when the request is cancelled.
    async fn refresh_across_replicas(
        self,
        session: SessionData,
        now: u64,
        holder: Holder,
    ) -> Refreshed {
        let codec = &self.inner.codec;
        let key = flight_key(&session);
        let deadline = tokio::time::Instant::now() + REFRESH_LEASE + Duration::from_secs(1);
        loop {
            match codec.published_refresh(&key).await {
                Ok(Some(outcome)) => return outcome,
                Ok(None) => {}
                Err(e) => return Refreshed::Unavailable(e),
            }
            match codec.take_refresh_lock(&key).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => return Refreshed::Unavailable(e),
            }
            if tokio::time::Instant::now() >= deadline {
                return Refreshed::Unavailable(Error::unavailable(
                    "another replica is refreshing this session and has not finished",
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The lock is ours; an outcome published just before we took it
        // still counts.
        let outcome = match codec.published_refresh(&key).await {
            Ok(Some(outcome)) => outcome,
            Ok(None) => self.refresh(session, now).await,
            Err(e) => Refreshed::Unavailable(e),
        };
        if let Refreshed::Renewed(renewed) = &outcome {
            // Kept now, whether or not the request is still there to take it.
            match holder {
                Holder::Session if codec.storage == SessionStorage::Server => {
                    if let Err(SaveError::Failed(e)) = codec.save(renewed, now).await {
                        tracing::warn!(error = %e, "a refreshed session could not be stored");
                    }
                }
                Holder::Session => {}
                Holder::Login => {
                    if let Err(e) = codec.save_login(renewed).await {
                        tracing::warn!(error = %e, "a refreshed login could not be stored");
                    }
                }
            }
        }
        if let Err(e) = codec
            .publish_refresh(&key, &outcome, now.saturating_add(FLIGHT_MEMORY_SECS))
            .await
        {
            tracing::warn!(error = %e, "a refresh's outcome could not be shared with the other replicas");
        }
        if let Err(e) = codec.release_refresh_lock(&key).await {
            tracing::warn!(error = %e, "a refresh lock could not be released; it lapses by itself");
        }
        outcome
    }

    /// Redeems the session's refresh token. A refreshed ID token must be
    /// valid and keep the session's `iss` and `sub`, or the session ends.
    async fn refresh(&self, session: SessionData, now: u64) -> Refreshed {
        let provider = match self.provider().await {
            Ok(p) => p,
            Err(e) => return Refreshed::Unavailable(e),
        };
        let Some(refresh_token) = session.refresh_token.as_deref() else {
            return Refreshed::Ended;
        };
        let tokens = match provider.refresh(refresh_token).await {
            Ok(t) => t,
            Err(TokenFailure::Refused(code)) => {
                tracing::info!(code = %code, "the provider refused the refresh token; the session ends");
                return Refreshed::Ended;
            }
            Err(TokenFailure::Failed(e)) => return Refreshed::Unavailable(e),
        };
        if let Some(id_token) = &tokens.id_token {
            match self.inner.verifier.verify_as(id_token, TokenKind::Id).await {
                Ok(p) => {
                    let same_sub = p.subject().is_some_and(|s| {
                        Some(s) == session.claims.get("sub").and_then(Value::as_str)
                    });
                    if p.issuer() != session.iss || !same_sub {
                        tracing::warn!(
                            "a refreshed ID token names another issuer or subject; the session ends"
                        );
                        return Refreshed::Ended;
                    }
                }
                Err(e) => {
                    if e.kind() == portcullis_core::ErrorKind::Unavailable {
                        return Refreshed::Unavailable(e);
                    }
                    tracing::warn!(reason = %e, "a refreshed ID token was refused; the session ends");
                    return Refreshed::Ended;
                }
            }
        }
        let Tokens {
            access_token,
            expires_in,
            refresh_token,
            id_token,
            ..
        } = tokens;
        Refreshed::Renewed(Box::new(SessionData {
            access_token: Some(access_token),
            access_expires_at: expires_in.map(|s| now.saturating_add(s)),
            refresh_token: refresh_token.or(session.refresh_token.clone()),
            id_token: id_token.or(session.id_token.clone()),
            checked_at: Some(now),
            ..session
        }))
    }

    /// What the provider says of login `id` at `now`: the login record is
    /// read (unless this process checked it within
    /// `session.recheck_interval_secs`), and its refresh token redeemed when
    /// the check is due, or when `access_due` and the record's access token
    /// is due too. The redemption is the single-flight refresh of sessions
    /// (one per process and, through the store's lock, across replicas); the
    /// rotated token replaces the record's. A refused refresh token ends
    /// the login (its record is deleted, so every replica refuses its
    /// tokens). A provider that cannot be reached leaves the last good
    /// check serving for `session.recheck_stale_secs` past the interval
    /// (asked again at most every [`LOGIN_RETRY_SECS`]), then `Unavailable`;
    /// with `access_due`, at once, as for sessions without a login record.
    async fn login_state(&self, id: &str, now: u64, access_due: bool) -> Result<LoginState, Error> {
        let session_cfg = &self.inner.config.session;
        let interval = session_cfg.recheck_interval_secs;
        let stale = session_cfg.recheck_stale_secs;
        let memo = &self.inner.logins;
        if !access_due
            && memo
                .checked_at(id)
                .is_some_and(|at| now < at.saturating_add(interval))
        {
            return Ok(LoginState::Alive(None));
        }
        let codec = &self.inner.codec;
        let Some(record) = codec.load_login(id).await? else {
            memo.forget(id);
            return Ok(LoginState::Dead);
        };
        let checked_at = record.checked_at.unwrap_or_default();
        let check_due = now >= checked_at.saturating_add(interval);
        let serves_until = checked_at.saturating_add(interval).saturating_add(stale);
        let access_stale = access_due && record.needs_refresh(now, session_cfg.refresh_leeway_secs);
        if !check_due && !access_stale {
            memo.checked(id, checked_at);
            return Ok(LoginState::Alive(Some(Box::new(record))));
        }
        let unavailable = || {
            Error::unavailable(
                "the identity provider cannot be reached to check this login; try again later",
            )
        };
        if !access_due
            && memo
                .failed_at(id)
                .is_some_and(|at| now < at.saturating_add(LOGIN_RETRY_SECS))
        {
            return if now < serves_until {
                Ok(LoginState::Alive(Some(Box::new(record))))
            } else {
                Err(unavailable())
            };
        }
        let current = record.clone();
        let rp = self.clone();
        let outcome = self
            .inner
            .flights
            .run(&record, now, move || {
                rp.refresh_across_replicas(current, now, Holder::Login)
            })
            .await;
        match outcome {
            Refreshed::Renewed(renewed) => {
                memo.checked(id, renewed.checked_at.unwrap_or(now));
                Ok(LoginState::Alive(Some(renewed)))
            }
            Refreshed::Ended => {
                tracing::info!(
                    "the provider refused a login's refresh token; its tokens and sessions end"
                );
                memo.forget(id);
                codec.forget_login(id).await?;
                Ok(LoginState::Dead)
            }
            Refreshed::Unavailable(e) => {
                memo.failed(id, checked_at, now);
                if !access_due && now < serves_until {
                    tracing::warn!(error = %e, "the provider cannot be reached to check a login; its last good check serves");
                    Ok(LoginState::Alive(Some(Box::new(record))))
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Where a guest goes on a route that sends guests to log in
    /// (`RequireCapability<C, LoginRedirect>`, `/token`): `303` to
    /// `{prefix}/login?next=` the page it asked for.
    ///
    /// The guest is walked through the login unless it is an API caller:
    /// it sends an `Authorization` header, or an `Accept` that names media
    /// types and admits neither HTML nor anything (`application/json`).
    /// Browsers (`text/html`), and easy-oauth's clients and other HTTP
    /// libraries that follow redirects with a cookie jar (`*/*`, or no
    /// `Accept`), are sent to log in; API callers get `None` and answer 401.
    /// Routes that do not send guests to log in answer 401 to everyone.
    pub fn login_redirect(
        &self,
        path_and_query: &str,
        headers: &(impl HeaderLookup + ?Sized),
    ) -> Option<Reply> {
        if !walks_to_login(headers) {
            return None;
        }
        let next: String =
            url::form_urlencoded::byte_serialize(safe_return_path(path_and_query).as_bytes())
                .collect();
        Some(Reply::see_other(format!("{}/login?next={next}", self.inner.config.prefix)).private())
    }

    /// `GET {prefix}/login?next=/page&offline_token=true`: remembers where
    /// to return (same-origin paths only), and sends the browser to the
    /// provider with `state`, `nonce` and PKCE (S256).
    ///
    /// The return target is `next`, else easy-oauth's `redirect`, which
    /// names a route: `redirect=token` returns to `{prefix}/token` (a
    /// script's login ends with its token), `redirect=auth` to `/`; any
    /// other value is taken as a path under the same rules as `next`
    /// ([`safe_return_path`]: anything off this origin ends at `/`).
    ///
    /// `headless=true` starts a headless login for a command-line tool
    /// (see `headless_token`; the answer is JSON), and `headless_id=`
    /// (the `login_url` it answers) is the browser's side of it.
    ///
    /// `offline_token=true` asks for a refresh token the way the provider's
    /// discovery document says: the `offline_access` scope when
    /// `scopes_supported` lists it or lists nothing, else Google's
    /// `access_type=offline` with `prompt=consent` (added to a configured
    /// `prompt`, whose other values stay).
    ///
    /// The current session, if any, is left alone: another site may send
    /// the browser here, and that must not log the user out. The callback
    /// ends it when the login completes and a new session replaces it.
    pub async fn login(
        &self,
        query: Option<&str>,
        headers: &(impl HeaderLookup + ?Sized),
    ) -> Reply {
        self.login_from(query, headers, None).await
    }

    /// [`login`](Self::login) for a request from client address `peer`
    /// (the connection's peer, as the framework gives it): headless logins
    /// (`headless=true`) are limited to 10 starts a minute per address (an
    /// IPv6 address by its /64), per process; past it the answer is `429`
    /// with `Retry-After`. Requests without an address (`None`) share one
    /// count. Behind a reverse proxy every request comes from the proxy's
    /// address: limit there too.
    pub async fn login_from(
        &self,
        query: Option<&str>,
        _headers: &(impl HeaderLookup + ?Sized),
        peer: Option<std::net::IpAddr>,
    ) -> Reply {
        let codec = &self.inner.codec;
        let q = params(query);
        if self.is_forced() {
            // As easy-oauth: straight back, no provider.
            return Reply::see_other(ascii_location(&self.return_target(&q))).private();
        }
        if param(&q, "headless") == Some("true") {
            let now = self.inner.clock.now_secs();
            if let Err(wait) = self.inner.headless_starts.start(peer, now) {
                // At `debug`: a client past its limit must not flood the log.
                tracing::debug!("too many headless logins from one address; refused");
                let body = json!({
                    "error": "too_many_requests",
                    "error_description": "too many headless logins started from this address; \
                                          try again later",
                });
                let mut reply = Reply::json(429, body.to_string()).private();
                reply.headers.push(("retry-after", wait.to_string()));
                return reply;
            }
            if param(&q, "device") == Some("true") {
                return self
                    .device_start(param(&q, "offline_token") == Some("true"))
                    .await;
            }
            return self.headless_start().await;
        }
        let headless = match param(&q, "headless_id") {
            None => None,
            Some(id) => match self.headless_pending(id).await {
                Ok(Some(_)) => Some(id.to_owned()),
                Ok(None) => {
                    return login_failed(
                        400,
                        "this headless login is unknown, expired or already completed; \
                         start again from the command-line tool",
                    )
                    .private();
                }
                Err(e) => return Reply::error(&e, self.realm()).private(),
            },
        };
        let return_to = ascii_location(&self.return_target(&q));
        let offline = param(&q, "offline_token") == Some("true");
        let provider = match self.provider().await {
            Ok(p) => p,
            Err(e) => return Reply::error(&e, self.realm()).private(),
        };
        let mut cookies = Vec::new();
        let (state, nonce, verifier) = match (random_token(32), random_token(32), random_token(32))
        {
            (Ok(s), Ok(n), Ok(v)) => (s, n, v),
            _ => {
                return Reply::error(
                    &Error::unavailable("the system random generator failed"),
                    self.realm(),
                );
            }
        };
        let config = &self.inner.config;
        let mut scopes: Vec<String> = config
            .client_kwargs
            .scope
            .split_ascii_whitespace()
            .map(str::to_owned)
            .collect();
        let mut extra: Vec<(String, String)> = config
            .client_kwargs
            .extra
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect();
        if offline {
            ask_offline(provider.offline_request(), &mut scopes, &mut extra);
        }
        let url = provider.authorize_url(state.clone(), nonce.clone(), &verifier, &scopes, &extra);
        let now = self.inner.clock.now_secs();
        let ttl = config.session.login_timeout_secs;
        let tx = Transaction {
            state,
            nonce,
            pkce_verifier: verifier,
            return_to,
            expires_at: now.saturating_add(ttl),
            headless,
        };
        match codec.save_transaction(&tx, ttl) {
            Ok(cookie) => cookies.push(cookie),
            Err(e) => return Reply::error(&e, self.realm()).private(),
        }
        Reply::see_other(url.to_string())
            .with_cookies(cookies)
            .private()
    }

    /// `GET {prefix}/login?headless=true`: starts a headless login for a
    /// command-line tool, answering `{"login_url", "token_url", "expires_at"}`.
    /// The user opens `login_url` in any browser and logs in; `token_url`
    /// ([`headless_token`](Self::headless_token)) answers the user's token
    /// (as `/token` does) once, to whoever holds its secret. Both expire
    /// with `session.login_timeout_secs` (10 minutes by default).
    async fn headless_start(&self) -> Reply {
        let (id, secret) = match (random_token(16), random_token(32)) {
            (Ok(i), Ok(s)) => (i, s),
            _ => {
                let e = Error::unavailable("the system random generator failed");
                return Reply::error(&e, self.realm()).private();
            }
        };
        let config = &self.inner.config;
        let expires_at = self
            .inner
            .clock
            .now_secs()
            .saturating_add(config.session.login_timeout_secs);
        let pending = crate::headless::Pending {
            secret_hash: crate::headless::secret_hash(&secret),
            expires_at,
            token: None,
            device: None,
        };
        let stored = self
            .inner
            .codec
            .store
            .put(&crate::headless::key(&id), &pending.to_bytes(), expires_at)
            .await;
        if let Err(e) = stored {
            return Reply::error(&e, self.realm()).private();
        }
        let base = format!("{}{}", config.base_url.trim_end_matches('/'), config.prefix);
        let body = json!({
            "login_url": format!("{base}/login?headless_id={id}"),
            "token_url": format!("{base}/headless_token?id={id}&secret={secret}"),
            "expires_at": expires_at,
        });
        Reply::json_no_store(200, &body).private()
    }

    /// The pending headless login `id`, if it exists and has not expired.
    async fn headless_pending(&self, id: &str) -> Result<Option<crate::headless::Pending>, Error> {
        if !crate::headless::well_formed(id) {
            return Ok(None);
        }
        let found = self
            .inner
            .codec
            .store
            .get(&crate::headless::key(id))
            .await?;
        let now = self.inner.clock.now_secs();
        Ok(found
            .as_deref()
            .and_then(crate::headless::Pending::from_bytes)
            .filter(|p| p.expires_at > now))
    }

    /// Records the user's token for headless login `id`, which the browser
    /// login that made `session` completes.
    async fn headless_complete(&self, id: &str, session: &SessionData) -> Result<(), Error> {
        let Some(pending) = self.headless_pending(id).await? else {
            return Err(Error::invalid_request(
                "the headless login expired before the browser login completed",
            ));
        };
        let principal = principal_from_unverified_claims(
            session.iss.clone(),
            session_claims(session),
            RawToken::new(session.access_token.clone().unwrap_or_default()),
            session.expires_at,
        )?;
        let caller = authenticated_session(Arc::new(principal));
        let mut pending = pending;
        pending.device = None;
        let reply = self
            .inner
            .capabilities
            .issue_user_token_for_login(Some(&caller), session.login.as_deref())
            .await?;
        let token: Value = serde_json::from_slice(&reply.body)
            .map_err(|_| Error::config("the user token answer is not JSON"))?;
        pending.token = Some(token);
        self.inner
            .codec
            .store
            .put(
                &crate::headless::key(id),
                &pending.to_bytes(),
                pending.expires_at,
            )
            .await
    }

    /// `GET {prefix}/headless_token?id=&secret=`: the `token_url` of a
    /// headless login. Waits (at most 20 seconds per call) until the
    /// browser login completes and answers the user's token as `/token`
    /// does, once; before that, `202 {"status": "pending"}` (call again).
    /// An unknown, expired, already collected login or a wrong secret is
    /// `400` (the same answer for all, so nothing is learnt by guessing).
    pub async fn headless_token(&self, query: Option<&str>) -> Reply {
        let q = params(query);
        let unknown = || {
            bad_request("unknown, expired or already collected headless login (or a wrong secret)")
        };
        let (Some(id), Some(secret)) = (param(&q, "id"), param(&q, "secret")) else {
            return unknown();
        };
        if !crate::headless::well_formed(secret) {
            return unknown();
        }
        let deadline = tokio::time::Instant::now() + crate::headless::WAIT;
        loop {
            let pending = match self.headless_pending(id).await {
                Ok(Some(p)) => p,
                Ok(None) => return unknown(),
                Err(e) => return Reply::error(&e, self.realm()).private(),
            };
            if !ct_eq(&pending.secret_hash, &crate::headless::secret_hash(secret)) {
                return unknown();
            }
            if let Some(token) = pending.token {
                let once = self
                    .inner
                    .revocations
                    .revoke_once(&crate::headless::collected_id(id), pending.expires_at)
                    .await;
                return match once {
                    Ok(true) => {
                        if let Err(e) = self
                            .inner
                            .codec
                            .store
                            .delete(&crate::headless::key(id))
                            .await
                        {
                            tracing::warn!(error = %e, "a collected headless login could not be deleted; it expires by itself");
                        }
                        Reply::json_no_store(200, &token).private()
                    }
                    Ok(false) => unknown(),
                    Err(e) => Reply::error(&e, self.realm()).private(),
                };
            }
            if let Some(device) = pending.device {
                let interval = device.interval;
                if let Some(reply) = self.device_step(id, &device).await {
                    return reply;
                }
                if tokio::time::Instant::now() >= deadline {
                    return device_pending(interval);
                }
            } else if tokio::time::Instant::now() >= deadline {
                return Reply::json_no_store(202, &json!({"status": "pending"})).private();
            }
            tokio::time::sleep(crate::headless::POLL).await;
        }
    }

    /// Where a login started with these query parameters returns: `next`,
    /// else `redirect` (a route name or a path), through [`safe_return_path`].
    fn return_target(&self, q: &[(String, String)]) -> String {
        if let Some(next) = param(q, "next") {
            return safe_return_path(next).to_owned();
        }
        match param(q, "redirect") {
            None | Some("" | "auth") => "/".to_owned(),
            Some("token") => {
                safe_return_path(&format!("{}/token", self.inner.config.prefix)).to_owned()
            }
            Some(path) => safe_return_path(path).to_owned(),
        }
    }

    /// `GET {prefix}/auth`: the provider's callback. Checks the login
    /// transaction (present, intact, unexpired, used once), `state`, the
    /// RFC 9207 `iss` parameter, exchanges the code with the PKCE verifier,
    /// verifies the ID token (signature, issuer, audience, `nonce`, `azp`,
    /// `at_hash`), ends the browser's previous session if it had one,
    /// starts a new session and sends the browser back.
    pub async fn callback(
        &self,
        query: Option<&str>,
        headers: &(impl HeaderLookup + ?Sized),
    ) -> Reply {
        if self.is_forced() {
            return Reply::see_other("/").private();
        }
        let codec = &self.inner.codec;
        let clear_tx = codec.clear_transaction();
        let reply = self.callback_inner(query, headers).await;
        let mut reply = reply.private();
        // The transaction cookie is single-use: it goes, whatever happened.
        reply.headers.insert(0, ("set-cookie", clear_tx));
        reply
    }

    async fn callback_inner(
        &self,
        query: Option<&str>,
        headers: &(impl HeaderLookup + ?Sized),
    ) -> Reply {
        let codec = &self.inner.codec;
        let config = &self.inner.config;
        let q = params(query);
        let restart = format!("start again at {}/login", config.prefix);
        let Some(tx) = codec.load_transaction(headers.header("cookie")) else {
            return login_failed(
                400,
                format!("no login in progress (missing, altered or expired); {restart}"),
            );
        };
        let now = self.inner.clock.now_secs();
        if now >= tx.expires_at {
            return login_failed(400, format!("the login took too long; {restart}"));
        }
        match param(&q, "state") {
            Some(state) if ct_eq(state, &tx.state) => {}
            _ => {
                return login_failed(
                    400,
                    format!("the `state` does not match this login; {restart}"),
                );
            }
        }
        match self
            .inner
            .revocations
            .revoke_once(&format!("login:{}", tx.state), tx.expires_at)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                return login_failed(400, format!("this login was already completed; {restart}"));
            }
            Err(e) => return Reply::error(&e, self.realm()),
        }
        let provider = match self.provider().await {
            Ok(p) => p,
            Err(e) => return Reply::error(&e, self.realm()),
        };
        // RFC 9207: the answer must come from the provider this login went to.
        match param(&q, "iss") {
            Some(iss) if iss == provider.issuer() => {}
            Some(_) => {
                // At `debug`: anyone can send callbacks, and refusals must not flood the log.
                tracing::debug!("a login callback names another issuer (mix-up attempt?)");
                return login_failed(
                    400,
                    "the callback's `iss` is not the provider this login went to",
                );
            }
            None if provider.iss_parameter() => {
                return login_failed(
                    400,
                    "the callback lacks the `iss` parameter its provider announces",
                );
            }
            None => {}
        }
        if let Some(err) = param(&q, "error") {
            return login_failed(400, format!("the provider answered `{}`", error_code(err)));
        }
        let Some(code) = param(&q, "code").filter(|c| !c.is_empty()) else {
            return login_failed(400, "the callback carries no `code`");
        };
        let tokens = match provider.exchange_code(code, &tx.pkce_verifier).await {
            Ok(t) => t,
            Err(TokenFailure::Refused(code)) => {
                return login_failed(
                    400,
                    format!("the provider refused the code: `{}`", error_code(&code)),
                );
            }
            Err(TokenFailure::Failed(e)) => return Reply::error(&e, self.realm()),
        };
        let claims = match self
            .check_id_token(&tokens, Some(&tx.nonce), &provider)
            .await
        {
            Ok(c) => c,
            Err(reply) => return reply,
        };
        let mut session = SessionData {
            sid: match random_token(32) {
                Ok(s) => s,
                Err(e) => return Reply::error(&e, self.realm()),
            },
            iss: provider.issuer().to_owned(),
            claims,
            access_token: Some(tokens.access_token.clone()),
            access_expires_at: tokens.expires_in.map(|s| now.saturating_add(s)),
            refresh_token: tokens.refresh_token.clone(),
            id_token: tokens.id_token.clone(),
            expires_at: now.saturating_add(config.session.max_age_secs),
            login: None,
            checked_at: None,
        };
        if let Err(e) = self.bind_login(&mut session, now).await {
            return Reply::error(&e, self.realm());
        }
        // The session this browser had, if any, ends here, when the new one
        // replaces it (not at `/login`, which another site may trigger).
        if let Ok(Loaded::Session(old)) = codec.load(headers.header("cookie")).await
            && let Err(e) = self.end(&old).await
        {
            return Reply::error(&e, self.realm());
        }
        let cookie = match codec.save(&session, now).await {
            Ok(c) => c,
            Err(SaveError::TooLarge(size)) => {
                tracing::error!(
                    size,
                    "the login session does not fit in a cookie; set `session.storage: server`"
                );
                let body = json!({
                    "error": "session_too_large",
                    "error_description": format!(
                        "the provider's tokens make a session of {size} bytes, more than a cookie holds; \
                         the operator must configure server-side sessions (`session.storage: server`)"
                    ),
                });
                return Reply::json(500, body.to_string());
            }
            Err(SaveError::Failed(e)) => return Reply::error(&e, self.realm()),
        };
        let who = session
            .claims
            .get("email")
            .and_then(|v| v.as_str())
            .unwrap_or("(no email)");
        tracing::info!(user = %who, "logged in");
        if let Some(id) = &tx.headless
            && let Err(e) = self.headless_complete(id, &session).await
        {
            return Reply::error(&e, self.realm()).with_cookies([cookie]);
        }
        Reply::see_other(tx.return_to).with_cookies([cookie])
    }

    /// Moves the provider's refresh token of a new login, if it gave one,
    /// to a login record that the session and its user tokens share: the
    /// token is then redeemed in one place only, and the record outlives
    /// every user token the session can mint.
    async fn bind_login(&self, session: &mut SessionData, now: u64) -> Result<(), Error> {
        if session.refresh_token.is_none() {
            return Ok(());
        }
        let record = LoginRecord {
            sid: random_token(32)?,
            id_token: None,
            checked_at: Some(now),
            expires_at: session
                .expires_at
                .saturating_add(self.inner.capabilities.user_token_ttl_secs()),
            ..session.clone()
        };
        self.inner.codec.save_login(&record).await?;
        session.refresh_token = None;
        session.login = Some(record.sid);
        Ok(())
    }

    /// Verifies the ID token of a code exchange; answers the identity claims to keep.
    async fn check_id_token(
        &self,
        tokens: &Tokens,
        nonce: Option<&str>,
        provider: &Provider,
    ) -> Result<Map<String, Value>, Reply> {
        let Some(id_token) = tokens.id_token.as_deref() else {
            return Err(login_failed(400, "the provider returned no ID token"));
        };
        let principal = match self.inner.verifier.verify_as(id_token, TokenKind::Id).await {
            Ok(p) => p,
            Err(e) if e.kind() == portcullis_core::ErrorKind::Unavailable => {
                return Err(Reply::error(&e, self.realm()));
            }
            Err(e) if e.rejection() == Some(portcullis_core::TokenRejection::WrongTokenType) => {
                return Err(login_failed(
                    400,
                    "the ID token was refused: it is not an ID token",
                ));
            }
            Err(e) => {
                return Err(login_failed(
                    400,
                    format!("the ID token was refused: {}", e.message()),
                ));
            }
        };
        if principal.issuer() != provider.issuer() {
            return Err(login_failed(400, "the ID token comes from another issuer"));
        }
        let claims = principal.claims();
        // A device login (RFC 8628) sends no nonce: the device code binds
        // the answer to it.
        if let Some(nonce) = nonce {
            match claims.get("nonce").and_then(Value::as_str) {
                Some(n) if ct_eq(n, nonce) => {}
                _ => {
                    return Err(login_failed(
                        400,
                        "the ID token's `nonce` does not match this login",
                    ));
                }
            }
        }
        let client_id = self.inner.config.client_id.as_str();
        let several_audiences = claims
            .get("aud")
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > 1);
        match claims.get("azp").and_then(Value::as_str) {
            Some(azp) if azp != client_id => {
                return Err(login_failed(
                    400,
                    "the ID token was issued to another client (`azp`)",
                ));
            }
            None if several_audiences => {
                return Err(login_failed(
                    400,
                    "the ID token has several audiences and no `azp`",
                ));
            }
            _ => {}
        }
        if let Some(at_hash) = claims.get("at_hash") {
            let expected = crate::hash::token_hash(id_token, &tokens.access_token);
            if at_hash
                .as_str()
                .is_none_or(|h| expected.as_deref() != Some(h))
            {
                return Err(login_failed(
                    400,
                    "the ID token's `at_hash` does not match the access token",
                ));
            }
        }
        let mut kept: Map<String, Value> = KEPT_CLAIMS
            .iter()
            .filter_map(|k| claims.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect();
        if !kept.contains_key("email") {
            match provider.userinfo(&tokens.access_token).await {
                Ok(Some(info)) => {
                    if info.get("sub") != kept.get("sub") {
                        return Err(login_failed(
                            400,
                            "the userinfo answer names another subject",
                        ));
                    }
                    for k in ["email", "email_verified", "name", "preferred_username"] {
                        if let Some(v) = info.get(k) {
                            kept.entry(k.to_owned()).or_insert_with(|| v.clone());
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => return Err(Reply::error(&e, self.realm())),
            }
        }
        // An address the provider says it has not verified must not select
        // someone else's capabilities: the user is then known by `sub` only.
        // Core's one rule for every path: the session keeps an address only
        // when the provider vouched for it, and then says so, since
        // `principal_from_unverified_claims` applies the same rule.
        match vouched_email(&kept, self.inner.config.trust_email_without_verified_claim) {
            Some(email) => {
                kept.insert("email".to_owned(), Value::String(email));
                kept.insert("email_verified".to_owned(), Value::Bool(true));
            }
            None => {
                if kept.remove("email").is_some() {
                    tracing::warn!(
                        "the provider does not vouch for this user's email; the user is known by `sub`"
                    );
                }
                kept.remove("email_verified");
            }
        }
        if let Some(scope) = &tokens.scope {
            kept.insert("scope".to_owned(), Value::String(scope.clone()));
        }
        Ok(kept)
    }

    /// `GET {prefix}/token`: a token for the logged-in user
    /// (`{"token", "refresh_token", "expires_at", ...}`), or with
    /// `?user=bot@service` a service token (managers only). An
    /// unauthenticated browser is sent to log in and back.
    pub async fn token(
        &self,
        caller: Option<&Authenticated>,
        query: Option<&str>,
        path_and_query: &str,
        headers: &(impl HeaderLookup + ?Sized),
    ) -> Reply {
        if self.is_forced() {
            // easy-oauth's answer under `force_user`: a token that stands for
            // nothing, since no credential is read in this mode.
            return Reply::json_no_store(200, &json!({"refresh_token": "XXX"})).private();
        }
        let q = params(query);
        let caps = &self.inner.capabilities;
        if let Some(user) = param(&q, "user") {
            return json_reply(
                caps.issue_service_token(caller, Some(user)).await,
                self.realm(),
            );
        }
        if caller.is_none()
            && let Some(redirect) = self.login_redirect(path_and_query, headers)
        {
            return redirect;
        }
        json_reply(
            caps.issue_user_token_for_login(caller, login_of(caller))
                .await,
            self.realm(),
        )
    }

    /// `GET {prefix}/logout`, easy-oauth's logout link: for a navigation
    /// from this site or by the user (`Sec-Fetch-Site` `same-origin` or
    /// `none`; without it, no `Referer` or one on `base_url`'s origin),
    /// ends the session as [`logout_post`](Self::logout_post) does.
    /// Otherwise another site sent the browser here, and the session stays:
    /// the answer is a small page (never cached) asking the user to confirm
    /// with a button that posts to `{prefix}/logout`.
    pub async fn logout(&self, headers: &(impl HeaderLookup + ?Sized)) -> Reply {
        if self.is_forced() {
            return Reply::see_other("/").private();
        }
        if same_origin_navigation(&self.inner.origin, headers) {
            return self.end_session(headers).await;
        }
        self.logout_confirmation()
    }

    /// `POST {prefix}/logout`: the request must come from `base_url`'s
    /// origin, as every state-changing request with the session cookie (see
    /// [`authenticate`](Self::authenticate); this route keeps the check
    /// whatever [`OidcConfig::csrf_protection`] says), or it is refused
    /// (403) and the session stays. Then it ends the session (here and,
    /// through its id, on every replica), then RP-initiated logout at the
    /// provider when it has an `end_session_endpoint`, back to `/`.
    pub async fn logout_post(&self, headers: &(impl HeaderLookup + ?Sized)) -> Reply {
        if self.is_forced() {
            return Reply::see_other("/").private();
        }
        if let Err(e) = self.require_same_origin(headers) {
            return Reply::error(&e, self.realm()).private();
        }
        self.end_session(headers).await
    }

    /// `GET {prefix}/revoke_token`: easy-oauth's small page, a form that
    /// posts a token (or nothing: the session's) to `{prefix}/revoke_token`.
    pub fn revoke_token_page(&self) -> Reply {
        let action = html_escape(&format!("{}/revoke_token", self.inner.config.prefix));
        let body = format!(
            "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Revoke a token</title></head>\n\
             <body>\n<h1>Revoke a token</h1>\n\
             <p>Paste a token from <code>/token</code> to revoke it. Leave the field empty to \
             revoke this browser's login instead: its refresh token is revoked at the identity \
             provider when the provider allows it, and the session ends.</p>\n\
             <form method=\"post\" action=\"{action}\">\n\
             <p><input name=\"token\" size=\"80\" autocomplete=\"off\" aria-label=\"token\"></p>\n\
             <p><button type=\"submit\">Revoke</button></p>\n</form>\n</body>\n</html>\n"
        );
        Reply {
            status: 200,
            headers: html_headers(),
            body: body.into_bytes(),
        }
    }

    /// `POST {prefix}/revoke_token`, as easy-oauth answers it: revokes the
    /// token given in the `Authorization: Bearer` header, else in the
    /// `token` field of a form or JSON body: a user token of this service
    /// (from `/token`), revoked here for every replica. Without a token,
    /// the session's login: its refresh token is revoked at the provider
    /// (RFC 7009) when discovery names a `revocation_endpoint`, and the
    /// session ends. Answers `{"status": "ok"}`.
    ///
    /// A request authenticated by the session cookie must come from
    /// `base_url`'s origin (403 otherwise), as every state-changing route.
    /// Errors: 400 `Malformed token`, 400 for a service token, 400 `No token
    /// to revoke` (neither a token nor a session), 502 when the provider
    /// refuses the revocation, 503 when it or the store cannot answer.
    pub async fn revoke_token(
        &self,
        caller: Option<&Authenticated>,
        headers: &(impl HeaderLookup + ?Sized),
        body: &[u8],
    ) -> Reply {
        if let Err(e) = self.require_same_origin_for(caller, headers) {
            return Reply::error(&e, self.realm()).private();
        }
        let ok = || Reply::json(200, json!({"status": "ok"}).to_string()).private();
        if let Some(token) = presented_token(headers, body) {
            return match self.inner.capabilities.revoke_user_token(&token).await {
                Ok(()) => ok(),
                Err(e) if e.status() == 400 => bad_request(e.message()),
                Err(e) => Reply::error(&e, self.realm()).private(),
            };
        }
        let codec = &self.inner.codec;
        let session = match codec.load(headers.header("cookie")).await {
            Ok(Loaded::Session(s)) => s,
            Ok(_) => return bad_request("No token to revoke"),
            Err(e) => return Reply::error(&e, self.realm()).private(),
        };
        // The login's refresh token: the session's own, or its login
        // record's, which then goes with every user token bound to it.
        let record = match &session.login {
            Some(login) => match codec.load_login(login).await {
                Ok(r) => r,
                Err(e) => return Reply::error(&e, self.realm()).private(),
            },
            None => None,
        };
        let refresh_token = session
            .refresh_token
            .as_deref()
            .or(record.as_ref().and_then(|r| r.refresh_token.as_deref()));
        if let Some(refresh_token) = refresh_token {
            let provider = match self.provider().await {
                Ok(p) => p,
                Err(e) => return Reply::error(&e, self.realm()).private(),
            };
            if provider.revokes()
                && let Err(e) = provider.revoke_refresh_token(refresh_token).await
            {
                return Reply::error(&e, self.realm()).private();
            }
        }
        if let Some(login) = &session.login {
            self.inner.logins.forget(login);
            if let Err(e) = codec.forget_login(login).await {
                return Reply::error(&e, self.realm()).private();
            }
        }
        if let Err(e) = self.end(&session).await {
            return Reply::error(&e, self.realm()).private();
        }
        ok().with_cookies([codec.clear_session()])
    }

    /// The page that asks a user sent here by another site to confirm the logout.
    fn logout_confirmation(&self) -> Reply {
        let action = html_escape(&format!("{}/logout", self.inner.config.prefix));
        let body = format!(
            "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Log out?</title></head>\n\
             <body>\n<form method=\"post\" action=\"{action}\">\n\
             <p>Do you want to log out?</p>\n<button type=\"submit\">Log out</button>\n\
             </form>\n</body>\n</html>\n"
        );
        Reply {
            status: 200,
            headers: html_headers(),
            body: body.into_bytes(),
        }
    }

    /// Ends the request's session, answering the redirect after logout.
    async fn end_session(&self, headers: &(impl HeaderLookup + ?Sized)) -> Reply {
        let codec = &self.inner.codec;
        let cookies = vec![codec.clear_session()];
        let session = match codec.load(headers.header("cookie")).await {
            Ok(Loaded::Session(s)) => Some(s),
            Ok(_) => None,
            Err(e) => {
                return Reply::error(&e, self.realm())
                    .with_cookies(cookies)
                    .private();
            }
        };
        let mut location = "/".to_owned();
        if let Some(session) = session {
            if let Err(e) = self.end(&session).await {
                return Reply::error(&e, self.realm())
                    .with_cookies(cookies)
                    .private();
            }
            if let Ok(provider) = self.provider().await
                && let Some(url) = provider.end_session_url(
                    session.id_token.as_deref(),
                    &self.inner.config.client_id,
                    &self.inner.config.post_logout_redirect_uri(),
                )
            {
                location = url.to_string();
            }
        }
        Reply::see_other(location).with_cookies(cookies).private()
    }
}

#[cfg(test)]
mod tests {
    use super::{OfflineRequest, ask_offline};

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    struct Headers(Vec<(&'static str, &'static str)>);

    impl portcullis_core::HeaderLookup for Headers {
        fn header(&self, name: &str) -> Option<&str> {
            self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
        }
    }

    #[test]
    fn guests_that_follow_redirects_are_walked_to_the_login() {
        for walked in [
            vec![],
            vec![("accept", "*/*")],
            vec![("accept", "text/html,application/xhtml+xml,*/*;q=0.8")],
            vec![("accept", "application/json, text/*")],
        ] {
            assert!(
                super::walks_to_login(&Headers(walked.clone())),
                "{walked:?}"
            );
        }
        for api in [
            vec![("accept", "application/json")],
            vec![("accept", "application/json, application/problem+json")],
            vec![("authorization", "Bearer x"), ("accept", "*/*")],
            vec![("authorization", "Basic eDp5")],
        ] {
            assert!(!super::walks_to_login(&Headers(api.clone())), "{api:?}");
        }
    }

    #[test]
    fn offline_access_is_asked_as_the_provider_wants() {
        let mut scopes = vec!["openid".to_owned(), "email".to_owned()];
        let mut extra = pairs(&[("prompt", "select_account")]);
        ask_offline(OfflineRequest::Scope, &mut scopes, &mut extra);
        ask_offline(OfflineRequest::Scope, &mut scopes, &mut extra);
        assert_eq!(scopes, ["openid", "email", "offline_access"]);
        assert_eq!(extra, pairs(&[("prompt", "select_account")]));

        let mut scopes = vec!["openid".to_owned()];
        ask_offline(OfflineRequest::AccessType, &mut scopes, &mut extra);
        assert_eq!(scopes, ["openid"]);
        assert_eq!(
            extra,
            pairs(&[
                ("prompt", "select_account consent"),
                ("access_type", "offline")
            ])
        );
        let mut bare = pairs(&[("access_type", "online")]);
        ask_offline(OfflineRequest::AccessType, &mut scopes, &mut bare);
        assert_eq!(
            bare,
            pairs(&[("access_type", "offline"), ("prompt", "consent")])
        );
    }
}
