//! Who logs in: queued users, `login_hint`, the provider-wide email and the default.

use portcullis_testing::MockUser;
use serde_json::{Value, json};

use super::{AuthRequest, claims, client, exchange, provider};

/// Logs in (with an optional `login_hint`) and returns the ID token's claims.
async fn who(provider: &portcullis_testing::MockProvider, login_hint: Option<&str>) -> Value {
    let mut request = AuthRequest::new(provider);
    if let Some(hint) = login_hint {
        request = request.set("login_hint", hint);
    }
    let (code, verifier) = request.code(provider).await;
    let answer = exchange(provider, &code, &verifier).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    claims(&answer.str("id_token"))
}

async fn post(provider: &portcullis_testing::MockProvider, path: &str, body: Value) -> u16 {
    client()
        .post(provider.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn queued_users_beat_login_hint_beats_set_email_beats_the_default() {
    let provider = provider().await;
    let id = who(&provider, None).await;
    assert_eq!(id["email"], "test@example.com", "the default");
    assert_eq!(id["sub"], MockUser::subject_for("test@example.com"));

    provider.set_email("wide@example.com");
    assert_eq!(who(&provider, None).await["email"], "wide@example.com");
    assert_eq!(
        post(&provider, "/set_email", json!({"email": "a@b.c"})).await,
        204
    );
    assert_eq!(who(&provider, None).await["email"], "a@b.c");

    let id = who(&provider, Some("hint@example.com")).await;
    assert_eq!(
        id["email"], "hint@example.com",
        "login_hint beats set_email"
    );
    assert_eq!(id["sub"], MockUser::subject_for("hint@example.com"));

    provider.queue_user("first@example.com");
    provider.queue_user_with(
        MockUser::new("second@example.com")
            .with_subject("second")
            .with_claim("email_verified", json!(false))
            .with_claim("nonce", json!("forged")),
    );
    assert_eq!(
        post(
            &provider,
            "/queue_user",
            json!({"email": "third@example.com", "claims": {"tenant": "t3"}})
        )
        .await,
        204
    );
    let id = who(&provider, Some("hint@example.com")).await;
    assert_eq!(id["email"], "first@example.com", "queued users come first");
    let id = who(&provider, Some("hint@example.com")).await;
    assert_eq!(id["email"], "second@example.com", "first in, first out");
    assert_eq!(id["sub"], "second");
    assert_eq!(id["email_verified"], false, "extra claims may replace it");
    assert_eq!(id["nonce"], "n-1", "but not protected ones");
    let id = who(&provider, None).await;
    assert_eq!(id["email"], "third@example.com");
    assert_eq!(id["tenant"], "t3");
    assert_eq!(id["sub"], MockUser::subject_for("third@example.com"));

    // The queue is empty again.
    assert_eq!(who(&provider, None).await["email"], "a@b.c");
}

#[tokio::test]
async fn subjects_are_stable_per_email() {
    let provider = provider().await;
    let first = who(&provider, Some("stable@example.com")).await;
    let again = who(&provider, Some("stable@example.com")).await;
    let other = who(&provider, Some("other@example.com")).await;
    assert_eq!(first["sub"], again["sub"]);
    assert_ne!(first["sub"], other["sub"]);
    let sub = MockUser::subject_for("stable@example.com");
    assert_eq!(first["sub"], sub.as_str());
    assert!(sub.starts_with("user-") && sub.len() == 21, "{sub}");
}

#[tokio::test]
async fn control_endpoints_refuse_bad_bodies() {
    let provider = provider().await;
    for (path, body) in [
        ("/queue_user", json!({})),
        ("/queue_user", json!({"email": "x@y.z", "extra": 1})),
        ("/set_email", json!({"mail": "x@y.z"})),
        ("/queue_token_error", json!({})),
    ] {
        assert_eq!(
            post(&provider, path, body.clone()).await,
            400,
            "{path} {body}"
        );
    }
    let response = client()
        .get(provider.url("/queue_user"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}
