//! [`FromOidc`]: the common path. A service that accepts access tokens from
//! one OpenID Connect issuer builds its adapter's layer or middleware in one
//! expression, `AuthLayer::from_oidc(issuer).audience("my-api").build()?`,
//! the same in every adapter.

use std::fmt;
use std::marker::PhantomData;

use portcullis_capabilities::Capabilities;
use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::{Algorithm, Authenticator, CredentialsConfig, Error, TokenVerifier};

use crate::Gate;

/// Builds an adapter's layer or middleware (`L`) that accepts bearer access
/// tokens from one OpenID Connect issuer. Each adapter starts it with its
/// own `from_oidc(issuer)`.
///
/// The issuer's keys are found by discovery
/// (`{issuer}/.well-known/openid-configuration`, over HTTPS; plain HTTP only
/// on a loopback host) when the first token arrives, then refreshed in the
/// background; tokens must name the issuer exactly and one of the
/// [`audience`](Self::audience)s. Requests without credentials reach the
/// handlers as guests, whose extractors decide (a required caller answers
/// 401, an optional one sees none).
///
/// Everything else has the defaults of [`IssuerConfig`], [`VerifierConfig`]
/// and [`CredentialsConfig`]; [`issuer`](Self::issuer),
/// [`verifier`](Self::verifier) and [`credentials`](Self::credentials)
/// change any of them. A service configured from YAML, TOML or the
/// environment builds an [`Authenticator`] from its configuration instead.
#[must_use = "a builder does nothing until `build` is called"]
pub struct FromOidc<L> {
    issuer: IssuerConfig,
    verifier: VerifierConfig,
    credentials: CredentialsConfig,
    capabilities: Option<Capabilities>,
    #[cfg(feature = "policy")]
    policy: Option<portcullis_policy::Policy>,
    out: PhantomData<fn() -> L>,
}

impl<L> fmt::Debug for FromOidc<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromOidc")
            .field("issuer", &self.issuer)
            .field("verifier", &self.verifier)
            .field("credentials", &self.credentials)
            .field("capabilities", &self.capabilities.is_some())
            .finish_non_exhaustive()
    }
}

impl<L: From<Gate>> FromOidc<L> {
    /// Trusts `issuer` (its exact `iss`, e.g. `https://id.example.com`).
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: IssuerConfig::new(issuer),
            verifier: VerifierConfig::new([]),
            credentials: CredentialsConfig::default(),
            capabilities: None,
            #[cfg(feature = "policy")]
            policy: None,
            out: PhantomData,
        }
    }

    /// Accepts tokens whose `aud` names `audience` (this service's
    /// identifier at the provider). At least one is required; call again to
    /// accept several.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.issuer = self.issuer.with_audience(audience);
        self
    }

    /// Accepts only these signature algorithms (default: the asymmetric
    /// ones the issuer's keys declare).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.issuer = self.issuer.with_algorithms(algorithms);
        self
    }

    /// Changes the issuer's configuration: `change` gets it and returns
    /// the one to use (a claim for the user id, required claims, a JWKS URL
    /// instead of discovery, a revocation check, ...).
    pub fn issuer(mut self, change: impl FnOnce(IssuerConfig) -> IssuerConfig) -> Self {
        self.issuer = change(self.issuer);
        self
    }

    /// Changes the verifier's limits (leeway, token size, caches, key
    /// refresh).
    pub fn verifier(mut self, change: impl FnOnce(VerifierConfig) -> VerifierConfig) -> Self {
        self.verifier = change(self.verifier);
        self
    }

    /// Changes where credentials are found and what a request without them
    /// gets (the realm of challenges, a custom token header, ...).
    pub fn credentials(
        mut self,
        change: impl FnOnce(CredentialsConfig) -> CredentialsConfig,
    ) -> Self {
        self.credentials = change(self.credentials);
        self
    }

    /// Makes `capabilities` available to the capability guards and the
    /// management routes.
    pub fn capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = Some(capabilities);
        self
    }

    /// Asks `policy` about every request after authentication (feature
    /// `policy`; see `Gate::with_policy`).
    #[cfg(feature = "policy")]
    pub fn policy(mut self, policy: portcullis_policy::Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The layer or middleware.
    ///
    /// # Errors
    ///
    /// A configuration error (500 kind) naming what is wrong: no audience,
    /// an issuer that is not an `https` URL (`http` only on a loopback
    /// host), any check of [`TokenVerifier::new`], or (feature `policy`) a
    /// policy reading a header the authenticator reads tokens from. The provider is not
    /// contacted here: an unreachable provider makes requests answer 503,
    /// and the service starts.
    pub fn build(self) -> Result<L, Error> {
        if self.issuer.audiences.is_empty() {
            return Err(Error::config(
                "from_oidc: no audience; call `.audience(\"...\")` with this service's identifier at the provider",
            ));
        }
        let mut verifier = self.verifier;
        verifier.issuers.insert("oidc".to_owned(), self.issuer);
        let auth = Authenticator::new(TokenVerifier::new(verifier)?, self.credentials);
        let gate = Gate::new(auth);
        let gate = match self.capabilities {
            Some(capabilities) => gate.with_capabilities(capabilities),
            None => gate,
        };
        #[cfg(feature = "policy")]
        let gate = match self.policy {
            Some(policy) => gate.with_policy(policy)?,
            None => gate,
        };
        Ok(L::from(gate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(Gate);

    impl From<Gate> for Layer {
        fn from(gate: Gate) -> Self {
            Self(gate)
        }
    }

    #[test]
    fn an_audience_is_required() {
        let err = FromOidc::<Layer>::new("https://id.example.com")
            .build()
            .unwrap_err();
        assert_eq!(err.status(), 500);
        assert!(err.to_string().contains("audience"), "{err}");
    }

    #[test]
    fn the_provider_url_rule_holds() {
        let err = FromOidc::<Layer>::new("http://id.example.com")
            .audience("api")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
        FromOidc::<Layer>::new("http://127.0.0.1:9")
            .audience("api")
            .build()
            .unwrap();
    }

    #[test]
    fn the_issuer_is_trusted_with_the_audiences() {
        let layer = FromOidc::<Layer>::new("https://id.example.com")
            .audience("api")
            .audience("web")
            .build()
            .unwrap();
        let shown = format!("{:?}", layer.0.authenticator());
        assert!(shown.contains("https://id.example.com"), "{shown}");
    }
}
