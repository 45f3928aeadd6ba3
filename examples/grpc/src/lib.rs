//! A tonic gRPC service protected by portcullis.
//!
//! The `Board` service ([`proto`]) has two methods: `WhoAmI` needs a verified
//! caller, `Announce` the `announce` capability. The pieces:
//!
//! - [`GrpcAuthLayer`] ([`auth`]): a tower layer in front of tonic's router
//!   that reads `authorization: Bearer ...` from the call's metadata and has
//!   portcullis-core's [`Authenticator`] verify it;
//! - [`BoardService`] ([`service`]): the methods, which ask
//!   portcullis-capabilities' [`Capabilities`] what the caller may do;
//! - [`status`]: core's outcomes as gRPC statuses (`UNAUTHENTICATED`,
//!   `PERMISSION_DENIED`, `UNAVAILABLE`, `INVALID_ARGUMENT`, `INTERNAL`), with
//!   core's messages, which never contain a token.
//!
//! Capabilities are `read` and `announce -> read`; every caller holds `read`
//! ([`board_capabilities`]); grants live in a memory store filled from the
//! configuration's `users`, or in `capabilities.user_file`.
//!
//! # Examples
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use portcullis_core::TokenVerifier;
//! use portcullis_core::config::{IssuerConfig, VerifierConfig};
//!
//! let issuer = IssuerConfig::new("https://id.example.com").with_audience("board-api");
//! let verifier = TokenVerifier::new(VerifierConfig::new([("main".to_owned(), issuer)]))?;
//! let capabilities = example_grpc::capabilities(
//!     example_grpc::board_capabilities(),
//!     [("alice@example.com".to_owned(), vec!["announce".to_owned()])].into(),
//! )
//! .await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
//! example_grpc::serve(
//!     listener,
//!     example_grpc::authenticator(verifier),
//!     capabilities,
//!     std::future::pending(),
//! )
//! .await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use portcullis_capabilities::{Capabilities, CapabilityStore, FileStore, MemoryStore};
use portcullis_core::config::VerifierConfig;
use portcullis_core::{
    Authenticator, CapabilitiesConfig, CredentialsConfig, Error, Secret, TokenVerifier,
};
use serde::Deserialize;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

pub mod auth;
pub mod proto;
pub mod service;
pub mod status;

pub use auth::{GrpcAuth, GrpcAuthLayer};
pub use service::BoardService;

/// The configuration file of this example (`config.example.yaml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ExampleConfig {
    /// The trusted issuers.
    pub verifier: VerifierConfig,
    /// The capability graph; [`board_capabilities`] when absent.
    #[serde(default = "board_capabilities")]
    pub capabilities: CapabilitiesConfig,
    /// Users and their capabilities, when `capabilities.user_file` is not set.
    #[serde(default)]
    pub users: BTreeMap<String, Vec<String>>,
}

/// The example's capabilities: `read`, and `announce`, which implies `read`;
/// every authenticated caller holds `read`.
pub fn board_capabilities() -> CapabilitiesConfig {
    CapabilitiesConfig::new([("read", vec![]), ("announce", vec!["read"])])
        .with_default_capabilities(["read"])
}

/// The authenticator the example uses: `Authorization: Bearer` tokens
/// verified by `verifier`; calls without credentials go on as anonymous, so
/// each method decides whether it needs a caller.
pub fn authenticator(verifier: TokenVerifier) -> Authenticator {
    Authenticator::new(verifier, CredentialsConfig::default().with_realm("board"))
}

/// The [`Capabilities`] service over `config`: grants from
/// `config.user_file` when set, else from `users`, held in memory.
///
/// # Errors
///
/// A configuration error for an invalid graph; the user file's errors.
pub async fn capabilities(
    config: CapabilitiesConfig,
    users: BTreeMap<String, Vec<String>>,
) -> Result<Capabilities, Error> {
    let store: Arc<dyn CapabilityStore> = match &config.user_file {
        Some(path) => Arc::new(FileStore::open(path.clone()).await?),
        None => Arc::new(MemoryStore::with_users(users)),
    };
    // The key signs service tokens, which this example never issues: a
    // fresh random one per process will do.
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key)
        .map_err(|_| Error::unavailable("the system random generator failed"))?;
    let key: String = key.iter().map(|b| format!("{b:02x}")).collect();
    Capabilities::builder(config, store, Secret::new(key)).build()
}

/// Serves the `Board` service on `listener` until `shutdown` completes,
/// every call authenticated by `auth`.
///
/// # Errors
///
/// When the server fails.
pub async fn serve(
    listener: TcpListener,
    auth: Authenticator,
    capabilities: Capabilities,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    Server::builder()
        .layer(GrpcAuthLayer::new(auth))
        .add_service(proto::BoardServer::new(BoardService::new(capabilities)))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
}
