//! Test helpers for services protected by portcullis.
//!
//! The centrepiece is [`MockProvider`]: an OpenID Connect provider that runs
//! inside the test process on `127.0.0.1`, publishes a discovery document and a
//! JWKS, and mints tokens signed by its own keys. Tests point the service under
//! test at [`MockProvider::issuer`], mint whatever token the case needs with
//! [`MockProvider::token`], and steer the provider's behaviour: move its clock,
//! rotate its keys, make its JWKS endpoint fail, and count the requests it
//! received.
//!
//! The same provider runs as a stand-alone server with the `mock-oidc` binary
//! (`mock-oidc --port 8080`), which prints a ready access token and also mints
//! tokens on `POST /mint`.
//!
//! # Examples
//!
//! ```
//! use portcullis_core::clock::Clock;
//! use portcullis_core::{Algorithm, TokenKind};
//! use portcullis_testing::MockProvider;
//!
//! # fn main() -> std::io::Result<()> {
//! # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # runtime.block_on(async {
//! let provider = MockProvider::start().await?;
//! assert!(provider.issuer().starts_with("http://127.0.0.1:"));
//! assert_eq!(
//!     provider.discovery_url(),
//!     format!("{}/.well-known/openid-configuration", provider.issuer())
//! );
//!
//! // An access token for alice, valid for five minutes of the provider's clock.
//! let token = provider.token().subject("alice").email("alice@example.com").sign();
//! assert_eq!(token.split('.').count(), 3);
//!
//! // An ID token signed with ES256 that expired a minute ago.
//! let expired = provider
//!     .token()
//!     .kind(TokenKind::Id)
//!     .algorithm(Algorithm::ES256)
//!     .expires_in(-60);
//! let claims = expired.claims_json();
//! assert_eq!(claims["aud"], provider.client_id());
//! assert!(claims["exp"].as_u64().unwrap() < provider.clock().now_secs());
//! let _id_token = expired.sign();
//!
//! // Keys change, and the JWKS follows.
//! let before = provider.signing_key(Algorithm::RS256).kid().to_owned();
//! provider.rotate_keys();
//! assert_ne!(provider.signing_key(Algorithm::RS256).kid(), before);
//! # Ok(())
//! # })
//! # }
//! ```
//!
//! [`AppTester`] serves an application that logs its users in and drives
//! it as browsers and scripts would: `tester.client(Some("alice@example.com"))`
//! logs alice in through the application's real login flow against the
//! provider; requests read as `client.get("/x").expect(403).await`.
//!
//! [`serve`] serves an application on a bound listener for each framework
//! (the testers and the adapters' conformance tests share it).
//!
//! [`RedisServer`] starts a real `redis-server` on a loopback port for tests
//! of Redis-backed stores, and [`RedisCluster`] a Redis Cluster of three of them.
//!
//! [`MockOpa`] is an Open Policy Agent server on a loopback port: it answers
//! OPA's REST Data API with portcullis-policy's embedded engine over a
//! policy directory, or with faults (a status, a hang, garbage, `{}`), for
//! tests of policy decisions made by a remote OPA.
//!
//! [`MotoServer`] runs moto's server, a local emulator of AWS Secrets
//! Manager and Cognito user pools, on a loopback port (installed in a
//! virtual environment from `testing/moto/requirements.txt`; `cargo xtask
//! ci` does that when needed).
//!
//! [`NodeOidcServer`] runs a third-party provider, the npm package
//! `oauth2-mock-server` under Node 22, on a loopback port, to test the relying
//! party against code portcullis did not write (`npm ci --prefix testing/js`
//! installs it; `cargo xtask ci` does that when needed).
//!
//! [`EasyOauthServer`] runs another: easy-oauth's own mock provider under
//! uvicorn, from a virtual environment made from the pinned
//! `testing/py/requirements.txt` outside the clone (`cargo xtask ci` makes
//! it when needed).
//!
//! # Feature flags
//!
//! This crate has no feature flags yet.

mod announced;
pub mod conformance;
pub mod demo;
mod easy_oauth;
pub mod logs;
mod mock;
mod moto;
mod node;
mod opa;
mod redis;
pub mod serve;
mod tester;
#[cfg(feature = "actix")]
mod tester_actix;
#[cfg(feature = "poem")]
mod tester_poem;

pub use easy_oauth::EasyOauthServer;
pub use mock::{Fault, MockOptions, MockProvider, MockUser, TokenBuilder};
pub use moto::{MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY, MotoServer, moto_venv};
pub use node::{NodeOidcOptions, NodeOidcServer};
pub use opa::{MockOpa, OpaFault};
pub use redis::{RedisCluster, RedisServer, free_port};
pub use tester::{AppTester, LoginProvider, TestClient, TestRequest, TestResponse};
