//! The login flow end to end: sessions, refresh, logout, server-side
//! sessions on Redis, and a third-party provider.

use std::sync::Arc;

use portcullis_axum::portcullis_capabilities::{RedisConfig, RedisStore, Stores};
use portcullis_axum::portcullis_oidc::SessionStorage;
use portcullis_core::clock::Clock as _;
use portcullis_testing::{
    EasyOauthServer, MockOptions, MockProvider, MockUser, NodeOidcServer, RedisServer,
};
use serde_json::Map;

use portcullis_axum::portcullis_oidc::OidcConfig;

use crate::login_support::{SECRET, config, graph, login_app, login_app_with, serve_on};

#[tokio::test]
async fn login_sets_a_protected_session_cookie_and_returns_where_asked() {
    let app = login_app().await;
    let client = app.client(None).await;
    let login = client.get("/login?next=/read").expect(303).await;
    let cookies = login.headers_all("set-cookie");
    let tx = cookies
        .iter()
        .find(|c| c.starts_with("portcullis-login="))
        .expect("a login transaction cookie");
    assert!(
        tx.contains("HttpOnly") && tx.contains("SameSite=Lax") && tx.contains("Max-Age=600"),
        "{tx}"
    );
    assert!(!tx.contains("Secure"), "plain HTTP on loopback: no Secure");
    assert_eq!(login.header("cache-control"), Some("private, no-store"));
    assert_eq!(login.header("referrer-policy"), Some("no-referrer"));
    let authorize = login.location().unwrap().to_owned();
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );

    let callback = client
        .follow_provider(&authorize, "alice@example.com")
        .await;
    assert!(
        callback.contains(&format!("iss={}", urlencode(&app.provider.issuer()))),
        "{callback}"
    );
    let back = client.get_url(&callback).expect(303).await;
    assert_eq!(back.location(), Some("/read"));
    assert_eq!(back.header("cache-control"), Some("private, no-store"));
    assert_eq!(back.header("referrer-policy"), Some("no-referrer"));
    let set = back.headers_all("set-cookie");
    assert!(
        set.iter()
            .any(|c| c.starts_with("portcullis-login=;") && c.contains("Max-Age=0")),
        "{set:?}"
    );
    let session = set
        .iter()
        .find(|c| c.starts_with("portcullis-session=") && !c.contains("Max-Age=0"))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Lax")
            && session.contains("Path=/"),
        "{session}"
    );
    // No token in any URL the browser saw.
    assert!(!back.location().unwrap().contains("token"));
    let me = client.get("/me").expect(200).await.json();
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["issuer"], app.provider.issuer());
    client.get("/read").expect(200).await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_new_login_renews_the_session_id() {
    let app = login_app().await;
    let client = app.client(Some("alice@example.com")).await;
    let first = client.cookie("portcullis-session").unwrap();
    client.login("alice@example.com", "/").await;
    let second = client.cookie("portcullis-session").unwrap();
    assert_ne!(first, second);
    // The first session ended with the new login.
    let old = app.client(None).await;
    old.set_cookie("portcullis-session", Some(&first));
    old.get("/read").expect(401).await;
    client.get("/read").expect(200).await;
}

#[tokio::test]
async fn expired_access_tokens_are_refreshed_once_for_concurrent_requests() {
    let app = login_app().await;
    let client = app.client(None).await;
    // Log in through the flow by hand to ask for offline access.
    let login = client.get("/login?offline_token=true").expect(303).await;
    let authorize = login.location().unwrap().to_owned();
    assert!(authorize.contains("offline_access"), "{authorize}");
    let callback = client
        .follow_provider(&authorize, "alice@example.com")
        .await;
    client.get_url(&callback).expect(303).await;
    let before_refresh = client.cookie("portcullis-session").unwrap();
    let token_calls = app.provider.request_count("/token");

    // Past the access token's lifetime (300 s).
    app.provider.clock().advance_secs(301);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move { c.get("/me").send().await }));
    }
    let mut renewed = 0;
    for t in tasks {
        let resp = t.await.unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        renewed += resp
            .headers_all("set-cookie")
            .iter()
            .filter(|c| c.starts_with("portcullis-session="))
            .count();
    }
    assert_eq!(
        app.provider.request_count("/token"),
        token_calls + 1,
        "one refresh for eight requests"
    );
    assert!(renewed >= 1, "the renewed session is sent back");
    let after = client.cookie("portcullis-session").unwrap();
    assert_ne!(after, before_refresh);

    // A late request with the old cookie reuses the outcome: no replay of
    // the rotated refresh token (which the provider would punish).
    let late = app.client(None).await;
    late.set_cookie("portcullis-session", Some(&before_refresh));
    late.get("/me").expect(200).await;
    assert_eq!(app.provider.request_count("/token"), token_calls + 1);
    // The renewed session keeps working, and refreshes again in time.
    client.get("/me").expect(200).await;
    app.provider.clock().advance_secs(301);
    client.get("/me").expect(200).await;
    assert_eq!(app.provider.request_count("/token"), token_calls + 2);
}

async fn offline_login(
    app: &crate::login_support::LoginApp,
    email: &str,
) -> portcullis_testing::TestClient {
    let client = app.client(None).await;
    let login = client.get("/login?offline_token=true").expect(303).await;
    let callback = client
        .follow_provider(login.location().unwrap(), email)
        .await;
    client.get_url(&callback).expect(303).await;
    client
}

#[tokio::test]
async fn a_refused_refresh_ends_the_session() {
    let app = login_app().await;
    let client = offline_login(&app, "alice@example.com").await;
    app.provider
        .queue_token_error("invalid_grant", "the user was deactivated");
    app.provider.clock().advance_secs(301);
    let resp = client.get("/read").expect(401).await;
    assert!(
        resp.headers_all("set-cookie")
            .iter()
            .any(|c| c.starts_with("portcullis-session=;")),
        "the cookie is cleared"
    );
    client.get("/read").expect(401).await;
}

#[tokio::test]
async fn a_refreshed_id_token_for_another_subject_ends_the_session() {
    let app = login_app().await;
    let client = offline_login(&app, "alice@example.com").await;
    app.provider
        .set_refresh_subject(Some("someone-else".to_owned()));
    app.provider.clock().advance_secs(301);
    client.get("/me").expect(401).await;
}

#[tokio::test]
async fn an_unreachable_provider_during_refresh_is_503_not_a_pass() {
    let app = login_app().await;
    let client = offline_login(&app, "alice@example.com").await;
    app.provider.shutdown();
    app.provider.clock().advance_secs(301);
    client.get("/me").expect(503).await;
}

#[tokio::test]
async fn without_a_refresh_token_the_session_lasts_its_max_age() {
    let app = login_app_with(MockOptions::default(), |c| {
        c.session.max_age_secs = 3600;
    })
    .await;
    let client = app.client(Some("alice@example.com")).await;
    let calls = app.provider.request_count("/token");
    app.provider.clock().advance_secs(1800);
    client.get("/read").expect(200).await;
    assert_eq!(
        app.provider.request_count("/token"),
        calls,
        "nothing to refresh with"
    );
    app.provider.clock().advance_secs(1801);
    client.get("/read").expect(401).await;
}

#[tokio::test]
async fn routes_live_under_the_prefix() {
    let app = login_app_with(MockOptions::default(), |c| c.prefix = "/api/v1".to_owned()).await;
    let client = app.client(None).await;
    client.get("/login").expect(404).await;
    let redirect = client.get("/shout").browser().expect(303).await;
    assert_eq!(redirect.location(), Some("/api/v1/login?next=%2Fshout"));
    // A guest browser on a nested route comes back to the full path.
    let to_login = client.get("/api/v1/token").browser().expect(303).await;
    assert_eq!(
        to_login.location(),
        Some("/api/v1/login?next=%2Fapi%2Fv1%2Ftoken")
    );
    client.login("alice@example.com", "/").await;
    client.get("/read").expect(200).await;
    client.get("/api/v1/token").expect(200).await;
}

#[tokio::test]
async fn a_session_too_large_for_a_cookie_is_refused_clearly_and_fits_server_side() {
    let huge = format!("{}@example.com", "a".repeat(3000));
    let app = login_app().await;
    app.provider.queue_user_with(MockUser {
        email: huge.clone(),
        subject: None,
        claims: Map::new(),
    });
    let client = app.client(None).await;
    let login = client.get("/login").expect(303).await;
    let callback = client
        .follow_provider(login.location().unwrap(), &huge)
        .await;
    let refused = client.get_url(&callback).expect(500).await;
    assert_eq!(
        refused.json()["error"],
        "session_too_large",
        "{}",
        refused.text()
    );
    assert!(refused.text().contains("session.storage: server"));

    let server = login_app_with(MockOptions::default(), |c| {
        c.session.storage = SessionStorage::Server;
    })
    .await;
    let client = server.client(Some(&huge)).await;
    let me = client.get("/me").expect(200).await.json();
    assert_eq!(me["email"], huge.as_str());
    let cookie = client.cookie("portcullis-session").unwrap();
    assert!(cookie.len() < 200, "the cookie holds only a sealed id");
}

/// Two replicas on one Redis, server-side sessions: a session started on
/// one works on the other, and a logout on one ends it on both.
#[tokio::test]
async fn server_side_sessions_on_redis_are_shared_by_replicas() {
    let mut redis = RedisServer::start();
    let provider = MockProvider::start().await.unwrap();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let store = Arc::new(
            RedisStore::connect(RedisConfig::new(redis.url()))
                .await
                .unwrap(),
        );
        let stores = Stores {
            capabilities: store.clone(),
            revocations: Some(store.clone()),
            sessions: store,
        };
        let make = |base: &str| {
            let mut cfg = config(&provider, base);
            cfg.session.storage = SessionStorage::Server;
            cfg
        };
        let (tester, _rp) =
            serve_on(&provider, make, Arc::new(provider.clock()), Some(stores)).await;
        replicas.push(tester);
    }
    let on_a = replicas[0].client(Some("alice@example.com")).await;
    let (name, value) = on_a.cookie_matching("portcullis-session").unwrap();
    let on_b = replicas[1].client(None).await;
    on_b.set_cookie(&name, Some(&value));
    on_b.get("/read").expect(200).await;

    on_a.get("/logout").expect(303).await;
    on_b.get("/read").expect(401).await;

    // Redis gone: the session cannot be read, and that is 503, not a guest.
    let again = replicas[0].client(Some("bob@example.com")).await;
    redis.kill();
    let started = std::time::Instant::now();
    again.get("/read").expect(503).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// A headless login across two replicas on one Redis: started on one,
/// completed in a browser on the other, its token collected on the first,
/// once; Redis gone is 503, never a token or a pending answer.
#[tokio::test]
async fn headless_logins_work_across_replicas_on_redis() {
    let mut redis = RedisServer::start();
    let provider = MockProvider::start().await.unwrap();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let store = Arc::new(
            RedisStore::connect(RedisConfig::new(redis.url()))
                .await
                .unwrap(),
        );
        let stores = Stores {
            capabilities: store.clone(),
            revocations: Some(store.clone()),
            sessions: store,
        };
        let (tester, _rp) = serve_on(
            &provider,
            |base: &str| config(&provider, base),
            Arc::new(provider.clock()),
            Some(stores),
        )
        .await;
        replicas.push(tester);
    }
    let (a, b) = (&replicas[0], &replicas[1]);
    let tool = a.client(None).await;
    let start = tool.get("/login?headless=true").expect(200).await.json();
    let on_b = |url: &str| url.replace(a.base_url(), b.base_url());
    let login_url = on_b(start["login_url"].as_str().unwrap());
    let token_url = start["token_url"].as_str().unwrap().to_owned();
    let browser = b.client(None).await;
    let login = browser.get_url(&login_url).expect(303).await;
    let callback = browser
        .follow_provider(login.location().unwrap(), "alice@example.com")
        .await;
    browser.get_url(&callback).expect(303).await;
    let answer = tool.get_url(&token_url).expect(200).await.json();
    let token = answer["token"].as_str().unwrap().to_owned();
    b.client(None)
        .await
        .get("/read")
        .bearer(&token)
        .expect(200)
        .await;
    tool.get_url(&on_b(&token_url)).expect(400).await;

    let pending = tool.get("/login?headless=true").expect(200).await.json();
    redis.kill();
    let url = pending["token_url"].as_str().unwrap();
    tool.get_url(url).expect(503).await;
}

/// A device login (RFC 8628) across two replicas on one Redis: however
/// many calls of its `token_url` arrive together on both, once the user
/// approved, the provider is polled once and one call gets the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_logins_poll_the_provider_once_across_replicas_on_redis() {
    let redis = RedisServer::start();
    let provider = MockProvider::start_with(MockOptions::default().device_authorization(true))
        .await
        .unwrap();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let store = Arc::new(
            RedisStore::connect(RedisConfig::new(redis.url()))
                .await
                .unwrap(),
        );
        let stores = Stores {
            capabilities: store.clone(),
            revocations: Some(store.clone()),
            sessions: store,
        };
        let (tester, _rp) = serve_on(
            &provider,
            |base: &str| config(&provider, base),
            Arc::new(provider.clock()),
            Some(stores),
        )
        .await;
        replicas.push(tester);
    }
    let (a, b) = (&replicas[0], &replicas[1]);
    let tool = a.client(None).await;
    let start = tool
        .get("/login?headless=true&device=true")
        .expect(200)
        .await
        .json();
    let token_url = start["token_url"].as_str().unwrap().to_owned();
    assert!(provider.approve_device(start["user_code"].as_str().unwrap(), "alice@example.com"));
    provider.clock().advance_secs(5);
    let polls = provider.request_count("/token");
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..6 {
        let url = if i % 2 == 0 {
            token_url.clone()
        } else {
            token_url.replace(a.base_url(), b.base_url())
        };
        let tool = tool.clone();
        calls.spawn(async move { tool.get_url(&url).send().await });
    }
    let mut tokens = Vec::new();
    while let Some(answer) = calls.join_next().await {
        let answer = answer.unwrap();
        match answer.status {
            200 => tokens.push(answer.json()["token"].as_str().unwrap().to_owned()),
            400 => {}
            other => panic!("a token_url call answered {other}: {}", answer.text()),
        }
    }
    assert_eq!(tokens.len(), 1, "one call collects the token");
    assert_eq!(provider.request_count("/token"), polls + 1, "one poll");
    b.client(None)
        .await
        .get("/read")
        .bearer(&tokens[0])
        .expect(200)
        .await;
}

#[tokio::test]
async fn a_logged_in_user_token_survives_without_cookies_and_is_revocable() {
    let app = login_app().await;
    let alice = app.client(Some("alice@example.com")).await;
    let token = alice.token().await;
    let script = app.client(None).await;
    script.get("/read").bearer(&token).expect(200).await;
    // A portcullis token is not exchanged for a longer-lived one.
    script.get("/token").bearer(&token).expect(403).await;
    // A guest API caller asking for a token gets 401; a guest browser is sent to log in.
    script
        .get("/token")
        .header("accept", "application/json")
        .expect(401)
        .await;
    let browser = script.get("/token").browser().expect(303).await;
    assert_eq!(browser.location(), Some("/login?next=%2Ftoken"));
    // Someone else cannot revoke alice's token; alice can.
    let bob = app.client(Some("bob@example.com")).await;
    bob.post("/token/revoke")
        .json(&serde_json::json!({"token": token}))
        .expect(403)
        .await;
    script.get("/read").bearer(&token).expect(200).await;
    alice
        .post("/token/revoke")
        .json(&serde_json::json!({"token": token}))
        .expect(200)
        .await;
    script.get("/read").bearer(&token).expect(401).await;
    let _ = app.provider.clock().now_secs();
    let _ = &app.rp;
}

/// The same flow against a provider portcullis did not write: the npm
/// package `oauth2-mock-server`, under Node 22.
#[tokio::test]
async fn the_flow_works_against_oauth2_mock_server() {
    let node = NodeOidcServer::start().await.unwrap();
    let make = |base: &str| {
        OidcConfig::new(node.discovery_url(), SECRET, "portcullis-client", base)
            .with_client_secret("unused-by-this-provider")
            .with_capabilities(graph())
    };
    let (tester, _rp) = serve_on(&node, make, portcullis_core::clock::system(), None).await;
    let guest = tester.client(None).await;
    guest.get("/read").expect(401).await;
    let alice = tester.client(Some("alice@example.com")).await;
    let me = alice.get("/me").expect(200).await.json();
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["issuer"], node.issuer());
    alice.get("/read").expect(200).await;
    let token = alice.token().await;
    guest.get("/read").bearer(&token).expect(200).await;
    alice.get("/logout").expect(303).await;
    alice.get("/read").expect(401).await;
}

/// The flow against easy-oauth's own mock provider (PyPI `easy-oauth`,
/// under uvicorn): login, `/token`, refresh, and revocation of the
/// portcullis token and of the login (its refresh token at the provider).
/// Its quirks are met with configuration a user could write: it reads the
/// client's id from the token request's form only (under HTTP Basic its ID
/// tokens say `"aud": null`), so `client_secret_post`; its access tokens
/// are opaque, which portcullis never reads.
#[tokio::test]
async fn the_flow_works_against_easy_oauths_own_mock_provider() {
    use portcullis_core::discovery::ClientAuthMethod;

    let server = EasyOauthServer::start("alice@example.com").await.unwrap();
    let make = |base: &str| {
        let mut config = OidcConfig::new(server.discovery_url(), SECRET, "portcullis-client", base)
            .with_client_secret("unused-by-this-provider")
            .with_capabilities(graph());
        config.token_endpoint_auth_method = Some(ClientAuthMethod::ClientSecretPost);
        config
    };
    let (tester, _rp) = serve_on(&server, make, portcullis_core::clock::system(), None).await;
    let guest = tester.client(None).await;
    guest.get("/read").expect(401).await;
    let alice = tester.client(Some(server.email())).await;
    let me = alice.get("/me").expect(200).await.json();
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["issuer"], server.issuer());
    let token = alice.token().await;
    guest.get("/read").bearer(&token).expect(200).await;
    alice
        .post("/token/revoke")
        .json(&serde_json::json!({"token": token}))
        .expect(200)
        .await;
    guest.get("/read").bearer(&token).expect(401).await;
    alice.get("/read").expect(200).await;
    alice.post("/revoke_token").expect(200).await;
    alice.get("/read").expect(401).await;

    // Refreshed on every request: the provider's access tokens live an
    // hour, and the session refreshes them when fewer than this many
    // seconds are left.
    let make_refreshing = |base: &str| {
        let mut config = make(base);
        config.session.refresh_leeway_secs = 3_600;
        config
    };
    let (tester, _rp) = serve_on(
        &server,
        make_refreshing,
        portcullis_core::clock::system(),
        None,
    )
    .await;
    let bob = tester.client(Some(server.email())).await;
    let refreshed = bob.get("/me").expect(200).await;
    assert!(
        refreshed
            .headers_all("set-cookie")
            .iter()
            .any(|c| c.starts_with("portcullis-session=") && !c.contains("Max-Age=0")),
        "a refreshed session is sealed again"
    );
    assert_eq!(refreshed.json()["email"], "alice@example.com");
    // Once the login is revoked at the provider, its refresh token is
    // refused, and the session ends.
    bob.post("/revoke_token").expect(200).await;
    bob.get("/read").expect(401).await;
}

/// The authorization request portcullis builds from the discovery document,
/// random values masked.
#[tokio::test]
async fn the_authorization_redirect() {
    let app = login_app_with(MockOptions::default(), |c| {
        c.client_kwargs
            .extra
            .insert("prompt".to_owned(), "select_account".into());
    })
    .await;
    let client = app.client(None).await;
    let login = client.get("/login?offline_token=true").expect(303).await;
    let url = url::Url::parse(login.location().unwrap()).unwrap();
    assert_eq!(
        url.origin(),
        url::Url::parse(&app.provider.issuer()).unwrap().origin()
    );
    let base = app.tester.base_url().to_owned();
    let params: std::collections::BTreeMap<String, String> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = match k.as_ref() {
                "state" | "nonce" | "code_challenge" => {
                    assert!(v.len() >= 43, "{k} has at least 256 bits: {v}");
                    "[random]".to_owned()
                }
                _ => v.replace(&base, "[app]"),
            };
            (k.into_owned(), v)
        })
        .collect();
    insta::assert_json_snapshot!(serde_json::json!({"path": url.path(), "query": params}));
}

/// Every `/auth` with a valid `state` consumes a single-use login
/// transaction. A flood of them (an attacker needs nothing but `/login` to
/// get transactions) must cost no durable write of the user file's
/// revocations, and must not hold up the logouts and revocations made
/// meanwhile: they complete, are in force at once, and are the only
/// entries written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_callbacks_writes_nothing_and_holds_up_no_logout_or_revocation() {
    const ATTACKERS: usize = 150;
    let dir = tempfile::tempdir().unwrap();
    let user_file = dir.path().join("caps.yaml");
    std::fs::write(&user_file, "admin@example.com: [admin]\n").unwrap();
    let revocations = dir.path().join("caps.yaml.revoked");
    let app = login_app_with(MockOptions::default(), |cfg| {
        cfg.capabilities.user_file = Some(user_file.clone());
    })
    .await;
    let admin = app.client(Some("admin@example.com")).await;
    let alice = app.client(Some("alice@example.com")).await;
    let alice_token = alice.token().await;
    let bob = app.client(Some("bob@example.com")).await;
    let mut callbacks = Vec::with_capacity(ATTACKERS);
    for _ in 0..ATTACKERS {
        let attacker = app.client(None).await;
        let login = attacker.get("/login").expect(303).await;
        let authorize = url::Url::parse(login.location().unwrap()).unwrap();
        let state = authorize
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        let callback = format!(
            "/auth?code=forged&state={state}&iss={}",
            urlencode(&app.provider.issuer())
        );
        callbacks.push((attacker, callback));
    }
    let written_before = std::fs::read_to_string(&revocations).unwrap_or_default();

    let mut flood = tokio::task::JoinSet::new();
    for (attacker, callback) in callbacks {
        flood.spawn(async move { attacker.get(&callback).send().await.status });
    }
    let logout = bob.get("/logout").expect(303);
    let revoke = admin
        .post("/token/revoke")
        .json(&serde_json::json!({"token": alice_token}))
        .expect(200);
    let (_, _) = tokio::join!(logout, revoke);
    let mut refused = 0;
    while let Some(status) = flood.join_next().await {
        // The forged code is refused by the provider after the transaction
        // was consumed: no callback logs anyone in.
        let status = status.unwrap();
        assert!(status >= 400, "a forged callback answered {status}");
        refused += 1;
    }
    assert_eq!(refused, ATTACKERS);

    // The logout and the revocation are in force.
    bob.get("/me").expect(401).await;
    app.client(None)
        .await
        .get("/me")
        .bearer(&alice_token)
        .expect(401)
        .await;
    // They are the only durable entries written: none for the transactions.
    let written = std::fs::read_to_string(&revocations).unwrap();
    let new_entries = written
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count()
        - written_before
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
    assert_eq!(new_entries, 2, "{written}");
}

/// Two replicas sharing one Redis for capabilities, revocations and
/// sessions, on one provider, their sessions kept as `storage` says.
async fn replicas_on_redis(
    redis: &RedisServer,
    provider: &MockProvider,
    storage: SessionStorage,
) -> Vec<(
    portcullis_testing::AppTester,
    portcullis_axum::portcullis_oidc::RelyingParty,
)> {
    replicas_on_redis_with(redis, provider, |c| c.session.storage = storage).await
}

/// [`replicas_on_redis`], their configuration adjusted by `tweak`.
async fn replicas_on_redis_with(
    redis: &RedisServer,
    provider: &MockProvider,
    tweak: impl Fn(&mut OidcConfig),
) -> Vec<(
    portcullis_testing::AppTester,
    portcullis_axum::portcullis_oidc::RelyingParty,
)> {
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let store = Arc::new(
            RedisStore::connect(RedisConfig::new(redis.url()))
                .await
                .unwrap(),
        );
        let stores = Stores {
            capabilities: store.clone(),
            revocations: Some(store.clone()),
            sessions: store,
        };
        let make = |base: &str| {
            let mut cfg = config(provider, base);
            tweak(&mut cfg);
            cfg
        };
        replicas.push(serve_on(provider, make, Arc::new(provider.clock()), Some(stores)).await);
    }
    replicas
}

/// Logs `email` in on `app` with offline access (a refresh token).
async fn offline_login_on(
    app: &portcullis_testing::AppTester,
    email: &str,
) -> portcullis_testing::TestClient {
    let client = app.client(None).await;
    let login = client.get("/login?offline_token=true").expect(303).await;
    let callback = client
        .follow_provider(login.location().unwrap(), email)
        .await;
    client.get_url(&callback).expect(303).await;
    client
}

/// Two replicas refresh one session at once: the provider, which rotates
/// refresh tokens and revokes a login whose old refresh token comes back,
/// sees one redemption, and the login goes on on both replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_refreshing_one_session_at_once_redeem_its_refresh_token_once() {
    let redis = RedisServer::start();
    let provider = MockProvider::start().await.unwrap();
    let replicas = replicas_on_redis(&redis, &provider, SessionStorage::Cookie).await;
    let on_a = offline_login_on(&replicas[0].0, "alice@example.com").await;
    let (name, value) = on_a.cookie_matching("portcullis-session").unwrap();
    let on_b = replicas[1].0.client(None).await;
    on_b.set_cookie(&name, Some(&value));
    let redeemed = provider.refresh_count();

    // Due on both; the provider is slow, so that the refreshes overlap.
    provider.clock().advance_secs(301);
    provider.set_token_delay(Some(std::time::Duration::from_millis(300)));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let client = if i % 2 == 0 {
                on_a.clone()
            } else {
                on_b.clone()
            };
            tokio::spawn(async move { client.get("/me").send().await })
        })
        .collect();
    for task in tasks {
        let resp = task.await.unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    provider.set_token_delay(None);
    assert_eq!(provider.refresh_count(), redeemed + 1, "one redemption");

    // No login was revoked: the next refresh is accepted, on either replica.
    provider.clock().advance_secs(301);
    on_a.get("/me").expect(200).await;
    on_b.get("/me").expect(200).await;
    assert_eq!(provider.refresh_count(), redeemed + 2);
    on_b.get("/read").expect(200).await;
}

/// A request that starts a refresh and is cancelled (its client went away)
/// does not lose the rotated refresh token: the refresh completes and the
/// server-side session keeps the new tokens, which the other replica uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_completes_and_is_kept_when_its_request_is_cancelled() {
    let redis = RedisServer::start();
    let provider = MockProvider::start().await.unwrap();
    let replicas = replicas_on_redis(&redis, &provider, SessionStorage::Server).await;
    let on_a = offline_login_on(&replicas[0].0, "alice@example.com").await;
    let (name, value) = on_a.cookie_matching("portcullis-session").unwrap();
    let redeemed = provider.refresh_count();

    let token_requests = provider.request_count("/token");
    provider.clock().advance_secs(301);
    provider.set_token_delay(Some(std::time::Duration::from_millis(300)));
    // The request on replica A is cancelled while the provider answers.
    let rp = replicas[0].1.clone();
    let cookie = format!("{name}={value}");
    let request = tokio::spawn(async move {
        let headers = [("cookie", cookie.as_str())];
        rp.authenticate("GET", &headers[..]).await.map(|_| ())
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while provider.request_count("/token") == token_requests {
        assert!(std::time::Instant::now() < deadline, "no refresh started");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(!request.is_finished(), "the provider is still answering");
    request.abort();
    assert!(request.await.unwrap_err().is_cancelled());
    while provider.refresh_count() == redeemed {
        assert!(
            std::time::Instant::now() < deadline,
            "the refresh never completed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    provider.set_token_delay(None);
    // What replicas share about that refresh for a while is gone: only
    // what the session store keeps for good is left.
    redis
        .command(&[
            "EVAL",
            "for _, k in ipairs(redis.call('KEYS', '*refresh-outcome:*')) do \
             redis.call('DEL', k) end return 1",
            "0",
        ])
        .unwrap();

    // Replica B, with the same cookie, uses the new tokens: no second redemption.
    let on_b = replicas[1].0.client(None).await;
    on_b.set_cookie(&name, Some(&value));
    on_b.get("/me").expect(200).await;
    assert_eq!(provider.refresh_count(), redeemed + 1);
    // And the rotated refresh token is the one redeemed next: the login goes on.
    provider.clock().advance_secs(301);
    on_b.get("/me").expect(200).await;
    assert_eq!(provider.refresh_count(), redeemed + 2);
}

/// Requests with user tokens of one login arriving together when its check
/// is due share one redemption of its refresh token; within the interval,
/// neither they nor the login's session ask the provider again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_of_one_login_ask_the_provider_once() {
    let app = login_app_with(MockOptions::default(), |c| {
        c.session.recheck_interval_secs = 60;
    })
    .await;
    let alice = offline_login(&app, "alice@example.com").await;
    let tokens = [alice.token().await, alice.token().await];
    let script = app.client(None).await;
    let token_calls = app.provider.request_count("/token");

    app.provider.clock().advance_secs(61);
    app.provider
        .set_token_delay(Some(std::time::Duration::from_millis(300)));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (script, token) = (script.clone(), tokens[i % 2].clone());
            tokio::spawn(async move { script.get("/read").bearer(&token).send().await })
        })
        .collect();
    for task in tasks {
        let resp = task.await.unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    app.provider.set_token_delay(None);
    assert_eq!(
        app.provider.request_count("/token"),
        token_calls + 1,
        "one check for eight requests"
    );
    script.get("/read").bearer(&tokens[0]).expect(200).await;
    alice.get("/read").expect(200).await;
    assert_eq!(app.provider.request_count("/token"), token_calls + 1);
    // The rotated refresh token is the one redeemed next: the login goes on.
    app.provider.clock().advance_secs(61);
    script.get("/read").bearer(&tokens[1]).expect(200).await;
    assert_eq!(app.provider.request_count("/token"), token_calls + 2);
}

/// Without a refresh token from the provider, user tokens are not bound to
/// a login: no check, they live their lifetime.
#[tokio::test]
async fn without_a_refresh_token_user_tokens_are_not_rechecked() {
    let app = login_app_with(MockOptions::default(), |c| {
        c.session.recheck_interval_secs = 60;
    })
    .await;
    let alice = app.client(Some("alice@example.com")).await;
    let token = alice.token().await;
    let script = app.client(None).await;
    let token_calls = app.provider.request_count("/token");
    app.provider.disable_user("alice@example.com");
    app.provider.clock().advance_secs(3600);
    script.get("/read").bearer(&token).expect(200).await;
    assert_eq!(app.provider.request_count("/token"), token_calls);
}

/// Two replicas on one Redis share a login's check: requests on both when
/// it is due redeem its refresh token once, and once the provider refuses
/// the login, its user tokens are refused on both and its session ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_redis_check_a_login_once_and_refuse_it_together() {
    let redis = RedisServer::start();
    let provider = MockProvider::start().await.unwrap();
    let replicas =
        replicas_on_redis_with(&redis, &provider, |c| c.session.recheck_interval_secs = 60).await;
    let alice = offline_login_on(&replicas[0].0, "alice@example.com").await;
    let token = alice.token().await;
    let on_a = replicas[0].0.client(None).await;
    let on_b = replicas[1].0.client(None).await;
    on_b.get("/read").bearer(&token).expect(200).await;
    let token_calls = provider.request_count("/token");

    provider.clock().advance_secs(61);
    provider.set_token_delay(Some(std::time::Duration::from_millis(300)));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let client = if i % 2 == 0 {
                on_a.clone()
            } else {
                on_b.clone()
            };
            let token = token.clone();
            tokio::spawn(async move { client.get("/read").bearer(&token).send().await })
        })
        .collect();
    for task in tasks {
        let resp = task.await.unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    provider.set_token_delay(None);
    assert_eq!(
        provider.request_count("/token"),
        token_calls + 1,
        "one check for both replicas"
    );

    assert_eq!(provider.disable_user("alice@example.com"), 1);
    provider.clock().advance_secs(61);
    on_a.get("/read").bearer(&token).expect(401).await;
    on_b.get("/read").bearer(&token).expect(401).await;
    alice.get("/read").expect(401).await;
}
