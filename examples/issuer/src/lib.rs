//! The seed's two halves in one application: an authorization server
//! (portcullis-issuer: discovery, JWKS, `/token`, `/revoke`, `/introspect`)
//! with a demo users file, and a resource server trusting it:
//!
//! | route | needs | answer |
//! |---|---|---|
//! | `GET /user` | a token | `Hello {username}` |
//! | `GET /user/write` | a token with scope `user:write` | `Hello {username}, you may write` |
//!
//! The resource server verifies tokens as any other service would: through
//! the issuer's URL (discovery, then its JWKS), or with the shared secret
//! for HS256.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use portcullis_axum::{AuthLayer, Caller, RequireScope, scope};
use portcullis_core::config::{IssuerConfig as VerifierIssuer, VerifierConfig};
use portcullis_core::{
    Algorithm, Authenticated, Authenticator, CredentialsConfig, Secret, TokenVerifier,
};
use portcullis_issuer::env::SeedEnv;
use portcullis_issuer::password::Argon2Users;
use portcullis_issuer::refresh::RefreshStore;
use portcullis_issuer::{ClientConfig, Issuer, IssuerConfig};

/// The demo users: `alice` / `alice-password` (`user:read user:write`),
/// `bob` / `bob-password` (`user:read`), as Argon2id hashes.
pub const USERS_FILE: &str = include_str!("../users.json");

/// The first-party client the demo's requests are taken for when they name
/// none (the seed's token form carries no client).
pub const CLIENT_ID: &str = "demo";

scope!(Write = "user:write");

fn username(caller: &Authenticated) -> String {
    caller
        .principal
        .claims()
        .get("username")
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| caller.principal.user_id())
        .to_owned()
}

async fn user(Caller(caller): Caller) -> String {
    format!("Hello {}", username(&caller))
}

async fn user_write(allowed: RequireScope<Write>) -> String {
    format!("Hello {}, you may write", username(&allowed.0))
}

/// What the example runs with.
#[derive(Debug, Default)]
pub struct Settings {
    /// The seed's variables; with no key among them, an ES256 key is
    /// generated.
    pub seed: SeedEnv,
    /// Where refresh families live (default: the embedded store).
    pub store: Option<Arc<dyn RefreshStore>>,
}

/// The issuer at `base_url` with the demo users and the `demo` client.
///
/// # Errors
///
/// A configuration error (a key, the users file).
pub fn issuer(base_url: &str, settings: &Settings) -> anyhow::Result<Issuer> {
    let mut config = IssuerConfig::new(base_url)
        .with_scopes([("user:read", "Read access"), ("user:write", "Write access")])
        .with_client(ClientConfig::first_party(CLIENT_ID));
    config.anonymous_client = Some(CLIENT_ID.to_owned());
    let config = settings.seed.apply(config);
    let mut keys = settings.seed.keys.clone();
    if keys.algorithm.is_none() && keys.secret_key.is_none() && keys.private_key.is_none() {
        keys.algorithm = Some(Algorithm::ES256);
    }
    let users = Argon2Users::from_json(
        USERS_FILE,
        portcullis_issuer::password::default_hash_concurrency(),
    )?;
    let mut builder = Issuer::builder(config)
        .signing_key(keys.signing_key()?)
        .credential_check(users);
    if let Some(store) = &settings.store {
        builder = builder.store(Arc::clone(store));
    }
    Ok(builder.build()?)
}

/// The resource server's verifier: the issuer's URL alone (discovery), or
/// the shared secret for HS256.
///
/// # Errors
///
/// A configuration error.
pub fn authenticator(issuer: &Issuer, secret: Option<&Secret>) -> anyhow::Result<Authenticator> {
    let url = issuer.config().issuer.clone();
    let alg = issuer.keys().active().algorithm();
    let mut trusted = VerifierIssuer::new(&url)
        .with_audience(&issuer.config().audience)
        .with_algorithms([alg]);
    if alg == Algorithm::HS256 {
        let secret = secret.ok_or_else(|| anyhow::anyhow!("HS256 needs SECRET_KEY"))?;
        trusted = trusted.with_hmac_secret(secret.clone());
    }
    let verifier = TokenVerifier::new(VerifierConfig::new([("issuer".to_owned(), trusted)]))?;
    Ok(Authenticator::new(verifier, CredentialsConfig::default()))
}

/// The application: the issuer's routes and the resource server's.
pub fn app(issuer: &Issuer, auth: Authenticator) -> Router {
    let resources = Router::new()
        .route("/user", get(user))
        .route("/user/write", get(user_write))
        .layer(AuthLayer::new(auth));
    portcullis_axum::issuer_routes(issuer).merge(resources)
}

/// One step of the demo scenario: what the printed `curl` line does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What the step shows.
    pub title: &'static str,
    /// The `curl` line.
    pub curl: String,
}

/// The demo scenario at `base_url`, as `curl` lines (`$TOKEN` and
/// `$REFRESH` are read from the previous answers with `jq`).
pub fn scenario(base_url: &str) -> Vec<Step> {
    let token = format!("{base_url}/token");
    vec![
        Step {
            title: "alice logs in (first-party password exchange)",
            curl: format!(
                "ANSWER=$(curl -s {token} -d grant_type=password -d username=alice -d password=alice-password) && echo \"$ANSWER\" && TOKEN=$(echo \"$ANSWER\" | jq -r .access_token) && REFRESH=$(echo \"$ANSWER\" | jq -r .refresh_token)"
            ),
        },
        Step {
            title: "the resource server greets her",
            curl: format!("curl -s {base_url}/user -H \"Authorization: Bearer $TOKEN\""),
        },
        Step {
            title: "she may write (scope user:write)",
            curl: format!("curl -s {base_url}/user/write -H \"Authorization: Bearer $TOKEN\""),
        },
        Step {
            title: "a refresh rotates her refresh token",
            curl: format!("curl -s {token} -d grant_type=refresh_token -d refresh_token=$REFRESH"),
        },
        Step {
            title: "bob may read but not write (403)",
            curl: format!(
                "curl -s -i {base_url}/user/write -H \"Authorization: Bearer $(curl -s {token} -d grant_type=password -d username=bob -d password=bob-password | jq -r .access_token)\""
            ),
        },
        Step {
            title: "discovery and keys, for any verifier",
            curl: format!(
                "curl -s {base_url}/.well-known/oauth-authorization-server && curl -s {base_url}/jwks"
            ),
        },
    ]
}

/// The scenario as printed text.
pub fn instructions(base_url: &str) -> String {
    let mut out = String::new();
    for step in scenario(base_url) {
        out.push_str(&format!("\n# {}\n{}\n", step.title, step.curl));
    }
    out
}
