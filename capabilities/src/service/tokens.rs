//! Tokens of [`Capabilities`]: user, service and API tokens (HS256 under a
//! key derived from the secret key), what they may hold, and their
//! revocation ([`StoreRevocationCheck`]).

use super::management::parse_body;
use super::*;

/// Derives the token signing secret: HKDF-SHA256 of the secret key, 32 bytes,
/// base64url (the HMAC secret is configured as text).
pub(super) fn derive_key(secret: &[u8]) -> Result<String, Error> {
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

/// The claims of a service or API token.
#[derive(Debug, Deserialize)]
pub(super) struct TokenClaims {
    pub(super) sub: String,
    pub(super) caps: Vec<String>,
    pub(super) jti: String,
    pub(super) exp: u64,
    #[serde(default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) issued_by: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    token: Option<String>,
    id: Option<String>,
}

impl Capabilities {
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
        let account = self.account_closure(user).await?;
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
        self.issue_user_token_for_login(caller, None).await
    }

    /// [`issue_user_token`](Self::issue_user_token), the token bound to the
    /// provider login `login` when given: it carries it as its
    /// [`LOGIN_CLAIM`], and the relying party refuses it once that login
    /// is refused by the provider.
    ///
    /// # Errors
    ///
    /// As [`issue_user_token`](Self::issue_user_token).
    pub async fn issue_user_token_for_login(
        &self,
        caller: Option<&Authenticated>,
        login: Option<&str>,
    ) -> Result<Reply, Error> {
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
        let mut extra = vec![("kind", json!(KIND_USER)), ("email", json!(user))];
        if let Some(login) = login {
            extra.push((LOGIN_CLAIM, json!(login)));
        }
        let (token, jti) = self.mint(user, &[], &extra, ttl)?;
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

    /// easy-oauth's `POST /revoke_token` with a token: revokes a user token
    /// of this service (from `GET /token`) until its expiry. Holding the
    /// token is the right to revoke it, as in easy-oauth (and RFC 7009).
    ///
    /// # Errors
    ///
    /// 400 `Malformed token` when it is no valid token of this service
    /// (revoked ones included), 400 for a service or API token (revoked by
    /// a manager through `POST /token/revoke`, or by withdrawing their
    /// capabilities), 400 without a revocation store, 503 when the store
    /// cannot answer.
    pub async fn revoke_user_token(&self, token: &str) -> Result<(), Error> {
        let Some(revocations) = &self.inner.revocations else {
            return Err(Error::invalid_request(
                "token revocation needs a revocation store; none is configured",
            ));
        };
        let principal = match self.inner.verifier.verify(token).await {
            Ok(p) => p,
            Err(e) if e.kind() == portcullis_core::ErrorKind::Unavailable => return Err(e),
            Err(_) => return Err(Error::invalid_request("Malformed token")),
        };
        let claims: TokenClaims = principal
            .claims_as()
            .map_err(|_| Error::invalid_request("Malformed token"))?;
        if claims.kind.as_deref() != Some(KIND_USER) {
            return Err(Error::invalid_request(
                "Service tokens are revoked by removing their capabilities \
                 (or by a manager, through `POST /token/revoke`)",
            ));
        }
        revocations.revoke(&claims.jti, claims.exp).await?;
        tracing::info!(whom = %claims.sub, id = %claims.jti, "user token revoked by its holder");
        Ok(())
    }
}
