//! The provider's HTTP surface: one handler per endpoint, all behind the
//! request-counting middleware.
//!
//! New endpoints are added in [`router`]; their paths live next to the others
//! below so that the discovery document and the router agree.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State as Extract};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use portcullis_core::alg::KeyFamily;
use portcullis_core::{Algorithm, TokenKind};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::state::State;
use super::token::TokenBuilder;
use super::{Fault, control, device, oauth, session};

/// The discovery document.
pub(crate) const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// The JWKS.
pub(crate) const JWKS_PATH: &str = "/jwks";
/// A Cognito user pool's JWKS, under the pool's id.
pub(crate) const COGNITO_JWKS_PATH: &str = "/{pool}/.well-known/jwks.json";
/// Token minting for command-line users.
pub(crate) const MINT_PATH: &str = "/mint";
/// The authorization endpoint.
pub(crate) const AUTHORIZE_PATH: &str = "/authorize";
/// The token endpoint.
pub(crate) const TOKEN_PATH: &str = "/token";
/// The userinfo endpoint.
pub(crate) const USERINFO_PATH: &str = "/userinfo";
/// The revocation endpoint (RFC 7009).
pub(crate) const REVOKE_PATH: &str = "/revoke";
/// The device authorization endpoint (RFC 8628).
pub(crate) const DEVICE_AUTHORIZATION_PATH: &str = "/device_authorization";
/// Where the user approves or denies a device's user code.
pub(crate) const DEVICE_PATH: &str = "/device";
/// The end-session (logout) endpoint.
pub(crate) const END_SESSION_PATH: &str = "/logout";
/// Queues the next user to log in.
const QUEUE_USER_PATH: &str = "/queue_user";
/// Sets the provider-wide email.
const SET_EMAIL_PATH: &str = "/set_email";
/// Queues an error for the next authorization request.
const QUEUE_ERROR_PATH: &str = "/queue_error";
/// Queues an error for the next token request.
const QUEUE_TOKEN_ERROR_PATH: &str = "/queue_token_error";

/// The claims advertised in discovery.
const CLAIMS: [&str; 12] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "email",
    "email_verified",
    "preferred_username",
    "scope",
];

type Shared = Arc<State>;

/// The provider's router.
pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route(DISCOVERY_PATH, get(discovery))
        .route(JWKS_PATH, get(jwks))
        // Cognito mode: every user pool's keys, where AWS's tools look
        // under `AWS_ENDPOINT_URL`.
        .route(COGNITO_JWKS_PATH, get(jwks))
        .route(MINT_PATH, post(mint))
        .route(AUTHORIZE_PATH, get(oauth::authorize))
        .route(TOKEN_PATH, post(oauth::token))
        .route(REVOKE_PATH, post(oauth::revoke))
        .route(
            DEVICE_AUTHORIZATION_PATH,
            post(device::device_authorization),
        )
        .route(DEVICE_PATH, get(device::device_page))
        .route(
            USERINFO_PATH,
            get(session::userinfo).post(session::userinfo),
        )
        .route(
            END_SESSION_PATH,
            get(session::logout_get).post(session::logout_post),
        )
        .route(QUEUE_USER_PATH, post(control::queue_user))
        .route(SET_EMAIL_PATH, post(control::set_email))
        .route(QUEUE_ERROR_PATH, post(control::queue_error))
        .route(QUEUE_TOKEN_ERROR_PATH, post(control::queue_token_error))
        .fallback(not_found)
        // Added last so that it wraps every route and the fallback.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

async fn count_requests(Extract(state): Extract<Shared>, request: Request, next: Next) -> Response {
    state.count_request(request.uri().path());
    next.run(request).await
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

async fn discovery(Extract(state): Extract<Shared>) -> Json<Value> {
    let algs: Vec<&str> = state
        .algorithms
        .iter()
        .filter(|a| a.family() != KeyFamily::Hmac)
        .map(|a| a.as_str())
        .collect();
    let mut doc = json!({
        "issuer": state.issuer,
        "jwks_uri": state.url(JWKS_PATH),
        "authorization_endpoint": state.url(AUTHORIZE_PATH),
        "token_endpoint": state.url(TOKEN_PATH),
        "userinfo_endpoint": state.url(USERINFO_PATH),
        "end_session_endpoint": state.url(END_SESSION_PATH),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": state.quirks.scopes_supported,
        "claims_supported": CLAIMS,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": state.iss_parameter,
    });
    if let Some(methods) = &state.quirks.token_endpoint_auth_methods {
        doc["token_endpoint_auth_methods_supported"] = json!(methods);
    }
    if state.quirks.revocation_endpoint {
        doc["revocation_endpoint"] = json!(state.url(REVOKE_PATH));
    }
    if state.quirks.device_authorization {
        doc["device_authorization_endpoint"] = json!(state.url(DEVICE_AUTHORIZATION_PATH));
        doc["grant_types_supported"] = json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            device::GRANT_TYPE
        ]);
    }
    Json(doc)
}

async fn jwks(Extract(state): Extract<Shared>) -> Response {
    let behavior = state.jwks_behavior();
    let mut response = match behavior.fault {
        None => Json(state.jwks_document()).into_response(),
        Some(Fault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            Json(state.jwks_document()).into_response()
        }
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(status, "jwks_fault", "the JWKS endpoint is set to fail");
        }
        Some(Fault::Malformed) => (
            [(header::CONTENT_TYPE, "application/json")],
            "{\"keys\": [{\"kty\": \"RSA\", <this is not json>",
        )
            .into_response(),
        Some(Fault::EmptyKeys) => Json(json!({"keys": []})).into_response(),
    };
    if let Some(secs) = behavior.max_age {
        let value = HeaderValue::from_str(&format!("public, max-age={secs}"))
            .unwrap_or_else(|_| HeaderValue::from_static("no-cache"));
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

/// The body of `POST /mint`; every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    sub: Option<String>,
    email: Option<String>,
    username: Option<String>,
    /// A string or an array of strings.
    aud: Option<Value>,
    scope: Option<String>,
    expires_in: Option<i64>,
    kind: Option<TokenKind>,
    alg: Option<Algorithm>,
    claims: Option<Map<String, Value>>,
}

async fn mint(Extract(state): Extract<Shared>, body: Bytes) -> Response {
    let request: MintRequest = if body.iter().all(u8::is_ascii_whitespace) {
        MintRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
        }
    };
    let mut builder = TokenBuilder::new(state);
    if let Some(kind) = request.kind {
        builder = builder.kind(kind);
    }
    if let Some(sub) = request.sub {
        builder = builder.subject(sub);
    }
    if let Some(email) = request.email {
        builder = builder.email(email);
    }
    if let Some(username) = request.username {
        builder = builder.username(username);
    }
    match request.aud {
        None => {}
        Some(Value::String(aud)) => builder = builder.audience(aud),
        Some(Value::Array(auds)) if auds.iter().all(Value::is_string) => {
            builder = builder.audiences(auds.iter().filter_map(Value::as_str));
        }
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "`aud` must be a string or an array of strings",
            );
        }
    }
    if let Some(scope) = request.scope {
        builder = builder.scope(scope);
    }
    if let Some(secs) = request.expires_in {
        builder = builder.expires_in(secs);
    }
    if let Some(alg) = request.alg {
        builder = builder.algorithm(alg);
    }
    for (name, value) in request.claims.unwrap_or_default() {
        builder = builder.claim(name, value);
    }
    Json(json!({"token": builder.sign()})).into_response()
}
