//! Endpoints that steer the login flows from outside the process:
//! `POST /queue_user`, `/set_email`, `/queue_error` and `/queue_token_error`,
//! each with a JSON body and answered `204 No Content`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as Extract;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::login::{MockUser, QueuedError};
use super::params::oauth_error;
use super::state::State;

type Shared = Arc<State>;

/// Parses the JSON body and acts on it: `204`, or `400` for a bad body.
fn apply<T: DeserializeOwned>(body: &[u8], act: impl FnOnce(T)) -> Response {
    match serde_json::from_slice(body) {
        Ok(request) => {
            act(request);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
    }
}

/// The body of `POST /queue_user`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueUser {
    email: String,
    sub: Option<String>,
    claims: Option<Map<String, Value>>,
}

/// The body of `POST /set_email`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetEmail {
    email: String,
}

/// The body of `POST /queue_error` and `POST /queue_token_error`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueError {
    error: String,
    error_description: Option<String>,
}

impl From<QueueError> for QueuedError {
    fn from(e: QueueError) -> Self {
        Self {
            error: e.error,
            description: e.error_description.unwrap_or_default(),
        }
    }
}

/// `POST /queue_user`: `{"email": ..., "sub"?: ..., "claims"?: {...}}`.
pub(crate) async fn queue_user(Extract(state): Extract<Shared>, body: Bytes) -> Response {
    apply(&body, |request: QueueUser| {
        state.login().queue_user(MockUser {
            email: request.email,
            subject: request.sub,
            claims: request.claims.unwrap_or_default(),
        });
    })
}

/// `POST /set_email`: `{"email": ...}`.
pub(crate) async fn set_email(Extract(state): Extract<Shared>, body: Bytes) -> Response {
    apply(&body, |request: SetEmail| {
        state.login().set_email(request.email)
    })
}

/// `POST /queue_error`: `{"error": ..., "error_description"?: ...}`.
pub(crate) async fn queue_error(Extract(state): Extract<Shared>, body: Bytes) -> Response {
    apply(&body, |request: QueueError| {
        state.login().queue_authorize_error(request.into());
    })
}

/// `POST /queue_token_error`: `{"error": ..., "error_description"?: ...}`.
pub(crate) async fn queue_token_error(Extract(state): Extract<Shared>, body: Bytes) -> Response {
    apply(&body, |request: QueueError| {
        state.login().queue_token_error(request.into());
    })
}
