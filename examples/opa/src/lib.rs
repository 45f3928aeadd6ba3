//! fastapi-opa's scenario with portcullis, on axum: users log in with
//! OpenID Connect, and a Rego policy decides about every request.
//!
//! Routes:
//! - `GET /public`: anyone, guests included;
//! - `GET /finance/salary/{user}`: answers `salary of {user}`; a user reads
//!   their own, members of the `finance` group read anyone's;
//! - `POST /records`: members of `finance`;
//! - `GET /login`, `/auth`, `/logout` (the login flow, on the skip list)
//!   and portcullis' other login routes (decided like the rest).
//!
//! The policy (`policies/authz.rego`) is fastapi-opa's README policy in
//! Rego v1, on fastapi-opa's input (the caller's claims at the top level,
//! `request_method`, `request_path`); `policies/authz_test.rego` holds its
//! tests, which `cargo test` runs. It is evaluated in the process by the
//! embedded engine, reloaded when a file changes; `POLICY__ENGINE=opa` and
//! `POLICY__URL=...` ask an OPA server instead.
//!
//! A refusal is 401 with a challenge for a guest, 403 with a JSON body for
//! a user, and 503 when the policy engine cannot decide; never a pass.

use std::path::PathBuf;

use axum::Router;
use axum::extract::Path;
use axum::routing::{get, post};
use portcullis_axum::portcullis_core::Error;
use portcullis_axum::portcullis_core::config;
use portcullis_axum::portcullis_oidc::{OidcConfig, RelyingParty};
use portcullis_axum::portcullis_policy::{Guests, Policy, PolicyConfig};
use portcullis_axum::{AuthLayer, login_routes};

/// The configuration file of this example (the main example's format):
/// see `config.example.yaml`.
pub type ExampleConfig = OidcConfig;

/// The configuration file the example ships, `config.example.yaml`.
pub const CONFIG_FILE: &str = include_str!("../config.example.yaml");

/// The user file the example ships, `caps.yaml` (the policy decides; no
/// one holds more than the default).
pub const USER_FILE: &str = include_str!("../caps.yaml");

/// The policy directory the example ships.
pub fn policy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// The policy configuration: the embedded engine over [`policy_dir`],
/// fastapi-opa's input, guests decided by the policy, the login flow's
/// routes skipped; `POLICY__*` environment variables
/// (`POLICY__ENGINE=opa`, `POLICY__URL=...`) replace it.
///
/// # Errors
///
/// A `POLICY__*` configuration that does not load.
pub fn policy_config(
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<PolicyConfig, Error> {
    let env = config::env_overrides("POLICY", env);
    if env.is_empty() {
        return Ok(PolicyConfig::rego(policy_dir())
            .with_guests(Guests::Policy)
            .with_skip(["/login", "/auth", "/logout"]));
    }
    config::load_from_env(&env)
}

/// The application around a relying party and a policy.
///
/// # Errors
///
/// A policy that would read a header the authenticator reads tokens from.
pub fn app(rp: RelyingParty, policy: Policy) -> Result<Router, Error> {
    // `Router::layer`, inside the router: the policy sees each request
    // after axum has matched its route.
    Ok(Router::new()
        .route("/public", get(|| async { "public\n" }))
        .route("/finance/salary/{user}", get(salary))
        .route("/records", post(record))
        .merge(login_routes(rp.clone()))
        .layer(AuthLayer::for_login(rp).with_policy(policy)?))
}

async fn salary(Path(user): Path<String>) -> String {
    format!("salary of {user}")
}

async fn record(body: String) -> String {
    format!("recorded {} bytes\n", body.len())
}

/// Access tokens the mock provider mints for the demo's curl lines, valid
/// one hour: alice (a user) and frank (in the `finance` group).
pub fn demo_tokens(provider: &portcullis_testing::MockProvider) -> [String; 2] {
    let alice = provider
        .token()
        .subject("u-alice")
        .username("alice")
        .email("alice@example.com")
        .claim("groups", serde_json::json!(["staff"]))
        .expires_in(3600)
        .sign();
    let frank = provider
        .token()
        .subject("u-frank")
        .username("frank")
        .email("frank@example.com")
        .claim("groups", serde_json::json!(["finance"]))
        .expires_in(3600)
        .sign();
    [alice, frank]
}
