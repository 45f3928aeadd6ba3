//! [`ForwardingClient`]: calls other services with a bearer token from a
//! [`TokenSource`], to the configured origins only.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use portcullis_core::http_client::HttpClient;
use portcullis_core::{Error, RawToken};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use url::{Origin, Url};

use crate::sources::TokenSource;

/// How long a call may take, by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP client that sends bearer tokens to other services, and only to
/// the origins it was configured with.
///
/// - Every request gets `Authorization: Bearer <token>` from the
///   [`TokenSource`] passed with it (a header it already had is replaced).
/// - A request to any other origin (scheme, host and port, compared exactly)
///   is refused with an error of kind
///   [`ErrorKind::Forbidden`](portcullis_core::ErrorKind::Forbidden) and never sent.
/// - Redirects are not followed: a 3xx answer is returned as it is, so the
///   token never travels to where a redirect points.
/// - A 401 answer makes the source renew the token, and the request is sent
///   once more with the new one (when the source has one and the body can be
///   sent twice); the second answer is returned whatever it is.
/// - The token is never logged; the header is marked sensitive.
/// - The answer is handed back unread, so no size cap applies to its body
///   (unlike what portcullis reads itself): read it with a limit of your
///   own, such as [`read_bounded`](portcullis_core::http_client::read_bounded).
///
/// Its HTTP client is core's [`HttpClient`]: no redirects, a connect and a
/// total timeout.
///
/// Cheap to clone: clones share one connection pool.
///
/// ```no_run
/// use portcullis_oidc::{ForwardedToken, ForwardingClient};
/// # async fn f(caller: portcullis_core::Authenticated) -> Result<(), portcullis_core::Error> {
/// let client = ForwardingClient::builder()
///     .allow_origin("https://orders.example.com")
///     .build()?;
/// let as_caller = ForwardedToken::from_caller(&caller)?;
/// let answer = client.get(&as_caller, "https://orders.example.com/orders").await?;
/// println!("{}", answer.status());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ForwardingClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: HttpClient,
    origins: Vec<Origin>,
}

impl fmt::Debug for ForwardingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origins: Vec<String> = self
            .inner
            .origins
            .iter()
            .map(Origin::ascii_serialization)
            .collect();
        f.debug_struct("ForwardingClient")
            .field("origins", &origins)
            .finish_non_exhaustive()
    }
}

/// Builds a [`ForwardingClient`]. Start with [`ForwardingClient::builder`].
pub struct ForwardingClientBuilder {
    origins: Vec<Origin>,
    error: Option<Error>,
    timeout: Duration,
    client: Option<reqwest::ClientBuilder>,
}

impl fmt::Debug for ForwardingClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForwardingClientBuilder")
            .field("origins", &self.origins.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Parses an allowed origin: `scheme://host[:port]`, an optional `/` and
/// nothing else.
fn parse_origin(origin: &str) -> Result<Origin, Error> {
    let bad = |why: &str| Error::config(format!("the allowed origin `{origin}` {why}"));
    let url = Url::parse(origin).map_err(|e| bad("is not a URL").with_source(e))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("is not http or https"));
    }
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(bad("must be `scheme://host[:port]` only"));
    }
    Ok(url.origin())
}

impl ForwardingClientBuilder {
    /// Allows tokens to be sent to `origin`: `scheme://host[:port]`, such as
    /// `https://api.example.com` or `http://127.0.0.1:8080` (a default port
    /// may be left out). An invalid origin makes [`build`](Self::build) fail.
    #[must_use]
    pub fn allow_origin(mut self, origin: &str) -> Self {
        match parse_origin(origin) {
            Ok(o) => self.origins.push(o),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// How long a call may take, answer included (30 s by default).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Starts from this reqwest client builder (for TLS roots, proxies,
    /// ...), made into an [`HttpClient`] by
    /// [`HttpClient::from_builder`]: its redirect policy is replaced
    /// (redirects are never followed), and so are its timeouts.
    #[must_use]
    pub fn client_builder(mut self, builder: reqwest::ClientBuilder) -> Self {
        self.client = Some(builder);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](portcullis_core::ErrorKind::Config) for an
    /// invalid origin, no origin at all, or an HTTP client that cannot be built.
    pub fn build(self) -> Result<ForwardingClient, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.origins.is_empty() {
            return Err(Error::config(
                "a forwarding client needs at least one allowed origin",
            ));
        }
        let http = match self.client {
            Some(builder) => HttpClient::from_builder(builder, self.timeout)?,
            None => HttpClient::new(self.timeout)?,
        };
        Ok(ForwardingClient {
            inner: Arc::new(Inner {
                http,
                origins: self.origins,
            }),
        })
    }
}

impl ForwardingClient {
    /// Starts a client that may send tokens nowhere yet; add origins with
    /// [`ForwardingClientBuilder::allow_origin`].
    pub fn builder() -> ForwardingClientBuilder {
        ForwardingClientBuilder {
            origins: Vec::new(),
            error: None,
            timeout: DEFAULT_TIMEOUT,
            client: None,
        }
    }

    /// Whether tokens may be sent to `url`.
    pub fn allows(&self, url: &Url) -> bool {
        matches!(url.scheme(), "http" | "https") && self.inner.origins.contains(&url.origin())
    }

    /// Starts a request (without a token yet) to send with [`send`](Self::send).
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.inner.http.reqwest().request(method, url)
    }

    /// `GET url` with a token from `tokens`; see [`send`](Self::send).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub async fn get(
        &self,
        tokens: &(impl TokenSource + ?Sized),
        url: &str,
    ) -> Result<reqwest::Response, Error> {
        self.send(tokens, self.request(reqwest::Method::GET, url))
            .await
    }

    /// Sends `request` with a bearer token from `tokens`, and once more with
    /// a renewed token after a 401. The request is sent by this client
    /// whatever client built it, so redirects are never followed.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::Forbidden`](portcullis_core::ErrorKind::Forbidden): the
    ///   URL's origin is not allowed; nothing was sent.
    /// - [`ErrorKind::InvalidRequest`](portcullis_core::ErrorKind::InvalidRequest):
    ///   the request could not be built (a malformed URL, say).
    /// - The source's error when it has no token (the provider refused a
    ///   refresh, or could not be reached).
    /// - [`ErrorKind::Unavailable`](portcullis_core::ErrorKind::Unavailable):
    ///   the service could not be reached or did not answer in time.
    pub async fn send(
        &self,
        tokens: &(impl TokenSource + ?Sized),
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        let (_, request) = request.build_split();
        let request = request.map_err(|e| {
            Error::invalid_request("the request to forward could not be built").with_source(e)
        })?;
        let origin = request.url().origin();
        if !self.allows(request.url()) {
            tracing::warn!(
                origin = %origin.ascii_serialization(),
                "refused to send a token to an origin that is not allowed"
            );
            return Err(Error::forbidden(format!(
                "`{}` is not an origin this client may send tokens to",
                origin.ascii_serialization()
            )));
        }
        let token = tokens.token().await?;
        let again = request.try_clone();
        let first = self.execute(request, &token).await?;
        if first.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let Some(again) = again else {
            tracing::debug!("a 401 answer to a request whose body cannot be sent twice");
            return Ok(first);
        };
        let Some(renewed) = tokens.refresh_after_rejection(&token).await? else {
            return Ok(first);
        };
        if renewed == token {
            return Ok(first);
        }
        tracing::debug!(
            origin = %origin.ascii_serialization(),
            "the token was refused; sending again with a renewed one"
        );
        self.execute(again, &renewed).await
    }

    async fn execute(
        &self,
        mut request: reqwest::Request,
        token: &RawToken,
    ) -> Result<reqwest::Response, Error> {
        let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose()))
            .map_err(|_| Error::invalid_request("the token cannot be sent in a header"))?;
        value.set_sensitive(true);
        request.headers_mut().insert(AUTHORIZATION, value);
        let resp = self
            .inner
            .http
            .reqwest()
            .execute(request)
            .await
            .map_err(|e| Error::unavailable("the service could not be reached").with_source(e))?;
        tracing::debug!(status = resp.status().as_u16(), origin = %resp.url().origin().ascii_serialization(), "forwarded");
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_exact() {
        let client = ForwardingClient::builder()
            .allow_origin("https://api.example.com")
            .allow_origin("http://127.0.0.1:8080/")
            .build()
            .unwrap();
        let allows = |u: &str| client.allows(&Url::parse(u).unwrap());
        assert!(allows("https://api.example.com/x?y=1"));
        assert!(allows("https://API.example.com:443/"));
        assert!(allows("http://127.0.0.1:8080/a"));
        assert!(!allows("http://api.example.com/"));
        assert!(!allows("https://api.example.com:8443/"));
        assert!(!allows("https://api.example.com.evil.test/"));
        assert!(!allows("https://evil.test/https://api.example.com"));
        assert!(!allows("http://localhost:8080/"));
        assert!(!allows("http://127.0.0.1:8081/"));
        assert!(!allows("ws://127.0.0.1:8080/"));
        assert!(format!("{client:?}").contains("http://127.0.0.1:8080"));
    }

    #[test]
    fn bad_origins_are_refused() {
        for bad in [
            "api.example.com",
            "https://api.example.com/path",
            "https://u:p@api.example.com",
            "https://api.example.com?x",
            "file:///etc",
        ] {
            let e = ForwardingClient::builder()
                .allow_origin(bad)
                .build()
                .unwrap_err();
            assert_eq!(e.kind(), portcullis_core::ErrorKind::Config, "{bad}");
        }
        assert!(ForwardingClient::builder().build().is_err());
    }
}
