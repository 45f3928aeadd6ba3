//! portcullis-issuer: a small OAuth 2.0 authorization server, so that a team
//! can run its own issuer and every resource server (portcullis or any
//! standard JWT verifier) trusts its tokens through its URL alone.
//!
//! - **Access tokens** are RFC 9068 JWTs (`typ: at+jwt`; `iss`, `sub`,
//!   `aud`, `exp`, `iat`, `jti`, `client_id`, `scope`) with the claims the
//!   seed's applications read (`user_id`, `scopes`, `username`,
//!   `issued_to`), signed HS256, RS256, ES256 or EdDSA ([`keys`]): keys from
//!   configuration or generated, a `kid` derived from the key (RFC 7638
//!   thumbprint), rotation that publishes a key before it signs.
//! - **The token endpoint** ([`Endpoint::Token`]) answers the first-party
//!   credential exchange (`grant_type=password`, through the application's
//!   [`CredentialCheck`](password::CredentialCheck)), `client_credentials`
//!   and `refresh_token`, with RFC 6749's answers and errors exactly
//!   ([`OAuthError`]). **The password exchange is for first-party clients
//!   only**: RFC 9700 forbids it for anyone else (see [`password`]).
//! - **Refresh tokens** are opaque, stored hashed, in rotating families
//!   whose replay revokes the family ([`refresh`]); the embedded store or
//!   Redis.
//! - **Discovery** (RFC 8414 and OpenID Connect), the **JWKS**, RFC 7009
//!   **revocation** and RFC 7662 **introspection**.
//!
//! Every endpoint is framework-agnostic: [`Issuer::routes`] lists them,
//! [`Issuer::handle`] answers an [`IssuerRequest`] with core's
//! [`Reply`](portcullis_core::Reply), and a web framework's adapter only
//! copies requests in and answers out.
//!
//! # Example
//!
//! ```
//! # async fn run() -> Result<(), portcullis_core::Error> {
//! use portcullis_issuer::{ClientConfig, Endpoint, Issuer, IssuerConfig, IssuerRequest};
//!
//! let config = IssuerConfig::new("https://auth.example.com")
//!     .with_client(ClientConfig::machine("reports", "a machine secret of 32 bytes or more", &["reports:read"]));
//! let issuer = Issuer::builder(config).build()?;
//! let reply = issuer
//!     .handle(Endpoint::Token, IssuerRequest {
//!         content_type: Some("application/x-www-form-urlencoded"),
//!         body: b"grant_type=client_credentials&client_id=reports&client_secret=a+machine+secret+of+32+bytes+or+more",
//!         ..IssuerRequest::default()
//!     })
//!     .await;
//! assert_eq!(reply.status, 200);
//! assert_eq!(reply.header("cache-control"), Some("no-store"));
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
//! ```

pub mod config;
pub mod env;
pub mod error;
pub mod form;
pub mod issuer;
pub mod keys;
pub mod limiter;
pub mod password;
pub mod refresh;

pub use config::{ClientConfig, Grant, IssuerConfig, Paths};
pub use error::{OAuthError, OAuthErrorCode};
pub use issuer::{Endpoint, Issuer, IssuerBuilder, IssuerRequest, IssuerRoute};
