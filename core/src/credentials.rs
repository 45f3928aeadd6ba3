//! Finding credentials in a request, framework-neutrally.
//!
//! Core never sees a framework's request type: an adapter passes a
//! [`HeaderLookup`], and gets back tokens or an [`Error`] mapped to HTTP.
//! Besides the usual `Authorization: Bearer`, this covers services behind an
//! auth proxy (APISIX, oauth2-proxy, Envoy) that forward the access, ID and
//! refresh tokens in headers of their own.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::automation::AutomationPrincipals;
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

/// Where credentials are read from, and what becomes of a request that
/// carries none.
///
/// The defaults read `Authorization: Bearer <token>` and let a request
/// without credentials through as a guest. The proxy-forwarded scheme sets
/// the other fields, e.g. `id_token_header: x-id-token`,
/// `refresh_token_header: x-refresh-token`.
///
/// In a file, `missing_credentials` is `guest` or `refuse`. Its former
/// name, `auto_error`, still loads: `true` is `refuse`, `false` is `guest`;
/// giving both is an error.
///
/// ```
/// use portcullis_core::config::{load_from_str, Format};
/// use portcullis_core::{CredentialsConfig, MissingCredentials};
/// let config: CredentialsConfig = load_from_str("missing_credentials: refuse", Format::Yaml, &[])?;
/// assert_eq!(config.missing_credentials, MissingCredentials::Refuse);
/// let config: CredentialsConfig = load_from_str("auto_error: false", Format::Yaml, &[])?;
/// assert_eq!(config.missing_credentials, MissingCredentials::Guest);
/// # Ok::<(), portcullis_core::Error>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "CredentialsFile")]
#[non_exhaustive]
pub struct CredentialsConfig {
    /// The header carrying the access token (default `authorization`).
    pub auth_token_header: String,
    /// Whether that header holds `<scheme> <token>` (true, the default) or the bare token.
    pub auth_token_in_authorization: bool,
    /// The scheme before the token when
    /// [`auth_token_in_authorization`](Self::auth_token_in_authorization)
    /// is set (default `Bearer`, compared without regard to case). SMAC's
    /// `jwt_header_prefix`.
    pub auth_token_scheme: String,
    /// Whether a token that declares itself an ID token (Cognito's
    /// `token_use: id`, `typ: id_token+jwt`, ...) is accepted in that
    /// header, verified as an ID token: its `aud` must be the issuer's
    /// client id (Cognito: an app client id). Default false: only access
    /// tokens. SMAC's services take both kinds from Cognito.
    pub accept_id_tokens: bool,
    /// A header carrying a forwarded ID token (verified as an ID token when present).
    pub id_token_header: Option<String>,
    /// A header carrying a forwarded refresh token (kept, never verified or logged).
    pub refresh_token_header: Option<String>,
    /// What becomes of a request without credentials: a guest (the default)
    /// or a 401 from the middleware. Invalid credentials are refused either way.
    pub missing_credentials: MissingCredentials,
    /// The `realm` of `WWW-Authenticate` challenges (default `portcullis`).
    pub realm: String,
}

/// What becomes of a request that carries no credentials.
///
/// Credentials that are present but invalid are refused (401, or 400 when
/// malformed) whatever this says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingCredentials {
    /// The request goes on as a guest and the handler's extractors decide:
    /// `Caller` answers 401, `Option<Caller>` sees `None`, a capability
    /// guard lets a guest through only to what guests hold and otherwise
    /// answers 401 or sends a browser to log in.
    /// The default: what a handler's signature says is what happens, so a
    /// handler that takes no caller at all serves guests too.
    #[default]
    Guest,
    /// The middleware answers 401 (with the `WWW-Authenticate` challenge) to
    /// every request without credentials, before any handler runs: no
    /// handler sees a guest, not even one that takes `Option<Caller>`.
    Refuse,
}

/// [`CredentialsConfig`] as a file gives it: `missing_credentials`, or its
/// former name `auto_error` (a boolean), not both.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(default = "default_auth_header")]
    auth_token_header: String,
    #[serde(default = "yes")]
    auth_token_in_authorization: bool,
    #[serde(default = "default_scheme")]
    auth_token_scheme: String,
    #[serde(default)]
    accept_id_tokens: bool,
    #[serde(default)]
    id_token_header: Option<String>,
    #[serde(default)]
    refresh_token_header: Option<String>,
    #[serde(default)]
    missing_credentials: Option<MissingCredentials>,
    #[serde(default)]
    auto_error: Option<bool>,
    #[serde(default = "default_realm")]
    realm: String,
}

impl TryFrom<CredentialsFile> for CredentialsConfig {
    type Error = &'static str;

    fn try_from(file: CredentialsFile) -> Result<Self, Self::Error> {
        let missing_credentials = match (file.missing_credentials, file.auto_error) {
            (Some(_), Some(_)) => {
                // Key names only: the configuration loader keeps no quoted text.
                return Err(
                    "both missing_credentials and auto_error are set; keep missing_credentials \
                     (auto_error is its former name: true is refuse, false is guest)",
                );
            }
            (Some(missing), None) => missing,
            (None, Some(true)) => MissingCredentials::Refuse,
            (None, Some(false)) => MissingCredentials::Guest,
            (None, None) => MissingCredentials::default(),
        };
        Ok(Self {
            auth_token_header: file.auth_token_header,
            auth_token_in_authorization: file.auth_token_in_authorization,
            auth_token_scheme: file.auth_token_scheme,
            accept_id_tokens: file.accept_id_tokens,
            id_token_header: file.id_token_header,
            refresh_token_header: file.refresh_token_header,
            missing_credentials,
            realm: file.realm,
        })
    }
}

fn default_auth_header() -> String {
    "authorization".to_owned()
}

fn default_scheme() -> String {
    "Bearer".to_owned()
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
            auth_token_scheme: default_scheme(),
            accept_id_tokens: false,
            id_token_header: None,
            refresh_token_header: None,
            missing_credentials: MissingCredentials::default(),
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

    /// Reads the token from `header` after `scheme` (`Authorization:
    /// Bearer` is `("authorization", "Bearer")`); an empty scheme reads the
    /// bare token.
    pub fn with_token_header_and_scheme(
        mut self,
        header: impl Into<String>,
        scheme: impl Into<String>,
    ) -> Self {
        let scheme = scheme.into();
        self.auth_token_header = header.into().to_ascii_lowercase();
        self.auth_token_in_authorization = !scheme.trim().is_empty();
        self.auth_token_scheme = scheme.trim().to_owned();
        self
    }

    /// Accepts ID tokens besides access tokens (see
    /// [`accept_id_tokens`](Self::accept_id_tokens)).
    pub fn with_id_tokens_accepted(mut self, accept: bool) -> Self {
        self.accept_id_tokens = accept;
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

    /// Sets what becomes of a request without credentials.
    pub fn with_missing_credentials(mut self, missing: MissingCredentials) -> Self {
        self.missing_credentials = missing;
        self
    }

    /// The middleware answers 401 to every request without credentials
    /// ([`MissingCredentials::Refuse`]): no handler sees a guest.
    pub fn refuse_missing(self) -> Self {
        self.with_missing_credentials(MissingCredentials::Refuse)
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

/// Finds credentials. `Ok(None)` when there are none (whatever
/// [`missing_credentials`](CredentialsConfig::missing_credentials) says: the
/// [`Authenticator`] applies it).
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
        if !scheme.eq_ignore_ascii_case(&cfg.auth_token_scheme) {
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

/// What authenticated a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialSource {
    /// A token the request carried: `Authorization: Bearer`, the configured
    /// token header, tokens an auth proxy forwarded, or an automation
    /// principal's id and token.
    Token,
    /// The login session's cookie (portcullis-oidc): a browser, which sends
    /// it with every request to the site, also those another site makes it
    /// send. State-changing requests authenticated this way must come from
    /// the site's own origin.
    Session,
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
    /// What authenticated the caller.
    pub source: CredentialSource,
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
            source: CredentialSource::Token,
        }
    }
}

/// Credentials extraction and verification together: what adapters call per request.
///
/// ```
/// # async fn f(verifier: portcullis_core::TokenVerifier) {
/// use portcullis_core::credentials::{Authenticator, CredentialsConfig};
/// let auth = Authenticator::new(verifier.clone(), CredentialsConfig::default());
/// let headers: &[(&str, &str)] = &[];
/// // A guest: the handler's extractors decide.
/// assert!(auth.authenticate(headers).await.unwrap().is_none());
/// let refusing = Authenticator::new(verifier, CredentialsConfig::default().refuse_missing());
/// assert_eq!(refusing.authenticate(headers).await.unwrap_err().status(), 401);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Authenticator {
    verifier: TokenVerifier,
    config: Arc<CredentialsConfig>,
    automation: Option<AutomationPrincipals>,
}

impl Authenticator {
    /// An authenticator reading credentials as `config` says and verifying them with `verifier`.
    pub fn new(verifier: TokenVerifier, config: CredentialsConfig) -> Self {
        Self {
            verifier,
            config: Arc::new(config),
            automation: None,
        }
    }

    /// Also accepts automation principals: a request carrying the id and
    /// token headers of `automation` is authenticated by them (see
    /// [`automation`](crate::automation)). A request carrying both those
    /// headers and a bearer token is refused (400): one caller, one kind of
    /// credentials.
    ///
    /// ```
    /// # async fn f(verifier: portcullis_core::TokenVerifier) -> Result<(), portcullis_core::Error> {
    /// use std::sync::Arc;
    /// use portcullis_core::automation::{AutomationConfig, AutomationPrincipals, MemorySecrets};
    /// use portcullis_core::{Authenticator, CredentialsConfig, PrincipalKind};
    ///
    /// let secrets = MemorySecrets::new();
    /// secrets.put("builder", r#"{"token": "s3cr3t-builder-token", "id": "ci@example.com"}"#);
    /// let automation = AutomationPrincipals::new(AutomationConfig::default(), Arc::new(secrets))?;
    /// let auth = Authenticator::new(verifier, CredentialsConfig::default()).with_automation(automation);
    /// let headers: &[(&str, &str)] = &[("SMAC-Principal", "builder"), ("SMAC-Token", "s3cr3t-builder-token")];
    /// let caller = auth.authenticate(headers).await?.unwrap();
    /// assert_eq!(caller.principal.user_id(), "ci@example.com");
    /// assert_eq!(caller.principal.principal_kind(), PrincipalKind::Automation);
    /// # Ok(()) }
    /// ```
    pub fn with_automation(mut self, automation: AutomationPrincipals) -> Self {
        self.automation = Some(automation);
        self
    }

    /// The automation principals this authenticator accepts, when any.
    pub fn automation(&self) -> Option<&AutomationPrincipals> {
        self.automation.as_ref()
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
    /// - none: `Ok(None)` (a guest), or [`Error::missing_credentials`] with
    ///   [`MissingCredentials::Refuse`];
    /// - present and valid: `Ok(Some(..))`;
    /// - present and invalid: an error (401), whatever
    ///   [`missing_credentials`](CredentialsConfig::missing_credentials) says.
    ///
    /// A forwarded ID token must verify as an ID token of the same issuer and
    /// subject; its email, like the access token's, is the address the
    /// provider vouches for ([`vouched_email`](crate::principal::vouched_email)).
    pub async fn authenticate(
        &self,
        headers: &(impl HeaderLookup + ?Sized),
    ) -> Result<Option<Authenticated>, Error> {
        let creds = find(&self.config, headers)?;
        if let Some(automation) = &self.automation
            && let Some(presented) = automation.find(headers)?
        {
            if creds.is_some() {
                return Err(Error::invalid_request(
                    "the request carries a bearer token and an automation principal's credentials",
                ));
            }
            let principal = automation
                .authenticate(presented.id, presented.token)
                .await?;
            return Ok(Some(Authenticated {
                principal,
                id_token: None,
                refresh_token: None,
                source: CredentialSource::Token,
            }));
        }
        let Some(creds) = creds else {
            return match self.config.missing_credentials {
                MissingCredentials::Refuse => Err(Error::missing_credentials()),
                MissingCredentials::Guest => Ok(None),
            };
        };
        let principal = if self.config.accept_id_tokens {
            self.verifier
                .verify_access_or_id(creds.access_token)
                .await?
        } else {
            self.verifier.verify(creds.access_token).await?
        };
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
            source: CredentialSource::Token,
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

    fn load(yaml: &str) -> Result<CredentialsConfig, Error> {
        crate::config::load_from_str(yaml, crate::config::Format::Yaml, &[])
    }

    #[test]
    fn missing_credentials_loads_under_its_name_and_its_former_one() {
        assert_eq!(
            load("{}").unwrap().missing_credentials,
            MissingCredentials::Guest
        );
        let guest = load("missing_credentials: guest").unwrap();
        assert_eq!(guest.missing_credentials, MissingCredentials::Guest);
        let refuse = load("missing_credentials: refuse\nrealm: api").unwrap();
        assert_eq!(refuse.missing_credentials, MissingCredentials::Refuse);
        assert_eq!(refuse.realm, "api");
        // The former boolean: true refused, false let guests through.
        let old = load("auto_error: true").unwrap();
        assert_eq!(old.missing_credentials, MissingCredentials::Refuse);
        let old = load("auto_error: false").unwrap();
        assert_eq!(old.missing_credentials, MissingCredentials::Guest);
        let toml: CredentialsConfig =
            crate::config::load_from_str("auto_error = true", crate::config::Format::Toml, &[])
                .unwrap();
        assert_eq!(toml.missing_credentials, MissingCredentials::Refuse);
        // From the environment, where every value is text.
        for (key, value, expected) in [
            ("P__AUTO_ERROR", "true", MissingCredentials::Refuse),
            ("P__AUTO_ERROR", "false", MissingCredentials::Guest),
            (
                "P__MISSING_CREDENTIALS",
                "refuse",
                MissingCredentials::Refuse,
            ),
        ] {
            let env = crate::config::env_overrides("P", [(key.to_owned(), value.to_owned())]);
            let cfg: CredentialsConfig = crate::config::load_from_env(&env).unwrap();
            assert_eq!(cfg.missing_credentials, expected, "{key}={value}");
        }
        // Each key takes its own type only.
        for wrong in [
            "missing_credentials: true",
            "auto_error: refuse",
            "missing_credentials: no",
        ] {
            let e = load(wrong).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config, "{wrong}");
        }
        assert!(load("auto_errors: true").is_err());
    }

    #[test]
    fn both_names_of_missing_credentials_are_refused() {
        for yaml in [
            "missing_credentials: refuse\nauto_error: true",
            "missing_credentials: guest\nauto_error: true",
            "missing_credentials: guest\nauto_error: false",
        ] {
            let e = load(yaml).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config, "{yaml}");
            let message = e.message();
            assert!(
                message.contains("both missing_credentials and auto_error are set"),
                "{yaml}: {message}"
            );
        }
    }

    #[test]
    fn missing_credentials_serializes_under_its_name_and_round_trips() {
        let cfg = CredentialsConfig::default().refuse_missing();
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(json["missing_credentials"], "refuse");
        assert!(json.get("auto_error").is_none());
        let back: CredentialsConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back.missing_credentials, MissingCredentials::Refuse);
        let guest = CredentialsConfig::default()
            .refuse_missing()
            .with_missing_credentials(MissingCredentials::Guest);
        assert_eq!(guest.missing_credentials, MissingCredentials::Guest);
    }

    #[tokio::test]
    async fn a_token_caller_and_a_session_caller_say_where_they_come_from() {
        use crate::config::{IssuerConfig, VerifierConfig};
        use crate::mint::SigningKey;
        let secret = "a shared secret of at least 32 bytes!";
        let issuer = IssuerConfig::new("https://id.example.com")
            .with_hmac_secret(secret)
            .with_algorithms([crate::Algorithm::HS256])
            .with_audience("api");
        let verifier =
            TokenVerifier::new(VerifierConfig::new([("main".to_owned(), issuer)])).unwrap();
        let key = SigningKey::from_secret(crate::Algorithm::HS256, "k", secret.as_bytes()).unwrap();
        let token = key
            .sign(
                &serde_json::json!({"iss": "https://id.example.com", "aud": "api", "sub": "u", "exp": 4102444800u64}),
                None,
            )
            .unwrap();
        let auth = Authenticator::new(verifier, CredentialsConfig::default());
        let bearer = format!("Bearer {token}");
        let headers: &[(&str, &str)] = &[("authorization", bearer.as_str())];
        let caller = auth.authenticate(headers).await.unwrap().unwrap();
        assert_eq!(caller.source, CredentialSource::Token);
        let session = crate::dangerous::authenticated_session(Arc::clone(&caller.principal));
        assert_eq!(session.source, CredentialSource::Session);
        let unverified = crate::dangerous::authenticated_unverified(caller.principal);
        assert_eq!(unverified.source, CredentialSource::Token);
    }

    #[tokio::test]
    async fn a_request_without_credentials_is_a_guest_unless_refused() {
        use crate::config::{IssuerConfig, VerifierConfig};
        let issuer = IssuerConfig::new("https://id.example.com")
            .with_hmac_secret("a shared secret of at least 32 bytes!")
            .with_algorithms([crate::Algorithm::HS256])
            .with_audience("api");
        let verifier =
            TokenVerifier::new(VerifierConfig::new([("main".to_owned(), issuer)])).unwrap();
        let none: &[(&str, &str)] = &[];
        let basic: &[(&str, &str)] = &[("authorization", "Basic dXNlcjpwYXNz")];
        let bad: &[(&str, &str)] = &[("authorization", "Bearer not.a.token")];

        let guest = Authenticator::new(verifier.clone(), CredentialsConfig::default());
        assert!(guest.authenticate(none).await.unwrap().is_none());
        assert!(guest.authenticate(basic).await.unwrap().is_none());
        assert_eq!(guest.authenticate(bad).await.unwrap_err().status(), 401);

        let refusing = Authenticator::new(
            verifier,
            CredentialsConfig::default()
                .with_realm("api")
                .refuse_missing(),
        );
        for headers in [none, basic] {
            let e = refusing.authenticate(headers).await.unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::MissingCredentials);
            let response = e.to_reply(refusing.realm());
            assert_eq!(response.status, 401);
            assert!(
                response
                    .headers
                    .iter()
                    .any(|(name, value)| *name == "www-authenticate"
                        && value == r#"Bearer realm="api""#),
                "{:?}",
                response.headers
            );
        }
        assert_eq!(refusing.authenticate(bad).await.unwrap_err().status(), 401);
    }

    #[tokio::test]
    async fn id_tokens_and_another_scheme_when_configured() {
        use crate::config::{IssuerConfig, VerifierConfig};
        use crate::mint::SigningKey;
        let secret = "a shared secret of at least 32 bytes!";
        let issuer = IssuerConfig::new("https://id.example.com")
            .with_hmac_secret(secret)
            .with_algorithms([crate::Algorithm::HS256])
            .with_audience("api")
            .with_client_id("web");
        let verifier =
            TokenVerifier::new(VerifierConfig::new([("main".to_owned(), issuer)])).unwrap();
        let key = SigningKey::from_secret(crate::Algorithm::HS256, "k", secret.as_bytes()).unwrap();
        let sign = |claims: serde_json::Value| key.sign(&claims, None).unwrap();
        let base =
            serde_json::json!({"iss": "https://id.example.com", "sub": "u", "exp": 4102444800u64});
        let mut id = base.clone();
        id["aud"] = "web".into();
        id["nonce"] = "n".into();
        let id = sign(id);
        let mut access = base.clone();
        access["aud"] = "api".into();
        let access = sign(access);
        let mut id_for_api = base;
        id_for_api["aud"] = "api".into();
        id_for_api["nonce"] = "n".into();
        let id_for_api = sign(id_for_api);

        let only_access = Authenticator::new(verifier.clone(), CredentialsConfig::default());
        let both = Authenticator::new(
            verifier,
            CredentialsConfig::default()
                .with_token_header_and_scheme("X-Token", "JWT")
                .with_id_tokens_accepted(true),
        );
        let bearer = |t: &str| format!("Bearer {t}");
        let jwt = |t: &str| format!("JWT {t}");
        let e = only_access
            .authenticate(&[("authorization", bearer(&id).as_str())][..])
            .await
            .unwrap_err();
        assert_eq!(e.rejection(), Some(crate::TokenRejection::WrongTokenType));
        for _ in 0..2 {
            // Twice: the second from the cache.
            let caller = both
                .authenticate(&[("x-token", jwt(&id).as_str())][..])
                .await
                .unwrap()
                .unwrap();
            assert_eq!(caller.principal.token_kind(), TokenKind::Id);
            let caller = both
                .authenticate(&[("x-token", jwt(&access).as_str())][..])
                .await
                .unwrap()
                .unwrap();
            assert_eq!(caller.principal.token_kind(), TokenKind::Access);
        }
        // An ID token is checked against the client id, not the audiences.
        let e = both
            .authenticate(&[("x-token", jwt(&id_for_api).as_str())][..])
            .await
            .unwrap_err();
        assert_eq!(e.rejection(), Some(crate::TokenRejection::WrongAudience));
        // The configured header and scheme only.
        assert!(
            both.authenticate(&[("authorization", bearer(&access).as_str())][..])
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            both.authenticate(&[("x-token", bearer(&access).as_str())][..])
                .await
                .unwrap()
                .is_none()
        );
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
