//! The main example, driven as easy-oauth's README drives its app: guests,
//! users, friends and admins, through the real login flow against the mock
//! provider.

use std::sync::Arc;

use portcullis_poem::portcullis_core::clock::Clock as _;

use example_poem::{CONFIG_EXAMPLE, ExampleConfig, USER_FILE, app};
use portcullis_poem::portcullis_core::config::{self, Format};
use portcullis_poem::portcullis_oidc::RelyingParty;
use portcullis_testing::{AppTester, MockProvider, demo};
use serde_json::json;

/// The example's own configuration file, pointed at `provider`.
fn config_for(provider: &MockProvider, base_url: &str, dir: &std::path::Path) -> ExampleConfig {
    let mut cfg: ExampleConfig = config::load_from_str(CONFIG_EXAMPLE, Format::Yaml, &[]).unwrap();
    let caps = dir.join("caps.yaml");
    std::fs::write(&caps, USER_FILE).unwrap();
    demo::point_at_mock(&mut cfg, provider, base_url, &caps).unwrap();
    cfg
}

async fn start() -> (MockProvider, AppTester, tempfile::TempDir) {
    let provider = MockProvider::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(provider.clock());
    let tester = AppTester::poem(&provider, "", |base| {
        let cfg = config_for(&provider, &base, dir.path());
        async move {
            let rp = RelyingParty::builder(cfg)
                .clock(clock)
                .build()
                .await
                .unwrap();
            app(rp)
        }
    })
    .await
    .unwrap();
    (provider, tester, dir)
}

#[tokio::test]
async fn the_readme_scenario() {
    let (_provider, app, _dir) = start().await;
    let guest = app.client(None).await;
    let user = app.client(Some("someone@example.com")).await;
    let reader = app.client(Some("reader@example.com")).await;
    let friend = app.client(Some("friend@example.com")).await;
    let admin = app.client(Some("admin@example.com")).await;
    let banned = app.client(Some("banned@example.com")).await;

    assert!(guest.get("/").expect(200).await.text().contains("guest"));
    assert!(
        user.get("/")
            .expect(200)
            .await
            .text()
            .contains("someone@example.com")
    );

    // read: every logged-in user (default capability); guests are refused.
    guest.get("/read").expect(401).await;
    for c in [&user, &reader, &friend, &admin, &banned] {
        c.get("/read").expect(200).await;
    }
    // write: implied by moderate and admin.
    user.post("/write").body("x").expect(403).await;
    friend.post("/write").body("x").expect(200).await;
    admin.post("/write").body("x").expect(200).await;
    // announce: friend and admin.
    reader.get("/shout?message=hi").expect(403).await;
    let shout = friend.get("/shout?message=hi").expect(200).await;
    assert_eq!(shout.text(), "friend@example.com shouts \"hi\"\n");
    admin.get("/shout?message=hi").expect(200).await;
}

#[tokio::test]
async fn a_browser_is_sent_to_log_in_and_back_while_scripts_get_401() {
    let (_provider, app, _dir) = start().await;
    let browser = app.client(None).await;
    let to_login = browser
        .get("/shout?message=hello")
        .browser()
        .expect(303)
        .await;
    assert_eq!(
        to_login.location(),
        Some("/login?next=%2Fshout%3Fmessage%3Dhello")
    );
    browser.get("/shout?message=hello").expect(401).await;
    // Logging in from there comes back to the page.
    let back = browser
        .login("friend@example.com", "/shout?message=hello")
        .await;
    assert_eq!(back, "/shout?message=hello");
    browser.get(&back).browser().expect(200).await;
}

#[tokio::test]
async fn token_workflow_user_tokens_and_service_tokens() {
    let (provider, app, _dir) = start().await;
    let friend = app.client(Some("friend@example.com")).await;
    let admin = app.client(Some("admin@example.com")).await;
    let script = app.client(None).await;

    // A user's token works without the browser's cookies.
    let resp = friend.get("/token").expect(200).await;
    let body = resp.json();
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(body["refresh_token"], body["token"], "easy-oauth's field");
    assert!(body["expires_at"].as_u64().unwrap() > provider.clock().now_secs());
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    assert_eq!(resp.header("referrer-policy"), Some("no-referrer"));
    script.get("/shout?message=x").expect(401).await;
    script
        .get("/shout?message=x")
        .bearer(&token)
        .expect(200)
        .await;

    // It holds the user's capabilities as they are now: withdrawn, refused.
    admin
        .post("/manage_capabilities/set")
        .json(&json!({"email": "friend@example.com", "capabilities": ["read"]}))
        .expect(200)
        .await;
    script
        .get("/shout?message=x")
        .bearer(&token)
        .expect(403)
        .await;

    // Revoked by its owner: refused at once.
    friend
        .post("/token/revoke")
        .json(&json!({"token": token}))
        .expect(200)
        .await;
    script.get("/read").bearer(&token).expect(401).await;

    // Service tokens, as easy-oauth's README shows.
    admin
        .post("/manage_capabilities/set")
        .json(&json!({"email": "bot@service", "capabilities": ["announce"]}))
        .expect(200)
        .await;
    let svc = admin
        .get("/token?user=bot@service")
        .expect(200)
        .await
        .json();
    assert_eq!(svc["user"], "bot@service");
    let svc_token = svc["service_token"].as_str().unwrap();
    script
        .get("/shout?message=beep")
        .bearer(svc_token)
        .expect(200)
        .await;
    friend.get("/token?user=bot@service").expect(403).await;

    // A provider access token for the configured audience needs no login.
    let at = provider.token().email("friend@example.com").sign();
    script.get("/read").bearer(&at).expect(200).await;
}

#[tokio::test]
async fn logout_ends_the_session() {
    let (provider, app, _dir) = start().await;
    let user = app.client(Some("reader@example.com")).await;
    let copied = user.cookie_matching("portcullis-session").unwrap();
    user.get("/read").expect(200).await;
    let out = user.get("/logout").expect(303).await;
    // RP-initiated logout at the provider, back to the app.
    let location = out.location().unwrap();
    assert!(
        location.starts_with(&format!("{}/logout?", provider.issuer())),
        "{location}"
    );
    user.get("/read").expect(401).await;
    // A copy of the old cookie no longer works either.
    let thief = app.client(None).await;
    thief.set_cookie(&copied.0, Some(&copied.1));
    thief.get("/read").expect(401).await;
}
