//! [`TokenVerifier`]: verifies bearer JWTs from several issuers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::alg::Algorithm;
use crate::clock::{self, SharedClock};
use crate::config::{AccessTokenType, IssuerConfig, StaticKey, VerifierConfig, check_provider_url};
use crate::error::{Error, TokenRejection};
use crate::fetch::HttpFetch;
use crate::jwks::{Location, RemoteKeys};
use crate::jws::{self, Audience, Claims, Date, Scp, Text};
use crate::keys::{KeySet, VerifyingKey};
use crate::principal::{Principal, RawToken, TokenKind, vouched};
use crate::refusals;
use crate::revocation::RevocationCheck;

/// Verifies JWTs from the configured issuers. Cheap to clone; share one per process.
///
/// A token is routed to its issuer by the exact `iss` string; a token from an
/// unknown issuer is refused without any network call. The algorithm comes from
/// the issuer's configuration and the key, never from the token alone. A token
/// that says it is of another kind (`typ`, `token_use`, Keycloak's `typ`
/// claim) is refused (see [`AccessTokenType`]). The principal's email is the
/// address the provider vouches for ([`vouched_email`](crate::principal::vouched_email)). Keys are fetched over
/// HTTPS only, loopback hosts excepted ([`check_provider_url`]).
///
/// ```
/// # async fn f() -> Result<(), portcullis_core::Error> {
/// use portcullis_core::{Algorithm, TokenVerifier, TokenKind};
/// use portcullis_core::config::{IssuerConfig, VerifierConfig};
/// use portcullis_core::mint::SigningKey;
///
/// let key = SigningKey::generate(Algorithm::ES256, "k1")?;
/// let issuer = IssuerConfig::new("https://id.example.com")
///     .with_key(portcullis_core::config::StaticKey::pem(Some("k1".into()), key.public_pem().unwrap()))
///     .with_algorithms([Algorithm::ES256])
///     .with_audience("api");
/// let verifier = TokenVerifier::new(VerifierConfig::new([("main".to_owned(), issuer)]))?;
///
/// let token = key.sign(&serde_json::json!({
///     "iss": "https://id.example.com", "aud": "api", "sub": "alice",
///     "exp": 4102444800u64,
/// }), Some("at+jwt"))?;
/// let caller = verifier.verify(&token).await?;
/// assert_eq!(caller.user_id(), "alice");
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f()).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuers: HashMap<String, Issuer>,
    /// Verified tokens by their text: never shown by `Debug`.
    cache: Option<quick_cache::sync::Cache<Box<str>, Cached>>,
    clock: SharedClock,
    max_token_bytes: usize,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("issuers", &self.issuers)
            .field("cached_tokens", &self.cache.as_ref().map(|c| c.len()))
            .field("clock", &self.clock)
            .field("max_token_bytes", &self.max_token_bytes)
            .finish()
    }
}

/// A verified token in the cache, with its issuer's revocation check (asked
/// on every hit: a cached token is refused as soon as it is revoked).
#[derive(Debug, Clone)]
struct Cached {
    principal: Arc<Principal>,
    /// Whether the token declares itself an ID token (not merely verified as one).
    declared_id: bool,
    revocations: Option<Arc<dyn RevocationCheck>>,
}

#[derive(Debug)]
struct Issuer {
    issuer: String,
    revocations: Option<Arc<dyn RevocationCheck>>,
    algorithms: Vec<Algorithm>,
    keys: Keys,
    audiences: Vec<String>,
    id_audiences: Vec<String>,
    cognito: bool,
    user_id_claim: String,
    trust_email_absent: bool,
    required_claims: Vec<String>,
    leeway_ms: u64,
    access_type: AccessTokenType,
}

#[derive(Debug)]
enum Keys {
    Static(KeySet),
    Remote(Arc<RemoteKeys>),
}

/// Builds a [`TokenVerifier`] with a custom clock or HTTP client.
#[derive(Debug)]
pub struct TokenVerifierBuilder {
    config: VerifierConfig,
    clock: SharedClock,
    fetch: Option<Arc<dyn HttpFetch>>,
}

impl TokenVerifierBuilder {
    /// Reads time from `clock` (tests use a [`ManualClock`](crate::clock::ManualClock)).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Fetches discovery and JWKS documents with `fetch`.
    pub fn http(mut self, fetch: Arc<dyn HttpFetch>) -> Self {
        self.fetch = Some(fetch);
        self
    }

    /// Validates the configuration and builds the verifier.
    pub fn build(self) -> Result<TokenVerifier, Error> {
        let cfg = self.config;
        if cfg.issuers.is_empty() {
            return Err(Error::config(
                "configuration key `issuers`: at least one issuer is required",
            ));
        }
        if cfg.leeway_secs > 300 {
            return Err(Error::config(
                "configuration key `leeway_secs`: at most 300 seconds",
            ));
        }
        if cfg.max_token_bytes < 256 {
            return Err(Error::config(
                "configuration key `max_token_bytes`: at least 256",
            ));
        }
        if cfg.danger_allow_plain_http {
            tracing::warn!(
                "configuration key `danger_allow_plain_http` is set: issuer keys may be fetched \
                 over plain http from any host, where anyone on the path can replace them"
            );
        }
        let mut fetch = self.fetch;
        let mut issuers = HashMap::new();
        for (name, ic) in &cfg.issuers {
            let issuer = build_issuer(name, ic, &cfg, &self.clock, &mut fetch)?;
            if issuers.contains_key(&issuer.issuer) {
                return Err(Error::config(format!(
                    "configuration key `issuers.{name}.issuer`: issuer `{}` is configured twice",
                    issuer.issuer
                )));
            }
            issuers.insert(issuer.issuer.clone(), issuer);
        }
        let cache = (cfg.cache.enabled && cfg.cache.capacity > 0)
            .then(|| quick_cache::sync::Cache::new(cfg.cache.capacity));
        Ok(TokenVerifier {
            inner: Arc::new(Inner {
                issuers,
                cache,
                clock: self.clock,
                max_token_bytes: cfg.max_token_bytes,
            }),
        })
    }
}

fn build_issuer(
    name: &str,
    ic: &IssuerConfig,
    cfg: &VerifierConfig,
    clock: &SharedClock,
    fetch: &mut Option<Arc<dyn HttpFetch>>,
) -> Result<Issuer, Error> {
    let key = |k: &str| format!("issuers.{name}.{k}");
    let err = |k: &str, why: &str| Error::config(format!("configuration key `{}`: {why}", key(k)));
    let issuer = ic
        .effective_issuer()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| err("issuer", "required (or set `cognito`)"))?;
    if ic.algorithms.is_empty() {
        return Err(err("algorithms", "at least one algorithm is required"));
    }
    let sources = usize::from(ic.discovery_url.is_some())
        + usize::from(ic.jwks_url.is_some())
        + usize::from(!ic.keys.is_empty())
        + usize::from(ic.hmac_secret.is_some());
    if sources > 1 {
        return Err(err(
            "",
            "set only one of `discovery_url`, `jwks_url`, `keys`, `hmac_secret`",
        ));
    }
    let uses_hmac = ic
        .algorithms
        .iter()
        .any(|a| a.family() == crate::alg::KeyFamily::Hmac);
    if uses_hmac && ic.hmac_secret.is_none() {
        return Err(err(
            "algorithms",
            "HMAC algorithms need `hmac_secret` (shared secrets are never fetched)",
        ));
    }
    if let Some(secret) = &ic.hmac_secret
        && crate::sealed::is_sealed(secret.expose())
    {
        return Err(err("hmac_secret", &crate::sealed::sealed_secret_message()));
    }
    if ic.hmac_secret.is_some()
        && !ic
            .algorithms
            .iter()
            .all(|a| a.family() == crate::alg::KeyFamily::Hmac)
    {
        return Err(err(
            "algorithms",
            "with `hmac_secret`, only HS256, HS384 and HS512 are allowed",
        ));
    }
    let cognito_clients = ic
        .cognito
        .as_ref()
        .map(|c| c.app_client_ids.clone())
        .unwrap_or_default();
    if ic.cognito.is_some() && cognito_clients.is_empty() {
        return Err(err(
            "cognito.app_client_ids",
            "at least one app client id is required",
        ));
    }
    // An issuer with only a client id verifies ID tokens (a login flow) and
    // refuses every access token.
    if ic.cognito.is_none() && ic.audiences.is_empty() && ic.client_id.is_none() {
        return Err(err(
            "audiences",
            "at least one accepted audience (or a client id) is required",
        ));
    }
    let keys = if let Some(secret) = &ic.hmac_secret {
        Keys::Static(KeySet::new(vec![
            VerifyingKey::from_hmac_secret(None, secret.expose().as_bytes(), &ic.algorithms)
                .map_err(|e| err("hmac_secret", e.message()))?,
        ]))
    } else if !ic.keys.is_empty() {
        let mut keys = Vec::with_capacity(ic.keys.len());
        for (i, k) in ic.keys.iter().enumerate() {
            keys.push(
                static_key(k, &ic.algorithms)
                    .map_err(|e| err(&format!("keys[{i}]"), e.message()))?,
            );
        }
        Keys::Static(KeySet::new(keys))
    } else {
        let allow_http = cfg.danger_allow_plain_http;
        let location = if let Some(url) = &ic.jwks_url {
            check_provider_url(&key("jwks_url"), url, allow_http)?;
            Location::Jwks(url.clone())
        } else if let Some(c) = &ic.cognito {
            let url = format!("{}/.well-known/jwks.json", c.issuer());
            check_provider_url(&key("cognito"), &url, allow_http)?;
            Location::Jwks(url)
        } else {
            // Without a discovery URL, the one derived from the issuer is
            // held to the same rule, under the key it comes from.
            let (url, from) = match &ic.discovery_url {
                Some(url) => (url.clone(), "discovery_url"),
                None => (
                    format!(
                        "{}/.well-known/openid-configuration",
                        issuer.trim_end_matches('/')
                    ),
                    "issuer",
                ),
            };
            check_provider_url(&key(from), &url, allow_http)?;
            Location::Discovery {
                url,
                issuer: issuer.clone(),
            }
        };
        let fetch = match fetch {
            Some(f) => Arc::clone(f),
            None => {
                let f = default_fetch(cfg)?;
                *fetch = Some(Arc::clone(&f));
                f
            }
        };
        Keys::Remote(Arc::new(RemoteKeys::new(
            location,
            ic.algorithms.clone(),
            cfg.jwks.clone(),
            allow_http,
            fetch,
            Arc::clone(clock),
        )))
    };
    let leeway = ic.leeway_secs.unwrap_or(cfg.leeway_secs);
    if leeway > 300 {
        return Err(err("leeway_secs", "at most 300 seconds"));
    }
    let id_audiences = if ic.cognito.is_some() {
        cognito_clients
    } else {
        ic.client_id.iter().cloned().collect::<Vec<_>>()
    };
    Ok(Issuer {
        issuer,
        revocations: ic.revocations.clone(),
        algorithms: ic.algorithms.clone(),
        keys,
        audiences: ic.audiences.clone(),
        id_audiences: if id_audiences.is_empty() {
            ic.audiences.clone()
        } else {
            id_audiences
        },
        cognito: ic.cognito.is_some(),
        user_id_claim: ic.user_id_claim.clone(),
        trust_email_absent: ic.trust_email_without_verified_claim,
        required_claims: ic.required_claims.clone(),
        leeway_ms: leeway * 1000,
        access_type: ic.access_token_type,
    })
}

#[cfg(feature = "reqwest")]
fn default_fetch(cfg: &VerifierConfig) -> Result<Arc<dyn HttpFetch>, Error> {
    Ok(Arc::new(crate::fetch::ReqwestFetch::new(
        Duration::from_millis(cfg.jwks.timeout_ms),
        cfg.jwks.max_response_bytes,
    )?))
}

#[cfg(not(feature = "reqwest"))]
fn default_fetch(_cfg: &VerifierConfig) -> Result<Arc<dyn HttpFetch>, Error> {
    let _ = Duration::ZERO;
    Err(Error::config(
        "remote keys need an HTTP client: enable the `reqwest` feature or pass one with TokenVerifierBuilder::http",
    ))
}

fn static_key(k: &StaticKey, algs: &[Algorithm]) -> Result<VerifyingKey, Error> {
    match (&k.pem, &k.jwk) {
        (Some(pem), None) => VerifyingKey::from_pem(k.kid.clone(), pem, algs),
        (None, Some(jwk)) => {
            let mut jwk = jwk.clone();
            if let (Some(kid), Some(obj)) = (&k.kid, jwk.as_object_mut()) {
                obj.insert("kid".into(), Value::String(kid.clone()));
            }
            VerifyingKey::from_jwk(&jwk, algs)
                .map_err(|e| Error::config(format!("the JWK is not usable: {e}")))
        }
        _ => Err(Error::config("set exactly one of `pem` and `jwk`")),
    }
}

impl TokenVerifier {
    /// A verifier for `config`, with the system clock and the default HTTP client.
    pub fn new(config: VerifierConfig) -> Result<Self, Error> {
        Self::builder(config).build()
    }

    /// A builder, to set a clock or HTTP client.
    pub fn builder(config: VerifierConfig) -> TokenVerifierBuilder {
        TokenVerifierBuilder {
            config,
            clock: clock::system(),
            fetch: None,
        }
    }

    /// The configured issuers.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.inner.issuers.keys().map(String::as_str)
    }

    /// Fetches the keys of every remote issuer now, so the first request does not wait.
    pub async fn warm_up(&self) -> Result<(), Error> {
        for issuer in self.inner.issuers.values() {
            if let Keys::Remote(remote) = &issuer.keys {
                remote.usable().await?;
            }
        }
        Ok(())
    }

    /// Verifies an access token.
    pub async fn verify(&self, token: &str) -> Result<Arc<Principal>, Error> {
        self.verify_as(token, TokenKind::Access).await
    }

    /// Verifies a token of the given kind.
    ///
    /// A refusal is logged at `debug` with its reason (never the token); at
    /// most once every ten seconds per process, a summary line (`info`, or
    /// `warn` when keys or a revocation check were unavailable) counts the
    /// refusals by reason since the previous one.
    pub async fn verify_as(&self, token: &str, kind: TokenKind) -> Result<Arc<Principal>, Error> {
        let result = self.verify_inner(token, kind, false).await;
        if let Err(e) = &result {
            // The reason only: token content never reaches the log. Each
            // refusal at debug, a count by reason at most once an interval.
            refusals::record(e);
        }
        result
    }

    /// Verifies an access token or, when the token declares itself an ID
    /// token, an ID token (its `aud` checked against the issuer's client
    /// ids). What [`CredentialsConfig::accept_id_tokens`](crate::CredentialsConfig::accept_id_tokens) asks for.
    pub async fn verify_access_or_id(&self, token: &str) -> Result<Arc<Principal>, Error> {
        let result = self.verify_inner(token, TokenKind::Access, true).await;
        if let Err(e) = &result {
            refusals::record(e);
        }
        result
    }

    /// Verifies `token` as a `kind` token; with `or_declared_id`, a token
    /// that declares itself an ID token is verified as one instead.
    async fn verify_inner(
        &self,
        token: &str,
        kind: TokenKind,
        or_declared_id: bool,
    ) -> Result<Arc<Principal>, Error> {
        let inner = &*self.inner;
        if token.len() > inner.max_token_bytes {
            return Err(Error::invalid_token(TokenRejection::TooLarge));
        }
        let now = inner.clock.now_millis();
        if let Some(cache) = &inner.cache
            && let Some(hit) = cache.get(token)
        {
            // Entries never outlive `exp`, whatever the leeway.
            if now >= hit.principal.expires_at.saturating_mul(1000) {
                cache.remove(token);
            } else if hit.principal.kind == kind || (or_declared_id && hit.declared_id) {
                check_revocation(hit.revocations.as_deref(), &hit.principal).await?;
                return Ok(hit.principal);
            }
        }
        let parsed = jws::parse(token)?;
        let iss = match &parsed.claims.iss {
            Some(Text::Str(s)) => s,
            Some(_) => return Err(Error::invalid_token(TokenRejection::InvalidClaim)),
            None => return Err(Error::invalid_token(TokenRejection::MissingClaim)),
        };
        let Some(issuer) = inner.issuers.get(iss.as_str()) else {
            return Err(Error::invalid_token(TokenRejection::UnknownIssuer));
        };
        if !issuer.algorithms.contains(&parsed.alg) {
            return Err(Error::invalid_token(TokenRejection::DisallowedAlgorithm));
        }
        issuer.check_signature(&parsed).await?;
        let (principal, declared_id) = issuer.validate(
            parsed.claims,
            parsed.typ.as_deref(),
            kind,
            or_declared_id,
            now,
            token,
        )?;
        let principal = Arc::new(principal);
        check_revocation(issuer.revocations.as_deref(), &principal).await?;
        if let Some(cache) = &inner.cache
            && now < principal.expires_at.saturating_mul(1000)
        {
            cache.insert(
                token.into(),
                Cached {
                    principal: Arc::clone(&principal),
                    declared_id,
                    revocations: issuer.revocations.clone(),
                },
            );
        }
        Ok(principal)
    }
}

/// Refuses a revoked token (401 `Revoked`); a check that cannot answer is a 503.
async fn check_revocation(
    check: Option<&dyn RevocationCheck>,
    principal: &Principal,
) -> Result<(), Error> {
    let Some(check) = check else {
        return Ok(());
    };
    let revoked = match check.is_revoked_now(principal) {
        Some(answer) => answer?,
        None => check.is_revoked(principal).await?,
    };
    if revoked {
        Err(Error::invalid_token(TokenRejection::Revoked))
    } else {
        Ok(())
    }
}

impl Issuer {
    async fn check_signature(&self, parsed: &jws::Parsed<'_>) -> Result<(), Error> {
        let kid = parsed.kid.as_deref();
        let try_keys = |set: &KeySet| -> Option<bool> {
            let mut any = false;
            for key in set.candidates(kid, parsed.alg) {
                any = true;
                if key.verify(parsed.alg, parsed.signing_input, &parsed.signature) {
                    return Some(true);
                }
            }
            any.then_some(false)
        };
        let outcome = match &self.keys {
            Keys::Static(set) => try_keys(set),
            Keys::Remote(remote) => {
                let snap = remote.usable().await?;
                match try_keys(&snap.keys) {
                    // Only a named, unknown kid justifies a refetch; a bad
                    // signature under a known key does not.
                    None if kid.is_some() => {
                        let fresh = remote.after_unknown_kid(&snap).await;
                        try_keys(&fresh.keys)
                    }
                    other => other,
                }
            }
        };
        match outcome {
            Some(true) => Ok(()),
            Some(false) => Err(Error::invalid_token(TokenRejection::BadSignature)),
            None => Err(Error::invalid_token(TokenRejection::UnknownKey)),
        }
    }

    fn validate(
        &self,
        claims: Claims,
        typ: Option<&str>,
        expected: TokenKind,
        or_declared_id: bool,
        now_ms: u64,
        token: &str,
    ) -> Result<(Principal, bool), Error> {
        let invalid = || Error::invalid_token(TokenRejection::InvalidClaim);
        let exp = match claims.exp {
            None | Some(Date::Null) => {
                return Err(Error::invalid_token(TokenRejection::MissingClaim));
            }
            Some(Date::Secs(exp)) => exp,
            Some(Date::Bad) => return Err(invalid()),
        };
        if exp.saturating_mul(1000).saturating_add(self.leeway_ms) <= now_ms {
            return Err(Error::invalid_token(TokenRejection::Expired));
        }
        for date in [claims.nbf, claims.iat] {
            match date {
                Some(Date::Secs(t))
                    if t.saturating_mul(1000) > now_ms.saturating_add(self.leeway_ms) =>
                {
                    return Err(Error::invalid_token(TokenRejection::NotYetValid));
                }
                None | Some(Date::Secs(_)) => {}
                Some(Date::Null | Date::Bad) => return Err(invalid()),
            }
        }
        let declared = classify(typ, &claims)?;
        let declared_id = declared == Declared::Id;
        // An ID token where both kinds are accepted is checked as one.
        let expected = if or_declared_id && declared_id {
            TokenKind::Id
        } else {
            expected
        };
        let refused = match (expected, declared) {
            (_, Declared::Other) | (TokenKind::Access, Declared::Id) => true,
            (TokenKind::Id, Declared::Access) => true,
            (TokenKind::Access, Declared::Nothing) => self.access_type == AccessTokenType::Strict,
            _ => false,
        };
        if refused {
            return Err(Error::invalid_token(TokenRejection::WrongTokenType));
        }
        let actual = match declared {
            Declared::Access => TokenKind::Access,
            Declared::Id => TokenKind::Id,
            Declared::Nothing | Declared::Other => expected,
        };
        match expected {
            TokenKind::Access => {
                if self.cognito {
                    match &claims.client_id {
                        Some(Text::Str(c)) if self.id_audiences.contains(c) => {}
                        Some(Text::Str(_)) | None => {
                            return Err(Error::invalid_token(TokenRejection::WrongAudience));
                        }
                        Some(_) => return Err(invalid()),
                    }
                } else {
                    check_audience(claims.aud.as_ref(), &self.audiences)?;
                }
            }
            TokenKind::Id => {
                check_audience(claims.aud.as_ref(), &self.id_audiences)?;
            }
        }
        // Claims beyond the typed ones are read from the full map, built
        // only for an issuer that names one.
        for name in &self.required_claims {
            let present = match claims.text(name) {
                Some(t) => t.is_some_and(|t| *t != Text::Null),
                None => claims.raw.get().get(name).is_some_and(|v| !v.is_null()),
            };
            if !present {
                return Err(Error::invalid_token(TokenRejection::MissingClaim));
            }
        }
        let string_claim = |claim: Option<&Text>| -> Result<Option<String>, Error> {
            match claim {
                None | Some(Text::Null) => Ok(None),
                Some(Text::Str(s)) => Ok(Some(s.clone())),
                Some(Text::Other) => Err(invalid()),
            }
        };
        let subject = string_claim(claims.sub.as_ref())?;
        if matches!(claims.email, Some(Text::Other)) {
            return Err(invalid());
        }
        // Only the address the provider vouches for becomes the principal's.
        let email = vouched(
            claims.email.as_ref().and_then(Text::as_str),
            claims.email_verified,
            self.trust_email_absent,
        )
        .map(str::to_owned);
        let username = match string_claim(claims.preferred_username.as_ref())? {
            Some(u) => Some(u),
            None => match string_claim(claims.cognito_username.as_ref())? {
                Some(u) => Some(u),
                None if self.cognito => string_claim(claims.username.as_ref())?,
                None => None,
            },
        };
        let user_id = match claims.text(&self.user_id_claim) {
            Some(claim) => string_claim(claim)?,
            None => match claims.raw.get().get(&self.user_id_claim) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(invalid()),
            },
        };
        let user_id = match user_id {
            Some(u) if !u.is_empty() => u,
            _ => return Err(Error::invalid_token(TokenRejection::MissingClaim)),
        };
        if self.user_id_claim == "email" && email.as_deref() != Some(user_id.as_str()) {
            // An address the provider does not vouch for names no user.
            return Err(Error::invalid_token(TokenRejection::UnverifiedEmail));
        }
        let scopes = scopes(&claims)?;
        // The token was routed here by its exact `iss`.
        let issuer = self.issuer.clone();
        Ok((
            Principal {
                user_id,
                subject,
                email,
                username,
                issuer,
                expires_at: exp,
                scopes,
                kind: actual,
                principal_kind: crate::principal::PrincipalKind::User,
                claims: Arc::new(claims.raw),
                token: RawToken::new(token),
            },
            declared_id,
        ))
    }
}

fn check_audience(aud: Option<&Audience>, accepted: &[String]) -> Result<(), Error> {
    let ok = match aud {
        Some(Audience::One(a)) => accepted.iter().any(|x| x == a),
        Some(Audience::Many(list)) => list.iter().any(|a| accepted.iter().any(|x| x == a)),
        None => false,
        Some(Audience::Bad) => return Err(Error::invalid_token(TokenRejection::InvalidClaim)),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_token(TokenRejection::WrongAudience))
    }
}

/// What a token says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Declared {
    /// Nothing: no `typ` beyond `JWT`, no `token_use`, no Keycloak `typ` claim, no ID-token sign.
    Nothing,
    /// An access token: `typ: at+jwt`, `token_use: access`, Keycloak's `typ: Bearer`.
    Access,
    /// An ID token: `token_use: id`, Keycloak's `typ: ID`, `typ: id_token+jwt`,
    /// or (absent any declaration) `nonce`, `at_hash` or `c_hash`.
    Id,
    /// Something else (a logout, event, DPoP proof or refresh token, ...), or
    /// declarations that contradict each other.
    Other,
}

/// What the token's `typ` header, Cognito `token_use` claim and Keycloak
/// `typ` claim declare, together; then, when none does, the signs of an ID token.
fn classify(typ: Option<&str>, claims: &Claims) -> Result<Declared, Error> {
    let mut access = false;
    let mut id = false;
    let mut other = false;
    if let Some(tu) = &claims.token_use {
        match tu.as_str() {
            Some("access") => access = true,
            Some("id") => id = true,
            _ => return Err(Error::invalid_token(TokenRejection::InvalidClaim)),
        }
    }
    if let Some(t) = typ {
        let t = t.to_ascii_lowercase();
        match t.strip_prefix("application/").unwrap_or(&t) {
            "jwt" => {}
            "at+jwt" => access = true,
            "id_token+jwt" => id = true,
            _ => other = true,
        }
    }
    // Keycloak marks its tokens with a `typ` claim: `Bearer` for access
    // tokens, `ID`, `Refresh`, `Logout`, `Offline`, ... for the others.
    match &claims.typ {
        None => {}
        Some(Text::Str(t)) if t.eq_ignore_ascii_case("bearer") => access = true,
        Some(Text::Str(t)) if t.eq_ignore_ascii_case("id") => id = true,
        Some(_) => other = true,
    }
    Ok(match (access, id, other) {
        (_, _, true) | (true, true, _) => Declared::Other,
        (true, false, false) => Declared::Access,
        (false, true, false) => Declared::Id,
        (false, false, false) => {
            if claims.id_signs {
                Declared::Id
            } else {
                Declared::Nothing
            }
        }
    })
}

fn scopes(claims: &Claims) -> Result<Vec<String>, Error> {
    let bad = || Error::invalid_token(TokenRejection::InvalidClaim);
    let mut out = Vec::new();
    match &claims.scope {
        None | Some(Text::Null) => {}
        Some(Text::Str(s)) => out.extend(s.split_ascii_whitespace().map(str::to_owned)),
        Some(Text::Other) => return Err(bad()),
    }
    match &claims.scp {
        None | Some(Scp::Null) => {}
        Some(Scp::Str(s)) => out.extend(s.split_ascii_whitespace().map(str::to_owned)),
        Some(Scp::List(a)) => out.extend(a.iter().cloned()),
        Some(Scp::Bad) => return Err(bad()),
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::ErrorKind;
    use crate::credentials::{Authenticator, CredentialsConfig};
    use crate::fetch::{FetchFuture, HttpResponse};
    use crate::mint::{SigningKey, jwks_document};

    const ISSUER: &str = "https://id.example.com";
    const SECRET: &str = "a shared secret of at least 32 bytes, for tests";

    fn hmac_issuer() -> IssuerConfig {
        IssuerConfig::new(ISSUER)
            .with_hmac_secret(SECRET)
            .with_algorithms([Algorithm::HS256])
            .with_audience("api")
            .with_client_id("web")
    }

    fn verifier(issuer: IssuerConfig) -> TokenVerifier {
        TokenVerifier::new(VerifierConfig::new([("main".to_owned(), issuer)])).unwrap()
    }

    /// A token of `kind` (audience `api` or `web`) with `extra` claims and a `typ` header.
    fn token(kind: TokenKind, extra: &Value, typ: Option<&str>) -> String {
        let mut claims = json!({
            "iss": ISSUER, "sub": "u-1", "exp": 4_102_444_800u64,
            "aud": if kind == TokenKind::Access { "api" } else { "web" },
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        SigningKey::from_secret(Algorithm::HS256, "k", SECRET.as_bytes())
            .unwrap()
            .sign(&claims, typ)
            .unwrap()
    }

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[tokio::test]
    async fn email_is_the_vouched_for_address_only() {
        // (email_verified, trust an absent claim, whether the email is kept)
        let table = [
            (Some(json!(true)), false, true),
            (Some(json!("true")), false, true),
            (Some(json!(false)), false, false),
            (Some(json!(false)), true, false),
            (Some(json!("false")), true, false),
            (Some(json!("yes")), true, false),
            (Some(json!(1)), true, false),
            (Some(json!(null)), true, false),
            (None, false, false),
            (None, true, true),
        ];
        for (verified, trust, kept) in table {
            let v = verifier(hmac_issuer().with_trust_email_without_verified_claim(trust));
            let mut extra = json!({"email": "alice@example.com"});
            if let Some(verified) = &verified {
                extra["email_verified"] = verified.clone();
            }
            for kind in [TokenKind::Access, TokenKind::Id] {
                let t = token(kind, &extra, None);
                let p = v.verify_as(&t, kind).await.unwrap();
                let expected = kept.then_some("alice@example.com");
                assert_eq!(p.email(), expected, "{verified:?} trust={trust} {kind:?}");
                // The raw claim stays reachable for those who knowingly want it.
                assert_eq!(p.claim("email"), Some(&json!("alice@example.com")));
            }
        }
    }

    #[tokio::test]
    async fn an_unvouched_email_as_user_id_is_refused() {
        let v = verifier(hmac_issuer().with_user_id_claim("email"));
        let ok = token(
            TokenKind::Access,
            &json!({"email": "alice@example.com", "email_verified": true}),
            None,
        );
        assert_eq!(v.verify(&ok).await.unwrap().user_id(), "alice@example.com");
        for extra in [
            json!({"email": "mallory@example.com", "email_verified": false}),
            json!({"email": "mallory@example.com", "email_verified": "false"}),
            json!({"email": "mallory@example.com"}),
        ] {
            let e = v
                .verify(&token(TokenKind::Access, &extra, None))
                .await
                .unwrap_err();
            assert_eq!(
                e.rejection(),
                Some(TokenRejection::UnverifiedEmail),
                "{extra}"
            );
            let r = e.to_reply("api");
            assert_eq!(r.status, 401);
            assert!(r.body_text().contains("invalid_token"), "{}", r.body_text());
            assert!(!r.body_text().contains("mallory"), "{}", r.body_text());
        }
        let trusting = verifier(
            hmac_issuer()
                .with_user_id_claim("email")
                .with_trust_email_without_verified_claim(true),
        );
        let silent = token(
            TokenKind::Access,
            &json!({"email": "bob@example.com"}),
            None,
        );
        assert_eq!(
            trusting.verify(&silent).await.unwrap().user_id(),
            "bob@example.com"
        );
    }

    #[tokio::test]
    async fn a_forwarded_id_token_gets_the_same_email_rule() {
        let v = verifier(hmac_issuer());
        let auth = Authenticator::new(
            v,
            CredentialsConfig::default().with_id_token_header("x-id-token"),
        );
        let access = token(
            TokenKind::Access,
            &json!({"email": "alice@example.com", "email_verified": true}),
            Some("at+jwt"),
        );
        let id = token(
            TokenKind::Id,
            &json!({"email": "mallory@example.com", "email_verified": false, "nonce": "n"}),
            None,
        );
        let bearer = format!("Bearer {access}");
        let headers: &[(&str, &str)] = &[("authorization", &bearer), ("x-id-token", &id)];
        let caller = auth.authenticate(headers).await.unwrap().unwrap();
        assert_eq!(caller.principal.email(), Some("alice@example.com"));
        let id = caller.id_token.unwrap();
        assert_eq!(id.email(), None);
        assert_eq!(id.claim("email"), Some(&json!("mallory@example.com")));
    }

    #[tokio::test]
    async fn a_token_that_says_it_is_something_else_is_refused() {
        use AccessTokenType::{Lenient, Strict};
        use TokenKind::{Access, Id};
        let none = json!({});
        let kc = |t: &str| json!({ "typ": t });
        // (expected kind, mode, typ header, claims, accepted)
        let table: Vec<(TokenKind, AccessTokenType, Option<&str>, Value, bool)> = vec![
            (Access, Lenient, None, none.clone(), true),
            (Access, Lenient, Some("JWT"), none.clone(), true),
            (Access, Lenient, Some("jwt"), none.clone(), true),
            (Access, Lenient, Some("application/jwt"), none.clone(), true),
            (Access, Lenient, Some("at+jwt"), none.clone(), true),
            (Access, Lenient, Some("AT+JWT"), none.clone(), true),
            (
                Access,
                Lenient,
                Some("application/at+jwt"),
                none.clone(),
                true,
            ),
            (Access, Lenient, Some("logout+jwt"), none.clone(), false),
            (Access, Lenient, Some("secevent+jwt"), none.clone(), false),
            (Access, Lenient, Some("dpop+jwt"), none.clone(), false),
            (Access, Lenient, Some("id_token+jwt"), none.clone(), false),
            (
                Access,
                Lenient,
                Some("application/logout+jwt"),
                none.clone(),
                false,
            ),
            (Access, Lenient, Some("JOSE"), none.clone(), false),
            (Access, Lenient, Some("JWT"), kc("Bearer"), true),
            (Access, Lenient, Some("JWT"), kc("Refresh"), false),
            (Access, Lenient, Some("JWT"), kc("Logout"), false),
            (Access, Lenient, Some("JWT"), kc("Offline"), false),
            (Access, Lenient, Some("JWT"), kc("ID"), false),
            (Access, Lenient, None, json!({"typ": 7}), false),
            (Access, Lenient, None, json!({"nonce": "n"}), false),
            (Access, Lenient, None, json!({"token_use": "id"}), false),
            (Access, Lenient, Some("at+jwt"), kc("ID"), false),
            (Access, Lenient, Some("at+jwt"), kc("Bearer"), true),
            (Access, Strict, None, none.clone(), false),
            (Access, Strict, Some("JWT"), none.clone(), false),
            (Access, Strict, Some("at+jwt"), none.clone(), true),
            (
                Access,
                Strict,
                Some("application/at+jwt"),
                none.clone(),
                true,
            ),
            (Access, Strict, Some("JWT"), kc("Bearer"), true),
            (Access, Strict, None, json!({"token_use": "access"}), true),
            (Access, Strict, Some("logout+jwt"), none.clone(), false),
            (Access, Strict, Some("JWT"), kc("Refresh"), false),
            (Access, Strict, Some("at+jwt"), kc("Logout"), false),
            (Id, Lenient, None, none.clone(), true),
            (Id, Lenient, Some("JWT"), json!({"nonce": "n"}), true),
            (Id, Lenient, Some("id_token+jwt"), none.clone(), true),
            (Id, Lenient, Some("JWT"), kc("ID"), true),
            (Id, Lenient, Some("at+jwt"), none.clone(), false),
            (Id, Lenient, Some("logout+jwt"), none.clone(), false),
            (Id, Lenient, Some("secevent+jwt"), none.clone(), false),
            (Id, Lenient, Some("dpop+jwt"), none.clone(), false),
            (Id, Lenient, Some("JWT"), kc("Bearer"), false),
            (Id, Lenient, Some("JWT"), kc("Refresh"), false),
            (Id, Lenient, Some("JWT"), kc("Logout"), false),
            (Id, Lenient, None, json!({"token_use": "access"}), false),
            (Id, Strict, Some("JWT"), kc("ID"), true),
            (Id, Strict, Some("logout+jwt"), none.clone(), false),
        ];
        for (kind, mode, typ, claims, accepted) in table {
            let v = verifier(hmac_issuer().with_access_token_type(mode));
            let result = v.verify_as(&token(kind, &claims, typ), kind).await;
            let case = format!("{kind:?} {mode:?} typ={typ:?} {claims}");
            if accepted {
                assert_eq!(result.unwrap().token_kind(), kind, "{case}");
            } else {
                let e = result.unwrap_err();
                assert_eq!(
                    e.rejection(),
                    Some(TokenRejection::WrongTokenType),
                    "{case}"
                );
            }
        }
    }

    /// Serves fixed answers by URL and records what was asked.
    #[derive(Debug, Default)]
    struct Fixed {
        answers: HashMap<String, Vec<u8>>,
        asked: Mutex<Vec<String>>,
    }

    impl HttpFetch for Fixed {
        fn get<'a>(&'a self, url: &'a str) -> FetchFuture<'a> {
            self.asked.lock().unwrap().push(url.to_owned());
            let answer = self.answers.get(url).cloned();
            Box::pin(async move {
                match answer {
                    Some(body) => Ok(HttpResponse::new(200, None, body)),
                    None => Ok(HttpResponse::new(404, None, Vec::new())),
                }
            })
        }
    }

    fn build(
        issuer: IssuerConfig,
        allow_http: bool,
        fetch: Arc<Fixed>,
    ) -> Result<TokenVerifier, Error> {
        TokenVerifier::builder(
            VerifierConfig::new([("main".to_owned(), issuer)])
                .with_danger_allow_plain_http(allow_http),
        )
        .http(fetch)
        .build()
    }

    #[test]
    fn provider_urls_are_https_except_loopback() {
        let es = |i: &str| {
            IssuerConfig::new(i)
                .with_algorithms([Algorithm::ES256])
                .with_audience("api")
        };
        let fetch = Arc::new(Fixed::default());
        // (issuer, the configuration key named, accepted with the opt-out)
        let refused = [
            (
                es(ISSUER).with_jwks_url("http://id.example.com/jwks"),
                "issuers.main.jwks_url",
                true,
            ),
            (
                es(ISSUER)
                    .with_discovery_url("http://id.example.com/.well-known/openid-configuration"),
                "issuers.main.discovery_url",
                true,
            ),
            (es("http://id.example.com"), "issuers.main.issuer", true),
            (
                es(ISSUER).with_jwks_url("ftp://id.example.com/jwks"),
                "issuers.main.jwks_url",
                false,
            ),
            (
                es(ISSUER).with_jwks_url("https://user:pw@id.example.com/jwks"),
                "issuers.main.jwks_url",
                false,
            ),
        ];
        for (issuer, key, opt_out) in refused {
            let e = build(issuer.clone(), false, Arc::clone(&fetch)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.message().contains(&format!("`{key}`")), "{key}: {e}");
            // The explicit opt-out accepts plain http anywhere, never another scheme.
            let with_opt_out = build(issuer, true, Arc::clone(&fetch));
            assert_eq!(with_opt_out.is_ok(), opt_out, "{key}: {with_opt_out:?}");
        }
        for url in [
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "http://[::1]:9/jwks",
            "https://id.example.com/jwks",
        ] {
            build(es(ISSUER).with_jwks_url(url), false, Arc::clone(&fetch)).unwrap();
        }
        build(es("http://127.0.0.1:9"), false, Arc::clone(&fetch)).unwrap();
        assert!(fetch.asked.lock().unwrap().is_empty());
    }

    fn discovery(jwks_uri: &str, key: &SigningKey) -> Arc<Fixed> {
        let mut answers = HashMap::new();
        answers.insert(
            format!("{ISSUER}/.well-known/openid-configuration"),
            json!({"issuer": ISSUER, "jwks_uri": jwks_uri})
                .to_string()
                .into_bytes(),
        );
        answers.insert(
            jwks_uri.to_owned(),
            jwks_document([key]).to_string().into_bytes(),
        );
        Arc::new(Fixed {
            answers,
            asked: Mutex::default(),
        })
    }

    #[tokio::test]
    async fn a_plain_http_jwks_uri_in_discovery_fails_closed() {
        let key = SigningKey::generate(Algorithm::ES256, "k1").unwrap();
        let issuer = || {
            IssuerConfig::new(ISSUER)
                .with_algorithms([Algorithm::ES256])
                .with_audience("api")
        };
        let t = key
            .sign(
                &json!({"iss": ISSUER, "aud": "api", "sub": "u", "exp": 4_102_444_800u64}),
                None,
            )
            .unwrap();
        let plain = "http://keys.example.com/jwks";
        let fetch = discovery(plain, &key);
        let v = build(issuer(), false, Arc::clone(&fetch)).unwrap();
        let e = v.verify(&t).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(!fetch.asked.lock().unwrap().iter().any(|u| u == plain));
        // Loopback and https are fetched; so is plain http with the opt-out.
        for (uri, allow) in [
            ("http://127.0.0.1:9/jwks", false),
            ("https://keys.example.com/jwks", false),
            (plain, true),
        ] {
            let fetch = discovery(uri, &key);
            let v = build(issuer(), allow, Arc::clone(&fetch)).unwrap();
            assert_eq!(v.verify(&t).await.unwrap().user_id(), "u", "{uri}");
            assert!(fetch.asked.lock().unwrap().iter().any(|u| u == uri));
        }
    }

    #[test]
    fn refusals_are_logged_at_debug_and_summarized_at_most_once_an_interval() {
        let v = verifier(hmac_issuer());
        let capture = crate::refusals::tests::Capture::default();
        let marker = "eyJtoken-content-marker";
        tracing::subscriber::with_default(capture.clone(), || {
            run(async {
                for _ in 0..1000 {
                    v.verify(marker).await.unwrap_err();
                }
            });
        });
        let refused = capture
            .lines(tracing::Level::DEBUG)
            .into_iter()
            .filter(|l| l.contains("token refused"))
            .count();
        assert_eq!(refused, 1000);
        let summaries = [tracing::Level::INFO, tracing::Level::WARN]
            .into_iter()
            .flat_map(|l| capture.lines(l))
            .count();
        assert!(summaries <= 2, "{}", capture.all());
        assert!(
            !capture.all().contains("token-content"),
            "{}",
            capture.all()
        );
    }

    #[tokio::test]
    async fn debug_shows_no_cached_token() {
        let v = verifier(hmac_issuer());
        let t = token(TokenKind::Access, &json!({}), None);
        v.verify(&t).await.unwrap();
        let shown = format!("{v:?}");
        assert!(!shown.contains(&t[..20]), "{shown}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("cached_tokens: Some(1)"), "{shown}");
    }
}
