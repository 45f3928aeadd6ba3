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
/// size limit, and return errors of kind [`Unavailable`](crate::ErrorKind::Unavailable).
pub trait HttpFetch: Send + Sync + fmt::Debug + 'static {
    /// GETs `url`.
    fn get<'a>(&'a self, url: &'a str) -> FetchFuture<'a>;
}

/// [`HttpFetch`] over `reqwest`, with a per-request timeout and a response size limit.
#[cfg(feature = "reqwest")]
#[derive(Debug, Clone)]
pub struct ReqwestFetch {
    client: reqwest::Client,
    max_bytes: usize,
}

#[cfg(feature = "reqwest")]
impl ReqwestFetch {
    /// A fetcher with `timeout` per request and at most `max_bytes` of body.
    /// Redirects are not followed: a key set must be served where it is configured.
    pub fn new(timeout: std::time::Duration, max_bytes: usize) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::config("cannot build the HTTP client").with_source(e))?;
        Ok(Self { client, max_bytes })
    }
}

#[cfg(feature = "reqwest")]
impl HttpFetch for ReqwestFetch {
    fn get<'a>(&'a self, url: &'a str) -> FetchFuture<'a> {
        Box::pin(async move {
            let unavailable = |what: &'static str| {
                move |e: reqwest::Error| Error::unavailable(what).with_source(e.without_url())
            };
            let mut resp = self
                .client
                .get(url)
                .header("accept", "application/json")
                .send()
                .await
                .map_err(unavailable("the key server could not be reached"))?;
            let status = resp.status().as_u16();
            let cache_control = resp
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if resp
                .content_length()
                .is_some_and(|l| l > self.max_bytes as u64)
            {
                return Err(Error::unavailable("the key server's response is too large"));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(unavailable("the key server's response was cut off"))?
            {
                if body.len() + chunk.len() > self.max_bytes {
                    return Err(Error::unavailable("the key server's response is too large"));
                }
                body.extend_from_slice(&chunk);
            }
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
