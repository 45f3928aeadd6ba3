//! Building and signing tokens.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::clock::Clock;
use portcullis_core::dangerous::sign_unchecked;
use portcullis_core::{Algorithm, TokenKind};
use serde_json::{Map, Value, json};

use super::state::{State, random_hex};

/// The `nonce` of ID tokens.
const ID_TOKEN_NONCE: &str = "n-0S6_WzA2Mj";

/// A token to mint, made by [`MockProvider::token`](crate::MockProvider::token).
///
/// Every setter consumes the builder and returns it. Times are taken from the
/// provider's [clock](crate::MockProvider::clock) when the claims are built.
///
/// Access tokens (the default) carry `iss`, `sub`, `aud` (the provider's
/// audience), `exp`, `iat`, `nbf` (equal to `iat`), a unique `jti`,
/// `client_id` and `scope` (`"openid profile email"`), and a `typ: at+jwt`
/// header. ID tokens ([`kind(TokenKind::Id)`](Self::kind)) carry `iss`,
/// `sub`, `aud` (the client id), `exp`, `iat`, `nbf`, `jti`, `nonce`,
/// `at_hash` and `auth_time`, and a `typ: JWT` header. Both carry `email`,
/// `email_verified` and `preferred_username` when set. Every header has
/// `alg` and the signing key's `kid`.
///
/// ```
/// # async fn example(provider: portcullis_testing::MockProvider) {
/// let token = provider
///     .token()
///     .subject("bob")
///     .audiences(["api-1", "api-2"])
///     .claim("roles", serde_json::json!(["admin"]))
///     .without_claim("nbf")
///     .sign();
/// # let _ = token;
/// # }
/// ```
#[must_use = "a token builder does nothing until `sign` is called"]
pub struct TokenBuilder {
    state: Arc<State>,
    kind: TokenKind,
    alg: Algorithm,
    subject: String,
    email: Option<String>,
    username: Option<String>,
    audience: Option<Value>,
    issuer: Option<String>,
    scope: Option<String>,
    expires_in: i64,
    not_before_in: Option<i64>,
    issued_at: Option<u64>,
    jti: String,
    access_token: Option<String>,
    claims: Map<String, Value>,
    removed: BTreeSet<String>,
    kid: Option<String>,
    header: Map<String, Value>,
    /// Cognito mode: the pool's region and id.
    cognito: Option<(String, String)>,
    groups: Option<Vec<String>>,
}

impl TokenBuilder {
    pub(crate) fn new(state: Arc<State>) -> Self {
        Self {
            state,
            kind: TokenKind::Access,
            alg: Algorithm::RS256,
            subject: "user-1".to_owned(),
            email: None,
            username: None,
            audience: None,
            issuer: None,
            scope: None,
            expires_in: 300,
            not_before_in: None,
            issued_at: None,
            jti: random_hex(16),
            access_token: None,
            claims: Map::new(),
            removed: BTreeSet::new(),
            kid: None,
            header: Map::new(),
            cognito: None,
            groups: None,
        }
    }

    /// Cognito mode: a token of the user pool `user_pool_id` in `region`,
    /// shaped as Cognito shapes them. `iss` is
    /// `https://cognito-idp.{region}.amazonaws.com/{user_pool_id}` (the
    /// provider serves its keys for any pool at
    /// `/{user_pool_id}/.well-known/jwks.json`, what AWS's tools ask of
    /// `AWS_ENDPOINT_URL`); no `typ` header, no `nbf`; `token_use`,
    /// `origin_jti`, `event_id` and `auth_time` in both kinds. Access
    /// tokens carry `client_id` (the provider's client id), `username` and
    /// `scope` (`aws.cognito.signin.user.admin`) and no `aud`; ID tokens
    /// carry `aud` (the client id), `cognito:username`, and `email` with
    /// `email_verified` when set. [`groups`](Self::groups) adds
    /// `cognito:groups`.
    ///
    /// ```
    /// # async fn example(provider: portcullis_testing::MockProvider) {
    /// let claims = provider.token().cognito("eu-west-1", "eu-west-1_Pool1").claims_json();
    /// assert_eq!(claims["token_use"], "access");
    /// assert!(claims.get("aud").is_none());
    /// # }
    /// ```
    pub fn cognito(mut self, region: impl Into<String>, user_pool_id: impl Into<String>) -> Self {
        self.cognito = Some((region.into(), user_pool_id.into()));
        self
    }

    /// `cognito:groups` (Cognito mode; a claim like any other otherwise).
    pub fn groups<I>(mut self, groups: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.groups = Some(groups.into_iter().map(Into::into).collect());
        self
    }

    /// The `sub` claim; `"user-1"` by default.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }

    /// The `email` claim, with `email_verified: true`.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// The `preferred_username` claim.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets any claim, replacing the default of the same name.
    pub fn claim(mut self, name: impl Into<String>, value: Value) -> Self {
        let name = name.into();
        self.removed.remove(&name);
        self.claims.insert(name, value);
        self
    }

    /// Leaves a claim out, default or not (for example `"exp"`).
    pub fn without_claim(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.claims.remove(&name);
        self.removed.insert(name);
        self
    }

    /// `aud` as a single string, instead of the default for the token's kind.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(Value::String(audience.into()));
        self
    }

    /// `aud` as an array of strings.
    pub fn audiences<I>(mut self, audiences: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let list = audiences
            .into_iter()
            .map(|a| Value::String(a.into()))
            .collect();
        self.audience = Some(Value::Array(list));
        self
    }

    /// `iss`, instead of the provider's issuer.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The `scope` claim (space-separated); access tokens default to
    /// `"openid profile email"`, ID tokens carry it only when set here.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// `exp` as seconds from the provider clock's now; 300 by default.
    /// Negative values make a token that has already expired.
    pub fn expires_in(mut self, secs: i64) -> Self {
        self.expires_in = secs;
        self
    }

    /// `nbf` as seconds from the provider clock's now (by default `nbf` equals `iat`).
    pub fn not_before_in(mut self, secs: i64) -> Self {
        self.not_before_in = Some(secs);
        self
    }

    /// `iat` (and `auth_time` of ID tokens) as seconds since the Unix epoch,
    /// instead of the provider clock's now. `nbf` follows unless set with
    /// [`not_before_in`](Self::not_before_in); `exp` stays relative to the clock.
    pub fn issued_at(mut self, secs: u64) -> Self {
        self.issued_at = Some(secs);
        self
    }

    /// Access token (the default) or ID token; see the type's documentation.
    pub fn kind(mut self, kind: TokenKind) -> Self {
        self.kind = kind;
        self
    }

    /// The signing algorithm; RS256 by default. The provider's current key for
    /// it signs (see [`MockProvider::signing_key`](crate::MockProvider::signing_key)).
    pub fn algorithm(mut self, alg: Algorithm) -> Self {
        self.alg = alg;
        self
    }

    /// The header `kid`, instead of the signing key's (for example one the
    /// JWKS does not list).
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Sets a header parameter (for example `jku`), replacing the default of
    /// the same name (`alg`, `typ`, `kid`) if there is one.
    pub fn header(mut self, name: impl Into<String>, value: Value) -> Self {
        self.header.insert(name.into(), value);
        self
    }

    /// The access token an ID token's `at_hash` is computed over; without
    /// one, `at_hash` hashes a placeholder.
    pub fn at_hash_for(mut self, access_token: impl Into<String>) -> Self {
        self.access_token = Some(access_token.into());
        self
    }

    /// The claims that [`sign`](Self::sign) would sign, read from the clock now.
    pub fn claims_json(&self) -> Value {
        if let Some((region, pool)) = &self.cognito {
            return self.cognito_claims(region, pool);
        }
        let now = i64::try_from(self.state.clock.now_secs()).unwrap_or(i64::MAX);
        let iat = self
            .issued_at
            .map_or(now, |secs| i64::try_from(secs).unwrap_or(i64::MAX));
        let exp = now.saturating_add(self.expires_in);
        let nbf = self
            .not_before_in
            .map_or(iat, |secs| now.saturating_add(secs));
        let issuer = self.issuer.as_deref().unwrap_or(&self.state.issuer);

        let mut claims = Map::new();
        claims.insert("iss".into(), json!(issuer));
        claims.insert("sub".into(), json!(self.subject));
        claims.insert("exp".into(), json!(exp));
        claims.insert("iat".into(), json!(iat));
        claims.insert("nbf".into(), json!(nbf));
        claims.insert("jti".into(), json!(self.jti));
        let default_aud = if self.kind == TokenKind::Id {
            claims.insert("nonce".into(), json!(ID_TOKEN_NONCE));
            claims.insert("auth_time".into(), json!(iat));
            let placeholder = format!("mock-access-token-{}", self.jti);
            let access_token = self.access_token.as_deref().unwrap_or(&placeholder);
            claims.insert("at_hash".into(), json!(at_hash(self.alg, access_token)));
            &self.state.client_id
        } else {
            claims.insert("client_id".into(), json!(self.state.client_id));
            claims.insert("scope".into(), json!("openid profile email"));
            &self.state.audience
        };
        let aud = self.audience.clone().unwrap_or_else(|| json!(default_aud));
        claims.insert("aud".into(), aud);
        if let Some(scope) = &self.scope {
            claims.insert("scope".into(), json!(scope));
        }
        if let Some(email) = &self.email {
            claims.insert("email".into(), json!(email));
            claims.insert("email_verified".into(), json!(true));
        }
        if let Some(username) = &self.username {
            claims.insert("preferred_username".into(), json!(username));
        }
        for (name, value) in &self.claims {
            claims.insert(name.clone(), value.clone());
        }
        for name in &self.removed {
            claims.remove(name);
        }
        Value::Object(claims)
    }

    fn cognito_claims(&self, region: &str, pool: &str) -> Value {
        let now = i64::try_from(self.state.clock.now_secs()).unwrap_or(i64::MAX);
        let iat = self
            .issued_at
            .map_or(now, |secs| i64::try_from(secs).unwrap_or(i64::MAX));
        let issuer = self
            .issuer
            .clone()
            .unwrap_or_else(|| format!("https://cognito-idp.{region}.amazonaws.com/{pool}"));
        let username = self
            .username
            .clone()
            .unwrap_or_else(|| self.subject.clone());
        let mut claims = Map::new();
        claims.insert("sub".into(), json!(self.subject));
        claims.insert("iss".into(), json!(issuer));
        claims.insert("origin_jti".into(), json!(random_hex(16)));
        claims.insert("event_id".into(), json!(random_hex(16)));
        claims.insert("auth_time".into(), json!(iat));
        claims.insert("iat".into(), json!(iat));
        claims.insert("exp".into(), json!(now.saturating_add(self.expires_in)));
        claims.insert("jti".into(), json!(self.jti));
        if let Some(groups) = &self.groups {
            claims.insert("cognito:groups".into(), json!(groups));
        }
        if self.kind == TokenKind::Id {
            claims.insert("token_use".into(), json!("id"));
            let aud = self
                .audience
                .clone()
                .unwrap_or_else(|| json!(self.state.client_id));
            claims.insert("aud".into(), aud);
            claims.insert("cognito:username".into(), json!(username));
            if let Some(email) = &self.email {
                claims.insert("email".into(), json!(email));
                claims.insert("email_verified".into(), json!(true));
            }
        } else {
            claims.insert("token_use".into(), json!("access"));
            claims.insert("client_id".into(), json!(self.state.client_id));
            claims.insert("username".into(), json!(username));
            let scope = self
                .scope
                .as_deref()
                .unwrap_or("aws.cognito.signin.user.admin");
            claims.insert("scope".into(), json!(scope));
            if let Some(aud) = &self.audience {
                claims.insert("aud".into(), aud.clone());
            }
        }
        for (name, value) in &self.claims {
            claims.insert(name.clone(), value.clone());
        }
        for name in &self.removed {
            claims.remove(name);
        }
        Value::Object(claims)
    }

    /// The protected header that [`sign`](Self::sign) would sign.
    pub fn header_json(&self) -> Value {
        match &self.kid {
            Some(kid) => self.header_with_kid(kid),
            None => self.header_with_kid(self.state.signing_key(self.alg).kid()),
        }
    }

    fn header_with_kid(&self, kid: &str) -> Value {
        let typ = if self.kind == TokenKind::Id {
            "JWT"
        } else {
            "at+jwt"
        };
        let mut header = Map::new();
        header.insert("alg".into(), json!(self.alg.as_str()));
        if self.cognito.is_none() {
            header.insert("typ".into(), json!(typ));
        }
        header.insert("kid".into(), json!(kid));
        for (name, value) in &self.header {
            header.insert(name.clone(), value.clone());
        }
        Value::Object(header)
    }

    /// Signs the token with the provider's current key for the algorithm and
    /// returns it in compact form.
    ///
    /// # Panics
    ///
    /// If the key cannot sign, which does not happen with the keys the
    /// provider makes.
    pub fn sign(self) -> String {
        let key = self.state.signing_key(self.alg);
        let kid = self.kid.as_deref().unwrap_or(key.kid());
        let header = serde_json::to_vec(&self.header_with_kid(kid)).unwrap_or_default();
        let claims = serde_json::to_vec(&self.claims_json()).unwrap_or_default();
        sign_unchecked(&key, &header, &claims).unwrap_or_else(|e| {
            panic!("the mock provider could not sign a {} token: {e}", self.alg)
        })
    }
}

/// OpenID Connect `at_hash`: the left half of the hash of the token's ASCII
/// bytes, with the hash the signing algorithm uses (SHA-512 for Ed25519).
fn at_hash(alg: Algorithm, access_token: &str) -> String {
    let hash = match alg {
        Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 | Algorithm::HS384 => {
            &digest::SHA384
        }
        Algorithm::RS512 | Algorithm::PS512 | Algorithm::HS512 | Algorithm::EdDSA => {
            &digest::SHA512
        }
        _ => &digest::SHA256,
    };
    let digest = digest::digest(hash, access_token.as_bytes());
    let bytes = digest.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

impl fmt::Debug for TokenBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBuilder")
            .field("kind", &self.kind)
            .field("alg", &self.alg)
            .field("subject", &self.subject)
            .field("claims", &self.claims)
            .field("removed", &self.removed)
            .finish_non_exhaustive()
    }
}
