//! The main example: easy-oauth's README application on axum.
//!
//! `cargo run -p example-axum` starts the embedded mock OpenID Connect
//! provider and the application, and prints how to log in with a browser or
//! call the API with a token; it needs no secrets and no external server.
//! `--config FILE` (YAML or TOML in easy-oauth's format, see
//! `config.example.yaml`) runs it against a real provider instead.

// A command-line program: its output to the user is stdout.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use example_axum::{ExampleConfig, app};
use portcullis_axum::portcullis_core::clock::{Clock, SystemClock};
use portcullis_axum::portcullis_core::config;
use portcullis_axum::portcullis_oidc::RelyingParty;
use portcullis_testing::MockProvider;

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

/// The example configuration pointed at the embedded mock provider, with the
/// user file copied to `dir`.
fn mock_config(
    provider: &MockProvider,
    base_url: &str,
    dir: &std::path::Path,
) -> anyhow::Result<ExampleConfig> {
    let text = include_str!("../config.example.yaml");
    let mut cfg: ExampleConfig = config::load_from_str(text, config::Format::Yaml, &[])?;
    let caps = dir.join("caps.yaml");
    std::fs::write(&caps, include_str!("../caps.yaml"))?;
    cfg.server_metadata_url = provider.discovery_url();
    cfg.client_id = provider.client_id().to_owned();
    cfg.client_secret = Some(provider.client_secret().into());
    cfg.base_url = base_url.to_owned();
    cfg.audience = Some(provider.audience().to_owned());
    cfg.capabilities.user_file = Some(caps);
    cfg.client_kwargs.extra.clear();
    let mut secret = [0u8; 32];
    aws_lc_rs::rand::fill(&mut secret).context("random secret key")?;
    cfg.secret_key = secret
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into();
    Ok(cfg)
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
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    let addr = listener.local_addr()?;

    // Kept alive for as long as the server runs.
    let mut provider = None;
    let mut _dir = None;
    let rp = match &args.config {
        Some(path) => {
            let cfg: ExampleConfig = config::load_file(path, &env)?;
            RelyingParty::builder(cfg).build().await?
        }
        None => {
            let mock = MockProvider::start()
                .await
                .context("starting the mock provider")?;
            // The mock's clock follows real time, so sessions and tokens age.
            let clock = mock.clock();
            tokio::spawn(async move {
                loop {
                    let (now, at) = (SystemClock.now_millis(), clock.now_millis());
                    if now > at {
                        clock.advance_millis(now - at);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
            let base_url = format!("http://{addr}");
            mock.register_redirect_uri(&format!("{base_url}/auth"));
            mock.register_post_logout_redirect_uri(&format!("{base_url}/"));
            mock.set_email("admin@example.com");
            let dir = tempfile::tempdir()?;
            let cfg = mock_config(&mock, &base_url, dir.path())?;
            let rp = RelyingParty::builder(cfg)
                .clock(Arc::new(mock.clock()))
                .build()
                .await?;
            provider = Some(mock);
            _dir = Some(dir);
            rp
        }
    };
    println!("example-axum listening on http://{addr}");
    if let Some(mock) = &provider {
        let token = mock
            .token()
            .email("friend@example.com")
            .expires_in(3600)
            .sign();
        println!(
            "mock provider: {} (logs everyone in as admin@example.com)",
            mock.issuer()
        );
        println!(
            "in a browser:   http://{addr}/login   then /read, /shout?message=hi, /token, /logout"
        );
        println!(
            "as someone else: curl -X POST -H 'content-type: application/json' -d '{{\"email\":\"reader@example.com\"}}' {}/set_email",
            mock.issuer()
        );
        println!("with a provider access token for friend@example.com (valid one hour):");
        println!("  curl -H 'Authorization: Bearer {token}' 'http://{addr}/shout?message=hello'");
        println!("  curl -i http://{addr}/read    # 401 with a WWW-Authenticate challenge");
    }
    axum::serve(listener, app(rp))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
