//! [`RequestInfo`]: the request as a policy sees it, whatever the framework;
//! and the rules that turn its raw parts into input (path segments, query
//! parameters, chosen headers, the body).

use std::borrow::Cow;
use std::fmt;

use percent_encoding::percent_decode_str;
use portcullis_core::{Error, HeaderLookup};

/// A request described for a policy decision, framework-neutral: what an
/// adapter reads from its framework's request and hands to
/// [`Policy::decide`](crate::Policy::decide).
///
/// Everything is borrowed from the request; nothing is copied until the
/// decision needs it.
///
/// - `method`: the request method as sent (`GET`, `PATCH`, ...).
/// - `path`: the **raw** path, before percent-decoding, without the query
///   (`/finance/salary/alice%2Fbob`). It is split on `/` first and each
///   segment decoded after, so a `%2F` never becomes a separator.
/// - `route` and `params`: the route template the router matched
///   (`/finance/salary/{user}`) and its path parameters, when the adapter
///   knows them (axum's `MatchedPath`, actix-web's `match_pattern`, poem's
///   matched pattern). Only the [native](crate::InputShape::Native) input
///   carries them.
/// - `query`: the raw query string, without `?`.
/// - `headers`: where the [chosen headers](crate::PolicyConfig::headers)
///   are read from. Only those are read: `Authorization`, cookies and
///   token headers can never be chosen.
/// - `body`: the request body, when the policy is configured to see it
///   ([`body_limit`](crate::PolicyConfig::body_limit)); the adapter reads
///   it under that limit and answers 413 past it.
///
/// ```
/// use portcullis_policy::RequestInfo;
/// let request = RequestInfo::new("GET", "/finance/salary/alice")
///     .with_route("/finance/salary/{user}", &[("user", "alice")])
///     .with_query("full=true")
///     .with_header_pairs(&[("x-tenant", "acme")]);
/// assert_eq!(request.method(), "GET");
/// assert_eq!(request.route(), Some("/finance/salary/{user}"));
/// ```
#[derive(Clone, Copy)]
pub struct RequestInfo<'a> {
    method: &'a str,
    path: &'a str,
    route: Option<&'a str>,
    params: &'a [(&'a str, &'a str)],
    query: Option<&'a str>,
    headers: Headers<'a>,
    body: Option<&'a [u8]>,
}

/// Where headers are read from.
#[derive(Clone, Copy)]
enum Headers<'a> {
    None,
    Lookup(&'a (dyn HeaderLookup + Sync)),
    Pairs(&'a [(&'a str, &'a str)]),
}

impl fmt::Debug for RequestInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The query may carry secrets (`?access_token=`), the body anything:
        // neither is shown.
        f.debug_struct("RequestInfo")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("route", &self.route)
            .field("params", &self.params.len())
            .field("query", &self.query.map(str::len))
            .field("body", &self.body.map(<[u8]>::len))
            .finish_non_exhaustive()
    }
}

impl<'a> RequestInfo<'a> {
    /// A request with `method` and the raw `path` (no query).
    pub fn new(method: &'a str, path: &'a str) -> Self {
        Self {
            method,
            path,
            route: None,
            params: &[],
            query: None,
            headers: Headers::None,
            body: None,
        }
    }

    /// The route template the router matched and its path parameters
    /// (decoded, as the router gives them).
    #[must_use]
    pub fn with_route(mut self, template: &'a str, params: &'a [(&'a str, &'a str)]) -> Self {
        self.route = Some(template);
        self.params = params;
        self
    }

    /// The raw query string, without the `?`.
    #[must_use]
    pub fn with_query(mut self, query: &'a str) -> Self {
        self.query = Some(query);
        self
    }

    /// Where the chosen headers are read from: the adapter's header lookup.
    #[must_use]
    pub fn with_headers(mut self, headers: &'a (dyn HeaderLookup + Sync)) -> Self {
        self.headers = Headers::Lookup(headers);
        self
    }

    /// The headers as `(name, value)` pairs (names matched in any case).
    #[must_use]
    pub fn with_header_pairs(mut self, headers: &'a [(&'a str, &'a str)]) -> Self {
        self.headers = Headers::Pairs(headers);
        self
    }

    /// The request body.
    #[must_use]
    pub fn with_body(mut self, body: &'a [u8]) -> Self {
        self.body = Some(body);
        self
    }

    /// The request method.
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The raw path.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The matched route template, if known.
    pub fn route(&self) -> Option<&'a str> {
        self.route
    }

    /// The path parameters.
    pub fn params(&self) -> &'a [(&'a str, &'a str)] {
        self.params
    }

    /// The raw query string, if any.
    pub fn query(&self) -> Option<&'a str> {
        self.query
    }

    /// The value of header `name` (lower case), if headers were given.
    pub(crate) fn header(&self, name: &str) -> Option<&'a str> {
        match self.headers {
            Headers::None => None,
            Headers::Lookup(h) => h.header(name),
            Headers::Pairs(pairs) => pairs.header(name),
        }
    }

    /// The body, if given.
    pub fn body(&self) -> Option<&'a [u8]> {
        self.body
    }
}

/// The path's segments: the raw path split on `/` (the leading one
/// dropped), then each segment percent-decoded. `/` gives `[""]`, `/a/`
/// gives `["a", ""]`, `/a%2Fb` gives `["a/b"]`; `.` and `..` stay segments
/// as they are, never resolved, as the router sees them.
///
/// # Errors
///
/// 400 (`invalid_request`) when the path does not start with `/` or a
/// segment does not decode to UTF-8.
pub(crate) fn path_segments(path: &str) -> Result<Vec<String>, Error> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(Error::invalid_request(
            "the request path must start with `/`",
        ));
    };
    rest.split('/').map(decode).collect()
}

fn decode(raw: &str) -> Result<String, Error> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Error::invalid_request("the request path does not decode to UTF-8"))
}

/// A framework's route template in one form, `{name}` for a parameter
/// and `{*name}` for the rest of the path, so that policies and skip lists
/// read the same template on every adapter: axum's `/files/{name}` and
/// `/assets/{*path}` stay as they are; actix-web's `{name:regex}` becomes
/// `{name}` and its tail `{path}*` becomes `{*path}`; poem's `:name`
/// (with or without `<regex>`) becomes `{name}` and `*path` becomes
/// `{*path}`.
///
/// ```
/// use portcullis_policy::normalize_route;
/// assert_eq!(normalize_route("/files/{name}"), "/files/{name}");
/// assert_eq!(normalize_route("/files/:name"), "/files/{name}");
/// assert_eq!(normalize_route("/files/{id:\\d+}"), "/files/{id}");
/// assert_eq!(normalize_route("/assets/{path}*"), "/assets/{*path}");
/// assert_eq!(normalize_route("/assets/*path"), "/assets/{*path}");
/// ```
pub fn normalize_route(template: &str) -> Cow<'_, str> {
    if !template.contains(['{', ':', '*']) {
        return Cow::Borrowed(template);
    }
    let mut out = String::with_capacity(template.len() + 4);
    let bytes = template.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let at_segment_start = i > 0 && bytes[i - 1] == b'/';
        match bytes[i] {
            b'{' => {
                // To the matching brace (a regex may hold braces of its own).
                let mut depth = 0usize;
                let mut end = i;
                while end < bytes.len() {
                    match bytes[end] {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    end += 1;
                }
                let inner = &template[i + 1..end.min(template.len())];
                let name = inner.split(':').next().unwrap_or_default();
                let tail = bytes.get(end + 1) == Some(&b'*');
                match name.strip_prefix('*') {
                    Some(rest) => out.push_str(&format!("{{*{rest}}}")),
                    None if tail => out.push_str(&format!("{{*{name}}}")),
                    None => out.push_str(&format!("{{{name}}}")),
                }
                i = end + 1 + usize::from(tail);
            }
            b':' | b'*' if at_segment_start => {
                let star = bytes[i] == b'*';
                let start = i + 1;
                let mut end = start;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_')
                {
                    end += 1;
                }
                let name = &template[start..end];
                // poem's `:name<regex>`.
                if bytes.get(end) == Some(&b'<') {
                    while end < bytes.len() && bytes[end] != b'>' {
                        end += 1;
                    }
                    end += 1;
                }
                if star {
                    out.push_str(&format!("{{*{name}}}"));
                } else {
                    out.push_str(&format!("{{{name}}}"));
                }
                i = end;
            }
            _ => {
                let next = template[i..]
                    .find(['{', ':', '*'])
                    .map_or(template.len(), |n| i + n.max(1));
                out.push_str(&template[i..next]);
                i = next;
            }
        }
    }
    Cow::Owned(out)
}

/// The path parameters of `path` (raw) under `template` ([normalized](normalize_route)):
/// each `{name}` segment takes the path's segment at its place, and
/// `{*name}` the rest of the path, decoded as the path's segments are
/// (split on the raw `/` first), the same on every adapter whatever its
/// router decodes. A parameter that is only part of a segment is not
/// given.
///
/// ```
/// use portcullis_policy::route_params;
/// let params = route_params("/files/{name}", "/files/a%2Fb").unwrap();
/// assert_eq!(params, [("name".to_owned(), "a/b".to_owned())]);
/// let params = route_params("/assets/{*path}", "/assets/css/site.css").unwrap();
/// assert_eq!(params, [("path".to_owned(), "css/site.css".to_owned())]);
/// ```
///
/// # Errors
///
/// 400 (`invalid_request`) when a parameter does not decode to UTF-8.
pub fn route_params(template: &str, path: &str) -> Result<Vec<(String, String)>, Error> {
    let mut params = Vec::new();
    let raw: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let template = template.strip_prefix('/').unwrap_or(template);
    for (i, segment) in template.split('/').enumerate() {
        let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            continue;
        };
        if let Some(rest) = name.strip_prefix('*') {
            let tail = raw.get(i..).unwrap_or_default();
            let decoded: Result<Vec<String>, Error> = tail.iter().map(|s| decode(s)).collect();
            params.push((rest.to_owned(), decoded?.join("/")));
            break;
        }
        if let Some(value) = raw.get(i) {
            params.push((name.to_owned(), decode(value)?));
        }
    }
    Ok(params)
}

/// The query's parameters in order, names and values decoded (`+` is a
/// space, as in forms). `a=1&a=2&b` gives `[(a, 1), (a, 2), (b, "")]`;
/// empty pieces (`a=1&&b=2`) are skipped.
///
/// # Errors
///
/// 400 (`invalid_request`) when a name or value does not decode to UTF-8.
pub(crate) fn query_params(query: &str) -> Result<Vec<(String, String)>, Error> {
    let form = |s: &str| -> Result<String, Error> {
        let spaced = s.replace('+', " ");
        percent_decode_str(&spaced)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| Error::invalid_request("the query string does not decode to UTF-8"))
    };
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            Ok((form(name)?, form(value)?))
        })
        .collect()
}

/// Parts of header names that mark a header carrying credentials or
/// session state: such a header can never be chosen for the input.
const SENSITIVE_PARTS: [&str; 11] = [
    "authorization",
    "cookie",
    "token",
    "secret",
    "session",
    "password",
    "api-key",
    "apikey",
    "credential",
    "jwt",
    "x-amzn-oidc",
];

/// Whether a header or field `name` (any case) looks like it carries
/// credentials or session state: it contains one of `authorization`,
/// `cookie`, `token`, `secret`, `session`, `password`, `api-key`,
/// `apikey`, `credential`, `jwt` or `x-amzn-oidc`. Such headers are never
/// chosen for the input, and such keys are masked in decision events.
pub fn is_sensitive_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let dashed = lower.replace('_', "-");
    SENSITIVE_PARTS.iter().any(|part| dashed.contains(part))
}

/// Checks the chosen header names and returns them lower-cased.
///
/// # Errors
///
/// A configuration error naming `key` when a name is not a valid header
/// name, is listed twice, or [is sensitive](is_sensitive_name).
pub(crate) fn chosen_headers(key: &str, names: &[String]) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid {
            return Err(Error::config(format!(
                "configuration key `{key}[{i}]`: not a valid header name"
            )));
        }
        let lower = name.to_ascii_lowercase();
        if is_sensitive_name(&lower) {
            return Err(Error::config(format!(
                "configuration key `{key}[{i}]`: `{lower}` may carry credentials or session \
                 state (Authorization, cookies, tokens, keys), which never reach a policy's input"
            )));
        }
        if out.contains(&lower) {
            return Err(Error::config(format!(
                "configuration key `{key}[{i}]`: `{lower}` is listed twice"
            )));
        }
        out.push(lower);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_split_before_decoding() {
        assert_eq!(path_segments("/").unwrap(), [""]);
        assert_eq!(path_segments("/a/").unwrap(), ["a", ""]);
        assert_eq!(path_segments("//a").unwrap(), ["", "a"]);
        assert_eq!(
            path_segments("/finance/salary/alice%2Fbob").unwrap(),
            ["finance", "salary", "alice/bob"]
        );
        assert_eq!(
            path_segments("/public/../finance/%2e%2e/x").unwrap(),
            ["public", "..", "finance", "..", "x"]
        );
        assert_eq!(path_segments("/a+b%20c").unwrap(), ["a+b c"]);
        assert_eq!(
            path_segments("/caf%C3%A9").unwrap(),
            ["caf\u{e9}"],
            "UTF-8 decodes"
        );
        for bad in ["", "*", "a/b", "/%FF", "/ok/%C3"] {
            let e = path_segments(bad).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
        }
    }

    #[test]
    fn route_templates_read_alike() {
        for (framework, normal) in [
            ("/", "/"),
            ("/files/{name}", "/files/{name}"),
            ("/files/:name", "/files/{name}"),
            ("/files/:name<\\d+>/raw", "/files/{name}/raw"),
            ("/files/{name:[a-z]{2}}/raw", "/files/{name}/raw"),
            ("/assets/{*path}", "/assets/{*path}"),
            ("/assets/{path}*", "/assets/{*path}"),
            ("/assets/*path", "/assets/{*path}"),
            ("/a:b/c*d", "/a:b/c*d"),
        ] {
            assert_eq!(normalize_route(framework), normal, "{framework}");
        }
        assert_eq!(
            route_params("/files/{name}/raw", "/files/x%20y/raw").unwrap(),
            [("name".to_owned(), "x y".to_owned())]
        );
        assert_eq!(
            route_params("/f/{a}/{*rest}", "/f/1/2/3%2F4").unwrap(),
            [
                ("a".to_owned(), "1".to_owned()),
                ("rest".to_owned(), "2/3/4".to_owned())
            ]
        );
        assert!(route_params("/static", "/static").unwrap().is_empty());
        assert_eq!(route_params("/f/{a}", "/f/%FF").unwrap_err().status(), 400);
    }

    #[test]
    fn query_parameters() {
        assert_eq!(
            query_params("a=1&a=2&b&c=x+y%26z&&=v").unwrap(),
            [
                ("a".to_owned(), "1".to_owned()),
                ("a".to_owned(), "2".to_owned()),
                ("b".to_owned(), String::new()),
                ("c".to_owned(), "x y&z".to_owned()),
                (String::new(), "v".to_owned()),
            ]
        );
        assert!(query_params("").unwrap().is_empty());
        assert_eq!(query_params("a=%FF").unwrap_err().status(), 400);
    }

    #[test]
    fn credential_headers_are_never_chosen() {
        for name in [
            "Authorization",
            "proxy-authorization",
            "Cookie",
            "set-cookie",
            "x-id-token",
            "X-Refresh-Token",
            "x-forwarded-access-token",
            "x-auth-request-access-token",
            "x-api-key",
            "X_API_KEY",
            "x-session-id",
            "x-amzn-oidc-data",
            "x-client-secret",
        ] {
            let e = chosen_headers("policy.headers", &[name.to_owned()]).unwrap_err();
            assert!(
                e.message().contains("policy.headers[0]") && e.message().contains("credentials"),
                "{name}: {}",
                e.message()
            );
        }
        assert_eq!(
            chosen_headers(
                "policy.headers",
                &["X-Tenant".to_owned(), "accept-language".to_owned()]
            )
            .unwrap(),
            ["x-tenant", "accept-language"]
        );
        let twice = chosen_headers("policy.headers", &["a".to_owned(), "A".to_owned()]);
        assert!(twice.unwrap_err().message().contains("twice"));
        let invalid = chosen_headers("policy.headers", &["x tenant".to_owned()]);
        assert!(
            invalid
                .unwrap_err()
                .message()
                .contains("not a valid header name")
        );
    }
}
