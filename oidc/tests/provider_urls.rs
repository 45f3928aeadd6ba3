//! Every URL the relying party finds by discovery (authorization, token,
//! userinfo, end-session, key set) is refused over plain HTTP off loopback,
//! unless `danger_allow_plain_http` says otherwise.

use axum::Router;
use portcullis_oidc::{OidcConfig, RelyingParty};
use portcullis_testing::conformance::random_secret_key;
use serde_json::{Value, json};

/// Serves a discovery document naming the server itself as the issuer and
/// `endpoints` (each `http://id.example.com/<name>` unless overridden);
/// answers the metadata URL.
async fn discovery(overrides: Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let mut doc = json!({
        "issuer": origin,
        "authorization_endpoint": "https://id.example.com/authorize",
        "token_endpoint": "https://id.example.com/token",
        "userinfo_endpoint": "https://id.example.com/userinfo",
        "end_session_endpoint": "https://id.example.com/logout",
        "jwks_uri": "https://id.example.com/jwks",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    for (k, v) in overrides.as_object().unwrap() {
        doc[k] = v.clone();
    }
    let body = doc.to_string();
    let app = Router::new().fallback(move || {
        let body = body.clone();
        async move { ([("content-type", "application/json")], body) }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("{origin}/.well-known/openid-configuration")
}

async fn login_status(metadata_url: String, danger_allow_plain_http: bool) -> (u16, String) {
    let mut config = OidcConfig::new(
        metadata_url,
        random_secret_key(),
        "client",
        "http://127.0.0.1:1",
    );
    config.danger_allow_plain_http = danger_allow_plain_http;
    let rp = RelyingParty::builder(config).build().await.unwrap();
    let headers: &[(&str, &str)] = &[];
    let reply = rp.login(None, headers).await;
    (
        reply.status,
        reply.header("location").unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn discovered_endpoints_must_be_https() {
    let (status, location) = login_status(discovery(json!({})).await, false).await;
    assert_eq!(status, 303);
    assert!(
        location.starts_with("https://id.example.com/authorize?"),
        "{location}"
    );
    for name in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "end_session_endpoint",
        "jwks_uri",
    ] {
        let plain = json!({ name: format!("http://id.example.com/{name}") });
        let (status, _) = login_status(discovery(plain.clone()).await, false).await;
        assert_eq!(status, 500, "{name} over plain HTTP is refused");
        let (status, _) = login_status(discovery(plain).await, true).await;
        assert_eq!(
            status, 303,
            "{name}: danger_allow_plain_http lets it through"
        );
    }
}
