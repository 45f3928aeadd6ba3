//! The mock OpenID Connect provider: its handle, options and faults.

mod control;
mod device;
mod jwt;
mod keys;
mod login;
mod oauth;
mod params;
mod routes;
mod session;
mod state;
mod token;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use portcullis_core::Algorithm;
use portcullis_core::clock::ManualClock;
use portcullis_core::mint::SigningKey;
use tokio::sync::watch;

use self::keys::KeyRing;
pub use self::login::MockUser;
use self::login::{IdTokenOverride, LoginState, QueuedError};
use self::state::{Quirks, Settings, State, random_hex};
pub use self::token::TokenBuilder;

/// A way to make the JWKS endpoint misbehave; see [`MockProvider::set_jwks_fault`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this HTTP status (and a small JSON error body); a code
    /// that is not a valid status answers 500.
    Status(u16),
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// Answer 200 with a body that is not JSON.
    Malformed,
    /// Answer 200 with `{"keys": []}`.
    EmptyKeys,
}

/// How a [`MockProvider`] starts.
///
/// ```
/// use portcullis_core::Algorithm;
/// use portcullis_testing::MockOptions;
/// let options = MockOptions::default()
///     .audience("orders-api")
///     .algorithms(vec![Algorithm::ES256, Algorithm::PS256])
///     .redirect_uri("http://127.0.0.1:3000/callback");
/// assert_eq!(options.client_id, "portcullis-client");
/// assert_eq!(options.client_secret, "portcullis-secret");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MockOptions {
    /// The default `aud` of access tokens; `"portcullis-api"` by default.
    pub audience: String,
    /// The client id: the `client_id` claim of access tokens and the `aud` of
    /// ID tokens; `"portcullis-client"` by default.
    pub client_id: String,
    /// The algorithms with a published key; RS256, ES256 and EdDSA by default.
    /// HMAC keys are never published.
    pub algorithms: Vec<Algorithm>,
    /// Whether keys replaced by [`MockProvider::rotate_keys`] stay in the JWKS;
    /// `false` by default.
    pub keep_previous_keys_on_rotation: bool,
    /// The port on 127.0.0.1 to listen on; 0 (the default) picks a free one.
    pub port: u16,
    /// The clock minted tokens are dated by; by default a new [`ManualClock`]
    /// set to the current system time.
    pub clock: Option<ManualClock>,
    /// The client secret, for `client_secret_basic` and `client_secret_post`
    /// at the token endpoint; `"portcullis-secret"` by default.
    pub client_secret: String,
    /// Redirect URIs registered from the start; see
    /// [`MockProvider::register_redirect_uri`]. None by default.
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs registered from the start; see
    /// [`MockProvider::register_post_logout_redirect_uri`]. None by default.
    pub post_logout_redirect_uris: Vec<String>,
    /// Lifetime of the access and ID tokens the token endpoint issues, in
    /// whole seconds (at least one); 300 seconds by default.
    pub access_token_ttl: Duration,
    /// Whether authorization responses carry `iss` and discovery says so with
    /// `authorization_response_iss_parameter_supported` (RFC 9207); `true`
    /// by default.
    pub iss_parameter: bool,
    /// The client authentication methods discovery lists in
    /// `token_endpoint_auth_methods_supported`, and the only ones the token
    /// endpoint accepts; `None` leaves the field out of discovery (RFC 8414:
    /// `client_secret_basic` is then the default) and accepts both.
    /// `client_secret_basic` and `client_secret_post` by default.
    pub token_endpoint_auth_methods: Option<Vec<String>>,
    /// Makes ID tokens issued to a client that authenticated with HTTP Basic
    /// carry `aud: null`, as easy-oauth's mock provider does. Off by default.
    pub null_id_token_audience_under_basic: bool,
    /// The scopes discovery lists in `scopes_supported`. With
    /// `offline_access` (the default list has it), that scope gets a
    /// refresh token; without it, the provider behaves as Google does: a
    /// refresh token for `access_type=offline` (and `offline_access` is
    /// refused as an unknown scope).
    pub scopes_supported: Vec<String>,
    /// Adds a `revocation_endpoint` (RFC 7009, `{issuer}/revoke`) to
    /// discovery; `true` by default. The endpoint itself is always served.
    pub revocation_endpoint: bool,
    /// Adds a `device_authorization_endpoint` (RFC 8628,
    /// `{issuer}/device_authorization`) to discovery and takes the
    /// device-code grant at the token endpoint; `false` by default. The user
    /// approves a code at `GET {issuer}/device?user_code=...` (as the next
    /// user: a queued one, else `login_hint`, else the provider-wide email;
    /// `action=deny` denies it), or through
    /// [`MockProvider::approve_device`] and [`MockProvider::deny_device`].
    pub device_authorization: bool,
    /// The `interval` a device authorization starts with, in seconds; 5 by
    /// default (RFC 8628). Each poll before it passes is `slow_down`, and
    /// adds 5 seconds.
    pub device_interval_secs: u64,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            audience: "portcullis-api".to_owned(),
            client_id: "portcullis-client".to_owned(),
            algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
            keep_previous_keys_on_rotation: false,
            port: 0,
            clock: None,
            client_secret: "portcullis-secret".to_owned(),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            access_token_ttl: Duration::from_secs(300),
            iss_parameter: true,
            token_endpoint_auth_methods: Some(vec![
                "client_secret_basic".to_owned(),
                "client_secret_post".to_owned(),
            ]),
            null_id_token_audience_under_basic: false,
            scopes_supported: ["openid", "email", "profile", "offline_access"]
                .map(str::to_owned)
                .to_vec(),
            revocation_endpoint: true,
            device_authorization: false,
            device_interval_secs: 5,
        }
    }
}

impl MockOptions {
    /// Sets [`audience`](Self::audience).
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// Sets [`client_id`](Self::client_id).
    #[must_use]
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// Sets [`algorithms`](Self::algorithms).
    #[must_use]
    pub fn algorithms(mut self, algorithms: Vec<Algorithm>) -> Self {
        self.algorithms = algorithms;
        self
    }

    /// Sets [`keep_previous_keys_on_rotation`](Self::keep_previous_keys_on_rotation).
    #[must_use]
    pub fn keep_previous_keys_on_rotation(mut self, keep: bool) -> Self {
        self.keep_previous_keys_on_rotation = keep;
        self
    }

    /// Sets [`port`](Self::port).
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets [`clock`](Self::clock).
    #[must_use]
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Sets [`client_secret`](Self::client_secret).
    #[must_use]
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = secret.into();
        self
    }

    /// Adds a registered redirect URI to [`redirect_uris`](Self::redirect_uris).
    #[must_use]
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uris.push(uri.into());
        self
    }

    /// Adds a registered post-logout redirect URI to
    /// [`post_logout_redirect_uris`](Self::post_logout_redirect_uris).
    #[must_use]
    pub fn post_logout_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.post_logout_redirect_uris.push(uri.into());
        self
    }

    /// Sets [`access_token_ttl`](Self::access_token_ttl).
    #[must_use]
    pub fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_token_ttl = ttl;
        self
    }

    /// Sets [`iss_parameter`](Self::iss_parameter).
    #[must_use]
    pub fn iss_parameter(mut self, enabled: bool) -> Self {
        self.iss_parameter = enabled;
        self
    }

    /// Sets [`token_endpoint_auth_methods`](Self::token_endpoint_auth_methods).
    #[must_use]
    pub fn token_endpoint_auth_methods(mut self, methods: Option<&[&str]>) -> Self {
        self.token_endpoint_auth_methods =
            methods.map(|m| m.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    /// easy-oauth's mock provider: discovery lists no client authentication
    /// method, and an ID token issued under HTTP Basic has `aud: null`.
    #[must_use]
    pub fn like_easy_oauth_mock(mut self) -> Self {
        self.token_endpoint_auth_methods = None;
        self.null_id_token_audience_under_basic = true;
        self
    }

    /// Sets [`scopes_supported`](Self::scopes_supported).
    #[must_use]
    pub fn scopes_supported(mut self, scopes: &[&str]) -> Self {
        self.scopes_supported = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Sets [`device_authorization`](Self::device_authorization).
    #[must_use]
    pub fn device_authorization(mut self, advertised: bool) -> Self {
        self.device_authorization = advertised;
        self
    }

    /// Sets [`device_interval_secs`](Self::device_interval_secs).
    #[must_use]
    pub fn device_interval_secs(mut self, secs: u64) -> Self {
        self.device_interval_secs = secs;
        self
    }

    /// Sets [`revocation_endpoint`](Self::revocation_endpoint).
    #[must_use]
    pub fn revocation_endpoint(mut self, advertised: bool) -> Self {
        self.revocation_endpoint = advertised;
        self
    }
}

/// Whether `uri` may be registered as a redirect URI: it has no fragment
/// (RFC 6749 §3.1.2).
fn check_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.contains('#') {
        Err(format!("a redirect URI cannot have a fragment: `{uri}`"))
    } else {
        Ok(())
    }
}

/// An OpenID Connect provider served on `127.0.0.1` from the current tokio runtime.
///
/// Clones share one provider. The server stops when [`shutdown`](Self::shutdown)
/// is called or the last clone is dropped (and with the runtime it runs on).
///
/// Endpoints: `GET /.well-known/openid-configuration`, `GET /jwks` and
/// `POST /mint` (a JSON body with the optional fields `sub`, `email`,
/// `username`, `aud`, `scope`, `expires_in`, `kind` (`"access"` or `"id"`),
/// `alg` and `claims`, answered with `{"token": "..."}`). Every request is
/// counted by path, unknown paths included.
///
/// Keys: one per configured algorithm, published in the JWKS. Asking for
/// another algorithm (through [`signing_key`](Self::signing_key) or
/// [`TokenBuilder::algorithm`]) makes a key for it that signs but is never
/// published, for tests of tokens signed by a key the verifier cannot know.
///
/// # Login flows
///
/// The provider also runs the authorization code flow for one confidential
/// client ([`client_id`](Self::client_id), [`client_secret`](Self::client_secret)),
/// as strictly as a careful real provider:
///
/// - `GET /authorize` needs `response_type=code`, the client id, a
///   [registered](Self::register_redirect_uri) `redirect_uri` (exact match),
///   a `scope` with `openid`, a `state`, and PKCE (`code_challenge` with
///   `code_challenge_method=S256`); `nonce`, `login_hint`, `prompt` and
///   `max_age` are optional. An unknown client or redirect URI answers 400
///   with an OAuth JSON error; other errors redirect with `error`,
///   `error_description`, `state` and `iss`. Success redirects with `code`,
///   `state` and `iss`. A code is single-use, valid for 60 seconds of the
///   [clock](Self::clock), and bound to the redirect URI, the challenge, the
///   nonce, the user and the scope.
/// - `POST /token` (a form body) authenticates the client with HTTP Basic
///   (`client_secret_basic`, id and secret form-urlencoded first) or
///   `client_secret_post`, and serves the `authorization_code`,
///   `refresh_token` and `client_credentials` grants. Access tokens are
///   [`TokenBuilder`] access tokens signed with the first configured
///   algorithm; ID tokens carry `nonce` (when sent), `at_hash`, `auth_time`,
///   `email` and the user's extra claims. A refresh token comes only with the
///   `offline_access` scope (or `access_type=offline` when
///   [`MockOptions::scopes_supported`] lacks that scope); refresh tokens
///   rotate on every use, and a replayed refresh token or code revokes every
///   token of its login. Every answer has `Cache-Control: no-store`. Only the
///   [client authentication methods](MockOptions::token_endpoint_auth_methods)
///   discovery lists are accepted.
/// - `POST /revoke` (RFC 7009) authenticates the client the same way and
///   revokes a refresh token with every token of its login; it answers 200
///   for an unknown token too ([`revocation_count`](Self::revocation_count)).
/// - `GET`/`POST /userinfo` answers the claims of the user of a valid,
///   unexpired, unrevoked access token of this provider with the `openid`
///   scope, signed by a key the JWKS still lists; otherwise 401 (or 403 for
///   the scope) with a `WWW-Authenticate: Bearer` challenge.
/// - `GET`/`POST /logout` takes `id_token_hint` (an ID token of this provider
///   for the client, expired or not), `client_id`, `post_logout_redirect_uri`
///   ([registered](Self::register_post_logout_redirect_uri), and only with
///   `id_token_hint` or `client_id`) and `state`, and redirects there with
///   `state`, or answers 200 in plain text.
///
/// Who logs in: the next [queued user](Self::queue_user), else the request's
/// `login_hint` as the email, else the [provider-wide email](Self::set_email),
/// else `test@example.com`; the subject comes from [`MockUser::subject_for`]
/// unless set. Tests steer the flows from outside the process too, with JSON
/// bodies answered `204`: `POST /queue_user` (`{"email", "sub"?, "claims"?}`),
/// `POST /set_email` (`{"email"}`), `POST /queue_error` and
/// `POST /queue_token_error` (`{"error", "error_description"?}`).
///
/// ```
/// use portcullis_testing::{MockOptions, MockProvider, MockUser};
/// # fn main() -> std::io::Result<()> {
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// # runtime.block_on(async {
/// let options = MockOptions::default().redirect_uri("http://127.0.0.1:3000/callback");
/// let provider = MockProvider::start_with(options).await?;
/// provider.register_post_logout_redirect_uri("http://127.0.0.1:3000/");
/// provider.queue_user_with(
///     MockUser::new("erin@example.com").with_claim("groups", serde_json::json!(["ops"])),
/// );
/// assert_eq!(provider.authorize_url(), format!("{}/authorize", provider.issuer()));
/// assert_eq!(provider.client_secret(), "portcullis-secret");
/// # Ok(())
/// # })
/// # }
/// ```
#[derive(Clone)]
pub struct MockProvider {
    inner: Arc<Inner>,
}

struct Inner {
    state: Arc<State>,
    /// Dropping it (with the last handle) stops the server, as does sending `true`.
    shutdown: watch::Sender<bool>,
}

impl MockProvider {
    /// Starts a provider with the default options on a free port.
    pub async fn start() -> io::Result<MockProvider> {
        Self::start_with(MockOptions::default()).await
    }

    /// Starts a provider with `options`.
    ///
    /// Generates the keys (an RSA key takes a moment), binds
    /// `127.0.0.1:{options.port}` and spawns the server on the current tokio
    /// runtime; it accepts connections as soon as this returns.
    ///
    /// # Errors
    ///
    /// If the port cannot be bound, a key cannot be generated, or a
    /// redirect URI has a fragment.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn start_with(options: MockOptions) -> io::Result<MockProvider> {
        let MockOptions {
            audience,
            client_id,
            algorithms: requested,
            keep_previous_keys_on_rotation,
            port,
            clock,
            client_secret,
            redirect_uris,
            post_logout_redirect_uris,
            access_token_ttl,
            iss_parameter,
            token_endpoint_auth_methods,
            null_id_token_audience_under_basic,
            scopes_supported,
            revocation_endpoint,
            device_authorization,
            device_interval_secs,
        } = options;
        for uri in redirect_uris.iter().chain(&post_logout_redirect_uris) {
            check_redirect_uri(uri).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        let mut algorithms = Vec::with_capacity(requested.len());
        for alg in requested {
            if !algorithms.contains(&alg) {
                algorithms.push(alg);
            }
        }
        let tag = format!("mock-{}", random_hex(3));
        let keys = KeyRing::new(tag, &algorithms, keep_previous_keys_on_rotation)
            .map_err(io::Error::other)?;

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let settings = Settings {
            issuer: format!("http://127.0.0.1:{}", addr.port()),
            audience,
            client_id,
            client_secret,
            clock: clock.unwrap_or_else(ManualClock::starting_now),
            algorithms,
            access_token_ttl: access_token_ttl.as_secs().max(1),
            iss_parameter,
            quirks: Quirks {
                token_endpoint_auth_methods,
                null_id_token_audience_under_basic,
                scopes_supported,
                revocation_endpoint,
                device_authorization,
                device_interval: device_interval_secs,
            },
            login: LoginState::new(redirect_uris, post_logout_redirect_uris),
        };
        let state = Arc::new(State::new(settings, keys));

        let (shutdown, mut stop) = watch::channel(false);
        let app = routes::router(state.clone());
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            // Ends on `true`, or with an error once every handle is gone.
            let _ = stop.wait_for(|stop| *stop).await;
        });
        tokio::spawn(async move {
            let _ = server.await;
        });
        Ok(MockProvider {
            inner: Arc::new(Inner { state, shutdown }),
        })
    }

    fn state(&self) -> &State {
        &self.inner.state
    }

    /// The issuer, `http://127.0.0.1:{port}` (no trailing slash): the
    /// `issuer` of the discovery document and the `iss` of minted tokens.
    pub fn issuer(&self) -> String {
        self.state().issuer.clone()
    }

    /// The server's base URL; the same as [`issuer`](Self::issuer).
    pub fn base_url(&self) -> String {
        self.issuer()
    }

    /// `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        self.url(routes::DISCOVERY_PATH)
    }

    /// What `AWS_ENDPOINT_URL` is set to for this provider to serve as a
    /// Cognito endpoint: its base URL, under which
    /// `/{user_pool_id}/.well-known/jwks.json` serves its keys (see
    /// [`TokenBuilder::cognito`]).
    pub fn cognito_endpoint(&self) -> String {
        self.base_url()
    }

    /// `{issuer}/jwks`.
    pub fn jwks_url(&self) -> String {
        self.url(routes::JWKS_PATH)
    }

    /// `{issuer}{path}`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        self.state().url(path)
    }

    /// The default `aud` of access tokens.
    pub fn audience(&self) -> &str {
        &self.state().audience
    }

    /// The client id: `client_id` of access tokens, `aud` of ID tokens.
    pub fn client_id(&self) -> &str {
        &self.state().client_id
    }

    /// The client secret, for authenticating at the token endpoint.
    pub fn client_secret(&self) -> &str {
        &self.state().client_secret
    }

    /// `{issuer}/authorize`, the authorization endpoint.
    pub fn authorize_url(&self) -> String {
        self.url(routes::AUTHORIZE_PATH)
    }

    /// `{issuer}/token`, the token endpoint.
    pub fn token_url(&self) -> String {
        self.url(routes::TOKEN_PATH)
    }

    /// `{issuer}/userinfo`, the userinfo endpoint.
    pub fn userinfo_url(&self) -> String {
        self.url(routes::USERINFO_PATH)
    }

    /// `{issuer}/logout`, the end-session endpoint.
    pub fn logout_url(&self) -> String {
        self.url(routes::END_SESSION_PATH)
    }

    /// Registers a redirect URI for the client. Authorization requests must
    /// name a registered one, character for character.
    ///
    /// # Panics
    ///
    /// If `uri` has a fragment, which redirect URIs cannot have.
    pub fn register_redirect_uri(&self, uri: &str) {
        check_redirect_uri(uri).unwrap_or_else(|e| panic!("{e}"));
        self.state().login().register_redirect_uri(uri);
    }

    /// Registers a URI that `/logout` may redirect to, character for character.
    ///
    /// # Panics
    ///
    /// If `uri` has a fragment.
    pub fn register_post_logout_redirect_uri(&self, uri: &str) {
        check_redirect_uri(uri).unwrap_or_else(|e| panic!("{e}"));
        self.state().login().register_post_logout_redirect_uri(uri);
    }

    /// The email of whoever logs in when no user is queued and the
    /// authorization request has no `login_hint`; `test@example.com` until set.
    pub fn set_email(&self, email: impl Into<String>) {
        self.state().login().set_email(email.into());
    }

    /// Queues a user with this email (and the derived subject) to log in at
    /// a coming `/authorize`; queued users log in first come, first served,
    /// before any `login_hint` or [provider-wide email](Self::set_email).
    pub fn queue_user(&self, email: impl Into<String>) {
        self.queue_user_with(MockUser::new(email));
    }

    /// Approves the device authorization whose user code is `user_code`
    /// (RFC 8628; the dash and case do not matter) as `email`. Answers
    /// whether a pending, unexpired code was found.
    pub fn approve_device(&self, user_code: &str, email: impl Into<String>) -> bool {
        let now = portcullis_core::clock::Clock::now_secs(&self.state().clock);
        self.state()
            .login()
            .devices()
            .decide(user_code, Some(MockUser::new(email)), now)
            == device::Approval::Done
    }

    /// Denies the device authorization whose user code is `user_code`.
    /// Answers whether a pending, unexpired code was found.
    pub fn deny_device(&self, user_code: &str) -> bool {
        let now = portcullis_core::clock::Clock::now_secs(&self.state().clock);
        self.state().login().devices().decide(user_code, None, now) == device::Approval::Done
    }

    /// The device authorization endpoint, `{issuer}/device_authorization`
    /// (served whether or not discovery advertises it).
    pub fn device_authorization_url(&self) -> String {
        self.url(routes::DEVICE_AUTHORIZATION_PATH)
    }

    /// Queues a user with a chosen subject or extra claims; see [`queue_user`](Self::queue_user).
    pub fn queue_user_with(&self, user: MockUser) {
        self.state().login().queue_user(user);
    }

    /// Makes the next valid authorization request redirect with this `error`
    /// (for example `access_denied` or `login_required`) and
    /// `error_description` instead of a code. Errors queue up; each answers
    /// one request.
    pub fn queue_error(&self, error: impl Into<String>, description: impl Into<String>) {
        self.state().login().queue_authorize_error(QueuedError {
            error: error.into(),
            description: description.into(),
        });
    }

    /// Makes the next token request, whatever it holds, answer this `error`
    /// and `error_description`: status 400, or 401 for `invalid_client`.
    /// Errors queue up; each answers one request.
    pub fn queue_token_error(&self, error: impl Into<String>, description: impl Into<String>) {
        self.state().login().queue_token_error(QueuedError {
            error: error.into(),
            description: description.into(),
        });
    }

    /// Makes the ID tokens of refresh grants carry this `sub` instead of the
    /// user's (`None` restores it), for tests of clients that must refuse a
    /// refreshed ID token about someone else.
    pub fn set_refresh_subject(&self, subject: Option<String>) {
        self.state().login().set_refresh_subject(subject);
    }

    /// Makes the next code exchange (`authorization_code` grant) that
    /// succeeds answer exactly `id_token` instead of the ID token the provider
    /// would sign: one signed by another provider, say, for tests of clients
    /// that must refuse it. The rest of the answer is unchanged. Changes to ID tokens queue up, these and
    /// [`queue_id_token_claims`](Self::queue_id_token_claims) alike; each
    /// answers one code exchange, and refresh grants are not affected.
    pub fn queue_id_token(&self, id_token: impl Into<String>) {
        self.state()
            .login()
            .queue_id_token_override(IdTokenOverride::Raw(id_token.into()));
    }

    /// Makes the ID token of the next code exchange that succeeds carry these
    /// claims, replacing the provider's own of the same name (`iss`, `aud`,
    /// `nonce`, `azp`, `at_hash`, `exp` and the others included); a `null`
    /// value leaves the claim out. The token is still signed by the
    /// provider's current key. Queued as [`queue_id_token`](Self::queue_id_token) is.
    ///
    /// ```
    /// # async fn example(provider: portcullis_testing::MockProvider) {
    /// use serde_json::{Map, json};
    /// let mut claims = Map::new();
    /// claims.insert("nonce".to_owned(), json!("someone else's login"));
    /// claims.insert("at_hash".to_owned(), json!(null));
    /// provider.queue_id_token_claims(claims);
    /// # }
    /// ```
    pub fn queue_id_token_claims(&self, claims: serde_json::Map<String, serde_json::Value>) {
        self.state()
            .login()
            .queue_id_token_override(IdTokenOverride::Claims(claims));
    }

    /// The JSON body of the last successful answer of `POST /token`, whatever
    /// its grant (`None` before the first): the tokens a client was given, for
    /// tests that check where those tokens travel next.
    pub fn last_token_response(&self) -> Option<serde_json::Value> {
        self.state().login().last_token_response().cloned()
    }

    /// How many known refresh tokens the revocation endpoint (`POST /revoke`,
    /// RFC 7009) revoked, their login's tokens with them.
    pub fn revocation_count(&self) -> usize {
        self.state().login().revocation_count()
    }

    /// Disables the user with this email, as an administrator does at a
    /// real provider: their refresh tokens (every login's) are refused with
    /// `invalid_grant` from now on, and their access tokens at userinfo.
    /// Answers how many of their logins were live.
    pub fn disable_user(&self, email: &str) -> usize {
        self.state().login().disable_user(email)
    }

    /// How many refresh grants succeeded.
    pub fn refresh_count(&self) -> usize {
        self.state().login().refresh_count()
    }

    /// How many logout requests succeeded (redirected or answered 200).
    pub fn logout_count(&self) -> usize {
        self.state().login().logout_count()
    }

    /// The clock minted tokens are dated by; clones share its time, so moving
    /// the returned clock moves the provider's.
    pub fn clock(&self) -> ManualClock {
        self.state().clock.clone()
    }

    /// Starts a token; see [`TokenBuilder`].
    pub fn token(&self) -> TokenBuilder {
        TokenBuilder::new(self.inner.state.clone())
    }

    /// The current key for `alg`, to sign hand-made tokens with
    /// [`sign_unchecked`](portcullis_core::dangerous::sign_unchecked). Keys
    /// of unconfigured algorithms are made on first use and not published.
    ///
    /// # Panics
    ///
    /// If a key for a new algorithm cannot be generated.
    pub fn signing_key(&self, alg: Algorithm) -> SigningKey {
        self.state().signing_key(alg)
    }

    /// The JWKS document the provider currently publishes (without faults).
    pub fn jwks(&self) -> serde_json::Value {
        self.state().jwks_document()
    }

    /// Replaces every key with a new one with a new `kid`. The JWKS then lists
    /// the new keys only, or the new keys followed by every earlier one with
    /// [`MockOptions::keep_previous_keys_on_rotation`].
    ///
    /// # Panics
    ///
    /// If a key cannot be generated.
    pub fn rotate_keys(&self) {
        self.state().rotate_keys();
    }

    /// Makes `POST /token` wait `delay` before it handles the request (a
    /// code or refresh token is redeemed after the wait), or (`None`)
    /// answer at once again.
    pub fn set_token_delay(&self, delay: Option<Duration>) {
        self.state().set_token_delay(delay);
    }

    /// Makes `GET /jwks` misbehave, or (`None`) behave again.
    pub fn set_jwks_fault(&self, fault: Option<Fault>) {
        self.state().set_jwks_fault(fault);
    }

    /// The `Cache-Control: public, max-age=N` of successful JWKS responses;
    /// `Some(300)` by default, `None` sends no `Cache-Control`.
    pub fn set_jwks_max_age(&self, secs: Option<u64>) {
        self.state().set_jwks_max_age(secs);
    }

    /// How many requests, of any method, the server received for exactly
    /// this path (without the query), unknown paths included.
    pub fn request_count(&self, path: &str) -> usize {
        self.state().request_count(path)
    }

    /// How many requests the JWKS endpoint received.
    pub fn jwks_fetches(&self) -> usize {
        self.request_count(routes::JWKS_PATH)
    }

    /// Stops the server: it accepts no new connections, and open ones close
    /// once their requests are answered. Handles keep working otherwise
    /// (tokens can still be minted).
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }
}

impl fmt::Debug for MockProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockProvider")
            .field("issuer", &self.state().issuer)
            .field("audience", &self.state().audience)
            .field("client_id", &self.state().client_id)
            .field("iss_parameter", &self.state().iss_parameter)
            .field("algorithms", &self.state().algorithms)
            .finish_non_exhaustive()
    }
}
