//! The device authorization grant (RFC 8628): `POST /device_authorization`
//! hands out a device code and a user code, `GET /device` is where the
//! user approves or denies that code, and the token endpoint answers the
//! device-code grant (`authorization_pending`, `slow_down`,
//! `access_denied`, `expired_token`, or the tokens).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State as Extract};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::clock::Clock;
use serde_json::json;

use super::login::Grant;
use super::params::{Params, no_store, oauth_error, scope_tokens};
use super::state::{State, random_b64, random_bytes};
use crate::MockUser;

type Shared = Arc<State>;

/// The grant type of RFC 8628 3.4.
pub(crate) const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// How long a device code stays valid, in seconds of the provider's clock.
pub(crate) const DEVICE_CODE_TTL_SECS: u64 = 600;

/// The letters of user codes: no vowels (no words) and none that look
/// alike, as RFC 8628 6.1 suggests.
const USER_CODE_LETTERS: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Where a device authorization stands.
#[derive(Debug, Clone)]
enum Decision {
    Pending,
    Approved(Box<Grant>),
    Denied,
}

/// One device authorization.
#[derive(Debug, Clone)]
struct DeviceEntry {
    client_id: String,
    scope: String,
    user_code: String,
    expires_at: u64,
    /// The least number of seconds between two polls; grows by 5 with
    /// each `slow_down`.
    interval: u64,
    last_poll: Option<u64>,
    decision: Decision,
}

/// The device authorizations, by device code.
#[derive(Debug, Default)]
pub(crate) struct Devices {
    by_device_code: HashMap<String, DeviceEntry>,
    by_user_code: HashMap<String, String>,
}

/// What the user did with a user code.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Approval {
    Done,
    Unknown,
}

impl Devices {
    /// Approves (with `user`) or denies (`None`) user code `user_code`,
    /// if it is pending and not expired.
    pub(crate) fn decide(&mut self, user_code: &str, user: Option<MockUser>, now: u64) -> Approval {
        let wanted = normalize_user_code(user_code);
        let Some(device_code) = self.by_user_code.get(&wanted) else {
            return Approval::Unknown;
        };
        let Some(entry) = self.by_device_code.get_mut(device_code) else {
            return Approval::Unknown;
        };
        if now >= entry.expires_at || !matches!(entry.decision, Decision::Pending) {
            return Approval::Unknown;
        }
        entry.decision = match user {
            None => Decision::Denied,
            Some(user) => Decision::Approved(Box::new(Grant {
                client_id: entry.client_id.clone(),
                subject: user.sub(),
                user,
                scope: entry.scope.clone(),
                auth_time: now,
                offline: scope_tokens(&entry.scope).is_some_and(|s| s.contains(&"offline_access")),
            })),
        };
        Approval::Done
    }
}

/// Upper case, without the dash and spaces people type.
fn normalize_user_code(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Eight letters of [`USER_CODE_LETTERS`], shown as `XXXX-XXXX`.
fn new_user_code() -> (String, String) {
    let letters: String = random_bytes(8)
        .iter()
        .map(|b| char::from(USER_CODE_LETTERS[usize::from(*b) % USER_CODE_LETTERS.len()]))
        .collect();
    let shown = format!("{}-{}", &letters[..4], &letters[4..]);
    (letters, shown)
}

/// `POST /device_authorization` (RFC 8628 3.1, 3.2). The client
/// authenticates as at the token endpoint.
pub(crate) async fn device_authorization(
    Extract(state): Extract<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    no_store(device_authorization_response(&state, &headers, &body))
}

fn device_authorization_response(state: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let bad = |error: &str, description: &str| {
        let status = if error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        oauth_error(status, error, description)
    };
    if !state.quirks.device_authorization {
        return bad(
            "unauthorized_client",
            "the device authorization grant is not enabled",
        );
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return bad(
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    }
    let params = Params::parse(body);
    if let Some(name) = params.first_repeated() {
        return bad("invalid_request", &format!("{name} is repeated"));
    }
    if let Err((error, description, _)) = super::oauth::authenticate_client(state, headers, &params)
    {
        return bad(error, description);
    }
    let scope = match params.get("scope").map(scope_tokens) {
        None => String::new(),
        Some(Some(tokens)) => tokens.join(" "),
        Some(None) => return bad("invalid_scope", "scope is malformed"),
    };
    let device_code = random_b64(32);
    let (user_code, shown) = new_user_code();
    let now = state.clock.now_secs();
    let interval = state.quirks.device_interval;
    {
        let mut login = state.login();
        let devices = login.devices();
        devices
            .by_user_code
            .insert(user_code.clone(), device_code.clone());
        devices.by_device_code.insert(
            device_code.clone(),
            DeviceEntry {
                client_id: state.client_id.clone(),
                scope,
                user_code,
                expires_at: now.saturating_add(DEVICE_CODE_TTL_SECS),
                interval,
                last_poll: None,
                decision: Decision::Pending,
            },
        );
    }
    let verification_uri = state.url(super::routes::DEVICE_PATH);
    axum::Json(json!({
        "device_code": device_code,
        "user_code": shown,
        "verification_uri": verification_uri,
        "verification_uri_complete": format!("{verification_uri}?user_code={shown}"),
        "expires_in": DEVICE_CODE_TTL_SECS,
        "interval": interval,
    }))
    .into_response()
}

/// `GET /device?user_code=...`: the user's side. Approves the code as the
/// next user (a queued one, else `login_hint`, else the provider-wide
/// email), or denies it with `action=deny`.
pub(crate) async fn device_page(
    Extract(state): Extract<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let Some(user_code) = params.get("user_code") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "user_code is required",
        );
    };
    let now = state.clock.now_secs();
    let mut login = state.login();
    let deny = params.get("action") == Some("deny");
    let user = (!deny).then(|| login.next_user(params.get("login_hint")));
    match login.devices().decide(user_code, user, now) {
        Approval::Done => {
            let status = if deny { "denied" } else { "approved" };
            axum::Json(json!({"status": status})).into_response()
        }
        Approval::Unknown => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unknown, expired or already decided user code",
        ),
    }
}

/// What the token endpoint does with a device-code grant.
pub(crate) enum Poll {
    /// An OAuth error code (RFC 8628 3.5) and its description.
    Error(&'static str, &'static str),
    /// Approved: issue tokens for this grant, the device code starting the
    /// token family.
    Tokens(Box<Grant>, String),
}

/// The device-code grant at the token endpoint (RFC 8628 3.4, 3.5).
pub(crate) fn poll(state: &State, devices: &mut Devices, params: &Params) -> Poll {
    let Some(device_code) = params.get("device_code") else {
        return Poll::Error("invalid_request", "device_code is required");
    };
    let now = state.clock.now_secs();
    let Some(entry) = devices.by_device_code.get_mut(device_code) else {
        return Poll::Error("invalid_grant", "unknown or already used device code");
    };
    if entry.client_id != state.client_id {
        return Poll::Error(
            "invalid_grant",
            "the device code was issued to another client",
        );
    }
    if now >= entry.expires_at {
        return Poll::Error("expired_token", "the device code expired");
    }
    let too_soon = entry
        .last_poll
        .is_some_and(|last| now < last.saturating_add(entry.interval));
    entry.last_poll = Some(now);
    if too_soon {
        entry.interval = entry.interval.saturating_add(5);
        return Poll::Error(
            "slow_down",
            "polled before the interval passed; it is 5 seconds longer now",
        );
    }
    match &entry.decision {
        Decision::Pending => Poll::Error("authorization_pending", "the user has not decided yet"),
        Decision::Denied => {
            let user_code = entry.user_code.clone();
            devices.by_device_code.remove(device_code);
            devices.by_user_code.remove(&user_code);
            Poll::Error("access_denied", "the user denied the authorization")
        }
        Decision::Approved(grant) => {
            let grant = grant.clone();
            let user_code = entry.user_code.clone();
            devices.by_device_code.remove(device_code);
            devices.by_user_code.remove(&user_code);
            Poll::Tokens(grant, device_code.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{USER_CODE_LETTERS, new_user_code, normalize_user_code};

    #[test]
    fn user_codes_are_eight_unambiguous_letters() {
        let (code, shown) = new_user_code();
        assert_eq!(code.len(), 8);
        assert!(code.bytes().all(|b| USER_CODE_LETTERS.contains(&b)));
        assert_eq!(normalize_user_code(&shown), code);
        assert_eq!(normalize_user_code(" bcdf-ghjk "), "BCDFGHJK");
    }
}
