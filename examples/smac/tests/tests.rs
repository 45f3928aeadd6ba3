//! example-smac's scenario: the demonstration's users and automation
//! principals, and the configuration read from SMAC's variables.

use std::collections::HashMap;

use portcullis_core::TokenKind;
use portcullis_testing::MockProvider;
use serde_json::json;

/// Serves `auth`'s application on a loopback port; answers its base URL.
async fn serve(auth: portcullis_core::Authenticator) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, example_smac::app(auth))
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

async fn whoami(base: &str, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().get(format!("{base}/whoami"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let resp = request.send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

#[tokio::test]
async fn the_demonstration_serves_a_user_and_an_automation_principal() {
    let demo = example_smac::demo().await.unwrap();
    let base = serve(demo.auth.clone()).await;
    let lines = example_smac::instructions(&demo, "127.0.0.1:8000".parse().unwrap());
    assert!(lines.contains(&demo.user_token) && lines.contains(&demo.automation_token));

    let bearer = format!("Bearer {}", demo.user_token);
    let (status, body) = whoami(&base, &[("authorization", &bearer)]).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({
            "id": "alice@example.com",
            "kind": "user",
            "issuer": format!("https://cognito-idp.eu-west-1.amazonaws.com/{}", example_smac::DEMO_POOL),
        })
    );
    let (status, body) = whoami(
        &base,
        &[
            ("SMAC-Principal", example_smac::DEMO_PRINCIPAL),
            ("SMAC-Token", &demo.automation_token),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"id": "reports@example.com", "kind": "automation", "issuer": "memory"})
    );
    for headers in [
        vec![],
        vec![
            ("SMAC-Principal", example_smac::DEMO_PRINCIPAL),
            ("SMAC-Token", "wrong"),
        ],
        vec![("authorization", "Bearer not.a.token")],
    ] {
        let (status, _) = whoami(&base, &headers).await;
        assert_eq!(status, 401, "{headers:?}");
    }
}

#[tokio::test]
async fn smac_variables_alone_configure_it() {
    let provider = MockProvider::start().await.unwrap();
    let env: HashMap<String, String> = [
        ("SMAC__AUTH__PROVIDER", "COGNITO"),
        ("SMAC__AUTH__USER_ID", "cognito:username"),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__REGION",
            "us-east-1",
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__USERPOOL_ID",
            "us-east-1_Env00001",
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__APP_CLIENT_ID",
            provider.client_id(),
        ),
        ("AWS_ENDPOINT_URL", &provider.cognito_endpoint()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert!(example_smac::is_configured(&env));
    let base = serve(example_smac::from_env(&env).unwrap()).await;
    let token = provider
        .token()
        .cognito("us-east-1", "us-east-1_Env00001")
        .kind(TokenKind::Id)
        .username("bob")
        .sign();
    let bearer = format!("Bearer {token}");
    let (status, body) = whoami(&base, &[("authorization", &bearer)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], "bob");
    assert_eq!(body["kind"], "user");
    // Automation principals are off: their headers are no credentials.
    let (status, _) = whoami(&base, &[("SMAC-Principal", "x"), ("SMAC-Token", "y")]).await;
    assert_eq!(status, 401);
    // A refused configuration names the variable.
    let mut bad = env.clone();
    bad.insert(
        "SMAC__AUTH__PROVIDER_COGNITO__CHECK_EXPIRATION".to_owned(),
        "False".to_owned(),
    );
    let e = example_smac::from_env(&bad).unwrap_err();
    assert!(e.to_string().contains("CHECK_EXPIRATION"), "{e}");
}
