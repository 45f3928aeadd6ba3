//! Callers and tokens made without verification.
//!
//! Everywhere else in portcullis, a caller ([`Authenticated`], and the
//! [`Principal`] inside it) exists only because a token presented with the
//! request passed the [`TokenVerifier`] (signature, issuer, audience,
//! expiry, token type, revocation), and a token is signed only as
//! [`SigningKey::sign`] writes it. The functions here skip those checks:
//! what they are given is taken as true. **Nothing outside this module makes
//! a caller without verification.**
//!
//! | function | what it skips | who may call it |
//! |---|---|---|
//! | [`principal_from_unverified_claims`] | every check of a token: no signature, issuer, audience, expiry or revocation check is made, and the claims are taken as given (only their shape is checked, and the email is still the vouched-for one) | the login flow, for a session whose ID token it verified at the callback and has kept sealed or stored since; tests |
//! | [`authenticated_unverified`], [`authenticated_session`] | finding and verifying the request's credentials: the principal becomes the request's caller as it is | the login flow, with the principal above; tests, with a principal of their own |
//! | [`forced_caller`] | everything: no request credential is read at all, and every request is the configured user | the relying party's `dangerous_force_user` development mode, which refuses to start unless `base_url` is loopback and warns at every start; tests |
//! | [`sign_unchecked`] | building the token: the header and payload bytes are signed as given, neither checked as JSON nor matched to the key (`alg`, `kid`, `typ` say whatever they say) | tests and the mock provider, to make malformed or hostile tokens |
//!
//! Never call them with anything a request carries (a header, a cookie this
//! service did not seal, a query parameter, a body): that hands the request
//! whatever identity it names. A handler that wants the caller takes it from
//! the adapter's extractors, which the [`Authenticator`] or the relying party
//! filled.
//!
//! ```
//! use std::sync::Arc;
//! use portcullis_core::RawToken;
//! use portcullis_core::dangerous::{authenticated_unverified, principal_from_unverified_claims};
//!
//! // A test's caller, with no provider and no token.
//! let serde_json::Value::Object(claims) = serde_json::json!({"sub": "u-1"}) else { unreachable!() };
//! let principal = principal_from_unverified_claims("https://id.example.com", claims, RawToken::new(""), 2_000_000_000)?;
//! let caller = authenticated_unverified(Arc::new(principal));
//! assert_eq!(caller.principal.user_id(), "u-1");
//! # Ok::<(), portcullis_core::Error>(())
//! ```
//!
//! There is no other way. The constructors these functions wrap are private
//! to this crate:
//!
//! ```compile_fail,E0624
//! use std::sync::Arc;
//! use portcullis_core::{Authenticated, Principal};
//! fn caller(principal: Arc<Principal>) -> Authenticated {
//!     Authenticated::new(principal)
//! }
//! ```
//!
//! ```compile_fail,E0624
//! # let claims = serde_json::Map::new();
//! let _ = portcullis_core::Principal::from_session("https://id.example.com", claims, portcullis_core::RawToken::new(""), 1);
//! ```
//!
//! ```compile_fail,E0624
//! # let key = portcullis_core::mint::SigningKey::generate(portcullis_core::Algorithm::ES256, "k")?;
//! let _ = key.sign_raw(b"{}", b"{}");
//! # Ok::<(), portcullis_core::Error>(())
//! ```
//!
//! [`TokenVerifier`]: crate::TokenVerifier
//! [`Authenticator`]: crate::Authenticator

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::credentials::Authenticated;
use crate::error::Error;
use crate::mint::SigningKey;
use crate::principal::{Principal, RawToken};

/// A principal from claims taken as true, with no token verified.
///
/// **Skipped:** every check the verifier makes of a token: signature,
/// issuer, audience, expiry, token type, revocation. Nothing here knows
/// where `claims` came from.
///
/// **Who may call it:** the login flow, after it verified the session's ID
/// token at the callback (signature, issuer, audience, nonce, `azp`,
/// `at_hash`) and kept the claims sealed in the session cookie or in the
/// session store since; and tests. Never with claims a request carries.
///
/// `claims` are the identity claims (`sub` is required; `email`,
/// `email_verified`, `preferred_username` and `scope` are read when present),
/// `token` the access token to forward (empty when there is none), and
/// `expires_at` the end of the session. The principal's kind is
/// [`TokenKind::Id`](crate::TokenKind::Id).
///
/// The email is the vouched-for address only
/// ([`vouched_email`](crate::principal::vouched_email), with an absent
/// `email_verified` taken as no vouch, the issuers' default): the relying
/// party keeps `email_verified` among the session's claims.
///
/// ```
/// use portcullis_core::RawToken;
/// use portcullis_core::dangerous::principal_from_unverified_claims;
/// let claims = serde_json::json!({"sub": "u-1", "email": "alice@example.com", "email_verified": true});
/// let serde_json::Value::Object(claims) = claims else { unreachable!() };
/// let p = principal_from_unverified_claims("https://id.example.com", claims, RawToken::new(""), 2_000_000_000)?;
/// assert_eq!(p.user_id(), "u-1");
/// assert_eq!(p.email(), Some("alice@example.com"));
///
/// let claims = serde_json::json!({"sub": "u-2", "email": "bob@example.com"});
/// let serde_json::Value::Object(claims) = claims else { unreachable!() };
/// let p = principal_from_unverified_claims("https://id.example.com", claims, RawToken::new(""), 2_000_000_000)?;
/// assert_eq!(p.email(), None);
/// assert_eq!(p.claim("email").and_then(|v| v.as_str()), Some("bob@example.com"));
/// # Ok::<(), portcullis_core::Error>(())
/// ```
///
/// # Errors
///
/// [`TokenRejection::MissingClaim`](crate::TokenRejection::MissingClaim)
/// without a non-empty string `sub`,
/// [`TokenRejection::InvalidClaim`](crate::TokenRejection::InvalidClaim) for
/// a non-string `email`, `preferred_username` or `scope`.
pub fn principal_from_unverified_claims(
    issuer: impl Into<String>,
    claims: Map<String, Value>,
    token: RawToken,
    expires_at: u64,
) -> Result<Principal, Error> {
    Principal::from_session(issuer, claims, token, expires_at)
}

/// The request's caller is `principal`, with no credentials found or
/// verified (no forwarded ID or refresh token either).
///
/// **Skipped:** everything the [`Authenticator`](crate::Authenticator)
/// does: reading the request's credentials and verifying them. The caller
/// is whoever `principal` says.
///
/// **Who may call it:** the login flow, with the principal of a session it
/// verified ([`principal_from_unverified_claims`]); tests, with a principal
/// of their own or one the verifier returned.
pub fn authenticated_unverified(principal: Arc<Principal>) -> Authenticated {
    Authenticated::new(principal)
}

/// A caller made up from configuration: every request of a development
/// server is this user, with no credential read and no provider contacted
/// (easy-oauth's `force_user`).
///
/// **Skipped:** everything. Nothing in the request is looked at; the user
/// named here is the caller, `email_verified` true, so that its stored and
/// pinned capabilities apply.
///
/// **Who may call it:** the relying party's `dangerous_force_user` mode
/// (refused unless `base_url` is a loopback URL, with a warning at every
/// start), and tests. Never with a user a request names.
///
/// ```
/// use portcullis_core::dangerous::forced_caller;
/// let caller = forced_caller("https://id.example.com", "alice@example.com", None, 2_000_000_000)?;
/// assert_eq!(caller.principal.email(), Some("alice@example.com"));
/// assert_eq!(caller.principal.user_id(), "alice@example.com");
/// # Ok::<(), portcullis_core::Error>(())
/// ```
///
/// # Errors
///
/// [`TokenRejection::MissingClaim`](crate::TokenRejection::MissingClaim)
/// for an empty `email`.
pub fn forced_caller(
    issuer: impl Into<String>,
    email: &str,
    sub: Option<&str>,
    expires_at: u64,
) -> Result<Authenticated, Error> {
    if email.is_empty() {
        return Err(Error::invalid_token(crate::TokenRejection::MissingClaim));
    }
    let mut claims = Map::new();
    claims.insert(
        "sub".to_owned(),
        Value::String(sub.unwrap_or(email).to_owned()),
    );
    claims.insert("email".to_owned(), Value::String(email.to_owned()));
    claims.insert("email_verified".to_owned(), Value::Bool(true));
    let principal = Principal::from_session(issuer, claims, RawToken::new(""), expires_at)?;
    Ok(Authenticated::new(Arc::new(principal)))
}

/// The request's caller is the login session whose verified ID token gave
/// `principal`: [`authenticated_unverified`], with
/// [`CredentialSource::Session`](crate::CredentialSource::Session), so that
/// state-changing requests it makes must come from the site's own origin.
///
/// **Skipped:** as [`authenticated_unverified`].
///
/// **Who may call it:** the login flow (portcullis-oidc), for the session a
/// sealed cookie or the session store held.
pub fn authenticated_session(principal: Arc<Principal>) -> Authenticated {
    let mut caller = Authenticated::new(principal);
    caller.source = crate::CredentialSource::Session;
    caller
}

/// Signs exactly these header and payload bytes with `key`, and returns the
/// compact token.
///
/// **Skipped:** building the token. Neither part is checked: not as JSON,
/// and not against the key (the header's `alg` and `kid` may name another
/// algorithm or key, its `typ` anything). [`SigningKey::sign`] is the way
/// to sign a token.
///
/// **Who may call it:** tests and the mock provider, to make malformed or
/// hostile tokens that a verifier must refuse.
///
/// ```
/// use portcullis_core::Algorithm;
/// use portcullis_core::dangerous::sign_unchecked;
/// use portcullis_core::mint::SigningKey;
/// let key = SigningKey::generate(Algorithm::ES256, "k1")?;
/// // A header naming another algorithm than the key's.
/// let token = sign_unchecked(&key, br#"{"alg":"RS256","kid":"k1"}"#, b"{}")?;
/// assert_eq!(token.split('.').count(), 3);
/// # Ok::<(), portcullis_core::Error>(())
/// ```
///
/// # Errors
///
/// When the key cannot sign ([`ErrorKind::Config`](crate::ErrorKind::Config)).
pub fn sign_unchecked(key: &SigningKey, header: &[u8], payload: &[u8]) -> Result<String, Error> {
    key.sign_raw(header, payload)
}
