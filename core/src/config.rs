//! Configuration: serde types, loaded from YAML or TOML files and from
//! environment variables with a prefix and `__` nesting.
//!
//! Errors name the key path and the expected type, never the value, which
//! may be a secret. An environment value made of digits loads as a number
//! where the key wants one and as its exact text where the key wants a string
//! (a numeric secret, say). Provider URLs are held to [`check_provider_url`].
//!
//! Encrypted values (serieux's `~CRYPT~`, portcullis' `~SEALED-v1~`) are
//! opened before anything reads the configuration, with the password of
//! `PORTCULLIS_CONFIG_PASSWORD` or `SERIEUX_PASSWORD` (the `_with` loaders
//! take an [`Unsealer`] instead); see [`sealed`](crate::sealed).
//!
//! ```
//! use portcullis_core::config::{load_from_str, Format, VerifierConfig};
//! let yaml = r#"
//! issuers:
//!   main:
//!     issuer: https://id.example.com
//!     jwks_url: https://id.example.com/keys
//!     audiences: [api]
//! "#;
//! let cfg: VerifierConfig = load_from_str(yaml, Format::Yaml, &[]).unwrap();
//! assert_eq!(cfg.issuers["main"].audiences, ["api"]);
//! assert_eq!(cfg.leeway_secs, 60);
//!
//! // The same key from the environment: PORTCULLIS__ISSUERS__MAIN__AUDIENCES='["api","web"]'
//! let env = [("PORTCULLIS__ISSUERS__MAIN__AUDIENCES".to_owned(), r#"["api","web"]"#.to_owned())];
//! let cfg: VerifierConfig =
//!     load_from_str(yaml, Format::Yaml, &env_overrides("PORTCULLIS", env)).unwrap();
//! assert_eq!(cfg.issuers["main"].audiences, ["api", "web"]);
//! # use portcullis_core::config::env_overrides;
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::error::Error;
use crate::revocation::RevocationCheck;
use crate::sealed::{Keys, Unsealer, unseal_tree};
use crate::secret::Secret;

/// How a token verifier is configured: the trusted issuers and shared limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct VerifierConfig {
    /// Trusted issuers, by a name of your choosing (`primary`, `secondary`, ...).
    pub issuers: BTreeMap<String, IssuerConfig>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds (default 60; at most 300).
    #[serde(default = "defaults::leeway")]
    pub leeway_secs: u64,
    /// Tokens longer than this are refused before any decoding (default 16384).
    #[serde(default = "defaults::max_token_bytes")]
    pub max_token_bytes: usize,
    /// The verified-token cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// JWKS fetching and refreshing.
    #[serde(default)]
    pub jwks: JwksConfig,
    /// Accepts plain `http://` discovery and JWKS URLs on any host (default
    /// false). Keys fetched over plain HTTP can be replaced by anyone on the
    /// path, who can then sign tokens this verifier accepts; only loopback
    /// hosts are accepted over HTTP without this switch (see
    /// [`check_provider_url`]). For closed test networks only; a warning is
    /// logged when the verifier is built with it.
    #[serde(default)]
    pub danger_allow_plain_http: bool,
}

impl VerifierConfig {
    /// A configuration trusting `issuers` with default limits.
    pub fn new(issuers: impl IntoIterator<Item = (String, IssuerConfig)>) -> Self {
        Self {
            issuers: issuers.into_iter().collect(),
            leeway_secs: defaults::leeway(),
            max_token_bytes: defaults::max_token_bytes(),
            cache: CacheConfig::default(),
            jwks: JwksConfig::default(),
            danger_allow_plain_http: false,
        }
    }

    /// Sets [`danger_allow_plain_http`](Self::danger_allow_plain_http).
    pub fn with_danger_allow_plain_http(mut self, allow: bool) -> Self {
        self.danger_allow_plain_http = allow;
        self
    }
}

/// One trusted issuer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct IssuerConfig {
    /// The exact `iss` value (compared byte for byte). Derived from `cognito` when absent.
    #[serde(default)]
    pub issuer: Option<String>,
    /// AWS Cognito user pool: sets the issuer and JWKS URL and checks `token_use` and `client_id`.
    #[serde(default)]
    pub cognito: Option<CognitoConfig>,
    /// OIDC discovery document URL. When no key source is set at all,
    /// `{issuer}/.well-known/openid-configuration` is used.
    #[serde(default)]
    pub discovery_url: Option<String>,
    /// JWKS URL, when keys are served apart from discovery.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Static public keys.
    #[serde(default)]
    pub keys: Vec<StaticKey>,
    /// A shared secret for HS256/384/512 (at least 32/48/64 bytes).
    #[serde(default)]
    pub hmac_secret: Option<Secret>,
    /// Algorithms accepted from this issuer (default `[RS256]`).
    #[serde(default = "defaults::algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// Accepted `aud` values for access tokens; a token must name at least one.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The OAuth client id of this service at the issuer: the `aud` of ID tokens.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The claim that holds the user id (default `sub`; `email` and
    /// `preferred_username` are common). With `email`, a token whose address
    /// the provider does not vouch for is refused
    /// ([`TokenRejection::UnverifiedEmail`](crate::TokenRejection::UnverifiedEmail)).
    #[serde(default = "defaults::user_id_claim")]
    pub user_id_claim: String,
    /// Whether an `email` claim without an `email_verified` claim is taken as
    /// vouched for (default false).
    ///
    /// [`Principal::email`](crate::Principal::email), which capabilities are
    /// looked up by, is the address the provider vouches for: `email_verified`
    /// true keeps it, false drops it ([`vouched_email`](crate::principal::vouched_email)).
    /// An absent claim is no vouch by default: Entra ID, for one, can send an
    /// unverified, user-editable address in `email` with no `email_verified`
    /// (the "nOAuth" problem), and trusting it would let a user pick someone
    /// else's capabilities. Providers that send `email_verified` (Google,
    /// Auth0, Okta, Keycloak, Cognito ID tokens) need nothing. Set it only for
    /// an issuer whose `email` claim is always verified or set by an
    /// administrator yet comes without `email_verified`: portcullis' own
    /// service issuer, or a custom claim mapping that copies the address alone.
    #[serde(default)]
    pub trust_email_without_verified_claim: bool,
    /// Claims that must be present (and not null).
    #[serde(default)]
    pub required_claims: Vec<String>,
    /// Overrides the verifier's leeway for this issuer.
    #[serde(default)]
    pub leeway_secs: Option<u64>,
    /// How strictly access tokens are told from ID tokens.
    #[serde(default)]
    pub access_token_type: AccessTokenType,
    /// Asked after verification whether a token of this issuer was revoked
    /// (set in code, not in configuration files; see
    /// [`with_revocations`](Self::with_revocations)).
    #[serde(skip)]
    pub revocations: Option<Arc<dyn RevocationCheck>>,
}

impl IssuerConfig {
    /// An issuer with default settings (keys found through OIDC discovery).
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: Some(issuer.into()),
            cognito: None,
            discovery_url: None,
            jwks_url: None,
            keys: Vec::new(),
            hmac_secret: None,
            algorithms: defaults::algorithms(),
            audiences: Vec::new(),
            client_id: None,
            user_id_claim: defaults::user_id_claim(),
            trust_email_without_verified_claim: false,
            required_claims: Vec::new(),
            leeway_secs: None,
            access_token_type: AccessTokenType::default(),
            revocations: None,
        }
    }

    /// Refuses this issuer's tokens that `check` says are revoked, wherever
    /// they are verified (cached tokens included): see
    /// [`revocation`](crate::revocation).
    pub fn with_revocations(mut self, check: Arc<dyn RevocationCheck>) -> Self {
        self.revocations = Some(check);
        self
    }

    /// An AWS Cognito user pool.
    pub fn cognito(cognito: CognitoConfig) -> Self {
        let mut c = Self::new(String::new());
        c.issuer = None;
        c.cognito = Some(cognito);
        c
    }

    /// Sets the JWKS URL.
    pub fn with_jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// Sets the discovery URL.
    pub fn with_discovery_url(mut self, url: impl Into<String>) -> Self {
        self.discovery_url = Some(url.into());
        self
    }

    /// Adds a static key.
    pub fn with_key(mut self, key: StaticKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Sets the HMAC secret.
    pub fn with_hmac_secret(mut self, secret: impl Into<Secret>) -> Self {
        self.hmac_secret = Some(secret.into());
        self
    }

    /// Sets the accepted algorithms.
    pub fn with_algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algs.into_iter().collect();
        self
    }

    /// Adds an accepted audience.
    pub fn with_audience(mut self, aud: impl Into<String>) -> Self {
        self.audiences.push(aud.into());
        self
    }

    /// Sets the client id (the audience of ID tokens).
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Sets the user-id claim.
    pub fn with_user_id_claim(mut self, claim: impl Into<String>) -> Self {
        self.user_id_claim = claim.into();
        self
    }

    /// Sets [`trust_email_without_verified_claim`](Self::trust_email_without_verified_claim).
    pub fn with_trust_email_without_verified_claim(mut self, trust: bool) -> Self {
        self.trust_email_without_verified_claim = trust;
        self
    }

    /// Adds a required claim.
    pub fn with_required_claim(mut self, claim: impl Into<String>) -> Self {
        self.required_claims.push(claim.into());
        self
    }

    /// Sets how access tokens are told from ID tokens.
    pub fn with_access_token_type(mut self, t: AccessTokenType) -> Self {
        self.access_token_type = t;
        self
    }

    /// The issuer string tokens must carry.
    pub fn effective_issuer(&self) -> Option<String> {
        if let Some(i) = &self.issuer {
            return Some(i.clone());
        }
        self.cognito.as_ref().map(CognitoConfig::issuer)
    }
}

/// An AWS Cognito user pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CognitoConfig {
    /// The AWS region, e.g. `eu-west-1`.
    pub region: String,
    /// The user pool id, e.g. `eu-west-1_AbCdEf`.
    #[serde(alias = "userpool_id")]
    pub user_pool_id: String,
    /// App client ids whose tokens are accepted (`client_id` of access tokens, `aud` of ID tokens).
    #[serde(default, alias = "app_client_id", deserialize_with = "one_or_many")]
    pub app_client_ids: Vec<String>,
}

impl CognitoConfig {
    /// A user pool accepting tokens of `app_client_id`.
    pub fn new(
        region: impl Into<String>,
        user_pool_id: impl Into<String>,
        app_client_id: impl Into<String>,
    ) -> Self {
        Self {
            region: region.into(),
            user_pool_id: user_pool_id.into(),
            app_client_ids: vec![app_client_id.into()],
        }
    }

    /// `https://cognito-idp.{region}.amazonaws.com/{user_pool_id}`.
    pub fn issuer(&self) -> String {
        format!(
            "https://cognito-idp.{}.amazonaws.com/{}",
            self.region, self.user_pool_id
        )
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// How access tokens are told from ID tokens.
///
/// In both modes, a token that says it is something else is refused: a JWS
/// `typ` header other than absent, `JWT`, `application/jwt`, `at+jwt` or
/// `application/at+jwt` (case-insensitive; `logout+jwt`, `secevent+jwt`,
/// `dpop+jwt`, `id_token+jwt`, ...), a Keycloak `typ` claim other than
/// `Bearer` (`Refresh`, `Logout`, `Offline`, `ID`, ...), a Cognito
/// `token_use` other than `access`, or signs of an ID token (`nonce`,
/// `at_hash`, `c_hash`). ID tokens are checked the same way: refused when
/// they say they are access tokens or anything else but an ID token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AccessTokenType {
    /// Accept tokens that say nothing of their kind, besides those that
    /// declare themselves access tokens. Suits providers that issue access
    /// tokens with `typ: JWT`.
    #[default]
    Lenient,
    /// Accept only tokens that declare themselves access tokens (`typ: at+jwt`
    /// per RFC 9068, `token_use: access`, Keycloak's `typ: Bearer`).
    Strict,
}

/// A static public key: PEM or JWK.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StaticKey {
    /// The key id tokens name in `kid`; optional for a single key.
    #[serde(default)]
    pub kid: Option<String>,
    /// A PEM `PUBLIC KEY` block.
    #[serde(default)]
    pub pem: Option<String>,
    /// A JWK, as a JSON object.
    #[serde(default)]
    pub jwk: Option<Value>,
}

impl StaticKey {
    /// A PEM key.
    pub fn pem(kid: Option<String>, pem: impl Into<String>) -> Self {
        Self {
            kid,
            pem: Some(pem.into()),
            jwk: None,
        }
    }

    /// A JWK key.
    pub fn jwk(jwk: Value) -> Self {
        Self {
            kid: None,
            pem: None,
            jwk: Some(jwk),
        }
    }
}

/// The verified-token cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Whether verified tokens are cached (default true).
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
    /// How many tokens are kept at most (default 10000).
    #[serde(default = "defaults::cache_capacity")]
    pub capacity: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            capacity: defaults::cache_capacity(),
        }
    }
}

/// JWKS fetching and refreshing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JwksConfig {
    /// Refresh no more often than this, whatever `Cache-Control` says (default 60 s).
    #[serde(default = "defaults::min_refresh")]
    pub min_refresh_secs: u64,
    /// Refresh at least this often, whatever `Cache-Control` says (default 86400 s).
    #[serde(default = "defaults::max_refresh")]
    pub max_refresh_secs: u64,
    /// Refresh interval when the response has no `max-age` (default 900 s).
    #[serde(default = "defaults::default_refresh")]
    pub default_refresh_secs: u64,
    /// An unknown `kid` causes at most one refetch per this interval (default 30 s).
    #[serde(default = "defaults::min_refetch")]
    pub min_refetch_interval_secs: u64,
    /// How long past their refresh time the last good keys keep serving while
    /// the provider is down (default 3600 s). After that, verification fails as unavailable.
    #[serde(default = "defaults::max_stale")]
    pub max_stale_secs: u64,
    /// Timeout of one HTTP request (default 5000 ms).
    #[serde(default = "defaults::timeout_ms")]
    pub timeout_ms: u64,
    /// Largest accepted JWKS or discovery response (default
    /// [`MAX_JWKS_BYTES`](crate::http_client::MAX_JWKS_BYTES), 262144 bytes;
    /// a discovery document is also held to
    /// [`MAX_DISCOVERY_BYTES`](crate::http_client::MAX_DISCOVERY_BYTES)).
    #[serde(default = "defaults::max_response_bytes")]
    pub max_response_bytes: usize,
}

impl Default for JwksConfig {
    fn default() -> Self {
        Self {
            min_refresh_secs: defaults::min_refresh(),
            max_refresh_secs: defaults::max_refresh(),
            default_refresh_secs: defaults::default_refresh(),
            min_refetch_interval_secs: defaults::min_refetch(),
            max_stale_secs: defaults::max_stale(),
            timeout_ms: defaults::timeout_ms(),
            max_response_bytes: defaults::max_response_bytes(),
        }
    }
}

mod defaults {
    use crate::alg::Algorithm;
    pub(super) fn leeway() -> u64 {
        60
    }
    pub(super) fn max_token_bytes() -> usize {
        16 * 1024
    }
    pub(super) fn algorithms() -> Vec<Algorithm> {
        vec![Algorithm::RS256]
    }
    pub(super) fn user_id_claim() -> String {
        "sub".to_owned()
    }
    pub(super) fn yes() -> bool {
        true
    }
    pub(super) fn cache_capacity() -> usize {
        10_000
    }
    pub(super) fn min_refresh() -> u64 {
        60
    }
    pub(super) fn max_refresh() -> u64 {
        86_400
    }
    pub(super) fn default_refresh() -> u64 {
        900
    }
    pub(super) fn min_refetch() -> u64 {
        30
    }
    pub(super) fn max_stale() -> u64 {
        3_600
    }
    pub(super) fn timeout_ms() -> u64 {
        5_000
    }
    pub(super) fn max_response_bytes() -> usize {
        crate::http_client::MAX_JWKS_BYTES
    }
}

/// A configuration file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// YAML.
    Yaml,
    /// TOML.
    Toml,
}

impl Format {
    /// The format a file name implies (`.yaml`, `.yml`, `.toml`).
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
}

/// One configuration value from the environment: a key path and its value.
pub type Override = (Vec<String>, Value);

/// Turns environment variables into overrides: `PREFIX__A__B=v` sets key `a.b`.
///
/// Key segments are lower-cased. A value that reads as a JSON array, object,
/// quoted string or `null` (`["a","b"]`, `{"k":1}`, `"quoted"`) is taken as
/// that JSON. Anything else is kept as the string it is, digits and `true`
/// included: the loading functions read such a value as a number or a
/// boolean where the key's type asks for one, and as its exact text where it
/// asks for a string (a numeric secret loads as written). Pass
/// `std::env::vars()` in production.
///
/// ```
/// use portcullis_core::config::{env_overrides, load_from_env};
/// #[derive(serde::Deserialize)]
/// struct App { secret_key: String, port: u16, debug: bool }
/// let env = env_overrides("APP", [
///     ("APP__SECRET_KEY".to_owned(), "0123456789012345678901234567890123456789".to_owned()),
///     ("APP__PORT".to_owned(), "8080".to_owned()),
///     ("APP__DEBUG".to_owned(), "true".to_owned()),
/// ]);
/// let app: App = load_from_env(&env).unwrap();
/// assert_eq!(app.secret_key, "0123456789012345678901234567890123456789");
/// assert_eq!((app.port, app.debug), (8080, true));
/// ```
pub fn env_overrides(
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Vec<Override> {
    let head = format!("{prefix}__");
    let mut out: Vec<Override> = vars
        .into_iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix(&head)?;
            let path: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
            if path.iter().any(String::is_empty) {
                return None;
            }
            let value = match serde_json::from_str::<Value>(&v) {
                Ok(
                    json @ (Value::Array(_) | Value::Object(_) | Value::String(_) | Value::Null),
                ) => json,
                // Numbers and booleans stay text until a key's type asks:
                // see `scalar_from_text`.
                _ => Value::String(v),
            };
            Some((path, value))
        })
        .collect();
    // Environment order is unspecified; sort so that results are reproducible.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Parses `text` in `format`, applies `overrides`, opens encrypted values
/// with the environment's password ([`Unsealer::from_env`]), and
/// deserializes into `T`.
///
/// Errors name the key path, what was found and what was expected, never the
/// value (it may be a secret), e.g.
/// `configuration key `issuers.main.leeway_secs`: invalid type: string, expected u64`.
pub fn load_from_str<T: DeserializeOwned>(
    text: &str,
    format: Format,
    overrides: &[Override],
) -> Result<T, Error> {
    load_from_str_with(text, format, overrides, &Unsealer::from_env())
}

/// [`load_from_str`], opening encrypted values with `unsealer`.
pub fn load_from_str_with<T: DeserializeOwned>(
    text: &str,
    format: Format,
    overrides: &[Override],
    unsealer: &Unsealer,
) -> Result<T, Error> {
    let base = parse(text, format)?;
    from_value(&base, overrides, unsealer)
}

fn parse(text: &str, format: Format) -> Result<Value, Error> {
    let base: Value = match format {
        Format::Yaml => {
            if text.trim().is_empty() {
                Value::Object(Map::new())
            } else {
                serde_yaml_ng::from_str(text).map_err(|e| {
                    Error::config(format!("invalid YAML: {}", without_values(&e.to_string())))
                })?
            }
        }
        Format::Toml => toml::from_str(text).map_err(|e| {
            // The error's own rendering quotes the offending line: keep the
            // line number and the message only.
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            let message = without_values(e.message());
            Error::config(match line {
                Some(line) => format!("invalid TOML at line {line}: {message}"),
                None => format!("invalid TOML: {message}"),
            })
        })?,
    };
    Ok(base)
}

/// Reads the file at `path` (format from its extension), applies
/// `overrides`, opens encrypted values with the environment's password
/// ([`Unsealer::from_env`]), deserializes into `T`.
///
/// A relative path the file gives for a `user_file` (at any depth) or a
/// `store` of kind `file` is taken beside the file, as easy-oauth does,
/// not in the working directory; one from the environment stays relative
/// to the working directory.
pub fn load_file<T: DeserializeOwned>(path: &Path, overrides: &[Override]) -> Result<T, Error> {
    load_file_with(path, overrides, &Unsealer::from_env())
}

/// [`load_file`], opening encrypted values with `unsealer`.
pub fn load_file_with<T: DeserializeOwned>(
    path: &Path,
    overrides: &[Override],
    unsealer: &Unsealer,
) -> Result<T, Error> {
    let format = Format::from_path(path).ok_or_else(|| {
        Error::config(format!(
            "{}: unknown configuration format (use .yaml, .yml or .toml)",
            path.display()
        ))
    })?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("{}: cannot read: {e}", path.display())))?;
    let in_file = |e: Error| Error::config(format!("{}: {}", path.display(), e.message()));
    let mut base = parse(&text, format).map_err(in_file)?;
    if let Some(dir) = path.parent() {
        resolve_beside(&mut base, dir);
    }
    from_value(&base, overrides, unsealer).map_err(in_file)
}

/// Makes the relative paths a configuration file gives relative to the
/// file's directory, as easy-oauth does: every `user_file` (at any depth)
/// and the `path` of a `store` of kind `file`. Values from the environment
/// are not concerned: they stay relative to the working directory.
fn resolve_beside(tree: &mut Value, dir: &Path) {
    fn join(value: &mut Value, dir: &Path) {
        if let Value::String(p) = value
            && !p.is_empty()
            && Path::new(p.as_str()).is_relative()
        {
            *p = dir.join(p.as_str()).to_string_lossy().into_owned();
        }
    }
    let Value::Object(map) = tree else { return };
    for (name, child) in map.iter_mut() {
        match name.as_str() {
            "user_file" => join(child, dir),
            "store" if child.get("kind").and_then(Value::as_str) == Some("file") => {
                if let Some(p) = child.get_mut("path") {
                    join(p, dir);
                }
            }
            _ => resolve_beside(child, dir),
        }
    }
}

/// Builds `T` from the overrides alone (configuration entirely from the
/// environment), opening encrypted values with the environment's password.
pub fn load_from_env<T: DeserializeOwned>(overrides: &[Override]) -> Result<T, Error> {
    from_value(&Value::Object(Map::new()), overrides, &Unsealer::from_env())
}

fn from_value<T: DeserializeOwned>(
    base: &Value,
    overrides: &[Override],
    unsealer: &Unsealer,
) -> Result<T, Error> {
    if !base.is_object() {
        return Err(Error::config(
            "the configuration must be a mapping at the top level",
        ));
    }
    let mut overrides = overrides.to_vec();
    let mut keys = Keys::default();
    loop {
        let mut merged = base.clone();
        for (path, value) in &overrides {
            set_path(&mut merged, path, value.clone());
        }
        unseal_tree(&mut merged, unsealer, &mut keys)?;
        let e = match serde_path_to_error::deserialize(&merged) {
            Ok(t) => return Ok(t),
            Err(e) => e,
        };
        // An override given as text where the key wants a number or a
        // boolean: read the text as one, and try again (once per override).
        let failed: Option<Vec<&str>> = e
            .path()
            .iter()
            .map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(key.as_str()),
                _ => None,
            })
            .collect();
        let retry = failed.and_then(|failed| {
            overrides
                .iter_mut()
                .find(|(path, _)| path.iter().map(String::as_str).eq(failed.iter().copied()))
                .and_then(|(_, value)| {
                    let scalar = scalar_from_text(value)?;
                    *value = scalar;
                    Some(())
                })
        });
        if retry.is_some() {
            continue;
        }
        let path = e.path().to_string();
        let inner = without_values(&e.into_inner().to_string());
        return Err(if path == "." {
            Error::config(format!("configuration: {inner}"))
        } else {
            Error::config(format!("configuration key `{path}`: {inner}"))
        });
    }
}

/// The number or boolean an override's text spells, if it spells one.
fn scalar_from_text(value: &Value) -> Option<Value> {
    let Value::String(text) = value else {
        return None;
    };
    match serde_json::from_str::<Value>(text).ok()? {
        scalar @ (Value::Number(_) | Value::Bool(_)) => Some(scalar),
        _ => None,
    }
}

/// A deserialization message with the offending value left out (it may be
/// a secret): `invalid type: integer `123`, expected a string` becomes
/// `invalid type: integer, expected a string`; `invalid value: string "…"`,
/// `unknown variant `…`` likewise; other quoted fragments become
/// `(value not shown)`. Key names (`missing field`, `unknown field`) are kept.
pub(crate) fn without_values(message: &str) -> String {
    const KEY_NAMING: [&str; 4] = [
        "missing field ",
        "unknown field ",
        "duplicate field ",
        "invalid length ",
    ];
    if KEY_NAMING.iter().any(|k| message.starts_with(k)) {
        return message.to_owned();
    }
    let (head, expected) = match message.rfind(", expected ") {
        Some(i) => message.split_at(i),
        None => (message, ""),
    };
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = head.strip_prefix(prefix) {
            let what = rest.split(['`', '"']).next().unwrap_or_default().trim();
            return format!("{prefix}{what}{expected}");
        }
    }
    if head.starts_with("unknown variant") {
        return format!("unknown variant{expected}");
    }
    let mut out = String::with_capacity(head.len());
    let mut chars = head.chars();
    while let Some(c) = chars.next() {
        match c {
            '`' => {
                chars.by_ref().find(|c| *c == '`');
                out.push_str("(value not shown)");
            }
            '"' => {
                let mut escaped = false;
                chars.by_ref().find(|c| {
                    let end = *c == '"' && !escaped;
                    escaped = *c == '\\' && !escaped;
                    end
                });
                out.push_str("(value not shown)");
            }
            c => out.push(c),
        }
    }
    out.push_str(expected);
    out
}

fn set_path(root: &mut Value, path: &[String], value: Value) {
    let mut cur = root;
    for (i, seg) in path.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let map = cur.as_object_mut().expect("object");
        if i + 1 == path.len() {
            map.insert(seg.clone(), value);
            return;
        }
        cur = map
            .entry(seg.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// Checks a URL from which portcullis fetches keys, metadata or tokens
/// (discovery, JWKS, token, userinfo and revocation endpoints), given under
/// the configuration key `key` or found in a provider's document.
///
/// The rule: **key material and tokens travel over HTTPS only.** `http://` is
/// accepted for loopback hosts alone (`localhost`, `127.0.0.0/8`, `[::1]`),
/// where a development provider runs, unless `danger_allow_plain_http` is set
/// (a switch for closed test networks, loudly named on purpose). Any other
/// scheme is refused.
///
/// ```
/// use portcullis_core::config::check_provider_url;
/// assert!(check_provider_url("jwks_url", "https://id.example.com/jwks", false).is_ok());
/// assert!(check_provider_url("jwks_url", "http://127.0.0.1:8080/jwks", false).is_ok());
/// assert!(check_provider_url("jwks_url", "http://id.example.com/jwks", false).is_err());
/// assert!(check_provider_url("jwks_url", "http://id.example.com/jwks", true).is_ok());
/// assert!(check_provider_url("jwks_url", "file:///etc/passwd", true).is_err());
/// ```
///
/// # Errors
///
/// A configuration error naming `key` and why.
pub fn check_provider_url(
    key: &str,
    url: &str,
    danger_allow_plain_http: bool,
) -> Result<(), Error> {
    let refuse = |why: &str| Err(Error::config(format!("configuration key `{key}`: {why}")));
    let Ok(parsed) = url::Url::parse(url) else {
        return refuse("not a valid absolute URL");
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return refuse("the URL must not carry credentials");
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if danger_allow_plain_http || is_loopback(&parsed) => Ok(()),
        "http" => refuse(
            "plain http is accepted for loopback hosts only (keys and tokens must not travel \
             unencrypted); use https, or set `danger_allow_plain_http: true` on a closed test network",
        ),
        _ => refuse("must be an https URL"),
    }
}

/// Whether the URL's host is a loopback address or `localhost`.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str =
        "issuers:\n  main:\n    issuer: https://id.example.com\n    audiences: [api]\n";

    #[test]
    fn errors_name_the_key() {
        let bad = "issuers:\n  main:\n    issuer: x\n    algorithms: [XS256]\n";
        let e = load_from_str::<VerifierConfig>(bad, Format::Yaml, &[]).unwrap_err();
        assert!(
            e.message().contains("issuers.main.algorithms[0]"),
            "{}",
            e.message()
        );
        assert!(
            e.message().contains("unsupported algorithm") && !e.message().contains("XS256"),
            "{}",
            e.message()
        );
        let unknown = "issuers:\n  main:\n    issuer: x\n    audience: api\n";
        let e = load_from_str::<VerifierConfig>(unknown, Format::Yaml, &[]).unwrap_err();
        assert!(
            e.message().contains("issuers.main") && e.message().contains("audience"),
            "{}",
            e.message()
        );
        let e = load_from_str::<VerifierConfig>("leeway_secs: [", Format::Yaml, &[]).unwrap_err();
        assert!(e.message().starts_with("invalid YAML"), "{}", e.message());
    }

    #[test]
    fn toml_and_env_nesting() {
        let toml = "leeway_secs = 5\n[issuers.main]\nissuer = \"https://id.example.com\"\naudiences = [\"api\"]\n";
        let cfg: VerifierConfig = load_from_str(toml, Format::Toml, &[]).unwrap();
        assert_eq!(cfg.leeway_secs, 5);
        let env = env_overrides(
            "SMAC",
            [
                ("SMAC__LEEWAY_SECS".to_owned(), "7".to_owned()),
                (
                    "SMAC__ISSUERS__SECONDARY__COGNITO__REGION".to_owned(),
                    "eu-west-1".to_owned(),
                ),
                (
                    "SMAC__ISSUERS__SECONDARY__COGNITO__USERPOOL_ID".to_owned(),
                    "eu-west-1_abc".to_owned(),
                ),
                (
                    "SMAC__ISSUERS__SECONDARY__COGNITO__APP_CLIENT_ID".to_owned(),
                    "client".to_owned(),
                ),
                ("OTHER__LEEWAY_SECS".to_owned(), "9".to_owned()),
            ],
        );
        let cfg: VerifierConfig = load_from_str(YAML, Format::Yaml, &env).unwrap();
        assert_eq!(cfg.leeway_secs, 7);
        let cognito = cfg.issuers["secondary"].cognito.as_ref().unwrap();
        assert_eq!(cognito.app_client_ids, ["client"]);
        assert_eq!(
            cfg.issuers["secondary"].effective_issuer().unwrap(),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
        );
        let e = load_from_env::<VerifierConfig>(&env_overrides(
            "P",
            [("P__LEEWAY_SECS".to_owned(), "soon".to_owned())],
        ))
        .unwrap_err();
        assert!(e.message().contains("leeway_secs"), "{}", e.message());
    }

    #[test]
    fn a_numeric_secret_from_the_environment_loads_as_written() {
        let digits = "1234567890123456789012345678901234567890";
        let long = "000111222333444555666777888999000111222333444555";
        let env = env_overrides(
            "P",
            [
                ("P__ISSUERS__MAIN__HMAC_SECRET".to_owned(), long.to_owned()),
                ("P__ISSUERS__MAIN__CLIENT_ID".to_owned(), "12345".to_owned()),
                ("P__ISSUERS__MAIN__LEEWAY_SECS".to_owned(), "30".to_owned()),
                ("P__LEEWAY_SECS".to_owned(), "7".to_owned()),
                ("P__CACHE__ENABLED".to_owned(), "false".to_owned()),
                ("P__CACHE__CAPACITY".to_owned(), "\"42\"".to_owned()),
            ],
        );
        let cfg: VerifierConfig = load_from_str(YAML, Format::Yaml, &env).unwrap();
        let main = &cfg.issuers["main"];
        assert_eq!(main.hmac_secret.as_ref().unwrap().expose(), long);
        assert_eq!(main.client_id.as_deref(), Some("12345"));
        assert_eq!(main.leeway_secs, Some(30));
        assert_eq!(cfg.leeway_secs, 7);
        assert!(!cfg.cache.enabled);
        assert_eq!(cfg.cache.capacity, 42);

        #[derive(Debug, Deserialize)]
        struct App {
            secret_key: Secret,
            port: u16,
        }
        let env = env_overrides(
            "PORTCULLIS",
            [
                ("PORTCULLIS__SECRET_KEY".to_owned(), digits.to_owned()),
                ("PORTCULLIS__PORT".to_owned(), "8080".to_owned()),
            ],
        );
        let app: App = load_from_env(&env).unwrap();
        assert_eq!(app.secret_key.expose(), digits);
        assert_eq!(app.port, 8080);
    }

    #[test]
    fn configuration_errors_name_the_key_and_type_never_the_value() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code, reason = "only the errors are looked at")]
        struct Small {
            retries: u8,
            mode: AccessTokenType,
        }
        let env = |k: &str, v: &str| env_overrides("P", [(format!("P__{k}"), v.to_owned())]);
        let base = "issuers:\n  main:\n    issuer: https://id.example.com\n";
        // (YAML, overrides, the key named, a fragment of the expected type, the value)
        let cases: Vec<(&str, Vec<Override>, &str, &str, &str)> = vec![
            (
                base,
                env("LEEWAY_SECS", "s3cr3t-soon"),
                "leeway_secs",
                "expected u64",
                "s3cr3t-soon",
            ),
            (
                "issuers:\n  main:\n    hmac_secret: 987654321987654321\n",
                vec![],
                "issuers.main.hmac_secret",
                "expected a string",
                "987654321",
            ),
            (
                "issuers:\n  main:\n    hmac_secret: 3.14159265\n",
                vec![],
                "issuers.main.hmac_secret",
                "expected a string",
                "3.14159",
            ),
            (
                base,
                env("CACHE__ENABLED", "s3cr3t-maybe"),
                "cache.enabled",
                "expected a boolean",
                "s3cr3t-maybe",
            ),
            (
                "issuers:\n  main:\n    access_token_type: s3cr3t-mode\n",
                vec![],
                "issuers.main.access_token_type",
                "expected",
                "s3cr3t-mode",
            ),
            (
                "issuers:\n  main:\n    algorithms: [s3cr3t-alg]\n",
                vec![],
                "issuers.main.algorithms[0]",
                "expected one of",
                "s3cr3t-alg",
            ),
        ];
        for (yaml, overrides, key, expected, value) in cases {
            let e = load_from_str::<VerifierConfig>(yaml, Format::Yaml, &overrides).unwrap_err();
            let m = e.message();
            assert!(m.contains(&format!("`{key}`")), "{key}: {m}");
            assert!(m.contains(expected), "{key}: {m}");
            assert!(!m.contains(value), "{key}: {m}");
        }
        let e =
            load_from_str::<Small>("retries: 300\nmode: strict\n", Format::Yaml, &[]).unwrap_err();
        assert_eq!(
            e.message(),
            "configuration key `retries`: invalid value: integer, expected u8"
        );
        let e = load_from_str::<VerifierConfig>(
            "leeway_secs = 5\nsecret = \"s3cr3t-unterminated\n",
            Format::Toml,
            &[],
        )
        .unwrap_err();
        assert!(e.message().starts_with("invalid TOML at line 2"), "{e}");
        assert!(!e.message().contains("s3cr3t"), "{e}");
        let e = load_from_str::<VerifierConfig>("a: 's3cr3t\n", Format::Yaml, &[]).unwrap_err();
        assert!(!e.message().contains("s3cr3t"), "{e}");
    }

    #[test]
    fn encrypted_values_open_under_their_key_or_stop_the_loading() {
        use crate::sealed::{Sealer, Unsealer};
        let doc: Value =
            serde_json::from_str(include_str!("../tests/fixtures/serieux/tokens.json")).unwrap();
        let password = doc["password"].as_str().unwrap();
        let crypt = doc["values"][1]["encrypted"].as_str().unwrap();
        let plain = doc["values"][1]["plain"].as_str().unwrap();
        let native_password = Secret::new("another long passphrase, for the native format");
        let sealer = Sealer::new(&native_password).unwrap();
        let hmac = "a shared secret of at least 32 bytes, sealed";
        let sealed = sealer
            .seal(&Value::from(hmac), "issuers.main.hmac_secret")
            .unwrap();
        let yaml = format!(
            "issuers:\n  main:\n    issuer: https://id.example.com\n    algorithms: [HS256]\n    hmac_secret: '{sealed}'\n"
        );
        let cfg: VerifierConfig = load_from_str_with(
            &yaml,
            Format::Yaml,
            &[],
            &Unsealer::with_password(native_password.clone()),
        )
        .unwrap();
        assert_eq!(
            cfg.issuers["main"].hmac_secret.as_ref().unwrap().expose(),
            hmac
        );

        // serieux's value from the environment, easy-oauth's password.
        let env = env_overrides(
            "P",
            [("P__ISSUERS__MAIN__HMAC_SECRET".to_owned(), crypt.to_owned())],
        );
        let cfg: VerifierConfig = load_from_str_with(
            &yaml,
            Format::Yaml,
            &env,
            &Unsealer::with_password(password),
        )
        .unwrap();
        assert_eq!(
            cfg.issuers["main"].hmac_secret.as_ref().unwrap().expose(),
            plain
        );

        // No password, a wrong one, a value moved to another key: refused, naming the key.
        for (yaml, unsealer, why) in [
            (yaml.clone(), Unsealer::none(), "no password"),
            (
                yaml.clone(),
                Unsealer::with_password("wrong"),
                "does not open",
            ),
            (
                yaml.replace("main:", "other:"),
                Unsealer::with_password(native_password),
                "another key",
            ),
        ] {
            let e = load_from_str_with::<VerifierConfig>(&yaml, Format::Yaml, &[], &unsealer)
                .unwrap_err();
            assert!(e.message().contains("hmac_secret`"), "{e}");
            assert!(e.message().contains(why), "{e}");
            assert!(!e.message().contains(&sealed[12..30]), "{e}");
        }

        // Read without portcullis' loaders, an encrypted value is still
        // never taken as the secret itself.
        let e = serde_yaml_ng::from_str::<VerifierConfig>(&yaml).unwrap_err();
        assert!(e.to_string().contains("encrypted"), "{e}");
        let built = crate::TokenVerifier::builder(VerifierConfig::new([(
            "main".to_owned(),
            IssuerConfig::new("https://id.example.com")
                .with_algorithms([Algorithm::HS256])
                .with_hmac_secret(crypt),
        )]))
        .build();
        let e = built.expect_err("an encrypted hmac_secret is refused");
        assert!(e.message().contains("`issuers.main.hmac_secret`"), "{e}");
        assert!(e.message().contains("encrypted"), "{e}");
    }

    #[test]
    fn relative_user_files_are_found_beside_the_configuration_file() {
        #[derive(Debug, Deserialize)]
        struct App {
            capabilities: crate::CapabilitiesConfig,
            store: Value,
            other: Value,
        }
        let dir = std::env::temp_dir().join(format!("portcullis-cfg-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("conf")).unwrap();
        let path = dir.join("conf").join("app.yaml");
        std::fs::write(
            &path,
            "capabilities:\n  user_file: caps.yaml\nstore: {kind: file, path: sub/caps.yaml}\n\
             other: {path: not-a-store.yaml, user_file: /abs/caps.yaml}\n",
        )
        .unwrap();
        let app: App = load_file_with(&path, &[], &Unsealer::none()).unwrap();
        let conf = dir.join("conf");
        assert_eq!(
            app.capabilities.user_file.as_deref(),
            Some(conf.join("caps.yaml").as_path())
        );
        assert_eq!(
            app.store["path"],
            conf.join("sub/caps.yaml").to_str().unwrap()
        );
        assert_eq!(app.other["path"], "not-a-store.yaml");
        assert_eq!(app.other["user_file"], "/abs/caps.yaml");
        // From the environment, a path stays relative to the working directory.
        let env = env_overrides(
            "P",
            [(
                "P__CAPABILITIES__USER_FILE".to_owned(),
                "env.yaml".to_owned(),
            )],
        );
        let app: App = load_file_with(&path, &env, &Unsealer::none()).unwrap();
        assert_eq!(
            app.capabilities.user_file.as_deref(),
            Some(Path::new("env.yaml"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn values_are_taken_out_of_messages() {
        for (message, shown) in [
            (
                "invalid type: integer `123`, expected a string",
                "invalid type: integer, expected a string",
            ),
            (
                r#"invalid type: string "a, expected b \" c", expected u64"#,
                "invalid type: string, expected u64",
            ),
            (
                "invalid value: string \"x\", expected a URL",
                "invalid value: string, expected a URL",
            ),
            (
                "unknown variant `abc`, expected `lenient` or `strict`",
                "unknown variant, expected `lenient` or `strict`",
            ),
            (
                "unknown field `audience`, expected one of `issuer`",
                "unknown field `audience`, expected one of `issuer`",
            ),
            ("missing field `issuers`", "missing field `issuers`"),
            (
                r#"bad "se\"cret" and `other` here"#,
                "bad (value not shown) and (value not shown) here",
            ),
        ] {
            assert_eq!(without_values(message), shown, "{message}");
        }
    }
}
