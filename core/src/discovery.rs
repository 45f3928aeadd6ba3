//! Provider discovery (OpenID Connect Discovery 1.0): the one place
//! portcullis reads a provider's discovery document, for the verifier's keys,
//! the relying party's endpoints and the token endpoint of the token sources.
//!
//! [`Discovery::fetch`] GETs the document through an [`HttpFetch`] (at most
//! [`MAX_DISCOVERY_BYTES`]) and [`Discovery::parse`] checks it:
//!
//! - the document is one JSON object, with no member name repeated;
//! - its `issuer` equals the expected issuer, byte for byte (the mix-up
//!   defence: a document for another provider is refused);
//! - every endpoint keys or tokens travel through (`jwks_uri`,
//!   `authorization_endpoint`, `token_endpoint`, `userinfo_endpoint`,
//!   `end_session_endpoint`, `revocation_endpoint`,
//!   `device_authorization_endpoint`) passes [`check_provider_url`]: HTTPS,
//!   or plain HTTP on loopback, anywhere only with `danger_allow_plain_http`;
//! - every field portcullis reads has its JSON type (a URL a string, a list
//!   an array of strings, a flag a boolean); `null` counts as absent.
//!
//! ```
//! use portcullis_core::discovery::Discovery;
//! let doc = br#"{"issuer": "https://id.example.com",
//!                "jwks_uri": "https://id.example.com/keys",
//!                "token_endpoint": "http://id.example.com/token"}"#;
//! let at = "https://id.example.com/.well-known/openid-configuration";
//! // A token endpoint over plain HTTP is refused...
//! assert!(Discovery::new(at).parse(doc).is_err());
//! // ...and so is a document naming another issuer than the URL's.
//! let elsewhere = "https://login.example.net/.well-known/openid-configuration";
//! let fine = br#"{"issuer": "https://id.example.com", "jwks_uri": "https://id.example.com/keys"}"#;
//! assert!(Discovery::new(elsewhere).parse(fine).is_err());
//! let found = Discovery::new(at).parse(fine).unwrap();
//! assert_eq!(found.jwks_uri().unwrap().as_str(), "https://id.example.com/keys");
//! ```

use std::fmt;

use serde_json::{Map, Value};
use url::Url;

use crate::config::check_provider_url;
use crate::error::Error;
use crate::fetch::HttpFetch;
use crate::http_client::MAX_DISCOVERY_BYTES;
use crate::jws::parse_object;

/// Where a discovery document lives under its issuer.
pub const WELL_KNOWN_PATH: &str = "/.well-known/openid-configuration";

/// How to discover a provider: the document's URL, the issuer it must name
/// and the HTTPS rule for the endpoints it names.
#[derive(Debug, Clone, Copy)]
pub struct Discovery<'a> {
    url: &'a str,
    key: &'a str,
    issuer: Option<&'a str>,
    danger_allow_plain_http: bool,
}

impl<'a> Discovery<'a> {
    /// The document at `url`. When `url` ends with [`WELL_KNOWN_PATH`], the
    /// document must name the issuer before it (unless another is given
    /// with [`issuer`](Self::issuer)); any other URL needs
    /// [`issuer`](Self::issuer) for the issuer to be checked.
    pub fn new(url: &'a str) -> Self {
        Self {
            url,
            key: "discovery_url",
            issuer: url.strip_suffix(WELL_KNOWN_PATH),
            danger_allow_plain_http: false,
        }
    }

    /// The document must name `issuer`.
    #[must_use]
    pub fn issuer(mut self, issuer: &'a str) -> Self {
        self.issuer = Some(issuer);
        self
    }

    /// The configuration key the URL comes from, named in errors about the
    /// URLs the document names (`discovery_url` by default).
    #[must_use]
    pub fn key(mut self, key: &'a str) -> Self {
        self.key = key;
        self
    }

    /// Accepts plain `http://` URLs on any host (closed test networks only;
    /// see [`check_provider_url`]).
    #[must_use]
    pub fn danger_allow_plain_http(mut self, allow: bool) -> Self {
        self.danger_allow_plain_http = allow;
        self
    }

    /// Fetches the document through `fetch` (at most
    /// [`MAX_DISCOVERY_BYTES`]) and [`parse`](Self::parse)s it.
    ///
    /// # Errors
    ///
    /// [`DiscoveryError::RefusedLocation`] for a URL the HTTPS rule refuses
    /// (nothing is fetched), [`DiscoveryError::Fetch`] and
    /// [`DiscoveryError::Status`] when the document cannot be had, and the
    /// errors of [`parse`](Self::parse).
    pub async fn fetch(self, fetch: &dyn HttpFetch) -> Result<ProviderMetadata, DiscoveryError> {
        check_provider_url(self.key, self.url, self.danger_allow_plain_http)
            .map_err(DiscoveryError::RefusedLocation)?;
        let resp = fetch
            .get_limited(self.url, MAX_DISCOVERY_BYTES)
            .await
            .map_err(DiscoveryError::Fetch)?;
        // OpenID Connect Discovery 1.0 §4.2: a successful answer is 200 OK.
        if resp.status != 200 {
            return Err(DiscoveryError::Status(resp.status));
        }
        self.parse(&resp.body)
    }

    /// Checks a fetched document (see the [module](self) docs).
    ///
    /// # Errors
    ///
    /// [`DiscoveryError::Malformed`], [`DiscoveryError::Missing`] (no
    /// `issuer`), [`DiscoveryError::OtherIssuer`],
    /// [`DiscoveryError::Invalid`] or [`DiscoveryError::RefusedUrl`].
    pub fn parse(self, body: &[u8]) -> Result<ProviderMetadata, DiscoveryError> {
        let document = parse_object(body).map_err(|_| DiscoveryError::Malformed)?;
        let issuer = match document.get("issuer") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => return Err(DiscoveryError::Missing { field: "issuer" }),
            Some(_) => return Err(DiscoveryError::Invalid { field: "issuer" }),
        };
        if let Some(expected) = self.issuer
            && issuer != expected
        {
            return Err(DiscoveryError::OtherIssuer {
                expected: expected.to_owned(),
                found: issuer,
            });
        }
        let field = |name: &str| document.get(name).filter(|v| !v.is_null());
        let endpoint = |name: &'static str| -> Result<Option<Url>, DiscoveryError> {
            let Some(value) = field(name) else {
                return Ok(None);
            };
            let Some(url) = value.as_str() else {
                return Err(DiscoveryError::Invalid { field: name });
            };
            check_provider_url(
                &format!("{}` → `{name}", self.key),
                url,
                self.danger_allow_plain_http,
            )
            .map_err(|error| DiscoveryError::RefusedUrl { field: name, error })?;
            Url::parse(url)
                .map(Some)
                .map_err(|_| DiscoveryError::Invalid { field: name })
        };
        let names = |name: &'static str| -> Result<Option<Vec<String>>, DiscoveryError> {
            let Some(value) = field(name) else {
                return Ok(None);
            };
            let invalid = DiscoveryError::Invalid { field: name };
            let Value::Array(items) = value else {
                return Err(invalid);
            };
            items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or(invalid)
        };
        let iss_parameter = match field("authorization_response_iss_parameter_supported") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(DiscoveryError::Invalid {
                    field: "authorization_response_iss_parameter_supported",
                });
            }
        };
        Ok(ProviderMetadata {
            issuer,
            jwks_uri: endpoint("jwks_uri")?,
            authorization_endpoint: endpoint("authorization_endpoint")?,
            token_endpoint: endpoint("token_endpoint")?,
            userinfo_endpoint: endpoint("userinfo_endpoint")?,
            end_session_endpoint: endpoint("end_session_endpoint")?,
            revocation_endpoint: endpoint("revocation_endpoint")?,
            device_authorization_endpoint: endpoint("device_authorization_endpoint")?,
            token_endpoint_auth_methods_supported: names("token_endpoint_auth_methods_supported")?,
            code_challenge_methods_supported: names("code_challenge_methods_supported")?,
            authorization_response_iss_parameter_supported: iss_parameter,
            document,
        })
    }
}

/// A provider's discovery document, checked by [`Discovery`]: the fields
/// portcullis reads, typed, and the whole document for the others.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderMetadata {
    issuer: String,
    jwks_uri: Option<Url>,
    authorization_endpoint: Option<Url>,
    token_endpoint: Option<Url>,
    userinfo_endpoint: Option<Url>,
    end_session_endpoint: Option<Url>,
    revocation_endpoint: Option<Url>,
    device_authorization_endpoint: Option<Url>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    code_challenge_methods_supported: Option<Vec<String>>,
    authorization_response_iss_parameter_supported: bool,
    document: Map<String, Value>,
}

impl ProviderMetadata {
    /// `issuer`: the expected issuer, when one was expected.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `jwks_uri`: the provider's keys.
    pub fn jwks_uri(&self) -> Option<&Url> {
        self.jwks_uri.as_ref()
    }

    /// `authorization_endpoint`: where browsers log in.
    pub fn authorization_endpoint(&self) -> Option<&Url> {
        self.authorization_endpoint.as_ref()
    }

    /// `token_endpoint`: where codes, refresh tokens and client credentials
    /// are exchanged for tokens.
    pub fn token_endpoint(&self) -> Option<&Url> {
        self.token_endpoint.as_ref()
    }

    /// `userinfo_endpoint`: claims about the user, for an access token.
    pub fn userinfo_endpoint(&self) -> Option<&Url> {
        self.userinfo_endpoint.as_ref()
    }

    /// `end_session_endpoint`: RP-initiated logout.
    pub fn end_session_endpoint(&self) -> Option<&Url> {
        self.end_session_endpoint.as_ref()
    }

    /// `revocation_endpoint` (RFC 7009).
    pub fn revocation_endpoint(&self) -> Option<&Url> {
        self.revocation_endpoint.as_ref()
    }

    /// `device_authorization_endpoint` (RFC 8628).
    pub fn device_authorization_endpoint(&self) -> Option<&Url> {
        self.device_authorization_endpoint.as_ref()
    }

    /// `token_endpoint_auth_methods_supported`, when the document lists them.
    pub fn token_endpoint_auth_methods_supported(&self) -> Option<&[String]> {
        self.token_endpoint_auth_methods_supported.as_deref()
    }

    /// `code_challenge_methods_supported` (PKCE), when the document lists them.
    pub fn code_challenge_methods_supported(&self) -> Option<&[String]> {
        self.code_challenge_methods_supported.as_deref()
    }

    /// `authorization_response_iss_parameter_supported` (RFC 9207); absent
    /// means false.
    pub fn authorization_response_iss_parameter_supported(&self) -> bool {
        self.authorization_response_iss_parameter_supported
    }

    /// Whether the token endpoint takes `client_secret_basic`: listed, or no
    /// list at all (the default, RFC 8414 §2).
    pub fn supports_client_secret_basic(&self) -> bool {
        self.token_endpoint_auth_methods_supported
            .as_ref()
            .is_none_or(|methods| methods.iter().any(|m| m == "client_secret_basic"))
    }

    /// How a client with a secret authenticates at the token endpoint.
    ///
    /// `configured` (the `token_endpoint_auth_method` key) wins; when the
    /// document lists methods and not that one, a warning says so (the
    /// provider's answer will tell). Without it: `client_secret_basic`
    /// when the document lists it or lists no methods (the default of
    /// RFC 8414 §2), else `client_secret_post`.
    ///
    /// ```
    /// use portcullis_core::discovery::{ClientAuthMethod, Discovery};
    /// let at = "https://id.example.com/.well-known/openid-configuration";
    /// let post_only = br#"{"issuer": "https://id.example.com",
    ///     "token_endpoint_auth_methods_supported": ["client_secret_post"]}"#;
    /// let found = Discovery::new(at).parse(post_only).unwrap();
    /// assert_eq!(found.client_auth_method(None), ClientAuthMethod::ClientSecretPost);
    /// let silent = br#"{"issuer": "https://id.example.com"}"#;
    /// let found = Discovery::new(at).parse(silent).unwrap();
    /// assert_eq!(found.client_auth_method(None), ClientAuthMethod::ClientSecretBasic);
    /// assert_eq!(
    ///     found.client_auth_method(Some(ClientAuthMethod::ClientSecretPost)),
    ///     ClientAuthMethod::ClientSecretPost
    /// );
    /// ```
    pub fn client_auth_method(&self, configured: Option<ClientAuthMethod>) -> ClientAuthMethod {
        let listed = self.token_endpoint_auth_methods_supported.as_deref();
        if let Some(m) = configured {
            if listed.is_some_and(|l| !l.iter().any(|x| x == m.as_str())) {
                tracing::warn!(
                    method = m.as_str(),
                    "configuration key `token_endpoint_auth_method` names a method the provider's \
                     `token_endpoint_auth_methods_supported` does not list"
                );
            }
            return m;
        }
        if self.supports_client_secret_basic() {
            ClientAuthMethod::ClientSecretBasic
        } else {
            ClientAuthMethod::ClientSecretPost
        }
    }

    /// The whole document, for fields not modelled here.
    pub fn document(&self) -> &Map<String, Value> {
        &self.document
    }
}

/// How a client authenticates at the token endpoint with its secret
/// (RFC 7591 §2 names): configuration key `token_endpoint_auth_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// HTTP Basic authentication, id and secret form-urlencoded first.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

impl ClientAuthMethod {
    /// The method's registered name (`client_secret_basic`, `client_secret_post`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }
}

/// Why discovery failed. [`Error::from`] maps it as a relying party
/// discovering its provider at start-up: what could not be fetched is
/// [`Unavailable`](crate::ErrorKind::Unavailable) (503), a document that
/// cannot be used is [`Config`](crate::ErrorKind::Config) (500).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The discovery URL itself is refused by [`check_provider_url`].
    RefusedLocation(Error),
    /// The document could not be fetched: the fetcher's error (unreachable,
    /// too large, cut off).
    Fetch(Error),
    /// The answer's status is not 200.
    Status(u16),
    /// The document is not one JSON object, or repeats a member name.
    Malformed,
    /// A field the caller needs is absent.
    Missing {
        /// The field.
        field: &'static str,
    },
    /// A field has the wrong JSON type, or an endpoint is not a URL.
    Invalid {
        /// The field.
        field: &'static str,
    },
    /// The document names another issuer (a mix-up, or a misconfiguration).
    OtherIssuer {
        /// The issuer expected.
        expected: String,
        /// The issuer the document names.
        found: String,
    },
    /// An endpoint the document names is refused by [`check_provider_url`].
    RefusedUrl {
        /// The field naming it.
        field: &'static str,
        /// The configuration error naming the key and why.
        error: Error,
    },
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RefusedLocation(e) | Self::RefusedUrl { error: e, .. } => write!(f, "{e}"),
            Self::Fetch(e) => write!(f, "the discovery document could not be fetched: {e}"),
            Self::Status(s) => write!(f, "the discovery document answered HTTP {s}"),
            Self::Malformed => f.write_str(
                "the discovery document is not a JSON object (or repeats a member name)",
            ),
            Self::Missing { field } => write!(f, "the discovery document has no `{field}`"),
            Self::Invalid { field } => {
                write!(f, "the discovery document's `{field}` has the wrong type")
            }
            Self::OtherIssuer { expected, found } => write!(
                f,
                "the discovery document names issuer `{found}`, expected `{expected}`"
            ),
        }
    }
}

impl std::error::Error for DiscoveryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Fetch(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DiscoveryError> for Error {
    fn from(e: DiscoveryError) -> Self {
        match e {
            DiscoveryError::RefusedLocation(e) | DiscoveryError::RefusedUrl { error: e, .. } => e,
            DiscoveryError::Fetch(e) => {
                Error::unavailable("the provider's discovery document could not be fetched")
                    .with_source(e)
            }
            DiscoveryError::Status(s) => Error::unavailable(format!(
                "the provider's discovery document answered HTTP {s}"
            )),
            DiscoveryError::Missing { field } => Error::config(format!(
                "the provider's discovery document has no `{field}`"
            )),
            DiscoveryError::OtherIssuer { expected, found } => Error::config(format!(
                "the discovery document names issuer `{found}`, expected `{expected}`"
            )),
            e @ (DiscoveryError::Malformed | DiscoveryError::Invalid { .. }) => {
                Error::config("the provider's discovery document does not parse").with_source(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::ErrorKind;
    use crate::fetch::{FetchFuture, HttpResponse};

    const AT: &str = "https://id.example.com/.well-known/openid-configuration";
    const ISSUER: &str = "https://id.example.com";

    /// Answers every URL with one status and body; records what was asked
    /// and with which cap.
    #[derive(Debug)]
    struct One {
        status: u16,
        body: Vec<u8>,
        asked: Mutex<Vec<(String, Option<usize>)>>,
    }

    impl One {
        fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
            Self {
                status,
                body: body.into(),
                asked: Mutex::default(),
            }
        }
    }

    impl HttpFetch for One {
        fn get<'a>(&'a self, url: &'a str) -> FetchFuture<'a> {
            self.asked.lock().unwrap().push((url.to_owned(), None));
            let resp = HttpResponse::new(self.status, None, self.body.clone());
            Box::pin(async move { Ok(resp) })
        }

        fn get_limited<'a>(&'a self, url: &'a str, max_bytes: usize) -> FetchFuture<'a> {
            self.asked
                .lock()
                .unwrap()
                .push((url.to_owned(), Some(max_bytes)));
            let resp = HttpResponse::new(self.status, None, self.body.clone());
            Box::pin(async move { Ok(resp) })
        }
    }

    fn full() -> Value {
        json!({
            "issuer": ISSUER,
            "jwks_uri": "https://id.example.com/keys",
            "authorization_endpoint": "https://id.example.com/authorize",
            "token_endpoint": "https://id.example.com/token",
            "userinfo_endpoint": "https://id.example.com/userinfo",
            "end_session_endpoint": "https://id.example.com/logout",
            "revocation_endpoint": "https://id.example.com/revoke",
            "device_authorization_endpoint": "https://id.example.com/device",
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "scopes_supported": ["openid"],
        })
    }

    fn parse(doc: &Value) -> Result<ProviderMetadata, DiscoveryError> {
        Discovery::new(AT).parse(doc.to_string().as_bytes())
    }

    #[test]
    fn every_field_is_read_typed() {
        let m = parse(&full()).unwrap();
        assert_eq!(m.issuer(), ISSUER);
        let url = |u: Option<&Url>| u.map(Url::as_str).unwrap().to_owned();
        assert_eq!(url(m.jwks_uri()), "https://id.example.com/keys");
        assert_eq!(
            url(m.authorization_endpoint()),
            "https://id.example.com/authorize"
        );
        assert_eq!(url(m.token_endpoint()), "https://id.example.com/token");
        assert_eq!(
            url(m.userinfo_endpoint()),
            "https://id.example.com/userinfo"
        );
        assert_eq!(
            url(m.end_session_endpoint()),
            "https://id.example.com/logout"
        );
        assert_eq!(
            url(m.revocation_endpoint()),
            "https://id.example.com/revoke"
        );
        assert_eq!(
            url(m.device_authorization_endpoint()),
            "https://id.example.com/device"
        );
        assert_eq!(
            m.token_endpoint_auth_methods_supported(),
            Some(&["client_secret_post".to_owned()][..])
        );
        assert!(!m.supports_client_secret_basic());
        assert_eq!(
            m.code_challenge_methods_supported(),
            Some(&["S256".to_owned()][..])
        );
        assert!(m.authorization_response_iss_parameter_supported());
        assert_eq!(m.document()["scopes_supported"], json!(["openid"]));

        let bare = parse(&json!({"issuer": ISSUER, "userinfo_endpoint": null})).unwrap();
        assert!(bare.jwks_uri().is_none() && bare.userinfo_endpoint().is_none());
        assert!(bare.supports_client_secret_basic());
        assert!(!bare.authorization_response_iss_parameter_supported());
    }

    #[test]
    fn another_issuer_is_refused() {
        let mut doc = full();
        doc["issuer"] = json!("https://id.example.com/");
        let e = parse(&doc).unwrap_err();
        assert!(matches!(e, DiscoveryError::OtherIssuer { .. }), "{e}");
        assert_eq!(Error::from(e).kind(), ErrorKind::Config);
        // An issuer given explicitly wins over the URL's.
        Discovery::new(AT)
            .issuer("https://id.example.com/")
            .parse(doc.to_string().as_bytes())
            .unwrap();
        // Not at the well-known path: no issuer to compare unless given.
        let elsewhere = "https://id.example.com/metadata";
        Discovery::new(elsewhere)
            .parse(doc.to_string().as_bytes())
            .unwrap();
        let e = Discovery::new(elsewhere)
            .issuer(ISSUER)
            .parse(doc.to_string().as_bytes())
            .unwrap_err();
        assert!(matches!(e, DiscoveryError::OtherIssuer { .. }), "{e}");
        // No issuer at all, or a repeated one, is never accepted.
        let e = parse(&json!({"jwks_uri": "https://id.example.com/keys"})).unwrap_err();
        assert!(
            matches!(e, DiscoveryError::Missing { field: "issuer" }),
            "{e}"
        );
        let twice = format!(r#"{{"issuer": "{ISSUER}", "issuer": "https://evil.test"}}"#);
        let e = Discovery::new(AT).parse(twice.as_bytes()).unwrap_err();
        assert!(matches!(e, DiscoveryError::Malformed), "{e}");
    }

    #[test]
    fn every_endpoint_is_held_to_the_https_rule() {
        for field in [
            "jwks_uri",
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "end_session_endpoint",
            "revocation_endpoint",
            "device_authorization_endpoint",
        ] {
            let mut doc = full();
            doc[field] = json!("http://id.example.com/plain");
            let e = Discovery::new(AT)
                .key("server_metadata_url")
                .parse(doc.to_string().as_bytes())
                .unwrap_err();
            let DiscoveryError::RefusedUrl {
                field: named,
                error,
            } = &e
            else {
                panic!("{field}: {e}");
            };
            assert_eq!(*named, field);
            assert!(
                error.message().starts_with(&format!(
                    "configuration key `server_metadata_url` → `{field}`: plain http"
                )),
                "{error}"
            );
            assert_eq!(Error::from(e).kind(), ErrorKind::Config);
            // The opt-out lets plain HTTP through; loopback needs none.
            Discovery::new(AT)
                .danger_allow_plain_http(true)
                .parse(doc.to_string().as_bytes())
                .unwrap();
            doc[field] = json!("http://127.0.0.1:8080/plain");
            parse(&doc).unwrap();
            // Never another scheme, nor credentials in the URL.
            for bad in [
                "ftp://id.example.com/x",
                "https://u:p@id.example.com/x",
                "/relative",
            ] {
                doc[field] = json!(bad);
                let e = Discovery::new(AT)
                    .danger_allow_plain_http(true)
                    .parse(doc.to_string().as_bytes())
                    .unwrap_err();
                assert!(
                    matches!(e, DiscoveryError::RefusedUrl { .. }),
                    "{field} {bad}: {e}"
                );
            }
        }
    }

    #[test]
    fn fields_of_the_wrong_type_are_refused() {
        for (field, value) in [
            ("issuer", json!(1)),
            ("token_endpoint", json!(["https://id.example.com/token"])),
            ("jwks_uri", json!({"url": "https://id.example.com/keys"})),
            (
                "token_endpoint_auth_methods_supported",
                json!("client_secret_basic"),
            ),
            ("code_challenge_methods_supported", json!(["S256", 1])),
            (
                "authorization_response_iss_parameter_supported",
                json!("true"),
            ),
        ] {
            let mut doc = full();
            doc[field] = value;
            let e = parse(&doc).unwrap_err();
            assert!(
                matches!(e, DiscoveryError::Invalid { field: f } if f == field),
                "{field}: {e}"
            );
            assert_eq!(Error::from(e).kind(), ErrorKind::Config);
        }
        for body in [
            &b"[]"[..],
            b"not json",
            b"{\"issuer\": \"x\"} trailing",
            b"",
        ] {
            let e = Discovery::new(AT).parse(body).unwrap_err();
            assert!(matches!(e, DiscoveryError::Malformed), "{e}");
        }
    }

    #[tokio::test]
    async fn fetching_asks_once_with_the_discovery_cap() {
        let fetch = One::new(200, full().to_string());
        let m = Discovery::new(AT).fetch(&fetch).await.unwrap();
        assert_eq!(m.issuer(), ISSUER);
        assert_eq!(
            *fetch.asked.lock().unwrap(),
            [(AT.to_owned(), Some(MAX_DISCOVERY_BYTES))]
        );

        for status in [201, 302, 404, 503] {
            let e = Discovery::new(AT)
                .fetch(&One::new(status, full().to_string()))
                .await
                .unwrap_err();
            assert!(matches!(e, DiscoveryError::Status(s) if s == status), "{e}");
            assert_eq!(Error::from(e).kind(), ErrorKind::Unavailable);
        }

        // A plain-HTTP discovery URL off loopback is never fetched.
        let fetch = One::new(200, full().to_string());
        let plain = "http://id.example.com/.well-known/openid-configuration";
        let e = Discovery::new(plain)
            .key("server_metadata_url")
            .fetch(&fetch)
            .await
            .unwrap_err();
        assert!(matches!(e, DiscoveryError::RefusedLocation(_)), "{e}");
        assert!(e.to_string().contains("`server_metadata_url`"), "{e}");
        assert!(fetch.asked.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_oversized_document_is_refused_by_the_default_get_limited() {
        /// A fetcher with only `get`: the trait's default applies the cap.
        #[derive(Debug)]
        struct GetOnly(Vec<u8>);
        impl HttpFetch for GetOnly {
            fn get<'a>(&'a self, _url: &'a str) -> FetchFuture<'a> {
                let resp = HttpResponse::new(200, None, self.0.clone());
                Box::pin(async move { Ok(resp) })
            }
        }
        let mut doc = full();
        doc["padding"] = json!("x".repeat(MAX_DISCOVERY_BYTES));
        let e = Discovery::new(AT)
            .fetch(&GetOnly(doc.to_string().into_bytes()))
            .await
            .unwrap_err();
        let DiscoveryError::Fetch(cause) = &e else {
            panic!("{e}");
        };
        assert!(cause.message().contains("too large"), "{cause}");
        assert_eq!(Error::from(e).kind(), ErrorKind::Unavailable);
    }
}
