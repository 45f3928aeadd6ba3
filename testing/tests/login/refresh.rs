//! The refresh token grant: rotation, replay detection and the test hooks.

use super::{
    Auth, at_hash_sha256, claims, client, login, post_token, provider, provider_with_clock, refresh,
};

const OFFLINE: &str = "openid email offline_access";

#[tokio::test]
async fn refresh_tokens_rotate() {
    let (provider, clock) = provider_with_clock().await;
    let first = login(&provider, OFFLINE).await;
    let first_id = claims(&first.str("id_token"));
    let rt1 = first.str("refresh_token");
    assert_eq!(rt1.len(), 43, "32 random bytes in base64url: {rt1}");

    clock.advance_secs(100);
    let second = refresh(&provider, &rt1).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let rt2 = second.str("refresh_token");
    assert_ne!(rt2, rt1, "a new refresh token every time");
    let access_token = second.str("access_token");
    assert_ne!(access_token, first.str("access_token"));
    assert_eq!(second.body["token_type"], "Bearer");
    assert_eq!(second.body["scope"], OFFLINE);
    let access = claims(&access_token);
    assert_eq!(access["sub"], first_id["sub"]);
    assert_eq!(access["iat"], 1_700_000_100);

    let id = claims(&second.str("id_token"));
    assert_eq!(id["sub"], first_id["sub"], "same subject");
    assert_eq!(id["iss"], provider.issuer(), "same issuer");
    assert_eq!(id["aud"], provider.client_id());
    assert!(id.get("nonce").is_none(), "no nonce on refresh: {id}");
    assert_eq!(id["auth_time"], first_id["auth_time"], "the login's time");
    assert_eq!(id["iat"], 1_700_000_100);
    assert_eq!(id["at_hash"], at_hash_sha256(&access_token));

    let third = refresh(&provider, &rt2).await;
    assert_eq!(third.status, 200, "{}", third.body);
    assert_ne!(third.str("refresh_token"), rt2);
    assert_eq!(provider.refresh_count(), 2);
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_family() {
    let provider = provider().await;
    let first = login(&provider, OFFLINE).await;
    let other = login(&provider, OFFLINE).await;
    let rt1 = first.str("refresh_token");
    let second = refresh(&provider, &rt1).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let rt2 = second.str("refresh_token");

    refresh(&provider, &rt1).await.assert_error("invalid_grant");
    refresh(&provider, &rt2).await.assert_error("invalid_grant");
    let response = client()
        .get(provider.userinfo_url())
        .bearer_auth(second.str("access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "the family's access tokens are revoked"
    );
    assert_eq!(provider.refresh_count(), 1);

    // Another login's family is untouched.
    let answer = refresh(&provider, &other.str("refresh_token")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn no_refresh_token_without_offline_access() {
    let provider = provider().await;
    let answer = login(&provider, "openid email profile").await;
    assert!(
        answer.body.get("refresh_token").is_none(),
        "{}",
        answer.body
    );
    refresh(&provider, "made-up")
        .await
        .assert_error("invalid_grant");
    post_token(
        &provider,
        Auth::basic(&provider),
        &[("grant_type", "refresh_token")],
    )
    .await
    .assert_error("invalid_request");
}

#[tokio::test]
async fn refresh_can_narrow_the_scope_but_not_widen_it() {
    let provider = provider().await;
    let first = login(&provider, OFFLINE).await;
    let answer = post_token(
        &provider,
        Auth::basic(&provider),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first.str("refresh_token")),
            ("scope", "openid admin"),
        ],
    )
    .await;
    answer.assert_error("invalid_scope");

    // Refused for its scope, the token was not used up.
    let answer = post_token(
        &provider,
        Auth::post(&provider),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first.str("refresh_token")),
            ("scope", "email"),
        ],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["scope"], "email");
    assert_eq!(claims(&answer.str("access_token"))["scope"], "email");
    assert!(
        answer.body.get("id_token").is_none(),
        "no ID token without openid"
    );

    // The new refresh token keeps the original grant.
    let answer = refresh(&provider, &answer.str("refresh_token")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["scope"], OFFLINE);
}

#[tokio::test]
async fn refresh_subject_hook_changes_the_refreshed_id_token() {
    let provider = provider().await;
    let first = login(&provider, OFFLINE).await;
    let sub = claims(&first.str("id_token"))["sub"].clone();

    provider.set_refresh_subject(Some("someone-else".to_owned()));
    let second = refresh(&provider, &first.str("refresh_token")).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(claims(&second.str("id_token"))["sub"], "someone-else");
    assert_eq!(
        claims(&second.str("access_token"))["sub"],
        sub,
        "only the ID token changes"
    );

    provider.set_refresh_subject(None);
    let third = refresh(&provider, &second.str("refresh_token")).await;
    assert_eq!(claims(&third.str("id_token"))["sub"], sub);
}

/// RFC 7009 at `/revoke`: the client authenticates as at the token
/// endpoint; a revoked refresh token (and its login's other tokens) stops
/// working; an unknown token is answered 200 too.
#[tokio::test]
async fn the_revocation_endpoint_revokes_a_login() {
    let provider = provider().await;
    let first = login(&provider, OFFLINE).await;
    let rt = first.str("refresh_token");
    let revoke_url = format!("{}/revoke", provider.issuer());
    let discovery: serde_json::Value = client()
        .get(provider.discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["revocation_endpoint"], revoke_url.as_str());
    let form = |token: &str, secret: &str| {
        format!(
            "token={token}&token_type_hint=refresh_token&client_id={}&client_secret={secret}",
            provider.client_id()
        )
    };
    let send = |body: String| {
        client()
            .post(&revoke_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let refused = send(form(&rt, "wrong")).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(provider.revocation_count(), 0);
    let unknown = send(form("unknown", provider.client_secret()))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 200);
    assert_eq!(provider.revocation_count(), 0);
    let revoked = send(form(&rt, provider.client_secret())).await.unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(provider.revocation_count(), 1);
    refresh(&provider, &rt).await.assert_error("invalid_grant");
}

/// A provider that lists only `client_secret_post` refuses HTTP Basic, and
/// one that lists nothing leaves the field out of discovery.
#[tokio::test]
async fn only_the_announced_client_authentication_methods_are_accepted() {
    let post_only = portcullis_testing::MockProvider::start_with(
        super::options().token_endpoint_auth_methods(Some(&["client_secret_post"])),
    )
    .await
    .unwrap();
    let form = "grant_type=client_credentials";
    let basic = client()
        .post(format!("{}/token", post_only.issuer()))
        .header(
            "authorization",
            super::basic_header(post_only.client_id(), post_only.client_secret()),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    let silent =
        portcullis_testing::MockProvider::start_with(super::options().like_easy_oauth_mock())
            .await
            .unwrap();
    let doc: serde_json::Value = client()
        .get(silent.discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc.get("token_endpoint_auth_methods_supported").is_none(),
        "{doc}"
    );
}
