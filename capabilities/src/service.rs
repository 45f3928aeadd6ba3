//! [`Capabilities`]: what a caller may do, the management operations of
//! easy-oauth's `/manage_capabilities` routes, and service and API tokens.
//!
//! Every operation takes the verified caller (or none, for a guest) and, for
//! the management operations, the raw request body; it answers a
//! [`Reply`] (status, JSON body, [`JSON_HEADERS`](portcullis_core::reply::JSON_HEADERS))
//! or an [`Error`] that knows its HTTP form. Web adapters only copy these out.
//!
//! This file holds the service and its authorization (`of`, `require`);
//! `service/management.rs` the management operations and their grant rules;
//! `service/tokens.rs` token issuance and revocation.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::hkdf;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::clock::{self, SharedClock};
use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::mint::SigningKey;
use portcullis_core::reply::Reply;
use portcullis_core::revocation::{RevocationCheck, RevocationFuture};
use portcullis_core::secret::check_secret_key;
use portcullis_core::{
    Algorithm, Authenticated, CapSet, CapabilitiesConfig, CapabilityGraph, Error, Principal,
    Secret, TokenRejection, TokenVerifier,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::store::{CapabilityStore, Change, ChangeCheck, RevocationStore};

mod management;
mod tokens;

pub use tokens::StoreRevocationCheck;
use tokens::{TokenClaims, derive_key};

/// The `iss` and `aud` of the tokens [`Capabilities`] issues.
pub const SERVICE_ISSUER: &str = "urn:portcullis:service";

/// The claim of a user token that names the provider login it was minted
/// from (see [`Capabilities::issue_user_token_for_login`]): the relying
/// party checks that login with the provider before accepting the token.
pub const LOGIN_CLAIM: &str = "portcullis_login";

/// The HKDF `info` that derives the token signing key from the secret key.
const KDF_INFO: &[u8] = b"portcullis service tokens v1";

/// The lifetime of service and API tokens when none is configured: ten years.
pub const DEFAULT_SERVICE_TOKEN_TTL_SECS: u64 = 10 * 365 * 24 * 3600;

/// The lifetime of user tokens (`GET /token`) when none is configured: thirty days.
pub const DEFAULT_USER_TOKEN_TTL_SECS: u64 = 30 * 24 * 3600;

/// The shortest secret key accepted, in bytes (core's
/// [`MIN_SECRET_KEY_BYTES`](portcullis_core::secret::MIN_SECRET_KEY_BYTES)).
pub const MIN_SECRET_KEY_LEN: usize = portcullis_core::secret::MIN_SECRET_KEY_BYTES;

/// The `kind` claim of user, service and API tokens.
const KIND_USER: &str = "user";
const KIND_SERVICE: &str = "service";
const KIND_API: &str = "api";

/// The suffix that marks a service account.
pub const SERVICE_ACCOUNT_SUFFIX: &str = "@service";

/// The most a management request body may hold (`add`, `remove`, `set`,
/// `revoke`): a JSON object naming a user and a few capabilities, or a
/// token. Adapters refuse larger bodies (413) before buffering them.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Builds a [`Capabilities`] service. Start with [`Capabilities::builder`].
#[derive(Debug)]
pub struct CapabilitiesBuilder {
    config: CapabilitiesConfig,
    store: Arc<dyn CapabilityStore>,
    revocations: Option<Arc<dyn RevocationStore>>,
    secret_key: Secret,
    ttl_secs: u64,
    user_ttl_secs: u64,
    clock: SharedClock,
}

impl CapabilitiesBuilder {
    /// Records token revocations in `store` (needed by [`Capabilities::revoke`]).
    pub fn revocations(mut self, store: Arc<dyn RevocationStore>) -> Self {
        self.revocations = Some(store);
        self
    }

    /// Sets the revocation store, or none.
    pub fn revocations_opt(mut self, store: Option<Arc<dyn RevocationStore>>) -> Self {
        self.revocations = store;
        self
    }

    /// Sets the lifetime of issued service tokens, in seconds
    /// (default [`DEFAULT_SERVICE_TOKEN_TTL_SECS`]); also the longest an API token may live.
    pub fn service_token_ttl_secs(mut self, secs: u64) -> Self {
        self.ttl_secs = secs;
        self
    }

    /// Sets the lifetime of user tokens issued by
    /// [`Capabilities::issue_user_token`], in seconds (default
    /// [`DEFAULT_USER_TOKEN_TTL_SECS`]).
    pub fn user_token_ttl_secs(mut self, secs: u64) -> Self {
        self.user_ttl_secs = secs;
        self
    }

    /// Reads time from `clock` (tests share a manual clock with the verifier).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the graph and the secret key and builds the service. Each
    /// capability a guard of the program requires
    /// ([`CapabilityGraph::unknown_guards`]) that the graph lacks is logged
    /// as an error here, at start-up.
    ///
    /// # Errors
    ///
    /// A configuration error for an invalid graph, a secret key that
    /// [`check_secret_key`] refuses (shorter than [`MIN_SECRET_KEY_LEN`]
    /// bytes, printed in portcullis' documentation, or a placeholder; the
    /// message names `secret_key`, never the value), or a zero token lifetime.
    pub fn build(self) -> Result<Capabilities, Error> {
        let graph = CapabilityGraph::new(&self.config)?;
        let graph_document = graph_document(&self.config);
        for unknown in graph.unknown_guards() {
            tracing::error!(
                capability = unknown.name,
                declared_in = unknown.module,
                "a guard requires a capability that `capabilities.graph` does not declare: \
                 the routes it guards will answer 500 until it is added to the graph"
            );
        }
        check_secret_key("secret_key", &self.secret_key)?;
        if self.ttl_secs == 0 {
            return Err(Error::config(
                "configuration key `service_token_ttl_secs`: must be positive",
            ));
        }
        if self.user_ttl_secs == 0 {
            return Err(Error::config(
                "configuration key `user_token_ttl_secs`: must be positive",
            ));
        }
        let derived = derive_key(self.secret_key.expose().as_bytes())?;
        let signing_key =
            SigningKey::from_secret(Algorithm::HS256, "service-v1", derived.as_bytes())?;
        let issuer_config = IssuerConfig::new(SERVICE_ISSUER)
            .with_hmac_secret(Secret::new(derived.as_str()))
            .with_algorithms([Algorithm::HS256])
            .with_audience(SERVICE_ISSUER)
            // The `email` of a user token is the key portcullis itself
            // looked the user up by: vouched for without `email_verified`.
            .with_trust_email_without_verified_claim(true);
        // The service's own verifier (`revoke` reads tokens with it) asks no
        // revocation check, so that revoking a token twice is no error; the
        // issuer handed to applications asks it on every verification.
        let verifier = TokenVerifier::builder(VerifierConfig::new([(
            "service".to_owned(),
            issuer_config.clone(),
        )]))
        .clock(Arc::clone(&self.clock))
        .build()?;
        let public_issuer = match &self.revocations {
            Some(store) => issuer_config
                .with_revocations(Arc::new(StoreRevocationCheck::new(Arc::clone(store)))),
            None => issuer_config,
        };
        Ok(Capabilities {
            inner: Arc::new(Inner {
                graph,
                graph_document,
                store: self.store,
                revocations: self.revocations,
                signing_key,
                issuer_config: public_issuer,
                verifier,
                ttl_secs: self.ttl_secs,
                user_ttl_secs: self.user_ttl_secs,
                clock: self.clock,
            }),
        })
    }
}

/// The graph as easy-oauth's full listing shows it: each capability with
/// the ones it implies directly, and with `auto_admin` an `admin` implying
/// every declared capability (unless the graph declares its own `admin`).
fn graph_document(config: &CapabilitiesConfig) -> BTreeMap<String, Vec<String>> {
    let mut doc = config.graph.clone();
    if config.auto_admin && !doc.contains_key("admin") {
        let all: Vec<String> = doc.keys().cloned().collect();
        doc.insert("admin".to_owned(), all);
    }
    doc
}

struct Inner {
    graph: CapabilityGraph,
    /// The configured graph, for the full listing.
    graph_document: BTreeMap<String, Vec<String>>,
    store: Arc<dyn CapabilityStore>,
    revocations: Option<Arc<dyn RevocationStore>>,
    signing_key: SigningKey,
    /// The issuer applications add to their verifier (with the revocation
    /// check when a revocation store is configured).
    issuer_config: IssuerConfig,
    /// Verifies this service's tokens for `revoke`, without revocation check.
    verifier: TokenVerifier,
    ttl_secs: u64,
    user_ttl_secs: u64,
    clock: SharedClock,
}

/// Capabilities of callers, their management, and service and API tokens.
///
/// Cheap to clone (one `Arc`). Built from the capability graph, a
/// [`CapabilityStore`], an optional [`RevocationStore`] and a secret key from
/// which the token signing key is derived.
///
/// - A guest holds the graph's guest capabilities.
/// - A user (keyed by email, else user id) holds the closure of the names
///   stored for them and of those `user_overrides` pins to them, plus the
///   defaults. A provider login whose key names a
///   service account (`…@service`) holds the defaults only.
/// - A service token (`iss` [`SERVICE_ISSUER`], `sub` an `…@service` account)
///   holds its snapshot intersected with what the account holds now and with
///   what its issuer (`issued_by`, the manager who minted it) holds now:
///   removing a capability from either revokes it at once (on another
///   replica sharing Redis, within its cache's staleness bound), adding one needs
///   a new token. A service token without `issued_by` (minted before issuers
///   were recorded) is refused: 401 `MissingClaim`.
/// - An API token holds its snapshot intersected with what its issuer
///   (`issued_by`) holds now.
/// - A user token (`GET /token` for a logged-in user) holds what its user
///   holds now, like the user's own provider login.
///
/// No path gives a caller a capability it does not hold, directly or through
/// a token it mints: a manager grants, withdraws and puts into tokens only
/// what it holds, and a caller authenticated by a service or API token mints
/// no token at all (403). Revoked tokens are refused where they are verified:
/// see [`service_issuer_config`](Self::service_issuer_config).
#[derive(Clone)]
pub struct Capabilities {
    inner: Arc<Inner>,
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capabilities")
            .field("graph", &self.inner.graph)
            .field("store", &self.inner.store)
            .field("revocations", &self.inner.revocations)
            .field("ttl_secs", &self.inner.ttl_secs)
            .finish_non_exhaustive()
    }
}

/// The key a user's capabilities are stored under: the email, else the user id.
pub fn user_key(principal: &Principal) -> &str {
    principal.email().unwrap_or(principal.user_id())
}

impl Capabilities {
    /// A builder for the service over `config`'s graph, `store`, and a
    /// secret key of at least [`MIN_SECRET_KEY_LEN`] bytes.
    pub fn builder(
        config: CapabilitiesConfig,
        store: Arc<dyn CapabilityStore>,
        secret_key: Secret,
    ) -> CapabilitiesBuilder {
        CapabilitiesBuilder {
            config,
            store,
            revocations: None,
            secret_key,
            ttl_secs: DEFAULT_SERVICE_TOKEN_TTL_SECS,
            user_ttl_secs: DEFAULT_USER_TOKEN_TTL_SECS,
            clock: clock::system(),
        }
    }

    /// The revocation store, when one is configured: other one-time values
    /// (login transactions, ended sessions) are recorded there too, so that
    /// every replica sees them.
    pub fn revocations(&self) -> Option<&Arc<dyn RevocationStore>> {
        self.inner.revocations.as_ref()
    }

    /// How long the user tokens of [`issue_user_token`](Self::issue_user_token)
    /// live, in seconds.
    pub fn user_token_ttl_secs(&self) -> u64 {
        self.inner.user_ttl_secs
    }

    /// The clock the service reads time from.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The capability graph.
    pub fn graph(&self) -> &CapabilityGraph {
        &self.inner.graph
    }

    /// Whether the graph declares `user_management`: the add, remove and set
    /// routes exist only then.
    pub fn management_enabled(&self) -> bool {
        self.inner.graph.user_management().is_some()
    }

    /// The issuer of service, API and user tokens, to add to the
    /// application's `VerifierConfig` so that its authenticator accepts them.
    ///
    /// When a revocation store is configured, the issuer carries a
    /// [`StoreRevocationCheck`] over it: the verifier refuses a revoked token
    /// (401 `revoked`) on every verification, cached ones included, so every
    /// route refuses it, also those that only need a caller. Without a
    /// revocation store, tokens cannot be revoked.
    pub fn service_issuer_config(&self) -> IssuerConfig {
        self.inner.issuer_config.clone()
    }

    /// The closure of the names stored for `user` (unknown names logged and ignored).
    async fn stored_closure(&self, user: &str) -> Result<CapSet, Error> {
        let names = self.inner.store.get(user).await?.unwrap_or_default();
        let expanded = self.inner.graph.expand(names.iter().map(String::as_str));
        if !expanded.unknown.is_empty() {
            tracing::warn!(
                user = %user,
                unknown = ?expanded.unknown,
                "stored capabilities the graph does not declare are ignored"
            );
        }
        Ok(expanded.set)
    }

    /// What the account `user` holds of its own: the closure of its stored
    /// names and of the names `user_overrides` pins to it.
    async fn account_closure(&self, user: &str) -> Result<CapSet, Error> {
        let mut set = self.stored_closure(user).await?;
        if let Some((_, pinned)) = self.inner.graph.pinned(user) {
            set.union_with(pinned);
        }
        Ok(set)
    }

    /// What the user `user` holds: stored and pinned capabilities with their
    /// implications, and the defaults.
    async fn user_set(&self, user: &str) -> Result<CapSet, Error> {
        Ok(self
            .account_closure(user)
            .await?
            .union(self.inner.graph.defaults()))
    }

    /// What the user `key` holds when acting as itself (a login, a user
    /// token, the issuer of a token): a key that names a service account
    /// holds the defaults only, since service accounts act only through
    /// service tokens.
    async fn holder_set(&self, key: &str) -> Result<CapSet, Error> {
        if key.ends_with(SERVICE_ACCOUNT_SUFFIX) {
            tracing::warn!(user = %key, "a login or token issuer names a service account; only default capabilities apply");
            return Ok(*self.inner.graph.defaults());
        }
        self.user_set(key).await
    }

    /// The capabilities of `caller` (`None`: a guest).
    ///
    /// Revocation is not checked here: a revoked token never becomes a
    /// caller (see [`service_issuer_config`](Self::service_issuer_config)).
    ///
    /// # Errors
    ///
    /// `Unavailable` (503) when a store cannot answer; 401
    /// [`TokenRejection::MissingClaim`] for a service or API token without
    /// `issued_by`, [`TokenRejection::InvalidClaim`] for a token of this
    /// service of no known kind.
    pub async fn of(&self, caller: Option<&Authenticated>) -> Result<CapSet, Error> {
        let Some(caller) = caller else {
            return Ok(*self.inner.graph.guests());
        };
        let principal = &caller.principal;
        if principal.issuer() != SERVICE_ISSUER {
            return self.holder_set(user_key(principal)).await;
        }
        let claims: TokenClaims = principal
            .claims_as()
            .map_err(|_| Error::invalid_token(TokenRejection::InvalidClaim))?;
        let snapshot = || {
            self.inner
                .graph
                .expand(claims.caps.iter().map(String::as_str))
                .set
        };
        let issuer = || {
            claims
                .issued_by
                .as_deref()
                .ok_or_else(|| Error::invalid_token(TokenRejection::MissingClaim))
        };
        match claims.kind.as_deref() {
            Some(KIND_USER) => self.holder_set(&claims.sub).await,
            Some(KIND_SERVICE) => {
                let issuer = issuer()?;
                let account = self.account_closure(&claims.sub).await?;
                let issuer = self.holder_set(issuer).await?;
                Ok(snapshot().intersection(&account).intersection(&issuer))
            }
            Some(KIND_API) => {
                let issuer = self.holder_set(issuer()?).await?;
                Ok(snapshot().intersection(&issuer))
            }
            _ => Err(Error::invalid_token(TokenRejection::InvalidClaim)),
        }
    }

    /// Requires `cap` of `caller`.
    ///
    /// # Errors
    ///
    /// 401 for a guest without it, 403 `insufficient_scope` for a known caller
    /// without it, a configuration error for a capability the graph does not
    /// declare, and the errors of [`of`](Self::of).
    pub async fn require(&self, caller: Option<&Authenticated>, cap: &str) -> Result<(), Error> {
        let id = self.inner.graph.id(cap).ok_or_else(|| {
            Error::config(format!(
                "capability `{cap}` is required by a route but not declared in `capabilities.graph`"
            ))
        })?;
        if self.of(caller).await?.contains(id) {
            Ok(())
        } else if caller.is_none() {
            Err(Error::missing_credentials())
        } else {
            Err(Error::insufficient_scope(cap))
        }
    }
}
