//! Core's outcomes as gRPC statuses.
//!
//! The HTTP mapping (401, 403, 503, ...) lives in core; gRPC has its own
//! status codes; core maps its outcomes onto them ([`Error::grpc_code`]) and
//! this module turns that into a tonic [`Status`]. The message is core's
//! [`Error::message`], which never holds token or key material; a
//! configuration error's details are for the operator's log, not for callers.

use portcullis_core::Error;
use tonic::{Code, Status};

/// The gRPC code for `error`, as core maps it ([`Error::grpc_code`]).
pub fn code(error: &Error) -> Code {
    Code::from_i32(error.grpc_code())
}

/// The status a caller sees for `error`.
///
/// ```
/// use portcullis_core::{Error, TokenRejection};
/// use tonic::Code;
///
/// let status = example_grpc::status::from_error(&Error::invalid_token(TokenRejection::Expired));
/// assert_eq!(status.code(), Code::Unauthenticated);
/// assert_eq!(status.message(), "the token has expired");
///
/// let status = example_grpc::status::from_error(&Error::config("issuers.main.jwks_url: bad"));
/// assert_eq!(status.code(), Code::Internal);
/// assert_eq!(status.message(), "internal server error");
/// ```
pub fn from_error(error: &Error) -> Status {
    let code = code(error);
    if code == Code::Internal {
        tracing::error!(error = %error, "request failed on a server-side error");
    }
    Status::new(code, error.grpc_message())
}
