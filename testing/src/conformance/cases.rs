//! The conformance cases, one `async fn` each, listed in
//! [`conformance_tests!`](crate::conformance_tests). Each takes the adapter
//! under test; together they are the behaviour every adapter must show.

use std::sync::Arc;

use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::{Algorithm, Authenticator, CredentialsConfig, TokenKind, TokenVerifier};
use portcullis_oidc::portcullis_capabilities::MAX_BODY_BYTES;
use serde_json::json;

use super::{Adapter, LoginApp, assert_response_snapshot, login_app, resource_app};
use crate::{AppTester, MockProvider, TestClient};

/// A verifier for `provider`'s tokens on its clock.
fn verifier(provider: &MockProvider) -> TokenVerifier {
    let issuer = IssuerConfig::new(provider.issuer())
        .with_algorithms([Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA])
        .with_audience(provider.audience())
        .with_client_id(provider.client_id());
    TokenVerifier::builder(VerifierConfig::new([("mock".to_owned(), issuer)]))
        .clock(Arc::new(provider.clock()))
        .build()
        .expect("the verifier builds")
}

/// A resource application (auto-error off: routes decide) and a client.
async fn resource_with(
    adapter: &dyn Adapter,
    creds: CredentialsConfig,
) -> (MockProvider, AppTester, TestClient) {
    let provider = MockProvider::start()
        .await
        .expect("the mock provider starts");
    let auth = Authenticator::new(verifier(&provider), creds.with_auto_error(false));
    let app = resource_app(adapter, &provider, auth);
    let client = app.client(None).await;
    (provider, app, client)
}

async fn resource(adapter: &dyn Adapter) -> (MockProvider, AppTester, TestClient) {
    resource_with(adapter, CredentialsConfig::default()).await
}

/// `GET /me` without credentials: 401 with `WWW-Authenticate: Bearer realm=...`.
pub async fn no_credentials_is_401_with_a_challenge(adapter: &dyn Adapter) {
    let (_p, _app, client) = resource(adapter).await;
    let resp = client.get("/me").expect(401).await;
    assert_response_snapshot("no_credentials", &resp);
}

/// Another authorization scheme is no bearer credentials at all.
pub async fn another_scheme_is_no_credentials(adapter: &dyn Adapter) {
    let (_p, _app, client) = resource(adapter).await;
    let resp = client
        .get("/me")
        .header("authorization", "Basic YWxpY2U6c2VjcmV0")
        .expect(401)
        .await;
    assert_response_snapshot("no_credentials", &resp);
}

/// A valid token reaches the handler, which sees the caller.
pub async fn a_valid_token_reaches_the_handler(adapter: &dyn Adapter) {
    let (provider, _app, client) = resource(adapter).await;
    let token = provider
        .token()
        .subject("u-alice")
        .email("alice@example.com")
        .scope("read write")
        .sign();
    let me = client.get("/me").bearer(&token).expect(200).await;
    assert_eq!(me.header("content-type"), Some("application/json"));
    let body = me.json();
    assert_eq!(body["user_id"], "u-alice");
    assert_eq!(body["email"], "alice@example.com");
    assert_eq!(body["issuer"], provider.issuer());
    assert_eq!(body["scopes"], json!(["read", "write"]));
    assert_eq!(
        client.get("/").bearer(&token).expect(200).await.text(),
        "alice@example.com"
    );
}

/// Routes with an optional caller serve guests as guests.
pub async fn the_optional_caller_is_none_for_guests(adapter: &dyn Adapter) {
    let (_p, _app, client) = resource(adapter).await;
    assert_eq!(client.get("/").expect(200).await.text(), "guest");
}

/// A token that is not a JWS: 401 `invalid_token`, even on a route open to guests.
pub async fn a_malformed_token_is_401(adapter: &dyn Adapter) {
    let (_p, _app, client) = resource(adapter).await;
    let resp = client.get("/").bearer("not.a.token").expect(401).await;
    assert_response_snapshot("malformed_token", &resp);
}

/// An expired token: 401 `invalid_token`, reason in the challenge.
pub async fn an_expired_token_is_401(adapter: &dyn Adapter) {
    let (provider, _app, client) = resource(adapter).await;
    let token = provider.token().expires_in(-3600).sign();
    let resp = client.get("/me").bearer(&token).expect(401).await;
    assert_response_snapshot("expired_token", &resp);
}

/// A token for another audience: 401.
pub async fn a_token_for_another_audience_is_401(adapter: &dyn Adapter) {
    let (provider, _app, client) = resource(adapter).await;
    let token = provider.token().audience("someone-else").sign();
    let resp = client.get("/me").bearer(&token).expect(401).await;
    assert_response_snapshot("wrong_audience", &resp);
}

/// A token whose `iss` is not configured: 401, and no request to anyone.
pub async fn a_token_of_an_unknown_issuer_is_401(adapter: &dyn Adapter) {
    let (provider, _app, client) = resource(adapter).await;
    let token = provider.token().issuer("https://unknown.example").sign();
    let resp = client.get("/me").bearer(&token).expect(401).await;
    assert_response_snapshot("unknown_issuer", &resp);
}

/// `Authorization: Bearer` with nothing after it: 400 `invalid_request`.
pub async fn an_empty_bearer_is_400(adapter: &dyn Adapter) {
    let (_p, _app, client) = resource(adapter).await;
    let resp = client
        .get("/me")
        .header("authorization", "Bearer ")
        .expect(400)
        .await;
    assert_response_snapshot("empty_bearer", &resp);
}

/// An ID token presented as a bearer token: 401.
pub async fn an_id_token_is_not_an_access_token(adapter: &dyn Adapter) {
    let (provider, _app, client) = resource(adapter).await;
    let token = provider.token().kind(TokenKind::Id).sign();
    let resp = client.get("/me").bearer(&token).expect(401).await;
    assert_response_snapshot("id_token_as_access_token", &resp);
}

/// A caller without the route's scope: 403 `insufficient_scope`; with it, 200.
pub async fn a_missing_scope_is_403(adapter: &dyn Adapter) {
    let (provider, _app, client) = resource(adapter).await;
    client.get("/scoped").expect(401).await;
    let without = provider.token().scope("write").sign();
    let resp = client.get("/scoped").bearer(&without).expect(403).await;
    assert_response_snapshot("insufficient_scope", &resp);
    let with = provider.token().scope("read").sign();
    assert_eq!(
        client.get("/scoped").bearer(&with).expect(200).await.text(),
        "scoped"
    );
}

/// Proxy-forwarded ID tokens: accepted for the same subject, refused otherwise.
pub async fn forwarded_id_tokens_must_match_the_caller(adapter: &dyn Adapter) {
    let creds = CredentialsConfig::default().with_id_token_header("x-id-token");
    let (provider, _app, client) = resource_with(adapter, creds).await;
    let access = provider.token().subject("u-1").sign();
    let id = provider.token().kind(TokenKind::Id).subject("u-1").sign();
    client
        .get("/me")
        .bearer(&access)
        .header("x-id-token", &id)
        .expect(200)
        .await;
    let other = provider.token().kind(TokenKind::Id).subject("u-2").sign();
    let resp = client
        .get("/me")
        .bearer(&access)
        .header("x-id-token", &other)
        .expect(401)
        .await;
    assert_response_snapshot("forwarded_id_token_mismatch", &resp);
}

/// Keys that cannot be fetched: 503, never a pass.
pub async fn an_unreachable_provider_is_503(adapter: &dyn Adapter) {
    let (provider, _app, client) = resource(adapter).await;
    let token = provider.token().sign();
    provider.shutdown();
    let resp = client.get("/me").bearer(&token).expect(503).await;
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    assert_eq!(resp.json()["error"], "temporarily_unavailable");
}

/// A guest API caller on a capability route: 401.
pub async fn a_guest_api_caller_without_a_capability_is_401(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let guest = app.app.client(None).await;
    let resp = guest.get("/read").expect(401).await;
    assert_response_snapshot("capability_guest", &resp);
    guest.get("/shout").expect(401).await;
}

/// A guest browser on a route that asks for it is sent to log in and back.
pub async fn a_guest_browser_is_sent_to_log_in(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let guest = app.app.client(None).await;
    let resp = guest.get("/shout?message=hi").browser().expect(303).await;
    assert_eq!(resp.location(), Some("/login?next=%2Fshout%3Fmessage%3Dhi"));
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    // Routes without the redirect answer 401 to browsers too.
    guest.get("/read").browser().expect(401).await;
}

/// A logged-in user without the capability: 403 `insufficient_scope`.
pub async fn a_user_without_a_capability_is_403(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let user = app.app.client(Some("someone@example.com")).await;
    let resp = user.get("/shout").browser().expect(403).await;
    assert_response_snapshot("capability_forbidden", &resp);
    let friend = app.app.client(Some("friend@example.com")).await;
    assert_eq!(friend.get("/shout").expect(200).await.text(), "shout");
}

/// `default_capabilities` apply to every logged-in user.
pub async fn default_capabilities_apply_to_every_user(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let user = app.app.client(Some("someone@example.com")).await;
    assert_eq!(user.get("/read").expect(200).await.text(), "read");
}

/// easy-oauth's management routes and their rules.
pub async fn management_lists_and_grants_by_the_rules(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let user = app.app.client(Some("someone@example.com")).await;
    let admin = app.app.client(Some("admin@example.com")).await;
    let own = user.get("/manage_capabilities/list").expect(200).await;
    assert_response_snapshot("management_list_own", &own);
    let refused = user
        .post("/manage_capabilities/add")
        .json(&json!({"email": "someone@example.com", "capability": "announce"}))
        .expect(403)
        .await;
    assert_response_snapshot("management_add_refused", &refused);
    let added = admin
        .post("/manage_capabilities/add")
        .json(&json!({"email": "someone@example.com", "capability": "announce"}))
        .expect(200)
        .await;
    assert_response_snapshot("management_add", &added);
    user.get("/shout").expect(200).await;
    let bad = admin
        .post("/manage_capabilities/set")
        .body("not json")
        .expect(400)
        .await;
    assert_response_snapshot("management_bad_body", &bad);
    admin
        .post("/manage_capabilities/remove")
        .json(&json!({"email": "someone@example.com", "capability": "announce"}))
        .expect(200)
        .await;
    user.get("/shout").expect(403).await;
}

/// A management body larger than [`MAX_BODY_BYTES`] is refused (413) before
/// it is read; one within it reaches the capabilities service.
pub async fn management_bodies_are_bounded(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let admin = app.app.client(Some("admin@example.com")).await;
    admin
        .post("/manage_capabilities/add")
        .body(vec![b' '; MAX_BODY_BYTES + 1024])
        .expect(413)
        .await;
    admin
        .post("/manage_capabilities/add")
        .body(vec![b' '; MAX_BODY_BYTES])
        .expect(400)
        .await;
}

/// Service tokens, as easy-oauth's README shows them, and their revocation.
pub async fn service_tokens_and_their_revocation(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let admin = app.app.client(Some("admin@example.com")).await;
    let script = app.app.client(None).await;
    admin
        .post("/manage_capabilities/set")
        .json(&json!({"email": "bot@service", "capabilities": ["announce"]}))
        .expect(200)
        .await;
    let issued = admin.get("/token?user=bot@service").expect(200).await;
    assert_eq!(issued.header("cache-control"), Some("no-store"));
    let body = issued.json();
    assert_eq!(body["user"], "bot@service");
    let token = body["service_token"]
        .as_str()
        .expect("a service token")
        .to_owned();
    script.get("/shout").bearer(&token).expect(200).await;
    admin
        .post("/token/revoke")
        .json(&json!({"token": token}))
        .expect(200)
        .await;
    let resp = script.get("/shout").bearer(&token).expect(401).await;
    assert_response_snapshot("revoked_token", &resp);
}

/// The login flow ends with a protected session cookie and the caller known.
pub async fn the_login_flow_establishes_a_session(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let client = app.app.client(None).await;
    let back = client.login("alice@example.com", "/read").await;
    assert_eq!(back, "/read");
    let me = client.get("/me").expect(200).await.json();
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["issuer"], app.provider.issuer());
    let login = client.get("/login").expect(303).await;
    let cookies = login.headers_all("set-cookie");
    assert!(
        cookies.iter().any(|c| c.starts_with("portcullis-login=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Lax")),
        "{cookies:?}"
    );
    assert_eq!(login.header("referrer-policy"), Some("no-referrer"));
}

/// `/token` gives a logged-in user a token that works without cookies.
pub async fn user_tokens_work_without_cookies(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let alice = app.app.client(Some("alice@example.com")).await;
    let token = alice.token().await;
    let script = app.app.client(None).await;
    assert_eq!(
        script.get("/").bearer(&token).expect(200).await.text(),
        "alice@example.com"
    );
    script.get("/read").bearer(&token).expect(200).await;
    script.get("/token").expect(401).await;
}

/// Logout clears the cookie, ends the session for copies too, and goes to the provider.
pub async fn logout_ends_the_session_everywhere(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let client = app.app.client(Some("alice@example.com")).await;
    let (name, value) = client
        .cookie_matching("portcullis-session")
        .expect("a session cookie");
    let out = client.get("/logout").expect(303).await;
    assert!(
        out.location()
            .is_some_and(|l| l.starts_with(&format!("{}/logout?", app.provider.issuer())))
    );
    client.get("/read").expect(401).await;
    let copy = app.app.client(None).await;
    copy.set_cookie(&name, Some(&value));
    copy.get("/read").expect(401).await;
}

/// An altered session cookie makes a guest, and is cleared.
pub async fn a_tampered_session_is_a_guest(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let client = app.app.client(Some("alice@example.com")).await;
    let (name, value) = client
        .cookie_matching("portcullis-session")
        .expect("a session cookie");
    let mut bytes = value.into_bytes();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).expect("ASCII");
    client.set_cookie(&name, Some(&tampered));
    let resp = client.get("/read").expect(401).await;
    assert!(
        resp.headers_all("set-cookie")
            .iter()
            .any(|c| c.starts_with(&format!("{name}=;")) && c.contains("Max-Age=0")),
        "the altered cookie is cleared"
    );
}

/// Return targets that would leave the site end at `/`.
pub async fn hostile_return_targets_fall_back_to_root(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let client = app.app.client(None).await;
    for next in [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "/%2F%2Fevil.example",
        "javascript:alert(1)",
    ] {
        assert_eq!(client.login("alice@example.com", next).await, "/", "{next}");
    }
    assert_eq!(
        client.login("alice@example.com", "/read?x=1").await,
        "/read?x=1"
    );
}

/// A callback whose `state` is not the login's: 400, no session.
pub async fn a_callback_with_the_wrong_state_is_refused(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let client = app.app.client(None).await;
    let login = client.get("/login").expect(303).await;
    let callback = client
        .follow_provider(login.location().expect("a redirect"), "alice@example.com")
        .await;
    let mut url = url::Url::parse(&callback).expect("a URL");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                "forged".to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let resp = client.get_url(url.as_str()).expect(400).await;
    assert_response_snapshot("callback_state_mismatch", &resp);
    assert!(client.cookie_matching("portcullis-session").is_none());
}

/// A due refresh happens behind the request, and the response carries the renewed cookie.
pub async fn a_due_refresh_sends_the_renewed_cookie(adapter: &dyn Adapter) {
    let app: LoginApp = login_app(adapter, |_| {}).await;
    let client = app.app.client(None).await;
    let login = client.get("/login?offline_token=true").expect(303).await;
    let callback = client
        .follow_provider(login.location().expect("a redirect"), "alice@example.com")
        .await;
    client.get_url(&callback).expect(303).await;
    let before = client
        .cookie_matching("portcullis-session")
        .expect("a session cookie")
        .1;
    app.provider.clock().advance_secs(301);
    let resp = client.get("/me").expect(200).await;
    assert!(
        resp.headers_all("set-cookie")
            .iter()
            .any(|c| c.starts_with("portcullis-session=") && !c.contains("Max-Age=0")),
        "the renewed session cookie is set"
    );
    assert_ne!(
        client
            .cookie_matching("portcullis-session")
            .expect("a session cookie")
            .1,
        before
    );
    assert_eq!(app.provider.refresh_count(), 1);
}
