//! Against moto's server: AWS Secrets Manager's and Cognito's real wire
//! protocols (SigV4-signed JSON requests, Cognito-issued tokens and the
//! pools' JWKS).

use std::sync::Arc;

use portcullis_core::automation::{AutomationConfig, AutomationPrincipals};
use portcullis_core::clock::ManualClock;
use portcullis_core::{PrincipalKind, TokenKind, TokenRejection};
use portcullis_smac::aws::AwsSettings;
use portcullis_smac::config::SmacConfig;
use portcullis_smac::secretsmanager::SecretsManager;
use portcullis_testing::{MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY, MotoServer};
use serde_json::json;

use super::{env, headers};

const TOKEN: &str = "reporter-token-7a6b5c4d3e2f";

async fn put_secret(moto: &MotoServer, name: &str, text: &str) {
    let (status, answer) = moto
        .call(
            "secretsmanager",
            "secretsmanager.CreateSecret",
            &json!({"Name": name, "SecretString": text}),
        )
        .await
        .unwrap();
    if status != 200 {
        let (status, answer) = moto
            .call(
                "secretsmanager",
                "secretsmanager.PutSecretValue",
                &json!({"SecretId": name, "SecretString": text}),
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{answer}");
    } else {
        assert!(answer["ARN"].is_string(), "{answer}");
    }
}

fn aws_env(moto: &MotoServer) -> std::collections::HashMap<String, String> {
    let endpoint = moto.endpoint();
    env(&[
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", MOTO_ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", MOTO_SECRET_ACCESS_KEY),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("HOME", "/nonexistent"),
    ])
}

/// Automation principals over moto's Secrets Manager, on a manual clock.
fn principals(moto: &MotoServer, clock: &ManualClock) -> AutomationPrincipals {
    let env = aws_env(moto);
    let settings = AwsSettings::resolve(&env, None, None).unwrap();
    let source = SecretsManager::new(settings, &env).unwrap();
    assert_eq!(source.endpoint(), moto.endpoint());
    AutomationPrincipals::with_clock(
        AutomationConfig::default().with_common_prefix("svc/"),
        Arc::new(source),
        Arc::new(clock.clone()),
    )
    .unwrap()
}

#[tokio::test]
async fn secrets_manager_automation_principals() {
    let mut moto = MotoServer::start().await.unwrap();
    put_secret(
        &moto,
        "svc/reporter",
        &json!({"token": TOKEN, "id": "reports@example.com"}).to_string(),
    )
    .await;
    let clock = ManualClock::starting_now();
    let p = principals(&moto, &clock);

    // Accepted, known by the secret's id.
    let caller = p.authenticate("reporter", TOKEN).await.unwrap();
    assert_eq!(caller.user_id(), "reports@example.com");
    assert_eq!(caller.principal_kind(), PrincipalKind::Automation);
    assert_eq!(caller.issuer(), "aws-secretsmanager:us-east-1");
    assert_eq!(p.reads(), 1);

    // A wrong token: 401, the secret read no more than once per interval.
    let e = p.authenticate("reporter", "guess").await.unwrap_err();
    assert_eq!(e.rejection(), Some(TokenRejection::InvalidPrincipal));
    assert_eq!(p.reads(), 1);

    // An unknown id: one AWS call however many requests.
    for _ in 0..25 {
        let e = p.authenticate("ghost", TOKEN).await.unwrap_err();
        assert_eq!(e.rejection(), Some(TokenRejection::InvalidPrincipal));
    }
    assert_eq!(p.reads(), 2);

    // Rotated with PutSecretValue: the new token is in force at once for
    // a caller presenting it (past the re-read interval), the old one no more.
    let rotated = "reporter-token-rotated-99aa88bb";
    put_secret(
        &moto,
        "svc/reporter",
        &json!({"token": rotated, "id": "reports@example.com"}).to_string(),
    )
    .await;
    clock.advance_secs(31);
    p.authenticate("reporter", rotated).await.unwrap();
    assert_eq!(
        p.authenticate("reporter", TOKEN)
            .await
            .unwrap_err()
            .status(),
        401
    );

    // A secret that is not {"token", "id"}: 502.
    put_secret(&moto, "svc/broken", "token=abc;id=def").await;
    let e = p.authenticate("broken", "abc").await.unwrap_err();
    assert_eq!(e.status(), 502);
    assert!(e.message().contains("svc/broken"));

    // A second principal read once before the outage.
    put_secret(
        &moto,
        "svc/indexer",
        &json!({"token": "indexer-token-0011223344", "id": "indexer@example.com"}).to_string(),
    )
    .await;
    put_secret(
        &moto,
        "svc/never-read",
        &json!({"token": "never-read-token-5566", "id": "late@example.com"}).to_string(),
    )
    .await;
    p.authenticate("indexer", "indexer-token-0011223344")
        .await
        .unwrap();

    // Secrets Manager down: what was read serves, what never was is 503.
    moto.stop().await;
    p.authenticate("indexer", "indexer-token-0011223344")
        .await
        .unwrap();
    clock.advance_secs(301);
    // Due for refresh: still served (the background read fails).
    p.authenticate("indexer", "indexer-token-0011223344")
        .await
        .unwrap();
    let e = p
        .authenticate("never-read", "never-read-token-5566")
        .await
        .unwrap_err();
    assert_eq!(e.status(), 503);
    // Past the stale limit: 503, never a pass.
    clock.advance_secs(3601);
    let e = p
        .authenticate("indexer", "indexer-token-0011223344")
        .await
        .unwrap_err();
    assert_eq!(e.status(), 503);
}

/// A user pool with an app client and a user whose email is verified;
/// answers the pool id, the client id and the user's ID and access tokens.
async fn pool_with_user(
    moto: &MotoServer,
    name: &str,
    email: &str,
) -> (String, String, String, String) {
    let call = |target: &'static str, body: serde_json::Value| async move {
        let (status, answer) = moto
            .call(
                "cognito-idp",
                &format!("AWSCognitoIdentityProviderService.{target}"),
                &body,
            )
            .await
            .unwrap();
        assert_eq!(status, 200, "{target}: {answer}");
        answer
    };
    let pool = call("CreateUserPool", json!({"PoolName": name})).await["UserPool"]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = call(
        "CreateUserPoolClient",
        json!({
            "UserPoolId": pool,
            "ClientName": "app",
            "ExplicitAuthFlows": ["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        }),
    )
    .await["UserPoolClient"]["ClientId"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        "AdminCreateUser",
        json!({
            "UserPoolId": pool,
            "Username": "alice",
            "UserAttributes": [
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
            ],
            "MessageAction": "SUPPRESS",
        }),
    )
    .await;
    call(
        "AdminSetUserPassword",
        json!({"UserPoolId": pool, "Username": "alice", "Password": "Passw0rd!-long-enough", "Permanent": true}),
    )
    .await;
    let auth = call(
        "AdminInitiateAuth",
        json!({
            "UserPoolId": pool,
            "ClientId": client,
            "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": "alice", "PASSWORD": "Passw0rd!-long-enough"},
        }),
    )
    .await;
    let result = &auth["AuthenticationResult"];
    (
        pool,
        client,
        result["IdToken"].as_str().unwrap().to_owned(),
        result["AccessToken"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn cognito_pools_of_moto() {
    let moto = MotoServer::start().await.unwrap();
    let (p1, c1, id1, access1) = pool_with_user(&moto, "primary", "alice@example.com").await;
    let (p2, c2, id2, _) = pool_with_user(&moto, "secondary", "alice@example.com").await;
    let (_p3, _c3, id3, _) = pool_with_user(&moto, "third", "alice@example.com").await;
    let mut pairs = aws_env(&moto);
    for (k, v) in [
        ("SMAC__AUTH__PROVIDER", "COGNITO"),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__REGION",
            "us-east-1",
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__USERPOOL_ID",
            p1.as_str(),
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__APP_CLIENT_ID",
            c1.as_str(),
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__SECONDARY__REGION",
            "us-east-1",
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__SECONDARY__USERPOOL_ID",
            p2.as_str(),
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__SECONDARY__APP_CLIENT_ID",
            c2.as_str(),
        ),
    ] {
        pairs.insert(k.to_owned(), v.to_owned());
    }
    // moto's ID tokens carry `cognito:username` but no email (the mock
    // provider's Cognito mode covers the default `email`): the default
    // USER_ID names no user in them.
    let by_email = SmacConfig::from_env(pairs.iter()).unwrap();
    let auth = portcullis_smac::authenticator(&by_email, &pairs).unwrap();
    assert!(auth.automation().is_none());
    let value = format!("Bearer {id1}");
    let e = auth
        .authenticate(headers(&[("authorization", value.as_str())]))
        .await
        .unwrap_err();
    assert_eq!(e.rejection(), Some(TokenRejection::MissingClaim));
    pairs.insert(
        "SMAC__AUTH__USER_ID".to_owned(),
        "cognito:username".to_owned(),
    );
    let config = SmacConfig::from_env(pairs.iter()).unwrap();
    let auth = portcullis_smac::authenticator(&config, &pairs).unwrap();
    let check = |token: String| {
        let auth = auth.clone();
        async move {
            let value = format!("Bearer {token}");
            auth.authenticate(headers(&[("authorization", value.as_str())]))
                .await
                .map(|c| c.unwrap().principal)
        }
    };
    // ID tokens of both pools, checked against each pool's app client.
    for (id, pool) in [(id1, &p1), (id2, &p2)] {
        let p = check(id).await.unwrap();
        assert_eq!(p.user_id(), "alice");
        assert_eq!(p.token_kind(), TokenKind::Id);
        assert!(p.issuer().ends_with(pool.as_str()));
    }
    // A third pool's token: refused.
    assert_eq!(
        check(id3).await.unwrap_err().rejection(),
        Some(TokenRejection::UnknownIssuer)
    );
    // An access token has `username`, not `cognito:username`.
    assert_eq!(
        check(access1.clone()).await.unwrap_err().rejection(),
        Some(TokenRejection::MissingClaim)
    );
    pairs.insert("SMAC__AUTH__USER_ID".to_owned(), "username".to_owned());
    let by_name = SmacConfig::from_env(pairs.iter()).unwrap();
    let auth = portcullis_smac::authenticator(&by_name, &pairs).unwrap();
    let value = format!("Bearer {access1}");
    let caller = auth
        .authenticate(headers(&[("authorization", value.as_str())]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(caller.principal.user_id(), "alice");
    assert_eq!(caller.principal.token_kind(), TokenKind::Access);
}

/// The text between `<tag>` and `</tag>` in `xml`.
fn xml_value(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml.find(&open).expect("the tag is there") + open.len();
    let end = xml[start..].find('<').expect("the tag closes") + start;
    xml[start..end].to_owned()
}

#[tokio::test]
async fn moto_checks_the_signatures() {
    // Four unchecked requests set up an IAM user, its key, its policy and
    // the secret; every later request must be signed with that key.
    let moto = MotoServer::start_checking_signatures_after(Some(4))
        .await
        .unwrap();
    let iam = |params: Vec<(&'static str, String)>| {
        let moto = &moto;
        async move {
            let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, xml) = moto.call_query("iam", &pairs).await.unwrap();
            assert_eq!(status, 200, "{xml}");
            xml
        }
    };
    let version = ("Version", "2010-05-08".to_owned());
    iam(vec![
        ("Action", "CreateUser".into()),
        ("UserName", "svc".into()),
        version.clone(),
    ])
    .await;
    let key = iam(vec![
        ("Action", "CreateAccessKey".into()),
        ("UserName", "svc".into()),
        version.clone(),
    ])
    .await;
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
    ]});
    iam(vec![
        ("Action", "PutUserPolicy".into()),
        ("UserName", "svc".into()),
        ("PolicyName", "read-secrets".into()),
        ("PolicyDocument", policy.to_string()),
        version,
    ])
    .await;
    put_secret(
        &moto,
        "svc/reporter",
        &json!({"token": TOKEN, "id": "reports@example.com"}).to_string(),
    )
    .await;
    let id = xml_value(&key, "AccessKeyId");
    let secret = xml_value(&key, "SecretAccessKey");
    let with_key = |secret: &str| {
        let mut env = aws_env(&moto);
        env.insert("AWS_ACCESS_KEY_ID".to_owned(), id.clone());
        env.insert("AWS_SECRET_ACCESS_KEY".to_owned(), secret.to_owned());
        let settings = AwsSettings::resolve(&env, None, None).unwrap();
        AutomationPrincipals::new(
            AutomationConfig::default().with_common_prefix("svc/"),
            Arc::new(SecretsManager::new(settings, &env).unwrap()),
        )
        .unwrap()
    };
    let signed = with_key(&secret);
    let caller = signed.authenticate("reporter", TOKEN).await.unwrap();
    assert_eq!(caller.user_id(), "reports@example.com");
    // Signed with another secret key: moto refuses the signature, so the
    // secret was never read: 503, never a pass.
    let forged = with_key("not-the-secret-key-of-this-user");
    let e = forged.authenticate("reporter", TOKEN).await.unwrap_err();
    assert_eq!(e.status(), 503);
}
