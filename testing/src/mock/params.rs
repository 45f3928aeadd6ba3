//! Request parameters and the answers the OAuth endpoints share: parsing
//! `application/x-www-form-urlencoded` data, checking scopes and PKCE values,
//! and building redirects and error bodies.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use url::form_urlencoded;

/// Parameters of a query string or form body.
///
/// Parameters sent without a value count as absent (RFC 6749 §3.1), and a
/// parameter sent twice is remembered as such, since OAuth forbids it.
#[derive(Debug, Default)]
pub(crate) struct Params {
    values: HashMap<String, String>,
    repeated: Vec<String>,
}

impl Params {
    pub(crate) fn parse(data: &[u8]) -> Self {
        let mut params = Self::default();
        for (name, value) in form_urlencoded::parse(data) {
            if value.is_empty() {
                continue;
            }
            match params.values.entry(name.into_owned()) {
                Entry::Occupied(entry) => {
                    if !params.repeated.contains(entry.key()) {
                        params.repeated.push(entry.key().clone());
                    }
                }
                Entry::Vacant(entry) => {
                    entry.insert(value.into_owned());
                }
            }
        }
        params
    }

    /// The value of `name`; `None` when absent, empty or repeated.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        if self.is_repeated(name) {
            return None;
        }
        self.values.get(name).map(String::as_str)
    }

    pub(crate) fn is_repeated(&self, name: &str) -> bool {
        self.repeated.iter().any(|n| n == name)
    }

    /// The first parameter sent more than once.
    pub(crate) fn first_repeated(&self) -> Option<&str> {
        self.repeated.first().map(String::as_str)
    }
}

/// Whether `c` may appear in a scope token (RFC 6749 §3.3).
fn is_scope_char(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')
}

/// The scope tokens of a `scope` parameter, or `None` when one holds a
/// character RFC 6749 does not allow. Runs of spaces count as one.
pub(crate) fn scope_tokens(scope: &str) -> Option<Vec<&str>> {
    let tokens: Vec<&str> = scope.split(' ').filter(|t| !t.is_empty()).collect();
    tokens
        .iter()
        .all(|t| t.chars().all(is_scope_char))
        .then_some(tokens)
}

/// Whether `c` is an unreserved URI character (RFC 3986 §2.3), the alphabet
/// of PKCE code verifiers.
fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// Whether `verifier` is a well-formed PKCE code verifier (RFC 7636 §4.1).
pub(crate) fn is_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && verifier.bytes().all(is_unreserved)
}

/// Whether `challenge` is a well-formed S256 code challenge: the unpadded
/// base64url form of 32 bytes.
pub(crate) fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a
/// space); `None` on a bad escape or bytes that are not UTF-8.
pub(crate) fn form_decode(component: &str) -> Option<String> {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `uri` with `params` appended to its query, `?` or `&` as needed.
pub(crate) fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    let query = query.finish();
    let separator = match uri.find('?') {
        None => "?",
        Some(_) if uri.ends_with('?') || uri.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{uri}{separator}{query}")
}

/// A `302 Found` to `location`, not to be cached.
pub(crate) fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, value),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(_) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the redirect URI cannot be sent in a Location header",
        ),
    }
}

/// An OAuth error answer: `{"error": ..., "error_description": ...}`.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// Adds `Cache-Control: no-store` and `Pragma: no-cache`.
pub(crate) fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
