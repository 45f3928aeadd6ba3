//! [`OidcConfig`]: easy-oauth's configuration file, accepted as is, plus what
//! a relying party also needs to know (`base_url`, `audience`) and
//! portcullis' own session and store settings.
//!
//! ```
//! use portcullis_core::config::{Format, env_overrides, load_from_str};
//! use portcullis_oidc::OidcConfig;
//!
//! # let mut key = [0u8; 32];
//! # aws_lc_rs::rand::fill(&mut key).unwrap();
//! # let key: String = key.iter().map(|b| format!("{b:02x}")).collect();
//! # // SAFETY: no other thread of this example reads the environment.
//! # unsafe { std::env::set_var("PORTCULLIS__SECRET_KEY", key) };
//! let yaml = r#"
//! server_metadata_url: https://accounts.google.com/.well-known/openid-configuration
//! ## secret_key: set PORTCULLIS__SECRET_KEY (e.g. `openssl rand -base64 48`)
//! client_id: "my-client"
//! client_secret: "from-the-console"
//! client_kwargs:
//!   scope: openid email
//!   prompt: select_account
//! capabilities:
//!   graph:
//!     read: []
//!     write: [read]
//!     user_management: []
//!   auto_admin: true
//!   default_capabilities: [read]
//! prefix: ""
//! base_url: https://app.example.com
//! "#;
//! let env = env_overrides("PORTCULLIS", std::env::vars());
//! let config: OidcConfig = load_from_str(yaml, Format::Yaml, &env)?;
//! config.validate()?;
//! assert_eq!(config.redirect_uri(), "https://app.example.com/auth");
//! # Ok::<(), portcullis_core::Error>(())
//! ```
//!
//! Secrets need not sit in the file: with
//! [`env_overrides`](portcullis_core::config::env_overrides) every key can
//! come from the environment (`PORTCULLIS__CLIENT_SECRET`, `PORTCULLIS__SECRET_KEY`).
//! They may also sit in the file encrypted, as easy-oauth's `serieux patch`
//! writes them (`~CRYPT~…`) or as `portcullis-seal` does (`~SEALED-v1~…`):
//! the loaders open them with the password in `PORTCULLIS_CONFIG_PASSWORD`
//! or `SERIEUX_PASSWORD`, and refuse to start, naming the key, when it is
//! missing or wrong (see [`portcullis_core::sealed`]). An encrypted value is
//! never used as a secret as it is.

use std::collections::BTreeMap;
use std::net::IpAddr;

use portcullis_capabilities::StoreConfig;
use portcullis_core::config::check_provider_url;
use portcullis_core::discovery::ClientAuthMethod;
use portcullis_core::secret::check_secret_key;
use portcullis_core::{CapabilitiesConfig, Error, Secret};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

/// Authorization request parameters the relying party sets itself; they may
/// not come from `client_kwargs`.
const RESERVED_PARAMS: [&str; 9] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "request",
];

/// The configuration of a [`RelyingParty`](crate::RelyingParty).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OidcConfig {
    /// The provider's discovery document,
    /// `{issuer}/.well-known/openid-configuration`.
    pub server_metadata_url: String,
    /// The provider's exact issuer; by default the metadata URL without
    /// `/.well-known/openid-configuration`. The discovery document must name
    /// the same issuer.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The secret from which the cookie key and the token key are derived
    /// (HKDF-SHA256; at least 32 bytes). Kept out of logs.
    pub secret_key: Secret,
    /// The client id registered at the provider.
    pub client_id: String,
    /// The client secret registered at the provider. Kept out of logs.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Authorization request parameters: `scope` (default `openid email`)
    /// and any other (`prompt`, `access_type`, ...), sent as given.
    #[serde(default)]
    pub client_kwargs: ClientKwargs,
    /// The capability graph and the user file.
    #[serde(default)]
    pub capabilities: CapabilitiesConfig,
    /// The path under which the login routes live (`""` or `/api/v1`).
    #[serde(default)]
    pub prefix: String,
    /// The public URL of the application (`https://app.example.com`): the
    /// callback is `{base_url}{prefix}/auth`. Over HTTPS, cookies are `Secure`
    /// with the `__Host-` prefix; plain HTTP is accepted for loopback hosts only.
    pub base_url: String,
    /// The audience of the provider's access tokens accepted as bearer
    /// tokens; without it only portcullis' own tokens are.
    #[serde(default)]
    pub audience: Option<String>,
    /// Where capabilities, revocations and server-side sessions live; by
    /// default the `capabilities.user_file` when one is set, else memory.
    /// A Redis store that holds no user yet is seeded once from the
    /// `capabilities.user_file`.
    #[serde(default)]
    pub store: Option<StoreConfig>,
    /// Login sessions.
    #[serde(default)]
    pub session: SessionConfig,
    /// The lifetime of tokens from `GET /token`, in seconds (default 30 days).
    #[serde(default)]
    pub user_token_ttl_secs: Option<u64>,
    /// The lifetime of service tokens, in seconds (default ten years).
    #[serde(default)]
    pub service_token_ttl_secs: Option<u64>,
    /// Cross-site request forgery protection for the application's own
    /// routes (default `true`): a request authenticated by the session
    /// cookie whose method is not `GET`, `HEAD` or `OPTIONS` must come from
    /// `base_url`'s origin (`Sec-Fetch-Site: same-origin`, else an `Origin`,
    /// else a `Referer` on that origin), or it is refused with 403 before
    /// it reaches any handler. Turn it off only for an application that has
    /// its own defence (CSRF tokens); portcullis' own state-changing routes
    /// (capability management, `/token/revoke`, `POST /logout`) keep the
    /// check whatever this says. Requests authenticated by a bearer token
    /// are never concerned.
    #[serde(default = "defaults::yes")]
    pub csrf_protection: bool,
    /// Accepts `http://` provider URLs on hosts that are not loopback (the
    /// discovery document and the token, userinfo, end-session and key
    /// endpoints it names). Off by default: tokens and keys travel over
    /// HTTPS only. For closed test networks alone.
    #[serde(default)]
    pub danger_allow_plain_http: bool,
    /// Uses the provider's `email` when its tokens and userinfo carry no
    /// `email_verified` claim at all (default `false`). An address the
    /// provider does not vouch for never selects stored capabilities: the
    /// user is then known by `sub`. Set it only for a provider that issues
    /// verified addresses alone and never says so; see
    /// [`vouched_email`](portcullis_core::principal::vouched_email).
    #[serde(default)]
    pub trust_email_without_verified_claim: bool,
    /// **Development only: every request is this user.** easy-oauth's
    /// `force_user` (the configuration key `force_user` is accepted for
    /// migration): no credential is read, no provider is contacted, `/login`
    /// and `/auth` send the browser straight back, `/logout` to `/`, and
    /// `/token` answers `{"refresh_token": "XXX"}` as easy-oauth does (any
    /// bearer token then works, since none is read). Refused unless
    /// `base_url` is a loopback URL (`http://127.0.0.1:8000`,
    /// `http://localhost:3000`), and a warning is logged at every start.
    #[serde(default, alias = "force_user", skip_serializing_if = "Option::is_none")]
    pub dangerous_force_user: Option<ForcedUser>,
    /// How this client authenticates at the provider's token endpoint
    /// with its secret: `client_secret_basic` or `client_secret_post`.
    /// Without it, the provider's discovery document decides (basic when it
    /// lists `client_secret_basic` or lists no methods, as RFC 8414 says;
    /// post when it lists only that). Set it for a provider whose document
    /// is silent but which wants the secret in the body (easy-oauth's mock
    /// provider gives an ID token without `aud` under HTTP Basic, which is
    /// refused). When the document lists methods without this one, a
    /// warning says so at the first login.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<ClientAuthMethod>,
}

/// The user of [`OidcConfig::dangerous_force_user`] (easy-oauth's
/// `force_user: {email: ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ForcedUser {
    /// The user's email, which selects its capabilities.
    pub email: String,
    /// The user id (default: the email, as easy-oauth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

impl ForcedUser {
    /// The user known by `email`.
    pub fn new(email: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            sub: None,
        }
    }
}

/// easy-oauth's `client_kwargs`: the scope and extra authorization parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientKwargs {
    /// Space-separated scopes; `openid` is always requested.
    #[serde(default = "default_scope")]
    pub scope: String,
    /// Any other authorization request parameter (`prompt: select_account`).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn default_scope() -> String {
    "openid email".to_owned()
}

impl Default for ClientKwargs {
    fn default() -> Self {
        Self {
            scope: default_scope(),
            extra: BTreeMap::new(),
        }
    }
}

/// Where a login session is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SessionStorage {
    /// In the session cookie itself, encrypted (the default). A session
    /// too large for a cookie is refused at login, naming this setting.
    #[default]
    Cookie,
    /// In the store (memory, or Redis for several replicas); the cookie
    /// carries only an encrypted random id.
    Server,
}

/// Login session settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Cookie (default) or server-side sessions.
    #[serde(default)]
    pub storage: SessionStorage,
    /// How long a login lasts, in seconds (default 12 hours). Refreshing the
    /// provider's tokens does not extend it.
    #[serde(default = "defaults::max_age")]
    pub max_age_secs: u64,
    /// How long a started login may take, in seconds (default 10 minutes).
    #[serde(default = "defaults::login_timeout")]
    pub login_timeout_secs: u64,
    /// Access tokens this close to expiry are refreshed, in seconds (default 30).
    #[serde(default = "defaults::refresh_leeway")]
    pub refresh_leeway_secs: u64,
    /// How often a login's refresh token is checked with the provider while
    /// user tokens minted from it (`/token`) are in use, in seconds (default
    /// one hour, as easy-oauth): a user the provider disabled, or whose
    /// refresh token it revoked, loses those tokens (401) and the session
    /// within this interval. Logins for which the provider gave no refresh
    /// token are not checked: their user tokens live their full lifetime.
    #[serde(default = "defaults::recheck_interval")]
    pub recheck_interval_secs: u64,
    /// How long past a due check the last good one keeps serving while the
    /// provider cannot be reached, in seconds (default 30 minutes); then
    /// the tokens of the login are answered 503 until the provider answers.
    #[serde(default = "defaults::recheck_stale")]
    pub recheck_stale_secs: u64,
}

mod defaults {
    pub(super) fn yes() -> bool {
        true
    }
    pub(super) fn max_age() -> u64 {
        12 * 3600
    }
    pub(super) fn login_timeout() -> u64 {
        600
    }
    pub(super) fn refresh_leeway() -> u64 {
        30
    }
    pub(super) fn recheck_interval() -> u64 {
        3600
    }
    pub(super) fn recheck_stale() -> u64 {
        1800
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            storage: SessionStorage::Cookie,
            max_age_secs: defaults::max_age(),
            login_timeout_secs: defaults::login_timeout(),
            refresh_leeway_secs: defaults::refresh_leeway(),
            recheck_interval_secs: defaults::recheck_interval(),
            recheck_stale_secs: defaults::recheck_stale(),
        }
    }
}

/// The suffix of discovery URLs.
const WELL_KNOWN: &str = "/.well-known/openid-configuration";

impl OidcConfig {
    /// A configuration with the required values; everything else at its default.
    pub fn new(
        server_metadata_url: impl Into<String>,
        secret_key: impl Into<Secret>,
        client_id: impl Into<String>,
        base_url: impl Into<String>,
    ) -> Self {
        Self {
            server_metadata_url: server_metadata_url.into(),
            issuer: None,
            secret_key: secret_key.into(),
            client_id: client_id.into(),
            client_secret: None,
            client_kwargs: ClientKwargs::default(),
            capabilities: CapabilitiesConfig::default(),
            prefix: String::new(),
            base_url: base_url.into(),
            audience: None,
            store: None,
            session: SessionConfig::default(),
            user_token_ttl_secs: None,
            service_token_ttl_secs: None,
            csrf_protection: true,
            danger_allow_plain_http: false,
            trust_email_without_verified_claim: false,
            dangerous_force_user: None,
            token_endpoint_auth_method: None,
        }
    }

    /// Sets [`dangerous_force_user`](Self::dangerous_force_user): every
    /// request is `user` (development only; loopback `base_url` only).
    pub fn with_dangerous_force_user(mut self, user: ForcedUser) -> Self {
        self.dangerous_force_user = Some(user);
        self
    }

    /// Sets the client secret.
    pub fn with_client_secret(mut self, secret: impl Into<Secret>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// Sets the capabilities.
    pub fn with_capabilities(mut self, capabilities: CapabilitiesConfig) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Sets the route prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the audience of provider access tokens accepted as bearer tokens.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Sets the store.
    pub fn with_store(mut self, store: StoreConfig) -> Self {
        self.store = Some(store);
        self
    }

    /// Sets the session settings.
    pub fn with_session(mut self, session: SessionConfig) -> Self {
        self.session = session;
        self
    }

    /// Sets the space-separated scopes requested.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.client_kwargs.scope = scope.into();
        self
    }

    /// The callback URL: `{base_url}{prefix}/auth`.
    pub fn redirect_uri(&self) -> String {
        format!(
            "{}{}/auth",
            self.base_url.trim_end_matches('/'),
            self.prefix
        )
    }

    /// Where the provider sends the browser after logout: `{base_url}/`.
    pub fn post_logout_redirect_uri(&self) -> String {
        format!("{}/", self.base_url.trim_end_matches('/'))
    }

    /// The issuer expected in the discovery document and in tokens.
    pub fn expected_issuer(&self) -> Result<String, Error> {
        if let Some(issuer) = &self.issuer {
            return Ok(issuer.clone());
        }
        self.server_metadata_url
            .strip_suffix(WELL_KNOWN)
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::config(format!(
                    "configuration key `issuer`: required when `server_metadata_url` does not end with `{WELL_KNOWN}`"
                ))
            })
    }

    /// Whether the site is served over HTTPS (cookies are then `Secure`, `__Host-`).
    pub fn is_https(&self) -> bool {
        self.base_url.starts_with("https://")
    }

    /// The store configuration in force: `store`, else the user file, else memory.
    pub fn store_config(&self) -> StoreConfig {
        if let Some(store) = &self.store {
            return store.clone();
        }
        match &self.capabilities.user_file {
            Some(path) => StoreConfig::File {
                path: path.clone(),
                reload_interval_ms: 1000,
            },
            None => StoreConfig::Memory,
        }
    }

    /// Checks every value; the error names the configuration key.
    ///
    /// # Errors
    ///
    /// A configuration error for a bad URL, a `base_url` over plain HTTP on a
    /// host that is not loopback, a `server_metadata_url` that
    /// [`check_provider_url`] refuses (plain HTTP off loopback unless
    /// `danger_allow_plain_http`), a prefix that is not `""` or `/name`, a
    /// secret key that [`check_secret_key`] refuses (short, published or a
    /// placeholder), a `client_secret` that is a visible placeholder
    /// (`<CLIENT_SECRET>`, `change-me`), an empty client id, an
    /// authorization parameter the relying party sets itself, or zero
    /// durations.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |key: &str, why: String| {
            Err(Error::config(format!("configuration key `{key}`: {why}")))
        };
        check_provider_url(
            "server_metadata_url",
            &self.server_metadata_url,
            self.danger_allow_plain_http,
        )?;
        self.expected_issuer()?;
        let base = match Url::parse(&self.base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            _ => return bad("base_url", "an http(s) URL is required".to_owned()),
        };
        if base.query().is_some() || base.fragment().is_some() || base.path() != "/" {
            return bad(
                "base_url",
                "scheme, host and port only (no path, query or fragment)".to_owned(),
            );
        }
        if base.scheme() == "http" && !is_loopback(&base) {
            return bad(
                "base_url",
                "plain HTTP is accepted for loopback hosts only; use https".to_owned(),
            );
        }
        if let Some(forced) = &self.dangerous_force_user {
            if !is_loopback(&base) {
                return bad(
                    "force_user",
                    "every request would be this user with no login: accepted only for a \
                     development server whose `base_url` is a loopback URL \
                     (http://127.0.0.1:8000, http://localhost:3000)"
                        .to_owned(),
                );
            }
            if forced.email.is_empty() || forced.sub.as_deref() == Some("") {
                return bad("force_user.email", "must not be empty".to_owned());
            }
        }
        if !self.prefix.is_empty()
            && (!self.prefix.starts_with('/')
                || self.prefix.ends_with('/')
                || self.prefix.contains("//")
                || self.prefix.contains(['?', '#', '\\', ' ']))
        {
            return bad(
                "prefix",
                "`\"\"` or a path like `/api/v1` is required".to_owned(),
            );
        }
        check_secret_key("secret_key", &self.secret_key)?;
        if self.client_id.is_empty() {
            return bad("client_id", "must not be empty".to_owned());
        }
        if let Some(secret) = &self.client_secret
            && portcullis_core::sealed::is_sealed(secret.expose())
        {
            return bad(
                "client_secret",
                "the value is encrypted and was not decrypted; load the configuration with \
                 the password in PORTCULLIS_CONFIG_PASSWORD (or SERIEUX_PASSWORD)"
                    .to_owned(),
            );
        }
        if portcullis_core::sealed::is_sealed(&self.client_id) {
            return bad(
                "client_id",
                "the value is encrypted and was not decrypted; load the configuration with \
                 the password in PORTCULLIS_CONFIG_PASSWORD (or SERIEUX_PASSWORD)"
                    .to_owned(),
            );
        }
        if let Some(secret) = &self.client_secret
            && portcullis_core::secret::is_placeholder(secret.expose())
        {
            return bad(
                "client_secret",
                "the value is a placeholder; set the client secret the provider issued \
                 (e.g. in PORTCULLIS__CLIENT_SECRET)"
                    .to_owned(),
            );
        }
        for name in self.client_kwargs.extra.keys() {
            if RESERVED_PARAMS.contains(&name.as_str()) {
                return bad(
                    &format!("client_kwargs.{name}"),
                    "the relying party sets this parameter itself".to_owned(),
                );
            }
        }
        for (name, value) in &self.client_kwargs.extra {
            if value.is_object() || value.is_array() || value.is_null() {
                return bad(
                    &format!("client_kwargs.{name}"),
                    "a text, number or boolean is required".to_owned(),
                );
            }
        }
        let s = &self.session;
        if s.max_age_secs == 0 || s.login_timeout_secs == 0 || s.recheck_interval_secs == 0 {
            return bad("session", "durations must be positive".to_owned());
        }
        Ok(())
    }
}

/// Whether the base URL is on the user's own machine, where plain HTTP is
/// accepted for development. Browsers resolve `*.localhost` to loopback
/// (RFC 6761), so those count here; provider URLs, fetched by the server,
/// follow core's stricter [`is_loopback`](portcullis_core::config::is_loopback).
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random secret key, as an operator would generate one.
    fn random_key() -> String {
        crate::seal::random_token(32).unwrap()
    }

    fn base() -> OidcConfig {
        OidcConfig::new(
            "https://id.example.com/.well-known/openid-configuration",
            random_key(),
            "client",
            "https://app.example.com",
        )
    }

    #[test]
    fn defaults_and_derived_values() {
        let c = base().with_prefix("/api");
        c.validate().unwrap();
        assert_eq!(c.redirect_uri(), "https://app.example.com/api/auth");
        assert_eq!(c.expected_issuer().unwrap(), "https://id.example.com");
        assert!(c.is_https());
        assert_eq!(c.store_config(), StoreConfig::Memory);
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases: Vec<(OidcConfig, &str)> = vec![
            (
                OidcConfig {
                    base_url: "http://app.example.com".into(),
                    ..base()
                },
                "base_url",
            ),
            (
                OidcConfig {
                    base_url: "https://app.example.com/x".into(),
                    ..base()
                },
                "base_url",
            ),
            (
                OidcConfig {
                    base_url: "ftp://x".into(),
                    ..base()
                },
                "base_url",
            ),
            (base().with_prefix("api"), "prefix"),
            (base().with_prefix("/api/"), "prefix"),
            (
                OidcConfig {
                    secret_key: "short".into(),
                    ..base()
                },
                "secret_key",
            ),
            (
                OidcConfig {
                    secret_key: "0123456789abcdef0123456789abcdef".into(),
                    ..base()
                },
                "secret_key",
            ),
            (
                OidcConfig {
                    secret_key: "change-me-to-a-random-value-of-32-bytes".into(),
                    ..base()
                },
                "secret_key",
            ),
            (
                base().with_client_secret("<CLIENT_SECRET>"),
                "client_secret",
            ),
            (base().with_client_secret("change-me"), "client_secret"),
            (
                base().with_client_secret("~CRYPT~gAAAAABnot-decrypted"),
                "client_secret",
            ),
            (
                OidcConfig {
                    client_id: "~SEALED-v1~bm90LWRlY3J5cHRlZA".into(),
                    ..base()
                },
                "client_id",
            ),
            (
                base().with_client_secret("please-CHANGE_ME-now"),
                "client_secret",
            ),
            (
                OidcConfig {
                    server_metadata_url: "http://id.example.com/.well-known/openid-configuration"
                        .into(),
                    ..base()
                },
                "server_metadata_url",
            ),
            (
                OidcConfig {
                    server_metadata_url: "ftp://id.example.com/.well-known/openid-configuration"
                        .into(),
                    danger_allow_plain_http: true,
                    ..base()
                },
                "server_metadata_url",
            ),
            (
                OidcConfig {
                    client_id: String::new(),
                    ..base()
                },
                "client_id",
            ),
            (
                OidcConfig {
                    server_metadata_url: "not a url".into(),
                    ..base()
                },
                "server_metadata_url",
            ),
            (
                OidcConfig {
                    server_metadata_url: "https://id.example.com/meta".into(),
                    ..base()
                },
                "issuer",
            ),
        ];
        for (config, key) in cases {
            let e = config.validate().unwrap_err();
            assert!(
                e.message().contains(&format!("`{key}")),
                "{key}: {}",
                e.message()
            );
        }
        base()
            .with_client_secret("a real secret from the console")
            .validate()
            .unwrap();
        let plain = OidcConfig {
            server_metadata_url: "http://id.test/.well-known/openid-configuration".into(),
            danger_allow_plain_http: true,
            ..base()
        };
        plain.validate().unwrap();
        let loopback = OidcConfig {
            server_metadata_url: "http://127.0.0.1:9/.well-known/openid-configuration".into(),
            ..base()
        };
        loopback.validate().unwrap();
        let mut c = base();
        c.client_kwargs
            .extra
            .insert("redirect_uri".into(), Value::from("https://evil"));
        assert!(
            c.validate()
                .unwrap_err()
                .message()
                .contains("client_kwargs.redirect_uri")
        );
    }

    #[test]
    fn easy_oauth_files_load_and_secrets_come_from_the_environment() {
        use portcullis_core::config::{Format, env_overrides, load_from_str};
        let key = random_key();
        let yaml = r#"
server_metadata_url: https://id.example.com/.well-known/openid-configuration
secret_key: "<set PORTCULLIS__SECRET_KEY>"
client_id: my-client
client_kwargs:
  scope: openid email
  prompt: select_account
  max_age: 3600
capabilities:
  graph: {read: [], write: [read], user_management: []}
  auto_admin: true
  user_file: caps.yaml
  default_capabilities: [read]
  guest_capabilities: []
prefix: ""
base_url: https://app.example.com
"#;
        let env = env_overrides(
            "PORTCULLIS",
            [
                (
                    "PORTCULLIS__CLIENT_SECRET".to_owned(),
                    "from-the-env".to_owned(),
                ),
                ("PORTCULLIS__SECRET_KEY".to_owned(), key.clone()),
            ],
        );
        let file_only: OidcConfig = load_from_str(yaml, Format::Yaml, &[]).unwrap();
        assert!(
            file_only
                .validate()
                .unwrap_err()
                .message()
                .contains("`secret_key`"),
            "the file's placeholder is refused"
        );
        let c: OidcConfig = load_from_str(yaml, Format::Yaml, &env).unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.client_secret.as_ref().map(Secret::expose),
            Some("from-the-env")
        );
        assert_eq!(c.secret_key.expose(), key);
        assert!(c.csrf_protection, "on by default");
        assert!(!c.danger_allow_plain_http, "off by default");
        assert_eq!(c.client_kwargs.extra["prompt"], "select_account");
        assert_eq!(c.client_kwargs.extra["max_age"], 3600);
        assert!(matches!(c.store_config(), StoreConfig::File { .. }));
        assert!(
            !format!("{c:?}").contains("from-the-env"),
            "secrets stay out of Debug"
        );
        let unknown = load_from_str::<OidcConfig>(
            &format!("{yaml}\nclient_secert: typo\n"),
            Format::Yaml,
            &[],
        );
        assert!(unknown.unwrap_err().message().contains("client_secert"));
    }

    #[test]
    fn force_user_is_refused_off_loopback() {
        use portcullis_core::config::{Format, load_from_str};
        let yaml = format!(
            "server_metadata_url: https://id.example.com/.well-known/openid-configuration\n\
             secret_key: {}\nclient_id: c\nbase_url: http://127.0.0.1:8000\n\
             force_user: {{email: dev@example.com}}\n",
            random_key()
        );
        let c: OidcConfig = load_from_str(&yaml, Format::Yaml, &[]).unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.dangerous_force_user,
            Some(ForcedUser::new("dev@example.com"))
        );
        for base_url in ["https://app.example.com", "https://127.0.0.1.example.com"] {
            let c = OidcConfig {
                base_url: base_url.into(),
                ..c.clone()
            };
            let e = c.validate().unwrap_err();
            assert!(e.message().contains("`force_user`"), "{e}");
            assert!(e.message().contains("loopback"), "{e}");
        }
        let e = base()
            .with_dangerous_force_user(ForcedUser::new(""))
            .validate()
            .unwrap_err();
        assert!(e.message().contains("`force_user"), "{e}");
        // The native key name is accepted too.
        let native = yaml.replace("force_user:", "dangerous_force_user:");
        let c: OidcConfig = load_from_str(&native, Format::Yaml, &[]).unwrap();
        assert!(c.dangerous_force_user.is_some());
    }

    #[test]
    fn plain_http_on_loopback_is_accepted() {
        for url in [
            "http://127.0.0.1:8000",
            "http://localhost:3000",
            "http://[::1]:80",
        ] {
            let c = OidcConfig {
                base_url: url.into(),
                ..base()
            };
            c.validate().unwrap();
            assert!(!c.is_https());
        }
    }
}
