//! An axum API protected by portcullis.
//!
//! Run it with `cargo run -p example-axum`. Without `--config` it starts the
//! embedded mock OpenID Connect provider, trusts it, and prints a `curl` line
//! with a valid token, so it needs no secrets and no external server. With
//! `--config FILE` (YAML or TOML, see `config.example.yaml`) it trusts the
//! issuers configured there instead.
//!
//! Routes:
//! - `GET /`: greets the caller, or a guest;
//! - `GET /me`: the caller's identity (401 without a valid token);
//! - `GET /report`: needs the `read` scope (403 `insufficient_scope` otherwise).

// A command-line program: its output to the user is stdout.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use axum::routing::get;
use axum::{Json, Router};
use portcullis_axum::{AuthLayer, Caller, RequireScope, scope};
use portcullis_core::config::{self, IssuerConfig, VerifierConfig};
use portcullis_core::{Algorithm, Authenticator, CredentialsConfig, TokenVerifier};
use portcullis_testing::MockProvider;
use serde::Deserialize;

scope!(Read = "read");

/// The configuration file of this example.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExampleConfig {
    verifier: VerifierConfig,
    #[serde(default)]
    credentials: CredentialsConfig,
}

/// Builds the application around an authenticator.
fn app(auth: Authenticator) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/me", get(me))
        .route("/report", get(report))
        .layer(AuthLayer::new(auth))
}

async fn home(caller: Option<Caller>) -> String {
    match caller {
        Some(Caller(c)) => format!(
            "Hello, {}!\n",
            c.principal.email().unwrap_or(c.principal.user_id())
        ),
        None => "Hello, guest!\n".to_owned(),
    }
}

async fn me(Caller(c): Caller) -> Json<serde_json::Value> {
    let p = &c.principal;
    Json(serde_json::json!({
        "user_id": p.user_id(),
        "email": p.email(),
        "issuer": p.issuer(),
        "scopes": p.scopes(),
        "expires_at": p.expires_at(),
    }))
}

async fn report(s: RequireScope<Read>) -> String {
    format!(
        "Quarterly report, read by {}\n",
        s.caller().principal.user_id()
    )
}

struct Args {
    config: Option<PathBuf>,
    addr: SocketAddr,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        config: None,
        addr: "127.0.0.1:3000".parse()?,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" => args.config = Some(it.next().context("--config needs a file")?.into()),
            "--addr" => {
                let v = it.next().context("--addr needs HOST:PORT")?;
                args.addr = v
                    .parse()
                    .with_context(|| format!("--addr {v}: expected HOST:PORT"))?;
            }
            "-h" | "--help" => {
                println!("usage: example-axum [--config FILE] [--addr HOST:PORT]");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}` (try --help)"),
        }
    }
    Ok(args)
}

/// The mock provider's configuration: trust it for its own audience.
fn mock_config(provider: &MockProvider) -> (VerifierConfig, CredentialsConfig) {
    let issuer = IssuerConfig::new(provider.issuer())
        .with_algorithms([Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA])
        .with_audience(provider.audience());
    (
        VerifierConfig::new([("mock".to_owned(), issuer)]),
        CredentialsConfig::default().with_auto_error(false),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = parse_args()?;
    let env = config::env_overrides("PORTCULLIS", std::env::vars());

    // Keep the provider alive for as long as the server runs.
    let mut _provider = None;
    let (verifier_cfg, creds) = match &args.config {
        Some(path) => {
            let cfg: ExampleConfig = config::load_file(path, &env)?;
            (cfg.verifier, cfg.credentials)
        }
        None => {
            let provider = MockProvider::start()
                .await
                .context("starting the mock provider")?;
            let cfg = mock_config(&provider);
            _provider = Some(provider);
            cfg
        }
    };
    let verifier = TokenVerifier::new(verifier_cfg)?;
    if let Err(e) = verifier.warm_up().await {
        tracing::warn!(error = %e, "issuer keys are not available yet; requests will answer 503 until they are");
    }
    let app = app(Authenticator::new(verifier, creds));
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    let addr = listener.local_addr()?;
    println!("example-axum listening on http://{addr}");
    if let Some(provider) = &_provider {
        let token = provider
            .token()
            .subject("alice")
            .email("alice@example.com")
            .scope("openid email read")
            .expires_in(3600)
            .sign();
        println!("mock provider: {}", provider.issuer());
        println!("try (token valid for one hour):");
        println!("  curl -H 'Authorization: Bearer {token}' http://{addr}/me");
        println!("  curl -i http://{addr}/me    # 401 with a WWW-Authenticate challenge");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn call(app: &Router, path: &str, token: Option<&str>) -> (StatusCode, String) {
        let mut req = Request::get(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn the_example_routes_against_the_mock_provider() {
        let provider = MockProvider::start().await.unwrap();
        let (cfg, creds) = mock_config(&provider);
        let app = app(Authenticator::new(TokenVerifier::new(cfg).unwrap(), creds));
        let reader = provider
            .token()
            .email("alice@example.com")
            .scope("read")
            .sign();
        let plain = provider
            .token()
            .email("bob@example.com")
            .scope("openid")
            .sign();
        assert_eq!(
            call(&app, "/", None).await,
            (StatusCode::OK, "Hello, guest!\n".to_owned())
        );
        assert_eq!(
            call(&app, "/", Some(&reader)).await.1,
            "Hello, alice@example.com!\n"
        );
        assert_eq!(call(&app, "/me", None).await.0, StatusCode::UNAUTHORIZED);
        let (status, body) = call(&app, "/me", Some(&reader)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("\"email\":\"alice@example.com\""), "{body}");
        assert_eq!(
            call(&app, "/report", Some(&plain)).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(call(&app, "/report", Some(&reader)).await.0, StatusCode::OK);
    }

    #[test]
    fn the_example_config_file_loads() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.yaml");
        let cfg: ExampleConfig = config::load_file(&path, &[]).unwrap();
        assert_eq!(cfg.verifier.issuers["main"].audiences, ["my-api"]);
        assert!(!cfg.credentials.auto_error);
        assert!(TokenVerifier::new(cfg.verifier).is_ok());
    }
}
