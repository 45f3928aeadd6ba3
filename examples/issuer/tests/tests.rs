//! The printed scenario, run against the example served on loopback: each
//! step's request as its `curl` line makes it.

use std::net::SocketAddr;

use example_issuer::{Settings, app, authenticator, issuer, scenario};
use serde_json::Value;

async fn start() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = issuer(&base, &Settings::default()).unwrap();
    let auth = authenticator(&issuer, None).unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app(&issuer, auth).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    base
}

async fn login(http: &reqwest::Client, base: &str, user: &str) -> Value {
    let password = format!("{user}-password");
    http.post(format!("{base}/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", &password),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_printed_scenario_runs() {
    let base = start().await;
    let steps = scenario(&base);
    assert_eq!(steps.len(), 6);
    let http = reqwest::Client::new();

    // 1. alice logs in.
    assert!(
        steps[0]
            .curl
            .contains("-d username=alice -d password=alice-password")
    );
    let answer = login(&http, &base, "alice").await;
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["scope"], "user:read user:write");
    let token = answer["access_token"].as_str().unwrap();
    let refresh = answer["refresh_token"].as_str().unwrap();

    // 2. GET /user.
    assert!(steps[1].curl.contains(&format!("{base}/user ")));
    let hello = http
        .get(format!("{base}/user"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(hello.status(), 200);
    assert_eq!(hello.text().await.unwrap(), "Hello alice");

    // 3. GET /user/write.
    let write = http
        .get(format!("{base}/user/write"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 200);
    assert_eq!(write.text().await.unwrap(), "Hello alice, you may write");

    // 4. A refresh rotates the refresh token.
    assert!(steps[3].curl.contains("grant_type=refresh_token"));
    let refreshed: Value = http
        .post(format!("{base}/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(refreshed["refresh_token"].as_str().unwrap(), refresh);
    let renewed = refreshed["access_token"].as_str().unwrap();
    let hello = http
        .get(format!("{base}/user"))
        .bearer_auth(renewed)
        .send()
        .await
        .unwrap();
    assert_eq!(hello.status(), 200);

    // 5. bob reads but may not write.
    let bob = login(&http, &base, "bob").await;
    let bob_token = bob["access_token"].as_str().unwrap();
    let hello = http
        .get(format!("{base}/user"))
        .bearer_auth(bob_token)
        .send()
        .await
        .unwrap();
    assert_eq!(hello.text().await.unwrap(), "Hello bob");
    let refused = http
        .get(format!("{base}/user/write"))
        .bearer_auth(bob_token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    // 6. Discovery and keys.
    let metadata: Value = http
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], base.as_str());
    let jwks: Value = http
        .get(format!("{base}/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "ES256");

    // No token: 401 with a challenge.
    let guest = http.get(format!("{base}/user")).send().await.unwrap();
    assert_eq!(guest.status(), 401);
}
