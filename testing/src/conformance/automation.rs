//! Conformance cases for automation principals: an id and a token header
//! checked against a secret (core's `automation`), on the resource
//! application, with an in-process secret store.

use std::sync::Arc;

use portcullis_core::automation::{AutomationConfig, AutomationPrincipals, MemorySecrets};
use portcullis_core::{Authenticator, CredentialsConfig};

use super::{Adapter, assert_response_snapshot, resource_app};
use crate::{AppTester, MockProvider, TestClient};

/// The automation principal's presented id.
const ID: &str = "nightly-report";
/// Its token.
const TOKEN: &str = "nightly-report-token-6d1f0b57a4c2";

/// A resource application accepting automation principals whose secrets
/// live in `secrets` under `svc/`.
async fn automation_app(
    adapter: &dyn Adapter,
    secrets: &MemorySecrets,
) -> (MockProvider, AppTester, TestClient) {
    let provider = MockProvider::start()
        .await
        .expect("the mock provider starts");
    let principals = AutomationPrincipals::with_clock(
        AutomationConfig::default().with_common_prefix("svc/"),
        Arc::new(secrets.clone()),
        Arc::new(provider.clock()),
    )
    .expect("the automation configuration is valid");
    let auth = Authenticator::new(
        super::cases::verifier(&provider),
        CredentialsConfig::default(),
    )
    .with_automation(principals);
    let app = resource_app(adapter, &provider, auth);
    let client = app.client(None).await;
    (provider, app, client)
}

fn store() -> MemorySecrets {
    let secrets = MemorySecrets::new();
    secrets.put(
        format!("svc/{ID}"),
        serde_json::json!({"token": TOKEN, "id": "reports@example.com"}).to_string(),
    );
    secrets
}

/// An automation principal's id and token reach the handler as a caller
/// known by its secret's `id`, of kind `automation`.
pub async fn an_automation_principal_is_accepted(adapter: &dyn Adapter) {
    let secrets = store();
    let (provider, _app, client) = automation_app(adapter, &secrets).await;
    let me = client
        .get("/me")
        .header("SMAC-Principal", ID)
        .header("SMAC-Token", TOKEN)
        .expect(200)
        .await;
    let body = me.json();
    assert_eq!(body["user_id"], "reports@example.com");
    assert_eq!(body["kind"], "automation");
    assert_eq!(body["issuer"], "memory");
    assert_eq!(body["email"], serde_json::Value::Null);
    // Users still come in with their bearer tokens.
    let token = provider.token().subject("u-alice").sign();
    let user = client.get("/me").bearer(&token).expect(200).await.json();
    assert_eq!(user["kind"], "user");
    // One kind of credentials per request.
    let both = client
        .get("/me")
        .bearer(&token)
        .header("SMAC-Principal", ID)
        .header("SMAC-Token", TOKEN)
        .expect(400)
        .await;
    assert_response_snapshot("automation_and_bearer", &both);
    // An id without its token.
    client
        .get("/me")
        .header("SMAC-Principal", ID)
        .expect(400)
        .await;
    assert_eq!(secrets.reads(), 1);
}

/// A wrong token and an unknown id get the same 401, so the answer tells
/// no one which ids exist; the unknown id is read once however often it
/// comes.
pub async fn a_wrong_automation_token_or_unknown_id_is_401(adapter: &dyn Adapter) {
    let secrets = store();
    let (_p, _app, client) = automation_app(adapter, &secrets).await;
    let wrong = client
        .get("/me")
        .header("SMAC-Principal", ID)
        .header("SMAC-Token", "not-the-token")
        .expect(401)
        .await;
    assert_response_snapshot("automation_refused", &wrong);
    for _ in 0..5 {
        let unknown = client
            .get("/")
            .header("SMAC-Principal", "made-up")
            .header("SMAC-Token", TOKEN)
            .expect(401)
            .await;
        assert_response_snapshot("automation_refused", &unknown);
    }
    assert_eq!(secrets.reads(), 2);
}

/// A secret store that cannot be reached before the secret was ever read:
/// 503, never a pass.
pub async fn an_unreachable_secret_store_is_503(adapter: &dyn Adapter) {
    let secrets = store();
    secrets.set_unreachable(true);
    let (_p, _app, client) = automation_app(adapter, &secrets).await;
    let resp = client
        .get("/")
        .header("SMAC-Principal", ID)
        .header("SMAC-Token", TOKEN)
        .expect(503)
        .await;
    assert_response_snapshot("automation_store_unavailable", &resp);
}

/// A secret that is not `{"token", "id"}`: 502, the secret named in the
/// log only.
pub async fn a_malformed_automation_secret_is_502(adapter: &dyn Adapter) {
    let secrets = store();
    secrets.put(
        format!("svc/{ID}"),
        "token=nightly-report-token-6d1f0b57a4c2",
    );
    let (_p, _app, client) = automation_app(adapter, &secrets).await;
    let resp = client
        .get("/me")
        .header("SMAC-Principal", ID)
        .header("SMAC-Token", TOKEN)
        .expect(502)
        .await;
    assert!(!resp.text().contains(TOKEN));
    assert_response_snapshot("automation_secret_malformed", &resp);
}
