//! The verified caller.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{Error, TokenRejection};

/// Which kind of token is expected, or was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenKind {
    /// An OAuth access token (RFC 9068 `typ: at+jwt`, Cognito `token_use: access`).
    Access,
    /// An OpenID Connect ID token.
    Id,
}

/// Who a caller is: a user (a token an identity provider signed) or an
/// automation principal (an id and a token checked against a secret, see
/// [`automation`](crate::automation)).
///
/// A handler tells them apart with [`Principal::principal_kind`]: an
/// automation principal has no email, no scopes and no claims beyond
/// `principal` (the id it presented); its [`user_id`](Principal::user_id)
/// is the `id` its secret names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PrincipalKind {
    /// A user, authenticated by a token of a configured issuer.
    User,
    /// A service or job, authenticated by an id and a token checked against
    /// its secret.
    Automation,
}

impl PrincipalKind {
    /// `user` or `automation`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Automation => "automation",
        }
    }
}

/// A bearer token kept out of logs: `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct RawToken(Arc<str>);

impl RawToken {
    /// Wraps a token.
    pub fn new(token: impl Into<Arc<str>>) -> Self {
        Self(token.into())
    }

    /// The token itself, to forward it; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RawToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawToken([redacted])")
    }
}

impl fmt::Display for RawToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The email address the provider vouches for, read from a token's (or a
/// session's) claims: the one rule every path that makes a
/// [`Principal`] applies, so that an address the provider does not vouch
/// for never becomes [`Principal::email`] and never selects stored
/// capabilities.
///
/// The `email` claim (a non-empty string) is kept when `email_verified` is
///
/// - `true`, or the string `"true"` (some providers send it as a string):
///   kept;
/// - `false`, `"false"`, or any other value (another string, a number,
///   `null`, an object): dropped, as no vouch;
/// - absent: kept only when `trust_absent` is set (the issuer's
///   [`trust_email_without_verified_claim`](crate::config::IssuerConfig::trust_email_without_verified_claim),
///   false by default).
///
/// An absent claim is no vouch: Entra ID, for one, can put an unverified,
/// user-editable address in `email` without `email_verified` (the "nOAuth"
/// problem), and trusting it would let anyone choose whose capabilities they
/// get.
///
/// The raw claim stays in [`Principal::claims`] for applications that
/// knowingly want it.
///
/// ```
/// use portcullis_core::principal::vouched_email;
/// let claims = |v: serde_json::Value| v.as_object().unwrap().clone();
/// let verified = claims(serde_json::json!({"email": "a@example.com", "email_verified": true}));
/// assert_eq!(vouched_email(&verified, false).as_deref(), Some("a@example.com"));
/// let as_string = claims(serde_json::json!({"email": "a@example.com", "email_verified": "true"}));
/// assert_eq!(vouched_email(&as_string, false).as_deref(), Some("a@example.com"));
/// let unverified = claims(serde_json::json!({"email": "a@example.com", "email_verified": false}));
/// assert_eq!(vouched_email(&unverified, true), None);
/// let silent = claims(serde_json::json!({"email": "a@example.com"}));
/// assert_eq!(vouched_email(&silent, false), None);
/// assert_eq!(vouched_email(&silent, true).as_deref(), Some("a@example.com"));
/// ```
pub fn vouched_email(claims: &Map<String, Value>, trust_absent: bool) -> Option<String> {
    let email = match claims.get("email") {
        Some(Value::String(e)) => e.as_str(),
        _ => return None,
    };
    let verified = claims.get("email_verified").map(|v| match v {
        Value::Bool(verified) => *verified,
        Value::String(verified) => verified == "true",
        _ => false,
    });
    vouched(Some(email), verified, trust_absent).map(str::to_owned)
}

/// [`vouched_email`]'s rule over claims already read: `email` (when a
/// string) and whether `email_verified` vouches (`None` when absent).
pub(crate) fn vouched(
    email: Option<&str>,
    verified: Option<bool>,
    trust_absent: bool,
) -> Option<&str> {
    let email = email.filter(|e| !e.is_empty())?;
    verified.unwrap_or(trust_absent).then_some(email)
}

/// A token's claims as JSON, built from its decoded payload the first time
/// they are asked for: verifying a token reads the claims it checks
/// straight from the payload, and a caller that never looks at the others
/// never pays for a map of them.
#[derive(Default)]
pub(crate) struct LazyClaims {
    payload: Vec<u8>,
    map: OnceLock<Map<String, Value>>,
}

impl LazyClaims {
    /// Claims parsed on demand from `payload`, a JSON object the strict
    /// parser has already accepted.
    pub(crate) fn from_payload(payload: Vec<u8>) -> Self {
        Self {
            payload,
            map: OnceLock::new(),
        }
    }

    /// Claims already parsed.
    pub(crate) fn from_map(map: Map<String, Value>) -> Self {
        Self {
            payload: Vec::new(),
            map: OnceLock::from(map),
        }
    }

    /// The claims.
    pub(crate) fn get(&self) -> &Map<String, Value> {
        self.map.get_or_init(|| {
            // The payload passed the strict parser before: this cannot fail.
            crate::jws::parse_object(&self.payload).unwrap_or_default()
        })
    }
}

impl fmt::Debug for LazyClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LazyClaims([redacted])")
    }
}

/// A caller whose token has been verified.
#[derive(Clone)]
pub struct Principal {
    pub(crate) user_id: String,
    pub(crate) subject: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) issuer: String,
    pub(crate) expires_at: u64,
    pub(crate) scopes: Vec<String>,
    pub(crate) kind: TokenKind,
    pub(crate) principal_kind: PrincipalKind,
    pub(crate) claims: Arc<LazyClaims>,
    pub(crate) token: RawToken,
}

impl Principal {
    /// A principal for a login session, from claims taken as true: see
    /// [`dangerous::principal_from_unverified_claims`](crate::dangerous::principal_from_unverified_claims),
    /// the one way in from outside this crate.
    pub(crate) fn from_session(
        issuer: impl Into<String>,
        claims: Map<String, Value>,
        token: RawToken,
        expires_at: u64,
    ) -> Result<Principal, Error> {
        let text = |name: &str| -> Result<Option<String>, Error> {
            match claims.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(Error::invalid_token(TokenRejection::InvalidClaim)),
            }
        };
        let subject = match text("sub")? {
            Some(s) if !s.is_empty() => s,
            _ => return Err(Error::invalid_token(TokenRejection::MissingClaim)),
        };
        text("email")?;
        let email = vouched_email(&claims, false);
        let username = text("preferred_username")?;
        let mut scopes: Vec<String> = text("scope")?
            .map(|s| s.split_ascii_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        scopes.sort();
        scopes.dedup();
        Ok(Principal {
            user_id: subject.clone(),
            subject: Some(subject),
            email,
            username,
            issuer: issuer.into(),
            expires_at,
            scopes,
            kind: TokenKind::Id,
            principal_kind: PrincipalKind::User,
            claims: Arc::new(LazyClaims::from_map(claims)),
            token,
        })
    }

    /// An automation principal whose token matched its secret: known by
    /// the secret's `id`, `presented` (the id it sent) as its one claim.
    pub(crate) fn automation(
        id: String,
        presented: &str,
        issuer: &str,
        token: RawToken,
        expires_at: u64,
    ) -> Principal {
        let mut claims = Map::new();
        claims.insert("principal".to_owned(), Value::String(presented.to_owned()));
        Principal {
            user_id: id,
            subject: None,
            email: None,
            username: None,
            issuer: issuer.to_owned(),
            expires_at,
            scopes: Vec::new(),
            kind: TokenKind::Access,
            principal_kind: PrincipalKind::Automation,
            claims: Arc::new(LazyClaims::from_map(claims)),
            token,
        }
    }

    /// The user id: the value of the issuer's configured user-id claim (`sub` by default).
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The `sub` claim.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The email address the issuer vouches for ([`vouched_email`]): the
    /// `email` claim when `email_verified` is true (or when it is absent and
    /// the issuer is configured to trust that); `None` otherwise. This is the
    /// address capabilities are looked up by. The raw claim, vouched for or
    /// not, is in [`claims`](Self::claims).
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// The user name: `preferred_username`, else Cognito's `username` or `cognito:username`.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The issuer (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Expiry, in seconds since the Unix epoch.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// Scopes from `scope` (space separated) or `scp` (array or string).
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// The kind of token this principal was verified from.
    pub fn token_kind(&self) -> TokenKind {
        self.kind
    }

    /// A user or an automation principal.
    pub fn principal_kind(&self) -> PrincipalKind {
        self.principal_kind
    }

    /// Whether this is an automation principal (an id and a token checked
    /// against a secret) rather than a user.
    pub fn is_automation(&self) -> bool {
        self.principal_kind == PrincipalKind::Automation
    }

    /// The groups of the `cognito:groups` claim (a list of strings), empty
    /// when absent or of another shape.
    pub fn cognito_groups(&self) -> Vec<&str> {
        match self.claim("cognito:groups") {
            Some(Value::Array(groups)) => groups.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// Every claim, as JSON.
    pub fn claims(&self) -> &Map<String, Value> {
        self.claims.get()
    }

    /// One claim.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims().get(name)
    }

    /// The claims deserialized into the caller's own type.
    ///
    /// ```
    /// # use portcullis_core::Principal;
    /// #[derive(serde::Deserialize)]
    /// struct Mine { tenant: String }
    /// # fn f(p: &Principal) -> Result<(), portcullis_core::Error> {
    /// let mine: Mine = p.claims_as()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`TokenRejection::InvalidClaim`]; its cause names the claim's type,
    /// never its value (claims are token content).
    pub fn claims_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(Value::Object(self.claims().clone())).map_err(|e| {
            Error::invalid_token(TokenRejection::InvalidClaim)
                .with_source(Redacted(crate::config::without_values(&e.to_string())))
        })
    }

    /// The token this principal was verified from; never log it.
    pub fn token(&self) -> &RawToken {
        &self.token
    }
}

/// A deserialization error with the values taken out.
#[derive(Debug)]
struct Redacted(String);

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Redacted {}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("issuer", &self.issuer)
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .field("kind", &self.kind)
            .field("principal_kind", &self.principal_kind)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_as_errors_show_no_claim_value() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code, reason = "only the error is looked at")]
        struct Mine {
            tenant: u64,
        }
        let claims = serde_json::json!({"sub": "s", "tenant": "t-secret-tenant"});
        let Value::Object(claims) = claims else {
            unreachable!()
        };
        let p = Principal::from_session("https://i", claims, RawToken::new(""), 1).unwrap();
        let e = p.claims_as::<Mine>().unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(shown.contains("invalid type: string"), "{shown}");
        assert!(!shown.contains("t-secret-tenant"), "{shown}");
    }

    #[test]
    fn sessions_keep_only_the_vouched_for_email() {
        let session = |claims: Value| {
            let Value::Object(claims) = claims else {
                unreachable!()
            };
            Principal::from_session("https://i", claims, RawToken::new(""), 1).unwrap()
        };
        let kept = session(serde_json::json!({"sub": "s", "email": "a@x", "email_verified": true}));
        assert_eq!(kept.email(), Some("a@x"));
        let kept =
            session(serde_json::json!({"sub": "s", "email": "a@x", "email_verified": "true"}));
        assert_eq!(kept.email(), Some("a@x"));
        for verified in [
            serde_json::json!(false),
            serde_json::json!("false"),
            serde_json::json!("TRUE "),
            serde_json::json!(null),
        ] {
            let p = session(
                serde_json::json!({"sub": "s", "email": "a@x", "email_verified": verified}),
            );
            assert_eq!(p.email(), None, "{verified}");
            assert_eq!(p.claim("email"), Some(&serde_json::json!("a@x")));
        }
        assert_eq!(
            session(serde_json::json!({"sub": "s", "email": "a@x"})).email(),
            None
        );
        assert_eq!(
            session(serde_json::json!({"sub": "s", "email": "", "email_verified": true})).email(),
            None
        );
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";
        let p = Principal {
            user_id: "a".into(),
            subject: Some("a".into()),
            email: None,
            username: None,
            issuer: "https://i".into(),
            expires_at: 1,
            scopes: vec![],
            kind: TokenKind::Access,
            principal_kind: PrincipalKind::User,
            claims: Arc::new(LazyClaims::from_map(Map::new())),
            token: RawToken::new(token),
        };
        let shown = format!("{p:?} {:?} {}", p.token(), p.token());
        assert!(!shown.contains("eyJ"), "{shown}");
        assert_eq!(p.token().expose(), token);
    }
}
