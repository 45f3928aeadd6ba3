//! easy-oauth's README scenario, written once and run against the main
//! example on each framework: guests, users, friends and admins, through the
//! real login flow against the mock provider.
//!
//! An example's test crate implements [`Example`], which serves its
//! application, and invokes [`demo_scenarios!`](crate::demo_scenarios) with
//! it; every scenario becomes one `#[tokio::test]` there.

use std::sync::Arc;

use portcullis_core::clock::Clock as _;
use portcullis_oidc::RelyingParty;
use serde_json::json;
use tempfile::TempDir;

use super::{Files, mock_config};
use crate::serve::Stop;
use crate::tester::bind_for;
use crate::{AppTester, MockProvider};

/// How an example serves its application.
pub trait Example: Send + Sync {
    /// The example's configuration and user files.
    fn files(&self) -> Files;

    /// Serves the example's application around `rp` on `listener` (already
    /// bound, non-blocking); answers how to stop it.
    fn serve(&self, listener: std::net::TcpListener, rp: RelyingParty) -> Stop;
}

/// An example served for a scenario. Keep it whole while the scenario
/// runs: dropping it stops the provider and removes the user file.
#[derive(Debug)]
pub struct Started {
    /// The provider its users log in at.
    pub provider: MockProvider,
    /// The application.
    pub app: AppTester,
    _dir: TempDir,
}

/// Serves `example` with its own files pointed at a fresh mock provider.
///
/// # Panics
///
/// When the provider, the configuration or the server cannot start.
pub async fn start(example: &dyn Example) -> Started {
    start_with(example, &[]).await
}

/// Serves `example` like [`start`], its configuration changed by
/// `overrides` (as `PORTCULLIS__...` environment variables change it).
///
/// # Panics
///
/// When the provider, the configuration or the server cannot start.
pub async fn start_with(example: &dyn Example, overrides: &[(String, String)]) -> Started {
    let provider = MockProvider::start()
        .await
        .expect("the mock provider starts");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (listener, base_url) = bind_for(&provider, "").expect("a loopback port");
    let files = example.files();
    let env = portcullis_core::config::env_overrides("PORTCULLIS", overrides.iter().cloned());
    let mut cfg: portcullis_oidc::OidcConfig = portcullis_core::config::load_from_str(
        files.config,
        portcullis_core::config::Format::Yaml,
        &env,
    )
    .expect("the example's configuration loads");
    let users = dir.path().join("caps.yaml");
    std::fs::write(&users, files.users).expect("the user file is written");
    super::point_at_mock(&mut cfg, &provider, &base_url, &users)
        .expect("the configuration points at the mock provider");
    let rp = RelyingParty::builder(cfg)
        .clock(Arc::new(provider.clock()))
        .build()
        .await
        .expect("the relying party builds");
    let stop = example.serve(listener, rp);
    Started {
        provider,
        app: AppTester::serving(base_url, "", stop),
        _dir: dir,
    }
}

/// easy-oauth's README: who may read, write and shout, a user whose
/// capabilities the configuration pins (`user_overrides`), and the
/// headless login of a command-line tool.
pub async fn the_readme_scenario(example: &dyn Example) {
    readme(&start(example).await).await;
}

/// The README scenario, token workflow and logout with every piece of
/// shared state (capabilities seeded from the example's user file,
/// revocations, single-use login records, server-side sessions) on a Redis
/// Cluster of three masters, chosen by configuration alone.
pub async fn the_scenarios_on_a_redis_cluster(example: &dyn Example) {
    let cluster = crate::RedisCluster::start();
    let urls = serde_json::to_string(&cluster.urls()).expect("JSON");
    let overrides = [
        (
            "PORTCULLIS__STORE__KIND".to_owned(),
            "redis_cluster".to_owned(),
        ),
        ("PORTCULLIS__STORE__URLS".to_owned(), urls),
        (
            "PORTCULLIS__SESSION__STORAGE".to_owned(),
            "server".to_owned(),
        ),
    ];
    let started = start_with(example, &overrides).await;
    readme(&started).await;
    token_workflow(&started).await;
    logout(&started).await;
}

async fn readme(started: &Started) {
    let app = &started.app;
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
    // ... from the application's own pages only: another site's form is refused.
    admin
        .post("/write")
        .from_another_site()
        .body("x")
        .expect(403)
        .await;
    // announce: friend and admin.
    reader.get("/shout?message=hi").expect(403).await;
    let shout = friend.get("/shout?message=hi").expect(200).await;
    assert_eq!(shout.text(), "friend@example.com shouts \"hi\"\n");
    admin.get("/shout?message=hi").expect(200).await;

    // user_overrides: ops@example.com holds announce by configuration, in no
    // user file; a manager's change to the store does not take it away.
    let ops = app.client(Some("ops@example.com")).await;
    ops.get("/shout?message=up").expect(200).await;
    admin
        .post("/manage_capabilities/set")
        .json(&json!({"email": "ops@example.com", "capabilities": []}))
        .expect(200)
        .await;
    ops.get("/shout?message=still").expect(200).await;

    headless(started).await;
}

/// easy-oauth's headless login for a command-line tool: the tool asks for
/// a login, the user completes it in any browser, the tool collects the
/// user's token once.
async fn headless(started: &Started) {
    let app = &started.app;
    let tool = app.client(None).await;
    let start = tool.get("/login?headless=true").expect(200).await.json();
    let login_url = start["login_url"].as_str().expect("a login_url").to_owned();
    let token_url = start["token_url"].as_str().expect("a token_url").to_owned();
    tool.get_url(&token_url).expect(202).await;
    let browser = app.client(None).await;
    let login = browser.get_url(&login_url).expect(303).await;
    let callback = browser
        .follow_provider(login.location().expect("a redirect"), "friend@example.com")
        .await;
    browser.get_url(&callback).expect(303).await;
    let answer = tool.get_url(&token_url).expect(200).await.json();
    let token = answer["token"].as_str().expect("a token");
    let shout = tool
        .get("/shout?message=from-a-script")
        .bearer(token)
        .expect(200)
        .await;
    assert_eq!(
        shout.text(),
        "friend@example.com shouts \"from-a-script\"\n"
    );
    // Collected once.
    tool.get_url(&token_url).expect(400).await;
}

/// A browser is sent to log in and back to the page; an API script (asking
/// for JSON) gets a 401.
pub async fn a_browser_is_sent_to_log_in_and_back_while_scripts_get_401(example: &dyn Example) {
    let started = start(example).await;
    let app = &started.app;
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
    browser
        .get("/shout?message=hello")
        .header("accept", "application/json")
        .expect(401)
        .await;
    // Logging in from there comes back to the page.
    let back = browser
        .login("friend@example.com", "/shout?message=hello")
        .await;
    assert_eq!(back, "/shout?message=hello");
    browser.get(&back).browser().expect(200).await;
}

/// User tokens, their withdrawal and revocation, service tokens, and the
/// provider's access tokens.
pub async fn token_workflow_user_tokens_and_service_tokens(example: &dyn Example) {
    token_workflow(&start(example).await).await;
}

async fn token_workflow(started: &Started) {
    let (provider, app) = (&started.provider, &started.app);
    let friend = app.client(Some("friend@example.com")).await;
    let admin = app.client(Some("admin@example.com")).await;
    let script = app.client(None).await;

    // A user's token works without the browser's cookies.
    let resp = friend.get("/token").expect(200).await;
    let body = resp.json();
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(body["refresh_token"], body["token"], "easy-oauth's field");
    assert!(body["expires_at"].as_u64().unwrap() > provider.clock().now_secs());
    assert_eq!(resp.header("cache-control"), Some("private, no-store"));
    assert_eq!(resp.header("referrer-policy"), Some("no-referrer"));
    script
        .get("/shout?message=x")
        .header("accept", "application/json")
        .expect(401)
        .await;
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

/// Logging out ends the session, for copies of its cookie too.
pub async fn logout_ends_the_session(example: &dyn Example) {
    logout(&start(example).await).await;
}

async fn logout(started: &Started) {
    let (provider, app) = (&started.provider, &started.app);
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

/// The configuration file as shipped holds placeholders, refused at start:
/// the secret key and the client secret must come from the environment.
/// (Mock mode generates its own random secret key.)
pub async fn the_shipped_configuration_needs_real_secrets(example: &dyn Example) {
    use portcullis_core::config::{Format, env_overrides, load_from_str};
    use portcullis_oidc::OidcConfig;

    let files = example.files();
    let shipped: OidcConfig =
        load_from_str(files.config, Format::Yaml, &[]).expect("the file loads");
    let e = shipped
        .validate()
        .expect_err("the placeholders are refused");
    assert!(e.message().contains("`secret_key`"), "{e}");
    let key = crate::conformance::random_secret_key();
    let only_key = env_overrides(
        "PORTCULLIS",
        [("PORTCULLIS__SECRET_KEY".to_owned(), key.clone())],
    );
    let half: OidcConfig =
        load_from_str(files.config, Format::Yaml, &only_key).expect("the file loads");
    let e = half
        .validate()
        .expect_err("the client secret placeholder is refused");
    assert!(e.message().contains("`client_secret`"), "{e}");
    let env = env_overrides(
        "PORTCULLIS",
        [
            ("PORTCULLIS__SECRET_KEY".to_owned(), key),
            (
                "PORTCULLIS__CLIENT_SECRET".to_owned(),
                "the secret the provider's console issued".to_owned(),
            ),
        ],
    );
    let configured: OidcConfig =
        load_from_str(files.config, Format::Yaml, &env).expect("the file loads");
    configured.validate().expect("real secrets are accepted");
    // Mock mode starts with a fresh random key of its own.
    let provider = MockProvider::start()
        .await
        .expect("the mock provider starts");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let a = mock_config(files, &provider, "http://127.0.0.1:1", dir.path()).expect("a config");
    let b = mock_config(files, &provider, "http://127.0.0.1:1", dir.path()).expect("a config");
    a.validate().expect("mock mode's configuration is valid");
    assert_ne!(a.secret_key.expose(), b.secret_key.expose(), "random keys");
}

/// Expands to one `#[tokio::test]` per scenario, run against `$example` (an
/// expression of a type implementing [`Example`]).
///
/// ```ignore
/// portcullis_testing::demo_scenarios!(MyExample);
/// ```
#[macro_export]
macro_rules! demo_scenarios {
    ($example:expr) => {
        $crate::demo_scenarios!(@cases $example;
            the_readme_scenario,
            a_browser_is_sent_to_log_in_and_back_while_scripts_get_401,
            token_workflow_user_tokens_and_service_tokens,
            logout_ends_the_session,
            the_shipped_configuration_needs_real_secrets,
            the_scenarios_on_a_redis_cluster,
        );
    };
    (@cases $example:expr; $($case:ident,)*) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::demo::scenarios::$case(&$example).await;
            }
        )*
    };
}
