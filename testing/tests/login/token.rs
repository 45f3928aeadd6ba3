//! `POST /token`: the authorization code grant, client authentication,
//! client credentials and queued errors.

use std::time::Duration;

use portcullis_testing::{MockOptions, MockProvider, MockUser};
use serde_json::{Value, json};

use super::{
    Auth, AuthRequest, REDIRECT, at_hash_sha256, basic_header, claims, client, exchange, login,
    options, post_token, provider, provider_with_clock, refresh,
};
use crate::{key_set, parts, verifies};

async fn userinfo(provider: &MockProvider, access_token: &str) -> reqwest::Response {
    client()
        .get(provider.userinfo_url())
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn full_login_with_basic_and_post_authentication() {
    // The default algorithms: tokens are signed with the first, RS256.
    let provider = MockProvider::start_with(MockOptions::default().redirect_uri(REDIRECT))
        .await
        .unwrap();
    let (code, verifier) = AuthRequest::new(&provider).code(&provider).await;
    let answer = exchange(&provider, &code, &verifier).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(answer.body["token_type"], "Bearer");
    assert_eq!(answer.body["expires_in"], 300);
    assert_eq!(answer.body["scope"], "openid email profile");
    assert!(
        answer.body.get("refresh_token").is_none(),
        "no refresh token without offline_access"
    );

    let keys = key_set(&provider).await;
    let access_token = answer.str("access_token");
    let (header, access) = parts(&access_token);
    assert!(verifies(&keys, &access_token), "access token signature");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(access["iss"], provider.issuer());
    assert_eq!(access["aud"], provider.audience());
    assert_eq!(access["client_id"], provider.client_id());
    assert_eq!(access["scope"], "openid email profile");
    let subject = MockUser::subject_for("test@example.com");
    assert_eq!(access["sub"], subject.as_str());
    assert_eq!(access["email"], "test@example.com");
    assert_eq!(
        access["exp"].as_u64().unwrap(),
        access["iat"].as_u64().unwrap() + 300
    );

    let id_token = answer.str("id_token");
    let (header, id) = parts(&id_token);
    assert!(verifies(&keys, &id_token), "ID token signature");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(id["iss"], provider.issuer());
    assert_eq!(id["aud"], provider.client_id());
    assert_eq!(id["sub"], subject.as_str());
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["at_hash"], at_hash_sha256(&access_token));
    assert_eq!(id["email"], "test@example.com");
    assert_eq!(id["email_verified"], true);
    let auth_time = id["auth_time"].as_u64().expect("auth_time");
    assert!(auth_time <= id["iat"].as_u64().unwrap());

    let response = userinfo(&provider, &access_token).await;
    assert_eq!(response.status(), 200);
    let info: Value = response.json().await.unwrap();
    assert_eq!(info["sub"], subject.as_str());
    assert_eq!(info["email"], "test@example.com");
    assert_eq!(info["email_verified"], true);

    // client_secret_post, and no nonce in the request: none in the ID token.
    let (code, verifier) = AuthRequest::new(&provider)
        .remove("nonce")
        .code(&provider)
        .await;
    let answer = post_token(
        &provider,
        Auth::post(&provider),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let id = claims(&answer.str("id_token"));
    assert!(id.get("nonce").is_none(), "no nonce was sent: {id}");
    assert_eq!(id["sub"], subject.as_str(), "same email, same subject");
    assert_eq!(provider.request_count("/token"), 2);
}

#[tokio::test]
async fn access_token_ttl_sets_the_lifetime() {
    let provider = MockProvider::start_with(options().access_token_ttl(Duration::from_secs(60)))
        .await
        .unwrap();
    let answer = login(&provider, "openid").await;
    assert_eq!(answer.body["expires_in"], 60);
    let access = claims(&answer.str("access_token"));
    assert_eq!(
        access["exp"].as_u64().unwrap(),
        access["iat"].as_u64().unwrap() + 60
    );
}

#[tokio::test]
async fn pkce_mismatch_is_refused_and_uses_up_the_code() {
    let provider = provider().await;
    let (code, verifier) = AuthRequest::new(&provider).code(&provider).await;
    let other = super::pkce().verifier;
    exchange(&provider, &code, &other)
        .await
        .assert_error("invalid_grant");
    exchange(&provider, &code, &verifier)
        .await
        .assert_error("invalid_grant");
}

#[tokio::test]
async fn malformed_or_missing_verifier_is_an_invalid_request() {
    let provider = provider().await;
    let (code, verifier) = AuthRequest::new(&provider).code(&provider).await;
    for bad in ["short", &format!("{verifier}+"), &"a".repeat(129)] {
        exchange(&provider, &code, bad)
            .await
            .assert_error("invalid_request");
    }
    post_token(
        &provider,
        Auth::basic(&provider),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await
    .assert_error("invalid_request");
    // Malformed requests did not use the code up.
    let answer = exchange(&provider, &code, &verifier).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn replayed_code_is_refused_and_revokes_its_tokens() {
    let provider = provider().await;
    let (code, verifier) = AuthRequest::new(&provider)
        .set("scope", "openid email offline_access")
        .code(&provider)
        .await;
    let first = exchange(&provider, &code, &verifier).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let refresh_token = first.str("refresh_token");
    let access_token = first.str("access_token");
    assert_eq!(userinfo(&provider, &access_token).await.status(), 200);

    exchange(&provider, &code, &verifier)
        .await
        .assert_error("invalid_grant");
    refresh(&provider, &refresh_token)
        .await
        .assert_error("invalid_grant");
    assert_eq!(
        userinfo(&provider, &access_token).await.status(),
        401,
        "the access token from the replayed code is revoked too"
    );
}

#[tokio::test]
async fn expired_code_is_refused() {
    let (provider, clock) = provider_with_clock().await;
    let (code, verifier) = AuthRequest::new(&provider).code(&provider).await;
    clock.advance_secs(60);
    exchange(&provider, &code, &verifier)
        .await
        .assert_error("invalid_grant");

    let (code, verifier) = AuthRequest::new(&provider).code(&provider).await;
    clock.advance_secs(59);
    let answer = exchange(&provider, &code, &verifier).await;
    assert_eq!(
        answer.status, 200,
        "still valid after 59 s: {}",
        answer.body
    );
}

#[tokio::test]
async fn unknown_code_and_mismatched_redirect_uri_are_refused() {
    let provider = provider().await;
    exchange(&provider, "no-such-code", &super::pkce().verifier)
        .await
        .assert_error("invalid_grant");

    let other = "http://127.0.0.1:9/other";
    provider.register_redirect_uri(other);
    let (code, verifier) = AuthRequest::new(&provider).code(&provider).await;
    let answer = post_token(
        &provider,
        Auth::basic(&provider),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", other),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    answer.assert_error("invalid_grant");

    let (code, verifier) = AuthRequest::new(&provider).code(&provider).await;
    post_token(
        &provider,
        Auth::basic(&provider),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
        ],
    )
    .await
    .assert_error("invalid_request");
}

#[tokio::test]
async fn client_authentication_is_required_and_checked() {
    let provider = provider().await;
    let grant = [("grant_type", "client_credentials")];

    let answer = post_token(&provider, Auth::Basic("portcullis-client", "wrong"), &grant).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(answer.error(), "invalid_client");
    let challenge = answer.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Basic"), "{challenge}");

    let answer = post_token(
        &provider,
        Auth::Basic("someone-else", "portcullis-secret"),
        &grant,
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.error(), "invalid_client");

    let answer = post_token(&provider, Auth::Post("portcullis-client", "wrong"), &grant).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.error(), "invalid_client");

    let answer = post_token(&provider, Auth::None, &grant).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.error(), "invalid_client");

    // A client id alone is no authentication.
    let answer = post_token(
        &provider,
        Auth::None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "portcullis-client"),
        ],
    )
    .await;
    assert_eq!(answer.status, 401);

    // Both methods at once.
    let answer = post_token(
        &provider,
        Auth::basic(&provider),
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", "portcullis-secret"),
        ],
    )
    .await;
    answer.assert_error("invalid_request");

    // Another scheme in the Authorization header.
    let response = client()
        .post(provider.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .bearer_auth("some-token")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_first() {
    let secret = "s3cr:t/+&% é";
    let provider = MockProvider::start_with(options().client_secret(secret))
        .await
        .unwrap();
    assert_eq!(provider.client_secret(), secret);
    let grant = [("grant_type", "client_credentials")];
    let answer = post_token(&provider, Auth::Basic("portcullis-client", secret), &grant).await;
    assert_eq!(answer.status, 200, "encoded credentials: {}", answer.body);

    // The same secret not encoded: `+` would be a space, `%` a broken escape.
    let raw = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("portcullis-client:{secret}"),
    );
    let response = client()
        .post(provider.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Basic {raw}"))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "raw credentials are refused");
    assert_ne!(
        basic_header("portcullis-client", secret),
        format!("Basic {raw}")
    );

    let answer = post_token(&provider, Auth::Post("portcullis-client", secret), &grant).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn client_credentials_issue_an_access_token_only() {
    let provider = provider().await;
    let answer = post_token(
        &provider,
        Auth::basic(&provider),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "orders:read orders:write"),
        ],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["token_type"], "Bearer");
    assert_eq!(answer.body["scope"], "orders:read orders:write");
    assert!(answer.body.get("id_token").is_none(), "{}", answer.body);
    assert!(
        answer.body.get("refresh_token").is_none(),
        "{}",
        answer.body
    );
    let access_token = answer.str("access_token");
    assert!(verifies(&key_set(&provider).await, &access_token));
    let access = claims(&access_token);
    assert_eq!(access["sub"], provider.client_id());
    assert_eq!(access["client_id"], provider.client_id());
    assert_eq!(access["scope"], "orders:read orders:write");
    assert_eq!(access["aud"], provider.audience());
    assert!(access.get("email").is_none());

    let answer = post_token(
        &provider,
        Auth::post(&provider),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.get("scope").is_none());
    assert!(claims(&answer.str("access_token")).get("scope").is_none());
}

#[tokio::test]
async fn malformed_token_requests_are_refused() {
    let provider = provider().await;
    post_token(
        &provider,
        Auth::basic(&provider),
        &[("grant_type", "password")],
    )
    .await
    .assert_error("unsupported_grant_type");
    post_token(&provider, Auth::basic(&provider), &[])
        .await
        .assert_error("invalid_request");
    post_token(
        &provider,
        Auth::basic(&provider),
        &[
            ("grant_type", "client_credentials"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await
    .assert_error("invalid_request");

    let response = client()
        .post(provider.token_url())
        .header(
            "authorization",
            basic_header("portcullis-client", "portcullis-secret"),
        )
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "JSON bodies are refused");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");

    let response = client().get(provider.token_url()).send().await.unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn queued_token_errors_answer_the_next_requests() {
    let provider = provider().await;
    let (code, verifier) = AuthRequest::new(&provider).code(&provider).await;
    provider.queue_token_error("temporarily_unavailable", "try again");
    let response = client()
        .post(provider.url("/queue_token_error"))
        .json(&json!({"error": "invalid_client", "error_description": "the client was disabled"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    let answer = exchange(&provider, &code, &verifier).await;
    answer.assert_error("temporarily_unavailable");
    assert_eq!(answer.body["error_description"], "try again");
    let answer = exchange(&provider, &code, &verifier).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(answer.error(), "invalid_client");

    // The queued errors did not touch the code.
    let answer = exchange(&provider, &code, &verifier).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}
