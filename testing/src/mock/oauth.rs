//! The authorization code flow: `GET /authorize` and `POST /token`.
//!
//! Both are as strict as a careful real provider: registered redirect URIs
//! match exactly, PKCE with S256 is required, codes are single-use, short-lived
//! and bound to their request, refresh tokens rotate with replay detection,
//! and clients authenticate with `client_secret_basic` or `client_secret_post`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use portcullis_core::TokenKind;
use portcullis_core::clock::Clock;
use serde_json::{Value, json};

use super::login::{Code, CodeProblem, Grant, IdTokenOverride, LoginState, RefreshProblem};
use super::params::{
    Params, form_decode, is_code_verifier, is_s256_challenge, no_store, oauth_error, redirect,
    scope_tokens, with_query,
};
use super::state::{State, random_hex};
use super::token::TokenBuilder;

type Shared = Arc<State>;

/// How long an authorization code stays valid, in seconds of the provider's clock.
const CODE_TTL_SECS: u64 = 60;

/// The `prompt` values the provider understands.
const PROMPTS: [&str; 4] = ["none", "login", "consent", "select_account"];

/// The `WWW-Authenticate` of `invalid_client` answers to Basic authentication.
const BASIC_CHALLENGE: &str = "Basic realm=\"mock-oidc\", charset=\"UTF-8\"";

/// Where authorization errors go once the client and redirect URI are known.
struct ErrorRedirect<'a> {
    state: &'a State,
    redirect_uri: &'a str,
    client_state: Option<&'a str>,
}

impl ErrorRedirect<'_> {
    fn send(&self, error: &str, description: &str) -> Response {
        let mut params = vec![("error", error), ("error_description", description)];
        if let Some(client_state) = self.client_state {
            params.push(("state", client_state));
        }
        if self.state.iss_parameter {
            params.push(("iss", &self.state.issuer));
        }
        redirect(&with_query(self.redirect_uri, &params))
    }
}

/// `GET /authorize`.
pub(crate) async fn authorize(
    Extract(state): Extract<Shared>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let bad_request = |description: &str| {
        no_store(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            description,
        ))
    };

    // Without a known client and a registered redirect URI, nothing redirects.
    if params.is_repeated("client_id") {
        return bad_request("client_id is repeated");
    }
    match params.get("client_id") {
        None => return bad_request("client_id is required"),
        Some(id) if id != state.client_id => {
            return no_store(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                "unknown client_id",
            ));
        }
        Some(_) => {}
    }
    if params.is_repeated("redirect_uri") {
        return bad_request("redirect_uri is repeated");
    }
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return bad_request("redirect_uri is required");
    };
    if !state.login().is_redirect_uri(redirect_uri) {
        return bad_request("redirect_uri is not registered for this client");
    }

    let fail = ErrorRedirect {
        state: &state,
        redirect_uri,
        client_state: params.get("state"),
    };
    match check_authorization_request(&params) {
        Ok(()) => {}
        Err((error, description)) => return fail.send(error, &description),
    }
    let scope = params.get("scope").unwrap_or_default();
    let offline = if state.quirks.offline_scope() {
        has_scope(scope, "offline_access")
    } else if has_scope(scope, "offline_access") {
        return fail.send(
            "invalid_scope",
            "offline_access is not a scope here: ask for access_type=offline",
        );
    } else {
        params.get("access_type") == Some("offline")
    };

    let mut login = state.login();
    if let Some(queued) = login.next_authorize_error() {
        return fail.send(&queued.error, &queued.description);
    }
    let user = login.next_user(params.get("login_hint"));
    let now = state.clock.now_secs();
    let code = login.issue_code(Code {
        grant: Grant {
            client_id: state.client_id.clone(),
            subject: user.sub(),
            user,
            scope: scope.to_owned(),
            auth_time: now,
            offline,
        },
        redirect_uri: redirect_uri.to_owned(),
        code_challenge: params.get("code_challenge").unwrap_or_default().to_owned(),
        nonce: params.get("nonce").map(str::to_owned),
        expires_at: now.saturating_add(CODE_TTL_SECS),
    });
    drop(login);

    let mut answer = vec![("code", code.as_str())];
    if let Some(client_state) = params.get("state") {
        answer.push(("state", client_state));
    }
    if state.iss_parameter {
        answer.push(("iss", &state.issuer));
    }
    redirect(&with_query(redirect_uri, &answer))
}

/// Checks an authorization request once its client and redirect URI are
/// known; the error code and description to redirect with otherwise.
fn check_authorization_request(params: &Params) -> Result<(), (&'static str, String)> {
    let invalid = |description: &str| Err(("invalid_request", description.to_owned()));
    if let Some(name) = params.first_repeated() {
        return invalid(&format!("{name} is repeated"));
    }
    if params.get("request").is_some() {
        return Err((
            "request_not_supported",
            "request objects are not supported".to_owned(),
        ));
    }
    if params.get("request_uri").is_some() {
        return Err((
            "request_uri_not_supported",
            "request_uri is not supported".to_owned(),
        ));
    }
    match params.get("response_type") {
        None => return invalid("response_type is required"),
        Some("code") => {}
        Some(_) => {
            return Err((
                "unsupported_response_type",
                "only response_type=code is supported".to_owned(),
            ));
        }
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return invalid("only response_mode=query is supported");
    }
    if params.get("state").is_none() {
        return invalid("state is required");
    }
    match params.get("scope").map(scope_tokens) {
        None => return Err(("invalid_scope", "scope is required".to_owned())),
        Some(None) => return Err(("invalid_scope", "scope is malformed".to_owned())),
        Some(Some(tokens)) if !tokens.contains(&"openid") => {
            return Err(("invalid_scope", "scope must include openid".to_owned()));
        }
        Some(Some(_)) => {}
    }
    let Some(challenge) = params.get("code_challenge") else {
        return invalid("code_challenge is required (PKCE with S256)");
    };
    match params.get("code_challenge_method") {
        Some("S256") => {}
        None => return invalid("code_challenge_method is required and must be S256"),
        Some(_) => return invalid("transform algorithm not supported: use S256"),
    }
    if !is_s256_challenge(challenge) {
        return invalid("code_challenge must be 43 base64url characters");
    }
    if let Some(prompt) = params.get("prompt") {
        let values: Vec<&str> = prompt.split(' ').filter(|p| !p.is_empty()).collect();
        if values.iter().any(|p| !PROMPTS.contains(p)) {
            return invalid("unknown prompt value");
        }
        if values.contains(&"none") && values.len() > 1 {
            return invalid("prompt=none cannot be combined with other values");
        }
    }
    if params
        .get("max_age")
        .is_some_and(|m| m.parse::<u64>().is_err())
    {
        return invalid("max_age must be a number of seconds");
    }
    Ok(())
}

/// A token endpoint error: status 400, or 401 for `invalid_client`.
fn token_error(error: &str, description: &str, basic: bool) -> Response {
    if error == "invalid_client" {
        let mut response = oauth_error(StatusCode::UNAUTHORIZED, error, description);
        if basic {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(BASIC_CHALLENGE),
            );
        }
        response
    } else {
        oauth_error(StatusCode::BAD_REQUEST, error, description)
    }
}

/// `POST /token`.
pub(crate) async fn token(
    Extract(state): Extract<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(delay) = state.token_delay() {
        tokio::time::sleep(delay).await;
    }
    no_store(token_response(&state, &headers, &body))
}

fn token_response(state: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
        });
    if let Some(queued) = state.login().next_token_error() {
        return token_error(&queued.error, &queued.description, basic.is_some());
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
        return token_error(
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
            false,
        );
    }
    let params = Params::parse(body);
    if let Some(name) = params.first_repeated() {
        return token_error("invalid_request", &format!("{name} is repeated"), false);
    }
    let used_basic = basic.is_some();
    if let Err((error, description, basic)) = authenticate(state, headers, basic, &params) {
        return token_error(error, description, basic);
    }
    match params.get("grant_type") {
        None => token_error("invalid_request", "grant_type is required", false),
        Some("authorization_code") => authorization_code_grant(state, &params, used_basic),
        Some("refresh_token") => refresh_token_grant(state, &params),
        Some("client_credentials") => client_credentials_grant(state, &params),
        Some(super::device::GRANT_TYPE) if state.quirks.device_authorization => {
            device_code_grant(state, &params, used_basic)
        }
        Some(_) => token_error(
            "unsupported_grant_type",
            "the grant type is not supported",
            false,
        ),
    }
}

/// `POST /revoke` (RFC 7009): the client authenticates as at the token
/// endpoint; a refresh token's whole family is revoked. An unknown token
/// is answered 200 as well, as the RFC says.
pub(crate) async fn revoke(
    Extract(state): Extract<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
        });
    let params = Params::parse(&body);
    if let Err((error, description, basic)) = authenticate(&state, &headers, basic, &params) {
        return token_error(error, description, basic);
    }
    let Some(token) = params.get("token") else {
        return token_error("invalid_request", "token is required", false);
    };
    state.login().revoke_refresh_token(token);
    no_store(StatusCode::OK.into_response())
}

/// Why client authentication failed: an error code, its description, and
/// whether Basic authentication was tried.
type AuthFailure = (&'static str, &'static str, bool);

/// Authenticates the client with `client_secret_basic` or `client_secret_post`.
fn authenticate(
    state: &State,
    headers: &HeaderMap,
    basic: Option<&str>,
    params: &Params,
) -> Result<(), AuthFailure> {
    if let Some(credentials) = basic {
        if !state.quirks.accepts("client_secret_basic") {
            return Err((
                "invalid_client",
                "client_secret_basic is not accepted here: use client_secret_post",
                true,
            ));
        }
        if params.get("client_secret").is_some() {
            return Err((
                "invalid_request",
                "use one client authentication method, not two",
                false,
            ));
        }
        const BAD: AuthFailure = ("invalid_client", "client authentication failed", true);
        let decoded = STANDARD.decode(credentials).map_err(|_| BAD)?;
        let decoded = String::from_utf8(decoded).map_err(|_| BAD)?;
        let (id, secret) = decoded.split_once(':').ok_or(BAD)?;
        let id = form_decode(id).ok_or(BAD)?;
        let secret = form_decode(secret).ok_or(BAD)?;
        if params.get("client_id").is_some_and(|body_id| body_id != id) {
            return Err((
                "invalid_request",
                "client_id differs from the authenticated client",
                false,
            ));
        }
        if id != state.client_id || secret != state.client_secret {
            return Err(BAD);
        }
        return Ok(());
    }
    if headers.contains_key(header::AUTHORIZATION) {
        return Err((
            "invalid_client",
            "unsupported client authentication scheme: use Basic or client_secret_post",
            true,
        ));
    }
    if params.get("client_secret").is_some() && !state.quirks.accepts("client_secret_post") {
        return Err((
            "invalid_client",
            "client_secret_post is not accepted here: use HTTP Basic",
            false,
        ));
    }
    match (params.get("client_id"), params.get("client_secret")) {
        (Some(id), Some(secret)) if id == state.client_id && secret == state.client_secret => {
            Ok(())
        }
        (_, None) => Err(("invalid_client", "client authentication is required", false)),
        _ => Err(("invalid_client", "client authentication failed", false)),
    }
}

/// Authenticates the client of a request other than the token endpoint's
/// (the device authorization endpoint) as the token endpoint does.
pub(crate) fn authenticate_client(
    state: &State,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(), AuthFailure> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
        });
    authenticate(state, headers, basic, params)
}

/// The device-code grant (RFC 8628 3.4): the tokens once the user approved.
fn device_code_grant(state: &Shared, params: &Params, used_basic: bool) -> Response {
    let mut login = state.login();
    match super::device::poll(state, login.devices(), params) {
        super::device::Poll::Error(error, description) => token_error(error, description, false),
        super::device::Poll::Tokens(grant, device_code) => {
            let family = login.start_family(&device_code, (*grant).clone());
            let id_token = login.next_id_token_override();
            let body = issue_tokens(
                state,
                &mut login,
                &Issue {
                    grant: &grant,
                    family,
                    scope: &grant.scope,
                    nonce: None,
                    id_subject: None,
                    refresh: grant.offline,
                    id_token: id_token.as_ref(),
                    null_audience: used_basic && state.quirks.null_id_token_audience_under_basic,
                },
            );
            axum::Json(body).into_response()
        }
    }
}

/// BASE64URL(SHA256(verifier)), the S256 transform of RFC 7636.
fn s256(verifier: &str) -> String {
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(hash.as_ref())
}

fn authorization_code_grant(state: &Shared, params: &Params, used_basic: bool) -> Response {
    let invalid = |description: &str| token_error("invalid_request", description, false);
    let invalid_grant = |description: &str| token_error("invalid_grant", description, false);
    let Some(code) = params.get("code") else {
        return invalid("code is required");
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return invalid("redirect_uri is required");
    };
    let Some(verifier) = params.get("code_verifier") else {
        return invalid("code_verifier is required");
    };
    if !is_code_verifier(verifier) {
        return invalid("code_verifier must be 43 to 128 unreserved characters");
    }

    let mut login = state.login();
    let bound = match login.take_code(code, state.clock.now_secs()) {
        Ok(bound) => bound,
        Err(CodeProblem::Unknown) => return invalid_grant("unknown authorization code"),
        Err(CodeProblem::Expired) => return invalid_grant("the authorization code expired"),
        Err(CodeProblem::Replayed) => {
            return invalid_grant(
                "the authorization code was already used; the tokens issued for it are revoked",
            );
        }
    };
    if bound.grant.client_id != state.client_id {
        return invalid_grant("the authorization code was issued to another client");
    }
    if bound.redirect_uri != redirect_uri {
        return invalid_grant("redirect_uri differs from the authorization request's");
    }
    if s256(verifier) != bound.code_challenge {
        return invalid_grant("code_verifier does not match the code_challenge");
    }
    let family = login.start_family(code, bound.grant.clone());
    let refresh = bound.grant.offline;
    let id_token = login.next_id_token_override();
    let body = issue_tokens(
        state,
        &mut login,
        &Issue {
            grant: &bound.grant,
            family,
            scope: &bound.grant.scope,
            nonce: bound.nonce.as_deref(),
            id_subject: None,
            refresh,
            id_token: id_token.as_ref(),
            null_audience: used_basic && state.quirks.null_id_token_audience_under_basic,
        },
    );
    axum::Json(body).into_response()
}

fn refresh_token_grant(state: &Shared, params: &Params) -> Response {
    let invalid_grant = |description: &str| token_error("invalid_grant", description, false);
    let Some(refresh_token) = params.get("refresh_token") else {
        return token_error("invalid_request", "refresh_token is required", false);
    };
    let mut login = state.login();
    let (family, grant) = match login.peek_refresh_token(refresh_token) {
        Ok(found) => found,
        Err(RefreshProblem::Unknown) => return invalid_grant("unknown refresh token"),
        Err(RefreshProblem::Revoked) => return invalid_grant("the refresh token was revoked"),
        Err(RefreshProblem::Replayed) => {
            return invalid_grant(
                "the refresh token was already used; every token of its login is revoked",
            );
        }
    };
    if grant.client_id != state.client_id {
        return invalid_grant("the refresh token was issued to another client");
    }
    let scope = match params.get("scope") {
        None => grant.scope.clone(),
        Some(requested) => {
            let granted: Vec<&str> = grant.scope.split(' ').collect();
            match scope_tokens(requested) {
                Some(tokens) if tokens.iter().all(|t| granted.contains(t)) => tokens.join(" "),
                _ => {
                    return token_error(
                        "invalid_scope",
                        "scope must be within the originally granted scope",
                        false,
                    );
                }
            }
        }
    };
    login.use_refresh_token(refresh_token);
    let id_subject = login.refresh_subject().map(str::to_owned);
    let body = issue_tokens(
        state,
        &mut login,
        &Issue {
            grant: &grant,
            family,
            scope: &scope,
            nonce: None,
            id_subject: id_subject.as_deref(),
            refresh: true,
            id_token: None,
            null_audience: false,
        },
    );
    axum::Json(body).into_response()
}

fn client_credentials_grant(state: &Shared, params: &Params) -> Response {
    let scope = match params.get("scope").map(scope_tokens) {
        None => None,
        Some(Some(tokens)) => Some(tokens.join(" ")),
        Some(None) => return token_error("invalid_scope", "scope is malformed", false),
    };
    let ttl = ttl_secs(state);
    let mut builder = TokenBuilder::new(state.clone())
        .algorithm(state.login_algorithm())
        .subject(&state.client_id)
        .expires_in(ttl);
    builder = match &scope {
        Some(scope) => builder.scope(scope),
        None => builder.without_claim("scope"),
    };
    let mut body = json!({
        "access_token": builder.sign(),
        "token_type": "Bearer",
        "expires_in": ttl,
    });
    if let Some(scope) = scope {
        body["scope"] = json!(scope);
    }
    state.login().record_token_response(&body);
    axum::Json(body).into_response()
}

fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split(' ').any(|s| s == wanted)
}

fn ttl_secs(state: &State) -> i64 {
    i64::try_from(state.access_token_ttl).unwrap_or(i64::MAX)
}

/// What one token answer holds.
struct Issue<'a> {
    grant: &'a Grant,
    family: usize,
    /// The scope of this answer's access token.
    scope: &'a str,
    nonce: Option<&'a str>,
    /// The ID token's `sub`, instead of the grant's.
    id_subject: Option<&'a str>,
    refresh: bool,
    /// How the ID token differs from the provider's own, if it does.
    id_token: Option<&'a IdTokenOverride>,
    /// `aud: null` in the ID token (easy-oauth's mock provider under Basic).
    null_audience: bool,
}

/// Signs an access token, an ID token when the scope holds `openid` and a
/// refresh token when asked, and returns the token endpoint's answer.
fn issue_tokens(state: &Shared, login: &mut LoginState, issue: &Issue<'_>) -> Value {
    let grant = issue.grant;
    let alg = state.login_algorithm();
    let ttl = ttl_secs(state);
    let jti = random_hex(16);
    let access_token = TokenBuilder::new(state.clone())
        .algorithm(alg)
        .subject(&grant.subject)
        .email(&grant.user.email)
        .scope(issue.scope)
        .expires_in(ttl)
        .claim("jti", json!(jti))
        .claim("client_id", json!(grant.client_id))
        .sign();
    login.record_access_token(jti, issue.family);
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": issue.scope,
    });
    if has_scope(issue.scope, "openid") {
        let mut id_token = TokenBuilder::new(state.clone())
            .kind(TokenKind::Id)
            .algorithm(alg)
            .subject(issue.id_subject.unwrap_or(&grant.subject))
            .audience(&grant.client_id)
            .email(&grant.user.email)
            .expires_in(ttl)
            .at_hash_for(&access_token)
            .claim("auth_time", json!(grant.auth_time));
        id_token = match issue.nonce {
            Some(nonce) => id_token.claim("nonce", json!(nonce)),
            None => id_token.without_claim("nonce"),
        };
        for (name, value) in grant.user.extra_claims() {
            id_token = id_token.claim(name.clone(), value.clone());
        }
        if issue.null_audience {
            id_token = id_token.claim("aud", Value::Null);
        }
        let signed = match issue.id_token {
            None => id_token.sign(),
            Some(IdTokenOverride::Raw(raw)) => raw.clone(),
            Some(IdTokenOverride::Claims(claims)) => {
                for (name, value) in claims {
                    id_token = if value.is_null() {
                        id_token.without_claim(name.clone())
                    } else {
                        id_token.claim(name.clone(), value.clone())
                    };
                }
                id_token.sign()
            }
        };
        body["id_token"] = json!(signed);
    }
    if issue.refresh {
        body["refresh_token"] = json!(login.issue_refresh_token(issue.family));
    }
    login.record_token_response(&body);
    body
}
