//! The one error type of portcullis-core, and how each kind maps to HTTP.
//!
//! Adapters never decide a status code: they call [`Error::to_reply`] and
//! copy the status, headers and body into their framework's response type.
//! A refusal (401, 403, 400) tells the caller what was wrong; a failure on
//! the server's side (503, 500) answers a fixed description and logs its
//! detail ([`Error::public_message`]).

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use crate::reply::Reply;

/// What went wrong, at the granularity a caller acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No credentials were presented where they are required (401, no error code).
    MissingCredentials,
    /// Credentials were presented but are not acceptable (401 `invalid_token`).
    InvalidToken,
    /// The request carries credentials in a malformed way (400 `invalid_request`).
    InvalidRequest,
    /// The caller is known but lacks a required scope or capability (403 `insufficient_scope`).
    InsufficientScope,
    /// The caller is known but a policy refuses the request (403).
    Forbidden,
    /// Something portcullis depends on (identity provider, store, policy engine)
    /// could not be reached or answered badly. Never a pass: 503.
    Unavailable,
    /// A provider portcullis depends on answered something it cannot use and
    /// that waiting will not fix (a token answer that does not parse, a
    /// userinfo answer that is not JSON): 502. Usually a configuration
    /// mismatch between this service and the provider, such as the client
    /// authentication method (`token_endpoint_auth_method`).
    BadGateway,
    /// The configuration is invalid. Raised at start-up, not per request.
    Config,
}

/// Why a token was refused. Carried by errors of kind [`ErrorKind::InvalidToken`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenRejection {
    /// The token is larger than the configured limit; it was not decoded.
    TooLarge,
    /// Not three strict base64url segments, or a segment is not a JSON object.
    Malformed,
    /// A header or claim name appears twice.
    DuplicateMember,
    /// The `alg` header names no supported algorithm (`none` included).
    UnsupportedAlgorithm,
    /// The algorithm is not one this issuer is configured for, or does not fit the key.
    DisallowedAlgorithm,
    /// The header carries a parameter portcullis refuses (`jku`, `x5u`, `x5c`, `jwk`, `crit`, ...).
    ForbiddenHeader,
    /// The `iss` claim names no configured issuer.
    UnknownIssuer,
    /// No key of the issuer matches the token's `kid` and algorithm.
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// A required claim is absent.
    MissingClaim,
    /// A claim has the wrong type or an unacceptable value.
    InvalidClaim,
    /// `aud` (or Cognito's `client_id`) is not one this service accepts.
    WrongAudience,
    /// The token is of another kind (an ID token where an access token is expected).
    WrongTokenType,
    /// The token was issued by portcullis and later revoked.
    Revoked,
    /// The issuer's user-id claim is `email`, and the provider does not vouch
    /// for the address (see [`vouched_email`](crate::principal::vouched_email)).
    UnverifiedEmail,
    /// An automation principal's id is unknown, its token does not match its
    /// secret, or it failed too often lately: one reason for the three, so
    /// that the answer never tells which ids exist.
    InvalidPrincipal,
}

impl TokenRejection {
    /// A short description safe to show to the caller (it never contains token content).
    pub const fn description(self) -> &'static str {
        match self {
            TokenRejection::TooLarge => "the token is too large",
            TokenRejection::Malformed => "the token is malformed",
            TokenRejection::DuplicateMember => "the token repeats a member name",
            TokenRejection::UnsupportedAlgorithm => "the token's algorithm is not supported",
            TokenRejection::DisallowedAlgorithm => "the token's algorithm is not allowed",
            TokenRejection::ForbiddenHeader => "the token header carries a refused parameter",
            TokenRejection::UnknownIssuer => "the token's issuer is not trusted",
            TokenRejection::UnknownKey => "the token's signing key is not known",
            TokenRejection::BadSignature => "the token's signature is invalid",
            TokenRejection::Expired => "the token has expired",
            TokenRejection::NotYetValid => "the token is not valid yet",
            TokenRejection::MissingClaim => "the token lacks a required claim",
            TokenRejection::InvalidClaim => "the token has an invalid claim",
            TokenRejection::WrongAudience => "the token is not meant for this service",
            TokenRejection::WrongTokenType => "the token is not an access token",
            TokenRejection::Revoked => "the token has been revoked",
            TokenRejection::UnverifiedEmail => "the token's email address is not verified",
            TokenRejection::InvalidPrincipal => {
                "the automation principal or its token is not valid"
            }
        }
    }
}

/// The portcullis error: a [`kind`](Error::kind), an optional token rejection
/// reason, a message and an optional source.
///
/// Its `Display` and `Debug` never contain token or secret material.
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

struct Inner {
    kind: ErrorKind,
    rejection: Option<TokenRejection>,
    message: Cow<'static, str>,
    scope: Option<String>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl Error {
    fn build(kind: ErrorKind, message: Cow<'static, str>) -> Self {
        Self {
            inner: Arc::new(Inner {
                kind,
                rejection: None,
                message,
                scope: None,
                source: None,
            }),
        }
    }

    /// No credentials where they are required.
    pub fn missing_credentials() -> Self {
        Self::build(
            ErrorKind::MissingCredentials,
            Cow::Borrowed("authentication is required"),
        )
    }

    /// A token refused for `reason`.
    pub fn invalid_token(reason: TokenRejection) -> Self {
        let mut e = Self::build(ErrorKind::InvalidToken, Cow::Borrowed(reason.description()));
        Arc::get_mut(&mut e.inner).expect("fresh").rejection = Some(reason);
        e
    }

    /// Credentials presented in a malformed way.
    pub fn invalid_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::build(ErrorKind::InvalidRequest, message.into())
    }

    /// A known caller lacks `scope` (space-separated names when several would do).
    pub fn insufficient_scope(scope: impl Into<String>) -> Self {
        let scope = scope.into();
        let mut e = Self::build(
            ErrorKind::InsufficientScope,
            Cow::Owned(format!("the request requires `{scope}`")),
        );
        Arc::get_mut(&mut e.inner).expect("fresh").scope = Some(scope);
        e
    }

    /// A known caller refused by a policy.
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::build(ErrorKind::Forbidden, message.into())
    }

    /// A dependency could not be reached or answered badly.
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::build(ErrorKind::Unavailable, message.into())
    }

    /// A provider's answer that cannot be used and will not fix itself (502).
    /// The message, for the operator's log, says what is wrong with it.
    pub fn bad_gateway(message: impl Into<Cow<'static, str>>) -> Self {
        Self::build(ErrorKind::BadGateway, message.into())
    }

    /// An invalid configuration; `message` names the key and the reason.
    pub fn config(message: impl Into<Cow<'static, str>>) -> Self {
        Self::build(ErrorKind::Config, message.into())
    }

    /// Attaches the underlying cause.
    pub fn with_source(self, source: impl StdError + Send + Sync + 'static) -> Self {
        let inner = Inner {
            kind: self.inner.kind,
            rejection: self.inner.rejection,
            message: self.inner.message.clone(),
            scope: self.inner.scope.clone(),
            source: Some(Box::new(source)),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// Why a token was refused, for errors of kind [`ErrorKind::InvalidToken`].
    pub fn rejection(&self) -> Option<TokenRejection> {
        self.inner.rejection
    }

    /// The detailed message. It never holds token or secret content, but for
    /// [`Unavailable`](ErrorKind::Unavailable) and [`Config`](ErrorKind::Config)
    /// it may name hosts, files and causes: callers are shown
    /// [`public_message`](Self::public_message).
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The HTTP status this error maps to.
    pub fn status(&self) -> u16 {
        match self.inner.kind {
            ErrorKind::MissingCredentials | ErrorKind::InvalidToken => 401,
            ErrorKind::InvalidRequest => 400,
            ErrorKind::InsufficientScope | ErrorKind::Forbidden => 403,
            ErrorKind::Unavailable => 503,
            ErrorKind::BadGateway => 502,
            ErrorKind::Config => 500,
        }
    }

    /// The OAuth error code (`invalid_token`, ...), if the kind has one.
    pub fn error_code(&self) -> &'static str {
        match self.inner.kind {
            ErrorKind::MissingCredentials => "unauthorized",
            ErrorKind::InvalidToken => "invalid_token",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::InsufficientScope => "insufficient_scope",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Unavailable => "temporarily_unavailable",
            ErrorKind::BadGateway => "bad_gateway",
            ErrorKind::Config => "server_error",
        }
    }

    /// The RFC 6750 `WWW-Authenticate` value for this error, if it calls for one.
    ///
    /// ```
    /// use portcullis_core::{Error, TokenRejection};
    /// let e = Error::invalid_token(TokenRejection::Expired);
    /// assert_eq!(
    ///     e.www_authenticate("api").unwrap(),
    ///     r#"Bearer realm="api", error="invalid_token", error_description="the token has expired""#
    /// );
    /// assert_eq!(e.status(), 401);
    /// ```
    pub fn www_authenticate(&self, realm: &str) -> Option<String> {
        let realm = quote(realm);
        match self.inner.kind {
            ErrorKind::MissingCredentials => Some(format!("Bearer realm={realm}")),
            ErrorKind::InvalidToken | ErrorKind::InvalidRequest => Some(format!(
                "Bearer realm={realm}, error=\"{}\", error_description={}",
                self.error_code(),
                quote(&self.inner.message)
            )),
            ErrorKind::InsufficientScope => {
                let mut v = format!(
                    "Bearer realm={realm}, error=\"insufficient_scope\", error_description={}",
                    quote(&self.inner.message)
                );
                if let Some(scope) = &self.inner.scope {
                    v.push_str(", scope=");
                    v.push_str(&quote(scope));
                }
                Some(v)
            }
            ErrorKind::Forbidden
            | ErrorKind::Unavailable
            | ErrorKind::BadGateway
            | ErrorKind::Config => None,
        }
    }

    /// The gRPC status code for this error (gRPC has its own codes; this
    /// is the one place that maps portcullis' outcomes onto them):
    /// no or invalid credentials → `UNAUTHENTICATED` (16), insufficient
    /// scope or forbidden → `PERMISSION_DENIED` (7), unavailable →
    /// `UNAVAILABLE` (14), invalid request → `INVALID_ARGUMENT` (3),
    /// configuration or an unusable provider answer → `INTERNAL` (13).
    ///
    /// ```
    /// use portcullis_core::{Error, TokenRejection};
    /// assert_eq!(Error::invalid_token(TokenRejection::Expired).grpc_code(), 16);
    /// assert_eq!(Error::insufficient_scope("read").grpc_code(), 7);
    /// assert_eq!(Error::config("x").grpc_message(), "internal server error");
    /// ```
    pub fn grpc_code(&self) -> i32 {
        match self.inner.kind {
            ErrorKind::MissingCredentials | ErrorKind::InvalidToken => 16,
            ErrorKind::InsufficientScope | ErrorKind::Forbidden => 7,
            ErrorKind::Unavailable => 14,
            ErrorKind::InvalidRequest => 3,
            ErrorKind::BadGateway | ErrorKind::Config => 13,
        }
    }

    /// The message a caller sees, in a response body or a gRPC status.
    ///
    /// A refusal (401, 403, 400) says what was wrong with the request:
    /// [`message`](Self::message). A failure on the server's side
    /// ([`Unavailable`](ErrorKind::Unavailable), 503;
    /// [`Config`](ErrorKind::Config), 500) gets a fixed description of its
    /// kind: the detailed message names hosts, files and causes, which are
    /// for the operator's log, never for the caller.
    ///
    /// ```
    /// use portcullis_core::{Error, TokenRejection};
    /// let e = Error::unavailable("https://id.internal:8443/keys answered 502");
    /// assert_eq!(e.public_message(), "a service this request depends on is unavailable; try again later");
    /// assert_eq!(Error::invalid_token(TokenRejection::Expired).public_message(), "the token has expired");
    /// ```
    pub fn public_message(&self) -> &str {
        match self.inner.kind {
            ErrorKind::Unavailable => UNAVAILABLE_DESCRIPTION,
            ErrorKind::BadGateway => BAD_GATEWAY_DESCRIPTION,
            ErrorKind::Config => INTERNAL_DESCRIPTION,
            ErrorKind::MissingCredentials
            | ErrorKind::InvalidToken
            | ErrorKind::InvalidRequest
            | ErrorKind::InsufficientScope
            | ErrorKind::Forbidden => &self.inner.message,
        }
    }

    /// The message a gRPC caller sees: [`public_message`](Self::public_message).
    /// As with [`to_reply`](Self::to_reply), the detail of a 503 or
    /// 500 kind is logged here instead.
    pub fn grpc_message(&self) -> &str {
        self.log_server_failure();
        self.public_message()
    }

    /// The full response: status, headers and JSON body. Adapters copy it as is.
    ///
    /// The body's `error_description` is [`public_message`](Self::public_message).
    /// For a 503 or 500, the detailed message and its chain of causes are
    /// logged here (`tracing` warning; they never contain token content).
    pub fn to_reply(&self, realm: &str) -> Reply {
        let mut headers = Vec::with_capacity(3);
        if let Some(v) = self.www_authenticate(realm) {
            headers.push(("www-authenticate", v));
        }
        headers.push(("content-type", "application/json".to_owned()));
        headers.push(("cache-control", "no-store".to_owned()));
        self.log_server_failure();
        let body = serde_json::json!({
            "error": self.error_code(),
            "error_description": self.public_message(),
        })
        .to_string();
        Reply {
            status: self.status(),
            headers,
            body: body.into_bytes(),
        }
    }
}

/// What a 503 answer says, whatever made the dependency unavailable.
const UNAVAILABLE_DESCRIPTION: &str =
    "a service this request depends on is unavailable; try again later";

/// What a 502 answer says: the caller learns that retrying will not help,
/// the operator finds what is wrong in the log.
const BAD_GATEWAY_DESCRIPTION: &str = "the identity provider gave an answer this service cannot use; \
     this is a configuration problem between them, not an outage: the operator finds the reason in the server log";

/// What a 500 answer says.
const INTERNAL_DESCRIPTION: &str = "internal server error";

impl Error {
    /// Logs the detail of a failure on the server's side, which its answer leaves out.
    ///
    /// An outage answers every request with a 503: so that it cannot flood
    /// the log, one failure per interval is logged at `warn` (with how many
    /// were logged at `debug` only since the previous one), the others at `debug`.
    fn log_server_failure(&self) {
        if !matches!(
            self.inner.kind,
            ErrorKind::Unavailable | ErrorKind::BadGateway | ErrorKind::Config
        ) {
            return;
        }
        match crate::refusals::server_failure_due() {
            Some(quieted) => tracing::warn!(
                status = self.status(),
                kind = ?self.inner.kind,
                detail = %self.detail(),
                quieted_since_last = quieted,
                "answering with a server-side failure"
            ),
            None => tracing::debug!(
                status = self.status(),
                kind = ?self.inner.kind,
                detail = %self.detail(),
                "answering with a server-side failure"
            ),
        }
    }

    /// The message and every cause in the source chain, for the operator's log.
    fn detail(&self) -> String {
        let mut out = self.inner.message.to_string();
        let mut cause = StdError::source(self);
        while let Some(c) = cause {
            out.push_str(": ");
            // A portcullis error's Display repeats its own causes; take its message.
            match c.downcast_ref::<Error>() {
                Some(e) => out.push_str(e.message()),
                None => out.push_str(&c.to_string()),
            }
            cause = c.source();
        }
        out
    }
}

/// Quotes a value for an HTTP auth-param, escaping `"` and `\` and dropping control characters.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind);
        if let Some(r) = self.inner.rejection {
            d.field("rejection", &r);
        }
        d.field("message", &self.inner.message);
        if let Some(s) = &self.inner.source {
            d.field("source", &s.to_string());
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)?;
        if let Some(s) = &self.inner.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn StdError + 'static))
    }
}

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_headers() {
        let missing = Error::missing_credentials().to_reply("r");
        assert_eq!(missing.status, 401);
        assert_eq!(
            missing.headers[0],
            ("www-authenticate", "Bearer realm=\"r\"".to_owned())
        );
        let scope = Error::insufficient_scope("read").to_reply("r");
        assert_eq!(scope.status, 403);
        assert!(scope.headers[0].1.ends_with("scope=\"read\""));
        let bad = Error::bad_gateway("the token answer does not parse");
        assert_eq!(
            (bad.status(), bad.error_code(), bad.grpc_code()),
            (502, "bad_gateway", 13)
        );
        let reply = bad.to_reply("r");
        assert_eq!(reply.status, 502);
        assert!(!reply.body_text().contains("does not parse"));
        assert!(reply.body_text().contains("not an outage"));
        assert!(reply.headers.iter().all(|(n, _)| *n != "www-authenticate"));
        let down = Error::unavailable("jwks down").to_reply("r");
        assert_eq!(down.status, 503);
        assert_eq!(down.headers[0].0, "content-type");
        assert!(!down.body_text().contains("jwks"), "{}", down.body_text());
        let cfg = Error::config("issuers.a.jwks_url: bad").to_reply("r");
        assert_eq!(cfg.status, 500);
        assert!(!cfg.body_text().contains("issuers"));
    }

    /// Every kind's full response, as callers see it.
    #[test]
    fn responses_snapshot() {
        let cases = [
            Error::missing_credentials(),
            Error::invalid_token(TokenRejection::Expired),
            Error::invalid_token(TokenRejection::BadSignature),
            Error::invalid_request("the Bearer credentials are empty"),
            Error::insufficient_scope("read"),
            Error::forbidden("the policy refuses this request"),
            Error::unavailable("the issuer's keys could not be fetched"),
            Error::config("configuration key `issuers.main.audiences`: required"),
        ];
        let rendered: Vec<_> = cases
            .iter()
            .map(|e| {
                let r = e.to_reply("api");
                serde_json::json!({
                    "status": r.status,
                    "headers": r.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>(),
                    "body": serde_json::from_str::<serde_json::Value>(r.body_text()).unwrap(),
                })
            })
            .collect();
        insta::assert_json_snapshot!(rendered);
    }

    #[test]
    fn server_side_failures_answer_without_detail_and_log_it() {
        #[derive(Debug)]
        struct Cause;
        impl fmt::Display for Cause {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("connect to 10.1.2.3:6379 refused")
            }
        }
        impl StdError for Cause {}
        let inner =
            Error::unavailable("GET https://id.internal:8443/keys answered 502").with_source(Cause);
        let cases = [
            Error::unavailable("the issuer's keys could not be fetched").with_source(inner),
            Error::config("/etc/portcullis/config.yaml: cannot read: permission denied"),
            Error::bad_gateway("https://id.internal:8443/token: the token answer does not parse")
                .with_source(Cause),
        ];
        for e in cases {
            let capture = crate::refusals::tests::Capture::default();
            let r = tracing::subscriber::with_default(capture.clone(), || e.to_reply("api"));
            for detail in ["id.internal", "10.1.2.3", "/etc/", "502", "permission"] {
                assert!(
                    !r.body_text().contains(detail),
                    "{detail} in {}",
                    r.body_text()
                );
                assert!(!e.grpc_message().contains(detail), "{detail} in gRPC");
            }
            // Logged at `warn`, or at `debug` when another test's failure
            // already had this interval's `warn` line.
            let logged = capture.all();
            assert!(logged.contains(e.message()), "{logged}");
            if e.kind() == ErrorKind::Unavailable {
                assert!(logged.contains("id.internal:8443"), "{logged}");
                assert!(logged.contains("10.1.2.3:6379"), "{logged}");
                assert_eq!(logged.matches("10.1.2.3").count(), 1, "{logged}");
            }
        }
        // Refusals keep their messages, and are not logged here.
        let capture = crate::refusals::tests::Capture::default();
        let r = tracing::subscriber::with_default(capture.clone(), || {
            Error::invalid_request("the Bearer credentials are empty").to_reply("api")
        });
        assert!(r.body_text().contains("the Bearer credentials are empty"));
        assert!(capture.lines(tracing::Level::WARN).is_empty());
    }

    #[test]
    fn realm_is_quoted() {
        let v = Error::missing_credentials()
            .www_authenticate("a\"b\\c\n")
            .unwrap();
        assert_eq!(v, r#"Bearer realm="a\"b\\c""#);
    }
}
