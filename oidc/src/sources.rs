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

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use portcullis_core::clock::{self, SharedClock};
use portcullis_core::config::check_provider_url;
use portcullis_core::{Authenticated, Error, ErrorKind, RawToken, Secret, TokenRejection};
use reqwest::header::HeaderValue;
use serde_json::Value;
use url::Url;
use url::form_urlencoded;

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

/// The discovery document's suffix after the issuer.
const WELL_KNOWN: &str = "/.well-known/openid-configuration";
/// The longest answer read from the provider.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// How long one call to the token endpoint may take, by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times a token request is tried, by default.
const DEFAULT_ATTEMPTS: u32 = 3;
/// The pause before the first retry, by default; it doubles after each one.
const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(250);
/// How long before expiry a token is renewed, by default.
const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// A provider's token endpoint and the client that authenticates there.
///
/// Cheap to clone: clones share one HTTP client. Its `Debug` shows the
/// endpoint and the client id, never the secret.
///
/// ```no_run
/// use portcullis_core::Secret;
/// use portcullis_oidc::TokenEndpoint;
/// # async fn run() -> Result<(), portcullis_core::Error> {
/// let endpoint = TokenEndpoint::discover(
///     "https://id.example.com/.well-known/openid-configuration",
///     "my-client",
///     Some(Secret::new(std::env::var("CLIENT_SECRET").unwrap_or_default())),
/// )
/// .await?;
/// # let _ = endpoint; Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenEndpoint {
    inner: Arc<EndpointInner>,
}

#[derive(Clone)]
struct EndpointInner {
    url: Url,
    client_id: String,
    client_secret: Option<Secret>,
    /// `client_secret_basic` (true) or `client_secret_post`.
    basic: bool,
    http: reqwest::Client,
    timeout: Duration,
    attempts: u32,
    retry_delay: Duration,
}

impl fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEndpoint")
            .field("url", &self.inner.url.as_str())
            .field("client_id", &self.inner.client_id)
            .field("basic", &self.inner.basic)
            .field("attempts", &self.inner.attempts)
            .finish_non_exhaustive()
    }
}

fn http_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(DEFAULT_TIMEOUT)
        .build()
        .map_err(|e| Error::config("the HTTP client could not be built").with_source(e))
}

/// `value` parsed, after [`check_provider_url`]: HTTPS, or plain HTTP on
/// loopback (anywhere with `danger_allow_plain_http`).
fn http_url(value: &str, what: &str, danger_allow_plain_http: bool) -> Result<Url, Error> {
    check_provider_url(what, value, danger_allow_plain_http)?;
    Url::parse(value).map_err(|e| Error::config(format!("{what} is not a URL")).with_source(e))
}

impl TokenEndpoint {
    /// The token endpoint at `token_url`, for the client `client_id`
    /// authenticating with `client_secret` (HTTP Basic, `client_secret_basic`)
    /// or without a secret (a public client).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when `token_url` is not an https URL (plain
    /// HTTP is accepted on loopback hosts only).
    pub fn new(
        token_url: &str,
        client_id: impl Into<String>,
        client_secret: Option<Secret>,
    ) -> Result<Self, Error> {
        Self::build(token_url, client_id, client_secret, false)
    }

    fn build(
        token_url: &str,
        client_id: impl Into<String>,
        client_secret: Option<Secret>,
        danger_allow_plain_http: bool,
    ) -> Result<Self, Error> {
        Ok(Self {
            inner: Arc::new(EndpointInner {
                url: http_url(token_url, "token_endpoint", danger_allow_plain_http)?,
                client_id: client_id.into(),
                client_secret,
                basic: true,
                http: http_client()?,
                timeout: DEFAULT_TIMEOUT,
                attempts: DEFAULT_ATTEMPTS,
                retry_delay: DEFAULT_RETRY_DELAY,
            }),
        })
    }

    /// The token endpoint named by the provider's discovery document at
    /// `discovery_url`, with the client authentication method the provider
    /// supports (`client_secret_basic` when it allows it, else
    /// `client_secret_post`).
    ///
    /// When `discovery_url` ends with `/.well-known/openid-configuration`,
    /// the document must name the issuer before it.
    ///
    /// The discovery URL and the token endpoint it names must be https
    /// URLs (plain HTTP is accepted on loopback hosts only; see
    /// [`discover_with`](Self::discover_with) for closed test networks).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] when the document cannot be fetched;
    /// [`ErrorKind::Config`] when a URL is refused, or the document does not
    /// parse, names another issuer or has no `token_endpoint`.
    pub async fn discover(
        discovery_url: &str,
        client_id: impl Into<String>,
        client_secret: Option<Secret>,
    ) -> Result<Self, Error> {
        Self::discover_with(discovery_url, client_id, client_secret, false).await
    }

    /// [`discover`](Self::discover), accepting plain `http://` URLs on any
    /// host when `danger_allow_plain_http` is set (closed test networks only:
    /// tokens and the client secret would travel unencrypted).
    ///
    /// # Errors
    ///
    /// As [`discover`](Self::discover).
    pub async fn discover_with(
        discovery_url: &str,
        client_id: impl Into<String>,
        client_secret: Option<Secret>,
        danger_allow_plain_http: bool,
    ) -> Result<Self, Error> {
        let url = http_url(discovery_url, "discovery_url", danger_allow_plain_http)?;
        let http = http_client()?;
        let resp = http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                Error::unavailable("the provider's discovery document could not be fetched")
                    .with_source(e)
            })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Error::unavailable(format!(
                "the provider's discovery document answered HTTP {}",
                status.as_u16()
            )));
        }
        let body = read_bounded(resp).await.map_err(|e| {
            Error::unavailable("the provider's discovery document could not be read").with_source(e)
        })?;
        let doc: Value = serde_json::from_slice(&body).map_err(|e| {
            Error::config("the provider's discovery document does not parse").with_source(e)
        })?;
        if let Some(expected) = discovery_url.strip_suffix(WELL_KNOWN)
            && doc.get("issuer").and_then(Value::as_str) != Some(expected)
        {
            return Err(Error::config(format!(
                "the discovery document does not name the issuer `{expected}`"
            )));
        }
        let token_url = doc
            .get("token_endpoint")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::config("the provider's discovery document has no `token_endpoint`")
            })?;
        let basic = match doc
            .get("token_endpoint_auth_methods_supported")
            .and_then(Value::as_array)
        {
            None => true,
            Some(methods) => methods
                .iter()
                .any(|m| m.as_str() == Some("client_secret_basic")),
        };
        let mut endpoint =
            Self::build(token_url, client_id, client_secret, danger_allow_plain_http).map_err(
                |e| {
                    Error::config(format!(
                        "the discovery document's `token_endpoint` is refused: {}",
                        e.message()
                    ))
                },
            )?;
        let inner = Arc::make_mut(&mut endpoint.inner);
        inner.basic = basic;
        inner.http = http;
        Ok(endpoint)
    }

    /// How often a token request is tried when the provider cannot be
    /// reached or answers 5xx or 429 (at least once; 3 by default), and the
    /// pause before the first retry (250 ms by default; it doubles after
    /// each retry). A refusal (`invalid_grant`, ...) is never retried.
    #[must_use]
    pub fn with_retries(mut self, attempts: u32, first_delay: Duration) -> Self {
        let inner = Arc::make_mut(&mut self.inner);
        inner.attempts = attempts.max(1);
        inner.retry_delay = first_delay;
        self
    }

    /// How long one call to the token endpoint may take (10 s by default).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.inner).timeout = timeout;
        self
    }

    /// The token endpoint's URL.
    pub fn url(&self) -> &str {
        self.inner.url.as_str()
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The form body of a token request with `params`, and the
    /// `Authorization` header when the client authenticates with HTTP Basic
    /// (RFC 6749 §2.3.1: id and secret form-encoded first).
    fn form(&self, params: &[(&str, &str)]) -> Result<(String, Option<HeaderValue>), Error> {
        let inner = &self.inner;
        let mut body = form_urlencoded::Serializer::new(String::new());
        body.extend_pairs(params);
        let mut auth = None;
        match &inner.client_secret {
            Some(secret) if inner.basic => {
                let encode =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let pair = format!("{}:{}", encode(&inner.client_id), encode(secret.expose()));
                let mut value = HeaderValue::try_from(format!("Basic {}", STANDARD.encode(pair)))
                    .map_err(|e| {
                    Error::config("the client credentials cannot be sent in a header")
                        .with_source(e)
                })?;
                value.set_sensitive(true);
                auth = Some(value);
            }
            secret => {
                body.append_pair("client_id", &inner.client_id);
                if let Some(secret) = secret {
                    body.append_pair("client_secret", secret.expose());
                }
            }
        }
        Ok((body.finish(), auth))
    }

    /// Requests tokens with the grant `params`, retrying as configured.
    async fn request(
        &self,
        grant: Grant,
        params: &[(&str, &str)],
        now: u64,
    ) -> Result<Issued, Error> {
        let inner = &self.inner;
        let (body, auth) = self.form(params)?;
        let mut delay = inner.retry_delay;
        let mut attempt = 1;
        loop {
            let mut req = inner
                .http
                .post(inner.url.clone())
                .timeout(inner.timeout)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .header(reqwest::header::ACCEPT, "application/json")
                .body(body.clone());
            if let Some(auth) = &auth {
                req = req.header(reqwest::header::AUTHORIZATION, auth.clone());
            }
            match attempt_once(req, grant, now).await {
                Attempt::Done(result) => return result,
                Attempt::Retry(e) if attempt >= inner.attempts => {
                    return Err(Error::unavailable(format!(
                        "the provider's token endpoint could not be used ({attempt} attempts)"
                    ))
                    .with_source(e));
                }
                Attempt::Retry(e) => {
                    tracing::warn!(
                        attempt,
                        error = %e,
                        "the provider's token endpoint failed; trying again"
                    );
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
            }
        }
    }
}

/// Which grant a token request is, for messages.
#[derive(Debug, Clone, Copy)]
enum Grant {
    Refresh,
    ClientCredentials,
}

/// What the token endpoint issued.
struct Issued {
    access_token: RawToken,
    /// Seconds until the access token expires, when the provider said.
    expires_in: Option<u64>,
    /// When the access token expires (unix seconds), when the provider said.
    expires_at: Option<u64>,
    /// A new refresh token (rotation), when one came.
    refresh_token: Option<RawToken>,
}

/// One try's outcome: final, or worth another try.
enum Attempt {
    Done(Result<Issued, Error>),
    Retry(Error),
}

/// A failure worth retrying (a message without token material).
fn retry(message: impl Into<std::borrow::Cow<'static, str>>) -> Attempt {
    Attempt::Retry(Error::unavailable(message))
}

async fn attempt_once(req: reqwest::RequestBuilder, grant: Grant, now: u64) -> Attempt {
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            return Attempt::Retry(
                Error::unavailable("the provider's token endpoint could not be reached")
                    .with_source(e.without_url()),
            );
        }
    };
    let status = resp.status();
    let body = match read_bounded(resp).await {
        Ok(b) => b,
        Err(e) => {
            return Attempt::Retry(
                Error::unavailable("the provider's token answer could not be read").with_source(e),
            );
        }
    };
    if status.is_server_error() || status.as_u16() == 429 {
        return retry(format!(
            "the provider's token endpoint answered HTTP {}",
            status.as_u16()
        ));
    }
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    if !status.is_success() {
        let code = json
            .as_ref()
            .and_then(|v| v.get("error"))
            .and_then(Value::as_str);
        return Attempt::Done(Err(match code {
            Some(code) => refused(grant, code),
            None => Error::unavailable(format!(
                "the provider's token endpoint answered HTTP {} without an OAuth error",
                status.as_u16()
            )),
        }));
    }
    Attempt::Done(parse_issued(json, now))
}

fn parse_issued(json: Option<Value>, now: u64) -> Result<Issued, Error> {
    let bad = |what: &str| Error::unavailable(format!("the provider's token answer {what}"));
    let json = json.ok_or_else(|| bad("does not parse"))?;
    let access_token = json
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("has no access_token"))?;
    let token_type = json.get("token_type").and_then(Value::as_str).unwrap_or("");
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(bad("is not a bearer token"));
    }
    // Some providers send the number as a string.
    let expires_in = match json.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let refresh_token = json
        .get("refresh_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(RawToken::new);
    Ok(Issued {
        access_token: RawToken::new(access_token),
        expires_in,
        expires_at: expires_in.map(|s| now.saturating_add(s)),
        refresh_token,
    })
}

/// The error for an OAuth error answer `code`.
fn refused(grant: Grant, code: &str) -> Error {
    // The code comes from the network: keep it short and printable.
    let code: String = code
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
        .take(64)
        .collect();
    match (grant, code.as_str()) {
        (Grant::Refresh, "invalid_grant") => Error::invalid_token(TokenRejection::Revoked)
            .with_source(Refused(
            "the provider refused the refresh token (invalid_grant); the caller must log in again"
                .to_owned(),
        )),
        (Grant::Refresh, _) => {
            Error::config(format!("the provider refused to refresh the token: {code}"))
        }
        (Grant::ClientCredentials, _) => Error::config(format!(
            "the provider refused the client credentials grant: {code}"
        )),
    }
}

/// Why the provider refused a token request.
#[derive(Debug)]
struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

#[derive(Debug)]
struct TooLarge;

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the answer is larger than {MAX_ANSWER_BYTES} bytes")
    }
}

impl std::error::Error for TooLarge {}

/// Reads an answer's body, refusing more than [`MAX_ANSWER_BYTES`].
async fn read_bounded(mut resp: reqwest::Response) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    loop {
        let chunk = resp.chunk().await.map_err(|e| {
            Error::unavailable("reading the answer failed").with_source(e.without_url())
        })?;
        let Some(chunk) = chunk else {
            return Ok(bytes);
        };
        if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(Error::unavailable("the answer is too large").with_source(TooLarge));
        }
        bytes.extend_from_slice(&chunk);
    }
}

/// A token kept by a renewing source, and what is known about it.
#[derive(Debug, Default)]
struct Held {
    access_token: Option<RawToken>,
    /// When the access token expires (unix seconds); `None`: renewed only
    /// after a rejection.
    expires_at: Option<u64>,
    /// How long the access token lives, when the provider said.
    lifetime: Option<u64>,
    refresh_token: Option<RawToken>,
    /// How many renewals have finished, successful or not.
    finished: u64,
    /// The error of the last renewal, when it failed.
    last_error: Option<Error>,
    /// A refusal that ends the source: every later call fails with it.
    dead: Option<Error>,
}

impl Held {
    fn store(&mut self, issued: Issued) {
        self.access_token = Some(issued.access_token);
        self.expires_at = issued.expires_at;
        self.lifetime = issued.expires_in;
        if let Some(rt) = issued.refresh_token {
            self.refresh_token = Some(rt);
        }
    }

    /// Whether the access token is due for renewal at `now`: within `leeway`
    /// of its expiry, or past half its life for a short-lived one.
    fn due(&self, now: u64, leeway: u64) -> bool {
        let Some(exp) = self.expires_at else {
            return false;
        };
        let leeway = match self.lifetime {
            Some(life) => leeway.min(life / 2),
            None => leeway,
        };
        now >= exp.saturating_sub(leeway)
    }
}

/// What a caller needs from a renewing source.
#[derive(Clone, Copy)]
enum Need<'a> {
    /// A token that is not due for renewal.
    Current,
    /// A token other than this rejected one.
    Replacing(&'a RawToken),
}

/// The state and the single-flight renewal shared by the renewing sources.
struct Renewing {
    held: Arc<Mutex<Held>>,
    /// Held by the one renewal running; waiters queue on it.
    flight: Arc<tokio::sync::Mutex<()>>,
    endpoint: TokenEndpoint,
    clock: SharedClock,
    leeway: u64,
    grant: Grant,
    scope: Option<String>,
}

impl fmt::Debug for Renewing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = self.lock();
        f.debug_struct("Renewing")
            .field("endpoint", &self.endpoint)
            .field("expires_at", &held.expires_at)
            .field("has_refresh_token", &held.refresh_token.is_some())
            .field("leeway_secs", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl Renewing {
    fn new(endpoint: TokenEndpoint, grant: Grant) -> Self {
        Self {
            held: Arc::default(),
            flight: Arc::default(),
            endpoint,
            clock: clock::system(),
            leeway: DEFAULT_LEEWAY.as_secs(),
            grant,
            scope: None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A usable token in `held` for `need`, if there is one.
    fn usable(&self, held: &Held, need: Need<'_>) -> Option<RawToken> {
        let token = held.access_token.as_ref()?;
        if held.due(self.clock.now_secs(), self.leeway) {
            return None;
        }
        match need {
            Need::Current => Some(token.clone()),
            Need::Replacing(rejected) if token != rejected => Some(token.clone()),
            Need::Replacing(_) => None,
        }
    }

    async fn get(&self, need: Need<'_>) -> Result<RawToken, Error> {
        let seen = {
            let held = self.lock();
            if let Some(e) = &held.dead {
                return Err(e.clone());
            }
            if let Some(t) = self.usable(&held, need) {
                return Ok(t);
            }
            held.finished
        };
        let guard = Arc::clone(&self.flight).lock_owned().await;
        let refresh_token = {
            let held = self.lock();
            if let Some(e) = &held.dead {
                return Err(e.clone());
            }
            if let Some(t) = self.usable(&held, need) {
                return Ok(t);
            }
            if held.finished != seen {
                // A renewal finished while this caller waited: share its
                // outcome rather than call the provider again, even when the
                // provider issued a token that is due at once.
                if let Some(e) = &held.last_error {
                    return Err(e.clone());
                }
                if let Some(t) = &held.access_token
                    && !matches!(need, Need::Replacing(rejected) if rejected == t)
                {
                    return Ok(t.clone());
                }
            }
            held.refresh_token.clone()
        };
        let params: Vec<(&'static str, String)> = match self.grant {
            Grant::Refresh => {
                let Some(rt) = refresh_token else {
                    return Err(Error::missing_credentials());
                };
                vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", rt.expose().to_owned()),
                ]
            }
            Grant::ClientCredentials => {
                let mut p = vec![("grant_type", "client_credentials".to_owned())];
                if let Some(scope) = &self.scope {
                    p.push(("scope", scope.clone()));
                }
                p
            }
        };
        // The renewal runs in its own task holding the flight: when the caller
        // gives up, the call still ends and its rotated refresh token is kept.
        let endpoint = self.endpoint.clone();
        let held = Arc::clone(&self.held);
        let clock = Arc::clone(&self.clock);
        let grant = self.grant;
        let task = tokio::spawn(async move {
            let _flight = guard;
            let now = clock.now_secs();
            let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let result = endpoint.request(grant, &pairs, now).await;
            let mut held = held.lock().unwrap_or_else(PoisonError::into_inner);
            held.finished += 1;
            match result {
                Ok(issued) => {
                    held.store(issued);
                    held.last_error = None;
                    tracing::debug!(?grant, "token renewed");
                    held.access_token
                        .clone()
                        .ok_or_else(|| Error::unavailable("the renewed token was lost"))
                }
                Err(e) => {
                    tracing::warn!(?grant, error = %e, "token renewal failed");
                    if matches!(grant, Grant::Refresh) && e.kind() != ErrorKind::Unavailable {
                        held.dead = Some(e.clone());
                    }
                    held.last_error = Some(e.clone());
                    Err(e)
                }
            }
        });
        task.await
            .map_err(|e| Error::unavailable("the token renewal task failed").with_source(e))?
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
    use super::*;

    #[test]
    fn refusal_codes_are_sanitized_and_mapped() {
        let e = refused(Grant::Refresh, "invalid_grant");
        assert_eq!(e.kind(), ErrorKind::InvalidToken);
        assert!(e.to_string().contains("log in again"), "{e}");
        let e = refused(Grant::ClientCredentials, "bad\"\n\u{7}code");
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().ends_with("badcode"), "{e}");
    }

    #[test]
    fn token_answers_are_checked() {
        let ok = parse_issued(
            Some(serde_json::json!({
                "access_token": "a", "token_type": "bearer", "expires_in": "60", "refresh_token": "r"
            })),
            1000,
        )
        .unwrap();
        assert_eq!(ok.expires_at, Some(1060));
        assert_eq!(ok.refresh_token.unwrap().expose(), "r");
        let dpop = parse_issued(
            Some(serde_json::json!({"access_token": "a", "token_type": "DPoP"})),
            0,
        );
        assert_eq!(dpop.err().unwrap().kind(), ErrorKind::Unavailable);
        assert!(parse_issued(Some(serde_json::json!({"token_type": "Bearer"})), 0).is_err());
        assert!(parse_issued(None, 0).is_err());
    }

    #[test]
    fn token_endpoints_are_https_unless_on_loopback_or_told() {
        for url in ["https://id.example.com/token", "http://127.0.0.1:9/token"] {
            TokenEndpoint::new(url, "c", None).unwrap();
        }
        for url in ["http://id.example.com/token", "ftp://id.example.com/token"] {
            let e = TokenEndpoint::new(url, "c", None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{url}");
            assert!(e.message().contains("`token_endpoint`"), "{e}");
        }
        TokenEndpoint::build("http://id.test/token", "c", None, true).unwrap();
    }

    #[test]
    fn short_lived_tokens_renew_halfway() {
        let mut held = Held::default();
        let issued = |expires_in| Issued {
            access_token: RawToken::new("a"),
            expires_in: Some(expires_in),
            expires_at: Some(1000 + expires_in),
            refresh_token: None,
        };
        held.store(issued(300));
        assert!(!held.due(1269, 30));
        assert!(held.due(1270, 30));
        held.store(issued(20));
        assert!(!held.due(1009, 30));
        assert!(held.due(1010, 30));
        // Without a known lifetime the leeway applies as is.
        held.lifetime = None;
        assert!(held.due(990, 30));
        held.expires_at = None;
        assert!(!held.due(u64::MAX, 30));
    }

    #[test]
    fn clients_authenticate_with_basic_or_in_the_body() {
        let mut endpoint = TokenEndpoint::new(
            "https://id.example.com/token",
            "my client",
            Some(Secret::new("s:é")),
        )
        .unwrap();
        let (body, auth) = endpoint
            .form(&[("grant_type", "client_credentials")])
            .unwrap();
        assert_eq!(body, "grant_type=client_credentials");
        let auth = auth.unwrap();
        assert!(auth.is_sensitive());
        // RFC 6749 §2.3.1: form-encoded, then base64.
        let encoded = auth.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
        assert_eq!(decoded, "my+client:s%3A%C3%A9");

        Arc::make_mut(&mut endpoint.inner).basic = false;
        let (body, auth) = endpoint
            .form(&[("grant_type", "client_credentials")])
            .unwrap();
        assert!(auth.is_none());
        assert_eq!(
            body,
            "grant_type=client_credentials&client_id=my+client&client_secret=s%3A%C3%A9"
        );
        let public = TokenEndpoint::new("https://id.example.com/token", "app", None).unwrap();
        let (body, auth) = public.form(&[("grant_type", "x")]).unwrap();
        assert!(auth.is_none());
        assert_eq!(body, "grant_type=x&client_id=app");
    }

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

    /// Token endpoint answers: the fields the relying party reads, with values
    /// of every JSON type.
    #[test]
    fn token_endpoint_answers_yield_a_bearer_token_or_an_error() {
        use proptest::prelude::*;
        use serde_json::json;
        let field = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[ -~]{0,12}".prop_map(Value::from),
            Just(json!("Bearer")),
            Just(json!("bearer")),
            Just(json!("DPoP")),
            Just(json!("18446744073709551615")),
            Just(json!([])),
        ];
        let answer = prop_oneof![
            (
                prop::option::of(field.clone()),
                prop::option::of(field.clone()),
                prop::option::of(field.clone()),
                prop::option::of(field),
            )
                .prop_map(|(access, typ, expires, refresh)| {
                    let mut o = serde_json::Map::new();
                    for (k, v) in [
                        ("access_token", access),
                        ("token_type", typ),
                        ("expires_in", expires),
                        ("refresh_token", refresh),
                    ] {
                        if let Some(v) = v {
                            o.insert(k.to_owned(), v);
                        }
                    }
                    Some(Value::Object(o))
                }),
            any::<String>().prop_map(|s| serde_json::from_str(&s).ok()),
        ];
        let case = (answer, any::<u64>());
        crate::fuzz_tests::harness("token-answer", 5000, case, |(json, now)| {
            let expected_type = json
                .as_ref()
                .and_then(|j| j.get("token_type"))
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("bearer"));
            match parse_issued(json.clone(), now) {
                Ok(issued) => {
                    prop_assert!(expected_type);
                    let json = json.expect("an answer");
                    prop_assert_eq!(
                        Some(issued.access_token.expose()),
                        json.get("access_token").and_then(Value::as_str)
                    );
                    prop_assert!(!issued.access_token.expose().is_empty());
                    if let (Some(i), Some(at)) = (issued.expires_in, issued.expires_at) {
                        prop_assert_eq!(at, now.saturating_add(i));
                    }
                    prop_assert_eq!(issued.expires_in.is_some(), issued.expires_at.is_some());
                }
                Err(e) => prop_assert_eq!(e.kind(), portcullis_core::ErrorKind::Unavailable),
            }
            Ok(())
        });
    }
}
