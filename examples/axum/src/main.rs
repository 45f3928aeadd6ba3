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

use anyhow::{Context, bail};
use example_axum::{CONFIG_FILE, ExampleConfig, USER_FILE, app};
use portcullis_axum::portcullis_core::config;
use portcullis_axum::portcullis_oidc::RelyingParty;
use portcullis_testing::demo;

const USAGE: &str = "usage: example-axum [--config FILE] [--addr HOST:PORT]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let (config_file, addr) = parse_args()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    // The port actually bound (`--addr 127.0.0.1:0`), for the printed URLs.
    let addr = listener.local_addr()?;

    let (rp, mock) = match config_file {
        // A real provider: easy-oauth's configuration file, whose keys can
        // also come from the environment (PORTCULLIS__CLIENT_SECRET, ...).
        Some(path) => {
            let env = config::env_overrides("PORTCULLIS", std::env::vars());
            let cfg: ExampleConfig = config::load_file(&path, &env)?;
            (RelyingParty::builder(cfg).build().await?, None)
        }
        // No configuration: the no-secrets demo mode, against the embedded
        // mock provider.
        None => {
            let mock = demo::start_mock_provider(addr, CONFIG_FILE, USER_FILE).await?;
            (mock.rp.clone(), Some(mock))
        }
    };

    println!("example-axum listening on http://{addr}");
    if let Some(mock) = &mock {
        print!("{}", mock.instructions());
    }
    // With the connection's address, per-client limits (headless logins)
    // count per address.
    let service = app(rp).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// `[--config FILE] [--addr HOST:PORT]`; `--help` prints the usage and exits.
fn parse_args() -> anyhow::Result<(Option<PathBuf>, SocketAddr)> {
    let mut config_file = None;
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 3000));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config_file = Some(args.next().context("--config needs a file")?.into()),
            "--addr" => {
                let value = args.next().context("--addr needs HOST:PORT")?;
                addr = value
                    .parse()
                    .with_context(|| format!("--addr {value}: expected HOST:PORT"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}` (try --help)"),
        }
    }
    Ok((config_file, addr))
}
