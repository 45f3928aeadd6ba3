//! Finding credentials in a request, framework-neutrally.
//!
//! Core never sees a framework's request type: an adapter passes a
//! [`HeaderLookup`], and gets back tokens or an [`Error`] mapped to HTTP.
//! Besides the usual `Authorization: Bearer`, this covers services behind an
//! auth proxy (APISIX, oauth2-proxy, Envoy) that forward the access, ID and
//! refresh tokens in headers of their own.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::principal::{Principal, RawToken, TokenKind};
use crate::verifier::TokenVerifier;

/// Read access to request headers. Names are matched case-insensitively by the implementation.
pub trait HeaderLookup {
    /// The value of header `name` (lower case), if present and valid UTF-8.
    fn header(&self, name: &str) -> Option<&str>;
}

/// A header value as text, when every byte is visible ASCII or a tab: the
/// rule of `http`'s `HeaderValue::to_str`, for adapters to apply to the
/// value's bytes. A ~1 KB bearer header is checked in wide steps rather than
/// byte by byte with an early exit.
///
/// ```
/// use portcullis_core::credentials::header_text;
/// assert_eq!(header_text(b"Bearer a.b.c"), Some("Bearer a.b.c"));
/// assert_eq!(header_text(b"tab\there"), Some("tab\there"));
/// assert_eq!(header_text("caf\u{e9}".as_bytes()), None);
/// assert_eq!(header_text(b"nul\0"), None);
/// assert_eq!(header_text(b"del\x7f"), None);
/// ```
pub fn header_text(bytes: &[u8]) -> Option<&str> {
    let visible = |b: u8| (0x20..0x7f).contains(&b) || b == b'\t';
    let ok = bytes
        .chunks(64)
        .all(|chunk| chunk.iter().fold(true, |ok, &b| ok & visible(b)));
    // Visible ASCII is UTF-8: the conversion cannot fail.
    if ok {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    }
}

/// Whether `text` holds a whitespace character (`char::is_whitespace`),
/// checked in wide steps when it is ASCII.
fn has_whitespace(text: &str) -> bool {
    if !text.is_ascii() {
        return text.contains(char::is_whitespace);
    }
    // The ASCII characters `char::is_whitespace` names (vertical tab included).
    let space = |b: u8| matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ');
    text.as_bytes()
        .chunks(64)
        .any(|chunk| chunk.iter().fold(false, |found, &b| found | space(b)))
}

/// A list of header pairs, for tests and non-HTTP callers.
impl HeaderLookup for [(&str, &str)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Where credentials are read from.
///
/// The defaults read `Authorization: Bearer <token>`. The proxy-forwarded
/// scheme sets the other fields, e.g. `id_token_header: x-id-token`,
/// `refresh_token_header: x-refresh-token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CredentialsConfig {
    /// The header carrying the access token (default `authorization`).
    #[serde(default = "default_auth_header")]
    pub auth_token_header: String,
    /// Whether that header holds `Bearer <token>` (true, the default) or the bare token.
    #[serde(default = "yes")]
    pub auth_token_in_authorization: bool,
    /// A header carrying a forwarded ID token (verified as an ID token when present).
    #[serde(default)]
    pub id_token_header: Option<String>,
    /// A header carrying a forwarded refresh token (kept, never verified or logged).
    #[serde(default)]
    pub refresh_token_header: Option<String>,
    /// Whether absent credentials are an error (401, the default) or an anonymous caller.
    /// Invalid credentials are refused either way.
    #[serde(default = "yes")]
    pub auto_error: bool,
    /// The `realm` of `WWW-Authenticate` challenges (default `portcullis`).
    #[serde(default = "default_realm")]
    pub realm: String,
}

fn default_auth_header() -> String {
    "authorization".to_owned()
}

fn default_realm() -> String {
    "portcullis".to_owned()
}

fn yes() -> bool {
    true
}

impl Default for CredentialsConfig {
    fn default() -> Self {
        Self {
            auth_token_header: default_auth_header(),
            auth_token_in_authorization: true,
            id_token_header: None,
            refresh_token_header: None,
            auto_error: true,
            realm: default_realm(),
        }
    }
}

impl CredentialsConfig {
    /// Reads the access token from `header` as a bare token (not `Bearer ...`).
    pub fn with_token_header(mut self, header: impl Into<String>) -> Self {
        self.auth_token_header = header.into().to_ascii_lowercase();
        self.auth_token_in_authorization = false;
        self
    }

    /// Reads a forwarded ID token from `header`.
    pub fn with_id_token_header(mut self, header: impl Into<String>) -> Self {
        self.id_token_header = Some(header.into().to_ascii_lowercase());
        self
    }

    /// Reads a forwarded refresh token from `header`.
    pub fn with_refresh_token_header(mut self, header: impl Into<String>) -> Self {
        self.refresh_token_header = Some(header.into().to_ascii_lowercase());
        self
    }

    /// Sets whether absent credentials are an error.
    pub fn with_auto_error(mut self, auto_error: bool) -> Self {
        self.auto_error = auto_error;
        self
    }

    /// Sets the challenge realm.
    pub fn with_realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }
}

/// Tokens found in a request, unverified.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Credentials {
    /// The access token.
    pub access_token: RawToken,
    /// A forwarded ID token.
    pub id_token: Option<RawToken>,
    /// A forwarded refresh token.
    pub refresh_token: Option<RawToken>,
}

/// Finds credentials. `Ok(None)` when there are none (whatever `auto_error` says:
/// the [`Authenticator`] applies it).
pub fn extract(
    cfg: &CredentialsConfig,
    headers: &(impl HeaderLookup + ?Sized),
) -> Result<Option<Credentials>, Error> {
    Ok(find(cfg, headers)?.map(|found| Credentials {
        access_token: RawToken::new(found.access_token),
        id_token: found.id_token.map(RawToken::new),
        refresh_token: found.refresh_token.map(RawToken::new),
    }))
}

/// Tokens found in a request, borrowed from its headers: nothing is copied
/// until a token has to outlive the request.
struct Found<'a> {
    access_token: &'a str,
    id_token: Option<&'a str>,
    refresh_token: Option<&'a str>,
}

fn find<'a>(
    cfg: &CredentialsConfig,
    headers: &'a (impl HeaderLookup + ?Sized),
) -> Result<Option<Found<'a>>, Error> {
    let Some(raw) = headers.header(&cfg.auth_token_header) else {
        return Ok(None);
    };
    let token = if cfg.auth_token_in_authorization {
        let raw = raw.trim();
        let (scheme, rest) = raw.split_once(' ').unwrap_or((raw, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            // Another scheme (Basic, ...) is not a credential for us.
            return Ok(None);
        }
        let token = rest.trim();
        if token.is_empty() {
            return Err(Error::invalid_request("the Bearer credentials are empty"));
        }
        if has_whitespace(token) {
            return Err(Error::invalid_request(
                "the Bearer credentials are malformed",
            ));
        }
        token
    } else {
        let token = raw.trim();
        if token.is_empty() {
            return Ok(None);
        }
        token
    };
    let optional = |name: &Option<String>| {
        name.as_deref()
            .and_then(|n| headers.header(n))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    Ok(Some(Found {
        access_token: token,
        id_token: optional(&cfg.id_token_header),
        refresh_token: optional(&cfg.refresh_token_header),
    }))
}

/// A caller whose credentials were verified.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Authenticated {
    /// The verified access token's principal.
    pub principal: Arc<Principal>,
    /// The verified forwarded ID token, when one was presented.
    pub id_token: Option<Arc<Principal>>,
    /// The forwarded refresh token, when one was presented (opaque; not verified).
    pub refresh_token: Option<RawToken>,
}

impl Authenticated {
    /// A caller known by `principal` alone (no forwarded ID or refresh
    /// token), no credentials verified: see
    /// [`dangerous::authenticated_unverified`](crate::dangerous::authenticated_unverified),
    /// the one way in from outside this crate.
    pub(crate) fn new(principal: Arc<Principal>) -> Self {
        Self {
            principal,
            id_token: None,
            refresh_token: None,
        }
    }
}

/// Credentials extraction and verification together: what adapters call per request.
///
/// ```
/// # async fn f(verifier: portcullis_core::TokenVerifier) {
/// use portcullis_core::credentials::{Authenticator, CredentialsConfig};
/// let auth = Authenticator::new(verifier, CredentialsConfig::default().with_auto_error(false));
/// let headers: &[(&str, &str)] = &[];
/// assert!(auth.authenticate(headers).await.unwrap().is_none());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Authenticator {
    verifier: TokenVerifier,
    config: Arc<CredentialsConfig>,
}

impl Authenticator {
    /// An authenticator reading credentials as `config` says and verifying them with `verifier`.
    pub fn new(verifier: TokenVerifier, config: CredentialsConfig) -> Self {
        Self {
            verifier,
            config: Arc::new(config),
        }
    }

    /// The verifier.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// The credentials configuration.
    pub fn config(&self) -> &CredentialsConfig {
        &self.config
    }

    /// The challenge realm.
    pub fn realm(&self) -> &str {
        &self.config.realm
    }

    /// Finds and verifies the request's credentials.
    ///
    /// - none: `Ok(None)`, or [`Error::missing_credentials`] when `auto_error` is set;
    /// - present and valid: `Ok(Some(..))`;
    /// - present and invalid: an error (401), whatever `auto_error` says.
    ///
    /// A forwarded ID token must verify as an ID token of the same issuer and
    /// subject; its email, like the access token's, is the address the
    /// provider vouches for ([`vouched_email`](crate::principal::vouched_email)).
    pub async fn authenticate(
        &self,
        headers: &(impl HeaderLookup + ?Sized),
    ) -> Result<Option<Authenticated>, Error> {
        let Some(creds) = find(&self.config, headers)? else {
            return if self.config.auto_error {
                Err(Error::missing_credentials())
            } else {
                Ok(None)
            };
        };
        let principal = self.verifier.verify(creds.access_token).await?;
        let id_token = match creds.id_token {
            None => None,
            Some(t) => {
                let id = self.verifier.verify_as(t, TokenKind::Id).await?;
                if id.issuer() != principal.issuer() || id.subject() != principal.subject() {
                    tracing::debug!(
                        "forwarded ID token names another issuer or subject than the access token"
                    );
                    let refused = Error::invalid_token(crate::TokenRejection::InvalidClaim);
                    // Counted with the verifier's refusals: no line per request.
                    crate::refusals::record(&refused);
                    return Err(refused);
                }
                Some(id)
            }
        };
        Ok(Some(Authenticated {
            principal,
            id_token,
            refresh_token: creds.refresh_token.map(RawToken::new),
        }))
    }
}

/// The outcome of requiring `scope` of a caller: `Ok` when the caller holds it,
/// 401 when there is no caller, 403 `insufficient_scope` otherwise.
pub fn require_scope<'a>(
    caller: Option<&'a Authenticated>,
    scope: &str,
) -> Result<&'a Authenticated, Error> {
    let caller = caller.ok_or_else(Error::missing_credentials)?;
    if caller.principal.has_scope(scope) {
        Ok(caller)
    } else {
        Err(Error::insufficient_scope(scope))
    }
}

/// The outcome of requiring a caller: `Ok` with the caller, or 401.
pub fn require_caller(caller: Option<&Authenticated>) -> Result<&Authenticated, Error> {
    caller.ok_or_else(Error::missing_credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(
        cfg: &CredentialsConfig,
        headers: &[(&str, &str)],
    ) -> Result<Option<Credentials>, Error> {
        extract(cfg, headers)
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let cfg = CredentialsConfig::default();
        for v in ["Bearer abc", "bearer abc", "BEARER   abc", " Bearer abc "] {
            let c = get(&cfg, &[("Authorization", v)]).unwrap().unwrap();
            assert_eq!(c.access_token.expose(), "abc", "{v}");
        }
        assert!(
            get(&cfg, &[("authorization", "Basic dXNlcjpwYXNz")])
                .unwrap()
                .is_none()
        );
        assert!(get(&cfg, &[]).unwrap().is_none());
        assert_eq!(
            get(&cfg, &[("authorization", "Bearer ")])
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            get(&cfg, &[("authorization", "Bearer a b")])
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn whitespace_and_header_text_follow_the_char_and_http_rules() {
        let mut samples: Vec<String> = (0u8..=0x7f).map(|b| format!("ab{}cd", b as char)).collect();
        samples.extend(["a\u{85}b", "a\u{a0}b", "a\u{2003}b", "caf\u{e9}", ""].map(str::to_owned));
        samples.push(format!("{}\u{b}", "x".repeat(200)));
        for s in &samples {
            assert_eq!(has_whitespace(s), s.contains(char::is_whitespace), "{s:?}");
            let visible = s.bytes().all(|b| (0x20..0x7f).contains(&b) || b == b'\t');
            assert_eq!(header_text(s.as_bytes()).is_some(), visible, "{s:?}");
        }
    }

    #[test]
    fn proxy_forwarded_headers() {
        let cfg = CredentialsConfig::default()
            .with_id_token_header("X-Id-Token")
            .with_refresh_token_header("x-refresh-token");
        let c = get(
            &cfg,
            &[
                ("authorization", "Bearer at"),
                ("x-id-token", "it"),
                ("x-refresh-token", "rt"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.id_token.unwrap().expose(), "it");
        assert_eq!(c.refresh_token.unwrap().expose(), "rt");
        let raw = CredentialsConfig::default().with_token_header("X-Access-Token");
        let c = get(&raw, &[("x-access-token", "tok")]).unwrap().unwrap();
        assert_eq!(c.access_token.expose(), "tok");
        assert!(format!("{c:?}").contains("redacted"));
        assert!(!format!("{c:?}").contains("tok\""));
    }
}
