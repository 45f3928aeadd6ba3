//! Conformance cases for what easy-oauth's released versions do beyond its
//! README (routes, provider quirks, guests), re-exported by
//! [`cases`](super::cases).

use portcullis_core::discovery::ClientAuthMethod;

use super::{Adapter, assert_response_snapshot, login_app_on};
use crate::{MockOptions, TestClient};

/// A provider's token answer that cannot be parsed (here easy-oauth's mock
/// provider, whose ID token under HTTP Basic has `aud: null`) is a 502 that
/// says it is no outage, never a 503; no session starts.
pub async fn an_unusable_token_answer_is_502(adapter: &dyn Adapter) {
    let app = login_app_on(
        adapter,
        MockOptions::default().like_easy_oauth_mock(),
        |_| {},
    )
    .await;
    let client = app.app.client(None).await;
    let login = client.get("/login").expect(303).await;
    let callback = client
        .follow_provider(login.location().expect("a redirect"), "alice@example.com")
        .await;
    let resp = client.get_url(&callback).expect(502).await;
    assert_response_snapshot("provider_answer_unusable", &resp);
    assert!(client.cookie_matching("portcullis-session").is_none());
}

/// `token_endpoint_auth_method: client_secret_post` logs in at the same
/// provider; a provider listing only `client_secret_post` gets it unasked.
pub async fn the_client_authentication_method_follows_configuration_and_discovery(
    adapter: &dyn Adapter,
) {
    let app = login_app_on(
        adapter,
        MockOptions::default().like_easy_oauth_mock(),
        |c| {
            c.token_endpoint_auth_method = Some(ClientAuthMethod::ClientSecretPost);
        },
    )
    .await;
    let client = app.app.client(None).await;
    assert_eq!(client.login("alice@example.com", "/read").await, "/read");
    let post_only =
        MockOptions::default().token_endpoint_auth_methods(Some(&["client_secret_post"]));
    let app = login_app_on(adapter, post_only, |_| {}).await;
    let client = app.app.client(None).await;
    assert_eq!(client.login("alice@example.com", "/me").await, "/me");
    client.get("/me").expect(200).await;
}

/// Logs `client` in as `email` from `login_path` (a `/login?...` under
/// the prefix); answers where the application sent the browser at the end.
async fn login_from(client: &TestClient, login_path: &str, email: &str) -> String {
    let login = client.get(login_path).expect(303).await;
    let callback = client
        .follow_provider(login.location().expect("a redirect"), email)
        .await;
    let back = client.get_url(&callback).expect(303).await;
    back.location().expect("a redirect").to_owned()
}

/// easy-oauth's `/login?redirect=NAME`: `token` returns to `/token` (whose
/// answer is then the user's token), other values are paths under the
/// same rules as `next=`, so a hostile target ends at `/`.
pub async fn the_login_redirect_parameter_names_where_to_return(adapter: &dyn Adapter) {
    let app = login_app_on(adapter, MockOptions::default(), |_| {}).await;
    let client = app.app.client(None).await;
    let back = login_from(&client, "/login?redirect=token", "alice@example.com").await;
    assert_eq!(back, "/token");
    let token = client.get(&back).expect(200).await.json();
    assert!(token["token"].is_string(), "{token}");
    for (redirect, expected) in [
        ("auth", "/"),
        ("%2Fread%3Fx%3D1", "/read?x=1"),
        ("%2F%2Fevil.example", "/"),
        ("https%3A%2F%2Fevil.example%2F", "/"),
        ("%2F%5Cevil.example", "/"),
        ("javascript%3Aalert(1)", "/"),
    ] {
        let path = format!("/login?redirect={redirect}");
        assert_eq!(
            login_from(&client, &path, "alice@example.com").await,
            expected,
            "{redirect}"
        );
    }
    // `next` wins over `redirect`.
    let both = "/login?redirect=token&next=%2Fme";
    assert_eq!(login_from(&client, both, "alice@example.com").await, "/me");
}

/// `offline_token=true` asks for a refresh token as discovery says: the
/// `offline_access` scope where `scopes_supported` lists it, Google's
/// `access_type=offline&prompt=consent` where it does not; either way the
/// session gets a refresh token and is refreshed when due.
pub async fn offline_tokens_are_asked_as_the_provider_wants(adapter: &dyn Adapter) {
    for google_like in [false, true] {
        let options = if google_like {
            MockOptions::default().scopes_supported(&["openid", "email", "profile"])
        } else {
            MockOptions::default()
        };
        let app = login_app_on(adapter, options, |_| {}).await;
        let client = app.app.client(None).await;
        let login = client.get("/login?offline_token=true").expect(303).await;
        let authorize = url::Url::parse(login.location().expect("a redirect")).expect("a URL");
        let query: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
        let get = |name: &str| {
            query
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let scope = get("scope").unwrap_or_default();
        if google_like {
            assert!(!scope.contains("offline_access"), "{scope}");
            assert_eq!(get("access_type"), Some("offline"));
            assert_eq!(get("prompt"), Some("consent"));
        } else {
            assert!(scope.split(' ').any(|s| s == "offline_access"), "{scope}");
            assert_eq!(get("access_type"), None);
        }
        let callback = client
            .follow_provider(authorize.as_str(), "alice@example.com")
            .await;
        client.get_url(&callback).expect(303).await;
        app.provider.clock().advance_secs(301);
        client.get("/me").expect(200).await;
        assert_eq!(
            app.provider.refresh_count(),
            1,
            "google-like: {google_like}"
        );
    }
}

/// easy-oauth 0.0.5 to 0.0.9's listings: `list_user` answers one user as
/// `list` does (another's for managers only); `list_all` answers managers
/// every stored user and the graph with `admin` expanded, and refuses
/// everyone else.
pub async fn the_released_listings_answer_as_easy_oauth(adapter: &dyn Adapter) {
    let app = login_app_on(adapter, MockOptions::default(), |_| {}).await;
    let user = app.app.client(Some("someone@example.com")).await;
    let admin = app.app.client(Some("admin@example.com")).await;
    let own = user.get("/manage_capabilities/list_user").expect(200).await;
    assert_eq!(
        own.json(),
        user.get("/manage_capabilities/list")
            .expect(200)
            .await
            .json()
    );
    assert_response_snapshot("management_list_own", &own);
    user.get("/manage_capabilities/list_user?email=friend%40example.com")
        .expect(403)
        .await;
    let friend = admin
        .get("/manage_capabilities/list_user?email=friend%40example.com")
        .expect(200)
        .await;
    assert_eq!(
        friend.json(),
        serde_json::json!({"status": "ok", "email": "friend@example.com", "capabilities": ["announce"]})
    );
    let refused = user.get("/manage_capabilities/list_all").expect(403).await;
    assert_eq!(refused.json()["error"], "insufficient_scope");
    app.app
        .client(None)
        .await
        .get("/manage_capabilities/list_all")
        .expect(401)
        .await;
    let all = admin.get("/manage_capabilities/list_all").expect(200).await;
    assert_response_snapshot("management_list_all", &all);
}

/// easy-oauth's `/revoke_token`: `GET` serves a form; `POST` revokes the
/// token of the `Authorization` header, a form field or a JSON body (it no
/// longer authenticates anywhere), or else the session's login, whose
/// refresh token is revoked at the provider (RFC 7009) and which ends.
pub async fn revoke_token_answers_as_easy_oauth(adapter: &dyn Adapter) {
    let app = login_app_on(adapter, MockOptions::default(), |_| {}).await;
    let alice = app.app.client(None).await;
    login_from(&alice, "/login?offline_token=true", "alice@example.com").await;
    let page = alice.get("/revoke_token").expect(200).await;
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.text().contains("action=\"/revoke_token\""),
        "{}",
        page.text()
    );
    let script = app.app.client(None).await;
    let ok = serde_json::json!({"status": "ok"});
    let form = alice.token().await;
    script.get("/read").bearer(&form).expect(200).await;
    let resp = script
        .post("/revoke_token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={form}"))
        .expect(200)
        .await;
    assert_eq!(resp.json(), ok);
    script.get("/read").bearer(&form).expect(401).await;
    let body = alice.token().await;
    script
        .post("/revoke_token")
        .json(&serde_json::json!({"token": body}))
        .expect(200)
        .await;
    script.get("/read").bearer(&body).expect(401).await;
    let header = alice.token().await;
    script
        .post("/revoke_token")
        .bearer(&header)
        .expect(200)
        .await;
    script.get("/read").bearer(&header).expect(401).await;
    let malformed = script
        .post("/revoke_token")
        .json(&serde_json::json!({"token": "not-a-token"}))
        .expect(400)
        .await;
    assert_response_snapshot("revoke_token_malformed", &malformed);
    let nothing = script.post("/revoke_token").expect(400).await;
    assert_eq!(nothing.json()["error_description"], "No token to revoke");
    assert_eq!(app.provider.revocation_count(), 0);
    alice.post("/revoke_token").expect(200).await;
    assert_eq!(app.provider.revocation_count(), 1);
    alice.get("/me").expect(401).await;
}

/// easy-oauth's clients (an HTTP library following redirects with a cookie
/// jar, `Accept: */*`) are walked through the login from `/token` and from
/// a route that sends guests to log in, and end with what they asked for;
/// routes that do not send guests to log in still answer them 401.
pub async fn clients_that_follow_redirects_are_walked_through_the_login(adapter: &dyn Adapter) {
    let app = login_app_on(adapter, MockOptions::default(), |_| {}).await;
    let client = app.app.client(None).await;
    let to_login = client
        .get("/token")
        .header("accept", "*/*")
        .expect(303)
        .await;
    assert_eq!(to_login.location(), Some("/login?next=%2Ftoken"));
    let back = login_from(&client, "/login?next=%2Ftoken", "friend@example.com").await;
    let token = client.get(&back).header("accept", "*/*").expect(200).await;
    assert!(token.json()["token"].is_string(), "{}", token.text());
    let guest = app.app.client(None).await;
    let shout = guest
        .get("/shout")
        .header("accept", "*/*")
        .expect(303)
        .await;
    assert_eq!(shout.location(), Some("/login?next=%2Fshout"));
    guest.get("/read").header("accept", "*/*").expect(401).await;
    guest.get("/me").header("accept", "*/*").expect(401).await;
}

/// easy-oauth's `get_email` and `ensure_email`: `Option<Caller>` is `None`
/// for a guest; `LoggedIn` sends a guest that follows redirects to log in
/// and back, answers API guests 401, and hands a logged-in user through.
pub async fn ensure_email_sends_guests_to_log_in_and_back(adapter: &dyn Adapter) {
    let app = login_app_on(adapter, MockOptions::default(), |_| {}).await;
    let guest = app.app.client(None).await;
    assert_eq!(guest.get("/").expect(200).await.text(), "guest");
    for accept in ["*/*", "text/html"] {
        let to_login = guest
            .get("/ensure?x=1")
            .header("accept", accept)
            .expect(303)
            .await;
        assert_eq!(to_login.location(), Some("/login?next=%2Fensure%3Fx%3D1"));
    }
    let api = guest
        .get("/ensure")
        .header("accept", "application/json")
        .expect(401)
        .await;
    assert_response_snapshot("no_credentials", &api);
    guest
        .get("/ensure")
        .bearer("not-a-token")
        .header("accept", "*/*")
        .expect(401)
        .await;
    let back = login_from(&guest, "/login?next=%2Fensure%3Fx%3D1", "alice@example.com").await;
    assert_eq!(back, "/ensure?x=1");
    assert_eq!(
        guest.get(&back).expect(200).await.text(),
        "alice@example.com"
    );
}

/// easy-oauth's headless login for command-line tools: `/login?headless=true`
/// answers a `login_url` for any browser and a `token_url` that waits for
/// that login and answers the user's token once, to the holder of its
/// secret; both expire with the login timeout.
pub async fn headless_login_for_command_line_tools(adapter: &dyn Adapter) {
    let app = login_app_on(adapter, MockOptions::default(), |_| {}).await;
    let tool = app.app.client(None).await;
    let start = tool.get("/login?headless=true").expect(200).await;
    assert_eq!(start.header("cache-control"), Some("private, no-store"));
    let start = start.json();
    let login_url = start["login_url"].as_str().expect("a login_url").to_owned();
    let token_url = start["token_url"].as_str().expect("a token_url").to_owned();
    assert!(login_url.starts_with(app.app.base_url()), "{login_url}");
    assert!(!login_url.contains("secret"), "{login_url}");
    let waiting = {
        let (tool, url) = (tool.clone(), token_url.clone());
        tokio::spawn(async move { tool.get_url(&url).send().await })
    };
    let wrong = token_url.replace("secret=", "secret=x");
    tool.get_url(&wrong).expect(400).await;
    let browser = app.app.client(None).await;
    let login = browser.get_url(&login_url).expect(303).await;
    let callback = browser
        .follow_provider(login.location().expect("a redirect"), "friend@example.com")
        .await;
    browser.get_url(&callback).expect(303).await;
    let answer = waiting.await.expect("the waiting call ends");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let token = answer.json()["token"].as_str().expect("a token").to_owned();
    let script = app.app.client(None).await;
    assert_eq!(
        script.get("/").bearer(&token).expect(200).await.text(),
        "friend@example.com"
    );
    script.get("/shout").bearer(&token).expect(200).await;
    // Once: the token is collected, and the login cannot be replayed.
    tool.get_url(&token_url).expect(400).await;
    browser.get_url(&login_url).expect(400).await;
    // Expired with the login timeout, collected or not.
    let again = tool.get("/login?headless=true").expect(200).await.json();
    app.provider.clock().advance_secs(601);
    let url = again["token_url"].as_str().expect("a token_url");
    let expired = tool.get_url(url).expect(400).await;
    assert_response_snapshot("headless_token_unknown", &expired);
    let login = again["login_url"].as_str().expect("a login_url");
    tool.get_url(login).expect(400).await;
}

/// A device login (RFC 8628) for command-line tools, when the provider
/// advertises a `device_authorization_endpoint`:
/// `/login?headless=true&device=true` answers the provider's
/// `verification_uri` and `user_code` and a `token_url`; each call of the
/// `token_url` polls the provider once the interval has passed (`202`
/// with the interval while the user has not decided, five seconds more
/// after `slow_down`), then answers the user's token once. A denied login
/// ends with the provider's answer.
pub async fn device_login_for_command_line_tools(adapter: &dyn Adapter) {
    let options = MockOptions::default()
        .device_authorization(true)
        .device_interval_secs(2);
    let app = login_app_on(adapter, options, |_| {}).await;
    let clock = app.provider.clock();
    let tool = app.app.client(None).await;
    let start = tool
        .get("/login?headless=true&device=true")
        .expect(200)
        .await;
    assert_eq!(start.header("cache-control"), Some("private, no-store"));
    let start = start.json();
    assert!(start.get("device_code").is_none(), "{start}");
    assert!(start.get("login_url").is_none(), "{start}");
    assert_eq!(start["verification_uri"], app.provider.url("/device"));
    assert_eq!(start["interval"], 2);
    let user_code = start["user_code"].as_str().expect("a user_code").to_owned();
    let complete = start["verification_uri_complete"]
        .as_str()
        .expect("a verification_uri_complete");
    assert!(complete.ends_with(&user_code), "{complete}");
    let token_url = start["token_url"].as_str().expect("a token_url").to_owned();
    assert!(token_url.starts_with(app.app.base_url()), "{token_url}");

    clock.advance_secs(2);
    let polls = app.provider.request_count("/token");
    let pending = tool.get_url(&token_url).expect(202).await;
    assert_response_snapshot("device_login_pending", &pending);
    assert_eq!(app.provider.request_count("/token"), polls + 1);
    app.provider
        .queue_token_error("slow_down", "polled too fast");
    clock.advance_secs(2);
    let slower = tool.get_url(&token_url).expect(202).await.json();
    assert_eq!(slower["interval"], 7, "slow_down adds five seconds");

    assert!(
        app.provider
            .approve_device(&user_code, "device@example.com")
    );
    clock.advance_secs(7);
    let answer = tool.get_url(&token_url).expect(200).await;
    assert_eq!(answer.header("cache-control"), Some("private, no-store"));
    let token = answer.json()["token"].as_str().expect("a token").to_owned();
    let script = app.app.client(None).await;
    assert_eq!(
        script.get("/").bearer(&token).expect(200).await.text(),
        "device@example.com"
    );
    // Once.
    tool.get_url(&token_url).expect(400).await;

    let denied = tool
        .get("/login?headless=true&device=true")
        .expect(200)
        .await
        .json();
    let code = denied["user_code"].as_str().expect("a user_code");
    assert!(app.provider.deny_device(code));
    clock.advance_secs(2);
    let url = denied["token_url"].as_str().expect("a token_url");
    let refused = tool.get_url(url).expect(400).await;
    assert_response_snapshot("device_login_denied", &refused);
    let gone = tool.get_url(url).expect(400).await;
    assert_response_snapshot("headless_token_unknown", &gone);
}

/// Without a `device_authorization_endpoint` in discovery,
/// `/login?headless=true&device=true` is the ordinary headless login.
pub async fn without_device_authorization_the_headless_login_is_unchanged(adapter: &dyn Adapter) {
    let app = login_app_on(adapter, MockOptions::default(), |_| {}).await;
    let tool = app.app.client(None).await;
    let start = tool
        .get("/login?headless=true&device=true")
        .expect(200)
        .await
        .json();
    assert!(start["login_url"].is_string(), "{start}");
    assert!(start["token_url"].is_string(), "{start}");
    assert!(start.get("user_code").is_none(), "{start}");
}
