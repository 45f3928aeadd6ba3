//! [`IssuerConfig`]: who the issuer is, its clients, scopes and lifetimes.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use portcullis_core::config::check_provider_url;
use portcullis_core::{Error, Secret};

use crate::limiter::AttemptLimits;
use crate::refresh::RefreshPolicy;

/// A grant type the token endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grant {
    /// `password`: the first-party credential exchange (see
    /// [`password`](crate::password) for why first-party only).
    Password,
    /// `client_credentials`: a machine's own token.
    ClientCredentials,
    /// `refresh_token`: a new access token from a refresh token.
    RefreshToken,
}

impl Grant {
    /// The `grant_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
        }
    }

    /// The grant named `value`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "password" => Some(Self::Password),
            "client_credentials" => Some(Self::ClientCredentials),
            "refresh_token" => Some(Self::RefreshToken),
            _ => None,
        }
    }
}

/// A client of the issuer.
#[derive(Clone)]
pub struct ClientConfig {
    /// The `client_id`.
    pub id: String,
    /// The secret of a confidential client; `None` for a public one (a
    /// first-party app that cannot keep a secret), which may not use
    /// `client_credentials` nor introspection.
    pub secret: Option<Secret>,
    /// The grants it may use.
    pub grants: Vec<Grant>,
    /// The scopes a `client_credentials` token may hold.
    pub scopes: Vec<String>,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("id", &self.id)
            .field("confidential", &self.secret.is_some())
            .field("grants", &self.grants)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl ClientConfig {
    /// A public first-party client using the password exchange and refresh.
    pub fn first_party(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            secret: None,
            grants: vec![Grant::Password, Grant::RefreshToken],
            scopes: Vec::new(),
        }
    }

    /// A confidential machine client with `scopes`, using `client_credentials`.
    pub fn machine(id: impl Into<String>, secret: impl Into<Secret>, scopes: &[&str]) -> Self {
        Self {
            id: id.into(),
            secret: Some(secret.into()),
            grants: vec![Grant::ClientCredentials],
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// Replaces the grants.
    #[must_use]
    pub fn with_grants(mut self, grants: &[Grant]) -> Self {
        self.grants = grants.to_vec();
        self
    }

    /// Sets a secret: the client becomes confidential.
    #[must_use]
    pub fn with_secret(mut self, secret: impl Into<Secret>) -> Self {
        self.secret = Some(secret.into());
        self
    }
}

/// The endpoints' paths, relative to the issuer URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The token endpoint (`TOKEN_URL`, default `/token`).
    pub token: String,
    /// RFC 7009 revocation (default `/revoke`).
    pub revocation: String,
    /// RFC 7662 introspection (default `/introspect`).
    pub introspection: String,
    /// The JWKS (default `/jwks`).
    pub jwks: String,
}

impl Default for Paths {
    fn default() -> Self {
        Self {
            token: "/token".to_owned(),
            revocation: "/revoke".to_owned(),
            introspection: "/introspect".to_owned(),
            jwks: "/jwks".to_owned(),
        }
    }
}

/// The issuer's configuration.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// The issuer identifier: its URL (`https`, or `http` on a loopback
    /// host), the tokens' `iss`; its endpoints live under it.
    pub issuer: String,
    /// The access tokens' `aud` (default: the issuer URL).
    pub audience: String,
    /// How long access tokens live (the seed's `EXPIRY`, default 1440 minutes).
    pub access_token_lifetime: Duration,
    /// The scopes and their descriptions (the seed's `AUTH_SCOPES`); `None`
    /// accepts any well-formed scope, as the seed does without the setting.
    pub scopes: Option<BTreeMap<String, String>>,
    /// The clients.
    pub clients: Vec<ClientConfig>,
    /// The client a request that names none is taken for (the seed's form
    /// carries no client); `None` refuses such requests (`invalid_client`).
    /// It must be one of `clients`.
    pub anonymous_client: Option<String>,
    /// Refresh-token lifetimes and windows.
    pub refresh: RefreshPolicy,
    /// Failed-login limits.
    pub attempts: AttemptLimits,
    /// The endpoints' paths.
    pub paths: Paths,
    /// The realm of `WWW-Authenticate: Basic` challenges.
    pub realm: String,
}

impl IssuerConfig {
    /// An issuer at `issuer` with the defaults and no client.
    pub fn new(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into().trim_end_matches('/').to_owned();
        Self {
            audience: issuer.clone(),
            issuer,
            access_token_lifetime: Duration::from_secs(1440 * 60),
            scopes: None,
            clients: Vec::new(),
            anonymous_client: None,
            refresh: RefreshPolicy::default(),
            attempts: AttemptLimits::default(),
            paths: Paths::default(),
            realm: "portcullis".to_owned(),
        }
    }

    /// Adds a client.
    #[must_use]
    pub fn with_client(mut self, client: ClientConfig) -> Self {
        self.clients.push(client);
        self
    }

    /// Sets the scopes (`AUTH_SCOPES`).
    #[must_use]
    pub fn with_scopes<'a>(mut self, scopes: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        self.scopes = Some(
            scopes
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        );
        self
    }

    /// The URL of an endpoint at `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// A configuration error naming the setting: an issuer that is not an
    /// HTTPS (or loopback HTTP) URL, a repeated client id, a client secret
    /// shorter than 32 bytes, an anonymous client that is not configured,
    /// a zero lifetime, a scope that is not an RFC 6749 scope token.
    pub fn validate(&self) -> Result<(), Error> {
        check_provider_url("issuer", &self.issuer, false)?;
        if self.issuer.contains('?') || self.issuer.contains('#') {
            return Err(Error::config("issuer: no query or fragment"));
        }
        if self.access_token_lifetime.is_zero() {
            return Err(Error::config(
                "EXPIRY: the access-token lifetime must not be zero",
            ));
        }
        let r = &self.refresh;
        if r.absolute_lifetime.is_zero() || r.idle_lifetime.is_zero() {
            return Err(Error::config("refresh: the lifetimes must not be zero"));
        }
        let mut ids = std::collections::HashSet::new();
        for client in &self.clients {
            if client.id.is_empty() || !ids.insert(client.id.as_str()) {
                return Err(Error::config(format!(
                    "clients: the client id `{}` is empty or repeated",
                    client.id
                )));
            }
            if let Some(secret) = &client.secret
                && secret.len() < 32
            {
                return Err(Error::config(format!(
                    "clients: the secret of `{}` has fewer than 32 bytes",
                    client.id
                )));
            }
            if client.secret.is_none() && client.grants.contains(&Grant::ClientCredentials) {
                return Err(Error::config(format!(
                    "clients: `{}` has no secret and cannot use client_credentials",
                    client.id
                )));
            }
        }
        if let Some(anonymous) = &self.anonymous_client
            && !self
                .clients
                .iter()
                .any(|c| &c.id == anonymous && c.secret.is_none())
        {
            return Err(Error::config(format!(
                "anonymous_client: `{anonymous}` is not a configured public client"
            )));
        }
        if let Some(scopes) = &self.scopes {
            for scope in scopes.keys() {
                if !crate::issuer::is_scope_token(scope) {
                    return Err(Error::config(format!(
                        "AUTH_SCOPES: `{scope}` is not a valid scope"
                    )));
                }
            }
        }
        Ok(())
    }
}
