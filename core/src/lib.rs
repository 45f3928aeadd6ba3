//! portcullis-core
#![allow(missing_docs)]
pub mod alg;
pub mod clock;
pub mod error;
pub(crate) mod jws;
pub mod keys;
pub mod mint;
pub mod secret;
pub use alg::Algorithm;
pub use error::{Error, ErrorKind, TokenRejection, ErrorResponse};
pub use secret::Secret;
pub mod principal;
pub use principal::{Principal, RawToken, TokenKind};
