//! [`Reply`]: the framework-neutral HTTP answer of the login routes.

use std::fmt;

use portcullis_core::Error;

/// The `Cache-Control` of every answer that sets a cookie of portcullis (a
/// session, a login transaction, or their removal): never stored by any
/// cache, shared or not.
pub const SESSION_CACHE_CONTROL: &str = "private, no-store";

/// An HTTP answer for an adapter to copy out: status, headers (names in lower
/// case; `set-cookie` may repeat) and body.
///
/// Its `Debug` shows the status, the header names and the body's length: the
/// values of `set-cookie` and `location` (a session, a login's `state`) and
/// the body (a token) stay out of logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values, in order; names may repeat.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| match *n {
                "set-cookie" | "location" => (*n, "<redacted>"),
                _ => (*n, v.as_str()),
            })
            .collect();
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("headers", &headers)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl Reply {
    /// A `303 See Other` to `location`.
    pub(crate) fn see_other(location: impl Into<String>) -> Self {
        Self {
            status: 303,
            headers: vec![("location", location.into())],
            body: Vec::new(),
        }
    }

    /// A JSON answer with `status`.
    pub(crate) fn json(status: u16, body: String) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body: body.into_bytes(),
        }
    }

    /// Core's HTTP form of `error`.
    pub fn error(error: &Error, realm: &str) -> Self {
        let r = error.to_response(realm);
        Self {
            status: r.status,
            headers: r.headers,
            body: r.body.into_bytes(),
        }
    }

    /// Adds a header.
    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Adds `Set-Cookie` headers.
    pub(crate) fn with_cookies(mut self, cookies: impl IntoIterator<Item = String>) -> Self {
        self.headers
            .extend(cookies.into_iter().map(|c| ("set-cookie", c)));
        self
    }

    /// Marks the answer as never to be cached nor leaked through `Referer`
    /// (it carries tokens, cookies or a login redirect):
    /// [`SESSION_CACHE_CONTROL`].
    pub(crate) fn private(mut self) -> Self {
        self.headers.retain(|(n, _)| *n != "cache-control");
        self.headers
            .push(("cache-control", SESSION_CACHE_CONTROL.to_owned()));
        self.headers.push(("pragma", "no-cache".to_owned()));
        self.headers
            .push(("referrer-policy", "no-referrer".to_owned()));
        self
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_cookie_location_or_body() {
        let reply = Reply::see_other("https://id.example.com/authorize?state=s3cr3t-state")
            .with_cookies(["portcullis-session=s3cr3t-cookie; Path=/".to_owned()])
            .with_header("content-type", "application/json")
            .private();
        let reply = Reply {
            body: b"{\"token\":\"s3cr3t-token\"}".to_vec(),
            ..reply
        };
        let shown = format!("{reply:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(
            shown.contains("application/json") && shown.contains("303"),
            "{shown}"
        );
        assert_eq!(reply.header("cache-control"), Some(SESSION_CACHE_CONTROL));
    }
}
