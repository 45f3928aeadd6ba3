//! [`TokenVerifier`]: verifies bearer JWTs from several issuers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::clock::{self, SharedClock};
use crate::config::{AccessTokenType, IssuerConfig, StaticKey, VerifierConfig};
use crate::error::{Error, TokenRejection};
use crate::fetch::HttpFetch;
use crate::jwks::{Location, RemoteKeys};
use crate::jws;
use crate::keys::{KeySet, VerifyingKey};
use crate::principal::{Principal, RawToken, TokenKind};
use crate::revocation::RevocationCheck;

/// Verifies JWTs from the configured issuers. Cheap to clone; share one per process.
///
/// A token is routed to its issuer by the exact `iss` string; a token from an
/// unknown issuer is refused without any network call. The algorithm comes from
/// the issuer's configuration and the key, never from the token alone.
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

#[derive(Debug)]
struct Inner {
    issuers: HashMap<String, Issuer>,
    cache: Option<quick_cache::sync::Cache<Box<str>, Cached>>,
    clock: SharedClock,
    max_token_bytes: usize,
}

/// A verified token in the cache, with its issuer's revocation check (asked
/// on every hit: a cached token is refused as soon as it is revoked).
#[derive(Debug, Clone)]
struct Cached {
    principal: Arc<Principal>,
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
        let location = if let Some(url) = &ic.jwks_url {
            check_url(url).map_err(|why| err("jwks_url", why))?;
            Location::Jwks(url.clone())
        } else if let Some(c) = &ic.cognito {
            Location::Jwks(format!("{}/.well-known/jwks.json", c.issuer()))
        } else {
            let url = ic.discovery_url.clone().unwrap_or_else(|| {
                format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                )
            });
            check_url(&url).map_err(|why| err("discovery_url", why))?;
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
        required_claims: ic.required_claims.clone(),
        leeway_ms: leeway * 1000,
        access_type: ic.access_token_type,
    })
}

fn check_url(url: &str) -> Result<(), &'static str> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(())
    } else {
        Err("must be an http(s) URL")
    }
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
    pub async fn verify_as(&self, token: &str, kind: TokenKind) -> Result<Arc<Principal>, Error> {
        let result = self.verify_inner(token, kind).await;
        if let Err(e) = &result {
            // The reason only: token content never reaches the log.
            tracing::info!(kind = ?e.kind(), rejection = ?e.rejection(), reason = %e, "token refused");
        }
        result
    }

    async fn verify_inner(&self, token: &str, kind: TokenKind) -> Result<Arc<Principal>, Error> {
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
            } else if hit.principal.kind == kind {
                check_revocation(hit.revocations.as_deref(), &hit.principal).await?;
                return Ok(hit.principal);
            }
        }
        let parsed = jws::parse(token)?;
        let iss = match parsed.claims.get("iss") {
            Some(Value::String(s)) => s,
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
        let principal = issuer.validate(parsed.claims, parsed.typ.as_deref(), kind, now, token)?;
        let principal = Arc::new(principal);
        check_revocation(issuer.revocations.as_deref(), &principal).await?;
        if let Some(cache) = &inner.cache
            && now < principal.expires_at.saturating_mul(1000)
        {
            cache.insert(
                token.into(),
                Cached {
                    principal: Arc::clone(&principal),
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
    match check {
        Some(check) if check.is_revoked(principal).await? => {
            Err(Error::invalid_token(TokenRejection::Revoked))
        }
        _ => Ok(()),
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
        claims: Map<String, Value>,
        typ: Option<&str>,
        expected: TokenKind,
        now_ms: u64,
        token: &str,
    ) -> Result<Principal, Error> {
        let invalid = || Error::invalid_token(TokenRejection::InvalidClaim);
        let exp = match claims.get("exp") {
            None | Some(Value::Null) => {
                return Err(Error::invalid_token(TokenRejection::MissingClaim));
            }
            Some(v) => numeric_date(v).ok_or_else(invalid)?,
        };
        if exp.saturating_mul(1000).saturating_add(self.leeway_ms) <= now_ms {
            return Err(Error::invalid_token(TokenRejection::Expired));
        }
        for name in ["nbf", "iat"] {
            if let Some(v) = claims.get(name) {
                let t = numeric_date(v).ok_or_else(invalid)?;
                if t.saturating_mul(1000) > now_ms.saturating_add(self.leeway_ms) {
                    return Err(Error::invalid_token(TokenRejection::NotYetValid));
                }
            }
        }
        let actual = classify(typ, &claims)?;
        match expected {
            TokenKind::Access => {
                let refused = match self.access_type {
                    AccessTokenType::Lenient => actual == Some(TokenKind::Id),
                    AccessTokenType::Strict => actual != Some(TokenKind::Access),
                };
                if refused {
                    return Err(Error::invalid_token(TokenRejection::WrongTokenType));
                }
                if self.cognito {
                    match claims.get("client_id") {
                        Some(Value::String(c)) if self.id_audiences.contains(c) => {}
                        Some(Value::String(_)) | None => {
                            return Err(Error::invalid_token(TokenRejection::WrongAudience));
                        }
                        Some(_) => return Err(invalid()),
                    }
                } else {
                    check_audience(claims.get("aud"), &self.audiences)?;
                }
            }
            TokenKind::Id => {
                if actual == Some(TokenKind::Access) {
                    return Err(Error::invalid_token(TokenRejection::WrongTokenType));
                }
                check_audience(claims.get("aud"), &self.id_audiences)?;
            }
        }
        for name in &self.required_claims {
            if claims.get(name).is_none_or(Value::is_null) {
                return Err(Error::invalid_token(TokenRejection::MissingClaim));
            }
        }
        let string_claim =
            |claims: &Map<String, Value>, name: &str| -> Result<Option<String>, Error> {
                match claims.get(name) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    Some(_) => Err(Error::invalid_token(TokenRejection::InvalidClaim)),
                }
            };
        let subject = string_claim(&claims, "sub")?;
        let email = string_claim(&claims, "email")?;
        let username = match string_claim(&claims, "preferred_username")? {
            Some(u) => Some(u),
            None => match string_claim(&claims, "cognito:username")? {
                Some(u) => Some(u),
                None if self.cognito => string_claim(&claims, "username")?,
                None => None,
            },
        };
        let user_id = match string_claim(&claims, &self.user_id_claim)? {
            Some(u) if !u.is_empty() => u,
            _ => return Err(Error::invalid_token(TokenRejection::MissingClaim)),
        };
        let scopes = scopes(&claims)?;
        // The token was routed here by its exact `iss`.
        let issuer = self.issuer.clone();
        Ok(Principal {
            user_id,
            subject,
            email,
            username,
            issuer,
            expires_at: exp,
            scopes,
            kind: actual.unwrap_or(expected),
            claims: Arc::new(claims),
            token: RawToken::new(token),
        })
    }
}

/// A NumericDate: a JSON number, non-negative; fractions are truncated.
/// Strings, booleans and null are refused (CVE-2026-25537 was the acceptance of strings).
fn numeric_date(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Some(u)
            } else {
                n.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e15)
                    .map(|f| f as u64)
            }
        }
        _ => None,
    }
}

fn check_audience(aud: Option<&Value>, accepted: &[String]) -> Result<(), Error> {
    let ok = match aud {
        Some(Value::String(a)) => accepted.iter().any(|x| x == a),
        Some(Value::Array(list)) => {
            if !list.iter().all(Value::is_string) {
                return Err(Error::invalid_token(TokenRejection::InvalidClaim));
            }
            list.iter()
                .filter_map(Value::as_str)
                .any(|a| accepted.iter().any(|x| x == a))
        }
        None => false,
        Some(_) => return Err(Error::invalid_token(TokenRejection::InvalidClaim)),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_token(TokenRejection::WrongAudience))
    }
}

/// What a token says it is: `Some(Access)`, `Some(Id)` or `None` (does not say).
fn classify(typ: Option<&str>, claims: &Map<String, Value>) -> Result<Option<TokenKind>, Error> {
    if let Some(tu) = claims.get("token_use") {
        return match tu.as_str() {
            Some("access") => Ok(Some(TokenKind::Access)),
            Some("id") => Ok(Some(TokenKind::Id)),
            _ => Err(Error::invalid_token(TokenRejection::InvalidClaim)),
        };
    }
    if let Some(t) = typ {
        let t = t.to_ascii_lowercase();
        if t == "at+jwt" || t == "application/at+jwt" {
            return Ok(Some(TokenKind::Access));
        }
    }
    // Keycloak marks its tokens with a `typ` claim.
    match claims.get("typ").and_then(Value::as_str) {
        Some("Bearer") => return Ok(Some(TokenKind::Access)),
        Some("ID") => return Ok(Some(TokenKind::Id)),
        _ => {}
    }
    if ["nonce", "at_hash", "c_hash"]
        .iter()
        .any(|c| claims.contains_key(*c))
    {
        return Ok(Some(TokenKind::Id));
    }
    Ok(None)
}

fn scopes(claims: &Map<String, Value>) -> Result<Vec<String>, Error> {
    let bad = || Error::invalid_token(TokenRejection::InvalidClaim);
    let mut out = Vec::new();
    match claims.get("scope") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => out.extend(s.split_ascii_whitespace().map(str::to_owned)),
        Some(_) => return Err(bad()),
    }
    match claims.get("scp") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => out.extend(s.split_ascii_whitespace().map(str::to_owned)),
        Some(Value::Array(a)) => {
            for v in a {
                out.push(v.as_str().ok_or_else(bad)?.to_owned());
            }
        }
        Some(_) => return Err(bad()),
    }
    out.sort();
    out.dedup();
    Ok(out)
}
