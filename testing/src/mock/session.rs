//! After the login: `GET`/`POST /userinfo` and `GET`/`POST /logout`
//! (OpenID Connect RP-Initiated Logout).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::clock::Clock;
use serde_json::{Map, Value, json};

use super::jwt::{OwnToken, verify_own};
use super::params::{Params, no_store, oauth_error, redirect, with_query};
use super::state::State;

type Shared = Arc<State>;

/// A 401 or 403 answer to a bearer request, with its `WWW-Authenticate`.
fn bearer_error(status: StatusCode, error: Option<&str>, description: &str) -> Response {
    let challenge = match error {
        Some(error) => format!("Bearer error=\"{error}\", error_description=\"{description}\""),
        None => "Bearer".to_owned(),
    };
    let mut response = oauth_error(status, error.unwrap_or("invalid_request"), description);
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// `GET` and `POST /userinfo`.
pub(crate) async fn userinfo(Extract(state): Extract<Shared>, headers: HeaderMap) -> Response {
    no_store(userinfo_response(&state, &headers))
}

fn userinfo_response(state: &State, headers: &HeaderMap) -> Response {
    let Some(authorization) = headers.get(header::AUTHORIZATION) else {
        return bearer_error(StatusCode::UNAUTHORIZED, None, "a bearer token is required");
    };
    let invalid = |description: &str| {
        bearer_error(StatusCode::UNAUTHORIZED, Some("invalid_token"), description)
    };
    let token = authorization
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(token) = token else {
        return invalid("the Authorization header must hold a bearer token");
    };
    let Some(token) = verify_own(state, token) else {
        return invalid("the access token was not issued by this provider");
    };
    if token.typ().as_deref() != Some("at+jwt") {
        return invalid("the token is not an access token");
    }
    let now = state.clock.now_secs();
    match token.claim_u64("exp") {
        Some(exp) if now < exp => {}
        _ => return invalid("the access token expired"),
    }
    if token.claim_u64("nbf").is_some_and(|nbf| now < nbf) {
        return invalid("the access token is not valid yet");
    }
    if token
        .claim_str("jti")
        .is_some_and(|jti| state.login().access_token_revoked(jti))
    {
        return invalid("the access token was revoked");
    }
    let Some(subject) = token.claim_str("sub") else {
        return invalid("the access token has no subject");
    };
    let openid = token
        .claim_str("scope")
        .is_some_and(|scope| scope.split(' ').any(|s| s == "openid"));
    if !openid {
        return bearer_error(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            "the access token lacks the openid scope",
        );
    }

    let mut claims = Map::new();
    claims.insert("sub".into(), json!(subject));
    for name in ["email", "email_verified", "preferred_username"] {
        if let Some(value) = token.claims.get(name) {
            claims.insert(name.into(), value.clone());
        }
    }
    if let Some(user) = state.login().known_user(subject) {
        for (name, value) in user.extra_claims() {
            claims.insert(name.clone(), value.clone());
        }
    }
    Json(Value::Object(claims)).into_response()
}

/// `GET /logout`.
pub(crate) async fn logout_get(
    Extract(state): Extract<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    logout(&state, &Params::parse(query.unwrap_or_default().as_bytes()))
}

/// `POST /logout`, with a form body.
pub(crate) async fn logout_post(Extract(state): Extract<Shared>, body: Bytes) -> Response {
    logout(&state, &Params::parse(&body))
}

/// Whether `token` is an ID token this provider issued for `client_id`;
/// an expired one still is.
fn is_own_id_token(token: &OwnToken, client_id: &str) -> bool {
    token.typ().as_deref() != Some("at+jwt") && token.has_audience(client_id)
}

fn logout(state: &State, params: &Params) -> Response {
    let bad_request =
        |description: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description);
    if let Some(name) = params.first_repeated() {
        return bad_request(&format!("{name} is repeated"));
    }
    let client_id = params.get("client_id");
    if client_id.is_some_and(|id| id != state.client_id) {
        return bad_request("unknown client_id");
    }
    if let Some(hint) = params.get("id_token_hint") {
        let valid = verify_own(state, hint).is_some_and(|t| is_own_id_token(&t, &state.client_id));
        if !valid {
            return bad_request("id_token_hint is not an ID token this provider issued");
        }
    }
    let target = params.get("post_logout_redirect_uri");
    let mut login = state.login();
    if let Some(uri) = target {
        if client_id.is_none() && params.get("id_token_hint").is_none() {
            return bad_request("post_logout_redirect_uri needs id_token_hint or client_id");
        }
        if !login.is_post_logout_redirect_uri(uri) {
            return bad_request("post_logout_redirect_uri is not registered for this client");
        }
    }
    login.record_logout();
    drop(login);
    match target {
        Some(uri) => {
            let answer: Vec<(&str, &str)> = params
                .get("state")
                .map(|s| ("state", s))
                .into_iter()
                .collect();
            if answer.is_empty() {
                redirect(uri)
            } else {
                redirect(&with_query(uri, &answer))
            }
        }
        None => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "You are signed out.\n",
        )
            .into_response(),
    }
}
