//! The small I/O seam of core: fetching a URL.
//!
//! Core needs HTTP only for OIDC discovery and JWKS documents. It asks for
//! them through [`HttpFetch`], so tests, other HTTP stacks and non-tokio
//! environments can supply their own; [`ReqwestFetch`] (feature `reqwest`) is
//! the default.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::error::Error;

/// A boxed future returned by [`HttpFetch::get`].
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<HttpResponse, Error>> + Send + 'a>>;

/// A fetched HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The `Cache-Control` header, if any.
    pub cache_control: Option<String>,
    /// The body (already limited in size by the fetcher).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response.
    pub fn new(status: u16, cache_control: Option<String>, body: Vec<u8>) -> Self {
        Self {
            status,
            cache_control,
            body,
        }
    }
}

/// Fetches URLs with a GET request. Implementations enforce a timeout and a
/// size limit, follow no redirect, and return errors of kind
/// [`Unavailable`](crate::ErrorKind::Unavailable).
pub trait HttpFetch: Send + Sync + fmt::Debug + 'static {
    /// GETs `url`, reading at most the fetcher's own size limit of body.
    fn get<'a>(&'a self, url: &'a str) -> FetchFuture<'a>;

    /// GETs `url`, reading at most `max_bytes` of body (and never more than
    /// [`get`](Self::get) would): portcullis asks with the cap for the
    /// document's purpose ([`http_client::MAX_DISCOVERY_BYTES`](crate::http_client::MAX_DISCOVERY_BYTES), ...).
    ///
    /// The default calls [`get`](Self::get) and refuses a longer body;
    /// implementations that stream should stop reading at `max_bytes`.
    fn get_limited<'a>(&'a self, url: &'a str, max_bytes: usize) -> FetchFuture<'a> {
        Box::pin(async move {
            let resp = self.get(url).await?;
            if resp.body.len() > max_bytes {
                return Err(Error::unavailable("the key server's response is too large"));
            }
            Ok(resp)
        })
    }
}

/// [`HttpFetch`] over `reqwest`: an [`HttpClient`](crate::http_client::HttpClient)
/// (no redirects, timeouts) and bodies read by
/// [`read_bounded`](crate::http_client::read_bounded) up to a size limit.
#[cfg(feature = "reqwest")]
#[derive(Debug, Clone)]
pub struct ReqwestFetch {
    client: crate::http_client::HttpClient,
    max_bytes: usize,
}

#[cfg(feature = "reqwest")]
impl ReqwestFetch {
    /// A fetcher with `timeout` per request and at most `max_bytes` of body.
    /// Redirects are not followed: a key set must be served where it is configured.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when the HTTP client
    /// cannot be built.
    pub fn new(timeout: std::time::Duration, max_bytes: usize) -> Result<Self, Error> {
        let client = crate::http_client::HttpClient::new(timeout)?;
        Ok(Self::from_client(client, max_bytes))
    }

    /// A fetcher sending its requests with `client` (sharing its connection
    /// pool), reading at most `max_bytes` of body.
    pub fn from_client(client: crate::http_client::HttpClient, max_bytes: usize) -> Self {
        Self { client, max_bytes }
    }
}

#[cfg(feature = "reqwest")]
impl HttpFetch for ReqwestFetch {
    fn get<'a>(&'a self, url: &'a str) -> FetchFuture<'a> {
        self.get_limited(url, self.max_bytes)
    }

    fn get_limited<'a>(&'a self, url: &'a str, max_bytes: usize) -> FetchFuture<'a> {
        use crate::http_client::{BodyError, read_bounded};
        let max_bytes = max_bytes.min(self.max_bytes);
        Box::pin(async move {
            let resp = self
                .client
                .reqwest()
                .get(url)
                .header("accept", "application/json")
                .send()
                .await
                .map_err(|e| {
                    Error::unavailable("the key server could not be reached")
                        .with_source(e.without_url())
                })?;
            let status = resp.status().as_u16();
            let cache_control = resp
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = read_bounded(resp, max_bytes).await.map_err(|e| match e {
                BodyError::TooLarge { .. } => {
                    Error::unavailable("the key server's response is too large").with_source(e)
                }
                _ => Error::unavailable("the key server's response was cut off").with_source(e),
            })?;
            Ok(HttpResponse {
                status,
                cache_control,
                body,
            })
        })
    }
}

/// Reads `max-age` (seconds) from a `Cache-Control` value; `no-store`/`no-cache` read as 0.
pub(crate) fn max_age(cache_control: &str) -> Option<u64> {
    let mut result = None;
    for directive in cache_control.split(',') {
        let d = directive.trim().to_ascii_lowercase();
        if d == "no-store" || d == "no-cache" {
            return Some(0);
        }
        if let Some(v) = d.strip_prefix("max-age=") {
            result = v.trim_matches('"').parse().ok();
        }
    }
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn max_age_parsing() {
        assert_eq!(super::max_age("public, max-age=300"), Some(300));
        assert_eq!(super::max_age("max-age=\"60\""), Some(60));
        assert_eq!(super::max_age("no-store"), Some(0));
        assert_eq!(super::max_age("public"), None);
        assert_eq!(super::max_age("max-age=abc"), None);
    }
}
