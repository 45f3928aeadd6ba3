//! The adapter kit: what every portcullis web-framework adapter
//! (`portcullis-axum`, `portcullis-actix`, `portcullis-poem`) is built on,
//! so that an adapter only translates between its framework and these
//! types and makes no decision of its own.
//!
//! Applications do not use this crate: they use their framework's adapter,
//! which re-exports what a handler needs. It is public for the authors of
//! adapters for other frameworks.
//!
//! - [`Gate`]: what an adapter's middleware holds. Per request it
//!   authenticates (bearer token through core's
//!   [`Authenticator`](portcullis_core::Authenticator), or with the `login`
//!   feature a `RelyingParty`'s bearer-then-session rule) and hands back a
//!   [`portcullis_core::Authentication`]; the extractors then require a
//!   caller, a scope or a capability, and a [`Refusal`] is the answer when
//!   they refuse.
//! - [`routes::Routes`]: the login and management routes as data (method,
//!   path, kind); the adapter mounts each with its router and copies
//!   requests into [`routes::Routes::dispatch`].
//! - [`FromOidc`]: the common path, shared by every adapter's `from_oidc`
//!   (one issuer's access tokens in one expression).
//! - Every answer is a [`portcullis_core::Reply`], which the adapter
//!   converts into its framework's response in one function.
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `login` | no      | `Gate::for_login`, `Routes::login` and the login redirect of capability guards, around portcullis-oidc's `RelyingParty`. Each adapter turns it on with its own `login` feature (on by default there). |
//! | `policy` | no     | `Gate::with_policy` and `Gate::decide`: a policy decision per request (an OPA server or embedded Rego), around portcullis-policy, after authentication. |
//!
//! Without `login`, the kit and an adapter built on it compile neither
//! `openidconnect` nor portcullis-oidc: a bearer-only service needs neither.
//!
//! # Example
//!
//! What an adapter's middleware does with a request, framework aside:
//!
//! ```
//! use portcullis_adapter_kit::Gate;
//! use portcullis_core::config::{IssuerConfig, VerifierConfig};
//! use portcullis_core::{Authenticator, CredentialsConfig, TokenVerifier};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = IssuerConfig::new("https://id.example.com").with_audience("my-api");
//! let verifier = TokenVerifier::new(VerifierConfig::new([("main".to_owned(), issuer)]))?;
//! let gate = Gate::new(Authenticator::new(verifier, CredentialsConfig::default()));
//!
//! // A request without credentials: a guest; a handler requiring a caller refuses it.
//! let headers: [(&str, &str); 0] = [];
//! let authentication = gate.authenticate("GET", &headers[..]).await?;
//! assert!(authentication.caller.is_none());
//! let refusal = gate.require_caller(authentication.caller.as_ref()).unwrap_err();
//! let reply = refusal.to_reply();
//! assert_eq!(reply.status, 401);
//! assert!(reply.header("www-authenticate").is_some_and(|c| c.starts_with("Bearer")));
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
//! ```

mod builder;
mod gate;
#[cfg(feature = "policy")]
pub mod policy;
pub mod routes;

pub use builder::FromOidc;
pub use gate::{Gate, Refusal};
#[cfg(feature = "policy")]
pub use portcullis_policy;

pub use portcullis_capabilities;
pub use portcullis_core;
#[cfg(feature = "login")]
pub use portcullis_oidc;
