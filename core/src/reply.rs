//! [`Reply`]: the one framework-neutral HTTP answer. Every answer portcullis
//! makes itself (an [`Error`]'s, the login and management routes', a login
//! redirect) is a `Reply`, and each adapter converts it into its framework's
//! response in one function, so the three adapters answer byte for byte the
//! same. [`Authentication`] is what a middleware's authentication hands the
//! adapter: the caller and the cookies every response must carry.

use std::fmt;

use crate::credentials::Authenticated;
use crate::error::Error;

/// The `Cache-Control` of every answer that sets a cookie of portcullis (a
/// session, a login transaction, or their removal): never stored by any
/// cache, shared or not.
pub const SESSION_CACHE_CONTROL: &str = "private, no-store";

/// The headers of every JSON answer of portcullis' own routes: JSON, never
/// cached (answers may hold tokens or a user's capabilities), never leaked
/// through `Referer`.
pub const JSON_HEADERS: [(&str, &str); 3] = [
    ("content-type", "application/json"),
    ("cache-control", "no-store"),
    ("referrer-policy", "no-referrer"),
];

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
    pub fn see_other(location: impl Into<String>) -> Self {
        Self {
            status: 303,
            headers: vec![("location", location.into())],
            body: Vec::new(),
        }
    }

    /// A JSON answer with `status` and only a `Content-Type`.
    pub fn json(status: u16, body: String) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body: body.into_bytes(),
        }
    }

    /// A JSON answer of portcullis' own routes: `status`, `value`, and
    /// [`JSON_HEADERS`].
    pub fn json_no_store(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            headers: JSON_HEADERS
                .iter()
                .map(|(name, value)| (*name, (*value).to_owned()))
                .collect(),
            body: value.to_string().into_bytes(),
        }
    }

    /// `error`'s answer: its status, an RFC 6750 `WWW-Authenticate`
    /// challenge in `realm` when it has one, and its JSON body (see
    /// [`Error::to_reply`]).
    pub fn error(error: &Error, realm: &str) -> Self {
        error.to_reply(realm)
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Adds `Set-Cookie` headers.
    #[must_use]
    pub fn with_cookies(mut self, cookies: impl IntoIterator<Item = String>) -> Self {
        self.headers
            .extend(cookies.into_iter().map(|c| ("set-cookie", c)));
        self
    }

    /// Marks the answer as never to be cached nor leaked through `Referer`
    /// (it carries tokens, cookies or a login redirect):
    /// [`SESSION_CACHE_CONTROL`].
    #[must_use]
    pub fn private(mut self) -> Self {
        self.headers.retain(|(n, _)| *n != "cache-control");
        self.headers
            .push(("cache-control", SESSION_CACHE_CONTROL.to_owned()));
        self.headers.push(("pragma", "no-cache".to_owned()));
        self.headers
            .push(("referrer-policy", "no-referrer".to_owned()));
        self
    }

    /// The body as UTF-8 text; empty when it is not UTF-8.
    pub fn body_text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or_default()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The outcome of authenticating a request: the caller (or a guest) and the
/// cookies to set on the response (a refreshed session, or a cleared one).
///
/// The adapter appends every [`set_cookies`](Self::set_cookies) value to the
/// response, whatever it is, and sets its `Cache-Control` to
/// [`cache_control`](Self::cache_control) when there is one (replacing the
/// handler's): a response that sets a session cookie is never cacheable.
/// Its `Debug` shows no cookie value.
#[derive(Default)]
pub struct Authentication {
    /// The caller; `None` for a guest.
    pub caller: Option<Authenticated>,
    /// `Set-Cookie` values to add to the response, whatever it is.
    pub set_cookies: Vec<String>,
}

impl fmt::Debug for Authentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authentication")
            .field("caller", &self.caller)
            .field("set_cookies", &self.set_cookies.len())
            .finish()
    }
}

impl Authentication {
    /// A guest, with no cookie to set.
    pub fn guest() -> Self {
        Self::default()
    }

    /// The `Cache-Control` the response must carry instead of its own:
    /// [`SESSION_CACHE_CONTROL`] when a cookie is set, else none (the
    /// handler's stands).
    pub fn cache_control(&self) -> Option<&'static str> {
        (!self.set_cookies.is_empty()).then_some(SESSION_CACHE_CONTROL)
    }

    /// A guest whose session cookie `cookie` clears.
    pub fn clearing(cookie: String) -> Self {
        Self {
            caller: None,
            set_cookies: vec![cookie],
        }
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

    #[test]
    fn json_answers_of_the_routes_are_never_cached() {
        let reply = Reply::json_no_store(200, &serde_json::json!({"status": "ok"}));
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(reply.body, br#"{"status":"ok"}"#);
    }
}
