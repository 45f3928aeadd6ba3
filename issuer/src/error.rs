//! [`OAuthError`]: the error answers of the token, revocation and
//! introspection endpoints, shaped exactly as RFC 6749 section 5.2 says.

use std::fmt;

use portcullis_core::{Error, ErrorKind, Reply};
use serde_json::json;

/// The headers of every answer of the token endpoint, success or error
/// (RFC 6749 sections 5.1 and 5.2): JSON, never stored by any cache.
pub const TOKEN_HEADERS: [(&str, &str); 3] = [
    ("content-type", "application/json"),
    ("cache-control", "no-store"),
    ("pragma", "no-cache"),
];

/// An RFC 6749 error code (section 5.2), plus the two answers of a server
/// that cannot answer (`temporarily_unavailable`, 503) or is flooded with
/// failed attempts (429).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// `invalid_request`: a missing, repeated or malformed parameter, a wrong
    /// content type, a body that is not a form.
    InvalidRequest,
    /// `invalid_client`: client authentication failed (401 with a `Basic`
    /// challenge).
    InvalidClient,
    /// `invalid_grant`: wrong credentials, an unknown, expired, revoked or
    /// replayed refresh token, or one issued to another client.
    InvalidGrant,
    /// `unauthorized_client`: the client may not use this grant.
    UnauthorizedClient,
    /// `unsupported_grant_type`: a grant this server does not know.
    UnsupportedGrantType,
    /// `invalid_scope`: a scope that is not in the configured list, or wider
    /// than the grant.
    InvalidScope,
    /// `unsupported_token_type` (RFC 7009): a token this server cannot revoke.
    UnsupportedTokenType,
    /// Too many failed attempts for the account or the address (429, with
    /// `Retry-After`; the body's code is `invalid_request`).
    TooManyAttempts,
    /// `temporarily_unavailable`: a store or the credential check could not
    /// answer (503). Nothing was issued.
    TemporarilyUnavailable,
    /// `server_error`: the server failed (500). Nothing was issued.
    ServerError,
}

impl OAuthErrorCode {
    /// The `error` member of the answer.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest | Self::TooManyAttempts => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
        }
    }

    /// The HTTP status of the answer.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidClient => 401,
            Self::TooManyAttempts => 429,
            Self::TemporarilyUnavailable => 503,
            Self::ServerError => 500,
            _ => 400,
        }
    }
}

/// An error answer of the issuer's endpoints: an RFC 6749 code and a
/// description meant for the client's developer (never a secret, never
/// where on the server something failed).
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthError {
    code: OAuthErrorCode,
    description: String,
    retry_after: Option<u64>,
}

impl fmt::Debug for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthError")
            .field("code", &self.code.as_str())
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for OAuthError {}

impl OAuthError {
    /// An error with `code` and `description`.
    pub fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidRequest, description)
    }

    /// `invalid_client`.
    pub fn invalid_client() -> Self {
        Self::new(
            OAuthErrorCode::InvalidClient,
            "client authentication failed",
        )
    }

    /// `invalid_grant`.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidGrant, description)
    }

    /// `invalid_scope`.
    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidScope, description)
    }

    /// Too many failed attempts: 429, retry after `seconds`.
    pub fn too_many_attempts(seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds.max(1)),
            ..Self::new(
                OAuthErrorCode::TooManyAttempts,
                "too many failed attempts; retry later",
            )
        }
    }

    /// The code.
    pub fn code(&self) -> OAuthErrorCode {
        self.code
    }

    /// The description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The answer: the code's status, [`TOKEN_HEADERS`], `WWW-Authenticate:
    /// Basic realm="..."` for `invalid_client` (RFC 6749 section 5.2),
    /// `Retry-After` for 429, and `{"error", "error_description"}`.
    pub fn to_reply(&self, realm: &str) -> Reply {
        let body = json!({
            "error": self.code.as_str(),
            "error_description": self.description,
        });
        let mut reply = Reply {
            status: self.code.status(),
            headers: TOKEN_HEADERS
                .iter()
                .map(|(n, v)| (*n, (*v).to_owned()))
                .collect(),
            body: body.to_string().into_bytes(),
        };
        if self.code == OAuthErrorCode::InvalidClient {
            reply = reply.with_header(
                "www-authenticate",
                format!("Basic realm=\"{realm}\", charset=\"UTF-8\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            reply = reply.with_header("retry-after", seconds.to_string());
        }
        reply
    }
}

impl From<Error> for OAuthError {
    /// A failure of a store or of the credential check: 503 when it may pass
    /// with time (the detail is logged, never answered), 500 otherwise.
    fn from(error: Error) -> Self {
        match error.kind() {
            ErrorKind::Unavailable | ErrorKind::BadGateway => {
                tracing::warn!(error = %error, "the issuer could not reach a dependency");
                Self::new(
                    OAuthErrorCode::TemporarilyUnavailable,
                    "the authorization server cannot answer now; retry later",
                )
            }
            _ => {
                tracing::error!(error = %error, "the issuer failed");
                Self::new(
                    OAuthErrorCode::ServerError,
                    "the authorization server failed",
                )
            }
        }
    }
}
