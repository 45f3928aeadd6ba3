//! portcullis-core: framework-agnostic authentication and authorization.
//!
//! This crate holds every decision portcullis makes; the web-framework adapters
//! (`portcullis-axum`, ...) only translate requests into calls to it and its
//! outcomes into responses. It is also the crate to use directly from workers,
//! gRPC services and CLIs: it depends on no web framework and puts no `http`
//! type in its API.
//!
//! - [`TokenVerifier`] verifies JWT bearer tokens from one or more issuers:
//!   OIDC discovery, JWKS URLs, static PEM/JWK keys or HMAC secrets; pinned
//!   algorithms; `iss`/`aud`/`exp`/`nbf` with a bounded leeway; access tokens
//!   kept apart from ID tokens; a JWKS cache with background refresh, single-flight
//!   refetch on unknown `kid` and a stale limit; a verified-token cache.
//! - [`Principal`] is the verified caller. Its [`email`](Principal::email) is
//!   the address the provider vouches for ([`principal::vouched_email`]).
//! - [`credentials`] finds tokens in request headers (`Authorization: Bearer`,
//!   a custom header, or the tokens an auth proxy forwards) and
//!   [`Authenticator`] verifies them.
//! - [`automation`] authenticates automation principals: an id and a token
//!   header checked against a secret (AWS Secrets Manager's shape) held in
//!   a [`automation::SecretSource`], cached and refreshed like issuer keys;
//!   [`Authenticator::with_automation`] adds them.
//! - [`Error`] is the one error type; [`Error::to_reply`] maps it to a status,
//!   an RFC 6750 `WWW-Authenticate` challenge and a JSON body, as a [`Reply`],
//!   the one framework-neutral answer every adapter converts in one place.
//! - [`mint`] signs tokens and publishes JWKS documents (the mock provider and
//!   portcullis-issued tokens use it).
//! - [`config`] loads all of the above from YAML, TOML and the environment.
//! - [`revocation`] lets an issuer's tokens be refused once revoked, on every
//!   verification path; [`secret::check_secret_key`] refuses short, published
//!   and placeholder secret keys.
//!
//! # Security rules
//!
//! Each holds on every path in this crate, and tests fail if one breaks:
//!
//! - **An address the provider does not vouch for never selects stored
//!   capabilities.** [`Principal::email`] is the `email` claim only when
//!   `email_verified` is true (or `"true"`); absent, it counts only for an
//!   issuer with
//!   [`trust_email_without_verified_claim`](config::IssuerConfig::trust_email_without_verified_claim).
//!   The verifier, [`dangerous::principal_from_unverified_claims`] and
//!   forwarded ID tokens all apply [`principal::vouched_email`]; with
//!   `user_id_claim: email`, an unvouched address is refused
//!   ([`TokenRejection::UnverifiedEmail`]). The raw claim stays in
//!   [`Principal::claims`].
//! - **Key material and tokens travel over HTTPS only (loopback excepted).**
//!   Discovery and JWKS URLs, configured, derived from the issuer or found in
//!   a discovery document, pass [`config::check_provider_url`]; plain HTTP
//!   elsewhere needs
//!   [`danger_allow_plain_http`](config::VerifierConfig::danger_allow_plain_http).
//! - **A token that says it is something other than an access token is never
//!   accepted as one** (a `typ` such as `logout+jwt` or `dpop+jwt`, Keycloak's
//!   `Refresh` or `Logout`, ...), in both
//!   [`AccessTokenType`](config::AccessTokenType) modes; ID tokens likewise.
//! - **A secret never appears in an error or a log.** Configuration errors
//!   name the key and the expected type, never the value; a numeric secret
//!   from the environment loads as written.
//! - **An error answer tells the caller what happened, never where on the
//!   server.** 503 and 500 answers carry a fixed description
//!   ([`Error::public_message`]); the detail is logged.
//! - **Refusals cannot flood the logs.** Each refused token is logged at
//!   `debug`; at most one summary line every ten seconds counts them by reason.
//! - **No token content in `Debug`.** Tokens are [`RawToken`], secrets
//!   [`Secret`]; parsed tokens and the verified-token cache print sizes only.
//! - **Nothing outside [`dangerous`] makes a caller without verification.**
//!   An [`Authenticated`] caller comes from the [`Authenticator`], which
//!   verified the request's token; the [`dangerous`] module's functions,
//!   named for what they skip, are for the login flow (after it verified the
//!   ID token) and for tests.
//! - [`guard`] names scopes and capabilities as types ([`scope!`],
//!   [`capability!`]) for the adapters' extractors to require.
//!
//! # Examples
//!
//! Verify a token from a worker, with no web framework:
//!
//! ```
//! # async fn run() -> Result<(), portcullis_core::Error> {
//! use portcullis_core::config::{load_from_str, Format, VerifierConfig};
//! use portcullis_core::mint::SigningKey;
//! use portcullis_core::{Algorithm, ErrorKind, TokenVerifier};
//!
//! let secret = "a shared secret of at least 32 bytes!";
//! let yaml = format!(
//!     "issuers:\n  internal:\n    issuer: https://auth.internal\n    audiences: [jobs]\n    algorithms: [HS256]\n    hmac_secret: '{secret}'\n"
//! );
//! let config: VerifierConfig = load_from_str(&yaml, Format::Yaml, &[])?;
//! let verifier = TokenVerifier::new(config)?;
//!
//! let key = SigningKey::from_secret(Algorithm::HS256, "k", secret.as_bytes())?;
//! let token = key.sign(
//!     &serde_json::json!({"iss": "https://auth.internal", "aud": "jobs", "sub": "batch-7", "exp": 4102444800u64}),
//!     None,
//! )?;
//! assert_eq!(verifier.verify(&token).await?.user_id(), "batch-7");
//!
//! let err = verifier.verify("not-a-token").await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::InvalidToken);
//! assert_eq!(err.status(), 401);
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
//! ```
//!
//! # Feature flags
//!
//! | feature   | default | what it adds |
//! |-----------|---------|--------------|
//! | `reqwest` | yes     | [`fetch::ReqwestFetch`], the HTTP client for discovery and JWKS documents, and [`http_client::HttpClient`], the one hardened client every portcullis crate builds (rustls, no redirects, timeouts, bounded bodies). Without it, pass your own [`fetch::HttpFetch`] to [`TokenVerifier::builder`]. |
//!
//! Cryptography is aws-lc-rs, chosen explicitly (through `jsonwebtoken`'s
//! `aws_lc_rs` backend for signing, and directly for verification with keys
//! parsed once).

pub mod alg;
pub mod automation;
pub mod capabilities;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod dangerous;
pub mod discovery;
pub mod error;
pub mod fetch;
pub mod guard;
pub mod http_client;
mod jwks;
mod jws;
pub mod keys;
pub mod mint;
pub mod principal;
mod refusals;
pub mod reply;
pub mod revocation;
pub mod sealed;
pub mod secret;
pub mod verifier;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod vectors_tests;

pub use alg::Algorithm;
pub use capabilities::{CapId, CapSet, CapabilitiesConfig, CapabilityGraph, Expanded};
pub use credentials::{
    Authenticated, Authenticator, CredentialSource, CredentialsConfig, HeaderLookup,
    MissingCredentials,
};
pub use error::{Error, ErrorKind, Result, TokenRejection};
pub use principal::{Principal, PrincipalKind, RawToken, TokenKind};
pub use reply::{Authentication, Reply};
pub use revocation::RevocationCheck;
pub use secret::Secret;
pub use verifier::{TokenVerifier, TokenVerifierBuilder};
