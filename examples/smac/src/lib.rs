//! SMAC's scenario on axum: `GET /whoami` answers who the caller is, a
//! user of a Cognito user pool or an automation principal whose secret is
//! in AWS Secrets Manager; 401 for anyone else.
//!
//! The binary is configured by SMAC's `SMAC__AUTH__*` variables and the
//! standard `AWS_*` ones alone ([`from_env`]); with no `SMAC__AUTH__`
//! variable it runs the demonstration ([`demo`]): the mock provider in
//! Cognito mode and an in-process secret store, with ready `curl` lines.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use portcullis_axum::{AuthLayer, Caller};
use portcullis_core::automation::MemorySecrets;
use portcullis_core::{Authenticator, TokenKind};
use portcullis_smac::config::{PREFIX, SmacConfig};
use portcullis_testing::MockProvider;
use serde_json::json;

/// The application around `auth`.
pub fn app(auth: Authenticator) -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .layer(AuthLayer::new(auth))
}

/// `{"id", "kind", "issuer"}` of the caller (401 without one).
async fn whoami(Caller(caller): Caller) -> axum::Json<serde_json::Value> {
    let p = &caller.principal;
    axum::Json(json!({
        "id": p.user_id(),
        "kind": p.principal_kind().as_str(),
        "issuer": p.issuer(),
    }))
}

/// Whether `env` holds any `SMAC__AUTH__` variable.
pub fn is_configured(env: &HashMap<String, String>) -> bool {
    env.keys()
        .any(|k| k.to_ascii_uppercase().starts_with(PREFIX))
}

/// The authenticator `env` configures (SMAC's variables, the `AWS_*` ones).
///
/// # Errors
///
/// The configuration's error, naming the variable.
pub fn from_env(env: &HashMap<String, String>) -> anyhow::Result<Authenticator> {
    let config = SmacConfig::from_env(env.iter())?;
    Ok(portcullis_smac::authenticator(&config, env)?)
}

/// The demonstration's user pool.
pub const DEMO_POOL: &str = "eu-west-1_Demo0001";
/// The demonstration's automation principal, as it presents itself.
pub const DEMO_PRINCIPAL: &str = "nightly-report";

/// The demonstration: the mock provider in Cognito mode, a secret store in
/// this process, the authenticator over both, and what to try.
#[derive(Debug)]
pub struct Demo {
    /// The mock provider (keep it alive).
    pub provider: MockProvider,
    /// The in-process secret store.
    pub secrets: MemorySecrets,
    /// The authenticator.
    pub auth: Authenticator,
    /// An ID token of alice, valid one hour.
    pub user_token: String,
    /// The automation principal's token.
    pub automation_token: String,
}

/// Starts the demonstration: the same SMAC configuration a deployment
/// gives, pointed at the mock provider through `AWS_ENDPOINT_URL`.
///
/// # Errors
///
/// When the provider cannot start or the configuration is refused.
pub async fn demo() -> anyhow::Result<Demo> {
    let provider = MockProvider::start().await?;
    let endpoint = provider.cognito_endpoint();
    let client = provider.client_id().to_owned();
    let env: HashMap<String, String> = [
        ("SMAC__AUTH__PROVIDER", "COGNITO"),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__REGION",
            "eu-west-1",
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__USERPOOL_ID",
            DEMO_POOL,
        ),
        (
            "SMAC__AUTH__PROVIDER_COGNITO__USERPOOLS__PRIMARY__APP_CLIENT_ID",
            client.as_str(),
        ),
        (
            "SMAC__AUTH__AUTOMATION_PRINCIPALS__SECRETS_MANAGER__COMMON_PREFIX",
            "services/",
        ),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = SmacConfig::from_env(env.iter())?;
    let secrets = MemorySecrets::new();
    let automation_token = portcullis_testing::conformance::random_secret_key();
    secrets.put(
        format!("services/{DEMO_PRINCIPAL}"),
        json!({"token": automation_token, "id": "reports@example.com"}).to_string(),
    );
    let auth = portcullis_smac::authenticator_with(
        &config,
        &env,
        Some(Arc::new(secrets.clone())),
        portcullis_core::clock::system(),
    )?;
    let user_token = provider
        .token()
        .cognito("eu-west-1", DEMO_POOL)
        .kind(TokenKind::Id)
        .email("alice@example.com")
        .groups(["readers"])
        .expires_in(3600)
        .sign();
    Ok(Demo {
        provider,
        secrets,
        auth,
        user_token,
        automation_token,
    })
}

/// The `curl` lines of the demonstration.
pub fn instructions(demo: &Demo, addr: SocketAddr) -> String {
    format!(
        "mock Cognito endpoint: {} (user pool {DEMO_POOL})\n\
         curl -i http://{addr}/whoami                                  # 401\n\
         curl -H 'Authorization: Bearer {}' http://{addr}/whoami   # a user\n\
         curl -H 'SMAC-Principal: {DEMO_PRINCIPAL}' -H 'SMAC-Token: {}' http://{addr}/whoami   # an automation principal\n",
        demo.provider.cognito_endpoint(),
        demo.user_token,
        demo.automation_token,
    )
}
