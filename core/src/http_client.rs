//! The one HTTP client portcullis builds, and the limits on what it reads.
//!
//! Every request portcullis sends itself (discovery and JWKS documents, the
//! token endpoint, userinfo, calls to other services with a forwarded token)
//! goes through an [`HttpClient`] (feature `reqwest`):
//!
//! - **no redirect is followed**: a document must be served where it is
//!   configured or discovered, and a token never travels to where a
//!   redirect points; a 3xx answer is returned as it is;
//! - a **connect timeout** ([`CONNECT_TIMEOUT`], or the total timeout when
//!   shorter) and a **total timeout** per request, answer included;
//! - TLS by **rustls** (aws-lc-rs).
//!
//! Every body portcullis reads itself is read by [`read_bounded`] (or by an
//! [`HttpFetch`](crate::fetch::HttpFetch), which holds the same limits): it
//! streams the body and refuses it as soon as it grows past the cap for its
//! purpose, without reading the rest. The caps are the constants below, one
//! per purpose. Answers portcullis hands on to the application unread (a
//! downstream service's answer to a forwarded request) are not capped here:
//! the application reads them as it sees fit.

use std::time::Duration;

/// The largest provider discovery document read (256 KiB). Real documents
/// are a few KiB; the cap leaves room for long lists of supported values.
pub const MAX_DISCOVERY_BYTES: usize = 256 * 1024;

/// The largest JWKS document read by default (256 KiB): the default of the
/// verifier's [`max_response_bytes`](crate::config::JwksConfig::max_response_bytes),
/// which may raise or lower it. Room for dozens of RSA keys with their
/// certificate chains.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The largest token endpoint answer read (256 KiB): an access token, an ID
/// token and a refresh token, each many times the verifier's default token
/// size limit, with room to spare.
pub const MAX_TOKEN_ANSWER_BYTES: usize = 256 * 1024;

/// The largest userinfo answer read (1 MiB): claims about the user, where
/// providers put long group and role lists.
pub const MAX_USERINFO_BYTES: usize = 1024 * 1024;

/// The longest wait for a connection to be established (10 s), whatever the
/// total timeout (a shorter total timeout shortens it too).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(feature = "reqwest")]
pub use with_reqwest::{BodyError, HttpClient, read_bounded};

#[cfg(feature = "reqwest")]
mod with_reqwest {
    use std::fmt;
    use std::time::Duration;

    use super::CONNECT_TIMEOUT;
    use crate::error::Error;

    /// A reqwest client built the one way portcullis builds them: no
    /// redirects, connect and total timeouts (see the [module](super) docs).
    ///
    /// Only [`new`](Self::new) and [`from_builder`](Self::from_builder)
    /// make one, so holding an `HttpClient` means holding a hardened client.
    /// Cheap to clone: clones share one connection pool.
    #[derive(Debug, Clone)]
    pub struct HttpClient {
        client: reqwest::Client,
    }

    impl HttpClient {
        /// A client whose requests may take `timeout` each, answer
        /// included. TLS by rustls; the user agent names portcullis.
        ///
        /// # Errors
        ///
        /// [`ErrorKind::Config`](crate::ErrorKind::Config) when the TLS
        /// backend cannot be set up.
        pub fn new(timeout: Duration) -> Result<Self, Error> {
            Self::from_builder(
                reqwest::Client::builder()
                    .tls_backend_rustls()
                    .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION"))),
                timeout,
            )
        }

        /// A client from `builder` (its TLS roots, proxies, user agent, ...)
        /// with portcullis' rules imposed: its redirect policy is replaced
        /// (no redirect is followed) and so are its timeouts (`timeout` in
        /// all, [`CONNECT_TIMEOUT`] at most to connect). Its TLS backend is
        /// left as the builder has it.
        ///
        /// # Errors
        ///
        /// [`ErrorKind::Config`](crate::ErrorKind::Config) when reqwest
        /// cannot build the client.
        pub fn from_builder(
            builder: reqwest::ClientBuilder,
            timeout: Duration,
        ) -> Result<Self, Error> {
            let client = builder
                .redirect(reqwest::redirect::Policy::none())
                .timeout(timeout)
                .connect_timeout(timeout.min(CONNECT_TIMEOUT))
                .build()
                .map_err(|e| Error::config("the HTTP client could not be built").with_source(e))?;
            Ok(Self { client })
        }

        /// The reqwest client, to send requests with.
        pub fn reqwest(&self) -> &reqwest::Client {
            &self.client
        }
    }

    /// Why [`read_bounded`] gave up on a body.
    #[derive(Debug)]
    #[non_exhaustive]
    pub enum BodyError {
        /// The body is larger than the cap for its purpose; the rest was not read.
        TooLarge {
            /// The cap, in bytes.
            max_bytes: usize,
        },
        /// The connection failed while the body was read.
        Read(reqwest::Error),
    }

    impl fmt::Display for BodyError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Self::TooLarge { max_bytes } => {
                    write!(f, "the answer is larger than {max_bytes} bytes")
                }
                Self::Read(_) => f.write_str("the answer was cut off"),
            }
        }
    }

    impl std::error::Error for BodyError {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            match self {
                Self::TooLarge { .. } => None,
                Self::Read(e) => Some(e),
            }
        }
    }

    /// Reads `resp`'s body, at most `max_bytes` of it.
    ///
    /// A body announced larger (`Content-Length`) is refused before any of
    /// it is read; otherwise the body is read chunk by chunk and refused as
    /// soon as it grows past `max_bytes`. The rest is never read: dropping
    /// the response closes the connection.
    ///
    /// # Errors
    ///
    /// [`BodyError::TooLarge`] past the cap, [`BodyError::Read`] when the
    /// connection fails.
    pub async fn read_bounded(
        mut resp: reqwest::Response,
        max_bytes: usize,
    ) -> Result<Vec<u8>, BodyError> {
        let too_large = BodyError::TooLarge { max_bytes };
        if resp.content_length().is_some_and(|l| l > max_bytes as u64) {
            return Err(too_large);
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| BodyError::Read(e.without_url()))?
        {
            if chunk.len() > max_bytes - body.len() {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(all(test, feature = "reqwest"))]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;

    /// A loopback server answering every request with `head` and then
    /// `body_len` bytes of body (written in chunks, the connection left
    /// open); reports on `written` how many body bytes the client took.
    async fn serve(head: String, body_len: usize) -> (String, mpsc::UnboundedReceiver<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let head = head.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    if stream.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = [b'x'; 1024];
                    let mut written = 0;
                    while written < body_len {
                        let n = chunk.len().min(body_len - written);
                        if stream.write_all(&chunk[..n]).await.is_err() {
                            break;
                        }
                        written += n;
                    }
                    let _ = tx.send(written);
                    // Hold the connection until the client drops it.
                    let _ = stream.read(&mut request).await;
                });
            }
        });
        (format!("http://{addr}"), rx)
    }

    fn client() -> HttpClient {
        HttpClient::new(Duration::from_secs(5)).unwrap()
    }

    #[tokio::test]
    async fn no_redirect_is_followed() {
        // The redirect target would answer 200: reaching it would be following.
        let (target, mut hits) =
            serve("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n".to_owned(), 2).await;
        let (origin, _) = serve(
            format!("HTTP/1.1 302 Found\r\nlocation: {target}/keys\r\ncontent-length: 0\r\n\r\n"),
            0,
        )
        .await;
        let resp = client()
            .reqwest()
            .get(format!("{origin}/jwks"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 302);
        assert_eq!(
            resp.headers()["location"].to_str().unwrap(),
            format!("{target}/keys")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(hits.try_recv().is_err(), "the redirect target was asked");
    }

    #[tokio::test]
    async fn bodies_past_the_cap_are_refused_without_reading_the_rest() {
        let cap = 16 * 1024;
        // Announced too large: refused before any of it is read.
        let (url, _) = serve(
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", cap + 1),
            cap + 1,
        )
        .await;
        let resp = client().reqwest().get(&url).send().await.unwrap();
        let e = read_bounded(resp, cap).await.unwrap_err();
        assert!(
            matches!(e, BodyError::TooLarge { max_bytes } if max_bytes == cap),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            format!("the answer is larger than {cap} bytes")
        );

        // Unannounced (chunked, endless in effect): refused once past the
        // cap, and the server never gets to write the rest.
        let huge = 64 * 1024 * 1024;
        let (url, mut written) = serve(
            "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_owned(),
            huge,
        )
        .await;
        let resp = client().reqwest().get(&url).send().await.unwrap();
        let e = read_bounded(resp, cap).await.unwrap_err();
        assert!(matches!(e, BodyError::TooLarge { .. }), "{e}");
        let written = tokio::time::timeout(Duration::from_secs(5), written.recv())
            .await
            .expect("the server stops once the client is gone")
            .unwrap();
        assert!(written < huge / 2, "{written} bytes were sent");

        // At the cap exactly: read whole.
        let (url, _) = serve(
            format!("HTTP/1.1 200 OK\r\ncontent-length: {cap}\r\n\r\n"),
            cap,
        )
        .await;
        let resp = client().reqwest().get(&url).send().await.unwrap();
        assert_eq!(read_bounded(resp, cap).await.unwrap(), vec![b'x'; cap]);
    }
}
