//! [`Issuer`]: the authorization server's endpoints, framework-agnostic.
//! Each takes an [`IssuerRequest`] (what an adapter copies out of its
//! request) and answers a [`Reply`] (which the adapter copies out).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::clock::{self, SharedClock};
use portcullis_core::{Error, Reply, Secret};
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;

use crate::config::{ClientConfig, Grant, IssuerConfig};
use crate::error::{OAuthError, OAuthErrorCode, TOKEN_HEADERS};
use crate::form::{Form, MAX_FORM_BYTES, Presented, client_credentials};
use crate::keys::KeyRing;
use crate::limiter::AttemptLimiter;
use crate::password::{CredentialCheck, PasswordAttempt, UserGrant};
use crate::refresh::{RefreshFamilies, RefreshStore};

/// The `typ` header of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims an application's [`UserGrant::claims`] cannot set: the
/// registered ones and those the issuer sets.
pub const RESERVED_CLAIMS: [&str; 14] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "scope",
    "user_id",
    "scopes",
    "username",
    "issued_to",
    "sid",
];

/// An endpoint of the issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `GET /.well-known/oauth-authorization-server` (RFC 8414).
    Metadata,
    /// `GET /.well-known/openid-configuration` (the same document, where
    /// OpenID Connect verifiers look).
    OpenIdConfiguration,
    /// `GET` the JWKS.
    Jwks,
    /// `POST` the token endpoint (RFC 6749).
    Token,
    /// `POST` revocation (RFC 7009).
    Revocation,
    /// `POST` introspection (RFC 7662).
    Introspection,
}

/// One route of the issuer: method (`GET` or `POST`), path relative to the
/// issuer URL's path, endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerRoute {
    /// `true` for `POST` (a form body, read up to
    /// [`MAX_FORM_BYTES`]), `false` for `GET`.
    pub post: bool,
    /// The path.
    pub path: String,
    /// The endpoint.
    pub endpoint: Endpoint,
}

/// What an adapter copies out of a request for the issuer.
#[derive(Debug, Default, Clone, Copy)]
pub struct IssuerRequest<'a> {
    /// The `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The body, at most [`MAX_FORM_BYTES`] (the adapter answers
    /// [`Issuer::body_too_large`] past it).
    pub body: &'a [u8],
    /// The peer's address, for failed-login limits and `issued_to`.
    pub client_addr: Option<IpAddr>,
}

/// A token answer's JSON (RFC 6749 section 5.1).
fn token_reply(body: &Value) -> Reply {
    Reply {
        status: 200,
        headers: TOKEN_HEADERS
            .iter()
            .map(|(n, v)| (*n, (*v).to_owned()))
            .collect(),
        body: body.to_string().into_bytes(),
    }
}

/// Whether `scope` is an RFC 6749 scope token (`%x21 / %x23-5B / %x5D-7E`).
pub(crate) fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// The authorization server: configuration, keys, refresh families, the
/// application's credential check and failed-login limits. Cheap to clone.
///
/// ```
/// # async fn run() -> Result<(), portcullis_core::Error> {
/// use std::sync::Arc;
/// use portcullis_issuer::{ClientConfig, Endpoint, Issuer, IssuerConfig, IssuerRequest};
/// use portcullis_issuer::password::{Argon2Users, StoredUser, UserGrant, hash_password};
///
/// let alice = StoredUser {
///     password_hash: hash_password("alice-password")?,
///     grant: UserGrant { user_id: "u-1".into(), username: "alice".into(), scopes: vec!["user:read".into()], claims: Default::default() },
/// };
/// let mut config = IssuerConfig::new("https://auth.example.com")
///     .with_scopes([("user:read", "Read access")])
///     .with_client(ClientConfig::first_party("web"));
/// config.anonymous_client = Some("web".into());
/// let issuer = Issuer::builder(config)
///     .credential_check(Argon2Users::new([("alice".to_owned(), alice)], 2)?)
///     .build()?;
/// let reply = issuer
///     .handle(Endpoint::Token, IssuerRequest {
///         content_type: Some("application/x-www-form-urlencoded"),
///         body: b"grant_type=password&username=alice&password=alice-password",
///         ..IssuerRequest::default()
///     })
///     .await;
/// assert_eq!(reply.status, 200);
/// let answer: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
/// assert_eq!(answer["token_type"], "Bearer");
/// assert_eq!(answer["scope"], "user:read");
/// # Ok(()) }
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(run()).unwrap();
/// ```
#[derive(Clone)]
pub struct Issuer {
    inner: Arc<Inner>,
}

struct Inner {
    config: IssuerConfig,
    keys: KeyRing,
    families: RefreshFamilies,
    check: Option<Arc<dyn CredentialCheck>>,
    limiter: AttemptLimiter,
    clock: SharedClock,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.inner.config.issuer)
            .field("keys", &self.inner.keys)
            .field("families", &self.inner.families)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Issuer`].
#[derive(Debug)]
pub struct IssuerBuilder {
    config: IssuerConfig,
    key: Option<portcullis_core::mint::SigningKey>,
    store: Option<Arc<dyn RefreshStore>>,
    check: Option<Arc<dyn CredentialCheck>>,
    clock: SharedClock,
}

impl IssuerBuilder {
    /// Signs with `key` (default: a new ES256 key, whose tokens a restart
    /// makes unverifiable; see [`KeyConfig`](crate::keys::KeyConfig)).
    #[must_use]
    pub fn signing_key(mut self, key: portcullis_core::mint::SigningKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Keeps refresh families in `store` (default: the embedded
    /// [`MemoryRefreshStore`](crate::refresh::MemoryRefreshStore)).
    #[must_use]
    pub fn store(mut self, store: Arc<dyn RefreshStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Checks passwords with `check` (without one, the password grant is
    /// `unsupported_grant_type`).
    #[must_use]
    pub fn credential_check(mut self, check: impl CredentialCheck) -> Self {
        self.check = Some(Arc::new(check));
        self
    }

    /// Reads time from `clock` (tests move it).
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The issuer.
    ///
    /// # Errors
    ///
    /// A configuration error from [`IssuerConfig::validate`] or the key.
    pub fn build(self) -> Result<Issuer, Error> {
        self.config.validate()?;
        let key = match self.key {
            Some(key) => key,
            None => crate::keys::KeyConfig {
                algorithm: Some(portcullis_core::Algorithm::ES256),
                ..Default::default()
            }
            .signing_key()?,
        };
        let lifetime = self.config.access_token_lifetime.as_secs();
        let store = self.store.unwrap_or_else(|| {
            Arc::new(crate::refresh::MemoryRefreshStore::new(Arc::clone(
                &self.clock,
            )))
        });
        Ok(Issuer {
            inner: Arc::new(Inner {
                keys: KeyRing::new(key, lifetime)?,
                families: RefreshFamilies::new(store, self.config.refresh, Arc::clone(&self.clock)),
                limiter: AttemptLimiter::new(self.config.attempts, Arc::clone(&self.clock)),
                check: self.check,
                clock: self.clock,
                config: self.config,
            }),
        })
    }
}

/// A client that authenticated (or, public, identified itself).
struct Client<'a> {
    config: &'a ClientConfig,
}

impl Issuer {
    /// A builder for the issuer `config` describes.
    pub fn builder(config: IssuerConfig) -> IssuerBuilder {
        IssuerBuilder {
            config,
            key: None,
            store: None,
            check: None,
            clock: clock::system(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &IssuerConfig {
        &self.inner.config
    }

    /// The signing keys (rotation: [`KeyRing::stage`], [`KeyRing::activate`]).
    pub fn keys(&self) -> &KeyRing {
        &self.inner.keys
    }

    /// The routes to mount, relative to the issuer URL's path.
    pub fn routes(&self) -> Vec<IssuerRoute> {
        let p = &self.inner.config.paths;
        let route = |post: bool, path: &str, endpoint| IssuerRoute {
            post,
            path: path.to_owned(),
            endpoint,
        };
        vec![
            route(
                false,
                "/.well-known/oauth-authorization-server",
                Endpoint::Metadata,
            ),
            route(
                false,
                "/.well-known/openid-configuration",
                Endpoint::OpenIdConfiguration,
            ),
            route(false, &p.jwks, Endpoint::Jwks),
            route(true, &p.token, Endpoint::Token),
            route(true, &p.revocation, Endpoint::Revocation),
            route(true, &p.introspection, Endpoint::Introspection),
        ]
    }

    /// The answer to a body longer than [`MAX_FORM_BYTES`]: 413, in the
    /// RFC 6749 error shape.
    pub fn body_too_large() -> Reply {
        let mut reply = OAuthError::invalid_request(format!(
            "the request body is larger than {MAX_FORM_BYTES} bytes"
        ))
        .to_reply("");
        reply.status = 413;
        reply
    }

    /// Answers `request` at `endpoint`.
    pub async fn handle(&self, endpoint: Endpoint, request: IssuerRequest<'_>) -> Reply {
        let realm = &self.inner.config.realm;
        let answer = match endpoint {
            Endpoint::Metadata | Endpoint::OpenIdConfiguration => Ok(self.metadata_reply()),
            Endpoint::Jwks => Ok(self.jwks_reply()),
            Endpoint::Token => self.token(request).await,
            Endpoint::Revocation => self.revocation(request).await,
            Endpoint::Introspection => self.introspection(request).await,
        };
        answer.unwrap_or_else(|e| e.to_reply(realm))
    }

    /// The RFC 8414 metadata (also served as OpenID discovery).
    pub fn metadata(&self) -> Value {
        let c = &self.inner.config;
        let alg = self.inner.keys.active().algorithm();
        let mut doc = json!({
            "issuer": c.issuer,
            "token_endpoint": c.url(&c.paths.token),
            "jwks_uri": c.url(&c.paths.jwks),
            "revocation_endpoint": c.url(&c.paths.revocation),
            "introspection_endpoint": c.url(&c.paths.introspection),
            "grant_types_supported": ["password", "client_credentials", "refresh_token"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "token_endpoint_auth_signing_alg_values_supported": [alg.as_str()],
        });
        if let Some(scopes) = &c.scopes {
            doc["scopes_supported"] = json!(scopes.keys().collect::<Vec<_>>());
        }
        doc
    }

    fn metadata_reply(&self) -> Reply {
        Reply::json(200, self.metadata().to_string())
            .with_header("cache-control", "public, max-age=300")
    }

    fn jwks_reply(&self) -> Reply {
        let jwks = self.inner.keys.jwks(self.inner.clock.now_secs());
        Reply::json(200, jwks.to_string()).with_header("cache-control", "public, max-age=300")
    }

    /// The client a request authenticates as.
    fn client(&self, authorization: Option<&str>, form: &Form) -> Result<Client<'_>, OAuthError> {
        let config = &self.inner.config;
        let find = |id: &str| config.clients.iter().find(|c| c.id == id);
        let client = match client_credentials(authorization, form)? {
            Presented::Nothing => config
                .anonymous_client
                .as_deref()
                .and_then(find)
                .ok_or_else(OAuthError::invalid_client)?,
            Presented::Id(id) => find(&id)
                .filter(|c| c.secret.is_none())
                .ok_or_else(OAuthError::invalid_client)?,
            Presented::IdSecret(id, secret) => {
                let client = find(&id).ok_or_else(OAuthError::invalid_client)?;
                let Some(expected) = &client.secret else {
                    return Err(OAuthError::invalid_client());
                };
                if !secret_matches(expected, &secret) {
                    return Err(OAuthError::invalid_client());
                }
                client
            }
        };
        Ok(Client { config: client })
    }

    /// The requested scopes, each known (`invalid_scope` otherwise).
    fn requested_scopes(&self, form: &Form) -> Result<Option<Vec<String>>, OAuthError> {
        let Some(scope) = form.get("scope") else {
            return Ok(None);
        };
        let mut scopes: Vec<String> = Vec::new();
        for s in scope.split(' ').filter(|s| !s.is_empty()) {
            if !is_scope_token(s) {
                return Err(OAuthError::invalid_scope("a scope is malformed"));
            }
            if let Some(known) = &self.inner.config.scopes
                && !known.contains_key(s)
            {
                return Err(OAuthError::invalid_scope(format!(
                    "the scope `{s}` is unknown"
                )));
            }
            if !scopes.iter().any(|x| x == s) {
                scopes.push(s.to_owned());
            }
        }
        Ok((!scopes.is_empty()).then_some(scopes))
    }

    async fn token(&self, request: IssuerRequest<'_>) -> Result<Reply, OAuthError> {
        let form = Form::parse(request.content_type, request.body)?;
        let grant_type = form.require("grant_type")?;
        let client = self.client(request.authorization, &form)?;
        let Some(grant) = Grant::parse(grant_type) else {
            return Err(OAuthError::new(
                OAuthErrorCode::UnsupportedGrantType,
                "this grant type is not supported",
            ));
        };
        if grant == Grant::Password && self.inner.check.is_none() {
            return Err(OAuthError::new(
                OAuthErrorCode::UnsupportedGrantType,
                "this grant type is not supported",
            ));
        }
        if !client.config.grants.contains(&grant) {
            return Err(OAuthError::new(
                OAuthErrorCode::UnauthorizedClient,
                "this client may not use this grant type",
            ));
        }
        let requested = self.requested_scopes(&form)?;
        match grant {
            Grant::Password => {
                self.password(&form, &client, requested, request.client_addr)
                    .await
            }
            Grant::ClientCredentials => self.client_credentials(&client, requested),
            Grant::RefreshToken => self.refresh(&form, &client, requested).await,
        }
    }

    async fn password(
        &self,
        form: &Form,
        client: &Client<'_>,
        requested: Option<Vec<String>>,
        addr: Option<IpAddr>,
    ) -> Result<Reply, OAuthError> {
        let username = form.require("username")?;
        let password = Secret::new(form.require("password")?);
        let limiter = &self.inner.limiter;
        if let Err(seconds) = limiter.check(username, addr) {
            return Err(OAuthError::too_many_attempts(seconds));
        }
        let check =
            self.inner.check.as_ref().ok_or_else(|| {
                OAuthError::new(OAuthErrorCode::UnsupportedGrantType, "unsupported")
            })?;
        let attempt = PasswordAttempt {
            username,
            password: &password,
            client_id: &client.config.id,
            client_addr: addr,
        };
        let Some(user) = check.check(&attempt).await? else {
            limiter.failed(username, addr);
            return Err(OAuthError::invalid_grant(
                "the username or password is wrong",
            ));
        };
        limiter.succeeded(username);
        let scope = match requested {
            None => user.scopes.clone(),
            Some(requested) => {
                let granted: Vec<String> = requested
                    .into_iter()
                    .filter(|s| user.scopes.contains(s))
                    .collect();
                if granted.is_empty() {
                    return Err(OAuthError::invalid_scope(
                        "none of the requested scopes is granted to this user",
                    ));
                }
                granted
            }
        };
        let issued_to = addr.map(|a| a.to_string());
        let access = self.mint_user(&user, &client.config.id, &scope, issued_to.as_deref())?;
        let refresh = if client.config.grants.contains(&Grant::RefreshToken) {
            Some(
                self.inner
                    .families
                    .start(&client.config.id, user, scope.clone(), issued_to)
                    .await?,
            )
        } else {
            None
        };
        Ok(self.answer(&access, refresh.as_deref(), &scope))
    }

    fn client_credentials(
        &self,
        client: &Client<'_>,
        requested: Option<Vec<String>>,
    ) -> Result<Reply, OAuthError> {
        let allowed = &client.config.scopes;
        let scope = match requested {
            None => allowed.clone(),
            Some(requested) => {
                if let Some(s) = requested.iter().find(|s| !allowed.contains(s)) {
                    return Err(OAuthError::invalid_scope(format!(
                        "the scope `{s}` is not granted to this client"
                    )));
                }
                requested
            }
        };
        let id = &client.config.id;
        let mut claims = self.base_claims(id, id, &scope)?;
        claims.insert("scopes".into(), json!(scope));
        let access = self.sign(claims)?;
        Ok(self.answer(&access, None, &scope))
    }

    async fn refresh(
        &self,
        form: &Form,
        client: &Client<'_>,
        requested: Option<Vec<String>>,
    ) -> Result<Reply, OAuthError> {
        let token = form.require("refresh_token")?;
        let redeemed = self
            .inner
            .families
            .redeem(token, &client.config.id, requested.as_deref())
            .await?;
        let family = redeemed.family;
        let scope = requested.unwrap_or_else(|| family.scope.clone());
        let Some(user) = &family.user else {
            return Err(OAuthError::invalid_grant("the refresh token has no user"));
        };
        let access =
            self.mint_user(user, &family.client_id, &scope, family.issued_to.as_deref())?;
        Ok(self.answer(&access, Some(&redeemed.token), &scope))
    }

    fn answer(&self, access: &str, refresh: Option<&str>, scope: &[String]) -> Reply {
        let mut body = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.inner.config.access_token_lifetime.as_secs(),
            "scope": scope.join(" "),
        });
        if let Some(refresh) = refresh {
            body["refresh_token"] = json!(refresh);
        }
        token_reply(&body)
    }

    fn base_claims(
        &self,
        sub: &str,
        client_id: &str,
        scope: &[String],
    ) -> Result<Map<String, Value>, OAuthError> {
        let c = &self.inner.config;
        let now = self.inner.clock.now_secs();
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| Error::config("could not draw a jti"))?;
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(c.issuer));
        claims.insert("sub".into(), json!(sub));
        claims.insert("aud".into(), json!(c.audience));
        claims.insert("exp".into(), json!(now + c.access_token_lifetime.as_secs()));
        claims.insert("iat".into(), json!(now));
        claims.insert("jti".into(), json!(URL_SAFE_NO_PAD.encode(jti)));
        claims.insert("client_id".into(), json!(client_id));
        claims.insert("scope".into(), json!(scope.join(" ")));
        Ok(claims)
    }

    /// Mints a user's access token: RFC 9068 claims, then the seed's.
    fn mint_user(
        &self,
        user: &UserGrant,
        client_id: &str,
        scope: &[String],
        issued_to: Option<&str>,
    ) -> Result<String, OAuthError> {
        let mut claims = self.base_claims(&user.user_id, client_id, scope)?;
        claims.insert("user_id".into(), json!(user.user_id));
        claims.insert("scopes".into(), json!(scope));
        claims.insert("username".into(), json!(user.username));
        if let Some(issued_to) = issued_to {
            claims.insert("issued_to".into(), json!(issued_to));
        }
        for (name, value) in &user.claims {
            if !RESERVED_CLAIMS.contains(&name.as_str()) {
                claims.insert(name.clone(), value.clone());
            }
        }
        self.sign(claims)
    }

    fn sign(&self, claims: Map<String, Value>) -> Result<String, OAuthError> {
        Ok(self
            .inner
            .keys
            .active()
            .sign(&Value::Object(claims), Some(ACCESS_TOKEN_TYP))?)
    }

    /// Mints an access token for `user` as the password exchange would,
    /// without a password (for an application that authenticated the user
    /// itself, and for tests and benchmarks).
    ///
    /// # Errors
    ///
    /// `server_error` if signing fails.
    pub fn mint_access_token(
        &self,
        user: &UserGrant,
        client_id: &str,
    ) -> Result<String, OAuthError> {
        self.mint_user(user, client_id, &user.scopes, None)
    }

    async fn revocation(&self, request: IssuerRequest<'_>) -> Result<Reply, OAuthError> {
        let form = Form::parse(request.content_type, request.body)?;
        let client = self.client(request.authorization, &form)?;
        let token = form.require("token")?;
        let looks_like_jwt = token.split('.').count() == 3;
        if form.get("token_type_hint") == Some("access_token") || looks_like_jwt {
            return Err(OAuthError::new(
                OAuthErrorCode::UnsupportedTokenType,
                "access tokens are not revoked: they expire; revoke the refresh token",
            ));
        }
        self.inner.families.revoke(token, &client.config.id).await?;
        // RFC 7009 section 2.2: 200 also for an invalid or unknown token.
        Ok(Reply {
            status: 200,
            headers: TOKEN_HEADERS
                .iter()
                .map(|(n, v)| (*n, (*v).to_owned()))
                .collect(),
            body: b"{}".to_vec(),
        })
    }

    async fn introspection(&self, request: IssuerRequest<'_>) -> Result<Reply, OAuthError> {
        let form = Form::parse(request.content_type, request.body)?;
        let client = self.client(request.authorization, &form)?;
        if client.config.secret.is_none() {
            return Err(OAuthError::invalid_client());
        }
        let token = form.require("token")?;
        let inactive = json!({"active": false});
        let c = &self.inner.config;
        let answer = if token.split('.').count() == 3 {
            match self.verify_own(token) {
                Some(mut claims) => {
                    claims.insert("active".into(), json!(true));
                    claims.insert("token_type".into(), json!("Bearer"));
                    Value::Object(claims)
                }
                None => inactive,
            }
        } else {
            match self.inner.families.live(token).await? {
                Some(family) => {
                    let mut answer = json!({
                        "active": true,
                        "token_type": "refresh_token",
                        "iss": c.issuer,
                        "client_id": family.client_id,
                        "scope": family.scope.join(" "),
                    });
                    if let Some(user) = &family.user {
                        answer["sub"] = json!(user.user_id);
                        answer["username"] = json!(user.username);
                    }
                    answer
                }
                None => inactive,
            }
        };
        Ok(token_reply(&answer))
    }

    /// The claims of an access token this issuer signed, unexpired.
    fn verify_own(&self, token: &str) -> Option<Map<String, Value>> {
        let (input, signature) = token.rsplit_once('.')?;
        let (header, payload) = input.split_once('.')?;
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if header.get("typ")?.as_str()? != ACCESS_TOKEN_TYP {
            return None;
        }
        let kid = header.get("kid")?.as_str()?;
        let now = self.inner.clock.now_secs();
        let key = self
            .inner
            .keys
            .verifying_keys(now)
            .into_iter()
            .find(|k| k.kid() == kid)?;
        if header.get("alg")?.as_str()? != key.algorithm().as_str() {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let verifying = key.verifying_key().ok()?;
        if !verifying.verify(key.algorithm(), input.as_bytes(), &signature) {
            return None;
        }
        let claims: Map<String, Value> =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let live = claims.get("iss")?.as_str()? == self.inner.config.issuer
            && claims.get("exp")?.as_u64()? > now;
        live.then_some(claims)
    }
}

fn secret_matches(expected: &Secret, presented: &str) -> bool {
    use aws_lc_rs::digest::{SHA256, digest};
    let a = digest(&SHA256, expected.expose().as_bytes());
    let b = digest(&SHA256, presented.as_bytes());
    a.as_ref().ct_eq(b.as_ref()).into()
}
