//! Changing the ID token of a coming code exchange, and reading back the
//! last token answer: the hooks for tests of clients that must refuse
//! forged or misdirected ID tokens.

use portcullis_core::TokenKind;
use portcullis_testing::MockProvider;
use serde_json::{Map, Value, json};

use super::{AuthRequest, at_hash_sha256, claims, exchange, login, provider, refresh};
use crate::{key_set, verifies};

fn map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

#[tokio::test]
async fn queued_claims_replace_the_protected_ones_and_are_still_signed() {
    let provider = provider().await;
    provider.queue_id_token_claims(map(json!({
        "iss": "https://elsewhere.example",
        "aud": ["portcullis-client", "another-client"],
        "azp": "another-client",
        "nonce": "someone else's",
        "at_hash": "not-the-hash",
        "sub": "mallory",
        "exp": 1,
        "auth_time": null,
        "extra": {"x": 1},
    })));
    let answer = login(&provider, "openid email").await;
    let id_token = answer.str("id_token");
    let id = claims(&id_token);
    assert_eq!(id["iss"], "https://elsewhere.example");
    assert_eq!(id["aud"], json!(["portcullis-client", "another-client"]));
    assert_eq!(id["azp"], "another-client");
    assert_eq!(id["nonce"], "someone else's");
    assert_eq!(id["at_hash"], "not-the-hash");
    assert_eq!(id["sub"], "mallory");
    assert_eq!(id["exp"], 1);
    assert!(id.get("auth_time").is_none(), "null leaves the claim out");
    assert_eq!(id["extra"], json!({"x": 1}));
    // Untouched claims keep the provider's values.
    assert_eq!(id["email"], "test@example.com");
    assert!(
        verifies(&key_set(&provider).await, &id_token),
        "signed by the provider's key"
    );
    // The access token is the provider's own.
    let access = claims(&answer.str("access_token"));
    assert_eq!(access["iss"], provider.issuer());

    // One exchange only: the next one is normal again.
    let next = claims(&login(&provider, "openid").await.str("id_token"));
    assert_eq!(next["iss"], provider.issuer());
    assert_eq!(next["aud"], provider.client_id());
    assert_eq!(next["nonce"], "n-1");
    assert!(next.get("azp").is_none());
}

#[tokio::test]
async fn a_queued_raw_id_token_is_answered_as_is() {
    let provider = provider().await;
    let other = MockProvider::start_with(super::options()).await.unwrap();
    let foreign = other
        .token()
        .kind(TokenKind::Id)
        .claim("nonce", json!("n-1"))
        .sign();
    provider.queue_id_token(foreign.clone());
    let answer = login(&provider, "openid email").await;
    assert_eq!(answer.str("id_token"), foreign);
    assert!(!verifies(&key_set(&provider).await, &foreign));
    // The rest of the answer is the provider's.
    let access_token = answer.str("access_token");
    assert_eq!(claims(&access_token)["iss"], provider.issuer());
    assert_eq!(answer.body["token_type"], "Bearer");
    // Next time, the provider's own ID token again.
    let own = login(&provider, "openid").await.str("id_token");
    assert_ne!(own, foreign);
    assert_eq!(claims(&own)["iss"], provider.issuer());
}

#[tokio::test]
async fn changes_queue_in_order_and_spare_failed_exchanges_and_refreshes() {
    let provider = provider().await;
    // A refresh token to use while changes are queued.
    let offline = login(&provider, "openid offline_access").await;
    let refresh_token = offline.str("refresh_token");

    provider.queue_id_token("first.raw.token");
    provider.queue_id_token_claims(map(json!({"nonce": "second"})));

    // A failed exchange consumes nothing.
    let (code, _) = AuthRequest::new(&provider).code(&provider).await;
    exchange(&provider, &code, &"x".repeat(43))
        .await
        .assert_error("invalid_grant");
    // Neither does a refresh grant.
    let refreshed = refresh(&provider, &refresh_token).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let id = claims(&refreshed.str("id_token"));
    assert_eq!(id["iss"], provider.issuer());
    assert_eq!(
        id["at_hash"],
        at_hash_sha256(&refreshed.str("access_token"))
    );

    assert_eq!(
        login(&provider, "openid").await.str("id_token"),
        "first.raw.token"
    );
    let second = claims(&login(&provider, "openid").await.str("id_token"));
    assert_eq!(second["nonce"], "second");
    let third = claims(&login(&provider, "openid").await.str("id_token"));
    assert_eq!(third["nonce"], "n-1");
}

#[tokio::test]
async fn the_last_token_response_is_kept() {
    let provider = provider().await;
    assert_eq!(provider.last_token_response(), None);
    let answer = login(&provider, "openid offline_access").await;
    assert_eq!(provider.last_token_response(), Some(answer.body.clone()));

    // A failed request does not replace it.
    refresh(&provider, "unknown")
        .await
        .assert_error("invalid_grant");
    assert_eq!(provider.last_token_response(), Some(answer.body.clone()));

    let refreshed = refresh(&provider, &answer.str("refresh_token")).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let last = provider.last_token_response().unwrap();
    assert_eq!(last, refreshed.body);
    assert_ne!(last["access_token"], answer.body["access_token"]);
}
