//! [`Reply`]: the framework-neutral HTTP answer of the login routes.

use portcullis_core::Error;

/// An HTTP answer for an adapter to copy out: status, headers (names in lower
/// case; `set-cookie` may repeat) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values, in order; names may repeat.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
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
    /// (it carries tokens, cookies or a login redirect).
    pub(crate) fn private(mut self) -> Self {
        self.headers.retain(|(n, _)| *n != "cache-control");
        self.headers.push(("cache-control", "no-store".to_owned()));
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
