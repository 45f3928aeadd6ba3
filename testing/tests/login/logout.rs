//! `GET`/`POST /logout`, the end-session endpoint.

use portcullis_core::{Algorithm, TokenKind};
use portcullis_testing::MockProvider;
use serde_json::Value;
use url::form_urlencoded;

use super::{client, location, login, options, provider_with_clock};

const AFTER: &str = "http://127.0.0.1:9/signed-out";

async fn logout(provider: &MockProvider, params: &[(&str, &str)]) -> reqwest::Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    client()
        .get(format!("{}?{}", provider.logout_url(), query.finish()))
        .send()
        .await
        .unwrap()
}

async fn assert_refused(response: reqwest::Response, case: &str) {
    assert_eq!(response.status(), 400, "{case}");
    assert!(response.headers().get("location").is_none(), "{case}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{case}: {body}");
}

#[tokio::test]
async fn logout_without_a_redirect_answers_plain_text() {
    let (provider, _clock) = provider_with_clock().await;
    let response = logout(&provider, &[]).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(!response.text().await.unwrap().is_empty());
    assert_eq!(provider.logout_count(), 1);
    assert_eq!(provider.request_count("/logout"), 1);
}

#[tokio::test]
async fn logout_redirects_to_a_registered_uri_with_state() {
    let (provider, clock) = provider_with_clock().await;
    provider.register_post_logout_redirect_uri(AFTER);
    let id_token = login(&provider, "openid").await.str("id_token");
    // An expired ID token is still a fine hint.
    clock.advance_secs(3600);

    let response = logout(
        &provider,
        &[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", AFTER),
            ("state", "bye 1"),
        ],
    )
    .await;
    assert_eq!(response.status(), 302);
    let (base, params) = location(&response);
    assert_eq!(base, AFTER);
    assert_eq!(params["state"], "bye 1");

    let response = logout(
        &provider,
        &[
            ("client_id", provider.client_id()),
            ("post_logout_redirect_uri", AFTER),
        ],
    )
    .await;
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], AFTER, "no state, no query");

    // POST with a form body works too.
    let response = client()
        .post(provider.logout_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "client_id={}&post_logout_redirect_uri={}",
            provider.client_id(),
            form_urlencoded::byte_serialize(AFTER.as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(provider.logout_count(), 3);
}

#[tokio::test]
async fn post_logout_redirect_uris_can_be_registered_up_front() {
    let provider = MockProvider::start_with(options().post_logout_redirect_uri(AFTER))
        .await
        .unwrap();
    let response = logout(
        &provider,
        &[
            ("client_id", "portcullis-client"),
            ("post_logout_redirect_uri", AFTER),
        ],
    )
    .await;
    assert_eq!(response.status(), 302);
}

#[tokio::test]
async fn logout_refuses_unregistered_uris_and_bad_hints() {
    let (provider, _clock) = provider_with_clock().await;
    provider.register_post_logout_redirect_uri(AFTER);
    let answer = login(&provider, "openid").await;
    let id_token = answer.str("id_token");
    let access_token = answer.str("access_token");
    let other = MockProvider::start_with(options()).await.unwrap();
    let foreign = other
        .token()
        .kind(TokenKind::Id)
        .algorithm(Algorithm::ES256)
        .sign();
    let for_another_client = provider
        .token()
        .kind(TokenKind::Id)
        .algorithm(Algorithm::ES256)
        .audience("another-client")
        .sign();

    let cases: [(&[(&str, &str)], &str); 7] = [
        (
            &[
                ("client_id", "portcullis-client"),
                ("post_logout_redirect_uri", "http://127.0.0.1:9/elsewhere"),
            ],
            "unregistered post_logout_redirect_uri",
        ),
        (
            &[("post_logout_redirect_uri", AFTER)],
            "a redirect needs id_token_hint or client_id",
        ),
        (&[("client_id", "someone-else")], "unknown client"),
        (&[("id_token_hint", &access_token)], "an access token"),
        (
            &[("id_token_hint", &foreign)],
            "another provider's ID token",
        ),
        (
            &[("id_token_hint", &for_another_client)],
            "an ID token for another client",
        ),
        (&[("id_token_hint", "not.a.jwt")], "garbage"),
    ];
    for (params, case) in cases {
        assert_refused(logout(&provider, params).await, case).await;
    }
    assert_eq!(provider.logout_count(), 0, "refused logouts do not count");

    let response = logout(&provider, &[("id_token_hint", &id_token)]).await;
    assert_eq!(response.status(), 200, "a hint without a redirect");
    assert_eq!(provider.logout_count(), 1);
}
