//! [`Capabilities`]: what a caller may do, the management operations of
//! easy-oauth's `/manage_capabilities` routes, and service and API tokens.
//!
//! Every operation takes the verified caller (or none, for a guest) and, for
//! the management operations, the raw request body; it answers a
//! [`Reply`] (status, JSON body, [`JSON_HEADERS`](portcullis_core::reply::JSON_HEADERS))
//! or an [`Error`] that knows its HTTP form. Web adapters only copy these out.

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

/// The `iss` and `aud` of the tokens [`Capabilities`] issues.
pub const SERVICE_ISSUER: &str = "urn:portcullis:service";

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

/// Derives the token signing secret: HKDF-SHA256 of the secret key, 32 bytes,
/// base64url (the HMAC secret is configured as text).
fn derive_key(secret: &[u8]) -> Result<String, Error> {
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]);
    let prk = salt.extract(secret);
    let info = [KDF_INFO];
    let okm = prk
        .expand(&info, hkdf::HKDF_SHA256)
        .map_err(|_| Error::config("the service token key could not be derived"))?;
    let mut out = [0u8; 32];
    okm.fill(&mut out)
        .map_err(|_| Error::config("the service token key could not be derived"))?;
    Ok(URL_SAFE_NO_PAD.encode(out))
}

/// A random 128-bit token id, base64url.
fn random_id() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| Error::unavailable("the system random generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The revocation check of the tokens [`Capabilities`] issues: asks a
/// [`RevocationStore`] about the token's `jti`.
///
/// [`Capabilities::service_issuer_config`] attaches it when a revocation
/// store is configured, so that every verifier accepting the service's tokens
/// refuses a revoked one at authentication (401 `revoked`), cached tokens
/// included. A token without a `jti` (or with an empty one) is refused with
/// 401 `MissingClaim`: it could never be revoked. A store that cannot answer
/// is a 503.
///
/// ```
/// use std::sync::Arc;
/// use portcullis_capabilities::{MemoryStore, StoreRevocationCheck};
/// use portcullis_core::config::IssuerConfig;
/// let check = StoreRevocationCheck::new(Arc::new(MemoryStore::new()));
/// let issuer = IssuerConfig::new("urn:example").with_revocations(Arc::new(check));
/// assert!(issuer.revocations.is_some());
/// ```
#[derive(Debug, Clone)]
pub struct StoreRevocationCheck {
    store: Arc<dyn RevocationStore>,
}

impl StoreRevocationCheck {
    /// The check over `store`.
    pub fn new(store: Arc<dyn RevocationStore>) -> Self {
        Self { store }
    }
}

/// The token id a revocation is recorded under: the `jti`, required.
fn token_id(principal: &Principal) -> Result<&str, Error> {
    principal
        .claim("jti")
        .and_then(Value::as_str)
        .filter(|jti| !jti.is_empty())
        .ok_or_else(|| Error::invalid_token(TokenRejection::MissingClaim))
}

impl RevocationCheck for StoreRevocationCheck {
    fn is_revoked_now(&self, principal: &Principal) -> Option<Result<bool, Error>> {
        match token_id(principal) {
            Ok(jti) => self.store.is_revoked_now(jti).map(Ok),
            Err(e) => Some(Err(e)),
        }
    }

    fn is_revoked<'a>(&'a self, principal: &'a Principal) -> RevocationFuture<'a> {
        Box::pin(async move { self.store.is_revoked(token_id(principal)?).await })
    }
}

struct Inner {
    graph: CapabilityGraph,
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
///   stored for them, plus the defaults. A provider login whose key names a
///   service account (`…@service`) holds the defaults only.
/// - A service token (`iss` [`SERVICE_ISSUER`], `sub` an `…@service` account)
///   holds its snapshot intersected with what the account holds now and with
///   what its issuer (`issued_by`, the manager who minted it) holds now:
///   removing a capability from either revokes it at once, adding one needs
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

/// The claims of a service or API token.
#[derive(Debug, Deserialize)]
struct TokenClaims {
    sub: String,
    caps: Vec<String>,
    jti: String,
    exp: u64,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    issued_by: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OneBody {
    email: Option<String>,
    capability: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetBody {
    email: Option<String>,
    capabilities: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    token: Option<String>,
    id: Option<String>,
}

fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body)
        .map_err(|e| Error::invalid_request(format!("the body is not the expected JSON: {e}")))
}

fn require_email(email: Option<String>) -> Result<String, Error> {
    match email {
        Some(e) if !e.is_empty() => Ok(e),
        _ => Err(Error::invalid_request("`email` is required")),
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

    /// What the user `user` holds: stored capabilities with their implications, and the defaults.
    async fn user_set(&self, user: &str) -> Result<CapSet, Error> {
        Ok(self
            .stored_closure(user)
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
                let account = self.stored_closure(&claims.sub).await?;
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

    /// Refuses a caller authenticated by a service or API token (403): such
    /// a token mints no token. A user token holds exactly its user's current
    /// capabilities, so its caller may.
    fn refuse_minting_by_tokens(caller: &Authenticated) -> Result<(), Error> {
        let principal = &caller.principal;
        if principal.issuer() == SERVICE_ISSUER
            && principal.claim("kind").and_then(Value::as_str) != Some(KIND_USER)
        {
            return Err(Error::forbidden(
                "a service or API token cannot mint tokens; a manager mints them from their own login or user token",
            ));
        }
        Ok(())
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

    /// Requires `user_management` of `caller`; returns the caller's key and capabilities.
    async fn manager<'a>(
        &self,
        caller: Option<&'a Authenticated>,
    ) -> Result<(&'a str, CapSet), Error> {
        let Some(um) = self.inner.graph.user_management() else {
            return Err(Error::forbidden(
                "capability management is not enabled: the graph declares no `user_management`",
            ));
        };
        let set = self.of(caller).await?;
        let Some(caller) = caller else {
            return Err(Error::missing_credentials());
        };
        if !set.contains(um) {
            return Err(Error::insufficient_scope("user_management"));
        }
        Ok((user_key(&caller.principal), set))
    }

    /// Refuses undeclared names (400) and names `held` does not cover (403).
    fn check_grantable(&self, held: &CapSet, names: &[String]) -> Result<(), Error> {
        let graph = &self.inner.graph;
        graph.resolve_declared(names)?;
        for name in names {
            let id = graph
                .id(name)
                .ok_or_else(|| Error::invalid_request(format!("unknown capability `{name}`")))?;
            if !graph.can_grant(held, graph.closure(id)) {
                return Err(Error::forbidden(format!(
                    "you cannot grant or withdraw `{name}`: you do not hold it"
                )));
            }
        }
        Ok(())
    }

    fn answer(email: &str, caps: &[String]) -> Reply {
        Reply::json_no_store(
            200,
            &json!({"status": "ok", "email": email, "capabilities": caps}),
        )
    }

    /// `GET /manage_capabilities/list?email=`: the stored capabilities of
    /// `email` (default: the caller). Another user's need `user_management`.
    pub async fn list(
        &self,
        caller: Option<&Authenticated>,
        email: Option<&str>,
    ) -> Result<Reply, Error> {
        let me = caller.ok_or_else(Error::missing_credentials)?;
        let own = user_key(&me.principal);
        let email = match email {
            Some(e) if !e.is_empty() && e != own => {
                self.manager(caller).await?;
                e
            }
            _ => {
                // Refuses a token this service no longer honours.
                self.of(caller).await?;
                own
            }
        };
        let caps = self.inner.store.get(email).await?.unwrap_or_default();
        Ok(Self::answer(email, &caps))
    }

    /// Applies `change` to `email` if `check` accepts the stored names right
    /// before it, atomically, and logs the change with the true before and after.
    async fn apply(
        &self,
        who: &str,
        email: &str,
        change: Change,
        op: &'static str,
        check: &ChangeCheck<'_>,
    ) -> Result<Reply, Error> {
        let modified = self.inner.store.modify(email, change, check).await?;
        let before = modified.before.unwrap_or_default();
        let after = modified.after.unwrap_or_default();
        tracing::info!(
            who = %who,
            whom = %email,
            operation = op,
            before = ?before,
            after = ?after,
            "capabilities changed"
        );
        Ok(Self::answer(email, &after))
    }

    /// `POST /manage_capabilities/add` with `{"email", "capability"}`.
    pub async fn add(&self, caller: Option<&Authenticated>, body: &[u8]) -> Result<Reply, Error> {
        self.change_one(caller, body, Change::Add, "add").await
    }

    /// `POST /manage_capabilities/remove` with `{"email", "capability"}`.
    pub async fn remove(
        &self,
        caller: Option<&Authenticated>,
        body: &[u8],
    ) -> Result<Reply, Error> {
        self.change_one(caller, body, Change::Remove, "remove")
            .await
    }

    /// `add` and `remove`: one capability, which the manager must hold.
    async fn change_one(
        &self,
        caller: Option<&Authenticated>,
        body: &[u8],
        change: fn(String) -> Change,
        operation: &'static str,
    ) -> Result<Reply, Error> {
        let (who, held) = self.manager(caller).await?;
        let body: OneBody = parse_body(body)?;
        let email = require_email(body.email)?;
        let cap = body
            .capability
            .ok_or_else(|| Error::invalid_request("`capability` is required"))?;
        self.check_grantable(&held, std::slice::from_ref(&cap))?;
        // What is granted or withdrawn does not depend on the prior state.
        let accept = |_: Option<&[String]>| Ok(());
        self.apply(who, &email, change(cap), operation, &accept)
            .await
    }

    /// `POST /manage_capabilities/set` with `{"email", "capabilities": [...]}`.
    ///
    /// The manager must hold every capability given and every one withdrawn.
    /// Withdrawals are checked against the user's capabilities in the same
    /// atomic step as the write ([`CapabilityStore::modify`]): a change
    /// landing concurrently cannot make the manager withdraw what it does not
    /// hold, and the audit event's `before` is the true prior state.
    pub async fn set(&self, caller: Option<&Authenticated>, body: &[u8]) -> Result<Reply, Error> {
        let (who, held) = self.manager(caller).await?;
        let body: SetBody = parse_body(body)?;
        let email = require_email(body.email)?;
        let caps = body
            .capabilities
            .ok_or_else(|| Error::invalid_request("`capabilities` is required"))?;
        self.check_grantable(&held, &caps)?;
        // What is withdrawn is decided against the names the change replaces,
        // in the same atomic step as the write.
        let withdrawals = |before: Option<&[String]>| {
            let withdrawn: Vec<String> = before
                .unwrap_or_default()
                .iter()
                .filter(|c| !caps.contains(c) && self.inner.graph.has(c))
                .cloned()
                .collect();
            self.check_grantable(&held, &withdrawn)
        };
        self.apply(who, &email, Change::Set(caps.clone()), "set", &withdrawals)
            .await
    }

    fn mint(
        &self,
        sub: &str,
        caps: &[String],
        extra: &[(&str, Value)],
        ttl: u64,
    ) -> Result<(String, String), Error> {
        let now = self.inner.clock.now_secs();
        let jti = random_id()?;
        let mut claims = json!({
            "iss": SERVICE_ISSUER,
            "aud": SERVICE_ISSUER,
            "sub": sub,
            "caps": caps,
            "jti": jti,
            "iat": now,
            "exp": now.saturating_add(ttl),
        });
        if let Value::Object(map) = &mut claims {
            for (k, v) in extra {
                map.insert((*k).to_owned(), v.clone());
            }
        }
        let token = self.inner.signing_key.sign(&claims, Some("JWT"))?;
        Ok((token, jti))
    }

    /// `GET /token?user=bot@service`: a token for the service account `user`.
    ///
    /// The caller needs `user_management` and must be a user (a login or a
    /// user token): a caller authenticated by a service or API token is
    /// refused (403). The token records the caller as its issuer
    /// (`issued_by`) and carries what the account holds now (with what it
    /// implies) **that the caller holds too**: a manager never mints more
    /// than it holds. Rather than refusing when the account holds more, the
    /// token is minted with the intersection, and the answer names what was
    /// left out: `{"service_token", "user", "capabilities", "withheld"}`
    /// (`withheld` is empty when nothing was). A request with the token later
    /// holds its capabilities only while both the account and the issuer
    /// still hold them.
    ///
    /// # Errors
    ///
    /// 401 for a guest, 403 without `user_management` or for a caller
    /// authenticated by a service or API token, 400 when `user` does not name
    /// a service account.
    pub async fn issue_service_token(
        &self,
        caller: Option<&Authenticated>,
        user: Option<&str>,
    ) -> Result<Reply, Error> {
        let (who, held) = self.manager(caller).await?;
        if let Some(caller) = caller {
            Self::refuse_minting_by_tokens(caller)?;
        }
        let user = match user {
            Some(u)
                if u.len() > SERVICE_ACCOUNT_SUFFIX.len()
                    && u.ends_with(SERVICE_ACCOUNT_SUFFIX) =>
            {
                u
            }
            _ => {
                return Err(Error::invalid_request(
                    "`user` must name a service account ending with `@service`",
                ));
            }
        };
        let graph = &self.inner.graph;
        let account = self.stored_closure(user).await?;
        let minted = account.intersection(&graph.closure_of(&held));
        let mut left_out = account;
        for id in minted.iter() {
            left_out.remove(id);
        }
        let caps = graph.names_of(&minted);
        let withheld = graph.names_of(&left_out);
        let (token, jti) = self.mint(
            user,
            &caps,
            &[("kind", json!(KIND_SERVICE)), ("issued_by", json!(who))],
            self.inner.ttl_secs,
        )?;
        tracing::info!(who = %who, whom = %user, id = %jti, capabilities = ?caps, withheld = ?withheld, "service token issued");
        Ok(Reply::json_no_store(
            200,
            &json!({
                "service_token": token,
                "user": user,
                "capabilities": caps,
                "withheld": withheld,
            }),
        ))
    }

    /// `GET /token` for a logged-in user: a bearer token for scripts, minted
    /// by portcullis.
    ///
    /// The token names the user (its `sub` and `email` are the user's key),
    /// carries an id (`jti`) and is revocable like service tokens; a request
    /// with it holds the user's capabilities as they are in the store at that
    /// moment. Answers `{"token", "refresh_token", "expires_at", "id", "user"}`:
    /// the same token under `refresh_token` keeps clients written for
    /// easy-oauth working.
    ///
    /// # Errors
    ///
    /// 401 for a guest; 403 for a caller authenticated by a portcullis token
    /// (a token is not exchanged for a longer-lived one: log in again) or
    /// whose key names a service account.
    pub async fn issue_user_token(&self, caller: Option<&Authenticated>) -> Result<Reply, Error> {
        let caller = caller.ok_or_else(Error::missing_credentials)?;
        let principal = &caller.principal;
        if principal.issuer() == SERVICE_ISSUER {
            return Err(Error::forbidden(
                "a portcullis token cannot be exchanged for another; log in to get a new one",
            ));
        }
        let user = user_key(principal);
        if user.ends_with(SERVICE_ACCOUNT_SUFFIX) {
            return Err(Error::forbidden(
                "service accounts get their tokens from a manager (`/token?user=`)",
            ));
        }
        let ttl = self.inner.user_ttl_secs;
        let (token, jti) = self.mint(
            user,
            &[],
            &[("kind", json!(KIND_USER)), ("email", json!(user))],
            ttl,
        )?;
        let exp = self.inner.clock.now_secs().saturating_add(ttl);
        tracing::info!(user = %user, id = %jti, "user token issued");
        Ok(Reply::json_no_store(
            200,
            &json!({
                "token": token,
                "refresh_token": token,
                "expires_at": exp,
                "id": jti,
                "user": user,
            }),
        ))
    }

    /// An API token bound to `capabilities` rather than to an account.
    ///
    /// The caller needs `user_management`, must be a user (a login or a user
    /// token; a caller authenticated by a service or API token is refused
    /// with 403) and must hold every capability given; the token records the
    /// caller as its issuer (`issued_by`) and holds the capabilities (with
    /// what they imply) only while its issuer still does. `ttl_secs` defaults to, and may not exceed, the
    /// service token lifetime. Answers
    /// `{"api_token", "issued_by", "capabilities", "expires_at"}`.
    pub async fn issue_api_token(
        &self,
        caller: Option<&Authenticated>,
        capabilities: &[String],
        ttl_secs: Option<u64>,
    ) -> Result<Reply, Error> {
        let (who, held) = self.manager(caller).await?;
        if let Some(caller) = caller {
            Self::refuse_minting_by_tokens(caller)?;
        }
        self.check_grantable(&held, capabilities)?;
        let ttl = ttl_secs.unwrap_or(self.inner.ttl_secs);
        if ttl == 0 || ttl > self.inner.ttl_secs {
            return Err(Error::invalid_request(format!(
                "the lifetime must be between 1 and {} seconds",
                self.inner.ttl_secs
            )));
        }
        let caps = self.inner.graph.names_of(
            &self
                .inner
                .graph
                .expand(capabilities.iter().map(String::as_str))
                .set,
        );
        let sub = format!("api-token:{who}");
        let (token, jti) = self.mint(
            &sub,
            &caps,
            &[("kind", json!(KIND_API)), ("issued_by", json!(who))],
            ttl,
        )?;
        let exp = self.inner.clock.now_secs().saturating_add(ttl);
        tracing::info!(who = %who, id = %jti, capabilities = ?caps, "API token issued");
        Ok(Reply::json_no_store(
            200,
            &json!({
                "api_token": token,
                "issued_by": who,
                "capabilities": caps,
                "expires_at": exp,
            }),
        ))
    }

    /// `POST /token/revoke` with `{"token": "..."}` or `{"id": "..."}`:
    /// revokes a token this service issued until its expiry.
    ///
    /// A manager (`user_management`) revokes any token, by value or id; any
    /// caller revokes their own user tokens by value. From then on every
    /// verifier built with [`service_issuer_config`](Self::service_issuer_config)
    /// refuses the token (401 `revoked`), on every replica sharing the
    /// revocation store. Revoking a token again is no error.
    ///
    /// # Errors
    ///
    /// 401 for a guest, 403 for a caller who may not revoke that token, 400
    /// when no revocation store is configured, for a body that is not JSON,
    /// names neither or both, or a token this service did not issue.
    pub async fn revoke(
        &self,
        caller: Option<&Authenticated>,
        body: &[u8],
    ) -> Result<Reply, Error> {
        let me = caller.ok_or_else(Error::missing_credentials)?;
        let Some(revocations) = &self.inner.revocations else {
            return Err(Error::invalid_request(
                "token revocation needs a revocation store; none is configured",
            ));
        };
        let body: RevokeBody = parse_body(body)?;
        let (id, exp, own) = match (body.token, body.id) {
            (Some(token), None) => {
                let principal = self.inner.verifier.verify(&token).await.map_err(|e| {
                    Error::invalid_request(format!(
                        "the token is not a valid token of this service: {}",
                        e.message()
                    ))
                })?;
                let claims: TokenClaims = principal.claims_as().map_err(|_| {
                    Error::invalid_request("the token is not a token of this service")
                })?;
                let own = claims.kind.as_deref() == Some(KIND_USER)
                    && me.principal.issuer() != SERVICE_ISSUER
                    && claims.sub == user_key(&me.principal);
                (claims.jti, claims.exp, own)
            }
            (None, Some(id)) if !id.is_empty() => {
                let exp = self
                    .inner
                    .clock
                    .now_secs()
                    .saturating_add(self.inner.ttl_secs.max(self.inner.user_ttl_secs));
                (id, exp, false)
            }
            _ => {
                return Err(Error::invalid_request(
                    "give exactly one of `token` and `id`",
                ));
            }
        };
        let who = if own {
            user_key(&me.principal)
        } else {
            self.manager(caller).await?.0
        };
        revocations.revoke(&id, exp).await?;
        tracing::info!(who = %who, id = %id, "token revoked");
        Ok(Reply::json_no_store(
            200,
            &json!({"status": "ok", "id": id, "revoked_until": exp}),
        ))
    }

    /// Every stored user with their capabilities (for diagnostics).
    pub async fn stored(&self) -> Result<BTreeMap<String, Vec<String>>, Error> {
        self.inner.store.list().await
    }
}
