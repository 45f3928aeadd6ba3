//! The device authorization grant (RFC 8628): `/device_authorization`,
//! the user's `/device` page, and the device-code grant at `/token`.

use portcullis_testing::MockProvider;
use serde_json::Value;
use url::form_urlencoded;

use super::{Auth, client, options, post_token};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn device_provider() -> MockProvider {
    MockProvider::start_with(options().device_authorization(true))
        .await
        .unwrap()
}

/// Posts a device authorization request with `client_secret_post`.
async fn authorize_device(provider: &MockProvider, scope: &str) -> (u16, Value) {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", provider.client_id())
        .append_pair("client_secret", provider.client_secret())
        .append_pair("scope", scope)
        .finish();
    let response = client()
        .post(provider.device_authorization_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn poll(provider: &MockProvider, device_code: &str) -> super::TokenAnswer {
    post_token(
        provider,
        Auth::post(provider),
        &[("grant_type", GRANT), ("device_code", device_code)],
    )
    .await
}

#[tokio::test]
async fn discovery_advertises_the_device_endpoint_only_when_enabled() {
    let provider = device_provider().await;
    let doc: Value = client()
        .get(provider.discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["device_authorization_endpoint"],
        provider.device_authorization_url()
    );
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == GRANT)
    );
    let plain = super::provider().await;
    let doc: Value = client()
        .get(plain.discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc.get("device_authorization_endpoint").is_none());
    let refused = poll(&plain, "anything").await;
    refused.assert_error("unsupported_grant_type");
}

#[tokio::test]
async fn a_device_is_granted_after_the_user_approves_and_the_interval_passes() {
    let provider = device_provider().await;
    let clock = provider.clock();
    let (status, start) = authorize_device(&provider, "openid email offline_access").await;
    assert_eq!(status, 200, "{start}");
    let device_code = start["device_code"].as_str().unwrap().to_owned();
    let user_code = start["user_code"].as_str().unwrap().to_owned();
    assert_eq!(user_code.len(), 9, "XXXX-XXXX: {user_code}");
    assert_eq!(start["verification_uri"], provider.url("/device"));
    assert_eq!(
        start["verification_uri_complete"],
        format!("{}?user_code={user_code}", provider.url("/device"))
    );
    assert_eq!(start["expires_in"], 600);
    assert_eq!(start["interval"], 5);

    poll(&provider, &device_code)
        .await
        .assert_error("authorization_pending");
    // Again before the interval passed: slower from now on.
    poll(&provider, &device_code)
        .await
        .assert_error("slow_down");
    // 5 seconds later: still within the 10 seconds the interval is now.
    clock.advance_secs(5);
    poll(&provider, &device_code)
        .await
        .assert_error("slow_down");
    clock.advance_secs(15);
    poll(&provider, &device_code)
        .await
        .assert_error("authorization_pending");

    // The user opens the verification URI, typing the code in lower case.
    let page = client()
        .get(format!(
            "{}?user_code={}&login_hint=dev%40example.com",
            provider.url("/device"),
            user_code.to_lowercase()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    clock.advance_secs(15);
    let granted = poll(&provider, &device_code).await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert!(granted.body["id_token"].is_string());
    assert!(granted.body["refresh_token"].is_string(), "offline_access");
    // The device code is single-use.
    clock.advance_secs(15);
    poll(&provider, &device_code)
        .await
        .assert_error("invalid_grant");
    // A decided code cannot be decided again.
    assert!(!provider.approve_device(&user_code, "other@example.com"));
}

#[tokio::test]
async fn denied_and_expired_device_codes() {
    let provider = device_provider().await;
    let clock = provider.clock();
    let (_, start) = authorize_device(&provider, "openid").await;
    let device_code = start["device_code"].as_str().unwrap();
    let denied = client()
        .get(format!(
            "{}?user_code={}&action=deny",
            provider.url("/device"),
            start["user_code"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 200);
    poll(&provider, device_code)
        .await
        .assert_error("access_denied");

    let (_, late) = authorize_device(&provider, "openid").await;
    clock.advance_secs(600);
    let late_code = late["user_code"].as_str().unwrap();
    assert!(!provider.approve_device(late_code, "late@example.com"));
    poll(&provider, late["device_code"].as_str().unwrap())
        .await
        .assert_error("expired_token");
}

#[tokio::test]
async fn device_authorization_requires_client_authentication() {
    let provider = device_provider().await;
    let response = client()
        .post(provider.device_authorization_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "client_id={}&client_secret=wrong",
            provider.client_id()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}
