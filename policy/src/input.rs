//! The policy's `input`: built once per decision from the verified caller
//! and the request, in the configured [`InputShape`], serialized straight
//! from borrowed parts (no copy of the claims), and masked for decision
//! events.

use std::collections::BTreeMap;
use std::sync::Arc;

use portcullis_core::{Error, Principal};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

use crate::config::InputShape;
use crate::request::{RequestInfo, is_sensitive_name, path_segments, query_params};

/// What replaces a masked value in decision events.
const MASKED: &str = "[masked]";

/// How the input is built: its shape and what of the request it carries.
#[derive(Debug, Clone)]
pub(crate) struct InputRules {
    pub(crate) shape: InputShape,
    /// Chosen headers, lower-cased (native only).
    pub(crate) headers: Vec<String>,
    /// Whether the body is carried (native only), and its limit.
    pub(crate) body_limit: Option<usize>,
}

/// A request body in the input.
#[derive(Debug)]
enum Body {
    Json(Value),
    Text(String),
}

impl Body {
    fn len(&self) -> usize {
        match self {
            Body::Json(v) => v.to_string().len(),
            Body::Text(t) => t.len(),
        }
    }
}

/// The request's parts the input is made of, decoded and owned: what a
/// decision keeps once the request's borrow ends.
#[derive(Debug)]
pub(crate) struct Prepared {
    method: String,
    segments: Vec<String>,
    route: Option<String>,
    params: Vec<(String, String)>,
    query: Vec<(String, Vec<String>)>,
    headers: Vec<(String, String)>,
    body: Option<Body>,
}

impl InputRules {
    /// Decodes `request` into the parts the input carries.
    ///
    /// # Errors
    ///
    /// 400 when the path or query does not decode, or the body is not text
    /// (or not JSON under a JSON content type); 413 is the adapter's to
    /// answer before, and a body past the limit here is refused (400)
    /// rather than cut.
    pub(crate) fn prepare(&self, request: &RequestInfo<'_>) -> Result<Prepared, Error> {
        let method = request.method();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid_request("the request method is not a token"));
        }
        let segments = path_segments(request.path())?;
        let native = self.shape == InputShape::Native;
        let mut prepared = Prepared {
            method: method.to_owned(),
            segments,
            route: None,
            params: Vec::new(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        };
        if !native {
            return Ok(prepared);
        }
        prepared.route = request.route().map(str::to_owned);
        for (name, value) in request.params() {
            if !prepared.params.iter().any(|(n, _)| n == name) {
                prepared
                    .params
                    .push(((*name).to_owned(), (*value).to_owned()));
            }
        }
        for (name, value) in query_params(request.query().unwrap_or(""))? {
            match prepared.query.iter_mut().find(|(n, _)| *n == name) {
                Some((_, values)) => values.push(value),
                None => prepared.query.push((name, vec![value])),
            }
        }
        for name in &self.headers {
            if let Some(value) = request.header(name) {
                prepared.headers.push((name.clone(), value.to_owned()));
            }
        }
        if let (Some(limit), Some(body)) = (self.body_limit, request.body()) {
            prepared.body = Some(read_body(body, limit, request.header("content-type"))?);
        }
        Ok(prepared)
    }

    /// The part of the decision cache key that comes from the request:
    /// every request part the input is made of, length-prefixed so that
    /// two different requests never give the same bytes.
    pub(crate) fn cache_key(&self, request: &RequestInfo<'_>) -> Vec<u8> {
        // Room for the method and path with their markers and lengths: the
        // whole fastapi-opa key, allocated once.
        let mut key = Vec::with_capacity(18 + request.method().len() + request.path().len());
        let mut put = |part: Option<&[u8]>| match part {
            None => key.push(0),
            Some(bytes) => {
                key.push(1);
                key.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
                key.extend_from_slice(bytes);
            }
        };
        put(Some(request.method().as_bytes()));
        put(Some(request.path().as_bytes()));
        if self.shape == InputShape::Native {
            put(request.route().map(str::as_bytes));
            put(Some(&(request.params().len() as u64).to_le_bytes()));
            for (name, value) in request.params() {
                put(Some(name.as_bytes()));
                put(Some(value.as_bytes()));
            }
            put(request.query().map(str::as_bytes));
            for name in &self.headers {
                put(request.header(name).map(str::as_bytes));
            }
            if self.body_limit.is_some() {
                put(request.header("content-type").map(str::as_bytes));
                put(request.body());
            }
        }
        key
    }
}

/// Whether a content type is JSON (`application/json`, `...+json`).
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn read_body(body: &[u8], limit: usize, content_type: Option<&str>) -> Result<Body, Error> {
    if body.len() > limit {
        return Err(Error::invalid_request(
            "the request body is larger than the policy reads",
        ));
    }
    if content_type.is_some_and(is_json) {
        return serde_json::from_slice(body)
            .map(Body::Json)
            .map_err(|_| Error::invalid_request("the request body is not valid JSON"));
    }
    std::str::from_utf8(body)
        .map(|t| Body::Text(t.to_owned()))
        .map_err(|_| Error::invalid_request("the request body is not text"))
}

/// The input for one decision: the caller (if any) and the prepared
/// request, in a shape. Serializes as the input document; `masked`, as the
/// decision event shows it.
pub(crate) struct Input<'a> {
    pub(crate) shape: InputShape,
    pub(crate) caller: Option<&'a Arc<Principal>>,
    pub(crate) request: &'a Prepared,
    pub(crate) masked: bool,
}

/// The keys of fastapi-opa's input that portcullis sets: a claim of the
/// same name never reaches the input.
const FASTAPI_KEYS: [&str; 2] = ["request_method", "request_path"];

impl Serialize for Input<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let claims = self.caller.map(|p| p.claims());
        let r = self.request;
        let mut map = serializer.serialize_map(None)?;
        match self.shape {
            InputShape::FastapiOpa => {
                for (name, value) in claims.into_iter().flatten() {
                    if FASTAPI_KEYS.contains(&name.as_str()) {
                        continue;
                    }
                    map.serialize_entry(name, &self.value(name, value))?;
                }
                map.serialize_entry("request_method", &r.method)?;
                map.serialize_entry("request_path", &r.segments)?;
            }
            InputShape::Native => {
                map.serialize_entry(
                    "caller",
                    &claims.map(|c| Claims {
                        claims: c,
                        masked: self.masked,
                    }),
                )?;
                map.serialize_entry("method", &r.method)?;
                map.serialize_entry("path", &r.segments)?;
                map.serialize_entry("route", &r.route)?;
                map.serialize_entry("params", &Pairs(&r.params))?;
                map.serialize_entry(
                    "query",
                    &Query {
                        query: &r.query,
                        masked: self.masked,
                    },
                )?;
                map.serialize_entry("headers", &Pairs(&r.headers))?;
                match (&r.body, self.masked) {
                    (None, _) => {}
                    (Some(body), true) => {
                        map.serialize_entry("body", &format!("[{} bytes]", body.len()))?;
                    }
                    (Some(Body::Json(v)), false) => map.serialize_entry("body", v)?,
                    (Some(Body::Text(t)), false) => map.serialize_entry("body", t)?,
                }
            }
        }
        map.end()
    }
}

impl Input<'_> {
    fn value<'v>(&self, name: &str, value: &'v Value) -> MaybeMasked<'v> {
        MaybeMasked {
            value,
            hide: self.masked && is_sensitive_name(name),
            masked: self.masked,
        }
    }
}

/// Claims, masked or not.
struct Claims<'a> {
    claims: &'a Map<String, Value>,
    masked: bool,
}

impl Serialize for Claims<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.claims.len()))?;
        for (name, value) in self.claims {
            map.serialize_entry(
                name,
                &MaybeMasked {
                    value,
                    hide: self.masked && is_sensitive_name(name),
                    masked: self.masked,
                },
            )?;
        }
        map.end()
    }
}

/// A JSON value, replaced by [`MASKED`] when `hide`, and with the values of
/// sensitive keys inside it replaced when `masked`.
struct MaybeMasked<'a> {
    value: &'a Value,
    hide: bool,
    masked: bool,
}

impl Serialize for MaybeMasked<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.hide {
            return serializer.serialize_str(MASKED);
        }
        if !self.masked {
            return self.value.serialize(serializer);
        }
        match self.value {
            Value::Object(fields) => Claims {
                claims: fields,
                masked: true,
            }
            .serialize(serializer),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&MaybeMasked {
                        value: item,
                        hide: false,
                        masked: true,
                    })?;
                }
                seq.end()
            }
            other => other.serialize(serializer),
        }
    }
}

/// Name-value pairs as an object.
struct Pairs<'a>(&'a [(String, String)]);

impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// Query parameters as an object of lists; sensitive ones masked in events.
struct Query<'a> {
    query: &'a [(String, Vec<String>)],
    masked: bool,
}

impl Serialize for Query<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.query.len()))?;
        for (name, values) in self.query {
            if self.masked && is_sensitive_name(name) {
                map.serialize_entry(name, &[MASKED])?;
            } else {
                map.serialize_entry(name, values)?;
            }
        }
        map.end()
    }
}

/// The input as a regorus value, built directly (no JSON text in between):
/// the same document [`Input`] serializes to, unmasked.
impl Input<'_> {
    pub(crate) fn to_rego(&self) -> regorus::Value {
        use regorus::Value as R;
        let r = self.request;
        let text = |s: &str| R::from(s);
        let segments = || R::from(r.segments.iter().map(|s| text(s)).collect::<Vec<_>>());
        let pairs = |pairs: &[(String, String)]| {
            object(pairs.iter().map(|(n, v)| (text(n), text(v))).collect())
        };
        let claims = self.caller.map(|p| p.claims());
        let mut map = BTreeMap::new();
        match self.shape {
            InputShape::FastapiOpa => {
                for (name, value) in claims.into_iter().flatten() {
                    if !FASTAPI_KEYS.contains(&name.as_str()) {
                        map.insert(text(name), json_to_rego(value));
                    }
                }
                map.insert(text("request_method"), text(&r.method));
                map.insert(text("request_path"), segments());
            }
            InputShape::Native => {
                let caller = claims.map_or(R::Null, |c| {
                    object(c.iter().map(|(n, v)| (text(n), json_to_rego(v))).collect())
                });
                map.insert(text("caller"), caller);
                map.insert(text("method"), text(&r.method));
                map.insert(text("path"), segments());
                map.insert(text("route"), r.route.as_deref().map_or(R::Null, text));
                map.insert(text("params"), pairs(&r.params));
                let query = r
                    .query
                    .iter()
                    .map(|(n, values)| {
                        let values = values.iter().map(|v| text(v)).collect::<Vec<_>>();
                        (text(n), R::from(values))
                    })
                    .collect();
                map.insert(text("query"), object(query));
                map.insert(text("headers"), pairs(&r.headers));
                match &r.body {
                    None => {}
                    Some(Body::Json(v)) => {
                        map.insert(text("body"), json_to_rego(v));
                    }
                    Some(Body::Text(t)) => {
                        map.insert(text("body"), text(t));
                    }
                }
            }
        }
        object(map)
    }
}

/// An object value; empty ones as regorus makes them.
fn object(map: BTreeMap<regorus::Value, regorus::Value>) -> regorus::Value {
    if map.is_empty() {
        regorus::Value::new_object()
    } else {
        regorus::Value::from(map)
    }
}

/// A JSON value as regorus reads it from JSON text: integers as integers,
/// other numbers as floats.
pub(crate) fn json_to_rego(value: &Value) -> regorus::Value {
    use regorus::Value as R;
    match value {
        Value::Null => R::Null,
        Value::Bool(b) => R::from(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                R::from(u)
            } else if let Some(i) = n.as_i64() {
                R::from(i)
            } else {
                n.as_f64().map_or(R::Undefined, R::from)
            }
        }
        Value::String(s) => R::from(s.as_str()),
        Value::Array(items) => R::from(items.iter().map(json_to_rego).collect::<Vec<_>>()),
        Value::Object(fields) => object(
            fields
                .iter()
                .map(|(n, v)| (R::from(n.as_str()), json_to_rego(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use portcullis_core::RawToken;
    use serde_json::json;

    use super::*;

    fn principal(claims: Value) -> Arc<Principal> {
        let Value::Object(claims) = claims else {
            unreachable!()
        };
        Arc::new(
            portcullis_core::dangerous::principal_from_unverified_claims(
                "https://id.example.com",
                claims,
                RawToken::new("secret-token"),
                4_000_000_000,
            )
            .unwrap(),
        )
    }

    fn rules(shape: InputShape) -> InputRules {
        InputRules {
            shape,
            headers: vec!["x-tenant".to_owned()],
            body_limit: Some(64),
        }
    }

    fn input(
        shape: InputShape,
        caller: Option<&Arc<Principal>>,
        request: &RequestInfo<'_>,
        masked: bool,
    ) -> Value {
        let prepared = rules(shape).prepare(request).unwrap();
        serde_json::to_value(Input {
            shape,
            caller,
            request: &prepared,
            masked,
        })
        .unwrap()
    }

    #[test]
    fn fastapi_opa_shape() {
        let alice = principal(json!({
            "sub": "u-1", "preferred_username": "alice", "groups": ["staff"],
            "request_method": "DELETE", "request_path": ["public"],
        }));
        let request = RequestInfo::new("GET", "/finance/salary/alice%2Fbob")
            .with_query("x=1")
            .with_header_pairs(&[
                ("x-tenant", "acme"),
                ("authorization", "Bearer secret-token"),
            ]);
        let value = input(InputShape::FastapiOpa, Some(&alice), &request, false);
        // Claims at the top; the request's own keys win over claims of the same name.
        assert_eq!(
            value,
            json!({
                "sub": "u-1", "preferred_username": "alice", "groups": ["staff"],
                "request_method": "GET", "request_path": ["finance", "salary", "alice/bob"],
            })
        );
        let guest = input(InputShape::FastapiOpa, None, &request, false);
        assert_eq!(
            guest,
            json!({"request_method": "GET", "request_path": ["finance", "salary", "alice/bob"]})
        );
    }

    #[test]
    fn native_shape() {
        let alice = principal(json!({"sub": "u-1", "groups": ["finance"]}));
        let headers = [
            ("X-Tenant", "acme"),
            ("x-other", "not chosen"),
            ("authorization", "Bearer secret-token"),
            ("cookie", "session=secret"),
            ("content-type", "application/json"),
        ];
        let request = RequestInfo::new("PATCH", "/records/7")
            .with_route("/records/{id}", &[("id", "7")])
            .with_query("tag=a&tag=b&full")
            .with_header_pairs(&headers)
            .with_body(br#"{"amount": 3}"#);
        let value = input(InputShape::Native, Some(&alice), &request, false);
        assert_eq!(
            value,
            json!({
                "caller": {"sub": "u-1", "groups": ["finance"]},
                "method": "PATCH", "path": ["records", "7"],
                "route": "/records/{id}", "params": {"id": "7"},
                "query": {"tag": ["a", "b"], "full": [""]},
                "headers": {"x-tenant": "acme"},
                "body": {"amount": 3},
            })
        );
        let text = value.to_string();
        assert!(!text.contains("secret"), "{text}");
        let guest = input(
            InputShape::Native,
            None,
            &RequestInfo::new("GET", "/"),
            false,
        );
        assert_eq!(
            guest,
            json!({"caller": null, "method": "GET", "path": [""], "route": null,
                   "params": {}, "query": {}, "headers": {}})
        );
    }

    /// The direct regorus value is the serialized document, read back.
    fn same_for_rego(
        shape: InputShape,
        caller: Option<&Arc<Principal>>,
        request: &RequestInfo<'_>,
    ) {
        let prepared = rules(shape).prepare(request).unwrap();
        let input = Input {
            shape,
            caller,
            request: &prepared,
            masked: false,
        };
        let text = serde_json::to_string(&input).unwrap();
        let read: regorus::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(input.to_rego(), read, "{text}");
    }

    #[test]
    fn regorus_values_are_the_serialized_input() {
        let alice = principal(json!({
            "sub": "u-1", "n": 3, "neg": -4, "f": 1.5, "big": 18446744073709551615u64,
            "null": null, "t": true, "list": [1, "a", {"k": []}], "o": {}, "request_path": "x",
        }));
        let headers = [("x-tenant", "acme"), ("content-type", "application/json")];
        let request = RequestInfo::new("PUT", "/a%2Fb/../c/")
            .with_route("/{x}/{y}", &[("x", "a/b"), ("y", "..")])
            .with_query("q=1&q=2&e")
            .with_header_pairs(&headers)
            .with_body(br#"{"x": [1.25, null]}"#);
        for shape in [InputShape::FastapiOpa, InputShape::Native] {
            same_for_rego(shape, Some(&alice), &request);
            same_for_rego(shape, None, &request);
            same_for_rego(shape, None, &RequestInfo::new("GET", "/"));
        }
        same_for_rego(
            InputShape::Native,
            None,
            &RequestInfo::new("POST", "/").with_body(b"text body"),
        );
    }

    #[test]
    fn bodies() {
        let r = rules(InputShape::Native);
        let json_type: &[(&str, &str)] = &[("content-type", "application/problem+json")];
        let prepared = r
            .prepare(
                &RequestInfo::new("POST", "/")
                    .with_header_pairs(json_type)
                    .with_body(b"[1]"),
            )
            .unwrap();
        assert!(matches!(prepared.body, Some(Body::Json(_))));
        let prepared = r
            .prepare(&RequestInfo::new("POST", "/").with_body(b"plain"))
            .unwrap();
        assert!(matches!(prepared.body, Some(Body::Text(ref t)) if t == "plain"));
        for (headers, body) in [
            (json_type, &b"{not json"[..]),
            (&[][..], &b"\xff\xfe"[..]),
            (&[][..], &[b'x'; 65][..]),
        ] {
            let e = r
                .prepare(
                    &RequestInfo::new("POST", "/")
                        .with_header_pairs(headers)
                        .with_body(body),
                )
                .unwrap_err();
            assert_eq!(e.status(), 400);
        }
        // Without a limit, the body is not read at all.
        let no_body = InputRules {
            body_limit: None,
            ..r
        };
        let prepared = no_body
            .prepare(&RequestInfo::new("POST", "/").with_body(b"\xff"))
            .unwrap();
        assert!(prepared.body.is_none());
    }

    #[test]
    fn events_mask_secrets() {
        let alice = principal(json!({
            "sub": "u-1", "access_token": "at-secret", "nested": {"refresh_token": "rt-secret", "ok": 1},
            "list": [{"session_id": "sid-secret"}],
        }));
        let request = RequestInfo::new("POST", "/x")
            .with_query("access_token=q-secret&page=2")
            .with_body(b"password=b-secret");
        for shape in [InputShape::FastapiOpa, InputShape::Native] {
            let plain = input(shape, Some(&alice), &request, false).to_string();
            let masked = input(shape, Some(&alice), &request, true).to_string();
            assert!(plain.contains("at-secret"), "the policy sees its claims");
            for secret in [
                "at-secret",
                "rt-secret",
                "sid-secret",
                "q-secret",
                "b-secret",
            ] {
                assert!(!masked.contains(secret), "{shape:?}: {masked}");
            }
            assert!(masked.contains("\"ok\":1"), "{masked}");
        }
        let masked = input(InputShape::Native, Some(&alice), &request, true);
        assert_eq!(masked["query"]["page"], json!(["2"]));
        assert_eq!(masked["body"], json!("[17 bytes]"));
    }

    #[test]
    fn cache_keys_tell_requests_apart() {
        let r = rules(InputShape::Native);
        let key = |req: RequestInfo<'_>| r.cache_key(&req);
        let base = || RequestInfo::new("GET", "/a");
        let keys = [
            key(base()),
            key(RequestInfo::new("GET", "/a/")),
            key(RequestInfo::new("POST", "/a")),
            key(base().with_query("")),
            key(base().with_query("x")),
            key(base().with_route("/a", &[])),
            key(base().with_route("/a", &[("", "")])),
            key(base().with_header_pairs(&[("x-tenant", "")])),
            key(base().with_header_pairs(&[("x-tenant", "a")])),
            key(base().with_body(b"")),
            key(base().with_body(b"x")),
            key(base()
                .with_header_pairs(&[("content-type", "application/json")])
                .with_body(b"1")),
            key(base().with_body(b"1")),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Headers that are not chosen do not split the cache.
        assert_eq!(
            key(base()),
            key(base().with_header_pairs(&[("x-other", "1")]))
        );
        // The fastapi-opa input is method and path only.
        let f = rules(InputShape::FastapiOpa);
        assert_eq!(
            f.cache_key(&base()),
            f.cache_key(&base().with_query("x=1").with_route("/a", &[]))
        );
    }
}
