//! portcullis-core
#![allow(missing_docs)]
pub mod alg;
pub mod clock;
pub mod config;
pub mod error;
pub mod fetch;
pub(crate) mod jwks;
pub(crate) mod jws;
pub mod keys;
pub mod mint;
pub mod principal;
pub mod secret;
pub mod verifier;
pub use alg::Algorithm;
pub use error::{Error, ErrorKind, ErrorResponse, TokenRejection};
pub use principal::{Principal, RawToken, TokenKind};
pub use secret::Secret;
pub use verifier::{TokenVerifier, TokenVerifierBuilder};
pub mod credentials;
pub use credentials::{Authenticated, Authenticator, CredentialsConfig, HeaderLookup};
