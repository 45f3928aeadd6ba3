//! The provider's token endpoint as a client of it sees it: where it is
//! (given, or found by core's [`Discovery`]), how the client
//! authenticates there (`client_secret_basic` or `client_secret_post`), the
//! grant requests (retried a bounded number of times) and what their
//! answers must hold (a bearer token; an OAuth error is a refusal).
//!
//! Requests go through core's [`HttpClient`] (no redirects followed);
//! answers are read up to [`MAX_TOKEN_ANSWER_BYTES`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use portcullis_core::config::check_provider_url;
use portcullis_core::discovery::{Discovery, DiscoveryError};
use portcullis_core::fetch::ReqwestFetch;
use portcullis_core::http_client::{
    HttpClient, MAX_DISCOVERY_BYTES, MAX_TOKEN_ANSWER_BYTES, read_bounded,
};
use portcullis_core::{Error, RawToken, Secret, TokenRejection};
use reqwest::header::HeaderValue;
use serde_json::Value;
use url::Url;
use url::form_urlencoded;

/// How long one call to the token endpoint may take, by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times a token request is tried, by default.
const DEFAULT_ATTEMPTS: u32 = 3;
/// The pause before the first retry, by default; it doubles after each one.
const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(250);

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
    http: HttpClient,
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
    /// [`ErrorKind::Config`](portcullis_core::ErrorKind::Config) when
    /// `token_url` is not an https URL (plain HTTP is accepted on loopback
    /// hosts only).
    pub fn new(
        token_url: &str,
        client_id: impl Into<String>,
        client_secret: Option<Secret>,
    ) -> Result<Self, Error> {
        Self::build(
            token_url,
            client_id,
            client_secret,
            false,
            HttpClient::new(DEFAULT_TIMEOUT)?,
        )
    }

    fn build(
        token_url: &str,
        client_id: impl Into<String>,
        client_secret: Option<Secret>,
        danger_allow_plain_http: bool,
        http: HttpClient,
    ) -> Result<Self, Error> {
        Ok(Self {
            inner: Arc::new(EndpointInner {
                url: http_url(token_url, "token_endpoint", danger_allow_plain_http)?,
                client_id: client_id.into(),
                client_secret,
                basic: true,
                http,
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
    /// The discovery URL and every endpoint the document names must be
    /// https URLs (plain HTTP is accepted on loopback hosts only; see
    /// [`discover_with`](Self::discover_with) for closed test networks).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`](portcullis_core::ErrorKind::Unavailable)
    /// when the document cannot be fetched;
    /// [`ErrorKind::Config`](portcullis_core::ErrorKind::Config) when a URL
    /// is refused, or the document does not parse, names another issuer or
    /// has no `token_endpoint`.
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
        let http = HttpClient::new(DEFAULT_TIMEOUT)?;
        let fetch = ReqwestFetch::from_client(http.clone(), MAX_DISCOVERY_BYTES);
        let found = Discovery::new(discovery_url)
            .danger_allow_plain_http(danger_allow_plain_http)
            .fetch(&fetch)
            .await?;
        let Some(token_url) = found.token_endpoint() else {
            return Err(DiscoveryError::Missing {
                field: "token_endpoint",
            }
            .into());
        };
        let mut endpoint = Self::build(
            token_url.as_str(),
            client_id,
            client_secret,
            danger_allow_plain_http,
            http,
        )?;
        Arc::make_mut(&mut endpoint.inner).basic = found.supports_client_secret_basic();
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
    pub(super) async fn request(
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
                .reqwest()
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
pub(super) enum Grant {
    Refresh,
    ClientCredentials,
}

/// What the token endpoint issued.
pub(super) struct Issued {
    pub(super) access_token: RawToken,
    /// Seconds until the access token expires, when the provider said.
    pub(super) expires_in: Option<u64>,
    /// When the access token expires (unix seconds), when the provider said.
    pub(super) expires_at: Option<u64>,
    /// A new refresh token (rotation), when one came.
    pub(super) refresh_token: Option<RawToken>,
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
    let body = match read_bounded(resp, MAX_TOKEN_ANSWER_BYTES).await {
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
    // Not an outage: the same request would get the same answer (502).
    let bad = |what: &str| Error::bad_gateway(format!("the provider's token answer {what}"));
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

#[cfg(test)]
mod tests {
    use portcullis_core::ErrorKind;

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
        assert_eq!(dpop.err().unwrap().kind(), ErrorKind::BadGateway);
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
        let http = HttpClient::new(DEFAULT_TIMEOUT).unwrap();
        TokenEndpoint::build("http://id.test/token", "c", None, true, http).unwrap();
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
                Err(e) => prop_assert_eq!(e.kind(), portcullis_core::ErrorKind::BadGateway),
            }
            Ok(())
        });
    }
}
