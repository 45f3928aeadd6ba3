//! The discovery document's login-flow metadata.

use portcullis_testing::MockProvider;
use serde_json::json;

use super::{AuthRequest, options};
use crate::get_json;

#[tokio::test]
async fn discovery_advertises_the_login_flow() {
    let provider = MockProvider::start_with(options()).await.unwrap();
    let issuer = provider.issuer();
    let doc = get_json(&provider.discovery_url()).await;
    assert_eq!(doc["authorization_endpoint"], format!("{issuer}/authorize"));
    assert_eq!(doc["authorization_endpoint"], provider.authorize_url());
    assert_eq!(doc["token_endpoint"], provider.token_url());
    assert_eq!(doc["userinfo_endpoint"], format!("{issuer}/userinfo"));
    assert_eq!(doc["userinfo_endpoint"], provider.userinfo_url());
    assert_eq!(doc["end_session_endpoint"], format!("{issuer}/logout"));
    assert_eq!(doc["end_session_endpoint"], provider.logout_url());
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["subject_types_supported"], json!(["public"]));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    assert_eq!(
        doc["grant_types_supported"],
        json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(
        doc["scopes_supported"],
        json!(["openid", "email", "profile", "offline_access"])
    );
    let claims = doc["claims_supported"]
        .as_array()
        .expect("claims_supported");
    for claim in [
        "sub",
        "iss",
        "email",
        "email_verified",
        "nonce",
        "auth_time",
    ] {
        assert!(
            claims.contains(&json!(claim)),
            "claims_supported has {claim}"
        );
    }
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
}

#[tokio::test]
async fn iss_parameter_can_be_turned_off() {
    let provider = MockProvider::start_with(options().iss_parameter(false))
        .await
        .unwrap();
    let doc = get_json(&provider.discovery_url()).await;
    assert_eq!(
        doc["authorization_response_iss_parameter_supported"], false,
        "the metadata flag follows the option"
    );

    let success = AuthRequest::new(&provider).redirected(&provider).await;
    assert!(success.contains_key("code"), "{success:?}");
    assert!(
        !success.contains_key("iss"),
        "no iss on success: {success:?}"
    );

    let failure = AuthRequest::new(&provider)
        .set("scope", "email")
        .redirected(&provider)
        .await;
    assert_eq!(failure["error"], "invalid_scope");
    assert!(
        !failure.contains_key("iss"),
        "no iss on errors: {failure:?}"
    );
}
