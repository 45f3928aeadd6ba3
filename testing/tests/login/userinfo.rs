//! `GET`/`POST /userinfo`.

use portcullis_core::Algorithm;
use portcullis_testing::{MockProvider, MockUser};
use serde_json::{Value, json};

use super::{AuthRequest, client, exchange, login, options, provider, provider_with_clock};

async fn get(provider: &MockProvider, authorization: Option<&str>) -> reqwest::Response {
    let mut request = client().get(provider.userinfo_url());
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

/// Asserts a 401 whose challenge names `invalid_token`.
fn assert_invalid_token(response: &reqwest::Response, case: &str) {
    assert_eq!(response.status(), 401, "{case}");
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
        "{case}: {challenge}"
    );
}

#[tokio::test]
async fn userinfo_answers_the_user_of_a_valid_access_token() {
    let provider = provider().await;
    provider.queue_user_with(
        MockUser::new("frank@example.com")
            .with_subject("frank")
            .with_claim("groups", json!(["admins"]))
            .with_claim("iss", json!("https://evil.example")),
    );
    let answer = login(&provider, "openid email").await;
    let access_token = answer.str("access_token");

    let response = get(&provider, Some(&format!("Bearer {access_token}"))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let info: Value = response.json().await.unwrap();
    assert_eq!(info["sub"], "frank");
    assert_eq!(info["email"], "frank@example.com");
    assert_eq!(info["email_verified"], true);
    assert_eq!(info["groups"], json!(["admins"]));
    assert!(
        info.get("iss").is_none(),
        "protected claims stay out: {info}"
    );

    let response = client()
        .post(provider.userinfo_url())
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "POST works too");

    // A token minted by the builder is the provider's own too.
    let minted = provider
        .token()
        .algorithm(Algorithm::ES256)
        .subject("gina")
        .email("gina@example.com")
        .sign();
    let info: Value = get(&provider, Some(&format!("Bearer {minted}")))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], "gina");
}

#[tokio::test]
async fn userinfo_refuses_bad_tokens() {
    let (provider, clock) = provider_with_clock().await;
    let response = get(&provider, None).await;
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"),
        "a challenge without an error code"
    );

    let (code, verifier) = AuthRequest::new(&provider).code(&provider).await;
    let answer = exchange(&provider, &code, &verifier).await;
    let access_token = answer.str("access_token");
    let id_token = answer.str("id_token");

    let mut tampered: Vec<String> = access_token.split('.').map(str::to_owned).collect();
    tampered[2] = tampered[2].chars().rev().collect();
    let unpublished = provider.token().algorithm(Algorithm::EdDSA).sign();
    let other = MockProvider::start_with(options()).await.unwrap();
    let foreign = other.token().algorithm(Algorithm::ES256).sign();
    let wrong_issuer = provider
        .token()
        .algorithm(Algorithm::ES256)
        .issuer("https://elsewhere.example")
        .sign();
    let cases = [
        ("Basic abc", "not a bearer token"),
        ("Bearer not-a-jwt", "not a JWT"),
        (&*format!("Bearer {}", tampered.join(".")), "bad signature"),
        (&*format!("Bearer {id_token}"), "an ID token"),
        (&*format!("Bearer {foreign}"), "another provider's token"),
        (&*format!("Bearer {wrong_issuer}"), "another issuer"),
        (
            &*format!("Bearer {unpublished}"),
            "a key the JWKS does not list",
        ),
    ];
    for (authorization, case) in cases {
        assert_invalid_token(&get(&provider, Some(authorization)).await, case);
    }

    assert_eq!(
        get(&provider, Some(&format!("Bearer {access_token}")))
            .await
            .status(),
        200
    );
    clock.advance_secs(300);
    assert_invalid_token(
        &get(&provider, Some(&format!("Bearer {access_token}"))).await,
        "expired on the mock clock",
    );

    // Keys rotated away no longer verify.
    let fresh = provider.token().algorithm(Algorithm::ES256).sign();
    provider.rotate_keys();
    assert_invalid_token(
        &get(&provider, Some(&format!("Bearer {fresh}"))).await,
        "signed by a retired key",
    );

    // No openid scope: 403.
    let token = provider
        .token()
        .algorithm(Algorithm::ES256)
        .scope("orders:read")
        .sign();
    let response = get(&provider, Some(&format!("Bearer {token}"))).await;
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
}
