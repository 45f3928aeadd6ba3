//! The conformance cases, one `async fn` each, listed in
//! [`conformance_tests!`](crate::conformance_tests). Each takes the adapter
//! under test; together they are the behaviour every adapter must show.

use std::sync::Arc;

use portcullis_core::config::{IssuerConfig, VerifierConfig};
use portcullis_core::{Algorithm, Authenticator, CredentialsConfig, TokenKind, TokenVerifier};
use portcullis_oidc::portcullis_capabilities::MAX_BODY_BYTES;
use serde_json::json;

use portcullis_policy::{CorsPreflight, Guests, InputShape, Policy, PolicyConfig};

use super::{
    Adapter, LoginApp, assert_response_snapshot, login_app, login_app_with_stores, policy_app,
    policy_dir, resource_app,
};
use crate::{AppTester, MockOpa, MockProvider, OpaFault, TestClient};

pub use super::automation::*;
pub use super::logins::*;
pub use super::parity::*;

/// A verifier for `provider`'s tokens on its clock.
pub(super) fn verifier(provider: &MockProvider) -> TokenVerifier {
    let issuer = IssuerConfig::new(provider.issuer())
        .with_algorithms([Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA])
        .with_audience(provider.audience())
        .with_client_id(provider.client_id());
    TokenVerifier::builder(VerifierConfig::new([("mock".to_owned(), issuer)]))
        .clock(Arc::new(provider.clock()))
        .build()
        .expect("the verifier builds")
}

/// A resource application (requests without credentials go on as guests:
/// routes decide) and a client.
async fn resource_with(
    adapter: &dyn Adapter,
    creds: CredentialsConfig,
) -> (MockProvider, AppTester, TestClient) {
    let provider = MockProvider::start()
        .await
        .expect("the mock provider starts");
    let auth = Authenticator::new(verifier(&provider), creds);
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

/// A guest API caller on a capability route: 401, also where guests are
/// sent to log in (an API caller asks for JSON).
pub async fn a_guest_api_caller_without_a_capability_is_401(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let guest = app.app.client(None).await;
    let resp = guest.get("/read").expect(401).await;
    assert_response_snapshot("capability_guest", &resp);
    guest
        .get("/shout")
        .header("accept", "application/json")
        .expect(401)
        .await;
}

/// A guest browser on a route that asks for it is sent to log in and back.
pub async fn a_guest_browser_is_sent_to_log_in(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let guest = app.app.client(None).await;
    let resp = guest.get("/shout?message=hi").browser().expect(303).await;
    assert_eq!(resp.location(), Some("/login?next=%2Fshout%3Fmessage%3Dhi"));
    assert_eq!(resp.header("cache-control"), Some("private, no-store"));
    // Routes without the redirect answer 401 to browsers too.
    guest.get("/read").browser().expect(401).await;
}

/// A guard naming a capability the graph lacks is a configuration error: a
/// browser guest gets the 500 like everyone, never a login redirect that
/// would loop back to the same error.
pub async fn a_misconfigured_capability_is_500_not_a_login_redirect(adapter: &dyn Adapter) {
    let app = login_app(adapter, |c| {
        c.capabilities.graph.remove("announce");
        c.capabilities
            .graph
            .values_mut()
            .for_each(|implied| implied.retain(|name| name != "announce"));
    })
    .await;
    let guest = app.app.client(None).await;
    let resp = guest.get("/shout").browser().expect(500).await;
    assert_eq!(resp.location(), None);
    assert_eq!(resp.json()["error_description"], "internal server error");
    let user = app.app.client(Some("admin@example.com")).await;
    user.get("/shout").expect(500).await;
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
        .header("content-type", "application/json")
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
        .header("content-type", "application/json")
        .body(vec![b' '; MAX_BODY_BYTES + 1024])
        .expect(413)
        .await;
    admin
        .post("/manage_capabilities/add")
        .header("content-type", "application/json")
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
    assert_eq!(issued.header("cache-control"), Some("private, no-store"));
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
    script
        .get("/token")
        .header("accept", "application/json")
        .expect(401)
        .await;
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

/// What `admin` lists for `email`: the capability store as the management routes show it.
async fn capabilities_of(admin: &TestClient, email: &str) -> serde_json::Value {
    admin
        .get(&format!("/manage_capabilities/list?email={email}"))
        .expect(200)
        .await
        .json()
}

/// The grant the CSRF cases try to make.
fn grant() -> serde_json::Value {
    json!({"email": "someone@example.com", "capability": "announce"})
}

/// A state-changing request authenticated by the session cookie from
/// another site, or from the same site but another origin (a sibling
/// subdomain, another port), or without any origin signal: 403, and the
/// store is unchanged. `POST /token/revoke` and `POST /logout` alike.
pub async fn cross_origin_posts_with_the_session_are_refused(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let admin = app.app.client(Some("admin@example.com")).await;
    let before = capabilities_of(&admin, "someone@example.com").await;
    let cross = admin
        .post("/manage_capabilities/add")
        .from_another_site()
        .json(&grant())
        .expect(403)
        .await;
    assert_response_snapshot("cross_origin_refused", &cross);
    let same_site_other_port = "http://127.0.0.1:1";
    let attempts: [&[(&str, &str)]; 6] = [
        // A sibling origin of the same site: SameSite=Lax lets the cookie through.
        &[("sec-fetch-site", "same-site")],
        &[("origin", same_site_other_port)],
        &[("origin", "null")],
        &[("referer", "http://127.0.0.1:1/page")],
        // No signal at all.
        &[],
        // A text/plain body, as an HTML form can send without a preflight.
        &[("sec-fetch-site", "cross-site")],
    ];
    for (i, headers) in attempts.iter().enumerate() {
        let mut req = admin.post("/manage_capabilities/add").without_origin();
        for (n, v) in *headers {
            req = req.header(n, v);
        }
        let req = if i == attempts.len() - 1 {
            req.header("content-type", "text/plain")
                .body(grant().to_string())
        } else {
            req.json(&grant())
        };
        let resp = req.expect(403).await;
        assert_eq!(resp.json(), cross.json(), "{headers:?}");
    }
    assert_eq!(
        capabilities_of(&admin, "someone@example.com").await,
        before,
        "nothing changed"
    );
    // The token revocation route and the logout route alike.
    let token = admin.token().await;
    admin
        .post("/token/revoke")
        .from_another_site()
        .json(&json!({"token": token}))
        .expect(403)
        .await;
    let script = app.app.client(None).await;
    script.get("/read").bearer(&token).expect(200).await;
    admin.post("/logout").from_another_site().expect(403).await;
    admin.get("/me").expect(200).await;
}

/// The same requests from the site's own pages work, whichever signal
/// shows it: `Sec-Fetch-Site: same-origin`, an `Origin`, a `Referer`.
pub async fn same_origin_posts_with_the_session_work(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let admin = app.app.client(Some("admin@example.com")).await;
    let user = app.app.client(Some("someone@example.com")).await;
    let own = app.app.base_url().to_owned();
    admin
        .post("/manage_capabilities/add")
        .without_origin()
        .header("sec-fetch-site", "same-origin")
        .json(&grant())
        .expect(200)
        .await;
    user.get("/shout").expect(200).await;
    admin
        .post("/manage_capabilities/remove")
        .without_origin()
        .header("origin", &own)
        .json(&grant())
        .expect(200)
        .await;
    user.get("/shout").expect(403).await;
    admin
        .post("/manage_capabilities/add")
        .without_origin()
        .header("referer", &format!("{own}/admin?page=1"))
        .json(&grant())
        .expect(200)
        .await;
    user.get("/shout").expect(200).await;
}

/// The JSON routes take JSON only, declared so (415 otherwise), whoever asks.
pub async fn json_routes_require_a_json_content_type(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let admin = app.app.client(Some("admin@example.com")).await;
    let before = capabilities_of(&admin, "someone@example.com").await;
    let resp = admin
        .post("/manage_capabilities/add")
        .header("content-type", "text/plain")
        .body(grant().to_string())
        .expect(415)
        .await;
    assert_response_snapshot("unsupported_media_type", &resp);
    for path in [
        "/manage_capabilities/add",
        "/manage_capabilities/remove",
        "/manage_capabilities/set",
        "/token/revoke",
    ] {
        admin
            .post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=someone%40example.com&capability=announce")
            .expect(415)
            .await;
    }
    // A bearer caller too.
    let token = admin.token().await;
    let script = app.app.client(None).await;
    script
        .post("/manage_capabilities/add")
        .without_origin()
        .bearer(&token)
        .header("content-type", "text/plain")
        .body(grant().to_string())
        .expect(415)
        .await;
    admin
        .post("/manage_capabilities/add")
        .header("content-type", "application/json; charset=utf-8")
        .body(grant().to_string())
        .expect(200)
        .await;
    assert_ne!(capabilities_of(&admin, "someone@example.com").await, before);
}

/// A bearer token is not sent by a browser on its own: requests
/// authenticated by one need no origin signal, cookie or not.
pub async fn bearer_posts_need_no_origin(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let admin = app.app.client(Some("admin@example.com")).await;
    let token = admin.token().await;
    let script = app.app.client(None).await;
    script
        .post("/manage_capabilities/add")
        .without_origin()
        .bearer(&token)
        .json(&grant())
        .expect(200)
        .await;
    let noted = script
        .post("/note")
        .without_origin()
        .bearer(&token)
        .expect(200)
        .await;
    assert_eq!(noted.text(), super::NOTED);
    // The bearer token decides even beside the session cookie.
    admin
        .post("/note")
        .without_origin()
        .bearer(&token)
        .expect(200)
        .await;
    script
        .post("/token/revoke")
        .without_origin()
        .bearer(&token)
        .json(&json!({"token": token}))
        .expect(200)
        .await;
}

/// The application's own state-changing routes behind the middleware are
/// protected the same way; `csrf_protection: false` lifts that for them
/// (an application with its own defence), not for portcullis' own routes.
pub async fn the_applications_own_posts_are_protected(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let user = app.app.client(Some("someone@example.com")).await;
    let resp = user.post("/note").from_another_site().expect(403).await;
    assert_response_snapshot("cross_origin_refused", &resp);
    user.post("/note")
        .without_origin()
        .header("sec-fetch-site", "same-site")
        .expect(403)
        .await;
    assert_eq!(user.post("/note").expect(200).await.text(), super::NOTED);

    let off = login_app(adapter, |c| c.csrf_protection = false).await;
    let user = off.app.client(Some("someone@example.com")).await;
    let admin = off.app.client(Some("admin@example.com")).await;
    user.post("/note").from_another_site().expect(200).await;
    let before = capabilities_of(&admin, "someone@example.com").await;
    let resp = admin
        .post("/manage_capabilities/add")
        .from_another_site()
        .json(&grant())
        .expect(403)
        .await;
    assert_response_snapshot("cross_origin_refused", &resp);
    admin.post("/logout").from_another_site().expect(403).await;
    admin.get("/me").expect(200).await;
    assert_eq!(capabilities_of(&admin, "someone@example.com").await, before);
}

/// `GET /logout` from another site (or a sibling origin) does not log out:
/// it answers a page asking to confirm, whose button posts to `/logout`.
pub async fn a_logout_link_from_another_site_asks_first(adapter: &dyn Adapter) {
    let app = login_app(adapter, |c| c.prefix = "/account".to_owned()).await;
    let client = app.app.client(Some("alice@example.com")).await;
    let page = client
        .get("/account/logout")
        .header("sec-fetch-site", "cross-site")
        .header("referer", "https://attacker.example/")
        .expect(200)
        .await;
    assert_response_snapshot("logout_confirmation", &page);
    assert!(
        page.header("content-security-policy")
            .is_some_and(|c| c.contains("frame-ancestors 'none'")),
        "the page may not be framed (clickjacking)"
    );
    assert!(
        page.headers_all("set-cookie").is_empty(),
        "no cookie changes"
    );
    for (name, value) in [
        ("sec-fetch-site", "same-site"),
        ("referer", "http://127.0.0.1:1/"),
    ] {
        let resp = client
            .get("/account/logout")
            .header(name, value)
            .expect(200)
            .await;
        assert_eq!(resp.body, page.body, "{name}: {value}");
    }
    client.get("/me").expect(200).await;
    // The confirmation's form posts from the page itself.
    let out = client
        .post("/account/logout")
        .without_origin()
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/x-www-form-urlencoded")
        .expect(303)
        .await;
    assert_eq!(out.header("cache-control"), Some("private, no-store"));
    client.get("/me").expect(401).await;
}

/// `GET /logout` from the site's own pages, or typed by the user, logs out
/// at once, as easy-oauth's link does.
pub async fn a_logout_link_on_the_site_logs_out(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let own = app.app.base_url().to_owned();
    let signals: [(&str, String); 3] = [
        ("sec-fetch-site", "same-origin".to_owned()),
        ("sec-fetch-site", "none".to_owned()),
        ("referer", format!("{own}/page")),
    ];
    for (name, value) in signals {
        let client = app.app.client(Some("alice@example.com")).await;
        let out = client.get("/logout").header(name, &value).expect(303).await;
        assert_eq!(out.header("cache-control"), Some("private, no-store"));
        assert!(
            out.headers_all("set-cookie")
                .iter()
                .any(|c| c.starts_with("portcullis-session=;")),
            "{name}: {value}"
        );
        client.get("/me").expect(401).await;
    }
}

/// `GET /login`, which another site may send the browser to, leaves the
/// current session alone; the callback ends it when a new one replaces it.
pub async fn a_login_from_another_site_keeps_the_session(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let client = app.app.client(Some("alice@example.com")).await;
    let (name, old) = client
        .cookie_matching("portcullis-session")
        .expect("a session cookie");
    let login = client
        .get("/login")
        .header("sec-fetch-site", "cross-site")
        .expect(303)
        .await;
    assert_eq!(login.header("cache-control"), Some("private, no-store"));
    assert!(
        !login
            .headers_all("set-cookie")
            .iter()
            .any(|c| c.starts_with(&format!("{name}="))),
        "the session cookie is not touched"
    );
    assert_eq!(
        client.get("/me").expect(200).await.json()["email"],
        "alice@example.com"
    );
    // Completing the login replaces the session, and ends the old one.
    let callback = client
        .follow_provider(login.location().expect("a redirect"), "bob@example.com")
        .await;
    let back = client.get_url(&callback).expect(303).await;
    assert_eq!(back.header("cache-control"), Some("private, no-store"));
    assert_eq!(
        client.get("/me").expect(200).await.json()["email"],
        "bob@example.com"
    );
    let copy = app.app.client(None).await;
    copy.set_cookie(&name, Some(&old));
    copy.get("/me").expect(401).await;
}

/// A response that sets a session cookie is never cacheable: a due refresh
/// on a page whose handler says `public, max-age=60` answers `private, no-store`.
pub async fn a_refreshed_cookie_is_never_cached(adapter: &dyn Adapter) {
    let app: LoginApp = login_app(adapter, |_| {}).await;
    let client = app.app.client(None).await;
    let login = client.get("/login?offline_token=true").expect(303).await;
    let callback = client
        .follow_provider(login.location().expect("a redirect"), "alice@example.com")
        .await;
    client.get_url(&callback).expect(303).await;
    let plain = client.get("/cacheable").expect(200).await;
    assert_eq!(plain.headers_all("cache-control"), vec![super::CACHEABLE]);
    app.provider.clock().advance_secs(301);
    // A refused cross-site request changes nothing, not even by a refresh.
    client.post("/note").from_another_site().expect(403).await;
    assert_eq!(app.provider.refresh_count(), 0);
    let resp = client.get("/cacheable").expect(200).await;
    assert!(
        resp.headers_all("set-cookie")
            .iter()
            .any(|c| c.starts_with("portcullis-session=") && !c.contains("Max-Age=0")),
        "the renewed session cookie is set"
    );
    assert_eq!(resp.headers_all("cache-control"), vec!["private, no-store"]);
    assert_response_snapshot("refreshed_on_a_cacheable_page", &resp);
    assert_eq!(app.provider.refresh_count(), 1);
}

/// A middleware inside the authentication layer that fails the request
/// with an error (not a response) loses nothing the authentication decided:
/// the refreshed session cookie and `Cache-Control: private, no-store`
/// reach the browser with the error's answer. (A browser left with the
/// rotated-out cookie would be logged out, or worse, replay a used refresh
/// token.)
pub async fn an_inner_failure_keeps_the_refreshed_cookie(adapter: &dyn Adapter) {
    let app: LoginApp = login_app(adapter, |_| {}).await;
    let client = app.app.client(None).await;
    let login = client.get("/login?offline_token=true").expect(303).await;
    let callback = client
        .follow_provider(login.location().expect("a redirect"), "alice@example.com")
        .await;
    client.get_url(&callback).expect(303).await;
    app.provider.clock().advance_secs(301);
    let resp = client.get("/failing").expect(503).await;
    assert_eq!(resp.text(), super::INNER_FAILURE);
    assert_eq!(app.provider.refresh_count(), 1);
    assert!(
        resp.headers_all("set-cookie")
            .iter()
            .any(|c| c.starts_with("portcullis-session=") && !c.contains("Max-Age=0")),
        "the renewed session cookie is set on the error's answer"
    );
    assert_eq!(resp.headers_all("cache-control"), vec!["private, no-store"]);
    // The renewed cookie is the one in force: the next request needs no refresh.
    client.get("/me").expect(200).await;
    assert_eq!(app.provider.refresh_count(), 1);
}

/// Request headers, as an adapter hands them over.
struct Headers<'a>(Vec<(&'a str, &'a str)>);

impl portcullis_core::HeaderLookup for Headers<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.as_slice().header(name)
    }
}

/// Every token the provider's last token answer carried.
fn issued_tokens(provider: &MockProvider) -> Vec<String> {
    let answer = provider
        .last_token_response()
        .expect("the provider answered a token request");
    ["access_token", "refresh_token", "id_token"]
        .iter()
        .filter_map(|k| answer[*k].as_str().map(str::to_owned))
        .collect()
}

/// After a real login and a refresh (server-side sessions in a memory
/// store), no `Debug` form of a type that holds tokens shows any of them,
/// nor the session cookie, nor a login's `state`, `nonce` and transaction
/// cookie: the relying party, the gate, an authentication,
/// refusals, the routes, replies, the capabilities, the adapter's
/// middleware, the store, the token sources and the forwarding client.
pub async fn debug_output_shows_no_token(adapter: &dyn Adapter) {
    use portcullis_adapter_kit::Gate;
    use portcullis_adapter_kit::routes::Routes;
    use portcullis_core::{Authenticated, RawToken};
    use portcullis_oidc::portcullis_capabilities::{MemoryStore, Stores};
    use portcullis_oidc::{
        ClientCredentials, ForwardedToken, ForwardingClient, RefreshingToken, TokenEndpoint,
        TokenSource,
    };

    let memory = Arc::new(MemoryStore::new());
    let stores = Stores {
        capabilities: Arc::new(MemoryStore::with_users([(
            "admin@example.com",
            vec!["admin"],
        )])),
        revocations: Some(memory.clone()),
        sessions: memory.clone(),
    };
    let app = login_app_with_stores(
        adapter,
        |c| c.session.storage = portcullis_oidc::SessionStorage::Server,
        Some(stores),
    )
    .await;
    let (provider, rp) = (&app.provider, &app.rp);
    let client = app.app.client(None).await;
    let login = client.get("/login?offline_token=true").expect(303).await;
    let callback = client
        .follow_provider(login.location().expect("a redirect"), "admin@example.com")
        .await;
    client.get_url(&callback).expect(303).await;
    let mut secrets = issued_tokens(provider);
    let (name, before) = client
        .cookie_matching("portcullis-session")
        .expect("a session cookie");
    provider.clock().advance_secs(301);
    client.get("/me").expect(200).await;
    assert_eq!(provider.refresh_count(), 1);
    secrets.extend(issued_tokens(provider));
    let after = client.cookie(&name).expect("the renewed cookie");
    secrets.extend([before, after.clone()]);

    let mut shown: Vec<(&str, String)> = Vec::new();
    // Another refresh, through the relying party itself: its answer carries the renewed cookie.
    provider.clock().advance_secs(301);
    let cookie = format!("{name}={after}");
    let headers = Headers(vec![("cookie", cookie.as_str())]);
    let authn = rp.authenticate("GET", &headers).await.expect("a session");
    assert_eq!(provider.refresh_count(), 2);
    secrets.extend(issued_tokens(provider));
    let refresh = provider
        .last_token_response()
        .and_then(|a| a["refresh_token"].as_str().map(str::to_owned))
        .expect("a rotated refresh token");
    assert!(!authn.set_cookies.is_empty());
    secrets.extend(authn.set_cookies.iter().map(|c| {
        c.split(';')
            .next()
            .unwrap_or_default()
            .trim_start_matches(&format!("{name}="))
            .to_owned()
    }));
    shown.push(("Authentication", format!("{authn:?}")));
    let caller = authn.caller.clone().expect("a caller");
    let gate = Gate::for_login(rp.clone());
    let gated = gate.authenticate("GET", &headers).await.expect("a session");
    shown.push(("Authentication (gate)", format!("{gated:?}")));
    let refused = gate
        .authenticate("POST", &headers)
        .await
        .expect_err("a cross-origin refusal");
    shown.push(("Refusal", format!("{refused:?}")));
    let browser = Headers(vec![("accept", "text/html")]);
    let redirect = gate
        .require_capability(None, "announce", true, "/shout", &browser)
        .await
        .expect_err("a login redirect");
    shown.push(("Refusal (redirect)", format!("{redirect:?}")));
    let login_reply = rp.login(Some("offline_token=true"), &headers).await;
    // The login's secrets: its `state` and `nonce`, its transaction cookie.
    let to_provider =
        url::Url::parse(login_reply.header("location").expect("a redirect")).expect("a URL");
    secrets.extend(
        to_provider
            .query_pairs()
            .filter(|(k, _)| k == "state" || k == "nonce")
            .map(|(_, v)| v.into_owned()),
    );
    secrets.extend(login_reply.headers.iter().filter_map(|(n, v)| {
        let value = v.split(';').next()?.split_once('=')?.1;
        (*n == "set-cookie" && !value.is_empty()).then(|| value.to_owned())
    }));
    shown.push(("Reply (login)", format!("{login_reply:?}")));
    let token_reply = rp.token(Some(&caller), None, "/token", &headers).await;
    assert_eq!(token_reply.status, 200);
    let user_token = serde_json::from_slice::<serde_json::Value>(&token_reply.body).expect("JSON")
        ["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    secrets.push(user_token);
    shown.push(("Reply (token)", format!("{token_reply:?}")));

    // Token sources and the forwarding client, fed with the session's tokens.
    let endpoint = TokenEndpoint::discover(
        &provider.discovery_url(),
        provider.client_id(),
        Some(provider.client_secret().into()),
    )
    .await
    .expect("the token endpoint");
    let forwarded = ForwardedToken::from_caller(&caller).expect("the access token");
    forwarded.token().await.expect("a token");
    let mut with_refresh: Authenticated = caller.clone();
    with_refresh.refresh_token = Some(RawToken::new(refresh));
    let refreshing = RefreshingToken::from_caller(&endpoint, &with_refresh).expect("a source");
    refreshing.token().await.expect("a refreshed token");
    secrets.extend(issued_tokens(provider));
    let own = ClientCredentials::new(endpoint.clone());
    own.token().await.expect("a client credentials token");
    secrets.extend(issued_tokens(provider));
    let forwarding = ForwardingClient::builder()
        .allow_origin(app.app.base_url())
        .build()
        .expect("a client");
    let answer = forwarding
        .get(&refreshing, &format!("{}/me", app.app.base_url()))
        .await
        .expect("an answer");
    assert_eq!(answer.status().as_u16(), 200);

    shown.push(("RelyingParty", format!("{rp:?}")));
    shown.push(("Gate", format!("{gate:?}")));
    shown.push(("Routes", format!("{:?}", Routes::login(rp.clone()))));
    shown.push(("Capabilities", format!("{:?}", rp.capabilities())));
    shown.push(("TokenEndpoint", format!("{endpoint:?}")));
    shown.push(("ForwardedToken", format!("{forwarded:?}")));
    shown.push(("RefreshingToken", format!("{refreshing:?}")));
    shown.push(("ClientCredentials", format!("{own:?}")));
    shown.push(("ForwardingClient", format!("{forwarding:?}")));
    for line in adapter.middleware_debug(rp.clone()) {
        shown.push(("the adapter's middleware", line));
    }
    // Last: the store is another crate's, and says so if it fails.
    shown.push(("MemoryStore (sessions)", format!("{memory:?}")));

    let secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 16).collect();
    assert!(secrets.len() >= 12, "secrets collected: {}", secrets.len());
    for (what, debug) in &shown {
        for secret in &secrets {
            // A token's signature (its last part) is what must never show.
            let tail = secret.rsplit('.').next().unwrap_or(secret);
            let tail = &tail[tail.len().saturating_sub(24)..];
            assert!(
                !debug.contains(tail),
                "{}: the Debug of {what} shows a token or cookie: {debug}",
                adapter.name()
            );
        }
    }
}

/// A revoked portcullis token is refused at authentication (401), also on
/// routes that only need a caller or take an optional one, and also after
/// it was verified (and cached) before the revocation.
pub async fn a_revoked_token_authenticates_nowhere(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let admin = app.app.client(Some("admin@example.com")).await;
    let alice = app.app.client(Some("alice@example.com")).await;
    admin
        .post("/manage_capabilities/set")
        .json(&json!({"email": "bot@service", "capabilities": ["read"]}))
        .expect(200)
        .await;
    let service = admin
        .get("/token?user=bot@service")
        .expect(200)
        .await
        .json()["service_token"]
        .as_str()
        .expect("a service token")
        .to_owned();
    let user = alice.token().await;
    let script = app.app.client(None).await;
    for token in [&service, &user] {
        // Verified once, so that the verifier's cache holds it.
        script.get("/").bearer(token).expect(200).await;
        script.get("/me").bearer(token).expect(200).await;
    }
    for token in [&service, &user] {
        admin
            .post("/token/revoke")
            .json(&json!({"token": token}))
            .expect(200)
            .await;
    }
    for token in [&service, &user] {
        let optional = script.get("/").bearer(token).expect(401).await;
        assert_response_snapshot("revoked_token", &optional);
        script.get("/me").bearer(token).expect(401).await;
        script.get("/read").bearer(token).expect(401).await;
    }
}

/// A manager mints service tokens with no more than it holds itself, and a
/// token it minted loses what its issuer loses.
pub async fn tokens_never_hold_more_than_their_issuer(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let admin = app.app.client(Some("admin@example.com")).await;
    let manager = app.app.client(Some("manager@example.com")).await;
    let script = app.app.client(None).await;
    admin
        .post("/manage_capabilities/set")
        .json(&json!({"email": "bot@service", "capabilities": ["admin"]}))
        .expect(200)
        .await;
    admin
        .post("/manage_capabilities/set")
        .json(&json!({"email": "manager@example.com", "capabilities": ["user_management"]}))
        .expect(200)
        .await;
    // The bot holds `admin`; the manager does not: its token carries what
    // both hold and names the rest.
    let issued = manager
        .get("/token?user=bot@service")
        .expect(200)
        .await
        .json();
    let caps = issued["capabilities"].as_array().expect("capabilities");
    assert!(!caps.iter().any(|c| c == "admin"), "{issued}");
    assert!(
        issued["withheld"]
            .as_array()
            .is_some_and(|w| w.iter().any(|c| c == "admin")),
        "{issued}"
    );
    let token = issued["service_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    script.get("/shout").bearer(&token).expect(403).await;
    script
        .post("/manage_capabilities/add")
        .bearer(&token)
        .json(&json!({"email": "manager@example.com", "capability": "admin"}))
        .expect(403)
        .await;
    // Given `announce`, the manager mints a token that may announce, until
    // the manager loses it.
    admin
        .post("/manage_capabilities/add")
        .json(&json!({"email": "manager@example.com", "capability": "announce"}))
        .expect(200)
        .await;
    let token = manager
        .get("/token?user=bot@service")
        .expect(200)
        .await
        .json()["service_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    script.get("/shout").bearer(&token).expect(200).await;
    admin
        .post("/manage_capabilities/remove")
        .json(&json!({"email": "manager@example.com", "capability": "announce"}))
        .expect(200)
        .await;
    script.get("/shout").bearer(&token).expect(403).await;
    // A token mints no tokens.
    script
        .get("/token?user=bot@service")
        .bearer(&token)
        .expect(403)
        .await;
}

/// An address the provider does not vouch for selects no stored
/// capabilities on the bearer path: `admin@example.com` holds everything in
/// the user file, but not through a token whose `email_verified` is false,
/// absent or not a boolean truth.
pub async fn an_unvouched_email_selects_no_capabilities(adapter: &dyn Adapter) {
    let app = login_app(adapter, |_| {}).await;
    let script = app.app.client(None).await;
    let vouched = app.provider.token().email("admin@example.com").sign();
    script.get("/shout").bearer(&vouched).expect(200).await;
    let as_string = app
        .provider
        .token()
        .email("admin@example.com")
        .claim("email_verified", json!("true"))
        .sign();
    script.get("/shout").bearer(&as_string).expect(200).await;
    for unvouched in [
        app.provider
            .token()
            .email("admin@example.com")
            .claim("email_verified", json!(false))
            .sign(),
        app.provider
            .token()
            .email("admin@example.com")
            .without_claim("email_verified")
            .sign(),
        app.provider
            .token()
            .email("admin@example.com")
            .claim("email_verified", json!("yes"))
            .sign(),
    ] {
        script.get("/shout").bearer(&unvouched).expect(403).await;
        let me = script
            .get("/me")
            .bearer(&unvouched)
            .expect(200)
            .await
            .json();
        assert_eq!(me["email"], serde_json::Value::Null, "{me}");
    }
}

/// easy-oauth's `force_user` (`dangerous_force_user`), the loopback-only
/// development mode: every request is the configured user whatever it
/// carries, `/login` and `/auth` send the browser straight back, `/token`
/// answers easy-oauth's `{"refresh_token": "XXX"}`, `/logout` goes to `/`,
/// and the provider is never contacted.
pub async fn force_user_is_every_request_and_contacts_no_provider(adapter: &dyn Adapter) {
    let app = login_app(adapter, |c| {
        c.dangerous_force_user = Some(portcullis_oidc::ForcedUser::new("friend@example.com"));
    })
    .await;
    let client = app.app.client(None).await;
    let me = client.get("/me").expect(200).await.json();
    assert_eq!(me["email"], "friend@example.com");
    assert_eq!(me["user_id"], "friend@example.com");
    // Its stored capabilities apply (`announce`, from the user file).
    assert_eq!(
        client.get("/shout").browser().expect(200).await.text(),
        "shout"
    );
    // No credential is read: a bearer token of any kind changes nothing.
    let any = client
        .get("/")
        .bearer("not-a-token")
        .expect(200)
        .await
        .text();
    assert_eq!(any, "friend@example.com");
    let token = client.get("/token").expect(200).await;
    assert_response_snapshot("force_user_token", &token);
    let login = client.get("/login?next=%2Fread").expect(303).await;
    assert_eq!(login.location(), Some("/read"));
    assert!(login.headers_all("set-cookie").is_empty());
    let auth = client.get("/auth?code=x&state=y").expect(303).await;
    assert_eq!(auth.location(), Some("/"));
    let logout = client.get("/logout").expect(303).await;
    assert_eq!(logout.location(), Some("/"));
    let managed = client
        .get("/manage_capabilities/list")
        .expect(200)
        .await
        .json();
    assert_eq!(managed["email"], "friend@example.com");
    for path in [
        "/.well-known/openid-configuration",
        "/authorize",
        "/token",
        "/jwks",
    ] {
        assert_eq!(app.provider.request_count(path), 0, "{path}");
    }
}

/// The policy application over `policy`, and a client.
async fn with_policy(
    adapter: &dyn Adapter,
    policy: Policy,
) -> (MockProvider, AppTester, TestClient) {
    let provider = MockProvider::start()
        .await
        .expect("the mock provider starts");
    let auth = Authenticator::new(verifier(&provider), CredentialsConfig::default());
    let app = policy_app(adapter, &provider, auth, policy);
    let client = app.client(None).await;
    (provider, app, client)
}

/// The policy application over the embedded engine and [`policy_dir`]
/// (native input), its configuration adjusted by `tweak`.
async fn embedded(
    adapter: &dyn Adapter,
    tweak: impl FnOnce(PolicyConfig) -> PolicyConfig,
) -> (MockProvider, AppTester, TestClient) {
    let config = tweak(PolicyConfig::rego(policy_dir()).with_input(InputShape::Native));
    let policy = Policy::from_config(&config)
        .await
        .expect("the conformance policy loads");
    with_policy(adapter, policy).await
}

/// A token of the mock provider for `sub`.
fn token_for(provider: &MockProvider, sub: &str) -> String {
    provider.token().subject(sub).sign()
}

/// A request the policy allows reaches the handler.
pub async fn the_policy_allows(adapter: &dyn Adapter) {
    let (provider, _app, client) = embedded(adapter, |c| c).await;
    let token = provider
        .token()
        .subject("u-alice")
        .email("alice@example.com")
        .sign();
    let resp = client.get("/").bearer(&token).expect(200).await;
    assert_eq!(resp.text(), "alice@example.com");
}

/// A request the policy refuses (`false`): 403 with a JSON body.
pub async fn the_policy_denies_with_403(adapter: &dyn Adapter) {
    let (provider, _app, client) = embedded(adapter, |c| c).await;
    let token = token_for(&provider, "u-alice");
    let resp = client.get("/denied").bearer(&token).expect(403).await;
    assert_response_snapshot("policy_denied", &resp);
}

/// A request no rule speaks of (undefined): 403, as a denial.
pub async fn an_undefined_decision_is_403(adapter: &dyn Adapter) {
    let (provider, _app, client) = embedded(adapter, |c| c).await;
    let token = token_for(&provider, "u-alice");
    let resp = client.get("/health/deep").bearer(&token).expect(403).await;
    assert_response_snapshot("policy_denied", &resp);
}

/// An OPA server answering 500: 503, never a pass, never 500.
pub async fn an_unavailable_engine_is_503(adapter: &dyn Adapter) {
    let opa = MockOpa::start(policy_dir())
        .await
        .expect("the mock OPA server starts");
    let config = PolicyConfig::opa(opa.url()).with_input(InputShape::Native);
    let policy = Policy::from_config(&config).await.expect("the policy");
    let (provider, _app, client) = with_policy(adapter, policy).await;
    let token = provider
        .token()
        .subject("u-alice")
        .email("alice@example.com")
        .sign();
    // The same server decides when it answers ...
    client.get("/").bearer(&token).expect(200).await;
    // ... and an error of its own is 503.
    opa.set_fault(Some(OpaFault::Status(500)));
    let resp = client.get("/").bearer(&token).expect(503).await;
    assert_response_snapshot("policy_unavailable", &resp);
    opa.set_fault(Some(OpaFault::Garbage));
    client.get("/").bearer(&token).expect(503).await;
}

/// An OPA server that is not there when the application starts: the
/// application starts, and answers 503.
pub async fn an_engine_down_at_start_is_503(adapter: &dyn Adapter) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let url = format!("http://{}", closed.local_addr().expect("an address"));
    drop(closed);
    let config = PolicyConfig::opa(url).with_input(InputShape::Native);
    let policy = Policy::from_config(&config).await.expect("the policy");
    let (provider, _app, client) = with_policy(adapter, policy).await;
    let token = token_for(&provider, "u-alice");
    let resp = client.get("/").bearer(&token).expect(503).await;
    assert_response_snapshot("policy_unavailable", &resp);
}

/// Guests are refused with core's challenge before any policy is asked
/// (the default), even where the policy would let anyone in.
pub async fn guests_are_refused_before_the_policy(adapter: &dyn Adapter) {
    let (_provider, _app, client) = embedded(adapter, |c| c).await;
    let resp = client.get("/").expect(401).await;
    assert_response_snapshot("policy_guest", &resp);
}

/// With `guests: policy`, the policy decides for guests: it lets them read
/// the home page; a guest it refuses gets 401 with the challenge, never 403.
pub async fn guests_the_policy_allows(adapter: &dyn Adapter) {
    let (_provider, _app, client) = embedded(adapter, |c| c.with_guests(Guests::Policy)).await;
    assert_eq!(client.get("/").expect(200).await.text(), "guest");
    let resp = client.get("/denied").expect(401).await;
    assert_response_snapshot("policy_guest", &resp);
    let resp = client.get("/files/report").expect(401).await;
    assert_response_snapshot("policy_guest", &resp);
}

/// `OPTIONS` goes through the policy like every method: no rule allows it.
pub async fn options_goes_through_the_policy(adapter: &dyn Adapter) {
    let (provider, _app, client) = embedded(adapter, |c| c).await;
    let token = token_for(&provider, "u-alice");
    let resp = client
        .request(reqwest::Method::OPTIONS, "/records")
        .bearer(&token)
        .expect(403)
        .await;
    assert_response_snapshot("policy_denied", &resp);
    // A real preflight too, unless the configuration says CORS is handled
    // in front: it carries no credentials, so it is a guest's.
    let resp = client
        .request(reqwest::Method::OPTIONS, "/records")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .expect(401)
        .await;
    assert_response_snapshot("policy_guest", &resp);
}

/// With `cors_preflight: pass`, a real preflight (`OPTIONS` with `Origin`
/// and `Access-Control-Request-Method`) goes on unasked; an `OPTIONS`
/// request without them does not.
pub async fn a_real_preflight_passes_when_configured(adapter: &dyn Adapter) {
    let (provider, _app, client) =
        embedded(adapter, |c| c.with_cors_preflight(CorsPreflight::Pass)).await;
    let resp = client
        .request(reqwest::Method::OPTIONS, "/records")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .expect(200)
        .await;
    assert_eq!(resp.text(), super::OPTIONS);
    client
        .request(reqwest::Method::OPTIONS, "/records")
        .header("origin", "https://app.example.com")
        .expect(401)
        .await;
    let token = token_for(&provider, "u-alice");
    client
        .request(reqwest::Method::OPTIONS, "/records")
        .bearer(&token)
        .expect(403)
        .await;
}

/// A skip list names exact paths and route templates: `/health` is
/// skipped (still authenticated: a bad token is 401), `/health/deep` is
/// not; `/public/{file}` skips every file under it by its template.
pub async fn skip_lists_are_exact(adapter: &dyn Adapter) {
    let (provider, _app, client) =
        embedded(adapter, |c| c.with_skip(["/health", "/public/{file}"])).await;
    assert_eq!(client.get("/health").expect(200).await.text(), "ok");
    assert_eq!(
        client.get("/public/site.css").expect(200).await.text(),
        "public"
    );
    let resp = client.get("/health/deep").expect(401).await;
    assert_response_snapshot("policy_guest", &resp);
    let token = token_for(&provider, "u-alice");
    client.get("/health/deep").bearer(&token).expect(403).await;
    client.get("/health/").bearer(&token).send().await;
    let resp = client
        .get("/health")
        .bearer("not.a.token")
        .expect(401)
        .await;
    assert_response_snapshot("malformed_token", &resp);
}

/// A body past the policy's limit: 413, the same answer on every adapter.
pub async fn a_body_past_the_limit_is_413(adapter: &dyn Adapter) {
    let (provider, _app, client) = embedded(adapter, |c| c.with_body_limit(64)).await;
    let token = token_for(&provider, "u-alice");
    let resp = client
        .post("/records")
        .bearer(&token)
        .json(&json!({"owner": "u-alice", "text": "x".repeat(100)}))
        .expect(413)
        .await;
    assert_response_snapshot("policy_body_too_large", &resp);
}

/// The policy reads the body (a record posted by its owner), and the
/// handler gets it unchanged.
pub async fn the_body_reaches_the_policy_and_the_handler(adapter: &dyn Adapter) {
    let (provider, _app, client) = embedded(adapter, |c| c.with_body_limit(64)).await;
    let token = token_for(&provider, "u-alice");
    let own = json!({"owner": "u-alice", "text": "hello"});
    let resp = client
        .post("/records")
        .bearer(&token)
        .json(&own)
        .expect(200)
        .await;
    assert_eq!(resp.text(), own.to_string());
    let other = json!({"owner": "u-bob"});
    let resp = client
        .post("/records")
        .bearer(&token)
        .json(&other)
        .expect(403)
        .await;
    assert_response_snapshot("policy_denied", &resp);
}

/// `%2F` stays inside its segment: `/files/a%2Fb` is two segments, the
/// second `a/b`, and the parameter `name` is `a/b` on every adapter.
pub async fn an_encoded_slash_stays_in_its_segment(adapter: &dyn Adapter) {
    let (provider, _app, client) = embedded(adapter, |c| c).await;
    let token = token_for(&provider, "u-alice");
    let resp = client.get("/files/a%2Fb").bearer(&token).expect(200).await;
    assert_eq!(resp.text(), "file");
}

/// The route template the router matched reaches the policy (native
/// input), the same on every adapter: the rule for files allows by it.
pub async fn the_route_template_reaches_the_policy(adapter: &dyn Adapter) {
    let opa = MockOpa::start(policy_dir())
        .await
        .expect("the mock OPA server starts");
    let config = PolicyConfig::opa(opa.url()).with_input(InputShape::Native);
    let policy = Policy::from_config(&config).await.expect("the policy");
    let (provider, _app, client) = with_policy(adapter, policy).await;
    let token = token_for(&provider, "u-alice");
    let resp = client
        .get("/files/report?v=2")
        .bearer(&token)
        .expect(200)
        .await;
    assert_eq!(resp.text(), "file");
    let inputs = opa.inputs();
    let input = inputs.last().expect("the server was asked");
    assert_eq!(input["route"], "/files/{name}", "{input}");
    assert_eq!(input["params"], json!({"name": "report"}), "{input}");
    assert_eq!(input["path"], json!(["files", "report"]), "{input}");
    assert_eq!(input["query"], json!({"v": ["2"]}), "{input}");
    assert_eq!(input["caller"]["sub"], "u-alice", "{input}");
    assert!(
        !input.to_string().contains(&token),
        "no credential reaches the input"
    );
}

mod issuer;
pub use issuer::*;
