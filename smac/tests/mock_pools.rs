//! Cognito pools through the mock provider's Cognito mode, automation
//! principals through an in-process secret store: nothing installed.

use std::sync::Arc;

use portcullis_core::automation::MemorySecrets;
use portcullis_core::{Authenticator, PrincipalKind, TokenKind, TokenRejection};
use portcullis_smac::authenticator_with;
use portcullis_smac::config::SmacConfig;
use portcullis_testing::MockProvider;

use super::{env, headers};

const PRIMARY: &str = "eu-west-1_Primary1";
const SECONDARY: &str = "us-east-1_Second22";

async fn setup(extra: &[(&str, &str)]) -> (MockProvider, MemorySecrets, Authenticator) {
    let provider = MockProvider::start().await.unwrap();
    let endpoint = provider.cognito_endpoint();
    let client = provider.client_id().to_owned();
    let mut pairs = vec![
        ("SMAC__AUTH__PROVIDER", "COGNITO"),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__REGION",
            "eu-west-1",
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__USERPOOL_ID",
            PRIMARY,
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__APP_CLIENT_ID",
            client.as_str(),
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__SECONDARY__REGION",
            "us-east-1",
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__SECONDARY__USERPOOL_ID",
            SECONDARY,
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__SECONDARY__APP_CLIENT_ID",
            client.as_str(),
        ),
        (
            "SMAC__AUTH__AUTOMATION_PRINCIPALS__SECRETS_MANAGER__COMMON_PREFIX",
            "svc/",
        ),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
    ];
    pairs.extend_from_slice(extra);
    let env = env(&pairs);
    let config = SmacConfig::from_env(env.iter()).unwrap();
    let secrets = MemorySecrets::new();
    secrets.put(
        "svc/reporter",
        r#"{"token": "reporter-token-1f2e3d4c5b6a", "id": "reports@example.com"}"#,
    );
    let auth = authenticator_with(
        &config,
        &env,
        Some(Arc::new(secrets.clone())),
        Arc::new(provider.clock()),
    )
    .unwrap();
    (provider, secrets, auth)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn id_tokens_of_both_pools_are_users_named_by_email_and_a_third_pool_is_refused() {
    let (provider, _s, auth) = setup(&[]).await;
    for (region, pool) in [("eu-west-1", PRIMARY), ("us-east-1", SECONDARY)] {
        let token = provider
            .token()
            .cognito(region, pool)
            .kind(TokenKind::Id)
            .email("alice@example.com")
            .groups(["admins", "readers"])
            .sign();
        let value = bearer(&token);
        let caller = auth
            .authenticate(headers(&[("authorization", value.as_str())]))
            .await
            .unwrap()
            .unwrap();
        let p = &caller.principal;
        assert_eq!(p.user_id(), "alice@example.com");
        assert_eq!(p.principal_kind(), PrincipalKind::User);
        assert_eq!(
            p.issuer(),
            format!("https://cognito-idp.{region}.amazonaws.com/{pool}")
        );
        assert_eq!(p.cognito_groups(), ["admins", "readers"]);
        assert_eq!(p.token_kind(), TokenKind::Id);
    }
    let third = provider
        .token()
        .cognito("eu-west-1", "eu-west-1_Third333")
        .kind(TokenKind::Id)
        .email("alice@example.com")
        .sign();
    let value = bearer(&third);
    let e = auth
        .authenticate(headers(&[("authorization", value.as_str())]))
        .await
        .unwrap_err();
    assert_eq!(e.rejection(), Some(TokenRejection::UnknownIssuer));
    // The keys came from the endpoint override, under each pool's id.
    assert!(provider.request_count(&format!("/{PRIMARY}/.well-known/jwks.json")) >= 1);
    assert!(provider.request_count(&format!("/{SECONDARY}/.well-known/jwks.json")) >= 1);
}

#[tokio::test]
async fn access_tokens_are_checked_by_client_id_and_token_use() {
    let (provider, _s, auth) = setup(&[("SMAC__AUTH__USER_ID", "username")]).await;
    let check = |token: String| {
        let auth = auth.clone();
        async move {
            let value = bearer(&token);
            auth.authenticate(headers(&[("authorization", value.as_str())]))
                .await
                .map(|c| c.unwrap().principal)
        }
    };
    let access = provider
        .token()
        .cognito("eu-west-1", PRIMARY)
        .username("alice")
        .sign();
    let p = check(access).await.unwrap();
    assert_eq!(p.user_id(), "alice");
    assert_eq!(p.token_kind(), TokenKind::Access);
    // Another app client's access token.
    let other = provider
        .token()
        .cognito("eu-west-1", PRIMARY)
        .claim("client_id", serde_json::json!("another-client"))
        .sign();
    assert_eq!(
        check(other).await.unwrap_err().rejection(),
        Some(TokenRejection::WrongAudience)
    );
    // An ID token for another app client.
    let id = provider
        .token()
        .cognito("eu-west-1", PRIMARY)
        .kind(TokenKind::Id)
        .audience("another-client")
        .claim("username", serde_json::json!("alice"))
        .sign();
    assert_eq!(
        check(id).await.unwrap_err().rejection(),
        Some(TokenRejection::WrongAudience)
    );
    // A token_use Cognito does not issue.
    let refresh = provider
        .token()
        .cognito("eu-west-1", PRIMARY)
        .claim("token_use", serde_json::json!("refresh"))
        .sign();
    assert!(check(refresh).await.is_err());
    // Expired: refused whatever CHECK_EXPIRATION says (False is refused at start-up).
    let expired = provider
        .token()
        .cognito("eu-west-1", PRIMARY)
        .username("alice")
        .expires_in(-600)
        .sign();
    assert_eq!(
        check(expired).await.unwrap_err().rejection(),
        Some(TokenRejection::Expired)
    );
}

#[tokio::test]
async fn access_tokens_carry_no_email_so_the_default_user_id_refuses_them() {
    let (provider, _s, auth) = setup(&[]).await;
    let access = provider.token().cognito("eu-west-1", PRIMARY).sign();
    let value = bearer(&access);
    let e = auth
        .authenticate(headers(&[("authorization", value.as_str())]))
        .await
        .unwrap_err();
    assert_eq!(e.rejection(), Some(TokenRejection::MissingClaim));
}

#[tokio::test]
async fn the_jwt_header_name_and_prefix_are_as_configured() {
    let (provider, _s, auth) = setup(&[
        (
            "SMAC__AUTH__PROVIDER_COGNITO__JWT_HEADER_NAME",
            "X-Cognito-Token",
        ),
        ("SMAC__AUTH__PROVIDER_COGNITO__JWT_HEADER_PREFIX", "JWT"),
    ])
    .await;
    let token = provider
        .token()
        .cognito("eu-west-1", PRIMARY)
        .kind(TokenKind::Id)
        .email("alice@example.com")
        .sign();
    let value = format!("JWT {token}");
    let caller = auth
        .authenticate(headers(&[("x-cognito-token", value.as_str())]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(caller.principal.user_id(), "alice@example.com");
    // The standard header is not read.
    let bearer_value = bearer(&token);
    assert!(
        auth.authenticate(headers(&[("authorization", bearer_value.as_str())]))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn automation_principals_and_users_share_the_authenticator() {
    let (_p, secrets, auth) = setup(&[
        (
            "SMAC__AUTH__AUTOMATION_PRINCIPALS__ID_HEADER_NAME",
            "X-Principal",
        ),
        (
            "SMAC__AUTH__AUTOMATION_PRINCIPALS__TOKEN_HEADER_NAME",
            "X-Principal-Token",
        ),
    ])
    .await;
    let caller = auth
        .authenticate(headers(&[
            ("x-principal", "reporter"),
            ("x-principal-token", "reporter-token-1f2e3d4c5b6a"),
        ]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(caller.principal.user_id(), "reports@example.com");
    assert_eq!(caller.principal.principal_kind(), PrincipalKind::Automation);
    for _ in 0..10 {
        let e = auth
            .authenticate(headers(&[
                ("x-principal", "ghost"),
                ("x-principal-token", "x"),
            ]))
            .await
            .unwrap_err();
        assert_eq!(e.status(), 401);
    }
    assert_eq!(secrets.reads(), 2);
}
